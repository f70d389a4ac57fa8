#include "fragtune/reporting/status_text.hpp"

#include <fmt/format.h>

namespace fragtune {

std::string status_summary(Mode mode, const ControllerState& state, const Sample* last,
                           size_t history_size, bool sampling_failing) {
    if (!last) return "starting";
    std::string out = std::string(to_string(mode));
    for (const auto& t : kTunables) {
        auto v = last->knob(t.knob);
        const auto st = state.knob(t.knob).status;
        out += fmt::format(" {}={}{}", t.name, v ? std::to_string(*v) : "-",
                           st == KnobStatus::tuning ? "" : fmt::format("({})", to_string(st)));
    }
    if (history_size > 0) out += fmt::format("; {} changes", history_size);
    if (sampling_failing) out += "; sampling failing";
    return out;
}

Result<std::string> explain_knob(std::string_view name, const ControllerState& state,
                                 const Config& config, const Sample* last,
                                 const std::deque<HistoryEntry>& history) {
    auto k = knob_from_name(name);
    if (!k) {
        std::string valid;
        for (const auto& t : kTunables) valid += (valid.empty() ? "" : ", ") + std::string(t.name);
        return make_error(fmt::format("unknown knob '{}' (valid: {})", name.substr(0, 64), valid));
    }
    if (!last) return make_error("the daemon is not started");
    const auto& t = spec(*k);
    const auto& ks = state.knob(*k);
    const Range b = effective_bounds(*k, ks, config, *last);
    auto live = last->knob(*k);
    std::string out = fmt::format("{}: {}\n", t.sysctl, t.summary);
    out += fmt::format("  value {}{}, baseline {}, original {}, bounds {}..{}\n",
                       live ? std::to_string(*live) : "(absent)",
                       t.unit.empty() ? std::string() : " " + std::string(t.unit), ks.baseline,
                       ks.original ? std::to_string(*ks.original) : "-", b.min, b.max);
    out += fmt::format("  state {}{}\n", to_string(ks.status),
                       ks.status_reason.empty() ? "" : ": " + ks.status_reason);
    if (!ks.last_rule.empty())
        out += fmt::format("  last decision [{}] {}\n", ks.last_rule, ks.last_reason);
    for (auto it = history.rbegin(); it != history.rend(); ++it) {
        if (it->knob != *k) continue;
        out += fmt::format("  last change {} -> {} [{}] {}{}\n", it->old_value, it->new_value,
                           it->rule, it->reason, it->applied ? "" : " (not applied)");
        break;
    }
    return out;
}

std::vector<std::pair<std::string, double>> signal_values(const Sample& sample,
                                                          uint64_t failures_seen) {
    std::vector<std::pair<std::string, double>> out;
    const Signals& s = sample.signals;
    auto add = [&](std::string name, double v) { out.emplace_back(std::move(name), v); };
    if (s.psi_some_avg10) add("psi_some_avg10_percent", *s.psi_some_avg10);
    if (s.psi_full_avg10) add("psi_full_avg10_percent", *s.psi_full_avg10);
    if (s.psi_some_percent) add("psi_some_interval_percent", *s.psi_some_percent);
    add("fragmentation_score", s.max_fragmentation_score);
    for (const auto& o : s.targets) {
        add(fmt::format("order{}_free_blocks", o.order), static_cast<double>(o.free_blocks));
        add(fmt::format("order{}_unusable_permille", o.order), o.unusable_permille);
    }
    add("zones_at_or_below_min", s.zones_at_or_below_min);
    add("zones_below_low", s.zones_below_low);
    // Pages of the sampled kernel (4, 16 or 64 KiB), not a fixed 4 KiB.
    const double page_kib = static_cast<double>(sample.profile.page_size_bytes) / 1024.0;
    add("min_headroom_kib", static_cast<double>(s.min_headroom_pages) * page_kib);
    if (s.mem_available_kib) add("mem_available_kib", static_cast<double>(*s.mem_available_kib));
    if (s.sreclaimable_kib) add("sreclaimable_kib", static_cast<double>(*s.sreclaimable_kib));
    for (const char* c : {"allocstall", "pgscan_direct", "compact_stall", "compact_fail",
                          "compact_success", "kswapd_low_wmark_hit_quickly", "thp_fault_fallback",
                          "pswpin", "workingset_refault_file"}) {
        if (auto d = s.counter(c)) add(fmt::format("{}_per_sec", c), d->per_sec);
    }
    for (auto [order, n] : s.failures_by_order) add(fmt::format("failures_order{}", order), n);
    for (auto [order, n] : s.atomic_failures_by_order)
        add(fmt::format("atomic_failures_order{}", order), n);
    add("failures_total", static_cast<double>(failures_seen));
    return out;
}

}  // namespace fragtune
