// The listeners under attack: each attack on polar-loadd's two listeners (the
// webhook receiver and the metrics listener) reproduced on loopback, bounded
// in count and time, while a witness keeps sending validly signed webhook
// deliveries and Prometheus-style scrapes from 127.0.0.1 and the daemon runs
// an ingest scenario at 100/s against polar-sim. Each test asserts that the
// witness's deliveries and scrapes keep succeeding within their normal
// latency, that the schedule holds (no arrival dropped, 95% within 50 ms of
// their time, a mean lag under 10 ms), and that every refusal is counted
// (polar_loadd_http_*_total, polar_loadd_webhook_deliveries_total,
// polar_loadd_control_actions_total). docs/reliability.md has the table of
// attacks with the figures these tests print ("listener attack: ...").
//
// Attackers connect from other loopback addresses (127.0.0.10 and up; all of
// 127.0.0.0/8 is local on Linux) so the per-IP limit applies to them and not
// to the witness, as on the internet, where an attacker and Polar's senders
// have different addresses.
//
// Raw sockets throughout: the attacks need bytes no HTTP library sends.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/daemons.h"
#include "tests/support/process.h"

namespace polar::listeners_e2e {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr const char* kSecret =
    "whsec_bGlzdGVuZXJzLXVuZGVyLWF0dGFjay1wb2xhci1sb2FkZC10ZXN0";
constexpr const char* kControlToken = "control-token-listeners-e2e-0123";

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

int64_t WallSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Sign(const std::string& id, const std::string& ts,
                 const std::string& body) {
  const std::string msg = id + "." + ts + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret, static_cast<int>(strlen(kSecret)),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac,
       &len);
  unsigned char b64[128];
  const int n = EVP_EncodeBlock(b64, mac, static_cast<int>(len));
  return "v1," + std::string(reinterpret_cast<char*>(b64), n);
}

// A webhook delivery as Polar sends it (raw format), signed with kSecret.
std::string SignedDelivery(const std::string& id, int port,
                           const std::string& path = "/webhooks/polar") {
  const std::string ts = std::to_string(WallSeconds());
  const std::string body =
      json{{"type", "checkout.created"},
           {"timestamp", "2026-08-22T10:00:00.000000Z"},
           {"data", {{"id", "c-" + id}, {"status", "open"}}}}
          .dump();
  return fmt::format(
      "POST {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: "
      "application/json\r\nwebhook-id: {}\r\nwebhook-timestamp: {}\r\n"
      "webhook-signature: {}\r\nContent-Length: {}\r\nConnection: "
      "close\r\n\r\n{}",
      path, port, id, ts, Sign(id, ts, body), body.size(), body);
}

// ---- Raw sockets -----------------------------------------------------------

// Raises this process's soft descriptor limit to its hard limit (the 5,000
// idle connections need more than the usual 1,024).
void RaiseFdLimit() {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
}

std::size_t FdLimit() {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  return r.rlim_cur;
}

// A TCP connection from `source` (a 127.0.0.0/8 address) to 127.0.0.1:port,
// non-blocking; the connect may still be in progress. -1 on failure.
int Dial(const std::string& source, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 &&
       errno != EINPROGRESS)) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WaitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// Sends all of `data` before `deadline`; false if the peer closed or time ran
// out.
bool SendAll(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR || errno == ENOTCONN)) {
      if (!WaitFd(fd, POLLOUT, deadline)) return false;
      continue;
    }
    return false;
  }
  return true;
}

// One HTTP response as read off a socket.
struct Reply {
  int status = 0;            // 0: none before the deadline or the close
  std::vector<int> interim;  // 1xx statuses seen first (100 Continue)
  std::string head;          // the final response's head
  std::string body;
  bool closed = false;  // the server closed the connection after it
  double ms = 0;        // from the call to the complete response
};

std::string HeadValue(const std::string& head, std::string name) {
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(c));
  for (char& c : name) c = static_cast<char>(std::tolower(c));
  const auto at = lower.find("\r\n" + name + ":");
  if (at == std::string::npos) return "";
  auto start = at + name.size() + 3;
  while (start < head.size() && head[start] == ' ') ++start;
  return head.substr(start, head.find("\r\n", start) - start);
}

