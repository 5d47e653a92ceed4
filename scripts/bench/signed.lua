-- wrk script: replays pre-signed runner callbacks, one file per thread (see sign_events.py).
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  requests = {}
  for line in io.lines(args[1] .. "." .. tid) do
    local path, id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/json",
      ["webhook-id"] = id,
      ["webhook-timestamp"] = ts,
      ["webhook-signature"] = sig,
    }, body)
  end
  counter = 0
end

-- With PJ_BENCH_RATE set, each connection waits between requests so the whole run offers about
-- that many requests per second (latency is then measured at a fixed load, not at saturation).
-- wrk waits the delay after each response, so a typical service time (1.5 ms) is taken off it;
-- the req/s that wrk reports is the rate really offered.
local rate = tonumber(os.getenv("PJ_BENCH_RATE") or "")
local connections = tonumber(os.getenv("PJ_BENCH_CONNECTIONS") or "1")

function delay()
  if rate then
    return math.max(0, 1000 * connections / rate - 1.5)
  end
  return 0
end

function request()
  counter = counter + 1
  if counter > #requests then
    counter = 1
  end
  return requests[counter]
end
