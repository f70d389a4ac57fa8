// The kernel profile: page size, huge-page order, which formulas and ranges apply, resolved from
// real and captured kernels; and the formulas that take it (watermarks, caps, bounds, the
// compaction order, the score watermark, the kernel's own min_free_kbytes).
#include "fragtune/sensing/kernel_profile.hpp"

#include <gtest/gtest.h>

#include "fixture_text.hpp"
#include "fragtune/deciding/controller.hpp"
#include "fragtune/sensing/sample.hpp"

using namespace fragtune;
using fragtune::test::fixture;

namespace {

Sample sample_of(const std::string& tree) {
    const KernelFs fs(std::string(FRAGTUNE_FIXTURES_DIR) + "/" + tree);
    Sampler sampler(fs, SamplerOptions{});
    auto s = sampler.take(1'000'000);
    EXPECT_TRUE(s.ok()) << (s ? "" : s.error().describe());
    return s ? *s : Sample{};
}

}  // namespace

TEST(KernelProfile, PageSizeGivesTheHugePageOrder) {
    EXPECT_EQ(make_kernel_profile("6.1.0", 4096).hpage_pmd_order, 9);
    EXPECT_EQ(make_kernel_profile("6.1.0", 16384).hpage_pmd_order, 11);
    EXPECT_EQ(make_kernel_profile("6.8.0", 65536).hpage_pmd_order, 13);
    // hpage_pmd_size wins when known; a nonsense page size falls back to 4 KiB.
    EXPECT_EQ(make_kernel_profile("6.8.0", 65536, 536870912).hpage_pmd_order, 13);
    EXPECT_EQ(make_kernel_profile("6.8.0", 3000).page_size_bytes, 4096u);
}

TEST(KernelProfile, VersionSelectsFormulasAndCounterMeanings) {
    auto p510 = make_kernel_profile("5.10.0-46-amd64", 4096);
    EXPECT_TRUE(p510.movable_in_lowmem);
    EXPECT_TRUE(p510.pgscan_direct_has_khugepaged);
    EXPECT_FALSE(p510.score_wmark_leeway);
    auto p61 = make_kernel_profile("6.1.0-57-amd64", 4096);
    EXPECT_TRUE(p61.movable_in_lowmem);
    auto p612 = make_kernel_profile("6.12.117+deb13-amd64", 4096);
    EXPECT_FALSE(p612.movable_in_lowmem);
    EXPECT_FALSE(p612.pgscan_direct_has_khugepaged);
    EXPECT_TRUE(p612.pgscan_direct_has_proactive);
    EXPECT_FALSE(p612.has_vfs_cache_pressure_denom);
    auto p618 = make_kernel_profile("6.18.44-fc-v669", 4096);
    EXPECT_FALSE(p618.pgscan_direct_has_proactive);
    EXPECT_TRUE(p618.has_vfs_cache_pressure_denom);
    EXPECT_TRUE(p618.score_wmark_leeway);
    // Unknown kernel: the current rules.
    EXPECT_FALSE(make_kernel_profile("", 4096).movable_in_lowmem);
}

TEST(KernelProfile, ResolvedFromCapturedTrees) {
    auto p64 =
        resolve_kernel_profile(KernelFs(std::string(FRAGTUNE_FIXTURES_DIR) + "/arm64-64k-6.8"));
    EXPECT_EQ(p64.page_size_bytes, 65536u);
    EXPECT_EQ(p64.page_size_source, "hpage_pmd_size");
    EXPECT_EQ(p64.hpage_pmd_order, 13);
    EXPECT_EQ(p64.release, "6.8.0-31-generic-64k");
    auto p16 =
        resolve_kernel_profile(KernelFs(std::string(FRAGTUNE_FIXTURES_DIR) + "/arm64-16k-6.1"));
    EXPECT_EQ(p16.page_size_bytes, 16384u);
    EXPECT_EQ(p16.hpage_pmd_order, 11);
    EXPECT_TRUE(p16.movable_in_lowmem);
    // A tree that records no page size: 4 KiB.
    auto p4 =
        resolve_kernel_profile(KernelFs(std::string(FRAGTUNE_FIXTURES_DIR) + "/live-6.18-vm"));
    EXPECT_EQ(p4.page_size_bytes, 4096u);
    EXPECT_EQ(p4.page_size_source, "default");
}

TEST(KernelProfile, LargePagesScaleTheCapAndTheCompactionOrder) {
    // Before the profile, the 64 KiB machine's cap came out 16x too small (4 KiB assumed) and the
    // compaction score was computed at order 9 instead of 13.
    Sample s = sample_of("arm64-64k-6.8");
    uint64_t lowmem_pages = 0;
    for (const auto& z : s.zoneinfo.zones)
        if (z.zone == "DMA" || z.zone == "DMA32" || z.zone == "Normal") lowmem_pages += z.managed;
    SafetyConfig safety;
    const auto cap = min_free_cap_kib(s.zoneinfo, safety, s.profile);
    EXPECT_EQ(cap, static_cast<int64_t>(static_cast<double>(lowmem_pages * 64) *
                                        safety.max_min_free_lowmem_percent / 100.0));
    EXPECT_NEAR(cap, 16 * min_free_cap_kib(s.zoneinfo, safety), 16);  // 16x the 4 KiB figure
    // The fixture's own min_free_kbytes (khugepaged's, 3 GiB) is under the cap, so bounds allow it.
    Config c;
    KnobState ks;
    ks.baseline = *s.knob(Knob::min_free_kbytes);
    EXPECT_GE(effective_bounds(Knob::min_free_kbytes, ks, c, s).max, ks.baseline);
    EXPECT_EQ(s.signals.compaction_order, 13);

    Sample s16 = sample_of("arm64-16k-6.1");
    EXPECT_EQ(s16.signals.compaction_order, 11);
}