// Reads one response (after any 1xx) until its Content-Length is complete,
// then waits up to `close_wait` to see whether the server closes.
Reply ReadReply(int fd, Clock::time_point deadline,
                std::chrono::milliseconds close_wait = 0ms) {
  const auto start = Clock::now();
  Reply r;
  std::string buf;
  char chunk[16384];
  bool eof = false;
  for (;;) {
    const auto end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      const int status = buf.size() > 12 && buf.rfind("HTTP/1.", 0) == 0
                             ? std::atoi(buf.substr(9, 3).c_str())
                             : -1;
      if (status >= 100 && status < 200) {
        r.interim.push_back(status);
        buf.erase(0, end + 4);
        continue;
      }
      const std::string head = buf.substr(0, end + 4);
      const std::string cl = HeadValue(head, "content-length");
      const std::size_t want = cl.empty() ? 0 : std::stoul(cl);
      if (buf.size() >= end + 4 + want || (eof && cl.empty())) {
        r.status = status;
        r.head = head;
        r.body = buf.substr(end + 4, want);
        r.ms = Ms(Clock::now() - start);
        break;
      }
    }
    if (eof || !WaitFd(fd, POLLIN, deadline)) return r;
    const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf.append(chunk, static_cast<std::size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      eof = true;
      r.closed = true;
    }
  }
  if (!r.closed && close_wait.count() > 0 &&
      WaitFd(fd, POLLIN, Clock::now() + close_wait)) {
    const ssize_t n = recv(fd, chunk, sizeof chunk, MSG_PEEK);
    r.closed = n == 0 || (n < 0 && errno != EAGAIN);
  }
  return r;
}

// Whether the server has closed `fd` (EOF or reset), without blocking.
bool PeerClosed(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return true;
  char c;
  const ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN);
}

// One request on a fresh connection from `source`: the whole exchange.
Reply Exchange(int port, const std::string& request,
               std::chrono::milliseconds timeout = 3s,
               const std::string& source = "127.0.0.1") {
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  Reply r;
  const int fd = Dial(source, port);
  if (fd < 0) return r;
  if (WaitFd(fd, POLLOUT, deadline) && SendAll(fd, request, deadline)) {
    r = ReadReply(fd, deadline, 300ms);
  }
  r.ms = Ms(Clock::now() - start);
  close(fd);
  return r;
}

std::string Get(int port, const std::string& path,
                const std::string& host = "") {
  return fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                     path,
                     host.empty() ? fmt::format("127.0.0.1:{}", port) : host);
}

// "127.0.0.X" for attacker number i (10 connections per address unless told
// otherwise), from 127.0.0.10 on.
std::string AttackerAddress(std::size_t i, std::size_t per_address = 10) {
  const std::size_t n = 10 + i / per_address;
  return fmt::format("127.0.{}.{}", n / 250, n % 250 + 1);
}

// ---- The daemon and the witness ---------------------------------------------

struct Daemons {
  testing::Sim sim;
  std::unique_ptr<testing::Loadd> loadd;
  int metrics_port = 0;
  int webhook_port = 0;
};

Daemons Start(const std::string& metrics_extra = "") {
  Daemons d{testing::StartSim(), nullptr};
  const std::string config =
      fmt::format(R"(
[target]
base_url = "{}"

[metrics]
listen = "127.0.0.1:0"
{}

[control]
token = "{}"

[scenarios.ingest]
type = "event_ingestion"
rate = "{}/s"
batch_size = 1

[webhooks]
listen = "127.0.0.1:0"
secret = "{}"
)",
                  d.sim.base_url(), metrics_extra, kControlToken,
                  100 * testing::RateScale(), kSecret);
  d.loadd = std::make_unique<testing::Loadd>(config, d.sim.token());
  d.loadd->WaitListening(15s);
  auto err = d.loadd->process().WaitForStderr("/webhooks/polar", 10s);
  std::smatch m;
  static const std::regex webhook_re(
      "http://127\\.0\\.0\\.1:([0-9]+)/webhooks/polar");
  if (!err || !std::regex_search(*err, m, webhook_re))
    throw std::runtime_error("no webhook URL in: " +
                             d.loadd->process().Stderr());
  d.webhook_port = std::stoi(m[1].str());
  const std::string base = d.loadd->BaseUrl();
  d.metrics_port = std::stoi(base.substr(base.rfind(':') + 1));
  return d;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i =
      static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  return v[i];
}

// From 127.0.0.1, what Polar and Prometheus do: a signed delivery every
// 100 ms on a new connection, and a scrape of /metrics every 500 ms, each
// with a 2 s timeout. Records every latency and failure.
class Witness {
 public:
  Witness(int webhook_port, int metrics_port)
      : webhook_port_(webhook_port), metrics_port_(metrics_port) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Witness() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  struct Stats {
    std::vector<double> delivery_ms, scrape_ms;
    int delivery_failures = 0, scrape_failures = 0;
    std::vector<std::string> failures;  // the first few, for the message
    double max_utilisation = 0;
  };
  Stats stats() {
    std::lock_guard lock(mu_);
    return stats_;
  }
  // Forgets what was recorded so far (the warm-up).
  void Reset() {
    std::lock_guard lock(mu_);
    stats_ = Stats{};
  }

