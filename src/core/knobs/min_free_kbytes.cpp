// vm.min_free_kbytes: the reserve for allocations that cannot wait (atomic, interrupt context).
// Raised on atomic failures, min-watermark dips and kswapd hitting low quickly; never past the
// safety cap or the low-watermark safety guard; the kernel's own recalculation is adopted.
#include "fragtune/knobs/min_free_kbytes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "fragtune/configuration/key_rows.hpp"
#include "fragtune/deciding/anticipation_hook.hpp"
#include "fragtune/deciding/tick.hpp"
#include "fragtune/deciding/watermarks.hpp"
#include "fragtune/knobs/tunables.hpp"

namespace fragtune::knobs::min_free_kbytes {

using namespace deciding;
using namespace key_rows;

namespace {
constexpr Knob kKnob = Knob::min_free_kbytes;
}  // namespace

// Rows name only the members that differ from the defaults; GCC 12 warns about every member a
// designated initializer leaves out (GCC PR c++/96868, fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
void add_policy_keys(std::vector<ConfigKey>& rows, const std::string& section) {
    auto policy = [&](ConfigKey k) { add_policy_row(rows, section, std::move(k)); };
    [[maybe_unused]] const std::string unit(kModule.spec.unit);
    [[maybe_unused]] const auto kmax = static_cast<double>(kModule.spec.kernel_max);
    policy({.key = "raise_factor",
            .kind = ValueKind::number,
            .min = 1,
            .max = 10,
            .min_exclusive = true,
            .field = &field<&Config::min_free, &MinFreePolicy::raise_factor>,
            .doc = "multiplicative raise when the reserve ran short"});
    policy({.key = "max_failure_order",
            .kind = ValueKind::integer,
            .min = 0,
            .max = kMaxPageOrder,
            .field = &field<&Config::min_free, &MinFreePolicy::max_failure_order>,
            .doc = "atomic allocation failures up to this order count as reserve starvation"});
    policy({.key = "min_dip_ticks",
            .kind = ValueKind::integer,
            .unit = "slots",
            .min = 1,
            .max = 8,
            .field = &field<&Config::min_free, &MinFreePolicy::min_dip_ticks>,
            .doc = "a zone at or below its min watermark in this many of the 8 slots of "
                   "min_dip_window"});
    policy({.key = "min_dip_window",
            .kind = ValueKind::duration,
            .unit = "usec",
            .min = kUsecPerSec,
            .max = 10 * kUsecPerMin,
            .field = &field<&Config::min_free, &MinFreePolicy::min_dip_window_usec>,
            .doc = "time over which min watermark dips and atomic failures count"});
    policy({.key = "kswapd_low_quick_per_sec",
            .kind = ValueKind::number,
            .unit = "1/s",
            .min = 0,
            .max = 1e6,
            .field = &field<&Config::min_free, &MinFreePolicy::kswapd_low_quick_per_sec>,
            .doc = "kswapd_low_wmark_hit_quickly rate that counts as trouble"});
    policy({.key = "decay_step",
            .kind = ValueKind::size,
            .unit = "KiB",
            .min = 1,
            .max = kKibPerGib,
            .allow_int_kib = true,
            .field = &field<&Config::min_free, &MinFreePolicy::decay_step_kib>,
            .doc = "additive step back towards the baseline"});
    policy({.key = "learned_hold",
            .kind = ValueKind::duration,
            .unit = "usec",
            .min = 0,
            .max = 7 * kUsecPerDay,
            .field = &field<&Config::min_free, &MinFreePolicy::learned_hold_usec>,
            .doc = "the reserve that ended atomic failures is held this long (0: off)"});
}
#pragma GCC diagnostic pop

namespace {

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

int64_t cap_kib(const Tick& t) {
    return min_free_cap_kib(t.sample.zoneinfo, t.config.safety, t.sample.profile);
}

}  // namespace

namespace {
std::optional<Proposal> propose_reactive(const Tick& t, int64_t cur) {
    const auto& p = t.config.min_free;
    const Signals& s = t.sample.signals;
    const Knob k = Knob::min_free_kbytes;

    uint32_t atomic = atomic_failures(s, p.max_failure_order);
    int dips = static_cast<int>(t.next.min_dip_usec.size());
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
        why.push_back(fmt::format(
            "zones at or below min in {} of the 8 slots of the last {} (>= {}); now "
            "{} of {}",
            dips, secs(p.min_dip_window_usec), p.min_dip_ticks, s.zones_at_or_below_min, zones));
    }
    if (lowq > p.kswapd_low_quick_per_sec) {
        if (rule.empty()) rule = "kswapd-low-quick";
        why.push_back(fmt::format("kswapd hit the low watermark quickly {:.1f}/s (> {:.1f}/s)",
                                  lowq, p.kswapd_low_quick_per_sec));
    }
    if (rule.empty() && t.next.last_atomic_failure_usec != 0) {
        // Failures seen within min_dip_window that no applied change has answered yet (e.g. the
        // raise was refused as unsafe then): still trouble.
        rule = "atomic-failures";
        why.push_back(fmt::format("atomic failures {} ago, not yet answered by a change",
                                  secs(t.now - t.next.last_atomic_failure_usec)));
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
}  // namespace

// The reactive rules above, then anticipation (deciding/anticipation_hook.hpp) on top.
std::optional<Proposal> propose(const Tick& t, int64_t cur) {
    return anticipate(t, Knob::min_free_kbytes, cur, propose_reactive(t, cur));
}

void shape_bounds(Range& r, const KnobState& ks, const Config& config, const Sample& sample) {
    // Never below the baseline, and never above the safety cap: a baseline above the cap (an
    // absurd original in a state file, a baseline configured for a larger machine) is held at
    // the cap, so that it cannot become a target.
    const int64_t cap = min_free_cap_kib(sample.zoneinfo, config.safety, sample.profile);
    r.min = std::max(r.min, std::min(ks.baseline, cap));
    r.max = std::min(r.max, cap);
}

std::string cap_note(const Tick& t, const Range& b) {
    if (b.max != cap_kib(t)) return "";
    return fmt::format("; capped at {} KiB ({:.1f}% of managed lowmem)", b.max,
                       t.config.safety.max_min_free_lowmem_percent);
}

Verdict when_blocked(const Tick& t, int64_t cur, const Proposal& p, const Range& b, Blocked why,
                     std::string_view /*blocked_by*/) {
    if (why != Blocked::at_bound || p.action != Action::raise || b.max != cap_kib(t))
        return Verdict::pass();
    return Verdict::decide(
        refuse(t, kKnob, cur, p.target, "safety-cap",
               fmt::format("{}; refused: {} KiB is the cap ({:.1f}% of managed lowmem)", p.reason,
                           b.max, t.config.safety.max_min_free_lowmem_percent)));
}

// Safety guard for raises, whatever the configuration says: free lowmem must stay margin_kib above
// the low watermark (plus lowmem_reserve) predicted for the new value.
Verdict check_target(const Tick& t, int64_t cur, const Proposal& p, const Range& b, int64_t& target,
                     std::string& notes) {
    if (p.action != Action::raise) return Verdict::pass();
    if (auto v = refuse_if_stale_zoneinfo(t, kKnob, cur, p); v.decided) return v;
    const Knob k = kKnob;
    const uint64_t margin = t.config.safety.margin_kib;
    if (safe(t.sample, target, margin)) return Verdict::pass();
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
        return Verdict::decide(refuse(t, k, cur, target, "safety-low-watermark",
                                      fmt::format("{}; refused: {}", p.reason, numbers)));
    // From below the bounds (a knob lowered under its baseline, then unpinned) the largest
    // safe value may still lie under the bounds' minimum: writing it would be refused as
    // out of range and mark the knob failed, so the raise is refused here instead.
    if (lo < b.min)
        return Verdict::decide(
            refuse(t, k, cur, target, "safety-low-watermark",
                   fmt::format("{}; refused: {}; the largest safe value {} KiB is "
                               "below the bounds' minimum {} KiB",
                               p.reason, numbers, lo, b.min)));
    notes += fmt::format("; limited to {} KiB by the safety guard: {}", lo, numbers);
    target = lo;
    return Verdict::pass();
}

// mm/page_alloc.c init_per_zone_wmark_min() runs on every memory online and offline (not on a
// balloon, which changes managed pages through adjust_managed_page_count() without it). It sets
// calculate_min_free_kbytes()'s value only when that is larger than the last value user space wrote
// (user_min_free_kbytes, -1 until the first write), so before fragtune's first write the value can
// go down as well as up; then khugepaged's set_recommended_min_free_kbytes() raises it to its THP
// recommendation when that is larger. So a change is the kernel's when managed pages changed in the
// same tick and the new value is one of those the kernel computes (kernel_min_free_kbytes(), with
// the high watermarks before and after, within 1%); anything else, a balloon tick included, is an
// administrator's write and pins the knob.
std::optional<Decision> adopt_foreign(const Tick& t, int64_t expected, int64_t live,
                                      uint64_t managed_now) {
    const Knob k = kKnob;
    auto& ks = t.next.knob(k);
    const uint64_t managed_before = t.state.managed_pages_total;
    if (managed_before == 0 || managed_before == managed_now) return std::nullopt;
    const auto& zones = t.sample.zoneinfo;
    const int64_t high_delta = static_cast<int64_t>(t.state.user_zone_high_pages) -
                               static_cast<int64_t>(user_zone_high_pages(zones));
    bool kernels = false;
    std::string which;
    const int64_t wsf =
        t.sample.knob(Knob::watermark_scale_factor).value_or(kDefaultWatermarkScaleFactor);
    for (int64_t delta : {high_delta, int64_t{0}}) {
        const KernelMinFree c = kernel_min_free_kbytes(
            zones, t.sample.profile, wsf, t.state.user_min_free_kbytes, expected, delta);
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
    if (!kernels) return std::nullopt;
    Decision d{k,
               live > expected ? Action::raise : Action::lower,
               expected,
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

void on_change(ControllerState& state, int64_t /*value*/) {
    // Dips and failures were measured against the old watermarks; the new setting starts afresh.
    state.min_dip_usec.clear();
    state.last_atomic_failure_usec = 0;
}

void on_applied(ControllerState& state, int64_t value) {
    // What fragtune last wrote is the kernel's user_min_free_kbytes: its own recalculation does not
    // go below it.
    state.user_min_free_kbytes = value;
}

}  // namespace fragtune::knobs::min_free_kbytes
