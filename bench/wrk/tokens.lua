-- POSTs one single-use token per request: the body is BODY with "{token}" replaced by the next
-- line of TOKENS (a file), each thread taking its own share of the lines. With PACE_MS set,
-- each connection waits that long between requests (a fixed rate of connections × 1000 /
-- PACE_MS per second), for latency at a given load rather than peak throughput.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  local n = 0
  local stride = tonumber(os.getenv("THREADS") or "2")
  for line in io.lines(os.getenv("TOKENS")) do
    if n % stride == id then table.insert(tokens, line) end
    n = n + 1
  end
  next_token = 1
  body = os.getenv("BODY")
  pace = tonumber(os.getenv("PACE_MS") or "0")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = os.getenv("AUTH")
  used = 0
end

function request()
  local token = tokens[next_token]
  if token == nil then
    -- Out of tokens: count it, and send the last one again (it will be refused).
    token = tokens[#tokens]
  else
    next_token = next_token + 1
  end
  used = used + 1
  return wrk.format(nil, nil, nil, (body:gsub("{token}", token)))
end

function delay()
  return pace
end

function done(summary, latency, requests)
  local statuses = summary.errors.status
  io.write(string.format("non2xx=%d\n", statuses))
end