 private:
  void Run() {
    auto next_delivery = Clock::now();
    auto next_scrape = Clock::now();
    int n = 0;
    while (!stop_) {
      const auto now = Clock::now();
      if (now >= next_delivery) {
        next_delivery += 100ms;
        const std::string id = fmt::format("witness-{}-{}", getpid(), ++n);
        Reply r =
            Exchange(webhook_port_, SignedDelivery(id, webhook_port_), 2s);
        std::lock_guard lock(mu_);
        if (r.status == 200) {
          stats_.delivery_ms.push_back(r.ms);
        } else {
          ++stats_.delivery_failures;
          if (stats_.failures.size() < 5)
            stats_.failures.push_back(fmt::format(
                "delivery: status {} after {:.0f} ms", r.status, r.ms));
        }
      }
      if (now >= next_scrape) {
        next_scrape += 500ms;
        Reply r = Exchange(metrics_port_, Get(metrics_port_, "/metrics"), 2s);
        std::lock_guard lock(mu_);
        if (r.status == 200) {
          stats_.scrape_ms.push_back(r.ms);
          auto m = testing::ParseMetrics(r.body);
          auto it = m.find("polar_loadd_loop_utilisation");
          if (it != m.end())
            stats_.max_utilisation =
                std::max(stats_.max_utilisation, it->second);
        } else {
          ++stats_.scrape_failures;
          if (stats_.failures.size() < 5)
            stats_.failures.push_back(fmt::format(
                "scrape: status {} after {:.0f} ms", r.status, r.ms));
        }
      }
      std::this_thread::sleep_until(std::min(next_delivery, next_scrape));
    }
  }

  int webhook_port_, metrics_port_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  Stats stats_;
  std::thread thread_;
};

// The schedule's figures between two scrapes.
struct ScheduleWindow {
  double arrivals = 0, dropped = 0, mean_lag_ms = 0, late_share = 0;
};

ScheduleWindow Schedule(const std::map<std::string, double>& before,
                        const std::map<std::string, double>& after) {
  auto delta = [&](const std::string& name,
                   const std::vector<std::string>& labels = {}) {
    return testing::SumSeries(after, name, labels) -
           testing::SumSeries(before, name, labels);
  };
  ScheduleWindow w;
  w.arrivals = delta("polar_loadd_arrivals_total");
  w.dropped = delta("polar_loadd_arrivals_dropped_total");
  const double count = delta("polar_loadd_schedule_lag_seconds_count");
  if (count > 0) {
    w.mean_lag_ms =
        1000 * delta("polar_loadd_schedule_lag_seconds_sum") / count;
    w.late_share =
        1 - delta("polar_loadd_schedule_lag_seconds_bucket", {"le=\"0.05\""}) /
                count;
  }
  return w;
}

double Counter(const std::map<std::string, double>& m, const std::string& name,
               const std::vector<std::string>& labels) {
  return testing::SumSeries(m, name, labels);
}

double Refused(const std::map<std::string, double>& m,
               const std::string& family, const std::string& listener,
               const std::string& reason) {
  return Counter(
      m, "polar_loadd_http_" + family + "_total",
      {"listener=\"" + listener + "\"", "reason=\"" + reason + "\""});
}

// Runs `attack` while the witness watches, and checks what every attack must
// leave intact: deliveries and scrapes all succeed, none slower than 1 s and
// the median within 50 ms, and the schedule on time with nothing dropped.
// On time: 95% of arrivals within 50 ms and a mean lag under 10 ms. Not the
// 99% of the load-box rule: on the shared 2-core development VM (load average
// 13) an idle daemon saw 2% of its arrivals more than 50 ms late and a mean
// of 4 ms. The attack that hurt the schedule was past both (the nested
// bodies, before: 5-35% late, 19-43 ms mean in two runs).
// Prints the figures for docs/reliability.md. Returns the scrapes before and
// after for the attack's own counters.
struct Outcome {
  std::map<std::string, double> before, after;
  Witness::Stats witness;
  ScheduleWindow schedule;
};

