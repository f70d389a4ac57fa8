// The decide loop. See doc/policies.md for every rule id, its signal, threshold, default and
// action.
//
// Shape of one tick (decide()):
//   1. shared history (min-watermark dips, atomic failures, kept for min_dip_window) is updated;
//   2. each knob, in registry order (knobs/registry.hpp): status bookkeeping (disabled,
//      unsupported with the module's fallback, failed back-off), then the ownership check
//      (ownership.cpp: live value != what we wrote -> pin, unless the module adopts it), then the
//      module's policy proposes at most one raise/lower/decay, then the guards (guards.cpp) shape
//      or refuse it with the module's guard hooks.
// Nothing here reads a clock or a file: time is sample.mono_usec.
#include "fragtune/deciding/controller.hpp"
#include "fragtune/deciding/transitions.hpp"

#include <fmt/format.h>

#include "fragtune/deciding/guards.hpp"
#include "fragtune/deciding/ownership.hpp"
#include "fragtune/deciding/tick.hpp"
#include "fragtune/deciding/watermarks.hpp"
#include "fragtune/knobs/registry.hpp"
#include "fragtune/util/enum_names.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <iterator>
#include <limits>
#include <string_view>

namespace fragtune {

namespace {

// The names of the statuses and actions, also the state file's keys (state_file.cpp).
constexpr EnumName<KnobStatus> kStatusNames[] = {
    {KnobStatus::tuning, "tuning"},           {KnobStatus::pinned, "pinned"},
    {KnobStatus::conflict, "conflict"},       {KnobStatus::failed, "failed"},
    {KnobStatus::unsupported, "unsupported"}, {KnobStatus::disabled, "disabled"},
};
constexpr EnumName<Action> kActionNames[] = {
    {Action::raise, "raise"},     {Action::lower, "lower"},   {Action::decay, "decay"},
    {Action::kick, "kick"},       {Action::refuse, "refuse"}, {Action::pin, "pin"},
    {Action::compact, "compact"},
};
static_assert(enum_rows_in_order(kStatusNames) &&
              std::size(kStatusNames) == static_cast<std::size_t>(KnobStatus::disabled) + 1);
static_assert(enum_rows_in_order(kActionNames) &&
              std::size(kActionNames) == static_cast<std::size_t>(Action::compact) + 1);

}  // namespace

std::string_view to_string(KnobStatus s) {
    return enum_name(kStatusNames, s);
}

std::optional<KnobStatus> knob_status_from_string(std::string_view s) {
    return enum_from_name(kStatusNames, s);
}

std::string_view to_string(Action a) {
    return enum_name(kActionNames, a);
}

std::optional<Action> action_from_string(std::string_view s) {
    return enum_from_name(kActionNames, s);
}

std::string format_decision(const Decision& d) {
    if (d.action == Action::compact)
        return fmt::format("vm.compact_memory <- 1 [compact: {}] {}", d.rule, d.reason);
    return fmt::format("{} {} -> {} [{}: {}] {}", spec(d.knob).sysctl, d.old_value, d.new_value,
                       to_string(d.action), d.rule, d.reason);
}

namespace {

using namespace deciding;

// Write failures back off from this, doubling per consecutive failure, up to an hour.
constexpr uint64_t kFailBackoffBaseUsec = 10'000'000ULL;

}  // namespace

// ---- bounds -------------------------------------------------------------------------------------

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
    // The knob's own narrowing (min_free_kbytes: baseline floor and safety cap).
    if (const auto& m = module(k); m.shape_bounds) m.shape_bounds(r, ks, config, sample);
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
        ks.baseline = resolve_baseline(kc, ks.original, first);
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

    // Dips and atomic failures are remembered for min_dip_window of time, whatever the cadence:
    // a dip is kept at most once per eighth of the window (a quarter of a slot of slack for a
    // timer that fires a little early), so fast ticks during trouble do not count it many times.
    const uint64_t dip_window = std::max<uint64_t>(config.min_free.min_dip_window_usec, 1);
    const uint64_t dip_slot = dip_window / 8;
    std::erase_if(step.next.min_dip_usec,
                  [&](uint64_t at) { return sample.mono_usec - at >= dip_window; });
    if (s.zones_at_or_below_min > 0 &&
        (step.next.min_dip_usec.empty() ||
         sample.mono_usec - step.next.min_dip_usec.back() >= dip_slot - dip_slot / 4))
        step.next.min_dip_usec.push_back(sample.mono_usec);
    if (atomic_failures(s, config.min_free.max_failure_order) > 0)
        step.next.last_atomic_failure_usec = sample.mono_usec;
    else if (step.next.last_atomic_failure_usec != 0 &&
             sample.mono_usec - step.next.last_atomic_failure_usec >= dip_window)
        step.next.last_atomic_failure_usec = 0;
    const uint64_t managed_now = managed_pages_total(sample.zoneinfo);
    // Anticipation: episodes, learnt values and trend buffers, before any policy reads them.
    step.next.anticipation = update_anticipation(sample, state.anticipation, config);

    for (const auto& m : kKnobModules) {
        const Knob k = m.spec.knob;
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
        if (ks.status == KnobStatus::unsupported && m.when_unsupported) {
            if (auto d = m.when_unsupported(t)) step.decisions.push_back(std::move(*d));
            continue;
        }
        if (ks.status != KnobStatus::tuning && ks.status != KnobStatus::failed) continue;
        if (ks.status == KnobStatus::failed && t.now < ks.retry_after_usec) continue;
        auto live = sample.knob(k);
        if (!live) {
            ks.last_reason = "value not readable in this sample";
            continue;
        }
        if (auto d = check_owner(t, m, *live, managed_now)) {
            step.decisions.push_back(std::move(*d));
            if (ks.status == KnobStatus::pinned) continue;
        }
        const int64_t cur = *live;

        std::optional<Proposal> p = m.propose(t, cur);
        if (!p) continue;
        if (auto d = guard(t, m, cur, std::move(*p))) step.decisions.push_back(std::move(*d));
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
    if (const auto& m = module(k); m.on_change) m.on_change(state, value);
}

}  // namespace

void record_applied(ControllerState& state, Knob k, int64_t value, uint64_t mono_usec) {
    book_write(state, k, value, mono_usec);
    if (const auto& m = module(k); m.on_applied) m.on_applied(state, value);
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
