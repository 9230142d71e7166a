-- Spreads requests over many tenants and clients: SPREAD is a file of "tenant authorization"
-- lines; each request picks one at random and asks PATH_SUFFIX under that tenant's issuer,
-- POSTing BODY with the client's credentials when BODY is set, GETting otherwise.
function init(args)
  entries = {}
  for line in io.lines(os.getenv("SPREAD")) do
    local tenant, auth = line:match("^(%S+) (.+)$")
    table.insert(entries, { tenant = tenant, auth = auth })
  end
  suffix = os.getenv("PATH_SUFFIX")
  body = os.getenv("BODY")
  if body == "" then body = nil end
  math.randomseed(os.time() + (id or 0))
end

function request()
  local e = entries[math.random(#entries)]
  local path = "/a/" .. e.tenant .. suffix
  if body then
    return wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = e.auth,
    }, body)
  end
  return wrk.format("GET", path)
end
