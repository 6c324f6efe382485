-- char_lm.lua - lucid's second main job: a character-level language model trained on the text
-- of Debian's `fortunes` package (`make demo-text`).
--
--   lucid examples/char_lm.lua [--model transformer|lstm] [--epochs N] [--steps N]
--                              [--batch-size N] [--seq-len N] [--lr X] [--resume]
--                              [--checkpoint FILE] [--root DIR] [--seed N] [--quick]
--   lucid examples/char_lm.lua --sample "prompt" [--length N] [--temperature X] [--top-k N]
--                              [--checkpoint FILE]
--
-- Training: --epochs epochs of --steps batches each (windows of --seq-len + 1 characters at
-- offsets drawn by a small LCG, so bench/char_lm_torch.py trains on exactly the same batches),
-- Adam with a cosine learning rate, gradient clipping at 1. After every epoch it reports the
-- validation bits per character (the mean cross-entropy in bits over the held-out last 10% of the
-- text) and saves a checkpoint (model, optimizer, scheduler, vocabulary, options) that --resume
-- continues from. --sample generates text from a checkpoint through the model's decoding cache
-- (key/value cache for the Transformer, (h, c) for the LSTM): temperature, then the top-k
-- symbols. --quick: a tiny model for 8 steps on the first 200,000 characters (the specs).
-- docs/tutorial.md ("A text model") walks through it.
local lucid = require "lucid"
local nn, optim = lucid.nn, lucid.optim
local F = nn.functional

-- ------------------------------------------------------------------ options

local opts = {model = "transformer", epochs = 3, steps = 150, batch_size = 32, seq_len = 128,
  lr = 2e-3, d_model = 128, layers = 2, heads = 4, hidden = 256, dropout = 0, seed = 1,
  checkpoint = "char_lm.safetensors", root = "/usr/share/games/fortunes", resume = false,
  quick = false, length = 256, temperature = 0.8, top_k = 20}

local function usage(msg)
  io.stderr:write(("char_lm.lua: %s\nusage: lucid examples/char_lm.lua [--model transformer|lstm] " ..
    "[--epochs N] [--steps N] [--batch-size N] [--seq-len N] [--lr X] [--resume] " ..
    "[--checkpoint FILE] [--root DIR] [--seed N] [--quick]\n" ..
    "       lucid examples/char_lm.lua --sample PROMPT [--length N] [--temperature X] " ..
    "[--top-k N] [--checkpoint FILE]\n"):format(msg))
  os.exit(2)
end

local argv = arg or {}
local i = 1
while i <= #argv do
  local a = argv[i]
  local function value(kind)
    i = i + 1
    local v = argv[i]
    if v == nil then usage(a .. " needs a value") end
    if kind == "int" then
      v = math.tointeger(tonumber(v))
      if not v or v < 1 then usage(a .. " needs a positive integer, got " .. argv[i]) end
    elseif kind == "number" then
      v = tonumber(v)
      if not v or v <= 0 then usage(a .. " needs a positive number, got " .. argv[i]) end
    end
    return v
  end
  if a == "--model" then
    opts.model = value()
    if opts.model ~= "transformer" and opts.model ~= "lstm" then
      usage("--model must be transformer or lstm, got " .. opts.model)
    end
  elseif a == "--epochs" then opts.epochs, opts.epochs_given = value("int"), true
  elseif a == "--steps" then opts.steps = value("int")
  elseif a == "--batch-size" then opts.batch_size = value("int")
  elseif a == "--seq-len" then opts.seq_len = value("int")
  elseif a == "--lr" then opts.lr = value("number")
  elseif a == "--seed" then opts.seed = value("int")
  elseif a == "--checkpoint" then opts.checkpoint = value()
  elseif a == "--root" then opts.root = value()
  elseif a == "--resume" then opts.resume = true
  elseif a == "--quick" then opts.quick = true
  elseif a == "--sample" then opts.sample = value()
  elseif a == "--length" then opts.length = value("int")
  elseif a == "--temperature" then opts.temperature = value("number")
  elseif a == "--top-k" then opts.top_k = value("int")
  elseif a == "--help" or a == "-h" then usage("help")
  else usage("unknown option " .. a) end
  i = i + 1
end
if opts.quick then
  if not opts.epochs_given then opts.epochs = 1 end
  opts.steps, opts.batch_size, opts.seq_len = 8, 8, 32
  opts.d_model, opts.hidden = 32, 32
end

lucid.manual_seed(opts.seed)
local here = (arg and arg[0] or ""):match("^(.*[/\\])") or "./"
local models = dofile(here .. "char_model.lua")

-- ------------------------------------------------------------------ sampling

