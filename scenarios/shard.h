// Shard: which share of the load this instance runs when N copies of
// polar-loadd share one load plan with no coordinator (docs/operations.md,
// "Scaling out").
//
// A small value type, frozen in Config ([cluster] shard = "i/N", or
// POLAR_LOADD_SHARD); any thread may read it. Instance i of N runs 1/N of
// every scenario's rate (the runner scales the schedule) and takes the global
// arrival numbers g with g % N == i, so the union of the N instances is the
// arrival sequence one instance would produce at the full rate. Everything a
// scenario derives from arrival numbers (external_ids, probe ids) is therefore
// disjoint across shards by construction, whatever the run ids are; pools of
// names (checkout customer e-mails) are split the same way, index % N == i.
// Count 1 (the default) changes nothing: same seed, same sequence, same pool.
#pragma once

#include <cstdint>
#include <string>

namespace polar {

struct Shard {
  uint32_t index = 0;  // 0 .. count-1
  uint32_t count = 1;  // 1: not sharded

  bool operator==(const Shard&) const = default;
  bool sharded() const { return count > 1; }
  // "1/3"
  std::string ToString() const {
    return std::to_string(index) + "/" + std::to_string(count);
  }

  // The global arrival number of this shard's `local`-th arrival.
  uint64_t GlobalSequence(uint64_t local) const {
    return local * count + index;
  }
  // The seed of this shard's generators: independent streams per shard, so
  // Poisson gaps superpose to a Poisson process of the full rate (identical
  // streams would make N copies of one process) and funnels, customers and
  // names are not the same draw repeated N times. Unchanged when unsharded,
  // so a seed reproduces the same data as before sharding existed.
  uint64_t Seed(uint64_t seed) const {
    if (!sharded()) return seed;
    // SplitMix64 of (seed, index): a bijection per index, well mixed.
    uint64_t z =
        seed ^ ((static_cast<uint64_t>(index) + 1) * 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // The number of items of a pool [0, n) that belong to this shard (those
  // with item % count == index).
  uint64_t SliceSize(uint64_t n) const {
    return n > index ? (n - index + count - 1) / count : 0;
  }
  // The pool item of this shard's j-th slice entry (j < SliceSize(n)).
  uint64_t SliceItem(uint64_t j) const { return j * count + index; }
};

}  // namespace polar
