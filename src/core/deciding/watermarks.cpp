#include "fragtune/deciding/watermarks.hpp"

#include <cmath>
#include <cstdlib>

namespace fragtune {

namespace {
__extension__ using u128 = unsigned __int128;
}  // namespace

bool is_lowmem_zone(std::string_view zone) {
    return zone != "Movable" && zone != "HighMem" && zone != "Device";
}
bool is_user_zone(std::string_view zone) {
    return zone == "DMA" || zone == "DMA32" || zone == "Normal";
}

uint64_t page_kib(uint64_t page_size) {
    return std::max<uint64_t>(page_size / 1024, 1);
}

uint64_t lowmem_managed_pages(const ZoneInfo& zones) {
    uint64_t sum = 0;
    for (const auto& z : zones.zones)
        if (is_lowmem_zone(z.zone)) sum += z.managed;
    return sum;
}

uint64_t managed_pages_total(const ZoneInfo& zones) {
    uint64_t sum = 0;
    for (const auto& z : zones.zones) sum += z.managed;
    return sum;
}

std::vector<ZoneWatermarks> predict_watermarks(const ZoneInfo& zones, int64_t min_free_kbytes,
                                               int64_t watermark_scale_factor,
                                               const KernelProfile& profile) {
    const uint64_t pages_min = static_cast<uint64_t>(std::max<int64_t>(min_free_kbytes, 0)) /
                               page_kib(profile.page_size_bytes);
    const uint64_t wsf = static_cast<uint64_t>(std::max<int64_t>(watermark_scale_factor, 0));
    // Up to 6.4 ZONE_MOVABLE counts in lowmem_pages and gets a proportional min like any lowmem
    // zone; since "mm/page_alloc: fix min_free_kbytes calculation regarding ZONE_MOVABLE" (v6.5) it
    // is left out and capped like HighMem.
    auto capped = [&](std::string_view zone) {
        return zone == "HighMem" || (zone == "Movable" && !profile.movable_in_lowmem);
    };
    uint64_t lowmem_pages = 0;
    for (const auto& z : zones.zones)
        if (!capped(z.zone) && z.zone != "Device") lowmem_pages += z.managed;

    std::vector<ZoneWatermarks> out;
    out.reserve(zones.zones.size());
    for (const auto& z : zones.zones) {
        // tmp = pages_min * managed / lowmem_pages, the zone's proportional share (also for capped
        // zones, where it only feeds the gap below).
        uint64_t share = lowmem_pages == 0
                             ? 0
                             : static_cast<uint64_t>(u128{pages_min} * z.managed / lowmem_pages);
        uint64_t min = share;
        if (capped(z.zone)) min = std::clamp<uint64_t>(z.managed / 1024, 32, 128);
        // mult_frac(managed, watermark_scale_factor, 10000)
        uint64_t scaled = (z.managed / 10000) * wsf + (z.managed % 10000) * wsf / 10000;
        uint64_t gap = std::max(share >> 2, scaled);
        out.push_back(ZoneWatermarks{z.node, z.zone, min, min + gap, min + 2 * gap});
    }
    return out;
}

std::vector<ZoneWatermarks> predict_watermarks(const ZoneInfo& zones, int64_t min_free_kbytes,
                                               int64_t watermark_scale_factor) {
    return predict_watermarks(zones, min_free_kbytes, watermark_scale_factor, KernelProfile{});
}

int64_t min_free_cap_kib(const ZoneInfo& zones, const SafetyConfig& safety,
                         const KernelProfile& profile) {
    double kib =
        static_cast<double>(lowmem_managed_pages(zones) * page_kib(profile.page_size_bytes));
    return static_cast<int64_t>(kib * safety.max_min_free_lowmem_percent / 100.0);
}

int64_t min_free_cap_kib(const ZoneInfo& zones, const SafetyConfig& safety) {
    return min_free_cap_kib(zones, safety, KernelProfile{});
}

uint64_t user_zone_high_pages(const ZoneInfo& zones) {
    uint64_t sum = 0;
    for (const auto& z : zones.zones)
        if (is_user_zone(z.zone)) sum += z.high;
    return sum;
}

KernelMinFree kernel_min_free_kbytes(const ZoneInfo& zones, const KernelProfile& profile,
                                     int64_t watermark_scale_factor,
                                     std::optional<int64_t> user_min_kib, int64_t current_kib,
                                     int64_t high_pages_delta) {
    const uint64_t pk = page_kib(profile.page_size_bytes);
    // nr_free_buffer_pages(): managed - high over the zones GFP_USER may use (DMA, DMA32, Normal).
    auto free_buffer = [&](const std::vector<uint64_t>& highs, int64_t delta) {
        int64_t sum = 0, managed = 0;
        for (size_t i = 0; i < zones.zones.size(); ++i) {
            const auto& z = zones.zones[i];
            if (!is_user_zone(z.zone) || z.managed == 0) continue;
            managed += static_cast<int64_t>(z.managed);
            if (z.managed > highs[i]) sum += static_cast<int64_t>(z.managed - highs[i]);
        }
        return std::clamp<int64_t>(sum - delta, 0, std::max<int64_t>(managed, 0));
    };
    std::vector<uint64_t> highs;
    int nr_zones = 0;
    for (const auto& z : zones.zones) {
        highs.push_back(z.high);
        if (is_user_zone(z.zone) && z.managed) ++nr_zones;
    }
    const auto isqrt = [](uint64_t v) {
        uint64_t x = static_cast<uint64_t>(std::sqrt(static_cast<double>(v)));
        while (x * x > v) --x;
        while ((x + 1) * (x + 1) <= v) ++x;
        return x;
    };
    KernelMinFree r;
    const uint64_t lowmem_kib = static_cast<uint64_t>(free_buffer(highs, high_pages_delta)) * pk;
    const int64_t upper =
        profile.version && *profile.version < KernelVersion{5, 7} ? 65536 : 262144;
    r.sqrt_rule = std::clamp<int64_t>(static_cast<int64_t>(isqrt(lowmem_kib * 16)), 128, upper);
    // "min_free_kbytes is not updated to %d because user defined value %d is preferred": the value
    // stays what it was.
    r.no_thp = user_min_kib && *user_min_kib >= r.sqrt_rule
                   ? (current_kib > 0 ? current_kib : *user_min_kib)
                   : r.sqrt_rule;
    // The watermarks setup_per_zone_wmarks() gives that value, then khugepaged's recommendation:
    // 2 pageblocks per zone plus MIGRATE_PCPTYPES^2 (9) more, at most 5% of the buffer pages.
    const auto wm = predict_watermarks(zones, r.no_thp, watermark_scale_factor, profile);
    std::vector<uint64_t> new_highs;
    for (const auto& w : wm) new_highs.push_back(w.high);
    const uint64_t pageblock = uint64_t{1} << profile.hpage_pmd_order;
    const uint64_t want = pageblock * static_cast<uint64_t>(nr_zones) * (2 + 9);
    r.thp = static_cast<int64_t>(
        std::min(want, static_cast<uint64_t>(free_buffer(new_highs, 0)) / 20) * pk);
    // watermark_boost_factor's default 15000: a boost of up to 1.5 x high on top of high.
    for (auto& h : new_highs) h += h * 3 / 2;
    r.thp_boosted = static_cast<int64_t>(
        std::min(want, static_cast<uint64_t>(free_buffer(new_highs, 0)) / 20) * pk);
    return r;
}

bool KernelMinFree::matches(int64_t v) const {
    auto near = [&](int64_t x) { return std::llabs(v - x) <= std::max<int64_t>(2, x / 100); };
    if (near(no_thp) || near(with_thp())) return true;
    // khugepaged's value with some boost in force: between the boosted and unboosted figures.
    const int64_t lo = std::max(no_thp, thp_boosted), hi = with_thp();
    return thp > no_thp && v >= lo - lo / 100 && v <= hi;
}

}  // namespace fragtune
