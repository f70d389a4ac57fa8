// What the knob modules and the generic parts of decide() share: the context of one tick, a
// policy's proposal, a guard hook's verdict, and small helpers over the signals. Internal to the
// control law (deciding/, knobs/); nothing here does I/O or reads a clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fragtune/deciding/controller.hpp"

namespace fragtune::deciding {

inline constexpr uint64_t kHourUsec = 3'600'000'000ULL;

// What a policy wants this tick, before the guards.
struct Proposal {
    Action action = Action::raise;
    int64_t target = 0;
    std::string rule, reason;
};

// One tick of decide(): the inputs, and the state being built (`next`, which hooks update).
struct Tick {
    const Sample& sample;
    const ControllerState& state;
    const Config& config;
    ControllerState& next;
    uint64_t now = 0;  // sample.mono_usec
};

// A guard hook's answer. Not decided: the generic guard carries on. Decided: `decision` (which may
// be none: hold quietly, or a refusal not repeated yet) is the outcome of the tick for this knob.
struct Verdict {
    bool decided = false;
    std::optional<Decision> decision;

    static Verdict pass() { return {}; }
    static Verdict decide(std::optional<Decision> d) { return {true, std::move(d)}; }
};

// A counter's delta and rate over the interval (nullopt / 0 when the kernel does not print it).
std::optional<CounterDelta> counter(const Signals& s, std::string_view name);
double rate(const Signals& s, std::string_view name);
uint64_t delta(const Signals& s, std::string_view name);
// "2.0 s"
std::string secs(uint64_t usec);

// Atomic allocation failures of order <= max_order in the interval.
uint32_t atomic_failures(const Signals& s, int max_order);
// Allocation failures (any kind) of order > max_order in the interval.
uint32_t high_order_failures(const Signals& s, int max_order);

// Trouble for knob k this tick: its calm period starts again.
void mark_not_calm(const Tick& t, Knob k);
// Calm for the knob's calm_usec: no rule fired and no signal sat between relax and raise
// thresholds.
bool is_calm(const Tick& t, Knob k);
// One step of `step` back towards the baseline (from either side), once per decay interval, once
// calm; `why` says what calm means for the knob.
std::optional<Proposal> decay_proposal(const Tick& t, Knob k, int64_t cur, int64_t step,
                                       std::string_view why);

// High-order availability at the target orders against the compaction thresholds (compaction and
// vfs_cache_pressure both judge fragmentation by it).
struct Fragmentation {
    bool high = false;       // some target order at or above the raise threshold
    bool plentiful = false;  // every target order below the relax threshold
    std::string text;        // "order-9 unusable free index 870/1000"
};
Fragmentation fragmentation(const Signals& s, const CompactionPolicy& p);

// A refusal of `wanted` by `rule`, reported at most once a minute while the rule stays the same
// (nullopt when suppressed); the knob's last rule and reason are updated either way.
std::optional<Decision> refuse(const Tick& t, Knob k, int64_t cur, int64_t wanted, std::string rule,
                               std::string reason);

// The watermark knobs' raises are judged against the zones' watermarks and sizes: never on a
// zoneinfo read ticks ago (the Sampler reads it afresh on every trouble that proposes one). A raise
// on stale zoneinfo is refused ("stale-zoneinfo"); anything else passes.
Verdict refuse_if_stale_zoneinfo(const Tick& t, Knob k, int64_t cur, const Proposal& p);

}  // namespace fragtune::deciding
