#include "fragtune/deciding/tick.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace fragtune::deciding {

namespace {
// A refusal with an unchanged rule is reported again at most this often (not every tick).
constexpr uint64_t kRefuseRepeatUsec = 60'000'000ULL;
}  // namespace

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

void mark_not_calm(const Tick& t, Knob k) {
    t.next.knob(k).last_trouble_usec = t.now;
}

bool is_calm(const Tick& t, Knob k) {
    const auto& ks = t.next.knob(k);
    uint64_t since = std::max(ks.last_trouble_usec, t.state.start_usec);
    return t.now >= since && t.now - since >= t.config.knob(k).calm_usec;
}

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

Verdict refuse_if_stale_zoneinfo(const Tick& t, Knob k, int64_t cur, const Proposal& p) {
    if (p.action != Action::raise || t.sample.zoneinfo_fresh) return Verdict::pass();
    return Verdict::decide(
        refuse(t, k, cur, p.target, "stale-zoneinfo",
               fmt::format("{}; refused: the zone watermarks are from a read {} ago", p.reason,
                           secs(t.sample.mono_usec - t.sample.zoneinfo_mono_usec))));
}

}  // namespace fragtune::deciding
