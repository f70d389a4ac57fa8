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
    uint8_t min_dip_history = 0;  // bit i set: tick -i had a zone at/below its min watermark
    uint64_t last_compaction_kick_usec = 0;
    uint64_t last_compact_memory_usec = 0;
    uint64_t managed_pages_total = 0;   // to tell kernel recalculation (memory hotplug) from admins
    uint64_t user_zone_high_pages = 0;  // summed high watermarks (DMA..Normal) of the previous tick
    // The last min_free_kbytes fragtune wrote: the kernel's user_min_free_kbytes, below which its
    // own recalculation does not lower the value (none: never written by us). Set by real writes
    // only (record_applied, not record_observed); seeded at start from the state file.
    std::optional<int64_t> user_min_free_kbytes;
    // bit i set: tick -i had atomic failures of order <= max order;
    // cleared when a min_free_kbytes change is applied
    uint8_t atomic_failure_history = 0;
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

// ---- safety guard helpers (also used by persistence: never persist an unsafe value) ---------------
struct ZoneWatermarks {
    int node = 0;
    std::string zone;
    uint64_t min = 0, low = 0, high = 0;  // pages
};
// mm/page_alloc.c __setup_per_zone_wmarks() for the given knob values, from the zones' managed
// pages, with this kernel's page size and its rule for ZONE_MOVABLE
// (KernelProfile::movable_in_lowmem). The result is unboosted (_watermark[]); zoneinfo prints these
// plus watermark_boost.
std::vector<ZoneWatermarks> predict_watermarks(const ZoneInfo& zones, int64_t min_free_kbytes,
                                               int64_t watermark_scale_factor,
                                               const KernelProfile& profile);
// The same for a 4 KiB-page kernel with the current (>= 6.5) Movable rule.
std::vector<ZoneWatermarks> predict_watermarks(const ZoneInfo& zones, int64_t min_free_kbytes,
                                               int64_t watermark_scale_factor);
// The largest min_free_kbytes the safety guard allows on this machine: the configured share of
// managed lowmem (all zones but Movable/HighMem/Device), in KiB of this kernel's pages.
int64_t min_free_cap_kib(const ZoneInfo& zones, const SafetyConfig& safety,
                         const KernelProfile& profile);
int64_t min_free_cap_kib(const ZoneInfo& zones, const SafetyConfig& safety);  // 4 KiB pages

// What the kernel itself sets min_free_kbytes to when it recalculates (memory online/offline,
// mm/page_alloc.c init_per_zone_wmark_min):
//  1. calculate_min_free_kbytes(): int_sqrt(lowmem_kbytes * 16) clamped to [128, 262144] (65536
//     before 5.7), lowmem_kbytes being nr_free_buffer_pages() (managed - high watermark over the
//     zones up to Normal) in KiB with the watermarks in force then (`high_pages_delta` shifts
//     their sum); applied only when larger than what user space last wrote (`user_min_kib`),
//     else the value stays what it was (`current_kib`).
//  2. The watermarks are recomputed for that value, and khugepaged's
//     set_recommended_min_free_kbytes() (THP enabled) raises it to 11 pageblocks per zone up to
//     Normal, at most 5% of nr_free_buffer_pages() under the new watermarks. high_wmark_pages()
//     includes watermark_boost, which may have grown by then (up to watermark_boost_factor, 150%
//     of high by default): `thp_boosted` is the recommendation under the largest boost, the lower
//     end of what the kernel can set (measured on 6.1 under qemu: 0.9-1.5% below `thp` after a
//     DIMM was onlined).
struct KernelMinFree {
    int64_t sqrt_rule = 0;    // step 1's formula
    int64_t no_thp = 0;       // after step 1 (sqrt_rule, or current_kib when held by user_min_kib)
    int64_t thp = 0;          // khugepaged's recommendation, no boost
    int64_t thp_boosted = 0;  // ... with the largest boost
    int64_t with_thp() const { return std::max(no_thp, thp); }
    // Is `v` what the kernel may have set (within 1%)?
    bool matches(int64_t v) const;
};
KernelMinFree kernel_min_free_kbytes(const ZoneInfo& zones, const KernelProfile& profile,
                                     int64_t watermark_scale_factor,
                                     std::optional<int64_t> user_min_kib = std::nullopt,
                                     int64_t current_kib = 0, int64_t high_pages_delta = 0);
// Sum of the high watermarks of the zones up to Normal (what nr_free_buffer_pages subtracts).
uint64_t user_zone_high_pages(const ZoneInfo& zones);

// Effective bounds of a knob: configured (or table default) bounds intersected with the kernel's
// range; for min_free_kbytes also capped by min_free_cap_kib and never below the baseline (nor
// above the cap: a baseline above the cap is held at the cap). decide() clamps every target into
// these bounds.
Range effective_bounds(Knob k, const KnobState& ks, const Config& config, const Sample& sample);

}  // namespace fragtune
