-- Argo CD health of tenantdb.io NeonOrganization (Lua 5.1, Argo CD's).
--   Degraded     condition Ready=False: its API key does not work (revoked, wrong organisation)
--   Healthy      condition Ready=True (cordoned or full is said in the message, not a fault)
--   Progressing  anything else: the operator has not checked its key yet
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
local ready = nil
if status ~= nil then
  ready = find_condition(status, "Ready")
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the tenantdb operator to check its API key"
  return hs
end
if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = ready.message or "Its API key does not work"
  return hs
end
hs.status = "Healthy"
local message = tostring(status.projects or 0) .. " tenants"
if status.room ~= nil then
  message = message .. ", room for " .. tostring(status.room)
end
if obj.spec ~= nil and obj.spec.cordoned == true then
  message = message .. "; cordoned: no new tenants"
end
hs.message = message
return hs
