// vm.watermark_scale_factor: the distance between the min, low and high watermarks.
// Raised on direct reclaim (stalls, direct scanning, PSI) with zones below low; lowered when kswapd
// is busy without stalls, never below the value that last ended stalls for stall_memory_usec.
#include "fragtune/knobs/watermark_scale_factor.hpp"

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

namespace fragtune::knobs::watermark_scale_factor {

using namespace deciding;
using namespace key_rows;

namespace {
constexpr Knob kKnob = Knob::watermark_scale_factor;
}  // namespace

// Rows name only the members that differ from the defaults; GCC 12 warns about every member a
// designated initializer leaves out (GCC PR c++/96868, fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
void add_policy_keys(std::vector<ConfigKey>& rows, const std::string& section) {
    auto policy = [&](ConfigKey k) { add_policy_row(rows, section, std::move(k)); };
    [[maybe_unused]] const std::string unit(kModule.spec.unit);
    [[maybe_unused]] const auto kmax = static_cast<double>(kModule.spec.kernel_max);
    policy({.key = "raise_step",
            .kind = ValueKind::integer,
            .unit = unit,
            .min = 1,
            .max = kmax,
            .field = &field<&Config::watermark, &WatermarkPolicy::raise_step>,
            .doc = "additive raise on direct reclaim stalls or memory pressure"});
    policy({.key = "allocstall_raise_per_sec",
            .kind = ValueKind::number,
            .unit = "1/s",
            .min = 0,
            .max = 1e6,
            .field = &field<&Config::watermark, &WatermarkPolicy::allocstall_raise_per_sec>,
            .doc = "direct reclaim stalls per second that trigger a raise"});
    policy({.key = "psi_some_raise_percent",
            .kind = ValueKind::number,
            .unit = "percent",
            .min = 0,
            .max = 100,
            .field = &field<&Config::watermark, &WatermarkPolicy::psi_some_raise_percent>,
            .doc = "memory PSI 'some' share of the interval above which to raise"});
    policy({.key = "psi_some_relax_percent",
            .kind = ValueKind::number,
            .unit = "percent",
            .min = 0,
            .max = 100,
            .field = &field<&Config::watermark, &WatermarkPolicy::psi_some_relax_percent>,
            .doc = "memory PSI 'some' share below which pressure counts as gone"});
    policy({.key = "decay_step",
            .kind = ValueKind::integer,
            .unit = unit,
            .min = 1,
            .max = kmax,
            .field = &field<&Config::watermark, &WatermarkPolicy::decay_step>,
            .doc = "additive step back towards the baseline"});
    policy({.key = "stall_memory",
            .kind = ValueKind::duration,
            .unit = "usec",
            .min = 0,
            .max = kUsecPerDay,
            .field = &field<&Config::watermark, &WatermarkPolicy::stall_memory_usec>,
            .doc = "after direct-reclaim stalls, not lowered below the value that ended them "
                   "for this long"});
    policy({.key = "learned_hold",
            .kind = ValueKind::duration,
            .unit = "usec",
            .min = 0,
            .max = 7 * kUsecPerDay,
            .field = &field<&Config::watermark, &WatermarkPolicy::learned_hold_usec>,
            .doc = "the headroom learnt from an episode is held this long (0: off)"});
    policy({.key = "learned_margin",
            .kind = ValueKind::number,
            .min = 1,
            .max = 10,
            .field = &field<&Config::watermark, &WatermarkPolicy::learned_margin>,
            .doc = "factor on the headroom an episode needed"});
    policy({.key = "predict",
            .kind = ValueKind::boolean,
            .field = &field<&Config::watermark, &WatermarkPolicy::predict>,
            .doc = "raise before free memory reaches low when kswapd cannot keep up"});
    policy({.key = "predict_window",
            .kind = ValueKind::duration,
            .unit = "usec",
            .min = kUsecPerSec,
            .max = kUsecPerHour,
            .field = &field<&Config::watermark, &WatermarkPolicy::predict_window_usec>,
            .doc = "samples of this age or younger make the least-squares trends"});
}
#pragma GCC diagnostic pop

namespace {
std::optional<Proposal> propose_reactive(const Tick& t, int64_t cur) {
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
}  // namespace

// The reactive rules above, then anticipation (deciding/anticipation_hook.hpp) on top.
std::optional<Proposal> propose(const Tick& t, int64_t cur) {
    return anticipate(t, Knob::watermark_scale_factor, cur, propose_reactive(t, cur));
}

Range kernel_range(std::optional<KernelVersion> version) {
    Range r{kModule.spec.kernel_min, kModule.spec.kernel_max};
    // 5.19 raised the maximum from 1000 (10%) to 3000 (30%).
    if (!version || *version < KernelVersion{5, 19}) r.max = 1000;
    return r;
}

Range initial_range(std::optional<KernelVersion> /*version*/) {
    // The 3000 maximum was backported to stable kernels (Debian's 5.10.223 accepts it): the version
    // table cannot know, so start wide and let a refusal narrow it (narrow_range()).
    return Range{kModule.spec.kernel_min, kModule.spec.kernel_max};
}

Verdict check_target(const Tick& t, int64_t cur, const Proposal& p, const Range& /*bounds*/,
                     int64_t& /*target*/, std::string& /*notes*/) {
    return refuse_if_stale_zoneinfo(t, kKnob, cur, p);
}

}  // namespace fragtune::knobs::watermark_scale_factor
