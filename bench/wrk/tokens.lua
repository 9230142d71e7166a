-- POSTs one single-use token per request: the body is BODY with "{token}" replaced by the next
-- line of TOKENS (a file), each thread taking its own share of the lines. With RATE set (requests
-- per second, all threads together), each request takes its thread's next slot of a fixed
-- schedule, for latency at a given load rather than peak throughput: a connection that waited
-- long for its response does not push the schedule back, so the rate holds as long as a
-- connection is free for each slot (a fixed pause per connection would slow down with the
-- server and measure a lighter load than asked).
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

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
  local rate = tonumber(os.getenv("RATE") or "0")
  -- Milliseconds between this thread's slots; 0 sends as fast as responses come back.
  period = rate > 0 and stride * 1000 / rate or 0
  last_slot = nil
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
  if period == 0 then
    return 0
  end
  local now = now_ms()
  -- A slot already past is taken now; missed slots are not made up with a burst.
  last_slot = last_slot and math.max(last_slot + period, now) or now
  return math.floor(last_slot - now)
end

function done(summary, latency, requests)
  local statuses = summary.errors.status
  io.write(string.format("non2xx=%d\n", statuses))
end
