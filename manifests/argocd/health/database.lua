-- Argo CD health of tenantdb.io GlobalDatabase and WorkspaceDatabase (Lua 5.1, Argo CD's).
--   Healthy      status.phase Ready and condition Ready=True
--   Suspended    over budget: phase Suspended, or Ready=False with reason BudgetExceeded
--   Degraded     phase Failed, or Ready=False with a reason retrying will not fix
--   Progressing  anything else: pending, provisioning, deleting, a stale status, a retry
local permanent = {
  InvalidSpec = true,
  NeonRejected = true,
  QuotaExceeded = true,
  DeleteFailed = true,
}

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

local function explain(condition, fallback)
  if condition == nil then
    return fallback
  end
  local text = condition.reason or ""
  if condition.message ~= nil and condition.message ~= "" then
    if text ~= "" then
      text = text .. ": "
    end
    text = text .. condition.message
  end
  if text == "" then
    return fallback
  end
  return text
end

local hs = {}
local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the tenantdb operator to pick it up"
  return hs
end

local phase = status.phase or "Pending"
local ready = find_condition(status, "Ready")
local generation = obj.metadata.generation

if obj.metadata.deletionTimestamp ~= nil or phase == "Deleting" then
  hs.status = "Progressing"
  hs.message = "Deleting: " .. explain(ready, "removing the Neon project")
  return hs
end

if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
  return hs
end

if phase == "Suspended" or (ready ~= nil and ready.status == "False" and ready.reason == "BudgetExceeded") then
  hs.status = "Suspended"
  hs.message = explain(find_condition(status, "BudgetExceeded") or ready, "Suspended: the owner's budget is exceeded")
  return hs
end

if phase == "Failed" or (ready ~= nil and ready.status == "False" and permanent[ready.reason]) then
  hs.status = "Degraded"
  hs.message = explain(ready, "Failed")
  return hs
end

if phase == "Ready" and ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = explain(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = phase .. ": " .. explain(ready, "waiting for the Neon project")
return hs
