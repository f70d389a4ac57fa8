#include "fragtune/configuration/config.hpp"

namespace fragtune {

std::string_view to_string(Mode m) {
    switch (m) {
        case Mode::active:
            return "active";
        case Mode::observe:
            return "observe";
        case Mode::paused:
            return "paused";
    }
    return "?";
}

std::optional<Mode> mode_from_string(std::string_view s) {
    if (s == "active") return Mode::active;
    if (s == "observe") return Mode::observe;
    if (s == "paused") return Mode::paused;
    return std::nullopt;
}

std::string_view to_string(OnExit e) {
    return e == OnExit::keep ? "keep" : "restore";
}

}  // namespace fragtune
