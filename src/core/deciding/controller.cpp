// The control law. See doc/policies.md for every rule id, its signal, threshold, default and
// action.
//
// Shape of one tick (decide()):
//   1. shared history (min-watermark dips, atomic failures) is shifted in;
//   2. each knob, in table order: status bookkeeping (disabled/unsupported/failed back-off), then
//   the
//      administrator check (live value != what we wrote -> pin, or adopt a kernel recalculation),
//      then its policy proposes at most one raise/lower/decay, then the guards shape or refuse it:
//      bounds (configured/table ∩ kernel range, min_free_kbytes: >= baseline and <= safety cap),
//      the max step, the per-knob cooldown, the sliding-hour change cap, and for min_free_kbytes
//      raises the low-watermark safety guard. Compaction turns a raise blocked by its maximum or
//      the cooldown into a kick (same value rewritten) at most once per kick interval.
// Nothing here reads a clock or a file: time is sample.mono_usec.
#include "fragtune/deciding/controller.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string_view>

namespace fragtune {

std::string_view to_string(KnobStatus s) {
    switch (s) {
        case KnobStatus::tuning:
            return "tuning";
        case KnobStatus::pinned:
            return "pinned";
        case KnobStatus::conflict:
            return "conflict";
        case KnobStatus::failed:
            return "failed";
        case KnobStatus::unsupported:
            return "unsupported";
        case KnobStatus::disabled:
            return "disabled";
    }
    return "?";
}

std::string_view to_string(Action a) {
    switch (a) {
        case Action::raise:
            return "raise";
        case Action::lower:
            return "lower";
        case Action::decay:
            return "decay";
        case Action::kick:
            return "kick";
        case Action::refuse:
            return "refuse";
        case Action::pin:
            return "pin";
        case Action::compact:
            return "compact";
    }
    return "?";
}

std::string format_decision(const Decision& d) {
    if (d.action == Action::compact)
        return fmt::format("vm.compact_memory <- 1 [compact: {}] {}", d.rule, d.reason);
    return fmt::format("{} {} -> {} [{}: {}] {}", spec(d.knob).sysctl, d.old_value, d.new_value,
                       to_string(d.action), d.rule, d.reason);
}

namespace {

constexpr uint64_t kHourUsec = 3'600'000'000ULL;
// A refusal with an unchanged rule is reported again at most this often (not every tick).
constexpr uint64_t kRefuseRepeatUsec = 60'000'000ULL;
// Write failures back off from this, doubling per consecutive failure, up to an hour.
constexpr uint64_t kFailBackoffBaseUsec = 10'000'000ULL;
// Writing compaction_proactiveness wakes proactive compaction at once since 5.15 (the sysctl
// handler calls wakeup_kcompactd for every node on a non-zero write); before that a rewrite does
// nothing.
constexpr KernelVersion kKickSince{5, 15};
constexpr int64_t kDefaultWatermarkScaleFactor = 10;

__extension__ using u128 = unsigned __int128;

// Zones the kernel leaves out of lowmem_pages in __setup_per_zone_wmarks (Device has no managed
// pages anyway, the brief lists it here too).
bool is_lowmem_zone(std::string_view zone) {
    return zone != "Movable" && zone != "HighMem" && zone != "Device";
}
// Zones whose min watermark is the small clamp(managed / 1024, 32, 128) instead of a share.
// Zones a GFP_USER allocation may use (gfp_zone(GFP_USER) = ZONE_NORMAL and below).
bool is_user_zone(std::string_view zone) {
    return zone == "DMA" || zone == "DMA32" || zone == "Normal";
}

uint64_t page_kib(uint64_t page_size) {
    return std::max<uint64_t>(page_size / 1024, 1);
}

uint64_t lowmem_managed_pages(const ZoneInfo& zones) {
    uint64_t sum = 0;
    for (const auto& z : zones.zones)
        if (is_lowmem_zone(z.zone)) sum += z.managed;
    return sum;
}

uint64_t managed_pages_total(const ZoneInfo& zones) {
    uint64_t sum = 0;
    for (const auto& z : zones.zones) sum += z.managed;
    return sum;
}

std::optional<CounterDelta> counter(const Signals& s, std::string_view name) {
    auto it = s.counters.find(name);
    if (it == s.counters.end()) return std::nullopt;
    return it->second;
}
double rate(const Signals& s, std::string_view name) {
    auto c = counter(s, name);
    return c ? c->per_sec : 0.0;
}
uint64_t delta(const Signals& s, std::string_view name) {
    auto c = counter(s, name);
    return c ? c->delta : 0;
}

std::string secs(uint64_t usec) {
    return fmt::format("{:.1f} s", static_cast<double>(usec) / 1e6);
}

uint32_t atomic_failures(const Signals& s, int max_order) {
    uint32_t n = 0;
    for (const auto& [order, count] : s.atomic_failures_by_order)
        if (order <= max_order) n += count;
    return n;
}

uint32_t high_order_failures(const Signals& s, int max_order) {
    uint32_t n = 0;
    for (const auto& [order, count] : s.failures_by_order)
        if (order > max_order) n += count;
    return n;
}

size_t recent_change_count(const KnobState& ks, uint64_t now) {
    return static_cast<size_t>(std::count_if(ks.recent_changes_usec.begin(),
                                             ks.recent_changes_usec.end(),
                                             [&](uint64_t t) { return t + kHourUsec > now; }));
}

// What a policy wants this tick, before the guards.
struct Proposal {
    Action action = Action::raise;
    int64_t target = 0;
    std::string rule, reason;
};

struct Tick {
    const Sample& sample;
    const ControllerState& state;
    const Config& config;
    ControllerState& next;
    uint64_t now = 0;
};

void mark_not_calm(const Tick& t, Knob k) {
    t.next.knob(k).last_trouble_usec = t.now;
}

// Calm for the knob's calm_usec: no rule fired and no signal sat between relax and raise
// thresholds.
bool is_calm(const Tick& t, Knob k) {
    const auto& ks = t.next.knob(k);
    uint64_t since = std::max(ks.last_trouble_usec, t.state.start_usec);
    return t.now >= since && t.now - since >= t.config.knob(k).calm_usec;
}

// One step back towards the baseline (from either side), once per decay interval, once calm.
std::optional<Proposal> decay_proposal(const Tick& t, Knob k, int64_t cur, int64_t step,
                                       std::string_view why) {
    const auto& ks = t.next.knob(k);
    const auto& kc = t.config.knob(k);
    if (cur == ks.baseline || !is_calm(t, k)) return std::nullopt;
    if (ks.last_decay_usec != 0 && t.now - ks.last_decay_usec < kc.decay_interval_usec)
        return std::nullopt;
    step = std::max<int64_t>(step, 1);
    int64_t target =
        cur > ks.baseline ? std::max(ks.baseline, cur - step) : std::min(ks.baseline, cur + step);
    uint64_t since = std::max(ks.last_trouble_usec, t.state.start_usec);
    return Proposal{Action::decay, target, "decay",
                    fmt::format("calm for {} ({}); stepping back towards baseline {}",
                                secs(t.now - since), why, ks.baseline)};
}

// ---- policies -----------------------------------------------------------------------------------

std::optional<Proposal> policy_min_free(const Tick& t, int64_t cur) {
    const auto& p = t.config.min_free;
    const Signals& s = t.sample.signals;
    const Knob k = Knob::min_free_kbytes;

    uint32_t atomic = atomic_failures(s, p.max_failure_order);
    int dips = std::popcount(t.next.min_dip_history);
    double lowq = rate(s, "kswapd_low_wmark_hit_quickly");
    size_t zones = s.zones.size();

    std::vector<std::string> why;
    std::string rule;
    if (atomic > 0) {
        rule = "atomic-failures";
        std::string orders;
        for (const auto& [order, count] : s.atomic_failures_by_order)
            if (order <= p.max_failure_order && count > 0)
                orders += fmt::format("{}order-{}: {}", orders.empty() ? "" : ", ", order, count);
        if (s.atomic_failures_by_order.size() == 1)
            why.push_back(fmt::format("{} atomic order-{} failure{} in {}", atomic,
                                      s.atomic_failures_by_order.begin()->first,
                                      atomic == 1 ? "" : "s", secs(s.interval_usec)));
        else
            why.push_back(fmt::format("{} atomic failures ({}) in {}", atomic, orders,
                                      secs(s.interval_usec)));
        why.push_back(
            fmt::format("{} of {} zones at or below min", s.zones_at_or_below_min, zones));
    }
    if (dips >= static_cast<int>(p.min_dip_ticks)) {
        if (rule.empty()) rule = "min-watermark-dips";
        why.push_back(
            fmt::format("zones at or below min in {} of the last 8 ticks (>= {}); now {} of {}",
                        dips, p.min_dip_ticks, s.zones_at_or_below_min, zones));
    }
    if (lowq > p.kswapd_low_quick_per_sec) {
        if (rule.empty()) rule = "kswapd-low-quick";
        why.push_back(fmt::format("kswapd hit the low watermark quickly {:.1f}/s (> {:.1f}/s)",
                                  lowq, p.kswapd_low_quick_per_sec));
    }
    if (rule.empty() && t.next.atomic_failure_history != 0) {
        // Failures seen in the last 8 ticks that no applied change has answered yet (e.g. the raise
        // was refused as unsafe then): still trouble.
        rule = "atomic-failures";
        why.push_back(
            fmt::format("atomic failures in {} of the last 8 ticks, not yet answered by a change",
                        std::popcount(t.next.atomic_failure_history)));
    }

    if (!rule.empty()) {
        mark_not_calm(t, k);
        // From below the baseline (lowered by an administrator, then unpinned) a raise starts from
        // the baseline: reaching the floor alone would answer the trouble with less than a raise.
        const int64_t from = std::max(cur, t.next.knob(k).baseline);
        int64_t target =
            p.raise_factor > 1.0
                ? static_cast<int64_t>(std::ceil(static_cast<double>(from) * p.raise_factor))
                : from + p.decay_step_kib;
        if (target <= cur) target = cur + 1;
        std::string reason;
        for (const auto& w : why) reason += (reason.empty() ? "" : "; ") + w;
        return Proposal{Action::raise, target, rule, reason};
    }
    return decay_proposal(t, k, cur, p.decay_step_kib, "no atomic failures, no min-watermark dips");
}

std::optional<Proposal> policy_watermark(const Tick& t, int64_t cur) {
    const auto& p = t.config.watermark;
    const Signals& s = t.sample.signals;
    const Knob k = Knob::watermark_scale_factor;

    double allocstall = rate(s, "allocstall");
    uint64_t scan_direct = delta(s, "pgscan_direct");
    std::optional<double> psi = s.psi_some_percent;
    bool psi_high = psi && *psi >= p.psi_some_raise_percent;
    bool stalls = allocstall >= p.allocstall_raise_per_sec || scan_direct > 0 || psi_high;
    // Pure atomic starvation: atomic failures while every zone below low is already at or below
    // min. Free memory fell through the low..min band into the reserve; that is min_free_kbytes'
    // job, a wider low..min gap would only make kswapd work harder.
    bool pure_atomic = atomic_failures(s, t.config.min_free.max_failure_order) > 0 &&
                       s.zones_below_low == s.zones_at_or_below_min;

    if (allocstall > 0 || scan_direct > 0) t.next.wsf_last_stall_usec = t.now;
    if (stalls && s.zones_below_low > 0 && !pure_atomic) {
        mark_not_calm(t, k);
        t.next.wsf_relief_value = cur + p.raise_step;
        std::string psi_text = psi ? fmt::format("{:.1f}%", *psi) : std::string("n/a");
        return Proposal{
            Action::raise, cur + p.raise_step, "direct-reclaim",
            fmt::format(
                "direct reclaim: {:.1f} allocstalls/s (>= {:.1f}), pgscan_direct {}{} in {}, "
                "PSI some {} (>= {:.1f}%); {} of {} zones below low",
                allocstall, p.allocstall_raise_per_sec, scan_direct,
                t.sample.profile.pgscan_direct_has_khugepaged
                    ? " (with khugepaged and proactive reclaim on this kernel)"
                : t.sample.profile.pgscan_direct_has_proactive
                    ? " (with proactive reclaim on this kernel)"
                    : "",
                secs(s.interval_usec), psi_text, p.psi_some_raise_percent, s.zones_below_low,
                s.zones.size())};
    }
    // Hysteresis: any direct reclaim, or PSI above the relax threshold, is not calm.
    if (allocstall > 0 || scan_direct > 0 || (psi && *psi >= p.psi_some_relax_percent)) {
        mark_not_calm(t, k);
        return std::nullopt;
    }
    const bool kswapd_busy = delta(s, "pgscan_kswapd") > 0;
    std::optional<Proposal> d =
        kswapd_busy ? decay_proposal(t, k, cur, p.raise_step, "")
                    : decay_proposal(t, k, cur, p.decay_step, "no direct reclaim, PSI low");
    if (!d) return std::nullopt;
    // Stall memory: not below the value that ended the last direct-reclaim stalls for a while.
    const auto& ks = t.next.knob(k);
    const uint64_t last_stall = t.next.wsf_last_stall_usec;
    const int64_t relief = t.next.wsf_relief_value;
    if (cur > ks.baseline && relief > ks.baseline && last_stall != 0 &&
        t.now - last_stall < p.stall_memory_usec) {
        if (cur <= relief) {
            t.next.knob(k).last_reason = fmt::format(
                "holding at {}: it ended direct-reclaim stalls {} ago (remembered for {})", cur,
                secs(t.now - last_stall), secs(p.stall_memory_usec));
            return std::nullopt;
        }
        d->target = std::max(d->target, relief);
    }
    if (kswapd_busy && cur > ks.baseline) {
        // kswapd busy with no direct stalls for calm_usec: a wide low..high gap only makes kswapd
        // reclaim more than needed. Step back faster (raise_step), never below the baseline.
        uint64_t since = std::max(ks.last_trouble_usec, t.state.start_usec);
        return Proposal{
            Action::lower, d->target, "kswapd-busy",
            fmt::format("kswapd busy (pgscan_kswapd {} in {}) with no direct reclaim for {}",
                        delta(s, "pgscan_kswapd"), secs(s.interval_usec), secs(t.now - since))};
    }
    return d;
}

struct Fragmentation {
    bool high = false;       // some target order at or above the raise threshold
    bool plentiful = false;  // every target order below the relax threshold
    std::string text;        // "order-9 unusable free index 870/1000"
};

Fragmentation fragmentation(const Signals& s, const CompactionPolicy& p) {
    Fragmentation f;
    f.plentiful = !s.targets.empty();
    const OrderSignals* worst = nullptr;
    for (const auto& o : s.targets) {
        if (o.unusable_permille >= p.unusable_raise_permille) f.high = true;
        if (o.unusable_permille >= p.unusable_relax_permille) f.plentiful = false;
        if (!worst || o.unusable_permille > worst->unusable_permille) worst = &o;
    }
    if (worst)
        f.text = fmt::format("order-{} unusable free index {}/1000 ({} free blocks)", worst->order,
                             worst->unusable_permille, worst->free_blocks);
    return f;
}

std::optional<Proposal> policy_compaction(const Tick& t, int64_t cur, bool& want_kick,
                                          std::string& kick_why) {
    const auto& p = t.config.compaction;
    const Signals& s = t.sample.signals;
    const Knob k = Knob::compaction_proactiveness;

    auto frag = fragmentation(s, p);
    uint64_t stall = delta(s, "compact_stall");
    uint64_t fallback = delta(s, "thp_fault_fallback");
    uint64_t fail = delta(s, "compact_fail");
    uint64_t success = delta(s, "compact_success");
    uint32_t high_fail = high_order_failures(s, t.config.min_free.max_failure_order);

    // compact_stall/fail/success count direct compaction only; what proactiveness drives is
    // kcompactd, whose work shows in compact_daemon_* (4.6+; the scanned counters 4.17+). Where the
    // kernel prints them, kcompactd is futile when it scanned for futile_min_fail ticks in a row
    // and the fragmentation score did not fall; the direct-compaction ratio judges only kernels
    // without them.
    if (auto scanned = counter(s, "compact_daemon_migrate_scanned")) {
        const int prev_score = t.state.last_fragmentation_score;
        const bool worked = scanned->delta > 0;
        const bool improved = prev_score >= 0 && s.max_fragmentation_score < prev_score;
        t.next.kcompactd_futile_ticks =
            worked && !improved && prev_score >= 0 ? t.state.kcompactd_futile_ticks + 1 : 0;
        if (cur > 0 && t.next.kcompactd_futile_ticks >= std::max<uint32_t>(p.futile_min_fail, 1)) {
            mark_not_calm(t, k);
            t.next.last_compaction_futile_usec = t.now;
            const uint32_t ticks = t.next.kcompactd_futile_ticks;
            t.next.kcompactd_futile_ticks = 0;
            return Proposal{
                Action::lower, cur - p.raise_step, "compaction-futile",
                fmt::format("kcompactd scanned {} pages (compact_daemon_migrate_scanned) in {} and "
                            "{} ticks in a row without the fragmentation score falling (now {}): "
                            "compaction is futile, backing off",
                            scanned->delta, secs(s.interval_usec), ticks,
                            s.max_fragmentation_score)};
        }
    } else if (fail > 0 && fail >= p.futile_min_fail &&
               static_cast<double>(fail) > p.futile_fail_ratio * static_cast<double>(success)) {
        mark_not_calm(t, k);
        t.next.last_compaction_futile_usec = t.now;
        return Proposal{
            Action::lower, cur - p.raise_step, "compaction-futile",
            fmt::format("compact_fail {} vs compact_success {} in {} (> {:.1f}x): compaction is "
                        "futile, backing off",
                        fail, success, secs(s.interval_usec), p.futile_fail_ratio)};
    }
    bool raise = frag.high || stall > 0 || fallback > 0 || high_fail > 0;
    if (raise) {
        mark_not_calm(t, k);
        uint64_t futile_at = t.state.last_compaction_futile_usec;
        if (futile_at != 0 && t.now - futile_at < p.futile_backoff_usec) {
            t.next.knob(k).last_reason =
                fmt::format("fragmentation high but compaction was futile {} ago: holding for {}",
                            secs(t.now - futile_at), secs(p.futile_backoff_usec));
            return std::nullopt;
        }
        std::vector<std::string> why;
        if (frag.high)
            why.push_back(fmt::format("{} (>= {}/1000)", frag.text, p.unusable_raise_permille));
        if (stall > 0) why.push_back(fmt::format("compact_stall {}", stall));
        if (fallback > 0) why.push_back(fmt::format("thp_fault_fallback {}", fallback));
        if (high_fail > 0)
            why.push_back(fmt::format("{} allocation failure{} of order > {}", high_fail,
                                      high_fail == 1 ? "" : "s",
                                      t.config.min_free.max_failure_order));
        std::string reason;
        for (const auto& w : why) reason += (reason.empty() ? "" : ", ") + w;
        reason += fmt::format(" in {}", secs(s.interval_usec));
        want_kick = frag.high;
        kick_why = frag.text;
        // One step is often too little: kcompactd only starts when a node's fragmentation score
        // exceeds the high watermark of mm/compaction.c fragmentation_score_wmark ((100 -
        // proactiveness) + 10 up to 6.15; + min(10, low / 2) since, KernelProfile) and stops at
        // 100 - proactiveness. Measured on our VM, a +20 step from 20 left the score above
        // the new watermark and kcompactd idle for the whole burst. So go at least to the value at
        // which the kernel compacts the node that is fragmented now, with 10 points to spare.
        int64_t target = cur + p.raise_step;
        if (frag.high && s.max_fragmentation_score > 0) {
            const int64_t needed =
                std::min<int64_t>(
                    proactiveness_for_score(t.sample.profile, s.max_fragmentation_score), 100) +
                10;
            if (needed > target) {
                target = needed;
                reason += fmt::format("; {} so that kcompactd works on fragmentation score {}",
                                      target, s.max_fragmentation_score);
            }
        }
        return Proposal{Action::raise, target, "fragmentation", reason};
    }
    if (!frag.plentiful) {
        mark_not_calm(t, k);  // between the thresholds: hold
        return std::nullopt;
    }
    return decay_proposal(t, k, cur, p.decay_step,
                          fmt::format("{} < {}/1000", frag.text, p.unusable_relax_permille));
}

// 6.18's vm.vfs_cache_pressure_denom divides the pressure: the effective pressure is
// vfs_cache_pressure / denom (100/100 the default). fragtune leaves the denominator to the
// administrator and says what a value means under it.
std::string denom_note(const Sample& sample, int64_t value) {
    const auto denom = sample.vfs_cache_pressure_denom;
    if (!denom || *denom == 100) return "";
    return fmt::format(
        "; effective pressure {}/{} = {:.2f}x the default (vfs_cache_pressure_denom {})", value,
        *denom, static_cast<double>(value) / static_cast<double>(*denom), *denom);
}

std::optional<Proposal> policy_vfs_cache(const Tick& t, int64_t cur) {
    const auto& p = t.config.vfs_cache;
    const Signals& s = t.sample.signals;
    const Knob k = Knob::vfs_cache_pressure;
    if (!s.sreclaimable_kib || s.mem_total_kib == 0) {
        t.next.knob(k).last_reason = "no SReclaimable in /proc/meminfo: slab share unknown";
        return std::nullopt;
    }
    double share = static_cast<double>(*s.sreclaimable_kib) / static_cast<double>(s.mem_total_kib);
    auto frag = fragmentation(s, t.config.compaction);
    bool fragmented = s.max_fragmentation_score >= p.fragmentation_score || frag.high;

    if (share >= p.slab_raise_share && fragmented) {
        mark_not_calm(t, k);
        return Proposal{
            Action::raise, cur + p.raise_step, "slab-fragmentation",
            fmt::format("SReclaimable {} KiB = {:.1f}% of MemTotal (>= {:.1f}%) while fragmented: "
                        "fragmentation score {} (>= {}), {}{}",
                        *s.sreclaimable_kib, share * 100, p.slab_raise_share * 100,
                        s.max_fragmentation_score, p.fragmentation_score, frag.text,
                        denom_note(t.sample, cur + p.raise_step))};
    }
    if (share < p.slab_relax_share) {
        // Slab is small again: straight back to the baseline (one change instead of many small
        // ones).
        const auto& ks = t.next.knob(k);
        if (cur == ks.baseline) return std::nullopt;
        return Proposal{
            Action::decay, ks.baseline, "decay",
            fmt::format("SReclaimable {:.1f}% of MemTotal (< {:.1f}%): back to baseline",
                        share * 100, p.slab_relax_share * 100)};
    }
    if (fragmented) {
        mark_not_calm(t, k);  // slab share between the thresholds while fragmented: hold
        return std::nullopt;
    }
    return decay_proposal(t, k, cur, p.decay_step, "not fragmented");
}

std::optional<Proposal> policy_swappiness(const Tick& t, int64_t cur) {
    const auto& p = t.config.swappiness;
    const Signals& s = t.sample.signals;
    const Knob k = Knob::swappiness;
    if (s.swap_total_kib == 0) {
        t.next.knob(k).last_reason = "no swap: swappiness has no effect";
        return std::nullopt;
    }
    if (s.interval_usec == 0) return std::nullopt;  // no rates yet
    double refault = rate(s, "workingset_refault_file");
    double swapin = rate(s, "pswpin");
    if (swapin >= p.swapin_lower_per_sec) {
        mark_not_calm(t, k);
        return Proposal{Action::lower, cur - p.step, "swap-ins",
                        fmt::format("{:.0f} swap-ins/s (>= {:.0f}/s): keep anonymous memory in RAM",
                                    swapin, p.swapin_lower_per_sec)};
    }
    if (refault >= p.refault_file_raise_per_sec && swapin < p.swapin_low_per_sec) {
        mark_not_calm(t, k);
        return Proposal{
            Action::raise, cur + p.step, "refaults",
            fmt::format("{:.0f} file refaults/s (>= {:.0f}/s) with {:.0f} swap-ins/s (< {:.0f}/s): "
                        "favour swapping cold anonymous memory",
                        refault, p.refault_file_raise_per_sec, swapin, p.swapin_low_per_sec)};
    }
    if (refault >= p.refault_file_relax_per_sec || swapin >= p.swapin_low_per_sec) {
        mark_not_calm(t, k);
        return std::nullopt;
    }
    return decay_proposal(t, k, cur, p.decay_step, "refaults and swap-ins low");
}

// ---- guards -------------------------------------------------------------------------------------

struct SafetyView {
    uint64_t free_kib = 0;  // free memory of lowmem zones
    uint64_t low_kib = 0;   // predicted total low watermark of lowmem zones
};

SafetyView safety_view(const Sample& sample, int64_t min_free_kbytes) {
    int64_t wsf = sample.knob(Knob::watermark_scale_factor).value_or(kDefaultWatermarkScaleFactor);
    auto wm = predict_watermarks(sample.zoneinfo, min_free_kbytes, wsf, sample.profile);
    const uint64_t pk = page_kib(sample.profile.page_size_bytes);
    SafetyView v;
    for (size_t i = 0; i < sample.zoneinfo.zones.size(); ++i) {
        const auto& z = sample.zoneinfo.zones[i];
        if (!is_lowmem_zone(z.zone)) continue;
        // What the allocator keeps in this zone: the low watermark plus the lowmem_reserve that
        // allocations able to use a higher zone must leave (the largest protection entry, as
        // calculate_totalreserve_pages counts it), never more than the zone has.
        uint64_t reserve = 0;
        for (uint64_t r : z.protection) reserve = std::max(reserve, r);
        const uint64_t kept =
            std::min<uint64_t>(wm[i].low + reserve, std::max(z.managed, wm[i].low));
        v.free_kib += z.free * pk;
        v.low_kib += kept * pk;
    }
    return v;
}

bool safe(const Sample& sample, int64_t value, uint64_t margin_kib) {
    auto v = safety_view(sample, value);
    return v.free_kib >= v.low_kib + margin_kib;
}

std::optional<Decision> refuse(const Tick& t, Knob k, int64_t cur, int64_t wanted, std::string rule,
                               std::string reason) {
    auto& ks = t.next.knob(k);
    ks.last_rule = rule;
    ks.last_reason = reason;
    if (ks.last_refuse_rule == rule && ks.last_refuse_usec != 0 &&
        t.now - ks.last_refuse_usec < kRefuseRepeatUsec)
        return std::nullopt;
    ks.last_refuse_rule = rule;
    ks.last_refuse_usec = t.now;
    return Decision{k, Action::refuse, cur, wanted, std::move(rule), std::move(reason), false};
}

// Only a non-zero write wakes proactive compaction, and only since 5.15.
bool kicks_supported(const Sample& sample, int64_t cur) {
    return sample.kernel && *sample.kernel >= kKickSince && cur > 0;
}

std::optional<Decision> kick(const Tick& t, int64_t cur, const std::string& frag_text,
                             std::string_view blocked_by) {
    const auto& p = t.config.compaction;
    if (!kicks_supported(t.sample, cur)) return std::nullopt;
    uint64_t last = t.state.last_compaction_kick_usec;
    if (last != 0 && t.now - last < p.kick_interval_usec) return std::nullopt;
    t.next.last_compaction_kick_usec = t.now;
    auto& ks = t.next.knob(Knob::compaction_proactiveness);
    Decision d{
        Knob::compaction_proactiveness,
        Action::kick,
        cur,
        cur,
        "compaction-kick",
        fmt::format("{} (>= {}/1000) and {}: rewriting {} wakes kcompactd now instead of after its "
                    "~30 s deferral (kernel >= 5.15)",
                    frag_text, p.unusable_raise_permille, blocked_by, cur),
        true};
    ks.last_rule = d.rule;
    ks.last_reason = d.reason;
    return d;
}

// Shapes a proposal into a decision (or a refusal, or nothing) under the rules every knob obeys.
std::optional<Decision> guard(const Tick& t, Knob k, int64_t cur, Proposal p, bool want_kick,
                              const std::string& kick_why) {
    // The watermark knobs' raises are judged against the zones' watermarks and sizes: never on a
    // zoneinfo read ticks ago (the Sampler reads it afresh on every trouble that proposes one).
    if (p.action == Action::raise && !t.sample.zoneinfo_fresh &&
        (k == Knob::min_free_kbytes || k == Knob::watermark_scale_factor))
        return refuse(
            t, k, cur, p.target, "stale-zoneinfo",
            fmt::format("{}; refused: the zone watermarks are from a read {} ago", p.reason,
                        secs(t.sample.mono_usec - t.sample.zoneinfo_mono_usec)));
    auto& ks = t.next.knob(k);
    const auto& kc = t.config.knob(k);
    const bool is_compaction = k == Knob::compaction_proactiveness;
    Range b = effective_bounds(k, ks, t.config, t.sample);
    std::string notes;

    int64_t target = p.target;
    if (p.action == Action::raise) {
        if (target > b.max) {
            target = std::max(cur, b.max);
            if (k == Knob::min_free_kbytes &&
                b.max == min_free_cap_kib(t.sample.zoneinfo, t.config.safety, t.sample.profile))
                notes += fmt::format("; capped at {} KiB ({:.1f}% of managed lowmem)", b.max,
                                     t.config.safety.max_min_free_lowmem_percent);
            else
                notes += fmt::format("; capped at the upper bound {}", b.max);
        }
    } else if (p.action == Action::lower) {
        if (target < b.min) target = std::min(cur, b.min);
    }
    if (kc.max_step > 0 && b.contains(cur) && std::llabs(target - cur) > kc.max_step) {
        target = target > cur ? cur + kc.max_step : cur - kc.max_step;
        notes += fmt::format("; limited to a step of {}", kc.max_step);
    }
    // Every target ends inside the effective bounds, whatever the policy proposed and the step
    // limit made of it: the write refuses anything outside them, and a refused write would mark
    // the knob failed. A knob found outside its bounds (an administrator lowered min_free_kbytes
    // under its baseline, then unpinned it) therefore goes to the nearest bound in one step: the
    // bounds beat the step limit, which applies only from inside them. A clamp that would turn the
    // move around (a lower from below the minimum, a decay whose baseline lies beyond the far
    // bound) is no move at all.
    if (!b.contains(target)) {
        const int64_t clamped = b.clamp(target);
        if ((clamped > cur) == (target > cur) && (clamped < cur) == (target < cur)) {
            notes +=
                fmt::format("; moved to the bound {} (bounds [{}, {}])", clamped, b.min, b.max);
            target = clamped;
        } else {
            target = cur;
        }
    }

    if (target == cur) {
        if (p.action == Action::decay) return std::nullopt;
        if (is_compaction && p.action == Action::raise && want_kick &&
            kicks_supported(t.sample, cur)) {
            // At the maximum under sustained fragmentation is the normal state: kick when the
            // interval allows, otherwise hold quietly instead of refusing every minute.
            if (auto d = kick(t, cur, kick_why,
                              fmt::format("proactiveness already at its maximum {}", b.max)))
                return d;
            ks.last_rule = p.rule;
            ks.last_reason = fmt::format("{}; at the maximum {}, waiting for the kick interval",
                                         p.reason, b.max);
            return std::nullopt;
        }
        if (p.action == Action::raise && k == Knob::min_free_kbytes &&
            b.max == min_free_cap_kib(t.sample.zoneinfo, t.config.safety, t.sample.profile))
            return refuse(
                t, k, cur, p.target, "safety-cap",
                fmt::format("{}; refused: {} KiB is the cap ({:.1f}% of managed lowmem)", p.reason,
                            b.max, t.config.safety.max_min_free_lowmem_percent));
        return refuse(
            t, k, cur, p.target, "at-bound",
            fmt::format("{}; refused: already at the bound [{}, {}]", p.reason, b.min, b.max));
    }

    // Cooldown: hold silently (the rule will fire again next tick if the trouble lasts).
    if (ks.last_change_usec != 0 && t.now - ks.last_change_usec < kc.cooldown_usec) {
        if (is_compaction && p.action == Action::raise && want_kick)
            if (auto d = kick(t, cur, kick_why,
                              fmt::format("the cooldown forbids a change for another {}",
                                          secs(ks.last_change_usec + kc.cooldown_usec - t.now))))
                return d;
        ks.last_rule = p.rule;
        ks.last_reason = fmt::format("{}; waiting for the cooldown ({} left)", p.reason,
                                     secs(ks.last_change_usec + kc.cooldown_usec - t.now));
        return std::nullopt;
    }
    // Sliding-hour cap on changes (decays count too; they wait silently). The last change of the
    // hour is kept for a step back towards the baseline, so that a burst of raises can never leave
    // a knob stranded away from its baseline for an hour.
    size_t changes = recent_change_count(ks, t.now);
    const bool towards_baseline = std::llabs(target - ks.baseline) < std::llabs(cur - ks.baseline);
    const size_t cap = kc.max_changes_per_hour == 0 ? 0
                       : towards_baseline           ? kc.max_changes_per_hour
                                                    : kc.max_changes_per_hour - 1;
    if (changes >= cap) {
        if (is_compaction && p.action == Action::raise && want_kick)
            if (auto d = kick(t, cur, kick_why,
                              fmt::format("the hourly cap of {} changes is reached",
                                          kc.max_changes_per_hour)))
                return d;
        if (p.action == Action::decay) return std::nullopt;
        return refuse(
            t, k, cur, target, "rate-limit",
            fmt::format("{}; refused: {} changes in the last hour (cap {}, the last one kept "
                        "for a step back towards the baseline)",
                        p.reason, changes, kc.max_changes_per_hour));
    }

    // Safety guard for min_free_kbytes raises, whatever the configuration says.
    if (k == Knob::min_free_kbytes && p.action == Action::raise) {
        const uint64_t margin = t.config.safety.margin_kib;
        if (!safe(t.sample, target, margin)) {
            auto v = safety_view(t.sample, target);
            int64_t lo = cur,
                    hi = target;  // largest safe value in [cur, target): lo safe or == cur
            if (!safe(t.sample, cur, margin)) hi = cur;
            while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                if (safe(t.sample, mid, margin))
                    lo = mid;
                else
                    hi = mid;
            }
            std::string numbers = fmt::format(
                "free lowmem {} KiB must stay {} KiB above the predicted low watermark ({} KiB at "
                "{} KiB)",
                v.free_kib, margin, v.low_kib, target);
            if (lo <= cur)
                return refuse(t, k, cur, target, "safety-low-watermark",
                              fmt::format("{}; refused: {}", p.reason, numbers));
            // From below the bounds (a knob lowered under its baseline, then unpinned) the largest
            // safe value may still lie under the bounds' minimum: writing it would be refused as
            // out of range and mark the knob failed, so the raise is refused here instead.
            if (lo < b.min)
                return refuse(t, k, cur, target, "safety-low-watermark",
                              fmt::format("{}; refused: {}; the largest safe value {} KiB is "
                                          "below the bounds' minimum {} KiB",
                                          p.reason, numbers, lo, b.min));
            notes += fmt::format("; limited to {} KiB by the safety guard: {}", lo, numbers);
            target = lo;
        }
    }

