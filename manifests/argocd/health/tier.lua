-- Argo CD health of tenantdb.io DatabaseTier (Lua 5.1, Argo CD's).
--   Healthy      condition Ready=True: every database of the tier's users follows it
--   Progressing  a rollout under way (Ready=False, RollingOut), a stale status, no status yet
local function find_condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == kind then
      return condition
    end
  end
  return nil
end

local hs = {}
local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the tenantdb operator to pick it up"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to take up generation " .. tostring(generation)
  return hs
end

local ready = find_condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Every database follows the tier"
  return hs
end

hs.status = "Progressing"
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = "Rolling out: " .. ready.message
else
  hs.message = "Rolling out"
end
return hs
