// Rng: a small, fast, seedable generator (xoshiro256**) for data generation.
//
// Value type; one per scenario, used only on the loop thread. Chosen over
// std::mt19937_64 because it is ~4x faster and its 32-byte state is cheap to
// copy, and because a fixed algorithm keeps generated data identical across
// standard libraries for the same seed.
#pragma once

#include <cstdint>

namespace polar {

class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, 1).
  double Uniform();
  // Uniform integer in [0, n); n > 0.
  uint64_t Below(uint64_t n);

 private:
  uint64_t s_[4];
};

}  // namespace polar
