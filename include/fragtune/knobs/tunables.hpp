// The knobs fragtune tunes, as data: their table rows (TunableSpec) derived from the registry of
// knob modules (knobs/registry.hpp), so sensing, applying, persisting and D-Bus loop over one table.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fragtune/knobs/knob.hpp"
#include "fragtune/knobs/registry.hpp"

namespace fragtune {

inline constexpr std::array<TunableSpec, kKnobCount> kTunables = [] {
    std::array<TunableSpec, kKnobCount> rows{};
    for (std::size_t i = 0; i < kKnobCount; ++i) rows[i] = kKnobModules[i].spec;
    return rows;
}();

inline constexpr const TunableSpec& spec(Knob k) {
    return kTunables[index(k)];
}

// The knob with this table name ("min_free_kbytes") or sysctl name ("vm.min_free_kbytes"); nullopt for
// anything else. This is the only way a caller-supplied string becomes a knob.
std::optional<Knob> knob_from_name(std::string_view name);

// The range the running kernel accepts for the knob, where it moved between versions (each module's
// kernel_range rule: swappiness max 100 before 5.8 and 200 since; watermark_scale_factor max 1000
// before 5.19 and 3000 since). Unknown version: the narrower (older) range, which every kernel
// accepts.
Range kernel_range(Knob k, std::optional<KernelVersion> version);
// Where the kernel profile's learnt range starts (the module's initial_range, else kernel_range).
Range initial_range(Knob k, std::optional<KernelVersion> version);

}  // namespace fragtune
