// Derived signals. The index functions transcribe the kernel's own arithmetic (mm/vmstat.c
// fill_contig_page_info, unusable_free_index, __fragmentation_index, extfrag_for_order;
// mm/compaction.c fragmentation_score_zone_weighted / fragmentation_score_node), including its
// integer division and rounding, so the values equal those of
// /sys/kernel/debug/extfrag/{unusable_index,extfrag_index} and of kcompactd's proactive-compaction
// score for the same free lists.
//
// Where the kernel relies on its inputs being sane (block counts that cannot overflow when
// shifted), we compute in 128 bits and saturate, so hostile text yields bounded values instead of
// wrapped ones.
#include <algorithm>
#include <array>
#include <limits>
#include <set>

#include "fragtune/sensing/sample.hpp"
#include "fragtune/sensing/signals.hpp"

namespace fragtune {

namespace {

__extension__ typedef unsigned __int128 u128;
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

uint64_t saturate(u128 v) {
    return v > kU64Max ? kU64Max : static_cast<uint64_t>(v);
}

// v << shift, saturated to u64 (shift may be large on hostile input).
uint64_t shl_sat(uint64_t v, int shift) {
    if (v == 0 || shift <= 0) return v;
    if (shift >= 64) return kU64Max;
    return saturate(static_cast<u128>(v) << shift);
}

// Lookups straight in the parsed maps (VmStat::get and MemInfo::get_kib do the same; using the map
// keeps the signal math independent of the parser translation unit).
std::optional<uint64_t> lookup(const CounterMap& m, std::string_view name) {
    auto it = m.find(name);
    if (it == m.end()) return std::nullopt;
    return it->second;
}

// Zone-name suffixes the kernel appended to per-zone vmstat event names (TEXTS_FOR_ZONES in
// mm/vmstat.c): "allocstall_normal", and before 4.8 "pgscan_direct_dma32", "pgsteal_kswapd_normal",
// ...
constexpr std::array<std::string_view, 7> kZoneSuffixes = {"dma",     "dma32",   "normal", "high",
                                                           "highmem", "movable", "device"};

// The value of a possibly-synthetic counter in one vmstat: the kernel's single counter when
// printed, else the sum of its per-zone variants, else absent.
std::optional<uint64_t> synthetic_value(const VmStat& vm, std::string_view name) {
    if (auto v = lookup(vm.counters, name)) return v;
    bool any = false;
    u128 sum = 0;
    std::string key;
    for (auto suffix : kZoneSuffixes) {
        key.assign(name);
        key += '_';
        key += suffix;
        if (auto v = lookup(vm.counters, key)) {
            any = true;
            sum += *v;
        }
    }
    if (!any) return std::nullopt;
    return saturate(sum);
}

// Counters whose name or meaning changed between kernels; Signals.counters carries them under the
// modern name whatever the kernel printed.
constexpr std::array<std::string_view, 5> kSummedCounters = {
    // The node-based LRU rework of 4.8 turned "allocstall" into allocstall_<zone> and, conversely,
    // the
    // per-zone pgscan/pgsteal_{direct,kswapd}_<zone> into single node-wide counters.
    "allocstall", "pgscan_direct", "pgsteal_direct", "pgscan_kswapd", "pgsteal_kswapd"};

CounterDelta make_delta(uint64_t before, uint64_t after, uint64_t interval_usec) {
    CounterDelta d;
    if (after < before) {
        d.reset = true;  // counter went backwards: wrap, hotplug fold, or a spliced replay
        return d;
    }
    d.delta = after - before;
    d.per_sec = interval_usec
                    ? static_cast<double>(d.delta) * 1e6 / static_cast<double>(interval_usec)
                    : 0.0;
    return d;
}

const BuddyZone* find_buddy(const BuddyInfo& buddy, int node, std::string_view zone) {
    for (const auto& z : buddy.zones)
        if (z.node == node && z.zone == zone) return &z;
    return nullptr;
}

}  // namespace

ContigInfo fill_contig_page_info(const std::vector<uint64_t>& free_blocks, int order) {
    u128 free_pages = 0, total = 0, suitable = 0;
    for (size_t o = 0; o < free_blocks.size(); ++o) {
        const uint64_t blocks = free_blocks[o];
        const int shift = static_cast<int>(o);
        total += blocks;
        free_pages += shl_sat(blocks, shift);
        if (shift >= order) suitable += shl_sat(blocks, shift - order);
    }
    return ContigInfo{saturate(free_pages), saturate(total), saturate(suitable)};
}

int unusable_free_index_permille(const ContigInfo& info, int order) {
    // No free memory is interpreted as all free memory being unusable.
    if (info.free_pages == 0) return 1000;
    const uint64_t usable = std::min(shl_sat(info.free_blocks_suitable, order), info.free_pages);
    return static_cast<int>(static_cast<u128>(info.free_pages - usable) * 1000 / info.free_pages);
}

int fragmentation_index_permille(const ContigInfo& info, int order) {
    if (order < 0 || order >= 64) return 0;  // the kernel WARNs and returns 0 for orders it lacks
    if (info.free_blocks_total == 0) return 0;
    // The index only makes sense when a request would fail.
    if (info.free_blocks_suitable) return -1000;
    const uint64_t requested = uint64_t{1} << order;
    // 1000 - (1000 + free_pages * 1000 / requested) / free_blocks_total, all divisions truncating.
    // The kernel's result may dip below 0 (one small block and little else: "would fail for lack of
    // memory" in the extreme); we keep its value rather than inventing a clamp.
    const u128 scaled = static_cast<u128>(info.free_pages) * 1000 / requested;
    const u128 q = (1000 + scaled) / info.free_blocks_total;
    if (q > 2000)
        return -1000;  // unreachable with consistent ContigInfo (free_pages < total * requested)
    return 1000 - static_cast<int>(q);
}

int extfrag_for_order_percent(const ContigInfo& info, int order) {
    if (info.free_pages == 0) return 0;
    const uint64_t usable = std::min(shl_sat(info.free_blocks_suitable, order), info.free_pages);
    return static_cast<int>(static_cast<u128>(info.free_pages - usable) * 100 / info.free_pages);
}

int compaction_order(int buddy_orders, int hpage_pmd_order) {
    // COMPACTION_HPAGE_ORDER is HPAGE_PMD_ORDER (9 with 4 KiB pages and 2 MiB PMDs, 13 with 64 KiB
    // pages and 512 MiB PMDs). Kernels built with a smaller MAX_ORDER (some embedded configs)
    // cannot have that order; the largest they have stands in.
    if (buddy_orders <= 0) return hpage_pmd_order;
    return std::min(hpage_pmd_order, buddy_orders - 1);
}

std::optional<CounterDelta> Signals::counter(std::string_view name) const {
    auto it = counters.find(name);
    if (it == counters.end()) return std::nullopt;
    return it->second;
}

void derive_signals(const Sample* prev, Sample& cur, const SignalOptions& options) {
    Signals s;
    const int orders = cur.buddy.orders;
    s.compaction_order = compaction_order(orders, cur.profile.hpage_pmd_order);

    // ---- per zone: free lists, indices, watermarks ----------------------------------------------
    bool any_zone = false;
    for (const auto& zi : cur.zoneinfo.zones) {
        if (zi.managed == 0) continue;  // not populated for allocation purposes
        ZoneSignals z;
        z.node = zi.node;
        z.zone = zi.zone;
        z.managed_pages = zi.managed;
        z.present_pages = zi.present;
        z.free_pages = zi.free;
        z.min_pages = zi.min;
        z.low_pages = zi.low;
        z.high_pages = zi.high;
        z.boost_pages = zi.boost.value_or(0);
        for (uint64_t r : zi.protection) z.reserve_pages = std::max(z.reserve_pages, r);
        if (const BuddyZone* bz = find_buddy(cur.buddy, zi.node, zi.zone)) {
            z.free_blocks = bz->free_blocks;
            z.unusable_permille.reserve(z.free_blocks.size());
            z.extfrag_permille.reserve(z.free_blocks.size());
            for (int o = 0; o < static_cast<int>(z.free_blocks.size()); ++o) {
                ContigInfo ci = fill_contig_page_info(z.free_blocks, o);
                z.unusable_permille.push_back(unusable_free_index_permille(ci, o));
                z.extfrag_permille.push_back(fragmentation_index_permille(ci, o));
            }
        }

        // zoneinfo prints the watermarks with the boost already added (min_wmark_pages() etc.,
        // mm/vmstat.c zoneinfo_show_print), which is what kswapd and ordinary allocations compare
        // against. Atomic order-0 allocations test the unboosted min (zone_watermark_fast ignores
        // the boost for them), so a dip is judged against min - boost: a boost after a
        // fragmenting fallback must not look like a reserve running out.
        const uint64_t unboosted_min =
            z.min_pages > z.boost_pages ? z.min_pages - z.boost_pages : 0;
        if (z.free_pages <= unboosted_min) ++s.zones_at_or_below_min;
        if (z.free_pages < z.low_pages) ++s.zones_below_low;
        if (z.free_pages < z.high_pages) ++s.zones_below_high;
        const int64_t headroom =
            static_cast<int64_t>(z.free_pages) - static_cast<int64_t>(z.low_pages);
        s.min_headroom_pages = any_zone ? std::min(s.min_headroom_pages, headroom) : headroom;
        any_zone = true;
        s.free_pages += z.free_pages;
        s.min_pages += z.min_pages;
        s.low_pages += z.low_pages;
        s.high_pages += z.high_pages;
        s.zones.push_back(std::move(z));
    }

    // ---- per node: kcompactd's fragmentation score ----------------------------------------------
    // node_present_pages is the node's present pages over all its zones, populated or not.
    std::vector<int> node_ids;
    for (const auto& zi : cur.zoneinfo.zones)
        if (std::find(node_ids.begin(), node_ids.end(), zi.node) == node_ids.end())
            node_ids.push_back(zi.node);
    for (int node : node_ids) {
        u128 node_present = 0;
        for (const auto& zi : cur.zoneinfo.zones)
            if (zi.node == node) node_present += zi.present;
        u128 score = 0;
        for (const auto& z : s.zones) {
            if (z.node != node || z.present_pages == 0) continue;
            const int zone_score = extfrag_for_order_percent(
                fill_contig_page_info(z.free_blocks, s.compaction_order), s.compaction_order);
            score += static_cast<u128>(z.present_pages) * static_cast<unsigned>(zone_score) /
                     (node_present + 1);
        }
        NodeSignals n;
        n.node = node;
        n.fragmentation_score = static_cast<int>(std::min<u128>(score, 100));
        s.max_fragmentation_score = std::max(s.max_fragmentation_score, n.fragmentation_score);
        s.nodes.push_back(n);
    }

    // ---- target orders over all populated zones -------------------------------------------------
    std::vector<uint64_t> combined(static_cast<size_t>(std::max(orders, 0)), 0);
    for (const auto& z : s.zones)
        for (size_t o = 0; o < z.free_blocks.size() && o < combined.size(); ++o)
            combined[o] = saturate(static_cast<u128>(combined[o]) + z.free_blocks[o]);
    std::set<int> seen;
    for (int order : options.target_orders) {
        if (order < 0 || order >= orders || !seen.insert(order).second) continue;
        OrderSignals t;
        t.order = order;
        ContigInfo ci = fill_contig_page_info(combined, order);
        t.free_blocks = ci.free_blocks_suitable;
        t.unusable_permille = unusable_free_index_permille(ci, order);
        for (const auto& z : s.zones)
            if (static_cast<size_t>(order) < z.unusable_permille.size())
                t.worst_zone_unusable_permille =
                    std::max(t.worst_zone_unusable_permille, z.unusable_permille[order]);
        s.targets.push_back(t);
    }

    // ---- interval -------------------------------------------------------------------------------
    // A previous sample taken at the same instant or later (clock misuse, replays spliced out of
    // order) gives no rates rather than division by zero or negative time.
    const bool have_prev = prev != nullptr && cur.mono_usec > prev->mono_usec;
    if (have_prev) s.interval_usec = cur.mono_usec - prev->mono_usec;

    // ---- PSI ------------------------------------------------------------------------------------
    if (cur.psi) {
        s.psi_some_avg10 = cur.psi->some.avg10;
        if (cur.psi->full) s.psi_full_avg10 = cur.psi->full->avg10;
        if (have_prev && prev->psi) {
            const auto& a = prev->psi->some;
            const auto& b = cur.psi->some;
            s.psi_some_stall_usec = b.total_usec >= a.total_usec ? b.total_usec - a.total_usec : 0;
            // The two reads are not atomic with the clock, so the stall can exceed the interval by
            // a hair; a share above 100 % would be noise.
            s.psi_some_percent = std::min(100.0, static_cast<double>(*s.psi_some_stall_usec) *
                                                     100.0 / static_cast<double>(s.interval_usec));
            if (prev->psi->full && cur.psi->full) {
                const auto& fa = *prev->psi->full;
                const auto& fb = *cur.psi->full;
                s.psi_full_stall_usec =
                    fb.total_usec >= fa.total_usec ? fb.total_usec - fa.total_usec : 0;
            }
        }
    }

    // ---- vmstat counters ------------------------------------------------------------------------
    if (have_prev) {
        const auto& before = prev->vmstat.counters;
        // Both maps are sorted by name: one merge pass instead of a lookup per counter.
        auto it = before.begin();
        for (const auto& [name, value] : cur.vmstat.counters) {
            while (it != before.end() && it->first < name) ++it;
            if (it == before.end()) break;
            // Names arrive in sorted order: inserting at end() costs no tree search.
            if (it->first == name)
                s.counters.emplace_hint(s.counters.end(), name,
                                        make_delta(it->second, value, s.interval_usec));
        }
        for (auto name : kSummedCounters) {
            if (s.counters.count(name)) continue;  // the kernel prints the single counter
            auto a = synthetic_value(prev->vmstat, name);
            auto b = synthetic_value(cur.vmstat, name);
            if (a && b) s.counters.emplace(std::string(name), make_delta(*a, *b, s.interval_usec));
        }
        // 5.9 split workingset_refault into _anon and _file; before, refaults were file pages only
        // (anon pages were not tracked in the shadow entries).
        if (!s.counters.count("workingset_refault_file")) {
            auto a = lookup(prev->vmstat.counters, "workingset_refault");
            auto b = lookup(cur.vmstat.counters, "workingset_refault");
            if (a && b)
                s.counters.emplace("workingset_refault_file", make_delta(*a, *b, s.interval_usec));
        }
    }

    // ---- meminfo --------------------------------------------------------------------------------
    s.mem_total_kib = lookup(cur.meminfo.kib, "MemTotal").value_or(0);
    s.mem_free_kib = lookup(cur.meminfo.kib, "MemFree").value_or(0);
    s.mem_available_kib = lookup(cur.meminfo.kib, "MemAvailable");  // since 3.14
    s.sreclaimable_kib = lookup(cur.meminfo.kib, "SReclaimable");
    s.sunreclaim_kib = lookup(cur.meminfo.kib, "SUnreclaim");
    s.swap_total_kib =
        lookup(cur.meminfo.kib, "SwapTotal").value_or(0);  // absent without CONFIG_SWAP
    s.swap_free_kib = lookup(cur.meminfo.kib, "SwapFree").value_or(0);

    // ---- kernel-log allocation failures ---------------------------------------------------------
    // Orders count only page-allocator failures: a vmalloc failure's "order" is the size of the
    // whole request, which vmalloc assembles from order-0 pages, so it says nothing about
    // contiguity.
    for (const auto& f : cur.failures) {
        if (f.kind == FailureKind::vmalloc) {
            ++s.vmalloc_failures;
            continue;
        }
        ++s.failures_by_order[f.order];
        if (f.atomic) ++s.atomic_failures_by_order[f.order];
    }
    s.kmsg_lost = cur.kmsg_lost;

    cur.signals = std::move(s);
}

}  // namespace fragtune
