-- wrk script: POST /v1/events/ingest with batches of 7 events (Polar's Locust default,
-- LOAD_TEST_EVENT_BATCH_SIZE), each with a unique external_id so every event is inserted.
-- The token comes from the environment (POLAR_TOKEN); keep-alive is wrk's default.
local token = os.getenv("POLAR_TOKEN") or ""
-- Ids differ between wrk runs against one polar-sim (warm-up, then measurement): a repeated id is a
-- duplicate, which polar-sim answers without storing and which would flatter the figure.
local run_id = os.getenv("BENCH_RUN_ID") or tostring(os.time())
local names = { "generate.text", "generate.text", "generate.text", "generate.image" }
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  local events = {}
  for i = 1, 7 do
    counter = counter + 1
    events[i] = string.format(
      '{"name":"%s","external_customer_id":"loadtest-customer-%d","external_id":"bench-%s-%d-%d",'
        .. '"metadata":{"selectedMeterSlug":"v1:meter:pack","totalPrice":0.42}}',
      names[(counter % 4) + 1], counter % 20, run_id, thread_id, counter)
  end
  return wrk.format(nil, "/v1/events/ingest", nil, '{"events":[' .. table.concat(events, ",") .. ']}')
end

local non2xx = 0
function response(status, headers, body)
  if status ~= 200 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("requests/s: %.0f  errors(non-2xx/socket): %d/%d\n",
    summary.requests / (summary.duration / 1e6), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
