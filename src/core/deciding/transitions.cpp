#include "fragtune/deciding/transitions.hpp"

#include <fmt/format.h>

namespace fragtune {

uint64_t managed_lowmem_kib(const Sample& sample) {
    // min_free_cap_kib() is that share of managed lowmem: at 100 % it is managed lowmem itself
    // (exact: the product is far below 2^53). It keeps the one definition of "lowmem" the safety
    // cap uses.
    SafetyConfig all;
    all.max_min_free_lowmem_percent = 100.0;
    return static_cast<uint64_t>(min_free_cap_kib(sample.zoneinfo, all, sample.profile));
}

int64_t resolve_baseline(const KnobConfig& kc, std::optional<int64_t> original,
                         const Sample& sample) {
    if (kc.baseline) return *kc.baseline;
    if (kc.baseline_lowmem_percent)
        return resolve_lowmem_percent_kib(*kc.baseline_lowmem_percent, managed_lowmem_kib(sample));
    return original.value_or(0);
}

ControllerState state_at_start(const Sample& first, const Config& config,
                               const PersistedState* persisted) {
    ControllerState s = initial_state(first, config);
    if (persisted) adopt_persisted(s, *persisted);
    for (const auto& t : kTunables) {
        auto& ks = s.knob(t.knob);
        ks.baseline = resolve_baseline(config.knob(t.knob), ks.original, first);
    }
    return s;
}

std::vector<std::string> keep_restart_keys(Config& next, const Config& running) {
    std::vector<std::string> notes;
    auto keep = [&](std::string_view key, auto& now, const auto& was, auto show) {
        if (now == was) return;
        notes.push_back(fmt::format(
            "{} changed from {} to {}: needs a restart (systemctl restart fragtuned); {} stays in "
            "force until then",
            key, show(was), show(now), show(was)));
        now = was;
    };
    auto quoted = [](const std::string& v) { return fmt::format("\"{}\"", v); };
    auto boolean = [](bool v) { return std::string(v ? "true" : "false"); };
    keep("signals.kernel_log", next.signals.kernel_log, running.signals.kernel_log, boolean);
    keep("signals.kmsg_path", next.signals.kmsg_path, running.signals.kmsg_path, quoted);
    keep("daemon.state_path", next.daemon.state_path, running.daemon.state_path, quoted);
    return notes;
}

ControllerState state_after_reload(const ControllerState& state, const Config& next,
                                   const Sample* last) {
    ControllerState s = state;
    for (const auto& t : kTunables) {
        auto& ks = s.knob(t.knob);
        const auto& kc = next.knob(t.knob);
        if (last) ks.baseline = resolve_baseline(kc, ks.original, *last);
        if (!kc.enabled && ks.status != KnobStatus::unsupported) {
            ks.status = KnobStatus::disabled;
            ks.status_reason = "disabled in the configuration";
        } else if (kc.enabled && ks.status == KnobStatus::disabled) {
            ks.status = KnobStatus::tuning;
            ks.status_reason.clear();
            if (last) ks.last_written = last->knob(t.knob);
        }
    }
    return s;
}

std::vector<Decision> bounds_tightened(const ControllerState& state, const Config& config,
                                       const Sample& last, const KnobValues& live) {
    std::vector<Decision> out;
    for (const auto& t : kTunables) {
        const auto& ks = state.knob(t.knob);
        const auto& v = live[index(t.knob)];
        if (ks.status != KnobStatus::tuning || !v) continue;
        const Range b = effective_bounds(t.knob, ks, config, last);
        if (b.contains(*v)) continue;
        const int64_t target = b.clamp(*v);
        out.push_back(Decision{
            t.knob, target > *v ? Action::raise : Action::lower, *v, target, "bounds-tightened",
            fmt::format("reloaded configuration bounds {}..{} exclude {}", b.min, b.max, *v)});
    }
    return out;
}

std::vector<Decision> restore_plan(const ControllerState& state, const KnobValues& live,
                                   std::string_view why) {
    std::vector<Decision> out;
    for (const auto& t : kTunables) {
        const auto& ks = state.knob(t.knob);
        const auto& v = live[index(t.knob)];
        if (!v || !ks.original || *v == *ks.original) continue;
        out.push_back(Decision{
            t.knob, *ks.original > *v ? Action::raise : Action::lower, *v, *ks.original, "restore",
            fmt::format("{}: back to the original value found at first start", why)});
    }
    return out;
}

}  // namespace fragtune
