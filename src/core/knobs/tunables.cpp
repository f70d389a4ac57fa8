#include "fragtune/knobs/tunables.hpp"

#include <charconv>

namespace fragtune {

std::optional<Knob> knob_from_name(std::string_view name) {
    for (const auto& t : kTunables)
        if (name == t.name || name == t.sysctl) return t.knob;
    return std::nullopt;
}

std::optional<KernelVersion> parse_kernel_version(std::string_view s) {
    KernelVersion v;
    auto [p1, e1] = std::from_chars(s.data(), s.data() + s.size(), v.major);
    if (e1 != std::errc() || p1 == s.data() + s.size() || *p1 != '.') return std::nullopt;
    auto [p2, e2] = std::from_chars(p1 + 1, s.data() + s.size(), v.minor);
    if (e2 != std::errc()) return std::nullopt;
    return v;
}

Range kernel_range(Knob k, std::optional<KernelVersion> version) {
    const auto& m = module(k);
    if (m.kernel_range) return m.kernel_range(version);
    return Range{m.spec.kernel_min, m.spec.kernel_max};
}

Range initial_range(Knob k, std::optional<KernelVersion> version) {
    const auto& m = module(k);
    return m.initial_range ? m.initial_range(version) : kernel_range(k, version);
}

}  // namespace fragtune
