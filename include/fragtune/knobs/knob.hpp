// The vocabulary of knobs: which ones exist (Knob), what the table says about each (TunableSpec),
// and the kernel versions and ranges they depend on. No policy here: each knob's module
// (knobs/<name>.hpp) holds its own, and knobs/registry.hpp lists the modules.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fragtune {

// In registry order (knobs/registry.hpp asserts that row i is Knob i).
enum class Knob : uint8_t {
    min_free_kbytes,
    watermark_scale_factor,
    compaction_proactiveness,
    vfs_cache_pressure,
    swappiness,
    watermark_boost_factor,
};
// The last enumerator: registry.hpp asserts that the table ends with it, so an enumerator added
// here without its module (or a module without its enumerator) fails the build.
inline constexpr Knob kLastKnob = Knob::watermark_boost_factor;

inline constexpr std::size_t index(Knob k) {
    return static_cast<std::size_t>(k);
}

struct TunableSpec {
    Knob knob;
    std::string_view name;       // "min_free_kbytes": config table, D-Bus and CLI name
    std::string_view sysctl;     // "vm.min_free_kbytes": sysctl.d and log name
    std::string_view proc_path;  // "/proc/sys/vm/min_free_kbytes"
    std::string_view unit;       // "KiB", "1/10000 of memory", "" ...
    // The widest range any supported kernel accepts; the running kernel's range may be narrower
    // (see kernel_range()).
    int64_t kernel_min;
    int64_t kernel_max;
    // Default bounds fragtune stays within unless configured otherwise. For min_free_kbytes the upper
    // bound is further capped at run time by the safety guard (a share of managed lowmem).
    int64_t default_min;
    int64_t default_max;
    std::string_view since_kernel;  // first kernel with the knob ("" = all supported kernels)
    std::string_view summary;       // what the knob does, one line, for explain/man
};

struct KernelVersion {
    int major = 0, minor = 0;
    friend auto operator<=>(const KernelVersion&, const KernelVersion&) = default;
};
// "6.18.44-fc-v669" -> {6, 18}; nullopt when unparsable.
std::optional<KernelVersion> parse_kernel_version(std::string_view osrelease);

struct Range {
    int64_t min = 0, max = 0;
    bool contains(int64_t v) const { return v >= min && v <= max; }
    int64_t clamp(int64_t v) const { return v < min ? min : (v > max ? max : v); }
};

}  // namespace fragtune