    Decision d{k, p.action, cur, target, p.rule, p.reason + notes, true};
    ks.last_rule = d.rule;
    ks.last_reason = d.reason;
    if (p.action == Action::decay || p.action == Action::lower) ks.last_decay_usec = t.now;
    return d;
}

// The administrator wins: a live value that is not what we wrote pins the knob, except
// min_free_kbytes set by the kernel's own recalculation, which is adopted as the new baseline.
//
// mm/page_alloc.c init_per_zone_wmark_min() runs on every memory online and offline (not on a
// balloon, which changes managed pages through adjust_managed_page_count() without it). It sets
// calculate_min_free_kbytes()'s value only when that is larger than the last value user space wrote
// (user_min_free_kbytes, -1 until the first write), so before fragtune's first write the value can
// go down as well as up; then khugepaged's set_recommended_min_free_kbytes() raises it to its THP
// recommendation when that is larger. So a change is the kernel's when managed pages changed in the
// same tick and the new value is one of those the kernel computes (kernel_min_free_kbytes(), with
// the high watermarks before and after, within 1%); anything else, a balloon tick included, is an
// administrator's write and pins the knob.
std::optional<Decision> check_owner(const Tick& t, Knob k, int64_t live, uint64_t managed_now) {
    auto& ks = t.next.knob(k);
    std::optional<int64_t> expected = ks.last_written ? ks.last_written : ks.original;
    if (!expected || live == *expected) return std::nullopt;
    uint64_t managed_before = t.state.managed_pages_total;
    if (k == Knob::min_free_kbytes && managed_before != 0 && managed_before != managed_now) {
        const auto& zones = t.sample.zoneinfo;
        const int64_t high_delta = static_cast<int64_t>(t.state.user_zone_high_pages) -
                                   static_cast<int64_t>(user_zone_high_pages(zones));
        bool kernels = false;
        std::string which;
        const int64_t wsf =
            t.sample.knob(Knob::watermark_scale_factor).value_or(kDefaultWatermarkScaleFactor);
        for (int64_t delta : {high_delta, int64_t{0}}) {
            const KernelMinFree c = kernel_min_free_kbytes(
                zones, t.sample.profile, wsf, t.state.user_min_free_kbytes, *expected, delta);
            if (c.matches(live)) {
                kernels = true;
                which = c.thp > c.no_thp
                            ? fmt::format(
                                  "khugepaged's recommendation is {}..{} KiB with and "
                                  "without watermark boost",
                                  std::max(c.no_thp, c.thp_boosted), c.thp)
                            : fmt::format("calculate_min_free_kbytes gives {} KiB", c.no_thp);
            }
            if (kernels) break;
        }
        if (kernels) {
            Decision d{
                k,
                live > *expected ? Action::raise : Action::lower,
                *expected,
                live,
                "kernel-recalculated",
                fmt::format("the kernel recalculated min_free_kbytes to {} KiB after managed "
                            "memory changed from {} to {} pages (memory hotplug; {}); "
                            "adopted as the new baseline (was {})",
                            live, managed_before, managed_now, which, ks.baseline),
                false};
            ks.baseline = live;
            ks.last_written = live;
            ks.last_rule = d.rule;
            ks.last_reason = d.reason;
            return d;
        }
    }
    ks.status = KnobStatus::pinned;
    ks.status_reason =
        ks.last_written
            ? fmt::format("changed to {} by someone else (we wrote {})", live, *expected)
            : fmt::format("changed to {} by someone else (it was {} at start)", live, *expected);
    ks.last_rule = "admin-override";
    ks.last_reason = ks.status_reason;
    return Decision{k, Action::pin, *expected, live, "admin-override", ks.status_reason, false};
}

}  // namespace

