#include "sim/options.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <functional>

namespace polar::sim {

const char* const kUsage = R"(usage: polar-sim [options]

A local stand-in for Polar's API (https://api.polar.sh) for load tests and demos:
checkouts, event ingestion and listing, webhooks, a background worker, faults.
Prints one JSON line on stdout when ready (address, token, seeded ids).

server:
  --listen HOST:PORT        address to serve on (default 127.0.0.1:8000; port 0 picks one)
  --admin-listen HOST:PORT  also serve /_sim/* and /metrics here, untouched by faults/outages
  --threads N               HTTP threads (default 2)
  --config FILE             TOML file with any of these settings (keys as the flags, with _)
seed:
  --seed N                  fixes the token, organization, products and customers (default 1)
  --customers N             seeded customers loadtest-customer-0..N-1 (default 20)
model:
  --time-scale F            multiplies Polar's schedules: webhook retry backoff (2 s·2^n),
                            FIFO guard, 15-min expiry sweep, rate-limit windows and blocks,
                            stream lifetime (default 1; tests use 0.001)
  --rate-limit MODE         off | sandbox | production: Polar's rules of that environment
                            (default off, as a local Polar)
  --replica-lag DIST        how far the read replica behind GET /v1/checkouts/ and
                            GET /v1/checkouts/{id} trails (default 0: no replica)
  --stream-lifetime D       a checkout stream ends with {"type": "reconnect"} after D of
                            Polar time (default 10m, scaled)
  --checkout-ttl D          checkout expiry (default 24h)
  --confirm-time DIST       how long confirm holds the checkout locked (default 0)
  --stripe-delay DIST       paid checkouts: confirm -> charge.succeeded (default 1s)
  --event-lag DIST          Tinybird's delay after tinybird.ingest (default 1s)
  --queue NAME=N            worker threads of a queue (high_priority, medium_priority,
                            low_priority, webhooks, tinybird; defaults 1,1,1,4,1)
  --job-time ACTOR=DIST     how long a job keeps its thread busy (default 0), e.g.
                            checkout.handle_free_success=lognormal:50ms,500ms
  --sse-ping D              checkout stream ping interval (default 15s)
webhooks:
  --allow-loopback-webhooks accept http(s)://127.0.0.1/localhost endpoint URLs (real Polar
                            refuses them; tests and the demo need them)
  --deliver-external-webhooks  also call non-loopback URLs (default: record a fake 200,
                            as Polar does in development)
  --webhook-timeout D       per attempt (default 10s)
  --max-webhook-endpoints N endpoints kept (default 100)
bounds:
  --max-checkouts N         (default 100000)    --max-events N      listable (default 100000)
  --max-event-ids N         dedup memory (default 1000000)
  --max-queued N            jobs per queue (default 100000)
faults at start (also at run time under /_sim/faults):
  --latency ROUTE=DIST      added latency; ROUTE is an operation id (events:ingest,
                            checkouts:client_confirm, ...) or *
  --error-ratio ROUTE=R[:STATUS]   answer R of requests with STATUS (default 500)
  --malformed-ratio ROUTE=R cut R of JSON bodies in half
  --slow-worker QUEUE=F[+D] job times × F (+ D); QUEUE may be *
  --stall D                 hold every response until D from start
  --outage MODE:D           refuse | reset for D from start
  --help                    print this help

DIST: 50ms | fixed:50ms | uniform:10ms,100ms | exp:50ms | normal:100ms,20ms |
      lognormal:MEDIAN,P99
)";

namespace {

using Setter = std::function<std::string(const std::string&, SimOptions*)>;

std::string Dur(const std::string& v, Duration* out) {
  return ParseDuration(v, out) ? "" : "not a duration (e.g. 250ms, 2s, 24h)";
}

std::string Dist(const std::string& v, Distribution* out) {
  std::string why;
  auto d = Distribution::Parse(v, &why);
  if (!d) return why;
  *out = *d;
  return "";
}

template <typename T>
std::string Int(const std::string& v, T* out, long long min, long long max) {
  try {
    std::size_t used = 0;
    long long n = std::stoll(v, &used);
    if (used != v.size() || n < min || n > max)
      return fmt::format("must be an integer from {} to {}", min, max);
    *out = static_cast<T>(n);
    return "";
  } catch (const std::exception&) {
    return "not an integer";
  }
}

std::string Double(const std::string& v, double* out, double min, double max) {
  try {
    std::size_t used = 0;
    double d = std::stod(v, &used);
    if (used != v.size() || !(d >= min && d <= max))
      return fmt::format("must be a number from {} to {}", min, max);
    *out = d;
    return "";
  } catch (const std::exception&) {
    return "not a number";
  }
}

std::string Bool(const std::string& v, bool* out) {
  if (v == "true" || v == "1" || v.empty()) {
    *out = true;
  } else if (v == "false" || v == "0") {
    *out = false;
  } else {
    return "must be true or false";
  }
  return "";
}

// "KEY=VALUE" for the map-like flags.
bool SplitPair(const std::string& v, std::string* key, std::string* value) {
  auto eq = v.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  *key = v.substr(0, eq);
  *value = v.substr(eq + 1);
  return true;
}

struct Flag {
  const char* name;  // without "--"; TOML key is the same with '_' for '-'
  bool boolean;
  Setter set;
};

const std::vector<Flag>& Flags() {
  static const std::vector<Flag> flags = {
      {"listen", false,
       [](auto& v, auto* o) {
         o->listen = v;
         return std::string();
       }},
      {"admin-listen", false,
       [](auto& v, auto* o) {
         o->admin_listen = v;
         return std::string();
       }},
      {"threads", false,
       [](auto& v, auto* o) { return Int(v, &o->threads, 1, 64); }},
      {"seed", false,
       [](auto& v, auto* o) {
         return Int(v, &o->seed, 0, 0x7fffffffffffffffLL);
       }},
      {"customers", false,
       [](auto& v, auto* o) { return Int(v, &o->customers, 0, 100000); }},
      {"time-scale", false,
       [](auto& v, auto* o) { return Double(v, &o->time_scale, 1e-6, 1000); }},
      {"rate-limit", false,
       [](auto& v, auto* o) {
         return ParseRateLimitMode(v, &o->rate_limit)
                    ? std::string()
                    : std::string("must be off, sandbox or production");
       }},
      {"checkout-ttl", false,
       [](auto& v, auto* o) { return Dur(v, &o->checkouts.ttl); }},
      {"confirm-time", false,
       [](auto& v, auto* o) { return Dist(v, &o->checkouts.confirm_time); }},
      {"stripe-delay", false,
       [](auto& v, auto* o) { return Dist(v, &o->checkouts.stripe_delay); }},
      {"event-lag", false,
       [](auto& v, auto* o) { return Dist(v, &o->events.visibility_lag); }},
      {"sse-ping", false,
       [](auto& v, auto* o) { return Dur(v, &o->checkouts.sse_ping); }},
      {"replica-lag", false,
       [](auto& v, auto* o) { return Dist(v, &o->checkouts.replica_lag); }},
      {"stream-lifetime", false,
       [](auto& v, auto* o) {
         std::string err = Dur(v, &o->checkouts.stream_lifetime);
         if (err.empty() && o->checkouts.stream_lifetime <= Duration::zero())
           err = "must be more than 0";
         return err;
       }},
      {"queue", false,
       [](auto& v, auto* o) {
         std::string name, n;
         if (!SplitPair(v, &name, &n))
           return std::string("expects NAME=THREADS");
         if (!o->worker.concurrency.count(name))
           return "unknown queue " + name +
                  " (high_priority, medium_priority, low_priority, webhooks, "
                  "tinybird)";
         return Int(n, &o->worker.concurrency[name], 1, 256);
       }},
      {"job-time", false,
       [](auto& v, auto* o) {
         std::string actor, spec;
         if (!SplitPair(v, &actor, &spec))
           return std::string("expects ACTOR=DIST");
         Distribution d;
         std::string err = Dist(spec, &d);
         if (err.empty()) o->worker.job_time[actor] = d;
         return err;
       }},
      {"allow-loopback-webhooks", true,
       [](auto& v, auto* o) { return Bool(v, &o->webhooks.allow_loopback); }},
      {"deliver-external-webhooks", true,
       [](auto& v, auto* o) { return Bool(v, &o->webhooks.deliver_external); }},
      {"webhook-timeout", false,
       [](auto& v, auto* o) { return Dur(v, &o->webhooks.timeout); }},
      {"max-webhook-endpoints", false,
       [](auto& v, auto* o) {
         return Int(v, &o->webhooks.max_endpoints, 1, 100'000);
       }},
      {"max-checkouts", false,
       [](auto& v, auto* o) {
         return Int(v, &o->checkouts.max_checkouts, 1, 100'000'000);
       }},
      {"max-events", false,
       [](auto& v, auto* o) {
         return Int(v, &o->events.max_stored_events, 1, 100'000'000);
       }},
      {"max-event-ids", false,
       [](auto& v, auto* o) {
         return Int(v, &o->events.max_remembered_ids, 1, 100'000'000);
       }},
      {"max-queued", false,
       [](auto& v, auto* o) {
         return Int(v, &o->worker.max_queued, 1, 100'000'000);
       }},
      {"latency", false,
       [](auto& v, auto* o) {
         std::string route, spec;
         if (!SplitPair(v, &route, &spec))
           return std::string("expects ROUTE=DIST");
         Distribution d;
         std::string err = Dist(spec, &d);
         if (err.empty()) o->faults.routes[route].latency = d;
         return err;
       }},
      {"error-ratio", false,
       [](auto& v, auto* o) {
         std::string route, spec;
         if (!SplitPair(v, &route, &spec))
           return std::string("expects ROUTE=RATIO[:STATUS]");
         RouteFaults& f = o->faults.routes[route];
         auto colon = spec.find(':');
         std::string err = Double(spec.substr(0, colon), &f.error_ratio, 0, 1);
         if (err.empty() && colon != std::string::npos)
           err = Int(spec.substr(colon + 1), &f.error_status, 400, 599);
         return err;
       }},
      {"malformed-ratio", false,
       [](auto& v, auto* o) {
         std::string route, spec;
         if (!SplitPair(v, &route, &spec))
           return std::string("expects ROUTE=RATIO");
         return Double(spec, &o->faults.routes[route].malformed_ratio, 0, 1);
       }},
      {"slow-worker", false,
       [](auto& v, auto* o) {
         std::string queue, spec;
         if (!SplitPair(v, &queue, &spec))
           return std::string("expects QUEUE=FACTOR[+DURATION]");
         WorkerFault& f = o->faults.worker[queue];
         auto plus = spec.find('+');
         std::string err = Double(spec.substr(0, plus), &f.factor, 0, 1e6);
         if (err.empty() && plus != std::string::npos)
           err = Dur(spec.substr(plus + 1), &f.add);
         return err;
       }},
      {"stall", false,
       [](auto& v, auto* o) {
         Duration d;
         std::string err = Dur(v, &d);
         if (err.empty()) o->stall = d;
         return err;
       }},
      {"outage", false,
       [](auto& v, auto* o) {
         std::pair<SimServer::Outage, Duration> out;
         if (!ParseOutage(v, &out))
           return std::string("expects refuse:DURATION or reset:DURATION");
         o->outage = out;
         return std::string();
       }},
  };
  return flags;
}

const Flag* FindFlag(const std::string& name) {
  for (const Flag& f : Flags())
    if (name == f.name) return &f;
  return nullptr;
}

std::string ScalarText(const toml::node& node) {
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto d = node.as_floating_point()) return fmt::format("{}", d->get());
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  return "";
}

json TomlToJson(const toml::node& node) {
  if (auto t = node.as_table()) {
    json j = json::object();
    for (const auto& [k, v] : *t) j[std::string(k.str())] = TomlToJson(v);
    return j;
  }
  if (auto a = node.as_array()) {
    json j = json::array();
    for (const auto& v : *a) j.push_back(TomlToJson(v));
    return j;
  }
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return i->get();
  if (auto d = node.as_floating_point()) return d->get();
  if (auto b = node.as_boolean()) return b->get();
  return nullptr;
}

void LoadToml(const std::string& path, SimOptions* o,
              std::vector<std::string>* errors) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    errors->push_back(fmt::format("{}:{}:{}: {}", path, e.source().begin.line,
                                  e.source().begin.column, e.description()));
    return;
  }
  auto where = [&](const toml::node& n, const std::string& key,
                   const std::string& msg) {
    errors->push_back(fmt::format("{}:{}:{}: {}: {}", path,
                                  n.source().begin.line,
                                  n.source().begin.column, key, msg));
  };
  for (const auto& [k, node] : root) {
    std::string key(k.str());
    if (key == "queues" || key == "job_times") {
      const toml::table* t = node.as_table();
      if (!t) {
        where(node, key, "must be a table");
        continue;
      }
      const Flag* flag = FindFlag(key == "queues" ? "queue" : "job-time");
      for (const auto& [name, value] : *t) {
        std::string err =
            flag->set(std::string(name.str()) + "=" + ScalarText(value), o);
        if (!err.empty())
          where(value, key + "." + std::string(name.str()), err);
      }
      continue;
    }
    if (key == "faults") {
      const toml::table* t = node.as_table();
      if (!t) {
        where(node, key, "must be a table");
        continue;
      }
      for (const auto& [fk, fv] : *t) {
        std::string fkey(fk.str());
        std::string full = "faults." + fkey;
        if (fkey == "stall" || fkey == "outage") {
          std::string err = FindFlag(fkey)->set(ScalarText(fv), o);
          if (!err.empty()) where(fv, full, err);
        } else if (fkey == "routes" || fkey == "worker") {
          const toml::table* sub = fv.as_table();
          if (!sub) {
            where(fv, full, "must be a table");
            continue;
          }
          for (const auto& [name, value] : *sub) {
            std::string err;
            std::string n(name.str());
            if (fkey == "routes") {
              RouteFaults f;
              if (ParseRouteFaults(TomlToJson(value), &f, &err))
                o->faults.routes[n] = f;
            } else {
              WorkerFault f;
              if (ParseWorkerFault(TomlToJson(value), &f, &err))
                o->faults.worker[n] = f;
            }
            if (!err.empty()) where(value, full + "." + n, err);
          }
        } else {
          where(fv, full, "unknown key (stall, outage, routes, worker)");
        }
      }
      continue;
    }
    std::string flag_name = key;
    for (char& c : flag_name)
      if (c == '_') c = '-';
    const Flag* flag = FindFlag(flag_name);
    if (!flag || flag_name == "config") {
      where(node, key, "unknown key");
      continue;
    }
    if (!node.is_value()) {
      where(node, key, "must be a value");
      continue;
    }
    std::string err = flag->set(ScalarText(node), o);
    if (!err.empty()) where(node, key, err);
  }
}

}  // namespace

bool ParseOptions(const std::vector<std::string>& args, SimOptions* o,
                  std::vector<std::string>* errors, bool* help) {
  *help = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return true;
    }
    if (arg.rfind("--", 0) != 0) {
      errors->push_back(arg + ": unexpected argument");
      continue;
    }
    std::string name = arg.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    if (name == "config") {
      if (!inline_value) {
        if (i + 1 >= args.size()) {
          errors->push_back("--config: needs a value");
          continue;
        }
        value = args[++i];
      }
      LoadToml(value, o, errors);
      continue;
    }
    const Flag* flag = FindFlag(name);
    if (!flag) {
      errors->push_back(arg + ": unknown option (see --help)");
      continue;
    }
    if (!inline_value && !flag->boolean) {
      if (i + 1 >= args.size()) {
        errors->push_back("--" + name + ": needs a value");
        continue;
      }
      value = args[++i];
    }
    std::string err = flag->set(value, o);
    if (!err.empty()) errors->push_back("--" + name + ": " + err);
  }
  // Derived settings.
  o->webhooks.scale = TimeScale(o->time_scale);
  o->checkouts.scale = TimeScale(o->time_scale);
  o->worker.seed = o->seed;
  return errors->empty();
}

}  // namespace polar::sim