TEST(KernelProfile, WatermarksUseThePageSize) {
    Sample s = sample_of("arm64-64k-6.8");
    // 1 GiB of min_free_kbytes is 16384 pages of 64 KiB spread over lowmem, not 262144.
    auto wm = predict_watermarks(s.zoneinfo, 1 << 20, 10, s.profile);
    uint64_t mins = 0;
    for (size_t i = 0; i < wm.size(); ++i)
        if (s.zoneinfo.zones[i].managed && s.zoneinfo.zones[i].zone != "Movable") mins += wm[i].min;
    EXPECT_LE(mins, 16384u);
    EXPECT_GE(mins, 16384u - 4);  // per-zone truncation
}

TEST(KernelProfile, RefusedWriteNarrowsTheRange) {
    auto p = make_kernel_profile("5.10.0", 4096);
    EXPECT_EQ(p.range(Knob::watermark_scale_factor).max, 3000);
    // Refused 1500 with nothing larger than 1000 accepted: the table's 1000.
    EXPECT_TRUE(narrow_range(p, Knob::watermark_scale_factor, 1500, 200));
    EXPECT_EQ(p.range(Knob::watermark_scale_factor).max, 1000);
    EXPECT_FALSE(narrow_range(p, Knob::watermark_scale_factor, 1500, 200));  // already below
    // A refusal below the table maximum narrows to what was accepted (or value - 1).
    EXPECT_TRUE(narrow_range(p, Knob::watermark_scale_factor, 800, 300));
    EXPECT_EQ(p.range(Knob::watermark_scale_factor).max, 799);
    EXPECT_FALSE(narrow_range(p, Knob::watermark_scale_factor, 0, 300));  // below min: not a range
}

TEST(KernelProfile, ScoreWatermarkFormulaPerKernel) {
    auto old = make_kernel_profile("6.12.0", 4096), cur = make_kernel_profile("6.18.0", 4096);
    EXPECT_EQ(fragmentation_score_wmark_high(old, 20), 90);
    EXPECT_EQ(fragmentation_score_wmark_high(cur, 20), 90);
    // High proactiveness: the old formula caps low at 5 (high 15); the new has no cap and a leeway
    // of low / 2.
    EXPECT_EQ(fragmentation_score_wmark_high(old, 98), 15);
    EXPECT_EQ(fragmentation_score_wmark_high(cur, 98), 3);
    EXPECT_EQ(fragmentation_score_wmark_high(cur, 100), 0);
    EXPECT_EQ(proactiveness_for_score(old, 50), 60);
    EXPECT_EQ(proactiveness_for_score(old, 10), 100);  // never below 15 with the cap
    EXPECT_EQ(proactiveness_for_score(cur, 10), 93);   // low 7 + leeway 3 = 10
}

TEST(KernelProfile, KernelsOwnMinFreeKbytes) {
    // The live VM: 3 zones up to Normal, 1136 Ki pages managed; THP recommendation 11 pageblocks of
    // 2 MiB per zone = 67584 KiB, which is what that machine has.
    Sample s = sample_of("live-6.18-vm");
    auto k = kernel_min_free_kbytes(s.zoneinfo, s.profile, 10);
    EXPECT_EQ(k.thp, 67584);
    EXPECT_EQ(k.with_thp(), *s.knob(Knob::min_free_kbytes));
    EXPECT_GT(k.sqrt_rule, 128);
    EXPECT_LT(k.sqrt_rule, 67584);
}

TEST(KernelProfile, MovableZoneOn61FollowsTheOldRule) {
    // movable-6.1: captured from Debian's 6.1.0-57 under qemu with movablecore=128M. Up to 6.4
    // ZONE_MOVABLE counts in lowmem_pages and gets its proportional min; the model with that
    // profile reproduces every zone's watermarks exactly, the >= 6.5 rule does not (and did not,
    // before the profile, when fragtune modelled only the newer rule).
    Sample s = sample_of("movable-6.1");
    ASSERT_TRUE(s.profile.movable_in_lowmem);
    const int64_t mfk = *s.knob(Knob::min_free_kbytes), wsf = *s.knob(Knob::watermark_scale_factor);
    auto exact = [&](const KernelProfile& p) {
        auto wm = predict_watermarks(s.zoneinfo, mfk, wsf, p);
        bool movable = false;
        for (size_t i = 0; i < wm.size(); ++i) {
            const auto& z = s.zoneinfo.zones[i];
            if (!z.managed) continue;
            movable |= z.zone == "Movable";
            const uint64_t b = z.boost.value_or(0);
            if (z.min - b != wm[i].min || z.low - b != wm[i].low || z.high - b != wm[i].high)
                return false;
        }
        EXPECT_TRUE(movable);
        return true;
    };
    EXPECT_TRUE(exact(s.profile));
    KernelProfile newer = s.profile;
    newer.movable_in_lowmem = false;
    EXPECT_FALSE(exact(newer));
}