// ---- watermark prediction -----------------------------------------------------------------------

std::vector<ZoneWatermarks> predict_watermarks(const ZoneInfo& zones, int64_t min_free_kbytes,
                                               int64_t watermark_scale_factor,
                                               const KernelProfile& profile) {
    const uint64_t pages_min = static_cast<uint64_t>(std::max<int64_t>(min_free_kbytes, 0)) /
                               page_kib(profile.page_size_bytes);
    const uint64_t wsf = static_cast<uint64_t>(std::max<int64_t>(watermark_scale_factor, 0));
    // Up to 6.4 ZONE_MOVABLE counts in lowmem_pages and gets a proportional min like any lowmem
    // zone; since "mm/page_alloc: fix min_free_kbytes calculation regarding ZONE_MOVABLE" (v6.5) it
    // is left out and capped like HighMem.
    auto capped = [&](std::string_view zone) {
        return zone == "HighMem" || (zone == "Movable" && !profile.movable_in_lowmem);
    };
    uint64_t lowmem_pages = 0;
    for (const auto& z : zones.zones)
        if (!capped(z.zone) && z.zone != "Device") lowmem_pages += z.managed;

    std::vector<ZoneWatermarks> out;
    out.reserve(zones.zones.size());
    for (const auto& z : zones.zones) {
        // tmp = pages_min * managed / lowmem_pages, the zone's proportional share (also for capped
        // zones, where it only feeds the gap below).
        uint64_t share = lowmem_pages == 0
                             ? 0
                             : static_cast<uint64_t>(u128{pages_min} * z.managed / lowmem_pages);
        uint64_t min = share;
        if (capped(z.zone)) min = std::clamp<uint64_t>(z.managed / 1024, 32, 128);
        // mult_frac(managed, watermark_scale_factor, 10000)
        uint64_t scaled = (z.managed / 10000) * wsf + (z.managed % 10000) * wsf / 10000;
        uint64_t gap = std::max(share >> 2, scaled);
        out.push_back(ZoneWatermarks{z.node, z.zone, min, min + gap, min + 2 * gap});
    }
    return out;
}

