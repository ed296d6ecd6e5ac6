// Router: polar-sim's route table lookup. Routes are (method, pattern) pairs
// whose pattern segments are literals or "{}" (one non-empty path segment,
// handed to the handler as a parameter), e.g.
// "/v1/checkouts/client/{}/confirm". It answers which route a request names, or
// why none does: another method on a known path (405 with Allow), or the same
// path with or without its trailing slash (Starlette's redirect_slashes, 307).
//
// Add() only before use; Find() and SlashRedirect() are const and run on any
// thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace polar::sim {

class Router {
 public:
  struct Match {
    int id = -1;  // -1: no route of this method has this path
    std::vector<std::string> params;
    bool path_known = false;  // some route of another method has this path
    std::string allow;        // those methods, ", "-separated
  };

  // Earlier routes win: list "/v1/checkouts/client/{}" before
  // "/v1/checkouts/{}".
  void Add(int id, std::string method, std::string_view pattern);
  Match Find(std::string_view method, std::string_view path) const;
  // The other spelling of `path` (trailing slash added or dropped) when a route
  // of `method` has it.
  std::optional<std::string> SlashRedirect(std::string_view method,
                                           std::string_view path) const;

 private:
  struct Entry {
    int id;
    std::string method;
    std::vector<std::string> segments;
  };
  static bool Matches(const Entry& e,
                      const std::vector<std::string_view>& parts,
                      std::vector<std::string>* params);
  std::vector<Entry> entries_;
};

// "/a/b/" -> {"a", "b", ""}
std::vector<std::string_view> SplitPath(std::string_view path);

}  // namespace polar::sim
