// The anticipation rules (anticipation.hpp: learned headroom, trend prediction) on top of a knob
// policy's own proposal. Called by the propose hooks of min_free_kbytes, watermark_scale_factor and
// compaction_proactiveness: a higher anticipated target replaces the reactive proposal, and no
// decay or lower goes under the learnt floor while it is held. The guards still dispose.
#pragma once

#include <cstdint>
#include <optional>

#include "fragtune/deciding/tick.hpp"

namespace fragtune::deciding {

std::optional<Proposal> anticipate(const Tick& t, Knob k, int64_t cur,
                                   std::optional<Proposal> reactive);

}  // namespace fragtune::deciding
