// The one table of knobs: each row is a knob's module (knobs/<name>.hpp), in Knob order. decide(),
// the guards, effective_bounds(), the configuration registry, the kernel profile's ranges and every
// loop over "all knobs" (kTunables, kKnobCount in tunables.hpp) are derived from it. Adding a knob
// is an enumerator in knob.hpp, its module, a row here, and its policy member in Config.
#pragma once

#include <array>
#include <cstddef>

#include "fragtune/knobs/compaction_proactiveness.hpp"
#include "fragtune/knobs/knob.hpp"
#include "fragtune/knobs/knob_module.hpp"
#include "fragtune/knobs/min_free_kbytes.hpp"
#include "fragtune/knobs/swappiness.hpp"
#include "fragtune/knobs/vfs_cache_pressure.hpp"
#include "fragtune/knobs/watermark_boost_factor.hpp"
#include "fragtune/knobs/watermark_scale_factor.hpp"

namespace fragtune {

inline constexpr auto kKnobModules = std::to_array<KnobModule>({
    knobs::min_free_kbytes::kModule,
    knobs::watermark_scale_factor::kModule,
    knobs::compaction_proactiveness::kModule,
    knobs::vfs_cache_pressure::kModule,
    knobs::swappiness::kModule,
    knobs::watermark_boost_factor::kModule,
});

inline constexpr std::size_t kKnobCount = kKnobModules.size();

namespace registry_detail {
constexpr bool rows_follow_the_enum() {
    for (std::size_t i = 0; i < kKnobModules.size(); ++i)
        if (index(kKnobModules[i].spec.knob) != i) return false;
    return true;
}
}  // namespace registry_detail
static_assert(registry_detail::rows_follow_the_enum(),
              "row i of kKnobModules must be the module of Knob i");
// That every module has its propose and config-key hooks is a unit test (tunables_test.cpp): GCC 12
// cannot compare a function's address with nullptr in a constant expression under -fsanitize
// (the asan preset).
static_assert(index(kLastKnob) + 1 == kKnobCount,
              "every Knob enumerator needs its module in kKnobModules, and no more");

inline constexpr const KnobModule& module(Knob k) {
    return kKnobModules[index(k)];
}

}  // namespace fragtune
