-- lucid.nn.embedding: nn.Embedding (+ Embedding.from_pretrained) and nn.functional.embedding.
-- The C kind lives in src/nn/embedding.c, the tensor function in src/ops/embedding.c (bound by
-- src/lua/nn_embedding.c). Indices are 1-based. See docs/nn/embedding.md.
return function(nn, P)
  local F, core, tcore = P.F, P.core, P.tcore
  local _F = tcore._F
  local fail, describe, args, int_arg, bool_arg = P.fail, P.describe, P.args, P.int_arg, P.bool_arg

  local Embedding = P.builtin("Embedding", {"num_embeddings", "embedding_dim", "padding_idx"},
    function(a)
      local f = "nn.Embedding"
      -- types here; the sizes' rule (>= 0) is lc_nn_embedding_ex's
      local n = int_arg(f, "num_embeddings", a.num_embeddings)
      local d = int_arg(f, "embedding_dim", a.embedding_dim)
      return core.embedding(n, d, a.padding_idx) -- 1-based: the binding converts it
    end)

  -- nn.Embedding.from_pretrained(embeddings [, freeze = true] [, padding_idx]): an Embedding
  -- whose weight is a copy of the 2-D float tensor `embeddings` (frozen unless freeze = false).
  function Embedding.from_pretrained(embeddings, ...)
    local f = "nn.Embedding.from_pretrained"
    if not tcore.is_tensor(embeddings) or embeddings:dim() ~= 2 then
      fail("%s: embeddings must be a 2-D tensor, got %s", f,
        tcore.is_tensor(embeddings) and (embeddings:dim() .. "-D tensor") or describe(embeddings))
    end
    local a = args(f, {"freeze", "padding_idx"}, ...)
    local freeze = bool_arg(f, "freeze", a.freeze, true)
    local sh = embeddings.shape
    local m = Embedding(sh[1], sh[2], {padding_idx = a.padding_idx})
    local prev = tcore.set_grad_enabled(false)
    local ok, err = pcall(function() m.weight:copy_(embeddings) end)
    tcore.set_grad_enabled(prev)
    if not ok then error(err, 0) end
    if freeze then m.weight:requires_grad_(false) end
    return m
  end

  -- F.embedding(input, weight [, padding_idx]): validated in C
  F.embedding = _F.embedding
  -- F.one_hot(input, num_classes = -1): 1-based classes (class k sets position k), int64
  F.one_hot = tcore.one_hot
end
