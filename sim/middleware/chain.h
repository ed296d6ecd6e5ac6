// The middleware chain: how one API request travels through polar-sim, in the
// order Polar's middleware stack runs (docs/polar-api.md §0):
//
//   count -> Polar-Version -> own routes (/_sim, /metrics) -> response headers
//   -> body length -> /api/v1 rewrite -> routing -> faults -> 404/405/307
//   -> rate limit -> authentication and scopes -> the route's handler
//
// Each stage is a Middleware: it may answer itself or call next(x) and change
// what comes back (OnFinal() for responses finished by deferred work). An
// Exchange carries what earlier stages learnt (the rewritten request, the
// route, the token) to later ones. Stages live in sim/middleware/stages.h; the
// route table and handlers in sim/routes.cc.
//
// Thread-safe: the chain and its stages are built once and then called
// concurrently from the HTTP threads; an Exchange belongs to one request.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sim/http/message.h"
#include "sim/middleware/auth.h"

namespace polar::sim {

// One entry of the route table.
struct Route {
  using Handler = std::function<SimResponse(
      const SimRequest&, const std::vector<std::string>& params)>;
  int id = 0;
  std::string name;  // Polar's operation id: fault and metric name
  std::string method;
  std::string pattern;
  bool needs_token = false;
  std::vector<std::string> scopes;  // any one of these
  Handler handler;
};

struct Exchange {
  explicit Exchange(const SimRequest& in) : original(in), request(&in) {}
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const SimRequest& original;
  const SimRequest* request;  // `original`, or `rewritten` after a rewrite
  SimRequest rewritten;
  const Route* route = nullptr;  // set by routing; null: no route
  int route_id = -1;             // for counting; the "unknown" id until routed
  std::vector<std::string> params;
  bool path_known = false;  // another method has this path
  std::string allow;
  const AccessToken* token = nullptr;
  Auth::Result auth = Auth::Result::kNone;
  bool counted = true;  // false for polar-sim's own routes
};

class Middleware;

// The rest of the chain after a stage; calling it runs the next stage.
class Next {
 public:
  Next(const std::vector<std::unique_ptr<Middleware>>* stages,
       std::size_t index, const std::function<SimResponse(Exchange&)>* last)
      : stages_(stages), index_(index), last_(last) {}
  SimResponse operator()(Exchange& x) const;

 private:
  const std::vector<std::unique_ptr<Middleware>>* stages_;
  std::size_t index_;
  const std::function<SimResponse(Exchange&)>* last_;
};

class Middleware {
 public:
  virtual ~Middleware() = default;
  virtual SimResponse Handle(Exchange& x, const Next& next) = 0;
};

class Chain {
 public:
  // `last` runs after every stage passed the request on.
  explicit Chain(std::function<SimResponse(Exchange&)> last)
      : last_(std::move(last)) {}
  void Add(std::unique_ptr<Middleware> stage) {
    stages_.push_back(std::move(stage));
  }
  SimResponse Run(Exchange& x) const { return Next(&stages_, 0, &last_)(x); }

 private:
  std::vector<std::unique_ptr<Middleware>> stages_;
  std::function<SimResponse(Exchange&)> last_;
};

inline SimResponse Next::operator()(Exchange& x) const {
  if (index_ == stages_->size()) return (*last_)(x);
  return (*stages_)[index_]->Handle(x, Next(stages_, index_ + 1, last_));
}

}  // namespace polar::sim