Outcome UnderAttack(Daemons& d, const std::string& name,
                    const std::function<void()>& attack) {
  Witness witness(d.webhook_port, d.metrics_port);
  std::this_thread::sleep_for(1s);  // warm-up: the baseline is normal
  witness.Reset();
  Outcome o;
  o.before = d.loadd->Scrape();
  const auto start = Clock::now();
  attack();
  // A quick attack is still watched for 3 s: whatever it broke shows there.
  std::this_thread::sleep_until(start + 3s);
  o.after = d.loadd->Scrape();
  witness.Stop();
  o.witness = witness.stats();
  o.schedule = Schedule(o.before, o.after);
  const auto& w = o.witness;
  const int deliveries =
      static_cast<int>(w.delivery_ms.size()) + w.delivery_failures;
  const int scrapes = static_cast<int>(w.scrape_ms.size()) + w.scrape_failures;
  std::printf(
      "listener attack: %s: deliveries %zu/%d ok (p50 %.1f ms, max %.1f ms), "
      "scrapes %zu/%d ok (p50 %.1f ms, max %.1f ms), loop utilisation max "
      "%.2f, schedule: %.0f arrivals, %.0f dropped, mean lag %.2f ms, %.1f%% "
      "over 50 ms\n",
      name.c_str(), w.delivery_ms.size(), deliveries,
      Percentile(w.delivery_ms, 0.5), Percentile(w.delivery_ms, 1),
      w.scrape_ms.size(), scrapes, Percentile(w.scrape_ms, 0.5),
      Percentile(w.scrape_ms, 1), w.max_utilisation, o.schedule.arrivals,
      o.schedule.dropped, o.schedule.mean_lag_ms, 100 * o.schedule.late_share);
  std::string failures;
  for (const auto& f : w.failures) failures += f + "; ";
  EXPECT_GT(deliveries, 5);
  EXPECT_EQ(w.delivery_failures, 0) << failures;
  EXPECT_EQ(w.scrape_failures, 0) << failures;
  EXPECT_LT(Percentile(w.delivery_ms, 1), 1000);
  EXPECT_LT(Percentile(w.delivery_ms, 0.5), 50);
  EXPECT_LT(Percentile(w.scrape_ms, 1), 1000);
  EXPECT_GT(o.schedule.arrivals, 0);
  EXPECT_EQ(o.schedule.dropped, 0);
  EXPECT_LT(o.schedule.mean_lag_ms, 10);
  EXPECT_LT(o.schedule.late_share, 0.05);
  return o;
}

void Stop(Daemons& d) {
  d.loadd->process().Signal(SIGTERM);
  EXPECT_EQ(d.loadd->process().Wait(15s), 0);
}

// Connections an attack holds, closed when it ends.
struct Sockets {
  std::vector<int> fds;
  ~Sockets() {
    for (int fd : fds)
      if (fd >= 0) close(fd);
  }
  std::size_t ClosedByPeer() const {
    std::size_t n = 0;
    for (int fd : fds) n += fd < 0 || PeerClosed(fd);
    return n;
  }
};

// ---- Connection exhaustion
// ----------------------------------------------------

TEST(ListenersUnderAttack,
     SlowlorisHeadsAreCutAtTheHeadDeadlineOnBothListeners) {
  RaiseFdLimit();
  Daemons d = Start();
  constexpr std::size_t kPerListener = 300;
  Sockets webhook, metrics;
  Outcome o = UnderAttack(d, "300 slowloris connections on each listener", [&] {
    // 300 per listener from 30 addresses (10 each: under the per-IP limit,
    // so the head deadline, not the per-IP limit, is what cuts them).
    for (std::size_t i = 0; i < kPerListener; ++i) {
      webhook.fds.push_back(Dial(AttackerAddress(i), d.webhook_port));
      metrics.fds.push_back(Dial(AttackerAddress(i), d.metrics_port));
    }
    // One header byte per second per connection, for 13 s.
    const std::string head =
        "POST /webhooks/polar HTTP/1.1\r\nHost: x\r\nX-Slow: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const auto start = Clock::now();
    for (std::size_t second = 0; second < 13; ++second) {
      for (auto* s : {&webhook, &metrics}) {
        for (int& fd : s->fds) {
          if (fd < 0) continue;
          if (send(fd, &head[second % head.size()], 1, MSG_NOSIGNAL) < 0 &&
              errno != EAGAIN && errno != ENOTCONN) {
            close(fd);
            fd = -1;
          }
        }
      }
      std::this_thread::sleep_until(start + (second + 1) * 1s);
    }
  });
  const std::size_t cut = webhook.ClosedByPeer() + metrics.ClosedByPeer();
  std::printf("listener attack: slowloris: %zu of %zu connections cut\n", cut,
              2 * kPerListener);
  EXPECT_EQ(cut, 2 * kPerListener);
  // Each cut once: at the head deadline, or evicted for a newer connection
  // when the listener was full (the metrics listener's cap is 128).
  for (const char* listener : {"webhooks", "metrics"}) {
    double cut_counted = 0;
    for (const char* reason : {"head_timeout", "evicted"}) {
      cut_counted += Refused(o.after, "connections_dropped", listener, reason) -
                     Refused(o.before, "connections_dropped", listener, reason);
    }
    EXPECT_EQ(cut_counted, kPerListener) << listener;
  }
  EXPECT_EQ(Refused(o.after, "connections_dropped", "webhooks", "evicted") -
                Refused(o.before, "connections_dropped", "webhooks", "evicted"),
            0);
  Stop(d);
}

