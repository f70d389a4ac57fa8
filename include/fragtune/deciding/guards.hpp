// The rules every knob obeys, applied to a policy's proposal: effective bounds (with the module's
// own narrowing), the max step, the cooldown, the sliding-hour change cap, and the module's guard
// hooks (KnobModule::cap_note, when_blocked, check_target).
#pragma once

#include <cstdint>
#include <optional>

#include "fragtune/deciding/tick.hpp"
#include "fragtune/knobs/knob_module.hpp"

namespace fragtune::deciding {

// Shapes a proposal into a decision (or a refusal, or nothing).
std::optional<Decision> guard(const Tick& t, const KnobModule& m, int64_t cur, Proposal p);

// Applied changes of the knob within the hour before `now`.
std::size_t recent_change_count(const KnobState& ks, uint64_t now);

}  // namespace fragtune::deciding
