// What a knob module provides: its table row and its hooks into the configuration registry, the
// kernel profile and decide(). Every generic loop (decide(), the guards, effective_bounds(), the
// config key registry, the kernel's ranges) goes through these, so a knob's knowledge lives in its
// module (knobs/<name>.{hpp,cpp}) and nowhere else. A nullptr hook means "nothing special".
//
// The types the hooks take are only declared here: the modules' headers stay light enough for
// config.hpp to include (for their policy structs), and only their .cpp files see decide()'s types.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fragtune/knobs/knob.hpp"

namespace fragtune {

struct Config;
struct ConfigKey;
struct ControllerState;
struct Decision;
struct KnobState;
struct Sample;

namespace deciding {
struct Proposal;  // deciding/tick.hpp
struct Tick;      // deciding/tick.hpp
struct Verdict;   // deciding/tick.hpp
}  // namespace deciding

// Why the generic guard could not move a knob this tick (KnobModule::when_blocked).
enum class Blocked {
    at_bound,    // the target was clipped to the current value by the bounds
    cooldown,    // the knob changed less than cooldown_usec ago
    rate_limit,  // the sliding-hour change cap is reached
};

struct KnobModule {
    TunableSpec spec;

    // ---- kernel ranges -----------------------------------------------------------------------
    // The range the kernel of `version` accepts (unknown version: the narrowest); nullptr: the
    // spec's kernel_min..kernel_max on every kernel.
    Range (*kernel_range)(std::optional<KernelVersion> version);
    // Where the kernel profile's learnt range starts, before any refused write narrows it;
    // nullptr: kernel_range.
    Range (*initial_range)(std::optional<KernelVersion> version);

    // ---- configuration -----------------------------------------------------------------------
    // Appends the policy's keys of [tunables.NAME] (`section`), after the rows every knob has.
    void (*add_policy_keys)(std::vector<ConfigKey>& rows, const std::string& section);

    // ---- decide() ----------------------------------------------------------------------------
    // What the policy wants this tick from the live value `cur` (raise, lower, decay or nothing),
    // before the guards. May update the knob's bookkeeping in tick.next.
    std::optional<deciding::Proposal> (*propose)(const deciding::Tick& tick, int64_t cur);
    // The knob is unsupported on this kernel: a fallback decision, if any (compaction's one-shot
    // compact_memory).
    std::optional<Decision> (*when_unsupported)(const deciding::Tick& tick);
    // The live value is not what fragtune wrote (nor the original): a decision that explains and
    // adopts it (the kernel's own recalculation), or nullopt to let the administrator pin it.
    std::optional<Decision> (*adopt_foreign)(const deciding::Tick& tick, int64_t expected,
                                             int64_t live, uint64_t managed_pages_now);

    // ---- guards ------------------------------------------------------------------------------
    // Narrows the effective bounds beyond configured ∩ kernel range (min_free_kbytes: baseline
    // floor, safety cap). Pure: also used outside decide() (persistence, status).
    void (*shape_bounds)(Range& bounds, const KnobState& ks, const Config& config,
                         const Sample& sample);
    // The note for a raise clipped at `bounds.max` ("" for the generic "capped at the upper bound").
    std::string (*cap_note)(const deciding::Tick& tick, const Range& bounds);
    // The raise or lower could not happen (`why`; `blocked_by` says so in words). A decided verdict
    // replaces the generic outcome (a refusal, or silence): compaction kicks, min_free_kbytes at
    // its safety cap refuses as "safety-cap".
    deciding::Verdict (*when_blocked)(const deciding::Tick& tick, int64_t cur,
                                      const deciding::Proposal& p, const Range& bounds, Blocked why,
                                      std::string_view blocked_by);
    // The last check before the decision: may lower `target` (noting why in `notes`) or decide a
    // refusal (min_free_kbytes' low-watermark safety guard).
    deciding::Verdict (*check_target)(const deciding::Tick& tick, int64_t cur,
                                      const deciding::Proposal& p, const Range& bounds,
                                      int64_t& target, std::string& notes);

    // ---- outcome bookkeeping -----------------------------------------------------------------
    // A change of the knob to `value` was booked (written, or observed in observe mode).
    void (*on_change)(ControllerState& state, int64_t value);
    // `value` was really written to the kernel.
    void (*on_applied)(ControllerState& state, int64_t value);

    // Whether [tunables.NAME] enabled defaults to true (knobs whose policy is opt-in: false).
    bool enabled_by_default = true;

    // ---- documentation -----------------------------------------------------------------------
    // The rule ids its decisions can carry besides kGenericRules (its own policy's, the guards it
    // adds, anticipation's for this knob). Each is documented in doc/policies.md, and the
    // closed-loop scenarios check every decision against the list (tests).
    std::span<const std::string_view> rules;
};

// The rule ids of the generic parts of decide() and of the transitions outside the tick, which any
// knob's decisions can carry: decay and the stale-zoneinfo refusal (deciding/tick.cpp), the generic
// guards (deciding/guards.cpp), ownership (deciding/ownership.cpp), reload and restore
// (deciding/transitions.cpp).
inline constexpr std::string_view kGenericRules[] = {
    "decay",          "stale-zoneinfo",   "at-bound", "rate-limit",
    "admin-override", "bounds-tightened", "restore"};

}  // namespace fragtune