TEST(ListenersUnderAttack, FiveThousandIdleConnectionsEvictTheOldestNotTheNew) {
  RaiseFdLimit();
  ASSERT_GE(FdLimit(), 6000u) << "raise the hard limit of open files";
  Daemons d = Start();
  constexpr std::size_t kIdle = 5000;
  constexpr std::size_t kOneAddress = 200;
  Sockets idle, one;
  Outcome o =
      UnderAttack(d, "5,000 idle connections + 200 from one address", [&] {
        // 5,000 from 100 addresses (50 each), 500 per 100 ms: far over the cap.
        for (std::size_t i = 0; i < kIdle; ++i) {
          idle.fds.push_back(Dial(AttackerAddress(i, 50), d.webhook_port));
          if (i % 500 == 499) std::this_thread::sleep_for(100ms);
        }
        std::this_thread::sleep_for(1s);
        // Then 200 from one address: the per-IP limit keeps 64, refuses the
        // rest.
        for (std::size_t i = 0; i < kOneAddress; ++i)
          one.fds.push_back(Dial("127.0.0.5", d.webhook_port));
        std::this_thread::sleep_for(2s);
      });
  const double per_ip =
      Refused(o.after, "connections_refused", "webhooks", "per_ip_limit") -
      Refused(o.before, "connections_refused", "webhooks", "per_ip_limit");
  const double evicted =
      Refused(o.after, "connections_dropped", "webhooks", "evicted") -
      Refused(o.before, "connections_dropped", "webhooks", "evicted");
  const double capped =
      Refused(o.after, "connections_refused", "webhooks", "connection_limit") -
      Refused(o.before, "connections_refused", "webhooks", "connection_limit");
  std::printf(
      "listener attack: idle: %zu of %zu from one address closed "
      "(per_ip_limit %.0f); %zu of %zu idle closed (evicted %.0f, refused at "
      "the cap %.0f)\n",
      one.ClosedByPeer(), kOneAddress, per_ip, idle.ClosedByPeer(), kIdle,
      evicted, capped);
  EXPECT_EQ(per_ip, kOneAddress - 64);
  EXPECT_EQ(one.ClosedByPeer(), kOneAddress - 64);
  // The cap is 512 on the webhook listener: everything beyond it was closed,
  // oldest first; nothing new was refused while idle ones could be evicted.
  EXPECT_GE(evicted, kIdle + 64 - 512);
  EXPECT_EQ(capped, 0);
  EXPECT_GE(idle.ClosedByPeer(), kIdle + 64 - 512);
  // The newest idle connections are the ones still open.
  std::size_t newest_open = 0;
  for (std::size_t i = kIdle - 100; i < kIdle; ++i)
    newest_open += !PeerClosed(idle.fds[i]);
  EXPECT_EQ(newest_open, 100u);
  EXPECT_LE(Counter(o.after, "polar_loadd_http_connections",
                    {"listener=\"webhooks\""}),
            512);
  Stop(d);
}

TEST(ListenersUnderAttack, SlowBodiesAreCutByTheMinimumBodyRate) {
  RaiseFdLimit();
  Daemons d = Start();
  constexpr std::size_t kSlow = 260;
  Sockets slow;
  Outcome o = UnderAttack(d, "260 slow bodies (1 byte / 5 s)", [&] {
    const auto start = Clock::now();
    for (std::size_t i = 0; i < kSlow; ++i) {
      int fd = Dial(AttackerAddress(i), d.webhook_port);
      const std::string id = fmt::format("slow-{}", i);
      const std::string head = fmt::format(
          "POST /webhooks/polar HTTP/1.1\r\nHost: x\r\nwebhook-id: {}\r\n"
          "webhook-timestamp: {}\r\nwebhook-signature: v1,AAAA\r\n"
          "Content-Length: 100000\r\n\r\n{{",
          id, WallSeconds());
      if (fd >= 0 &&
          !(WaitFd(fd, POLLOUT, start + 2s) && SendAll(fd, head, start + 2s))) {
        close(fd);
        fd = -1;
      }
      slow.fds.push_back(fd);
    }
    for (int round = 1; round <= 3; ++round) {
      std::this_thread::sleep_until(start + round * 5s);
      for (int& fd : slow.fds) {
        if (fd >= 0 && send(fd, "[", 1, MSG_NOSIGNAL) < 0) {
          close(fd);
          fd = -1;
        }
      }
    }
  });
  const std::size_t cut = slow.ClosedByPeer();
  std::printf("listener attack: slow bodies: %zu of %zu cut\n", cut, kSlow);
  EXPECT_EQ(cut, kSlow);
  EXPECT_EQ(
      Refused(o.after, "connections_dropped", "webhooks", "body_timeout") -
          Refused(o.before, "connections_dropped", "webhooks", "body_timeout"),
      kSlow);
  Stop(d);
}

