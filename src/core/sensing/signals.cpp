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

std::optional<uint64_t> lookup(const CounterSet& m, std::string_view name) {
    return m.get(name);
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
    // name + "_" + suffix in a buffer on the stack: this runs every tick.
    std::array<char, 64> buf{};
    if (name.size() + 1 + 8 > buf.size()) return std::nullopt;
    std::copy(name.begin(), name.end(), buf.begin());
    buf[name.size()] = '_';
    for (auto suffix : kZoneSuffixes) {
        std::copy(suffix.begin(), suffix.end(), buf.begin() + name.size() + 1);
        const std::string_view key(buf.data(), name.size() + 1 + suffix.size());
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
    return fill_contig_page_info(free_blocks.data(), free_blocks.size(), order);
}

ContigInfo fill_contig_page_info(const uint64_t* free_blocks, std::size_t orders, int order) {
    u128 free_pages = 0, total = 0, suitable = 0;
    for (size_t o = 0; o < orders; ++o) {
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

CounterDeltas::iterator CounterDeltas::find(std::string_view name) {
    auto it = std::lower_bound(items_.begin(), items_.end(), name,
                               [](const value_type& v, std::string_view n) { return v.first < n; });
    return it != items_.end() && it->first == name ? it : items_.end();
}

CounterDeltas::const_iterator CounterDeltas::find(std::string_view name) const {
    auto it = std::lower_bound(items_.begin(), items_.end(), name,
                               [](const value_type& v, std::string_view n) { return v.first < n; });
    return it != items_.end() && it->first == name ? it : items_.end();
}

std::pair<CounterDeltas::iterator, bool> CounterDeltas::try_emplace(std::string_view name,
                                                                    CounterDelta d) {
    auto it = std::lower_bound(items_.begin(), items_.end(), name,
                               [](const value_type& v, std::string_view n) { return v.first < n; });
    if (it != items_.end() && it->first == name) return {it, false};
    return {items_.insert(it, value_type(std::string(name), d)), true};
}

void CounterDeltas::rebuild_push(std::string_view name, const CounterDelta& d) {
    if (n_ < items_.size()) {
        // Same name as two ticks ago in the steady state: assign() reuses the string's storage.
        if (items_[n_].first != name) items_[n_].first.assign(name);
        items_[n_].second = d;
    } else {
        items_.emplace_back(std::string(name), d);
    }
    ++n_;
}

std::optional<CounterDelta> Signals::counter(std::string_view name) const {
    auto it = counters.find(name);
    if (it == counters.end()) return std::nullopt;
    return it->second;
}

namespace {

// Free pages of a zone from its buddyinfo free lists: current even when zoneinfo is not.
uint64_t buddy_free_pages(const BuddyZone& bz) {
    return fill_contig_page_info(bz.free_blocks, 0).free_pages;
}

}  // namespace

void derive_signals(const Sample* prev, Sample& cur, const SignalOptions& options) {
    // Rebuilt in place: the containers keep their storage from the last use of this Sample (no
    // allocation when the shape is the same), every other field starts from its default.
    Signals& s = cur.signals;
    {
        auto zones = std::move(s.zones);
        auto nodes = std::move(s.nodes);
        auto targets = std::move(s.targets);
        auto counters = std::move(s.counters);
        s = Signals{};
        s.zones = std::move(zones);
        s.nodes = std::move(nodes);
        s.targets = std::move(targets);
        s.counters = std::move(counters);
    }
    s.nodes.clear();
    s.targets.clear();
    const int orders = cur.buddy.orders;
    s.compaction_order = compaction_order(orders, cur.profile.hpage_pmd_order);

    // ---- per zone: free lists, indices, watermarks ----------------------------------------------
    bool any_zone = false;
    size_t nz = 0;
    for (const auto& zi : cur.zoneinfo.zones) {
        if (zi.managed == 0) continue;  // not populated for allocation purposes
        if (nz == s.zones.size()) s.zones.emplace_back();
        ZoneSignals& z = s.zones[nz++];
        z.node = zi.node;
        if (z.zone != zi.zone) z.zone = zi.zone;
        z.managed_pages = zi.managed;
        z.present_pages = zi.present;
        z.free_pages = zi.free;
        z.min_pages = zi.min;
        z.low_pages = zi.low;
        z.high_pages = zi.high;
        z.boost_pages = zi.boost.value_or(0);
        z.reserve_pages = 0;
        for (uint64_t r : zi.protection) z.reserve_pages = std::max(z.reserve_pages, r);
        z.free_blocks.clear();
        z.unusable_permille.clear();
        z.extfrag_permille.clear();
        if (const BuddyZone* bz = find_buddy(cur.buddy, zi.node, zi.zone)) {
            // zoneinfo from an earlier tick: its watermarks stand (they move only with the knobs,
            // which force a fresh read), its free count does not; buddyinfo's is of this tick.
            if (!cur.zoneinfo_fresh) z.free_pages = buddy_free_pages(*bz);
            z.free_blocks = bz->free_blocks;
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
    }
    s.zones.resize(nz);

    // ---- per node: kcompactd's fragmentation score ----------------------------------------------
    // node_present_pages is the node's present pages over all its zones, populated or not.
    for (const auto& zi : cur.zoneinfo.zones)
        if (std::none_of(s.nodes.begin(), s.nodes.end(),
                         [&](const NodeSignals& n) { return n.node == zi.node; }))
            s.nodes.push_back(NodeSignals{zi.node, 0});
    for (NodeSignals& n : s.nodes) {
        u128 node_present = 0;
        for (const auto& zi : cur.zoneinfo.zones)
            if (zi.node == n.node) node_present += zi.present;
        u128 score = 0;
        for (const auto& z : s.zones) {
            if (z.node != n.node || z.present_pages == 0) continue;
            const int zone_score = extfrag_for_order_percent(
                fill_contig_page_info(z.free_blocks, s.compaction_order), s.compaction_order);
            score += static_cast<u128>(z.present_pages) * static_cast<unsigned>(zone_score) /
                     (node_present + 1);
        }
        n.fragmentation_score = static_cast<int>(std::min<u128>(score, 100));
        s.max_fragmentation_score = std::max(s.max_fragmentation_score, n.fragmentation_score);
    }

    // ---- target orders over all populated zones -------------------------------------------------
    // The buddy parser allows at most 64 orders; a hand-made sample with more is cut there.
    constexpr size_t kMaxOrders = 64;
    const size_t norders = std::min(static_cast<size_t>(std::max(orders, 0)), kMaxOrders);
    std::array<uint64_t, kMaxOrders> combined{};
    for (const auto& z : s.zones)
        for (size_t o = 0; o < z.free_blocks.size() && o < norders; ++o)
            combined[o] = saturate(static_cast<u128>(combined[o]) + z.free_blocks[o]);
    uint64_t seen = 0;  // bit per order
    for (int order : options.target_orders) {
        if (order < 0 || static_cast<size_t>(order) >= norders) continue;
        if (seen & (uint64_t{1} << order)) continue;
        seen |= uint64_t{1} << order;
        OrderSignals t;
        t.order = order;
        ContigInfo ci = fill_contig_page_info(combined.data(), norders, order);
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
    s.counters.rebuild_begin();
    if (have_prev) {
        const CounterSet& before = prev->vmstat.counters;
        const CounterSet& after = cur.vmstat.counters;
        // The synthetic counters first (only where the kernel does not print the counter in both
        // samples), in name order, so that one merge writes the whole table in order.
        struct Synthetic {
            std::string_view name;
            std::optional<CounterDelta> delta;
        };
        std::array<Synthetic, kSummedCounters.size() + 1> synth{};
        for (size_t i = 0; i < kSummedCounters.size(); ++i) {
            const auto name = kSummedCounters[i];
            synth[i].name = name;
            if (before.contains(name) && after.contains(name)) continue;  // the kernel's own
            auto a = synthetic_value(prev->vmstat, name);
            auto b = synthetic_value(cur.vmstat, name);
            if (a && b) synth[i].delta = make_delta(*a, *b, s.interval_usec);
        }
        // 5.9 split workingset_refault into _anon and _file; before, refaults were file pages only
        // (anon pages were not tracked in the shadow entries).
        synth.back().name = "workingset_refault_file";
        if (!(before.contains("workingset_refault_file") &&
              after.contains("workingset_refault_file"))) {
            auto a = lookup(before, "workingset_refault");
            auto b = lookup(after, "workingset_refault");
            if (a && b) synth.back().delta = make_delta(*a, *b, s.interval_usec);
        }
        std::sort(synth.begin(), synth.end(),
                  [](const Synthetic& x, const Synthetic& y) { return x.name < y.name; });
        size_t si = 0;
        auto emit_synth_before = [&](std::string_view limit, bool all) {
            for (; si < synth.size() && (all || synth[si].name < limit); ++si)
                if (synth[si].delta) s.counters.rebuild_push(synth[si].name, *synth[si].delta);
        };
        // Both sets iterate in name order: one merge pass.
        auto it = before.begin();
        const auto end = before.end();
        for (auto cit = after.begin(); cit != after.end(); ++cit) {
            const auto [name, value] = *cit;
            while (it != end && (*it).first < name) ++it;
            if (it == end) break;
            if ((*it).first == name) {
                emit_synth_before(name, false);
                s.counters.rebuild_push(name, make_delta((*it).second, value, s.interval_usec));
            }
        }
        emit_synth_before({}, true);
    }
    s.counters.rebuild_end();

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
}

// ---- when to read zoneinfo ----------------------------------------------------------------------

std::string_view to_string(ZoneinfoReason r) {
    switch (r) {
        case ZoneinfoReason::none:
            return "none";
        case ZoneinfoReason::first:
            return "first";
        case ZoneinfoReason::forced:
            return "forced";
        case ZoneinfoReason::periodic:
            return "periodic";
        case ZoneinfoReason::knobs_changed:
            return "knobs-changed";
        case ZoneinfoReason::near_watermark:
            return "near-watermark";
        case ZoneinfoReason::failures:
            return "failures";
        case ZoneinfoReason::stalls:
            return "stalls";
        case ZoneinfoReason::psi:
            return "psi";
        case ZoneinfoReason::settling:
            return "settling";
    }
    return "?";
}

ZoneinfoReason zoneinfo_reason(const Sample& cur, const Sample* prev, const ZoneinfoState& state,
                               const ZoneinfoPolicy& policy, bool forced) {
    if (forced) return ZoneinfoReason::forced;
    if (!state.have || prev == nullptr) return ZoneinfoReason::first;
    // Trouble first: the reasons the controller's watermark rules fire on.
    if (!cur.failures.empty()) return ZoneinfoReason::failures;
    for (std::string_view c : {"allocstall", "pgscan_direct", "compact_stall"}) {
        auto a = synthetic_value(prev->vmstat, c);
        auto b = synthetic_value(cur.vmstat, c);
        if (a && b && *b > *a) return ZoneinfoReason::stalls;
    }
    if (cur.psi) {
        bool high = cur.psi->some.avg10 >= policy.psi_some_percent;
        if (prev->psi && cur.mono_usec > prev->mono_usec &&
            cur.psi->some.total_usec > prev->psi->some.total_usec) {
            const double share =
                static_cast<double>(cur.psi->some.total_usec - prev->psi->some.total_usec) * 100.0 /
                static_cast<double>(cur.mono_usec - prev->mono_usec);
            high = high || share >= policy.psi_some_percent;
        }
        if (high) return ZoneinfoReason::psi;
    }
    for (const auto& zi : prev->zoneinfo.zones) {
        if (zi.managed == 0) continue;
        const BuddyZone* bz = find_buddy(cur.buddy, zi.node, zi.zone);
        if (bz == nullptr) return ZoneinfoReason::near_watermark;  // the zones changed: look
        const uint64_t gap = zi.high > zi.min ? zi.high - zi.min : 0;
        if (buddy_free_pages(*bz) < zi.high + gap) return ZoneinfoReason::near_watermark;
    }
    if (cur.knob(Knob::min_free_kbytes) != state.min_free_kbytes ||
        cur.knob(Knob::watermark_scale_factor) != state.watermark_scale_factor)
        return ZoneinfoReason::knobs_changed;
    if (state.ticks_since_trouble < policy.settle_ticks) return ZoneinfoReason::settling;
    if (state.ticks_since_read + 1 >= std::max<uint32_t>(policy.every_ticks, 1))
        return ZoneinfoReason::periodic;
    return ZoneinfoReason::none;
}

}  // namespace fragtune
