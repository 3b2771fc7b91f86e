-- wrk script of bench/run, used for both sides of the API row so both pay the same client
-- cost: counts, over all threads, the answers that have the expected status.
--   wrk ... -s bench/wrk.lua URL -- post 202 TOKEN BODYFILE   POST /v1/clusters, unique names
--   wrk ... -s bench/wrk.lua URL -- get 200                   GET the URL's path
-- BODYFILE holds a create request whose name is the placeholder @NAME@.
-- Prints "BENCH_OK <answers with the status> <requests> <seconds> <p50 ms> <p99 ms>" at the end.
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local mode, want, head, tail, prefix, hdrs, get_req
local n = 0
ok = 0

function init(args)
  mode = args[1]
  want = tonumber(args[2])
  if mode == "post" then
    local f = assert(io.open(args[4], "rb"))
    local b = f:read("*a")
    f:close()
    local i = assert(string.find(b, "@NAME@", 1, true), "no @NAME@ in " .. args[4])
    head, tail = string.sub(b, 1, i - 1), string.sub(b, i + 6)
    prefix = "api-t" .. tid .. "-"
    hdrs = { ["Authorization"] = "Bearer " .. args[3], ["Content-Type"] = "application/json" }
  else
    get_req = wrk.format("GET", wrk.path)
  end
end

function request()
  if mode == "post" then
    n = n + 1
    return wrk.format("POST", "/v1/clusters", hdrs, head .. prefix .. n .. tail)
  end
  return get_req
end

function response(status, headers, body)
  if status == want then
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + t:get("ok")
  end
  io.write(string.format("BENCH_OK %d %d %.6f %.3f %.3f\n", total, summary.requests,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
