// The kernel profile: resolved once from the running kernel (or a captured tree), pure otherwise.
#include "fragtune/sensing/kernel_profile.hpp"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <iterator>

#include <fmt/format.h>

#include "fragtune/sensing/parsers.hpp"
#include "fragtune/util/text.hpp"

namespace fragtune {

namespace {

constexpr std::string_view kOsrelease = "/proc/sys/kernel/osrelease";
constexpr std::string_view kPmdSize = kHpagePmdSizePath;
constexpr std::string_view kVfsDenom = kVfsCachePressureDenomPath;

bool before(const std::optional<KernelVersion>& v, KernelVersion than) {
    return v && *v < than;
}
bool since(const std::optional<KernelVersion>& v, KernelVersion than) {
    return v && *v >= than;
}

int log2_exact(uint64_t v) {
    return v != 0 && std::has_single_bit(v) ? std::countr_zero(v) : -1;
}

}  // namespace

KernelProfile make_kernel_profile(std::string_view release, uint64_t page_size_bytes,
                                  std::optional<uint64_t> pmd_size_bytes) {
    KernelProfile p;
    p.release = std::string(trim(release));
    p.version = parse_kernel_version(p.release);
    if (page_size_bytes != 0 && log2_exact(page_size_bytes) >= 10)
        p.page_size_bytes = page_size_bytes;
    const int page_shift = log2_exact(p.page_size_bytes);
    // A PMD maps page_size / 8 page-table entries of one page each (8-byte entries on every 64-bit
    // architecture fragtune runs on): HPAGE_PMD_ORDER = PAGE_SHIFT - 3.
    p.hpage_pmd_order = page_shift - 3;
    if (pmd_size_bytes) {
        const int pmd_shift = log2_exact(*pmd_size_bytes);
        if (pmd_shift > page_shift) p.hpage_pmd_order = pmd_shift - page_shift;
    }

    p.movable_in_lowmem = before(p.version, {6, 5});
    p.score_wmark_leeway = since(p.version, {6, 16});
    p.pgscan_direct_has_khugepaged = before(p.version, {6, 6});
    p.pgscan_direct_has_proactive = before(p.version, {6, 18});
    p.has_vfs_cache_pressure_denom = since(p.version, {6, 18});

    p.ranges = initial_ranges(p.version);
    return p;
}

std::array<Range, kKnobCount> initial_ranges(std::optional<KernelVersion> version) {
    std::array<Range, kKnobCount> r{};
    // Each knob's module says where its range starts (watermark_scale_factor: at its widest).
    for (const auto& t : kTunables) r[index(t.knob)] = initial_range(t.knob, version);
    return r;
}

KernelProfile resolve_kernel_profile(const KernelFs& fs) {
    std::string release;
    if (auto t = fs.read(kOsrelease)) release = *t;
    std::optional<uint64_t> pmd;
    if (auto t = fs.read(kPmdSize)) {
        if (auto v = parse_sysctl_int(*t, kPmdSize); v && *v > 0) pmd = static_cast<uint64_t>(*v);
    }
    uint64_t page = 0;
    std::string source = "default";
    if (fs.root() == "/") {
        const long sz = ::sysconf(_SC_PAGESIZE);
        if (sz > 0) {
            page = static_cast<uint64_t>(sz);
            source = "sysconf";
        }
    } else if (pmd) {
        // PMD size = page * (page / 8): page = sqrt(8 * PMD), exact for powers of two.
        const int s = log2_exact(*pmd);
        if (s > 0 && (s + 3) % 2 == 0) {
            page = uint64_t{1} << ((s + 3) / 2);
            source = "hpage_pmd_size";
        }
    }
    KernelProfile p = make_kernel_profile(release, page, pmd);
    if (page != 0) p.page_size_source = source;
    if (fs.exists(kVfsDenom)) p.has_vfs_cache_pressure_denom = true;
    return p;
}

bool narrow_range(KernelProfile& profile, Knob k, int64_t value, std::optional<int64_t> accepted) {
    Range& r = profile.ranges[index(k)];
    if (value < r.min) return false;  // below the minimum: not a range question
    const int64_t table_max = kernel_range(k, profile.version).max;
    int64_t new_max = std::min(table_max, value - 1);
    if (accepted && *accepted < value) new_max = std::max(new_max, *accepted);
    if (new_max < r.min) new_max = r.min;
    if (new_max >= r.max) return false;
    r.max = new_max;
    return true;
}

int fragmentation_score_wmark_high(const KernelProfile& profile, int64_t proactiveness) {
    const int p = static_cast<int>(std::clamp<int64_t>(proactiveness, 0, 100));
    if (profile.score_wmark_leeway) {
        const int low = 100 - p;
        return std::min(low + std::min(10, low / 2), 100);
    }
    const int low = std::max(100 - p, 5);
    return std::min(low + 10, 100);
}

int64_t proactiveness_for_score(const KernelProfile& profile, int score) {
    for (int64_t p = 1; p <= 100; ++p)
        if (score >= fragmentation_score_wmark_high(profile, p)) return p;
    return 100;
}

std::string KernelProfile::describe() const {
    std::string out;
    auto it = std::back_inserter(out);
    fmt::format_to(it, "{}", release.empty() ? "unknown kernel" : release);
    if (version) fmt::format_to(it, " ({}.{})", version->major, version->minor);
    fmt::format_to(it, ", {} KiB pages ({}), huge-page order {}", page_size_bytes / 1024,
                   page_size_source, hpage_pmd_order);
    fmt::format_to(it, "; Movable {} lowmem", movable_in_lowmem ? "counted in" : "excluded from");
    fmt::format_to(it, "; pgscan_direct {}",
                   pgscan_direct_has_khugepaged  ? "includes khugepaged and proactive reclaim"
                   : pgscan_direct_has_proactive ? "includes proactive reclaim"
                                                 : "is direct reclaim only");
    if (has_vfs_cache_pressure_denom) out += "; vfs_cache_pressure_denom";
    fmt::format_to(it, "; watermark_scale_factor {}..{}", range(Knob::watermark_scale_factor).min,
                   range(Knob::watermark_scale_factor).max);
    return out;
}

}  // namespace fragtune