// ---- Work before authentication
// ----------------------------------------------

TEST(ListenersUnderAttack,
     UnsignedNestedBodiesCostOnlyAnHmacAndLeaveTheLoopFree) {
  Daemons d = Start();
  // 250 KB of balanced nesting, with a fresh id and timestamp and a
  // well-formed but wrong signature: the most expensive unauthenticated
  // request there is.
  const std::string body =
      std::string(125'000, '[') + std::string(125'000, ']');
  std::atomic<int> sent{0}, refused{0}, other{0};
  Outcome o = UnderAttack(d, "250 KB unsigned nested bodies, 4 clients", [&] {
    std::vector<std::thread> clients;
    const auto end = Clock::now() + 10s;
    for (int c = 0; c < 4; ++c) {
      clients.emplace_back([&, c] {
        int n = 0;
        while (Clock::now() < end) {
          const std::string request = fmt::format(
              "POST /webhooks/polar HTTP/1.1\r\nHost: x\r\nwebhook-id: "
              "nest-{}-{}\r\nwebhook-timestamp: {}\r\nwebhook-signature: "
              "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=\r\n"
              "Content-Length: {}\r\nConnection: close\r\n\r\n",
              c, ++n, WallSeconds(), body.size());
          Reply r = Exchange(d.webhook_port, request + body, 5s,
                             AttackerAddress(static_cast<std::size_t>(c)));
          ++sent;
          (r.status == 401 ? refused : other)++;
        }
      });
    }
    for (auto& t : clients) t.join();
  });
  std::printf("listener attack: nested bodies: %d sent, %d refused 401\n",
              sent.load(), refused.load());
  EXPECT_GT(sent.load(), 40);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(Counter(o.after, "polar_loadd_webhook_deliveries_total",
                    {"verdict=\"bad_signature\""}) -
                Counter(o.before, "polar_loadd_webhook_deliveries_total",
                        {"verdict=\"bad_signature\""}),
            refused.load());
  // An HMAC over 250 KB is well under a millisecond; parsing it as JSON
  // first pushed the mean schedule lag to 19-43 ms here.
  EXPECT_LT(o.schedule.mean_lag_ms, 5);
  Stop(d);
}

TEST(ListenersUnderAttack, OversizedBodiesAreRefusedFromTheirContentLength) {
  Daemons d = Start();
  Reply declared, expect, control, control_authorised;
  // Body bytes the client got into the connection by the time the answer
  // came (the kernel's buffers take a few MB that nobody reads).
  std::atomic<std::size_t> declared_sent{0};
  std::size_t declared_sent_at_answer = 0;
  Outcome o =
      UnderAttack(d, "50 MB, 1 GB with 100-continue, 2 MB control", [&] {
        // A declared 50 MB body, streamed as fast as the server takes it.
        {
          const auto start = Clock::now();
          int fd = Dial("127.0.0.20", d.webhook_port);
          ASSERT_GE(fd, 0);
          WaitFd(fd, POLLOUT, start + 2s);
          const std::string head = fmt::format(
              "POST /webhooks/polar HTTP/1.1\r\nHost: x\r\nwebhook-id: big\r\n"
              "webhook-timestamp: {}\r\nwebhook-signature: v1,AAAA\r\n"
              "Content-Length: {}\r\n\r\n",
              WallSeconds(), 50 << 20);
          SendAll(fd, head, start + 2s);
          const std::string chunk(64 << 10, 'x');
          std::atomic<bool> answered{false};
          std::thread writer([&, fd, start] {
            for (int i = 0; i < 800 && !answered; ++i) {
              if (!SendAll(fd, chunk, start + 20s)) break;
              declared_sent += chunk.size();
            }
          });
          declared = ReadReply(fd, start + 20s);
          declared.ms = Ms(Clock::now() - start);
          declared_sent_at_answer = declared_sent;
          answered = true;
          shutdown(fd, SHUT_RDWR);
          writer.join();
          close(fd);
        }
        // Expect: 100-continue with 1 GB: only the head is sent; the answer
        // must be the refusal, not "100 Continue".
        expect = Exchange(
            d.webhook_port,
            fmt::format(
                "POST /webhooks/polar HTTP/1.1\r\nHost: x\r\nwebhook-id: "
                "gig\r\nwebhook-timestamp: {}\r\nwebhook-signature: "
                "v1,AAAA\r\nExpect: 100-continue\r\nContent-Length: "
                "1073741824\r\n\r\n",
                WallSeconds()),
            5s, "127.0.0.21");
        // 2 MB on a control route: head only, no token; then with the token.
        const std::string control_head =
            "POST /api/scenarios/ingest/burst HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 2097152\r\n";
        control =
            Exchange(d.metrics_port, control_head + "\r\n", 5s, "127.0.0.22");
        control_authorised = Exchange(d.metrics_port,
                                      control_head + "Authorization: Bearer " +
                                          kControlToken + "\r\n\r\n",
                                      5s, "127.0.0.22");
      });
  std::printf(
      "listener attack: declared 50 MB: %d after %.1f ms, %.1f MB sent by "
      "then; 1 GB with Expect: %d after %.1f ms (%zu interim); 2 MB control "
      "without token: %d after %.1f ms, with token: %d after %.1f ms\n",
      declared.status, declared.ms,
      static_cast<double>(declared_sent_at_answer) / 1e6, expect.status,
      expect.ms, expect.interim.size(), control.status, control.ms,
      control_authorised.status, control_authorised.ms);
  EXPECT_EQ(declared.status, 413);
  EXPECT_LT(declared.ms, 1000);
  // Refused on the declared length: far less than the 50 MB went out.
  EXPECT_LT(declared_sent_at_answer, 16u << 20);
  EXPECT_EQ(expect.status, 413);
  EXPECT_TRUE(expect.interim.empty()) << "100 Continue for a refused body";
  EXPECT_LT(expect.ms, 1000);
  EXPECT_EQ(control.status, 401);
  EXPECT_LT(control.ms, 1000);
  EXPECT_EQ(control_authorised.status, 413);
  EXPECT_LT(control_authorised.ms, 1000);
  EXPECT_EQ(Counter(o.after, "polar_loadd_webhook_deliveries_total",
                    {"verdict=\"malformed\""}) -
                Counter(o.before, "polar_loadd_webhook_deliveries_total",
                        {"verdict=\"malformed\""}),
            2);
  EXPECT_EQ(Counter(o.after, "polar_loadd_control_actions_total",
                    {"result=\"unauthorized\""}) -
                Counter(o.before, "polar_loadd_control_actions_total",
                        {"result=\"unauthorized\""}),
            1);
  EXPECT_EQ(
      Refused(o.after, "requests_refused", "metrics", "body_too_large") -
          Refused(o.before, "requests_refused", "metrics", "body_too_large"),
      1);
  Stop(d);
}

// ---- Strict framing -------------------------------------------------------

TEST(ListenersUnderAttack, AmbiguousFramingAndHiddenPathsAreRefusedNotGuessed) {
  Daemons d = Start();
  struct Case {
    std::string name;
    int port;
    std::string request;
    int status;
    std::string reason;  // polar_loadd_http_requests_refused_total
  };
  std::vector<Case> cases;
  const int wp = d.webhook_port, mp = d.metrics_port;
  // Smuggled inside a body: a control request with the valid token. If any
  // framing case let it through, the scenario would pause.
  const std::string smuggled = fmt::format(
      "POST /api/scenarios/ingest/pause HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Authorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
      kControlToken);
  cases.push_back({"two different Content-Length", mp,
                   fmt::format("POST /api/scenarios/ingest/resume HTTP/1.1\r\n"
                               "Host: 127.0.0.1\r\nContent-Length: 0\r\n"
                               "Content-Length: {}\r\n\r\n{}",
                               smuggled.size(), smuggled),
                   400, "bad_framing"});
  cases.push_back({"Content-Length with Transfer-Encoding: chunked", mp,
                   fmt::format("POST /api/scenarios/ingest/resume HTTP/1.1\r\n"
                               "Host: 127.0.0.1\r\nContent-Length: {}\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{}",
                               5 + smuggled.size(), smuggled),
                   400, "bad_framing"});
  cases.push_back({"Transfer-Encoding: xchunked", wp,
                   "POST /webhooks/polar HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                   501, "transfer_coding"});
  cases.push_back({"Transfer-Encoding: gzip, chunked", wp,
                   "POST /webhooks/polar HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                   501, "transfer_coding"});
  cases.push_back({"a folded header line", wp,
                   "POST /webhooks/polar HTTP/1.1\r\nHost: x\r\nX-A: a\r\n"
                   " folded\r\nContent-Length: 0\r\n\r\n",
                   400, "bad_request"});
  cases.push_back({"a space before the colon", wp,
                   "POST /webhooks/polar HTTP/1.1\r\nHost: x\r\n"
                   "Content-Length : 0\r\n\r\n",
                   400, "bad_request"});
  {
    std::string delivery = SignedDelivery("nul-path", wp);
    delivery.replace(delivery.find("/webhooks/polar"), 15,
                     "/webhooks/polar%00");
    cases.push_back(
        {"/webhooks/polar%00 (signed)", wp, delivery, 400, "bad_target"});
  }
  {
    std::string delivery = SignedDelivery("ctl-path", wp);
    delivery.replace(delivery.find("/webhooks/polar"), 15,
                     "/webhooks/polar%0d%0aX:");
    cases.push_back(
        {"/webhooks/polar%0d%0a (signed)", wp, delivery, 400, "bad_target"});
  }
  cases.push_back({"a raw control byte in the path", mp,
                   "GET /metrics\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400,
                   "bad_target"});
  {
    std::string delivery = SignedDelivery("dup-id", wp);
    delivery.insert(delivery.find("webhook-id:"), "webhook-id: other-id\r\n");
    cases.push_back({"a duplicated webhook-id (signed)", wp, delivery, 400,
                     "duplicate_header"});
  }
  std::vector<Reply> replies(cases.size());
  Outcome o = UnderAttack(d, "framing, paths, duplicate headers", [&] {
    for (std::size_t i = 0; i < cases.size(); ++i)
      replies[i] = Exchange(cases[i].port, cases[i].request, 5s, "127.0.0.30");
  });
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const std::string listener = c.port == wp ? "webhooks" : "metrics";
    std::printf("listener attack: %s: %d after %.1f ms%s\n", c.name.c_str(),
                replies[i].status, replies[i].ms,
                replies[i].closed ? ", connection closed" : "");
    EXPECT_EQ(replies[i].status, c.status) << c.name;
    EXPECT_TRUE(replies[i].closed) << c.name;
    EXPECT_LT(replies[i].ms, 1000) << c.name;
  }
  std::map<std::pair<std::string, std::string>, double> want;
  for (const Case& c : cases)
    want[{c.port == wp ? "webhooks" : "metrics", c.reason}] += 1;
  for (const auto& [key, n] : want) {
    EXPECT_EQ(Refused(o.after, "requests_refused", key.first, key.second) -
                  Refused(o.before, "requests_refused", key.first, key.second),
              n)
        << key.first << " " << key.second;
  }
  // Nothing smuggled ran, and no refused delivery was judged.
  EXPECT_EQ(
      Counter(o.after, "polar_loadd_scenario_paused", {"scenario=\"ingest\""}),
      0);
  EXPECT_EQ(Counter(o.after, "polar_loadd_control_actions_total", {}), 0);
  for (const char* verdict : {"malformed", "bad_signature", "stale", "replayed",
                              "duplicate", "ignored"}) {
    const std::string v = fmt::format("verdict=\"{}\"", verdict);
    EXPECT_EQ(
        Counter(o.after, "polar_loadd_webhook_deliveries_total", {v}) -
            Counter(o.before, "polar_loadd_webhook_deliveries_total", {v}),
        0)
        << verdict;
  }
  Stop(d);
}

// ---- DNS rebinding ----------------------------------------------------------

TEST(ListenersUnderAttack, ARebindingHostCannotReadTheMetricsListener) {
  Daemons d = Start("allowed_hosts = [\"loadbox-1.internal\"]");
  const int mp = d.metrics_port;
  std::vector<std::pair<std::string, Reply>> refused, allowed;
  Outcome o = UnderAttack(d, "DNS-rebinding Host on the metrics listener", [&] {
    for (const std::string path : {"/api/status", "/metrics", "/"}) {
      refused.emplace_back(
          path,
          Exchange(mp, Get(mp, path,
                           fmt::format("rebind.attacker.example:{}", mp))));
    }
    for (const std::string& host : std::vector<std::string>{
             fmt::format("127.0.0.1:{}", mp), fmt::format("localhost:{}", mp),
             fmt::format("loadbox-1.internal:{}", mp), "LOADBOX-1.INTERNAL.",
             fmt::format("[::1]:{}", mp)}) {
      allowed.emplace_back(host, Exchange(mp, Get(mp, "/api/status", host)));
    }
  });
  for (const auto& [path, r] : refused) {
    std::printf("listener attack: Host rebind.attacker.example, %s: %d\n",
                path.c_str(), r.status);
    EXPECT_EQ(r.status, 421) << path;
    EXPECT_EQ(r.body.find("polar_loadd"), std::string::npos) << path;
    EXPECT_EQ(r.body.find("scenarios"), std::string::npos) << path;
  }
  for (const auto& [host, r] : allowed) EXPECT_EQ(r.status, 200) << host;
  EXPECT_EQ(
      Refused(o.after, "requests_refused", "metrics", "host_not_allowed") -
          Refused(o.before, "requests_refused", "metrics", "host_not_allowed"),
      refused.size());
  Stop(d);
}

}  // namespace
}  // namespace polar::listeners_e2e
