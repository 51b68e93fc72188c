-- Argo CD health of tenantdb.io DatabaseBudget (Lua 5.1, Argo CD's).
--   Degraded     status.exceeded: spend reached the limit (the user's databases are suspended);
--                or Ready=False, TierNotFound: the budget names no DatabaseTier (the last
--                decision holds until it does)
--   Healthy      condition Ready=True
--   Progressing  anything else: no consumption synced yet, a stale status
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

local function dollars(cents)
  if cents == nil then
    return "unlimited"
  end
  return string.format("$%.2f", cents / 100)
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
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
  return hs
end

local spent = "spent " .. dollars(status.totalCostCents or 0) .. " of " .. dollars(status.limitCents)
if status.tier ~= nil then
  spent = spent .. " (" .. status.tier .. " tier)"
end

local ready = find_condition(status, "Ready")
if ready ~= nil and ready.status == "False" and ready.reason == "TierNotFound" then
  hs.status = "Degraded"
  hs.message = ready.message or "The budget names a DatabaseTier that does not exist"
  return hs
end

if status.exceeded == true then
  hs.status = "Degraded"
  hs.message = "Budget exceeded: " .. spent .. "; the user's databases are suspended"
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Within budget: " .. spent
  return hs
end

hs.status = "Progressing"
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
else
  hs.message = "Waiting for the first consumption sync"
end
return hs
