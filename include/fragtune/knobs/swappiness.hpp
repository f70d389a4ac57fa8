// vm.swappiness: the relative cost of swapping anonymous memory versus dropping page cache.
// Only with swap: file refaults raise it, swap-ins lower it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/knobs/knob_module.hpp"

namespace fragtune {

// Thresholds of the swappiness policy (doc/policies.md).
struct SwappinessPolicy {
    int64_t step = 10;
    double refault_file_raise_per_sec = 1000.0;  // file refaults/s that favour swapping cold anon
    double swapin_lower_per_sec = 100.0;         // pswpin/s that favour keeping anon in memory
    double swapin_low_per_sec = 10.0;            // refaults raise only while pswpin/s is below this
    // file refaults/s below this (and swap-ins low): calm
    double refault_file_relax_per_sec = 100.0;
    int64_t decay_step = 5;
};

namespace knobs::swappiness {

// Its keys of [tunables.swappiness] (fragtune.toml(5)).
void add_policy_keys(std::vector<ConfigKey>& rows, const std::string& section);
// The policy of doc/policies.md for swappiness.
std::optional<deciding::Proposal> propose(const deciding::Tick& t, int64_t cur);
// The version table: max 100 before 5.8.
Range kernel_range(std::optional<KernelVersion> version);

// The rules this module's decisions name, besides the generic ones (kGenericRules); each is a
// row of doc/policies.md (knob_docs_test.cpp).
inline constexpr std::string_view kRules[] = {"refaults", "swap-ins"};

inline constexpr KnobModule kModule{
    .spec = {Knob::swappiness, "swappiness", "vm.swappiness", "/proc/sys/vm/swappiness", "", 0, 200,
             0, 200, "", "relative cost of swapping anonymous memory versus dropping page cache"},
    .kernel_range = &kernel_range,
    .initial_range = nullptr,
    .add_policy_keys = &add_policy_keys,
    .propose = &propose,
    .when_unsupported = nullptr,
    .adopt_foreign = nullptr,
    .shape_bounds = nullptr,
    .cap_note = nullptr,
    .when_blocked = nullptr,
    .check_target = nullptr,
    .on_change = nullptr,
    .on_applied = nullptr,
    .rules = kRules,
};

}  // namespace knobs::swappiness

}  // namespace fragtune
