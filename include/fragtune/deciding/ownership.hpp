// Who owns a knob's value: the administrator wins. A live value that is not what fragtune wrote
// (nor the original, before the first write) pins the knob, unless the knob's module explains it
// (KnobModule::adopt_foreign: min_free_kbytes recalculated by the kernel on memory hotplug).
#pragma once

#include <cstdint>
#include <optional>

#include "fragtune/deciding/tick.hpp"
#include "fragtune/knobs/knob_module.hpp"

namespace fragtune::deciding {

// nullopt when `live` is what fragtune expected; else the pin (status pinned) or the module's
// adoption (status unchanged).
std::optional<Decision> check_owner(const Tick& t, const KnobModule& m, int64_t live,
                                    uint64_t managed_now);

}  // namespace fragtune::deciding
