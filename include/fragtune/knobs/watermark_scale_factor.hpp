// vm.watermark_scale_factor: the distance between the min, low and high watermarks.
// Raised on direct reclaim (stalls, direct scanning, PSI) with zones below low; lowered when kswapd
// is busy without stalls, never below the value that last ended stalls for stall_memory_usec.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/knobs/knob_module.hpp"

namespace fragtune {

// Thresholds of the watermark_scale_factor policy (doc/policies.md).
struct WatermarkPolicy {
    int64_t raise_step = 20;                // additive, in 1/10000 of memory
    double allocstall_raise_per_sec = 1.0;  // direct reclaim stalls per second
    double psi_some_raise_percent = 1.0;    // share of the interval some task stalled on memory
    double psi_some_relax_percent = 0.1;
    int64_t decay_step = 10;
    // After direct-reclaim stalls, the scale factor is not lowered below the value that ended them for
    // this long (without stalls): a workload that needs kswapd keeps it busy, and lowering on "kswapd
    // busy" alone would bring the stalls straight back (raise/lower flapping).
    uint64_t stall_memory_usec = 3'600'000'000;
    // Anticipation (anticipation.hpp). learned-headroom: after an episode (direct reclaim, PSI, a
    // min-watermark dip) the scale factor whose low..min gap covers what the episode needed, times
    // learned_margin, is set in one step and held for learned_hold_usec (0: learning off), then
    // decays by decay_step per decay interval. predict-low: free memory falling towards low (least
    // squares over predict_window_usec) faster than kswapd can refill the gap raises it early.
    uint64_t learned_hold_usec = 21'600'000'000;
    double learned_margin = 1.25;
    bool predict = true;
    uint64_t predict_window_usec = 20'000'000;
};

namespace knobs::watermark_scale_factor {

// Its keys of [tunables.watermark_scale_factor] (fragtune.toml(5)).
void add_policy_keys(std::vector<ConfigKey>& rows, const std::string& section);
// The policy of doc/policies.md for watermark_scale_factor.
std::optional<deciding::Proposal> propose(const deciding::Tick& t, int64_t cur);
// A raise is refused on stale zoneinfo (deciding::refuse_if_stale_zoneinfo).
deciding::Verdict check_target(const deciding::Tick& t, int64_t cur, const deciding::Proposal& p,
                               const Range& bounds, int64_t& target, std::string& notes);
// The version table (max 1000 before 5.19), and where the learnt range starts (the widest).
Range kernel_range(std::optional<KernelVersion> version);
Range initial_range(std::optional<KernelVersion> version);

// The rules this module's decisions name, besides the generic ones (kGenericRules); each is a
// row of doc/policies.md (knob_docs_test.cpp).
inline constexpr std::string_view kRules[] = {"direct-reclaim", "kswapd-busy", "learned-headroom",
                                              "predict-low"};

inline constexpr KnobModule kModule{
    .spec = {Knob::watermark_scale_factor, "watermark_scale_factor", "vm.watermark_scale_factor",
             "/proc/sys/vm/watermark_scale_factor", "1/10000 of memory", 1, 3000, 10, 300, "",
             "distance between the min, low and high watermarks: how early kswapd wakes and how "
             "long it works"},
    .kernel_range = &kernel_range,
    .initial_range = &initial_range,
    .add_policy_keys = &add_policy_keys,
    .propose = &propose,
    .when_unsupported = nullptr,
    .adopt_foreign = nullptr,
    .shape_bounds = nullptr,
    .cap_note = nullptr,
    .when_blocked = nullptr,
    .check_target = &check_target,
    .on_change = nullptr,
    .on_applied = nullptr,
    .rules = kRules,
};

}  // namespace knobs::watermark_scale_factor

}  // namespace fragtune
