#include "fragtune/configuration/config.hpp"

#include <iterator>

#include "fragtune/util/enum_names.hpp"

namespace fragtune {

namespace {

constexpr EnumName<Mode> kModeNames[] = {
    {Mode::active, "active"}, {Mode::observe, "observe"}, {Mode::paused, "paused"}};
constexpr EnumName<OnExit> kOnExitNames[] = {{OnExit::keep, "keep"}, {OnExit::restore, "restore"}};
static_assert(enum_rows_in_order(kModeNames) &&
              std::size(kModeNames) == static_cast<std::size_t>(Mode::paused) + 1);
static_assert(enum_rows_in_order(kOnExitNames) &&
              std::size(kOnExitNames) == static_cast<std::size_t>(OnExit::restore) + 1);

}  // namespace

std::string_view to_string(Mode m) {
    return enum_name(kModeNames, m);
}

std::optional<Mode> mode_from_string(std::string_view s) {
    return enum_from_name(kModeNames, s);
}

std::string_view to_string(OnExit e) {
    return enum_name(kOnExitNames, e);
}

}  // namespace fragtune