-- Symbol ids are 1-based positions in `vocab` (a string of the distinct bytes, sorted).
local function sample(ckpt)
  local o = ckpt.options
  local vocab = ckpt.vocab
  local index = {}
  for k = 1, #vocab do index[vocab:byte(k)] = k end
  local model = models.new(o)
  model:load_state_dict(ckpt.model)
  model:eval()
  local ids = {}
  for k = 1, #opts.sample do
    local s = index[opts.sample:byte(k)]
    if not s then
      io.stderr:write(("char_lm.lua: --sample: the character %q is not in the vocabulary\n")
        :format(opts.sample:sub(k, k)))
      os.exit(1)
    end
    ids[#ids + 1] = s
  end
  if #ids == 0 then ids[1] = index[10] or 1 end -- an empty prompt starts after a newline
  io.write(opts.sample)
  io.flush()
  local t0 = lucid.clock()
  lucid.no_grad(function()
    local state = model:start(1)
    local x = lucid.Tensor({ids}, {dtype = "int64"})
    for _ = 1, opts.length do
      local logits = model:step(x, state):squeeze(1) / opts.temperature
      local v, pos = logits:topk(math.min(opts.top_k, #vocab))
      -- draw from softmax(v) by its cumulative sums
      local probs, u, r = F.softmax(v, 1):tolist(), lucid.rand(1):item(), 1
      local acc = probs[1]
      while u > acc and r < #probs do r = r + 1; acc = acc + probs[r] end
      local pick = pos[r]:item()
      io.write(vocab:sub(pick, pick))
      io.flush()
      x = lucid.Tensor({{pick}}, {dtype = "int64"})
    end
  end)
  local dt = lucid.clock() - t0
  io.write("\n")
  print(("generated %d characters in %.2f s (%.0f characters/s)"):format(opts.length, dt,
    opts.length / dt))
end

if opts.sample then
  local ok, ckpt = pcall(lucid.load, opts.checkpoint)
  if not ok then
    io.stderr:write(("char_lm.lua: --sample: %s (train first: make demo-text)\n"):format(ckpt))
    os.exit(1)
  end
  sample(ckpt)
  return
end

-- ------------------------------------------------------------------ data

-- Every plain-text fortune file (the .dat indexes and .u8 links skipped), in name order.
local function read_corpus(root)
  local list = io.popen("ls -1 '" .. root:gsub("'", "'\\''") .. "' 2>/dev/null")
  local names = {}
  for name in list:lines() do
    if not name:find("%.") then names[#names + 1] = name end
  end
  list:close()
  table.sort(names)
  local parts = {}
  for _, name in ipairs(names) do
    local f = io.open(root .. "/" .. name, "rb")
    if f then
      parts[#parts + 1] = f:read("a")
      f:close()
    end
  end
  return table.concat(parts), #parts
end

local text, nfiles = read_corpus(opts.root)
if #text < 10000 then
  io.stderr:write(("char_lm.lua: no text under %s (apt-get install fortunes, or --root DIR)\n")
    :format(opts.root))
  os.exit(1)
end
if opts.quick then text = text:sub(1, 200000) end

local vocab, index
local ckpt
if opts.resume then
  local ok, c = pcall(lucid.load, opts.checkpoint)
  if not ok then
    io.stderr:write(("char_lm.lua: --resume: %s\n"):format(c))
    os.exit(1)
  end
  ckpt = c
  for _, k in ipairs{"model", "d_model", "layers", "heads", "hidden", "seq_len", "dropout"} do
    opts[k] = ckpt.options[k]
  end
  vocab = ckpt.vocab
else
  local seen = {}
  for k = 1, #text do seen[text:byte(k)] = true end
  local bytes = {}
  for b = 0, 255 do if seen[b] then bytes[#bytes + 1] = string.char(b) end end
  vocab = table.concat(bytes)
end
index = {}
for k = 1, #vocab do index[vocab:byte(k)] = k end

local symbols = {}
for k = 1, #text do symbols[k] = index[text:byte(k)] or 1 end
local ids = lucid.Tensor(symbols, {dtype = "int64"})
local n_train = math.floor(#symbols * 0.9)
local train_ids, val_ids = ids:narrow(1, 1, n_train), ids:narrow(1, n_train + 1, #symbols - n_train)

-- The batch offsets: a 31-bit LCG (the same in bench/char_lm_torch.py), so both train on the
-- same windows.
local lcg = opts.seed
local function next_offset(limit)
  lcg = (1103515245 * lcg + 12345) % 2147483648
  return lcg % limit
end

local L = opts.seq_len
local window = lucid.arange(0, L + 1, {dtype = "int64"})
-- (B, L + 1) windows of src starting at the 0-based offsets
local function windows(src, offsets)
  local starts = lucid.Tensor(offsets, {dtype = "int64"}):unsqueeze(2)
  local idx = (starts + window + 1):reshape(-1) -- 1-based positions
  return src:index_select(1, idx):reshape(#offsets, L + 1)
end

local function train_batch()
  local off = {}
  for b = 1, opts.batch_size do off[b] = next_offset(n_train - L - 1) end
  local w = windows(train_ids, off)
  return w:narrow(2, 1, L), w:narrow(2, 2, L)
end

-- validation: consecutive windows over the held-out text (at most 64 of them)
local val_batches = {}
do
  local nwin = math.min(64, (val_ids.shape[1] - 1) // L)
  local off = {}
  for k = 1, nwin do off[k] = (k - 1) * L end
  for k = 1, nwin, opts.batch_size do
    local part = {}
    for j = k, math.min(k + opts.batch_size - 1, nwin) do part[#part + 1] = off[j] end
    local w = windows(val_ids, part)
    val_batches[#val_batches + 1] = {w:narrow(2, 1, L), w:narrow(2, 2, L)}
  end
end

-- ------------------------------------------------------------------ model

local model = models.new{model = opts.model, vocab = #vocab, d_model = opts.d_model,
  layers = opts.layers, heads = opts.heads, hidden = opts.hidden, dropout = opts.dropout,
  max_len = math.max(1024, L + opts.length + 64)}
local opt = optim.Adam(model:parameters(), {lr = opts.lr})
local sched = optim.CosineAnnealingLR(opt, {T_max = opts.epochs * opts.steps})
local first_epoch, bpc = 1, nil
if ckpt then
  model:load_state_dict(ckpt.model)
  opt:load_state_dict(ckpt.optim)
  sched:load_state_dict(ckpt.sched)
  first_epoch, bpc, lcg = ckpt.epoch + 1, ckpt.bpc, ckpt.lcg
  print(("resumed from %s after epoch %d (validation %.3f bits per character)"):format(
    opts.checkpoint, ckpt.epoch, bpc))
end

print(model)
print(("%d parameters; %d characters of text from %d files, %d symbols; batch %d x %d; %d thread(s)")
  :format(model:num_parameters(), #text, nfiles, #vocab, opts.batch_size, L,
    lucid.get_num_threads()))

-- ------------------------------------------------------------------ progress

local tty = os.getenv("TERM") ~= nil and os.getenv("TERM") ~= "dumb" and os.execute("[ -t 1 ]")

local function duration(s)
  s = math.floor(s + 0.5)
  return ("%d:%02d"):format(s // 60, s % 60)
end

local function progress(epoch, step, loss, elapsed, final)
  local eta = (opts.steps - step) * (elapsed / step)
  local text_ = ("epoch %d/%d  step %4d/%d  loss %.4f (%.3f bpc)  %6.0f chars/s  %s %s"):format(
    epoch, opts.epochs, step, opts.steps, loss, loss / math.log(2),
    step * opts.batch_size * L / math.max(elapsed, 1e-9), final and "took" or "ETA",
    duration(final and elapsed or eta))
  if tty then
    local width = 24
    local filled = math.floor(width * step / opts.steps)
    io.write("\r[", ("="):rep(filled), (" "):rep(width - filled), "] ", text_, final and "\n" or "")
    io.flush()
  elseif final or step % math.max(1, opts.steps // 4) == 0 then
    print(text_)
  end
end

-- ------------------------------------------------------------------ train

local function logits_of(x)
  local out = model(x)
  return out
end

local function validate()
  model:eval()
  local nats, count = 0, 0
  lucid.no_grad(function()
    for _, b in ipairs(val_batches) do
      local logits = logits_of(b[1])
      local V = logits.shape[3]
      local loss = F.cross_entropy(logits:reshape(-1, V), b[2]:reshape(-1))
      nats = nats + loss:item() * b[2]:numel()
      count = count + b[2]:numel()
    end
  end)
  model:train()
  return nats / count / math.log(2)
end

local train_seconds, epochs_run = 0, 0
for epoch = first_epoch, opts.epochs do
  model:train()
  local t0, loss_sum = lucid.clock(), 0
  for step = 1, opts.steps do
    local x, y = train_batch()
    local logits = logits_of(x)
    local loss = F.cross_entropy(logits:reshape(-1, #vocab), y:reshape(-1))
    opt:zero_grad()
    loss:backward()
    nn.utils.clip_grad_norm_(model, 1.0)
    opt:step()
    sched:step()
    loss_sum = loss_sum + loss:item()
    progress(epoch, step, loss_sum / step, lucid.clock() - t0, step == opts.steps)
  end
  train_seconds, epochs_run = train_seconds + (lucid.clock() - t0), epochs_run + 1
  bpc = validate()
  print(("epoch %d: validation %.3f bits per character"):format(epoch, bpc))
  local options = {model = opts.model, vocab = #vocab, d_model = opts.d_model, layers = opts.layers,
    heads = opts.heads, hidden = opts.hidden, dropout = opts.dropout, seq_len = L,
    max_len = math.max(1024, L + opts.length + 64)}
  lucid.save(opts.checkpoint, {model = model:state_dict(), optim = opt:state_dict(),
    sched = sched:state_dict(), epoch = epoch, bpc = bpc, lcg = lcg, vocab = vocab,
    options = options})
  print(("checkpoint saved to %s"):format(opts.checkpoint))
end
if epochs_run > 0 then
  print(("training time: %.2f s per epoch"):format(train_seconds / epochs_run))
end
print(("final validation: %.3f bits per character"):format(bpc))
