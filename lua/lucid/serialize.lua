-- lucid.serialize: lucid.save / lucid.load, checkpoints in the safetensors format.
-- See docs/checkpoints.md.
--
-- A file holds tensors by name plus string metadata. lucid flattens what it saves: tensors go
-- into the file under dotted names ("model.fc1.weight", "optim.state.1.exp_avg"), and the
-- structure around them (tables, key types, order of state dicts, numbers, booleans, strings)
-- goes into the metadata entry "lucid" as JSON, so lucid.load rebuilds an equal structure.
-- A file without that entry (e.g. written by PyTorch's safetensors) loads as an ordered state
-- dict: a list of {name, tensor} pairs in file order, with sd["name"] lookup.
local core = require "lucid.core"
local io_core = core._io

local M = {}

local mtype = math.type
local is_tensor = core.is_tensor
local FORMAT_KEY = "lucid"
local FORMAT_VERSION = 1

local function is_module(v)
  local ok, nn_core = pcall(require, "lucid.nn_core")
  return ok and nn_core.is_module(v)
end

-- Messages from the C core start with the C function's name; Lua users see lucid.load's.
local function core_message(msg) return (msg:gsub("^lc_[%w_]+: ", "")) end
M._core_message = core_message

local A = require "lucid.args"
local describe = A.describe
-- Raw failures: save, load and the renamers run their work under pcall and raise the message
-- under their own name ("lucid.save: ...") at the caller's position.
local function fail(fmt, ...) error(string.format(fmt, ...), 0) end

-- ------------------------------------------------------------------ state dicts

-- The same shape as Module:state_dict() returns: an ordered list of {name, tensor} pairs
-- with sd["name"] looking a tensor up.
local StateDict = {__name = "StateDict"}
StateDict.__index = function(sd, k)
  if type(k) ~= "string" then return nil end
  for _, kv in ipairs(sd) do
    if kv[1] == k then return kv[2] end
  end
end
M.StateDict = StateDict

local function is_state_dict(v)
  if type(v) ~= "table" then return false end
  local mt = getmetatable(v)
  if mt ~= nil then return type(mt) == "table" and mt.__name == "StateDict" end
  -- a plain list of {string, tensor} pairs counts too
  local n = #v
  if n == 0 then return false end
  for k, kv in pairs(v) do
    if mtype(k) ~= "integer" or k < 1 or k > n then return false end
    if type(kv) ~= "table" or type(kv[1]) ~= "string" or not is_tensor(kv[2]) then return false end
    local count = 0
    for _ in pairs(kv) do count = count + 1 end
    if count ~= 2 then return false end
  end
  return true
end
M.is_state_dict = is_state_dict

local function new_state_dict(pairs_list) return setmetatable(pairs_list or {}, StateDict) end
M.new_state_dict = new_state_dict

-- ------------------------------------------------------------------ a small JSON codec

local escapes = {['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                 ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t"}
local function jstr(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_decode(text)
  local pos = 1
  local function bad(what) fail("malformed JSON at byte %d: %s", pos, what) end
  local function ws() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local value
  local function str()
    pos = pos + 1 -- opening quote
    local parts = {}
    while true do
      local s, e = text:find('["\\]', pos)
      if not s then bad("unterminated string") end
      parts[#parts + 1] = text:sub(pos, s - 1)
      if text:sub(s, s) == '"' then
        pos = e + 1
        return table.concat(parts)
      end
      local c = text:sub(s + 1, s + 1)
      if c == "u" then
        local hex = text:sub(s + 2, s + 5)
        if not hex:match("^%x%x%x%x$") then bad("bad \\u escape") end
        local cp = tonumber(hex, 16)
        pos = s + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = text:match("^\\u(%x%x%x%x)", pos)
          lo = lo and tonumber(lo, 16)
          if not lo or lo < 0xDC00 or lo > 0xDFFF then bad("unpaired surrogate") end
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
          pos = pos + 6
        end
        parts[#parts + 1] = utf8.char(cp)
      else
        local map = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
                     r = "\r", t = "\t"}
        if not map[c] then bad("unknown escape") end
        parts[#parts + 1] = map[c]
        pos = s + 2
      end
    end
  end
  function value()
    ws()
    local c = text:sub(pos, pos)
    if c == "{" then
      pos = pos + 1
      local o = {}
      ws()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return o end
      while true do
        ws()
        if text:sub(pos, pos) ~= '"' then bad("expected a key") end
        local k = str()
        ws()
        if text:sub(pos, pos) ~= ":" then bad("expected ':'") end
        pos = pos + 1
        o[k] = value()
        ws()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return o end
        if d ~= "," then bad("expected ',' or '}'") end
      end
    elseif c == "[" then
      pos = pos + 1
      local a = {}
      ws()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return a end
      while true do
        a[#a + 1] = value()
        ws()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return a end
        if d ~= "," then bad("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    elseif text:sub(pos, pos + 3) == "true" then
      pos = pos + 4
      return true
    elseif text:sub(pos, pos + 4) == "false" then
      pos = pos + 5
      return false
    else
      local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if num and #num > 0 and tonumber(num) then
        pos = pos + #num
        return tonumber(num)
      end
      bad("expected a value")
    end
  end
  local v = value()
  ws()
  if pos <= #text then bad("trailing characters") end
  return v
end
M._json_decode = json_decode

local rename -- PyTorch <-> lucid names, defined at the end

-- ------------------------------------------------------------------ save

-- Key order inside a table: integers ascending, then strings, then other keys, so a file's
-- bytes do not depend on the hash order of the table.
local function key_rank(k)
  local mt = mtype(k)
  if mt == "integer" then return 1 end
  if type(k) == "string" then return 2 end
  if mt == "float" then return 3 end
  return 4 -- booleans
end
local function key_less(a, b)
  local ra, rb = key_rank(a), key_rank(b)
  if ra ~= rb then return ra < rb end
  if ra == 4 then return (a and 1 or 0) < (b and 1 or 0) end
  return a < b
end

local function encode_float(x)
  if x ~= x then return "nan" end
  if x == math.huge then return "inf" end
  if x == -math.huge then return "-inf" end
  return string.format("%a", x)
end

local function decode_float(s)
  if s == "nan" then return 0 / 0 end
  if s == "inf" then return math.huge end
  if s == "-inf" then return -math.huge end
  local x = tonumber(s)
  if mtype(x) == "integer" then x = x + 0.0 end
  return x
end

local function path_text(path) return path == "" and "the top level" or ('"' .. path .. '"') end

-- Flattens obj into names/tensors and returns the JSON skeleton describing it.
local function flatten(obj)
  local names, tensors = {}, {}
  local name_of = {}   -- tensor userdata -> name (a tensor reached twice is stored once)
  local owner = {}     -- name -> path that claimed it
  local visiting = {}

  local function add_tensor(path, t)
    local got = name_of[t]
    if got then return got end
    local name = path == "" and "tensor" or path
    if not utf8.len(name) then
      fail("the tensor at \"%s\" cannot be saved: its name is not valid UTF-8 (safetensors names "
        .. "are UTF-8; rename the key)", (name:gsub("[\128-\255]", function(c)
          return string.format("\\x%02X", c:byte())
        end)))
    end
    if owner[name] then
      fail("two tensors would be stored under the name \"%s\"; rename a key", name)
    end
    owner[name] = true
    name_of[t] = name
    names[#names + 1], tensors[#tensors + 1] = name, t
    return name
  end

  local function key_text(k)
    return mtype(k) == "float" and encode_float(k) or tostring(k)
  end

  local encode
  local function encode_key(k, path)
    local mt = mtype(k)
    if mt == "integer" then return string.format('{"i":"%d"}', k) end
    if mt == "float" then return '{"f":"' .. encode_float(k) .. '"}' end
    if type(k) == "boolean" then return tostring(k) end
    if type(k) == "string" then
      if utf8.len(k) then return jstr(k) end
      return '{"x":"' .. k:gsub(".", function(c) return string.format("%02x", c:byte()) end) .. '"}'
    end
    fail("a key of type %s (in %s) cannot be saved: keys must be strings, numbers or booleans",
      type(k), path_text(path))
  end

  function encode(v, path)
    if is_tensor(v) then return '{"t":' .. jstr(add_tensor(path, v)) .. "}" end
    local mt = mtype(v)
    if mt == "integer" then return string.format('{"i":"%d"}', v) end
    if mt == "float" then return '{"f":"' .. encode_float(v) .. '"}' end
    local ty = type(v)
    if ty == "boolean" then return tostring(v) end
    if ty == "string" then return encode_key(v, path) end
    if ty == "userdata" and is_module(v) then
      fail("a module (at %s) cannot be saved: save its state_dict() instead", path_text(path))
    end
    if ty ~= "table" then
      fail("a %s (at %s) cannot be saved: values must be tensors, numbers, booleans, strings "
        .. "or tables of them", ty, path_text(path))
    end
    if visiting[v] then fail("the table at %s contains itself", path_text(path)) end
    local prefix = path == "" and "" or path .. "."
    if is_state_dict(v) then
      visiting[v] = true
      local parts, seen = {}, {}
      for i, kv in ipairs(v) do
        local name, t = kv[1], kv[2]
        if type(name) ~= "string" or not is_tensor(t) then
          fail("state dict entry %d (at %s) must be a {name, tensor} pair", i, path_text(path))
        end
        if seen[name] then fail("state dict key \"%s\" appears twice (at %s)", name, path_text(path)) end
        seen[name] = true
        parts[#parts + 1] = "[" .. jstr(name) .. "," .. encode(t, prefix .. name) .. "]"
      end
      visiting[v] = nil
      return '{"SD":[' .. table.concat(parts, ",") .. "]}"
    end
    local meta = getmetatable(v)
    if meta ~= nil then
      local hint = ""
      if type(v.state_dict) == "function" then hint = "; save its state_dict() instead" end
      fail("the table at %s has a metatable (%s)%s: only plain tables, state dicts, tensors, "
        .. "numbers, booleans and strings can be saved", path_text(path),
        type(meta) == "table" and tostring(meta.__name or "a class") or "a class", hint)
    end
    visiting[v] = true
    local keys = {}
    for k in next, v do
      if type(k) ~= "string" and not mtype(k) and type(k) ~= "boolean" then
        encode_key(k, path) -- raises with the right message
      end
      keys[#keys + 1] = k
    end
    table.sort(keys, key_less)
    local parts = {}
    for i, k in ipairs(keys) do
      parts[i] = "[" .. encode_key(k, path) .. "," .. encode(v[k], prefix .. key_text(k)) .. "]"
    end
    visiting[v] = nil
    return '{"T":[' .. table.concat(parts, ",") .. "]}"
  end

  local skeleton = encode(obj, "")
  return names, tensors, skeleton
end

local function opt_table(fname, opts, known)
  if opts == nil then return {} end
  if type(opts) ~= "table" then fail("%s: argument 3 (options): expected a table, got %s", fname, describe(opts)) end
  for k in pairs(opts) do
    if not known[k] then
      local list = {}
      for n in pairs(known) do list[#list + 1] = n end
      table.sort(list)
      fail("%s: unknown option '%s' (expected one of: %s)", fname, tostring(k), table.concat(list, ", "))
    end
  end
  return opts
end

-- lucid.save(path, obj [, {metadata = {k = "v"}, torch_names = false}])
function M.save(path, obj, opts)
  local ok, err = pcall(function()
    if type(path) ~= "string" or path == "" then
      fail("argument 1 (path): expected a non-empty string, got %s", describe(path))
    end
    if obj == nil then fail("argument 2 (obj): expected something to save, got nil") end
    local o = opt_table("lucid.save", opts, {metadata = true, torch_names = true})
    if o.torch_names ~= nil and type(o.torch_names) ~= "boolean" then
      fail("option torch_names: expected a boolean, got %s", describe(o.torch_names))
    end
    if o.torch_names then
      if not is_state_dict(obj) and not (type(obj) == "table" and getmetatable(obj) == nil) then
        fail("option torch_names needs a state dict or a table name -> tensor")
      end
      obj = rename("to_torch_names", obj, -1)
    end
    local names, tensors, skeleton = flatten(obj)
    local mk, mv = {FORMAT_KEY}, {string.format('{"version":%d,"tree":%s}', FORMAT_VERSION, skeleton)}
    if o.metadata ~= nil then
      if type(o.metadata) ~= "table" then fail("option metadata: expected a table, got %s", describe(o.metadata)) end
      local keys = {}
      for k, v in pairs(o.metadata) do
        if type(k) ~= "string" or type(v) ~= "string" then
          fail("option metadata: keys and values must be strings, got %s = %s", describe(k), describe(v))
        end
        if k == FORMAT_KEY then fail("option metadata: the key \"%s\" is reserved for lucid", k) end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      for _, k in ipairs(keys) do mk[#mk + 1], mv[#mv + 1] = k, o.metadata[k] end
    end
    local done, msg = io_core.safetensors_save(path, names, tensors, mk, mv)
    if not done then error(core_message(msg), 0) end
  end)
  if not ok then
    if type(err) == "string" and not err:find("^lucid%.save: ") then err = "lucid.save: " .. err end
    error(err, 2)
  end
end

-- ------------------------------------------------------------------ load

local function rebuild(node, byname, label)
  local function bad(what) fail("%s: metadata \"lucid\" is malformed: %s", label, what) end
  local function dec(n)
    local ty = type(n)
    if ty == "boolean" or ty == "string" then return n end
    if ty ~= "table" then bad("unexpected " .. ty) end
    if n.t ~= nil then
      local t = byname[n.t]
      if t == nil then bad('it names tensor "' .. tostring(n.t) .. '", which the file does not hold') end
      return t
    elseif n.i ~= nil then
      local v = math.tointeger(tonumber(n.i))
      if v == nil then bad("bad integer " .. tostring(n.i)) end
      return v
    elseif n.f ~= nil then
      local v = decode_float(n.f)
      if v == nil then bad("bad number " .. tostring(n.f)) end
      return v
    elseif n.x ~= nil then
      return (n.x:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
    elseif n.SD ~= nil then
      local sd = new_state_dict()
      for i, kv in ipairs(n.SD) do
        if type(kv) ~= "table" or type(kv[1]) ~= "string" then bad("state dict entry " .. i) end
        sd[i] = {kv[1], dec(kv[2])}
      end
      return sd
    elseif n.T ~= nil then
      local t = {}
      for _, kv in ipairs(n.T) do
        if type(kv) ~= "table" or #kv ~= 2 then bad("table entry") end
        local k = dec(kv[1])
        if k == nil or k ~= k then bad("table key") end
        t[k] = dec(kv[2])
      end
      return t
    end
    bad("unknown node")
  end
  return dec(node)
end

-- lucid.load(path [, {torch_names = false}]) -> obj, metadata
function M.load(path, opts)
  local ok, obj, meta = pcall(function()
    if type(path) ~= "string" or path == "" then
      fail("argument 1 (path): expected a non-empty string, got %s", describe(path))
    end
    local o = opt_table("lucid.load", opts, {torch_names = true})
    if o.torch_names ~= nil and type(o.torch_names) ~= "boolean" then
      fail("option torch_names: expected a boolean, got %s", describe(o.torch_names))
    end
    local names, tensors, _, meta = io_core.safetensors_load(path)
    if not names then error(core_message(tensors), 0) end
    local result
    local fmt = meta[FORMAT_KEY]
    if fmt ~= nil then
      local okj, doc = pcall(json_decode, fmt)
      if not okj then fail("%s: metadata \"lucid\" is malformed: %s", path, doc) end
      if type(doc) ~= "table" or doc.tree == nil then fail("%s: metadata \"lucid\" is malformed: no tree", path) end
      if mtype(doc.version) ~= "integer" or doc.version > FORMAT_VERSION then
        fail("%s: written by a newer lucid (format version %s; this lucid reads up to %d)", path,
          tostring(doc.version), FORMAT_VERSION)
      end
      local byname = {}
      for i, n in ipairs(names) do byname[n] = tensors[i] end
      result = rebuild(doc.tree, byname, path)
      meta[FORMAT_KEY] = nil
    else
      result = new_state_dict()
      for i, n in ipairs(names) do result[i] = {n, tensors[i]} end
    end
    if o.torch_names then
      if not is_state_dict(result) and not (type(result) == "table" and getmetatable(result) == nil) then
        fail("option torch_names needs a file holding a state dict or a table name -> tensor")
      end
      result = rename("from_torch_names", result, 1)
    end
    return result, meta
  end)
  if not ok then
    local err = obj
    if type(err) == "string" and not err:find("^lucid%.load: ") then err = "lucid.load: " .. err end
    error(err, 2)
  end
  return obj, meta
end

-- ------------------------------------------------------------------ PyTorch names

-- PyTorch numbers the children of Sequential / ModuleList from 0, lucid from 1: "0.weight"
-- <-> "1.weight", "layers.2.bias" <-> "layers.3.bias". Every purely numeric segment shifts.
function rename(fname, sd, delta)
  local function map(name)
    if type(name) ~= "string" then fail("%s: keys must be strings, got %s", fname, describe(name)) end
    local r = require("lucid.nn_core").shift_positions(name, delta)
    if not r then
      fail("%s: name \"%s\" has segment 0, which is not a lucid (1-based) position", fname, name)
    end
    return r
  end
  if type(sd) ~= "table" then fail("%s: expected a state dict or a table name -> tensor, got %s", fname, describe(sd)) end
  if is_state_dict(sd) or (#sd > 0 and getmetatable(sd) == nil and type(sd[1]) == "table") then
    local out = new_state_dict()
    for i, kv in ipairs(sd) do out[i] = {map(kv[1]), kv[2]} end
    return out
  end
  local out = {}
  for k, v in pairs(sd) do
    local nk = map(k)
    if out[nk] ~= nil then fail("%s: two keys map to \"%s\"", fname, nk) end
    out[nk] = v
  end
  return out
end

function M.from_torch_names(sd)
  local ok, r = pcall(rename, "lucid.serialize.from_torch_names", sd, 1)
  if not ok then error(r, 2) end
  return r
end

function M.to_torch_names(sd)
  local ok, r = pcall(rename, "lucid.serialize.to_torch_names", sd, -1)
  if not ok then error(r, 2) end
  return r
end

return M
