// The control law: a pure function of (sample, state, config). No I/O, no clock, no logging: time enters
// as sample.mono_usec. The daemon applies the returned decisions and reports the outcome back with
// record_applied()/record_failed(), so that what the controller believes was written is what was written.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/configuration/config.hpp"
#include "fragtune/deciding/anticipation.hpp"
#include "fragtune/deciding/watermarks.hpp"
#include "fragtune/knobs/tunables.hpp"
#include "fragtune/sensing/parsers.hpp"
#include "fragtune/sensing/sample.hpp"

namespace fragtune {

// Where a knob stands. Only `tuning` knobs are changed.
enum class KnobStatus {
    tuning,    // under fragtune's control
    pinned,    // someone else wrote it, or an operator pinned it: never touched until unpinned
    conflict,  // another sysctl.d file sets it at boot; pinned by default (the administrator wins)
    failed,    // the last write failed; retried after a back-off
    unsupported,  // this kernel lacks the knob
    disabled,     // turned off in the configuration
};
std::string_view to_string(KnobStatus s);
std::optional<KnobStatus> knob_status_from_string(std::string_view s);

struct KnobState {
    std::optional<int64_t> original;      // value found at first start: the truth for restore
    int64_t baseline = 0;                 // decay target (configured, else original)
    std::optional<int64_t> last_written;  // last value fragtune wrote and read back
    KnobStatus status = KnobStatus::tuning;
    std::string status_reason;  // why pinned/failed/... ("value changed to 100 by someone else")
    uint64_t last_change_usec = 0;  // mono time of the last applied change (0: never)
    // applied changes within the last hour, oldest first
    std::vector<uint64_t> recent_changes_usec;
    uint64_t last_trouble_usec = 0;  // last tick a rule of this knob fired or its signals sat
                                     // between relax and raise thresholds (not calm)
    uint64_t last_decay_usec = 0;
    uint64_t retry_after_usec = 0;       // failed knobs are retried after this time
    uint32_t failures = 0;               // consecutive write failures (back-off doubles)
    std::string last_rule, last_reason;  // of the last decision, for status/explain
    // a refusal with the same rule is repeated at most once a minute
    uint64_t last_refuse_usec = 0;
    std::string last_refuse_rule;
};

struct ControllerState {
    std::array<KnobState, kKnobCount> knobs{};
    // Mono times of samples with a zone at/below its min watermark within min_dip_window, at most
    // one per eighth of the window (so the count is of time slots, not of ticks), oldest first.
    std::vector<uint64_t> min_dip_usec;
    uint64_t last_compaction_kick_usec = 0;
    uint64_t last_compact_memory_usec = 0;
    uint64_t managed_pages_total = 0;   // to tell kernel recalculation (memory hotplug) from admins
    uint64_t user_zone_high_pages = 0;  // summed high watermarks (DMA..Normal) of the previous tick
    // The last min_free_kbytes fragtune wrote: the kernel's user_min_free_kbytes, below which its
    // own recalculation does not lower the value (none: never written by us). Set by real writes
    // only (record_applied, not record_observed); seeded at start from the state file.
    std::optional<int64_t> user_min_free_kbytes;
    // Mono time of the last sample with atomic failures of order <= max order (0: none since the
    // last applied min_free_kbytes change, which clears it); counts for min_dip_window.
    uint64_t last_atomic_failure_usec = 0;
    uint64_t start_usec = 0;  // mono time of the first sample: calm is measured from here
    uint64_t last_compaction_futile_usec = 0;  // last tick compaction was found futile (0: never)
    int last_fragmentation_score = -1;         // max node score of the previous tick (-1: none yet)
    uint32_t kcompactd_futile_ticks = 0;  // consecutive ticks kcompactd scanned without the score
                                          // falling
    int64_t wsf_relief_value = 0;      // watermark_scale_factor that last answered direct reclaim
    uint64_t wsf_last_stall_usec = 0;  // last tick with direct-reclaim stalls (0: never)
    // Learned headroom and trend buffers (anticipation.hpp), updated first in every decide().
    AnticipationState anticipation;

    KnobState& knob(Knob k) { return knobs[index(k)]; }
    const KnobState& knob(Knob k) const { return knobs[index(k)]; }
};

enum class Action {
    raise,   // towards more reserve / more compaction / more cache pressure
    lower,   // a policy asked for less (e.g. futile compaction, swap-ins)
    decay,   // calm: a step back towards baseline
    kick,    // rewrite the same compaction_proactiveness value to wake kcompactd now
    refuse,  // a rule fired but a guard (safety, rate limit, bounds) refused it; nothing is written
    pin,     // the live value differs from what fragtune wrote: the knob is pinned from now on
    compact,  // one-shot write to /proc/sys/vm/compact_memory
};
std::string_view to_string(Action a);
std::optional<Action> action_from_string(std::string_view s);

// One decision, explaining itself: the knob, old -> new, the rule that fired and the signal values that
// made it fire. `apply` is false for refuse/pin (reported, not written).
struct Decision {
    Knob knob = Knob::min_free_kbytes;
    Action action = Action::raise;
    int64_t old_value = 0;
    int64_t new_value = 0;
    std::string rule;  // short stable identifier, e.g. "atomic-failures", "decay", "safety-cap"
    // one line with the signal values, e.g. "3 atomic order-1 failures in 2.0 s"
    std::string reason;
    bool apply = true;
};

// "vm.min_free_kbytes 67584 -> 101376 [raise: atomic-failures] 3 atomic order-1 failures in 2.0 s"
// The same line is used in the journal, the D-Bus history and fragtunectl.
std::string format_decision(const Decision& d);

struct Step {
    std::vector<Decision> decisions;
    ControllerState next;
};

// Initial state from the first sample: originals and baselines from live values (or configuration),
// unsupported for knobs the kernel lacks, disabled per configuration.
ControllerState initial_state(const Sample& first, const Config& config);

// The control law. Pure. Decisions are returned in table order, at most one per knob per tick.
Step decide(const Sample& sample, const ControllerState& state, const Config& config);

// Outcome reporting from the daemon (pure state transitions).
// record_applied: `value` was really written to the kernel (it also becomes the kernel's
// user_min_free_kbytes for min_free_kbytes). record_observed: observe mode books a decision as if
// written so the controller does not propose it again, but the kernel never saw it, so
// user_min_free_kbytes is left alone.
void record_applied(ControllerState& state, Knob k, int64_t value, uint64_t mono_usec);
void record_observed(ControllerState& state, Knob k, int64_t value, uint64_t mono_usec);
void record_failed(ControllerState& state, Knob k, std::string reason, uint64_t mono_usec);

// Effective bounds of a knob: configured (or table default) bounds intersected with the kernel's
// range; for min_free_kbytes also capped by min_free_cap_kib and never below the baseline (nor
// above the cap: a baseline above the cap is held at the cap). decide() clamps every target into
// these bounds.
Range effective_bounds(Knob k, const KnobState& ks, const Config& config, const Sample& sample);

}  // namespace fragtune
