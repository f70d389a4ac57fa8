// The five knobs fragtune tunes, as one data table. Adding a knob means adding a row here (and its
// policy in controller.cpp), not a new code path through sensing, applying, persisting and D-Bus.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fragtune {

enum class Knob : uint8_t {
    min_free_kbytes,
    watermark_scale_factor,
    compaction_proactiveness,
    vfs_cache_pressure,
    swappiness,
};
inline constexpr std::size_t kKnobCount = 5;

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

inline constexpr std::array<TunableSpec, kKnobCount> kTunables{{
    {Knob::min_free_kbytes, "min_free_kbytes", "vm.min_free_kbytes", "/proc/sys/vm/min_free_kbytes",
     "KiB", 0, 2147483647, 0, 1048576, "",
     "reserve kept free for allocations that cannot wait for reclaim (atomic, interrupt context)"},
    {Knob::watermark_scale_factor, "watermark_scale_factor", "vm.watermark_scale_factor",
     "/proc/sys/vm/watermark_scale_factor", "1/10000 of memory", 1, 3000, 10, 300, "",
     "distance between the min, low and high watermarks: how early kswapd wakes and how long it "
     "works"},
    {Knob::compaction_proactiveness, "compaction_proactiveness", "vm.compaction_proactiveness",
     "/proc/sys/vm/compaction_proactiveness", "", 0, 100, 0, 90, "5.9",
     "how hard kcompactd compacts in the background to keep high-order blocks available"},
    {Knob::vfs_cache_pressure, "vfs_cache_pressure", "vm.vfs_cache_pressure",
     "/proc/sys/vm/vfs_cache_pressure", "", 0, 2147483647, 50, 500, "",
     "how eagerly dentry and inode caches (reclaimable slab) are reclaimed relative to page cache"},
    {Knob::swappiness, "swappiness", "vm.swappiness", "/proc/sys/vm/swappiness", "", 0, 200, 0, 200,
     "", "relative cost of swapping anonymous memory versus dropping page cache"},
}};

inline constexpr const TunableSpec& spec(Knob k) {
    return kTunables[index(k)];
}

// The knob with this table name ("min_free_kbytes") or sysctl name ("vm.min_free_kbytes"); nullopt for
// anything else. This is the only way a caller-supplied string becomes a knob.
std::optional<Knob> knob_from_name(std::string_view name);

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
// The range the running kernel accepts for the knob, where it moved between versions: swappiness max
// 100 before 5.8 and 200 since; watermark_scale_factor max 1000 before 5.19 and 3000 since. Unknown
// version: the narrower (older) range, which every kernel accepts.
Range kernel_range(Knob k, std::optional<KernelVersion> version);

}  // namespace fragtune
