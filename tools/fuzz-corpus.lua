-- tools/fuzz-corpus.lua: writes the seed corpora of the fuzzers (tests/fuzz/<reader>/), valid
-- files of each kind the readers accept, so that libFuzzer starts from real structure:
--   build/bin/lucid tools/fuzz-corpus.lua
-- The IDX seeds start with the harness's selector byte (tests/fuzz/fuzz_idx.c), then the file.
local lucid = require "lucid"

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local st = "tests/fuzz/safetensors/"
os.execute("mkdir -p " .. st .. " tests/fuzz/idx")
local tmp = os.tmpname()
local cases = {
  scalar = {x = lucid.tensor(1.5)},
  mixed = {a = lucid.arange(0, 6):view(2, 3), b = lucid.ones(2, {dtype = "int64"}),
    c = lucid.zeros(1, {dtype = "bool"}), d = lucid.randn(2, 2, {dtype = "float64"})},
  empty = {e = lucid.zeros(0, 3)},
}
for name, tensors in pairs(cases) do
  lucid.save(tmp, tensors, {metadata = {format = "pt"}})
  write(st .. name .. ".safetensors", slurp(tmp))
end
os.remove(tmp)

-- IDX: magic 0 0 dtype ndim, big-endian int32 sizes, then the data
local function be32(n) return string.char(n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255) end
local ubyte = "\0\0\8\2" .. be32(2) .. be32(3) .. "\1\2\3\4\5\6"
local int32 = "\0\0\12\1" .. be32(2) .. be32(7) .. be32(1 << 20)
local float = "\0\0\13\1" .. be32(1) .. string.pack(">f", 0.25)
-- selector: dtype index (float32, float64, int32, int64, bool) + 5 * (expected ndim + 1)
local sel = {ubyte = string.char(3 + 5 * 3), int32 = string.char(2 + 5 * 2), float = string.char(0 + 5 * 2)}
write("tests/fuzz/idx/ubyte", sel.ubyte .. ubyte)
write("tests/fuzz/idx/int32", sel.int32 .. int32)
write("tests/fuzz/idx/float", sel.float .. float)
-- the same ubyte file gzip-compressed
local gz = os.tmpname()
write(gz, ubyte)
os.execute("gzip -n -c " .. gz .. " > " .. gz .. ".gz")
write("tests/fuzz/idx/ubyte_gz", sel.ubyte .. slurp(gz .. ".gz"))
os.remove(gz)
os.remove(gz .. ".gz")
print("fuzz corpora written under tests/fuzz/")
