#include "sim/api/event_store.h"

#include <algorithm>

#include "sim/api/validation.h"

namespace polar::sim {
namespace {

bool MetadataMatches(const json& metadata, const std::string& key,
                     const std::vector<std::string>& values) {
  // Tinybird's JSONExtractString only extracts strings: a numeric or boolean
  // value never matches a metadata[key] filter.
  auto it = metadata.find(key);
  if (it == metadata.end() || !it->is_string()) return false;
  const auto& v = it->get_ref<const std::string&>();
  return std::find(values.begin(), values.end(), v) != values.end();
}

bool AnyOf(const std::vector<std::string>& wanted,
           const std::optional<std::string>& value) {
  if (wanted.empty()) return true;
  return value &&
         std::find(wanted.begin(), wanted.end(), *value) != wanted.end();
}

}  // namespace

DedupIndex::DedupIndex(std::size_t capacity)
    : shards_count_(capacity >= 16384 ? 16 : 1),
      // Hashes spread unevenly over shards (a standard deviation of ~250 ids
      // per shard at 1M): 5% headroom keeps any shard from evicting before
      // the whole index holds `capacity` ids.
      per_shard_(shards_count_ == 1 ? std::max<std::size_t>(1, capacity)
                                    : capacity / shards_count_ +
                                          capacity / shards_count_ / 20 + 64),
      shards_(new Shard[shards_count_]) {
  // Tables at most half full keep linear probes short.
  std::size_t slots = 1;
  while (slots < per_shard_ * 2) slots <<= 1;
  for (std::size_t i = 0; i < shards_count_; ++i) {
    shards_[i].slots.assign(slots, 0);
    shards_[i].ring.assign(per_shard_, 0);
  }
}

bool DedupIndex::Shard::Contains(uint64_t h) const {
  std::size_t mask = slots.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots[i] == 0) return false;
    if (slots[i] == h) return true;
  }
}

void DedupIndex::Shard::Add(uint64_t h) {
  std::size_t mask = slots.size() - 1;
  std::size_t i = h & mask;
  while (slots[i] != 0) i = (i + 1) & mask;
  slots[i] = h;
}

void DedupIndex::Shard::Remove(uint64_t h) {
  // Backward-shift deletion keeps probe chains intact without tombstones.
  std::size_t mask = slots.size() - 1;
  std::size_t i = h & mask;
  while (slots[i] != h) {
    if (slots[i] == 0) return;
    i = (i + 1) & mask;
  }
  std::size_t j = i;
  while (true) {
    slots[i] = 0;
    while (true) {
      j = (j + 1) & mask;
      if (slots[j] == 0) return;
      std::size_t home = slots[j] & mask;
      // Move slots[j] into the hole at i unless its home lies in (i, j].
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) break;
    }
    slots[i] = slots[j];
    i = j;
  }
}

std::vector<bool> DedupIndex::Insert(
    const std::vector<std::string>& external_ids) {
  std::vector<bool> fresh(external_ids.size(), true);
  for (std::size_t k = 0; k < external_ids.size(); ++k) {
    const std::string& id = external_ids[k];
    if (id.empty()) continue;  // NULL external_ids never collide
    uint64_t h = std::hash<std::string>{}(id);
    // Mix so shard and slot bits are independent; 0 marks an empty slot.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    if (h == 0) h = 1;
    Shard& shard = shards_[(h >> 59) % shards_count_];
    std::lock_guard lock(shard.mutex);
    if (shard.Contains(h)) {
      fresh[k] = false;
      continue;
    }
    if (shard.ring_size == per_shard_) {
      forgotten_.fetch_add(1, std::memory_order_relaxed);
      shard.Remove(shard.ring[shard.ring_head]);
      shard.ring_head = (shard.ring_head + 1) % per_shard_;
      --shard.ring_size;
    }
    shard.Add(h);
    shard.ring[(shard.ring_head + shard.ring_size) % per_shard_] = h;
    ++shard.ring_size;
  }
  return fresh;
}

int64_t DedupIndex::InsertBatch(const std::vector<std::string>& external_ids) {
  auto fresh = Insert(external_ids);
  return std::count(fresh.begin(), fresh.end(), true);
}

std::pair<uint64_t, uint64_t> EventStore::Append(
    std::vector<StoredEvent>& events) {
  std::unique_lock lock(mutex_);
  uint64_t first = first_seq_ + ring_.size();
  for (auto& e : events) ring_.push_back(std::move(e));
  while (ring_.size() > capacity_) {
    ring_.pop_front();
    ++first_seq_;
  }
  return {first, events.size()};
}

void EventStore::MarkVisible(uint64_t first, uint64_t count, SteadyTime at) {
  std::unique_lock lock(mutex_);
  for (uint64_t seq = std::max(first, first_seq_); seq < first + count; ++seq) {
    uint64_t index = seq - first_seq_;
    if (index >= ring_.size()) break;
    ring_[index].visible_at = at;
  }
}

std::pair<std::vector<StoredEvent>, int64_t> EventStore::List(
    const EventQuery& q, SteadyTime now) const {
  std::shared_lock lock(mutex_);
  std::vector<const StoredEvent*> hits;
  for (const StoredEvent& e : ring_) {
    if (e.visible_at > now) continue;
    if (!AnyOf(q.external_customer_ids, e.external_customer_id)) continue;
    if (!AnyOf(q.customer_ids, e.customer_id)) continue;
    if (!q.names.empty() &&
        std::find(q.names.begin(), q.names.end(), e.name) == q.names.end())
      continue;
    if (q.start && !(e.timestamp > *q.start)) continue;
    if (q.end && !(e.timestamp < *q.end)) continue;
    bool ok = true;
    for (const auto& [key, values] : q.metadata) {
      if (!MetadataMatches(e.metadata, key, values)) {
        ok = false;
        break;
      }
    }
    if (ok) hits.push_back(&e);
  }
  std::stable_sort(hits.begin(), hits.end(),
                   [&](const StoredEvent* a, const StoredEvent* b) {
                     return q.ascending ? a->timestamp < b->timestamp
                                        : a->timestamp > b->timestamp;
                   });
  std::vector<StoredEvent> page;
  const PageRange range = PageOf(q.page, q.limit, hits.size());
  for (std::size_t i = range.begin; i < range.end; ++i)
    page.push_back(*hits[i]);
  return {std::move(page), static_cast<int64_t>(hits.size())};
}

std::size_t EventStore::size() const {
  std::shared_lock lock(mutex_);
  return ring_.size();
}

}  // namespace polar::sim
