// vm.min_free_kbytes: the reserve for allocations that cannot wait (atomic, interrupt context).
// Raised on atomic failures, min-watermark dips and kswapd hitting low quickly; never past the
// safety cap or the low-watermark safety guard; the kernel's own recalculation is adopted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/knobs/knob_module.hpp"

namespace fragtune {

// Thresholds of the min_free_kbytes policy (doc/policies.md); each pair is (raise, relax).
struct MinFreePolicy {
    double raise_factor = 1.5;  // multiplicative raise on trouble
    int max_failure_order = 3;  // atomic failures up to this order count as reserve starvation
    // A zone at or below its min watermark in this many of the 8 equal slots of min_dip_window
    // (the key keeps its old name: with the old fixed 2 s tick a slot was a tick).
    uint32_t min_dip_ticks = 2;
    uint64_t min_dip_window_usec = 16'000'000;  // also how long atomic failures stay trouble
    // kswapd_low_wmark_hit_quickly rate that counts as trouble
    double kswapd_low_quick_per_sec = 5.0;
    // Additive decay step, KiB. Default 16384: one x1.5 raise of a typical 64-90 MiB reserve decays in
    // 2-3 steps, so raise + decay fit in the hourly change cap (decays count as changes).
    int64_t decay_step_kib = 16384;
    // Anticipation (anticipation.hpp): the reserve that ended atomic failures (rule learned-reserve)
    // is held for this long, then decays by decay_step_kib per decay interval. 0: off.
    uint64_t learned_hold_usec = 21'600'000'000;
};

namespace knobs::min_free_kbytes {

// Its keys of [tunables.min_free_kbytes] (fragtune.toml(5)).
void add_policy_keys(std::vector<ConfigKey>& rows, const std::string& section);
// The policy of doc/policies.md for min_free_kbytes.
std::optional<deciding::Proposal> propose(const deciding::Tick& t, int64_t cur);
// Guard hooks: baseline floor and safety cap on the bounds, the cap's note and refusal, the
// low-watermark safety guard on raises.
void shape_bounds(Range& r, const KnobState& ks, const Config& config, const Sample& sample);
std::string cap_note(const deciding::Tick& t, const Range& b);
deciding::Verdict when_blocked(const deciding::Tick& t, int64_t cur, const deciding::Proposal& p,
                               const Range& b, Blocked why, std::string_view blocked_by);
deciding::Verdict check_target(const deciding::Tick& t, int64_t cur, const deciding::Proposal& p,
                               const Range& b, int64_t& target, std::string& notes);
// Ownership: the kernel's own recalculation on memory hotplug is adopted as the new baseline.
std::optional<Decision> adopt_foreign(const deciding::Tick& t, int64_t expected, int64_t live,
                                      uint64_t managed_now);
// Bookkeeping: a change restarts the dip and failure history; a real write is the kernel's
// user_min_free_kbytes.
void on_change(ControllerState& state, int64_t value);
void on_applied(ControllerState& state, int64_t value);

// The rules this module's decisions name, besides the generic ones (kGenericRules); each is a
// row of doc/policies.md (knob_docs_test.cpp).
inline constexpr std::string_view kRules[] = {
    "atomic-failures", "min-watermark-dips",   "kswapd-low-quick",   "learned-reserve",
    "safety-cap",      "safety-low-watermark", "kernel-recalculated"};

inline constexpr KnobModule kModule{
    .spec = {Knob::min_free_kbytes, "min_free_kbytes", "vm.min_free_kbytes",
             "/proc/sys/vm/min_free_kbytes", "KiB", 0, 2147483647, 0, 1048576, "",
             "reserve kept free for allocations that cannot wait for reclaim (atomic, interrupt "
             "context)"},
    .kernel_range = nullptr,
    .initial_range = nullptr,
    .add_policy_keys = &add_policy_keys,
    .propose = &propose,
    .when_unsupported = nullptr,
    .adopt_foreign = &adopt_foreign,
    .shape_bounds = &shape_bounds,
    .cap_note = &cap_note,
    .when_blocked = &when_blocked,
    .check_target = &check_target,
    .on_change = &on_change,
    .on_applied = &on_applied,
    .rules = kRules,
};

}  // namespace knobs::min_free_kbytes

}  // namespace fragtune