std::vector<ZoneWatermarks> predict_watermarks(const ZoneInfo& zones, int64_t min_free_kbytes,
                                               int64_t watermark_scale_factor) {
    return predict_watermarks(zones, min_free_kbytes, watermark_scale_factor, KernelProfile{});
}

int64_t min_free_cap_kib(const ZoneInfo& zones, const SafetyConfig& safety,
                         const KernelProfile& profile) {
    double kib =
        static_cast<double>(lowmem_managed_pages(zones) * page_kib(profile.page_size_bytes));
    return static_cast<int64_t>(kib * safety.max_min_free_lowmem_percent / 100.0);
}

int64_t min_free_cap_kib(const ZoneInfo& zones, const SafetyConfig& safety) {
    return min_free_cap_kib(zones, safety, KernelProfile{});
}

uint64_t user_zone_high_pages(const ZoneInfo& zones) {
    uint64_t sum = 0;
    for (const auto& z : zones.zones)
        if (is_user_zone(z.zone)) sum += z.high;
    return sum;
}

KernelMinFree kernel_min_free_kbytes(const ZoneInfo& zones, const KernelProfile& profile,
                                     int64_t watermark_scale_factor,
                                     std::optional<int64_t> user_min_kib, int64_t current_kib,
                                     int64_t high_pages_delta) {
    const uint64_t pk = page_kib(profile.page_size_bytes);
    // nr_free_buffer_pages(): managed - high over the zones GFP_USER may use (DMA, DMA32, Normal).
    auto free_buffer = [&](const std::vector<uint64_t>& highs, int64_t delta) {
        int64_t sum = 0, managed = 0;
        for (size_t i = 0; i < zones.zones.size(); ++i) {
            const auto& z = zones.zones[i];
            if (!is_user_zone(z.zone) || z.managed == 0) continue;
            managed += static_cast<int64_t>(z.managed);
            if (z.managed > highs[i]) sum += static_cast<int64_t>(z.managed - highs[i]);
        }
        return std::clamp<int64_t>(sum - delta, 0, std::max<int64_t>(managed, 0));
    };
    std::vector<uint64_t> highs;
    int nr_zones = 0;
    for (const auto& z : zones.zones) {
        highs.push_back(z.high);
        if (is_user_zone(z.zone) && z.managed) ++nr_zones;
    }
    const auto isqrt = [](uint64_t v) {
        uint64_t x = static_cast<uint64_t>(std::sqrt(static_cast<double>(v)));
        while (x * x > v) --x;
        while ((x + 1) * (x + 1) <= v) ++x;
        return x;
    };
    KernelMinFree r;
    const uint64_t lowmem_kib = static_cast<uint64_t>(free_buffer(highs, high_pages_delta)) * pk;
    const int64_t upper =
        profile.version && *profile.version < KernelVersion{5, 7} ? 65536 : 262144;
    r.sqrt_rule = std::clamp<int64_t>(static_cast<int64_t>(isqrt(lowmem_kib * 16)), 128, upper);
    // "min_free_kbytes is not updated to %d because user defined value %d is preferred": the value
    // stays what it was.
    r.no_thp = user_min_kib && *user_min_kib >= r.sqrt_rule
                   ? (current_kib > 0 ? current_kib : *user_min_kib)
                   : r.sqrt_rule;
    // The watermarks setup_per_zone_wmarks() gives that value, then khugepaged's recommendation:
    // 2 pageblocks per zone plus MIGRATE_PCPTYPES^2 (9) more, at most 5% of the buffer pages.
    const auto wm = predict_watermarks(zones, r.no_thp, watermark_scale_factor, profile);
    std::vector<uint64_t> new_highs;
    for (const auto& w : wm) new_highs.push_back(w.high);
    const uint64_t pageblock = uint64_t{1} << profile.hpage_pmd_order;
    const uint64_t want = pageblock * static_cast<uint64_t>(nr_zones) * (2 + 9);
    r.thp = static_cast<int64_t>(
        std::min(want, static_cast<uint64_t>(free_buffer(new_highs, 0)) / 20) * pk);
    // watermark_boost_factor's default 15000: a boost of up to 1.5 x high on top of high.
    for (auto& h : new_highs) h += h * 3 / 2;
    r.thp_boosted = static_cast<int64_t>(
        std::min(want, static_cast<uint64_t>(free_buffer(new_highs, 0)) / 20) * pk);
    return r;
}

