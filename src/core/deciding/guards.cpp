// The generic guards. Order matters and is part of the contract (doc/policies.md): bounds, max step,
// the move into the bounds, at-bound refusal, cooldown, hourly cap, then the module's last check.
#include "fragtune/deciding/guards.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

namespace fragtune::deciding {

std::size_t recent_change_count(const KnobState& ks, uint64_t now) {
    return static_cast<std::size_t>(std::count_if(ks.recent_changes_usec.begin(),
                                                  ks.recent_changes_usec.end(),
                                                  [&](uint64_t t) { return t + kHourUsec > now; }));
}

std::optional<Decision> guard(const Tick& t, const KnobModule& m, int64_t cur, Proposal p) {
    const Knob k = m.spec.knob;
    auto& ks = t.next.knob(k);
    const auto& kc = t.config.knob(k);
    Range b = effective_bounds(k, ks, t.config, t.sample);
    std::string notes;

    int64_t target = p.target;
    if (p.action == Action::raise) {
        if (target > b.max) {
            target = std::max(cur, b.max);
            const std::string note = m.cap_note ? m.cap_note(t, b) : std::string();
            notes += note.empty() ? fmt::format("; capped at the upper bound {}", b.max) : note;
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
        if (m.when_blocked) {
            auto v = m.when_blocked(t, cur, p, b, Blocked::at_bound,
                                    fmt::format("already at the bound [{}, {}]", b.min, b.max));
            if (v.decided) return std::move(v.decision);
        }
        return refuse(
            t, k, cur, p.target, "at-bound",
            fmt::format("{}; refused: already at the bound [{}, {}]", p.reason, b.min, b.max));
    }

    // Cooldown: hold silently (the rule will fire again next tick if the trouble lasts).
    if (ks.last_change_usec != 0 && t.now - ks.last_change_usec < kc.cooldown_usec) {
        if (m.when_blocked) {
            auto v =
                m.when_blocked(t, cur, p, b, Blocked::cooldown,
                               fmt::format("the cooldown forbids a change for another {}",
                                           secs(ks.last_change_usec + kc.cooldown_usec - t.now)));
            if (v.decided) return std::move(v.decision);
        }
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
        if (m.when_blocked) {
            auto v = m.when_blocked(
                t, cur, p, b, Blocked::rate_limit,
                fmt::format("the hourly cap of {} changes is reached", kc.max_changes_per_hour));
            if (v.decided) return std::move(v.decision);
        }
        if (p.action == Action::decay) return std::nullopt;
        return refuse(
            t, k, cur, target, "rate-limit",
            fmt::format("{}; refused: {} changes in the last hour (cap {}, the last one kept "
                        "for a step back towards the baseline)",
                        p.reason, changes, kc.max_changes_per_hour));
    }

    // The knob's own last check (min_free_kbytes: the low-watermark safety guard).
    if (m.check_target) {
        auto v = m.check_target(t, cur, p, b, target, notes);
        if (v.decided) return std::move(v.decision);
    }

    Decision d{k, p.action, cur, target, p.rule, p.reason + notes, true};
    ks.last_rule = d.rule;
    ks.last_reason = d.reason;
    if (p.action == Action::decay || p.action == Action::lower) ks.last_decay_usec = t.now;
    return d;
}

}  // namespace fragtune::deciding
