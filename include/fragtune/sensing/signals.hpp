// Derived signals: pure functions of parsed samples. The fragmentation formulas are the kernel's own
// (mm/vmstat.c fill_contig_page_info, unusable_free_index, __fragmentation_index; mm/compaction.c
// fragmentation_score_*), so the numbers match /sys/kernel/debug/extfrag/* on the same text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fragtune/sensing/parsers.hpp"

namespace fragtune {

// mm/vmstat.c struct contig_page_info for one zone and order.
struct ContigInfo {
    uint64_t free_pages = 0;            // all free pages in the zone
    uint64_t free_blocks_total = 0;     // free blocks of any order
    uint64_t free_blocks_suitable = 0;  // blocks of 2^order pages obtainable from blocks >= order
};
ContigInfo fill_contig_page_info(const std::vector<uint64_t>& free_blocks, int order);
ContigInfo fill_contig_page_info(const uint64_t* free_blocks, std::size_t orders, int order);
// 0..1000: share of free memory unusable for an allocation of this order (1000 when nothing is free).
int unusable_free_index_permille(const ContigInfo& info, int order);
// -1000 when an allocation of this order would succeed; else 0..1000, towards 1000 meaning a failure
// would be due to fragmentation, towards 0 due to lack of memory (mm/vmstat.c __fragmentation_index).
int fragmentation_index_permille(const ContigInfo& info, int order);
// 0..100: mm/vmstat.c extfrag_for_order(), the basis of the compaction fragmentation score.
int extfrag_for_order_percent(const ContigInfo& info, int order);

// The order proactive compaction works for: COMPACTION_HPAGE_ORDER, i.e. HPAGE_PMD_ORDER (9 with 4 KiB
// pages, 11 with 16 KiB, 13 with 64 KiB: KernelProfile::hpage_pmd_order), or the highest order the buddy
// allocator has if that is smaller.
int compaction_order(int buddy_orders, int hpage_pmd_order = 9);

struct ZoneSignals {
    int node = 0;
    std::string zone;
    uint64_t managed_pages = 0, present_pages = 0;
    // Watermarks as zoneinfo prints them: with watermark_boost added (min_wmark_pages() etc.).
    uint64_t free_pages = 0, min_pages = 0, low_pages = 0, high_pages = 0;
    uint64_t boost_pages = 0;  // watermark_boost (0 before 5.0)
    // the largest lowmem_reserve ("protection") entry: what allocations
    // that could use a higher zone must leave in this one
    uint64_t reserve_pages = 0;
    std::vector<uint64_t> free_blocks;   // per order, from buddyinfo
    std::vector<int> unusable_permille;  // per order
    // per order: fragmentation_index_permille (debugfs extfrag_index)
    std::vector<int> extfrag_permille;
};

struct NodeSignals {
    int node = 0;
    int fragmentation_score = 0;  // 0..100, mm/compaction.c fragmentation_score_node()
};

// Availability at one target order, over all populated zones together.
struct OrderSignals {
    int order = 0;
    uint64_t free_blocks = 0;   // blocks of 2^order pages obtainable from free blocks >= order
    int unusable_permille = 0;  // over the combined free lists
    int worst_zone_unusable_permille = 0;  // the largest per-zone index among populated zones
};

// A counter's change over the sampling interval. Resets (value going backwards, e.g. after a
// counter wrap or a replay splice) count as a delta of 0 and set `reset`.
struct CounterDelta {
    uint64_t delta = 0;
    double per_sec = 0;
    bool reset = false;
};

// Counter deltas by name, in name order: a vector of {name, delta} kept sorted, with the lookups
// and insertions of the sorted map it replaces (find/end, count, operator[], try_emplace,
// iteration as pairs). derive_signals() rebuilds it in place (rebuild_*), so a tick that sees the
// counters of the tick before writes into the strings it already has: no allocation.
class CounterDeltas {
  public:
    using value_type = std::pair<std::string, CounterDelta>;
    using iterator = std::vector<value_type>::iterator;
    using const_iterator = std::vector<value_type>::const_iterator;

    iterator begin() { return items_.begin(); }
    iterator end() { return items_.end(); }
    const_iterator begin() const { return items_.begin(); }
    const_iterator end() const { return items_.end(); }
    std::size_t size() const { return items_.size(); }
    bool empty() const { return items_.empty(); }

    iterator find(std::string_view name);
    const_iterator find(std::string_view name) const;
    std::size_t count(std::string_view name) const { return find(name) != end() ? 1 : 0; }
    bool contains(std::string_view name) const { return count(name) != 0; }
    CounterDelta& operator[](std::string_view name) { return try_emplace(name).first->second; }
    std::pair<iterator, bool> try_emplace(std::string_view name, CounterDelta d = {});
    std::pair<iterator, bool> emplace(std::string_view name, CounterDelta d) {
        return try_emplace(name, d);
    }

    // In-place rebuild: begin, push names in strictly increasing order, end.
    void rebuild_begin() { n_ = 0; }
    void rebuild_push(std::string_view name, const CounterDelta& d);
    void rebuild_end() { items_.resize(n_); }

  private:
    std::vector<value_type> items_;
    std::size_t n_ = 0;
};

struct Signals {
    uint64_t interval_usec = 0;  // 0 on the first sample: no rates yet

    std::vector<ZoneSignals> zones;  // populated zones (managed > 0) only
    std::vector<NodeSignals> nodes;
    std::vector<OrderSignals> targets;  // one per configured target order that this kernel has
    int compaction_order = 9;
    int max_fragmentation_score = 0;  // over nodes

    // Watermark position, over populated zones.
    // free <= the unboosted min (min - boost): atomic order-0 allocations ignore the boost
    // (mm/page_alloc.c zone_watermark_fast), so a boosted min is not a dip.
    uint32_t zones_at_or_below_min = 0;
    uint32_t zones_below_low = 0;    // free < low
    uint32_t zones_below_high = 0;   // free < high
    int64_t min_headroom_pages = 0;  // smallest (free - low) among populated zones; may be negative
    uint64_t free_pages = 0, min_pages = 0, low_pages = 0, high_pages = 0;  // sums

    // PSI (absent when the kernel has no PSI or the cgroup file is missing).
    std::optional<double> psi_some_avg10, psi_full_avg10;
    // stall time within the interval
    std::optional<uint64_t> psi_some_stall_usec, psi_full_stall_usec;
    // Share of the interval that some task stalled on memory, percent (from total_usec deltas).
    std::optional<double> psi_some_percent;

    // vmstat counter deltas, keyed by vmstat name, present only when the kernel prints the counter.
    // Also synthetic sums: "allocstall" (all allocstall_*), "pgscan_direct", "pgsteal_direct",
    // "pgscan_kswapd", "pgsteal_kswapd" (summed over their per-zone/per-type variants on old kernels),
    // and "workingset_refault_file" from "workingset_refault" on kernels < 5.9.
    CounterDeltas counters;
    std::optional<CounterDelta> counter(std::string_view name) const;

    // Memory state from meminfo, KiB.
    uint64_t mem_total_kib = 0, mem_free_kib = 0;
    std::optional<uint64_t> mem_available_kib, sreclaimable_kib, sunreclaim_kib;
    uint64_t swap_total_kib = 0, swap_free_kib = 0;

    // Allocation failures reported by the kernel log in the interval.
    std::map<int, uint32_t> failures_by_order;         // order -> count
    std::map<int, uint32_t> atomic_failures_by_order;  // subset that could not sleep
    uint32_t vmalloc_failures = 0;
    uint64_t kmsg_lost = 0;  // records overwritten before we read them (EPIPE)
};

}  // namespace fragtune