bool KernelMinFree::matches(int64_t v) const {
    auto near = [&](int64_t x) { return std::llabs(v - x) <= std::max<int64_t>(2, x / 100); };
    if (near(no_thp) || near(with_thp())) return true;
    // khugepaged's value with some boost in force: between the boosted and unboosted figures.
    const int64_t lo = std::max(no_thp, thp_boosted), hi = with_thp();
    return thp > no_thp && v >= lo - lo / 100 && v <= hi;
}

Range effective_bounds(Knob k, const KnobState& ks, const Config& config, const Sample& sample) {
    const auto& t = spec(k);
    const auto& kc = config.knob(k);
    // The running kernel's range as learnt (KernelProfile::ranges: the version table, widened where
    // patched kernels accept more, narrowed by every refused write).
    Range kr = sample.profile.range(k);
    // "5%"-style bounds (min_free_kbytes only) are resolved against managed lowmem now, since
    // lowmem changes with memory hotplug.
    const uint64_t lowmem_kib =
        lowmem_managed_pages(sample.zoneinfo) * page_kib(sample.profile.page_size_bytes);
    auto pick = [&](const std::optional<int64_t>& abs, const std::optional<double>& pct,
                    int64_t dflt) {
        if (abs) return *abs;
        if (pct) return resolve_lowmem_percent_kib(*pct, lowmem_kib);
        return dflt;
    };
    Range r{std::max(pick(kc.min, kc.min_lowmem_percent, t.default_min), kr.min),
            std::min(pick(kc.max, kc.max_lowmem_percent, t.default_max), kr.max)};
    if (k == Knob::min_free_kbytes) {
        // Never below the baseline, and never above the safety cap: a baseline above the cap (an
        // absurd original in a state file, a baseline configured for a larger machine) is held at
        // the cap, so that it cannot become a target.
        const int64_t cap = min_free_cap_kib(sample.zoneinfo, config.safety, sample.profile);
        r.min = std::max(r.min, std::min(ks.baseline, cap));
        r.max = std::min(r.max, cap);
    }
    if (r.max < r.min) r.max = r.min;  // contradictory configuration: hold at the lower bound
    return r;
}

