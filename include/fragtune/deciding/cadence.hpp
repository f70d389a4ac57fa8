// How long the loop sleeps until the next tick: fast while there is trouble, stretching while the
// machine is calm, never longer than the memory headroom lasts at the fastest drain seen.
//
// The rule (Android lmkd polls fast only while pressure lasts; earlyoom sleeps headroom / fill rate):
//   - a fixed `tick` (DaemonConfig::tick_usec != 0) is used as is: the cadence is not adaptive;
//   - after a wake-up (PSI trigger, allocation failure in the kernel log), failures in the sample,
//     a decision, or a sample that shows trouble (a zone below its low watermark, direct reclaim),
//     the next tick comes after tick_min and the calm streak restarts;
//   - otherwise each calm tick doubles the interval, from tick_min up to tick_max;
//   - and never longer than headroom / drain: the pages above the low watermark (the smallest such
//     headroom among zones) divided by the fastest fall of that headroom seen since start, halved as
//     a safety margin (the drain may come back faster), so a tick lands before the reserve is gone.
//     Never below tick_min.
// Pure: no clock, no I/O; time enters as the sample's monotonic timestamp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace fragtune {

struct CadenceConfig {
    uint64_t fixed_usec = 0;         // daemon.tick: 0 = adaptive
    uint64_t min_usec = 250'000;     // daemon.tick_min
    uint64_t max_usec = 10'000'000;  // daemon.tick_max
};

// What this tick saw.
struct CadenceInput {
    uint64_t mono_usec = 0;      // the sample's time
    int64_t headroom_pages = 0;  // Signals::min_headroom_pages (free - low, smallest zone)
    bool woken = false;          // this tick was run by a wake-up, not the timer
    bool failures = false;       // allocation failures reached this tick
    bool decided = false;        // the controller made a decision this tick
    bool trouble = false;        // zones below low, direct reclaim stalls
};

struct CadenceState {
    uint64_t interval_usec = 0;  // the interval chosen last (0: none yet)
    uint32_t calm_ticks = 0;     // calm ticks in a row
    // Fastest fall of headroom seen, pages per second (0: never seen it fall).
    double max_drain_pages_per_sec = 0;
    std::optional<int64_t> last_headroom_pages;
    uint64_t last_mono_usec = 0;
};

struct CadenceStep {
    CadenceState next;
    uint64_t interval_usec = 0;  // time to the next tick
    std::string why;             // "fixed", "trouble", "calm", "headroom" (what set the interval)
};

CadenceStep next_cadence(const CadenceState& state, const CadenceInput& in,
                         const CadenceConfig& config);

}  // namespace fragtune
