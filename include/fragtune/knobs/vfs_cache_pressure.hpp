// vm.vfs_cache_pressure: how eagerly dentry and inode caches are reclaimed.
// Raised while reclaimable slab crowds a fragmented node; back to the baseline when slab is small.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/knobs/knob_module.hpp"

namespace fragtune {

// Thresholds of the vfs_cache_pressure policy (doc/policies.md).
struct VfsCachePolicy {
    int64_t raise_step = 50;
    double slab_raise_share = 0.20;  // SReclaimable / MemTotal above this while fragmented: raise
    double slab_relax_share = 0.10;
    int fragmentation_score = 50;  // node fragmentation score (0..100) counted as fragmented
    int64_t decay_step = 25;
};

namespace knobs::vfs_cache_pressure {

// Its keys of [tunables.vfs_cache_pressure] (fragtune.toml(5)).
void add_policy_keys(std::vector<ConfigKey>& rows, const std::string& section);
// The policy of doc/policies.md for vfs_cache_pressure.
std::optional<deciding::Proposal> propose(const deciding::Tick& t, int64_t cur);

// The rules this module's decisions name, besides the generic ones (kGenericRules); each is a
// row of doc/policies.md (knob_docs_test.cpp).
inline constexpr std::string_view kRules[] = {"slab-fragmentation"};

inline constexpr KnobModule kModule{
    .spec = {Knob::vfs_cache_pressure, "vfs_cache_pressure", "vm.vfs_cache_pressure",
             "/proc/sys/vm/vfs_cache_pressure", "", 0, 2147483647, 50, 500, "",
             "how eagerly dentry and inode caches (reclaimable slab) are reclaimed relative to "
             "page cache"},
    .kernel_range = nullptr,
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

}  // namespace knobs::vfs_cache_pressure

}  // namespace fragtune
