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
    const auto& t = spec(k);
    Range r{t.kernel_min, t.kernel_max};
    switch (k) {
        case Knob::swappiness:
            // 5.8 (commit c843966c556d, "mm: allow swappiness that prefers reclaiming anon over file")
            if (!version || *version < KernelVersion{5, 8}) r.max = 100;
            break;
        case Knob::watermark_scale_factor:
            // 5.19 raised the maximum from 1000 (10%) to 3000 (30%).
            if (!version || *version < KernelVersion{5, 19}) r.max = 1000;
            break;
        default:
            break;
    }
    return r;
}

}  // namespace fragtune
