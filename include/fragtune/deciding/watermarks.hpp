// The kernel's watermark model: what mm/page_alloc.c computes from min_free_kbytes and
// watermark_scale_factor (__setup_per_zone_wmarks, init_per_zone_wmark_min), from zoneinfo and the
// kernel profile. Used by min_free_kbytes' safety guard, by ownership (telling the kernel's own
// recalculation from an administrator's write) and by persistence (never persist an unsafe value).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fragtune/configuration/config.hpp"
#include "fragtune/sensing/kernel_profile.hpp"
#include "fragtune/sensing/parsers.hpp"

namespace fragtune {

// The kernel's default watermark_scale_factor, assumed where the knob cannot be read.
inline constexpr int64_t kDefaultWatermarkScaleFactor = 10;

// Zones the kernel leaves out of lowmem_pages in __setup_per_zone_wmarks (Device has no managed
// pages anyway).
bool is_lowmem_zone(std::string_view zone);
// Zones a GFP_USER allocation may use (gfp_zone(GFP_USER) = ZONE_NORMAL and below).
bool is_user_zone(std::string_view zone);
// KiB per page of `page_size` bytes (at least 1).
uint64_t page_kib(uint64_t page_size);
// Managed pages of the lowmem zones / of all zones.
uint64_t lowmem_managed_pages(const ZoneInfo& zones);
uint64_t managed_pages_total(const ZoneInfo& zones);

// ---- safety guard helpers (also used by persistence: never persist an unsafe value) ---------------
struct ZoneWatermarks {
    int node = 0;
    std::string zone;
    uint64_t min = 0, low = 0, high = 0;  // pages
};
// mm/page_alloc.c __setup_per_zone_wmarks() for the given knob values, from the zones' managed
// pages, with this kernel's page size and its rule for ZONE_MOVABLE
// (KernelProfile::movable_in_lowmem). The result is unboosted (_watermark[]); zoneinfo prints these
// plus watermark_boost.
std::vector<ZoneWatermarks> predict_watermarks(const ZoneInfo& zones, int64_t min_free_kbytes,
                                               int64_t watermark_scale_factor,
                                               const KernelProfile& profile);
// The same for a 4 KiB-page kernel with the current (>= 6.5) Movable rule.
std::vector<ZoneWatermarks> predict_watermarks(const ZoneInfo& zones, int64_t min_free_kbytes,
                                               int64_t watermark_scale_factor);
// The largest min_free_kbytes the safety guard allows on this machine: the configured share of
// managed lowmem (all zones but Movable/HighMem/Device), in KiB of this kernel's pages.
int64_t min_free_cap_kib(const ZoneInfo& zones, const SafetyConfig& safety,
                         const KernelProfile& profile);
int64_t min_free_cap_kib(const ZoneInfo& zones, const SafetyConfig& safety);  // 4 KiB pages

// What the kernel itself sets min_free_kbytes to when it recalculates (memory online/offline,
// mm/page_alloc.c init_per_zone_wmark_min):
//  1. calculate_min_free_kbytes(): int_sqrt(lowmem_kbytes * 16) clamped to [128, 262144] (65536
//     before 5.7), lowmem_kbytes being nr_free_buffer_pages() (managed - high watermark over the
//     zones up to Normal) in KiB with the watermarks in force then (`high_pages_delta` shifts
//     their sum); applied only when larger than what user space last wrote (`user_min_kib`),
//     else the value stays what it was (`current_kib`).
//  2. The watermarks are recomputed for that value, and khugepaged's
//     set_recommended_min_free_kbytes() (THP enabled) raises it to 11 pageblocks per zone up to
//     Normal, at most 5% of nr_free_buffer_pages() under the new watermarks. high_wmark_pages()
//     includes watermark_boost, which may have grown by then (up to watermark_boost_factor, 150%
//     of high by default): `thp_boosted` is the recommendation under the largest boost, the lower
//     end of what the kernel can set (measured on 6.1 under qemu: 0.9-1.5% below `thp` after a
//     DIMM was onlined).
struct KernelMinFree {
    int64_t sqrt_rule = 0;    // step 1's formula
    int64_t no_thp = 0;       // after step 1 (sqrt_rule, or current_kib when held by user_min_kib)
    int64_t thp = 0;          // khugepaged's recommendation, no boost
    int64_t thp_boosted = 0;  // ... with the largest boost
    int64_t with_thp() const { return std::max(no_thp, thp); }
    // Is `v` what the kernel may have set (within 1%)?
    bool matches(int64_t v) const;
};
KernelMinFree kernel_min_free_kbytes(const ZoneInfo& zones, const KernelProfile& profile,
                                     int64_t watermark_scale_factor,
                                     std::optional<int64_t> user_min_kib = std::nullopt,
                                     int64_t current_kib = 0, int64_t high_pages_delta = 0);
// Sum of the high watermarks of the zones up to Normal (what nr_free_buffer_pages subtracts).
uint64_t user_zone_high_pages(const ZoneInfo& zones);

}  // namespace fragtune
