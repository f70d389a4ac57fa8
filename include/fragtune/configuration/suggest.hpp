// The configuration's spelling suggester: which known name a mistyped key or section most likely
// meant, for "unknown key ...; did you mean ...?".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fragtune {

// Pure. The candidate a mistyped name most likely meant: the same name in another (ASCII) case,
// the longest name that a unit suffix from config.hpp extends ("tick_usec" -> "tick",
// "tick_max_usec" -> "tick_max"), or the nearest by optimal string alignment distance on code
// points within a third of the candidate's length (at least 1, at most 3), the first of equals in
// `candidates` order; nullopt when none is that near.
std::optional<std::string> suggest(std::string_view typed,
                                   const std::vector<std::string>& candidates);

}  // namespace fragtune