// ---- state --------------------------------------------------------------------------------------

ControllerState initial_state(const Sample& first, const Config& config) {
    ControllerState s;
    s.start_usec = first.mono_usec;
    s.managed_pages_total = managed_pages_total(first.zoneinfo);
    s.user_zone_high_pages = user_zone_high_pages(first.zoneinfo);
    for (const auto& t : kTunables) {
        auto& ks = s.knob(t.knob);
        const auto& kc = config.knob(t.knob);
        ks.original = first.knob(t.knob);
        ks.baseline = kc.baseline.value_or(ks.original.value_or(0));
        if (kc.baseline_lowmem_percent)
            ks.baseline = resolve_lowmem_percent_kib(
                *kc.baseline_lowmem_percent,
                lowmem_managed_pages(first.zoneinfo) * page_kib(first.profile.page_size_bytes));
        if (!kc.enabled) {
            ks.status = KnobStatus::disabled;
            ks.status_reason = "disabled in the configuration";
        } else if (!ks.original) {
            ks.status = KnobStatus::unsupported;
            ks.status_reason = fmt::format("this kernel has no {}", t.proc_path);
        }
    }
    return s;
}

Step decide(const Sample& sample, const ControllerState& state, const Config& config) {
    Step step;
    step.next = state;
    Tick t{sample, state, config, step.next, sample.mono_usec};
    const Signals& s = sample.signals;

    step.next.min_dip_history =
        static_cast<uint8_t>((state.min_dip_history << 1) | (s.zones_at_or_below_min > 0 ? 1 : 0));
    step.next.atomic_failure_history =
        static_cast<uint8_t>((state.atomic_failure_history << 1) |
                             (atomic_failures(s, config.min_free.max_failure_order) > 0 ? 1 : 0));
    const uint64_t managed_now = managed_pages_total(sample.zoneinfo);

    for (const auto& spec_row : kTunables) {
        const Knob k = spec_row.knob;
        auto& ks = step.next.knob(k);
        const auto& kc = config.knob(k);

        // Configuration reloads switch knobs on and off.
        if (!kc.enabled && ks.status != KnobStatus::disabled) {
            ks.status = KnobStatus::disabled;
            ks.status_reason = "disabled in the configuration";
        } else if (kc.enabled && ks.status == KnobStatus::disabled) {
            ks.status = ks.original ? KnobStatus::tuning : KnobStatus::unsupported;
            ks.status_reason.clear();
        }
        if (k == Knob::compaction_proactiveness && ks.status == KnobStatus::unsupported &&
            config.compaction.compact_memory_fallback) {
            // Kernels without proactive compaction: optional one-shot compaction when high-order
            // availability collapses.
            auto frag = fragmentation(s, config.compaction);
            bool empty_target =
                std::any_of(s.targets.begin(), s.targets.end(),
                            [](const OrderSignals& o) { return o.free_blocks == 0; });
            uint32_t high_fail = high_order_failures(s, config.min_free.max_failure_order);
            uint64_t last = state.last_compact_memory_usec;
            if (frag.high && (empty_target || high_fail > 0) &&
                (last == 0 || t.now - last >= config.compaction.compact_memory_interval_usec)) {
                step.next.last_compact_memory_usec = t.now;
                step.decisions.push_back(Decision{
                    k, Action::compact, 0, 0, "fragmentation",
                    fmt::format(
                        "{} (>= {}/1000), {} allocation failures of order > {}; this kernel has no "
                        "compaction_proactiveness",
                        frag.text, config.compaction.unusable_raise_permille, high_fail,
                        config.min_free.max_failure_order),
                    true});
            }
            continue;
        }
        if (ks.status != KnobStatus::tuning && ks.status != KnobStatus::failed) continue;
        if (ks.status == KnobStatus::failed && t.now < ks.retry_after_usec) continue;
        auto live = sample.knob(k);
        if (!live) {
            ks.last_reason = "value not readable in this sample";
            continue;
        }
        if (auto d = check_owner(t, k, *live, managed_now)) {
            step.decisions.push_back(std::move(*d));
            if (ks.status == KnobStatus::pinned) continue;
        }
        const int64_t cur = *live;

        bool want_kick = false;
        std::string kick_why;
        std::optional<Proposal> p;
        switch (k) {
            case Knob::min_free_kbytes:
                p = policy_min_free(t, cur);
                break;
            case Knob::watermark_scale_factor:
                p = policy_watermark(t, cur);
                break;
            case Knob::compaction_proactiveness:
                p = policy_compaction(t, cur, want_kick, kick_why);
                break;
            case Knob::vfs_cache_pressure:
                p = policy_vfs_cache(t, cur);
                break;
            case Knob::swappiness:
                p = policy_swappiness(t, cur);
                break;
        }
        if (!p) continue;
        if (auto d = guard(t, k, cur, std::move(*p), want_kick, kick_why))
            step.decisions.push_back(std::move(*d));
    }
    step.next.managed_pages_total = managed_now;
    step.next.user_zone_high_pages = user_zone_high_pages(sample.zoneinfo);
    step.next.last_fragmentation_score = s.max_fragmentation_score;
    return step;
}

