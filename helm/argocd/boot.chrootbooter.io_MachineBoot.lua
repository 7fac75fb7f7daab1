-- Argo CD health check for boot.chrootbooter.io/MachineBoot, from its kstatus conditions.
-- Ready=True: Healthy (the machine runs what its spec declares).
-- Stalled=True: Degraded (nothing happens until the spec changes).
-- Reconciling=True, no conditions yet, or a status older than the spec
-- (observedGeneration behind metadata.generation): Progressing.
local hs = { status = "Progressing", message = "Waiting for the operator to report a status" }
if obj.status == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.message = "Status describes generation " .. observed .. "; the spec is at generation " .. generation
  return hs
end
local function describe(c)
  local text = c.reason or c.type
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end
local ready, reconciling, stalled
for _, c in ipairs(obj.status.conditions or {}) do
  if c.status == "True" then
    if c.type == "Ready" then
      ready = c
    elseif c.type == "Reconciling" then
      reconciling = c
    elseif c.type == "Stalled" then
      stalled = c
    end
  end
end
if stalled ~= nil then
  hs.status = "Degraded"
  hs.message = describe(stalled)
elseif ready ~= nil then
  hs.status = "Healthy"
  hs.message = describe(ready)
elseif reconciling ~= nil then
  hs.message = describe(reconciling)
end
return hs
