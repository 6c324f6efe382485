-- Shared helpers of the nn specs (loaded with require "nn_helpers"; .busted puts spec/ on the
-- path).
local H = {}

-- Largest |a - b| - tol over two nested tables (or numbers); fails on a shape difference.
function H.close(a, b, rel, abs)
  rel, abs = rel or 1e-5, abs or 1e-6
  if type(a) == "number" or type(b) == "number" then
    assert(type(a) == "number" and type(b) == "number", "shape mismatch")
    return math.abs(a - b) <= abs + rel * math.abs(b)
  end
  if #a ~= #b then return false end
  for i = 1, #a do
    if not H.close(a[i], b[i], rel, abs) then return false end
  end
  return true
end

function H.assert_close(t, want, rel, abs)
  local got = type(t) == "table" and t or t:tolist()
  if not H.close(got, want, rel, abs) then
    error(("values differ:\n got  %s\n want %s"):format(H.show(got), H.show(want)), 2)
  end
end

function H.show(v)
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for i = 1, #v do parts[i] = H.show(v[i]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- The message of the error fn raises (fails when it does not raise).
function H.err(fn, ...)
  local ok, msg = pcall(fn, ...)
  assert(not ok, "expected an error")
  return (tostring(msg):gsub("^[^:\n]+:%d+: ", "")) -- without the caller's position
end

return H
