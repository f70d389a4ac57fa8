// The kernel profile: what fragtune must know about the running kernel to use the kernel's own
// formulas on it, resolved once at start (Sampler) and carried in every Sample. Every formula that
// depends on the page size, the huge-page order, the kernel version or the range a knob accepts
// takes it from here, never from a constant: a 64 KiB-page arm64 machine, a 6.1 kernel with a
// Movable zone and a 6.18 kernel each get their own arithmetic.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fragtune/knobs/tunables.hpp"
#include "fragtune/sensing/kernel_fs.hpp"

namespace fragtune {

// The ranges of a kernel of unknown version: the version table's (kernel_range(k, nullopt)), with
// watermark_scale_factor starting at its widest (see KernelProfile::ranges).
std::array<Range, kKnobCount> initial_ranges(std::optional<KernelVersion> version);

struct KernelProfile {
    std::string release;  // /proc/sys/kernel/osrelease, trimmed ("" when unreadable)
    std::optional<KernelVersion> version;  // from `release`
    uint64_t page_size_bytes = 4096;
    std::string page_size_source = "default";  // "sysconf", "hpage_pmd_size", "default"
    // HPAGE_PMD_ORDER: PMD size / page size (9 with 4 KiB pages, 11 with 16 KiB, 13 with 64 KiB).
    // The order proactive compaction scores (COMPACTION_HPAGE_ORDER).
    int hpage_pmd_order = 9;

    // ---- which formula applies ------------------------------------------------------------------
    // __setup_per_zone_wmarks: before "mm/page_alloc: fix min_free_kbytes calculation regarding
    // ZONE_MOVABLE" (liuq, posted 2023-06-21, merged for v6.5) ZONE_MOVABLE counted in lowmem_pages
    // and got a proportional share of pages_min; since, it is capped like HighMem
    // (clamp(managed/1024, 32, 128)). Unknown version: the newer rule.
    bool movable_in_lowmem = false;
    // mm/compaction.c fragmentation_score_wmark: up to 6.15 low = max(100 - proactiveness, 5), high
    // = min(low + 10, 100); since "mm/compaction: reduce the difference between low and high
    // watermarks" (Clapinski, 2025, with the cap removed by its companion patch) low = 100 -
    // proactiveness, high = low + min(10, low / 2).
    bool score_wmark_leeway = false;

    // ---- which counter means what ---------------------------------------------------------------
    // pgscan_direct also counts khugepaged's reclaim before 6.6 (pgscan_khugepaged split it out)
    // and proactive reclaim (memory.reclaim) before 6.18 (pgscan_proactive).
    bool pgscan_direct_has_khugepaged = false;
    bool pgscan_direct_has_proactive = false;
    // 6.18: vm.vfs_cache_pressure_denom; the effective pressure is vfs_cache_pressure / denom (x100
    // = the default 100/100). Absent: the denominator is 100 (older kernels).
    bool has_vfs_cache_pressure_denom = false;

    // ---- the ranges the knobs accept ------------------------------------------------------------
    // Start from kernel_range() (the version table), except where the table is known to be wrong
    // for patched kernels (watermark_scale_factor: 3000 is accepted by e.g. Debian's 5.10.223),
    // where it starts at the widest range. A write the kernel refuses with EINVAL narrows the range
    // for the rest of the run: narrow_range().
    std::array<Range, kKnobCount> ranges = initial_ranges(std::nullopt);
    Range range(Knob k) const { return ranges[index(k)]; }

    // "6.1.0-28-amd64 (6.1), 4 KiB pages (sysconf), huge-page order 9; Movable counted in lowmem;
    // ..."
    std::string describe() const;
};

// The files the profile is resolved from besides osrelease (also recorded by --record, so that a
// replay resolves the same profile): the huge-page size tells the page size of a captured tree.
inline constexpr std::string_view kHpagePmdSizePath =
    "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size";
inline constexpr std::string_view kVfsCachePressureDenomPath =
    "/proc/sys/vm/vfs_cache_pressure_denom";

// Pure: the profile of a kernel from its release string and page size (0: 4096). `pmd_size_bytes`
// (/sys/kernel/mm/transparent_hugepage/hpage_pmd_size), when known, gives the huge-page order
// directly.
KernelProfile make_kernel_profile(std::string_view release, uint64_t page_size_bytes,
                                  std::optional<uint64_t> pmd_size_bytes = std::nullopt);

// Resolves the profile through `fs`. The page size is this process's (sysconf) when `fs` is rooted
// at
// "/", else the one a captured tree records: derived from hpage_pmd_size (PMD = page * page / 8),
// else 4096. vfs_cache_pressure_denom is recognised by its file as well as by version.
KernelProfile resolve_kernel_profile(const KernelFs& fs);

// The kernel refused `value` for `k` (EINVAL): the range shrinks below it, to the largest value
// known to be accepted (`accepted`: a value the kernel held, e.g. the one before the write) or the
// version table's maximum, whichever is larger but still below `value`. Returns true when the range
// changed.
bool narrow_range(KernelProfile& profile, Knob k, int64_t value, std::optional<int64_t> accepted);

// mm/compaction.c fragmentation_score_wmark(low=false) for this kernel: kcompactd starts on a node
// whose score exceeds this.
int fragmentation_score_wmark_high(const KernelProfile& profile, int64_t proactiveness);

// The smallest proactiveness (1..100) whose high watermark is at or below this score: from one
// more, kcompactd works on such a node (score > high watermark); 100 when none.
int64_t proactiveness_for_score(const KernelProfile& profile, int score);

}  // namespace fragtune
