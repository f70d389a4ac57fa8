// vm.compaction_proactiveness (5.9+): how hard kcompactd compacts in the background.
// Raised on fragmentation at the target orders (far enough for kcompactd to work), lowered when
// compaction is futile; kicks kcompactd when a raise is blocked; compact_memory before 5.9.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/knobs/knob_module.hpp"

namespace fragtune {

// Thresholds of the compaction_proactiveness policy (doc/policies.md).
struct CompactionPolicy {
    int64_t raise_step = 20;
    int unusable_raise_permille = 800;  // unusable free index at a target order above this: raise
    int unusable_relax_permille = 400;  // below this (blocks plentiful): relax
    double futile_fail_ratio = 4.0;  // compact_fail > ratio * compact_success: compaction is futile
    uint32_t futile_min_fail = 4;    // ... with at least this many compact_fail in the interval
    uint64_t kick_interval_usec = 30'000'000;  // least time between two wake-up writes
    int64_t decay_step = 10;
    bool compact_memory_fallback = false;  // one-shot /proc/sys/vm/compact_memory on kernels < 5.9
    // least time between two compact_memory writes
    uint64_t compact_memory_interval_usec = 600'000'000;
    // After compaction was found futile, fragmentation does not raise proactiveness (nor kick) for this
    // long: compaction that cannot move pages only burns CPU, and without this the knob would oscillate.
    uint64_t futile_backoff_usec = 600'000'000;
    // Anticipation (rule predict-fragmentation): free blocks of the highest target order trending to
    // zero within predict_horizon_usec (least squares over the watermark policy's predict window)
    // raise proactiveness before an allocation has to stall.
    bool predict = true;
    uint64_t predict_horizon_usec = 30'000'000;
};

namespace knobs::compaction_proactiveness {

// Its keys of [tunables.compaction_proactiveness] (fragtune.toml(5)).
void add_policy_keys(std::vector<ConfigKey>& rows, const std::string& section);
// The policy of doc/policies.md for compaction_proactiveness.
std::optional<deciding::Proposal> propose(const deciding::Tick& t, int64_t cur);
// The compact_memory fallback on kernels without the knob, and the kick when a raise is blocked.
std::optional<Decision> when_unsupported(const deciding::Tick& t);
deciding::Verdict when_blocked(const deciding::Tick& t, int64_t cur, const deciding::Proposal& p,
                               const Range& b, Blocked why, std::string_view blocked_by);

// The rules this module's decisions name, besides the generic ones (kGenericRules); each is a
// row of doc/policies.md (knob_docs_test.cpp).
inline constexpr std::string_view kRules[] = {"fragmentation", "compaction-kick",
                                              "compaction-futile", "predict-fragmentation"};

inline constexpr KnobModule kModule{
    .spec = {Knob::compaction_proactiveness, "compaction_proactiveness",
             "vm.compaction_proactiveness", "/proc/sys/vm/compaction_proactiveness", "", 0, 100, 0,
             90, "5.9",
             "how hard kcompactd compacts in the background to keep high-order blocks available"},
    .kernel_range = nullptr,
    .initial_range = nullptr,
    .add_policy_keys = &add_policy_keys,
    .propose = &propose,
    .when_unsupported = &when_unsupported,
    .adopt_foreign = nullptr,
    .shape_bounds = nullptr,
    .cap_note = nullptr,
    .when_blocked = &when_blocked,
    .check_target = nullptr,
    .on_change = nullptr,
    .on_applied = nullptr,
    .rules = kRules,
};

}  // namespace knobs::compaction_proactiveness

}  // namespace fragtune
