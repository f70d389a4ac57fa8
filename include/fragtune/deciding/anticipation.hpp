// Anticipation (issue #13): acting before the next burst instead of after the damage. Pure: no I/O,
// no clock, no logging; time is Sample::mono_usec. Two halves:
//
//  * Learned headroom. An *episode* is a run of ticks with trouble: direct reclaim (allocstall or
//    pgscan_direct), PSI some at or above the watermark policy's raise threshold, a zone at or below
//    its min watermark, or an atomic allocation failure. Over an episode the module adds up what the
//    low..min band failed to absorb (pages reclaimed directly by the allocating tasks) and what it did
//    absorb (the fall below low), and the drain the measured kswapd rate could not cover; that,
//    times a margin, is the low..high gap that would have absorbed it, turned into the
//    watermark_scale_factor whose gap it is (predict_watermarks: the gap between low and high is what
//    kswapd reclaims before it sleeps, and low - min is the same gap). Atomic failures learn a
//    min_free_kbytes reserve instead. A learnt value is proposed in one step (the controller's guards
//    still shape it), held for `learned_hold`, then decays in small steps; a new episode refreshes it.
//    It is persisted in the state file.
//  * Prediction. Least squares over the recent (mono time, value) samples, uneven intervals allowed:
//    free memory falling towards the low watermark faster than kswapd can refill the gap raises the
//    scale factor before low is reached; free blocks of a target order falling towards zero raise
//    compaction_proactiveness before an allocation has to stall.
//
// The controller calls these from its knob policies through small marked hooks (controller.cpp,
// "anticipation hook"); each returns a proposal or nothing, and the guards dispose.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/configuration/config.hpp"
#include "fragtune/sensing/sample.hpp"

namespace fragtune {

// One point of a trend: a value at a monotonic time.
struct TrendPoint {
    uint64_t mono_usec = 0;
    double value = 0;
};
// Least-squares line through points: value(t) = at_last + slope_per_sec * (t - t_last) / 1e6.
struct Trend {
    double slope_per_sec = 0;  // units of value per second; negative: falling
    double at_last = 0;        // the fitted value at the newest point's time
    std::size_t points = 0;
    double span_sec = 0;  // newest minus oldest time
};
// Ordinary least squares of value on time (times need not be evenly spaced). Nullopt with fewer than
// 2 points or when all points share one time.
std::optional<Trend> fit_trend(const std::vector<TrendPoint>& points);
// Seconds until the fitted line reaches `level` from above; nullopt when it is not falling or is
// already at or below `level`.
std::optional<double> seconds_until_below(const Trend& trend, double level);

// A value learnt from an episode, held and then decayed. value 0: nothing learnt.
struct LearnedValue {
    int64_t value = 0;
    uint64_t at_usec = 0;  // mono time of the last refresh (the hold runs from here)
    std::string why;       // the episode's figures, for reasons and `fragtunectl explain`
    friend bool operator==(const LearnedValue&, const LearnedValue&) = default;
};
// The floor a learnt value sets at `now`: `value` during the hold, then `step` less per `interval`
// elapsed after it, never below `baseline`. Nullopt when nothing is learnt or it has decayed to the
// baseline.
std::optional<int64_t> learned_floor(const LearnedValue& v, uint64_t now_usec, uint64_t hold_usec,
                                     int64_t step, uint64_t interval_usec, int64_t baseline);

// Trouble over consecutive ticks.
struct Episode {
    bool open = false;
    uint64_t start_usec = 0;
    double below_low_pages = 0;      // deepest fall below the low watermark (>= low - min with
                                     // direct reclaim: the allocation path reached min)
    double direct_pages = 0;         // pgsteal_direct (else pgscan_direct) summed over the episode
    double uncovered_pages = 0;      // sum over ticks of (allocation - kswapd's best rate) x dt
    double alloc_pages_per_sec = 0;  // highest allocation rate seen (free drop + reclaimed) / dt
    // the largest single tick's need: fall into the low..min band + direct reclaim, or the allocation
    // kswapd's best rate did not cover
    double need_pages = 0;
    uint32_t atomic_failed_pages = 0;  // pages of atomic allocations that failed (order-weighted)
    std::string cause;                 // first trouble seen: "direct reclaim", "PSI", ...
};

// What the anticipation keeps between ticks (part of ControllerState).
struct AnticipationState {
    std::vector<TrendPoint> free_pages;  // recent free memory (sum over populated zones)
    // recent free blocks of the highest target order the kernel has (signals.targets.back())
    std::vector<TrendPoint> target_blocks;
    int target_order = -1;
    double kswapd_pages_per_sec = 0;  // best pgsteal_kswapd rate measured (decays slowly)
    Episode episode;
    LearnedValue watermark;  // learnt watermark_scale_factor
    LearnedValue min_free;   // learnt min_free_kbytes
    uint64_t now_usec = 0;   // mono time of the last sample seen (ages for the state file)
};

// Pure: the state after `sample` (episodes opened, grown and closed, values learnt, trend buffers
// trimmed to the prediction window). The knob values in force are the sample's own.
AnticipationState update_anticipation(const Sample& sample, const AnticipationState& state,
                                      const Config& config);

// The smallest watermark_scale_factor in [1, kernel max] whose predicted low - min gap, summed over
// the zones, is at least `gap_pages` with min_free_kbytes at `min_free_kbytes`
// (predict_watermarks()); the kernel maximum when none suffices.
int64_t wsf_for_gap(const Sample& sample, int64_t min_free_kbytes, double gap_pages);

// What anticipation asks of a knob this tick.
struct Anticipation {
    int64_t target = 0;
    std::string
        rule;  // "learned-headroom", "predict-low", "learned-reserve", "predict-fragmentation"
    std::string reason;  // signal values and the cost (memory kept free, compaction work)
};

// watermark_scale_factor: the learnt headroom not yet in place, else a predicted fall to low that
// kswapd cannot outrun. Nullopt: nothing to add (target would not exceed `cur`).
std::optional<Anticipation> anticipate_watermark(const Sample& sample, const AnticipationState& a,
                                                 const Config& config, int64_t cur,
                                                 int64_t baseline);
// min_free_kbytes: the learnt reserve not yet in place.
std::optional<Anticipation> anticipate_min_free(const Sample& sample, const AnticipationState& a,
                                                const Config& config, int64_t cur,
                                                int64_t baseline);
// compaction_proactiveness: free blocks of the target order trending to zero within the horizon.
std::optional<Anticipation> anticipate_compaction(const Sample& sample, const AnticipationState& a,
                                                  const Config& config, int64_t cur);

// The lowest value a decay of the knob may reach now (the learnt floor), or nullopt. For
// watermark_scale_factor and min_free_kbytes; others: nullopt.
std::optional<int64_t> anticipation_floor(Knob k, const AnticipationState& a, const Config& config,
                                          uint64_t now_usec, int64_t baseline);

}  // namespace fragtune