namespace {

void book_write(ControllerState& state, Knob k, int64_t value, uint64_t mono_usec) {
    auto& ks = state.knob(k);
    // Compared with what was there before: our last write, else the value found at start.
    std::optional<int64_t> before = ks.last_written ? ks.last_written : ks.original;
    bool changed = !before || *before != value;
    ks.last_written = value;
    if (ks.status == KnobStatus::failed) {
        ks.status = KnobStatus::tuning;
        ks.status_reason.clear();
    }
    ks.failures = 0;
    ks.retry_after_usec = 0;
    if (!changed) return;  // a kick rewrites the same value: not a change
    ks.last_change_usec = mono_usec;
    std::erase_if(ks.recent_changes_usec, [&](uint64_t t) { return t + kHourUsec <= mono_usec; });
    ks.recent_changes_usec.push_back(mono_usec);
    if (k == Knob::min_free_kbytes) {
        // Dips and failures were measured against the old watermarks; the new setting starts
        // afresh.
        state.min_dip_history = 0;
        state.atomic_failure_history = 0;
    }
}

}  // namespace

void record_applied(ControllerState& state, Knob k, int64_t value, uint64_t mono_usec) {
    book_write(state, k, value, mono_usec);
    if (k == Knob::min_free_kbytes) state.user_min_free_kbytes = value;
}

void record_observed(ControllerState& state, Knob k, int64_t value, uint64_t mono_usec) {
    book_write(state, k, value, mono_usec);
}

void record_failed(ControllerState& state, Knob k, std::string reason, uint64_t mono_usec) {
    auto& ks = state.knob(k);
    ks.status = KnobStatus::failed;
    ks.status_reason = std::move(reason);
    ks.failures = std::min<uint32_t>(ks.failures + 1, 32);
    uint64_t backoff = kFailBackoffBaseUsec << std::min<uint32_t>(ks.failures - 1, 20);
    ks.retry_after_usec = mono_usec + std::min(backoff, kHourUsec);
}

}  // namespace fragtune
