// vm.watermark_boost_factor (5.0+): how far a fragmentation event boosts a zone's watermarks.
// mm/page_alloc.c boost_watermark(): when an allocation falls back to stealing a pageblock of
// another migrate type, zone->watermark_boost grows by one pageblock, up to
// watermark_boost_factor/10000 of the high watermark, and kswapd is woken to reclaim up to the
// boosted high watermark (mm/vmscan.c balance_pgdat: boosted reclaim neither writes back nor swaps,
// so it takes page cache) and then to wake kcompactd. That extra reclaim is the price of fewer
// future fallbacks; when it evicts a file working set that refaults at once, and high-order
// availability is not the problem, the price is not worth paying, so this policy lowers the factor
// towards its lower bound, and steps back to the baseline when calm. Disabled by default.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/knobs/knob_module.hpp"

namespace fragtune {

// Thresholds of the watermark_boost_factor policy (doc/policies.md).
struct WatermarkBoostPolicy {
    int64_t lower_step = 5000;  // additive lowering, in 1/10000 of the high watermark
    // File refaults per second while a zone carries a boost and kswapd scans: boost-driven
    // reclaim evicts a working set that comes straight back.
    double refault_lower_per_sec = 1000.0;
    double refault_relax_per_sec = 100.0;  // below this the boost costs nothing: calm
    // Additive step back towards the baseline: three lowers and three decays fit in the hourly
    // change cap.
    int64_t decay_step = 5000;
};

namespace knobs::watermark_boost_factor {

// Its keys of [tunables.watermark_boost_factor] (fragtune.toml(5)).
void add_policy_keys(std::vector<ConfigKey>& rows, const std::string& section);
// The policy of doc/policies.md for watermark_boost_factor.
std::optional<deciding::Proposal> propose(const deciding::Tick& t, int64_t cur);

// The rules this module's decisions name, besides the generic ones (kGenericRules); each is a
// row of doc/policies.md (knob_docs_test.cpp).
inline constexpr std::string_view kRules[] = {"boost-reclaim"};

inline constexpr KnobModule kModule{
    .spec = {Knob::watermark_boost_factor, "watermark_boost_factor", "vm.watermark_boost_factor",
             "/proc/sys/vm/watermark_boost_factor", "1/10000 of the high watermark", 0, 2147483647,
             0, 15000, "5.0",
             "how far watermarks are boosted after a fragmentation event, so that kswapd reclaims "
             "(and kcompactd compacts) ahead of the next one"},
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
    .enabled_by_default = false,
    .rules = kRules,
};

}  // namespace knobs::watermark_boost_factor

}  // namespace fragtune
