// Unit tests of the pure anticipation module (anticipation.hpp): the least-squares trend on uneven
// intervals, the learnt floor's hold and decay, the gap -> watermark_scale_factor inverse of
// predict_watermarks, episodes, and the four proposals.
#include "fragtune/deciding/anticipation.hpp"

#include <gtest/gtest.h>

#include "fragtune/deciding/controller.hpp"
#include "kernel_model.hpp"

using namespace fragtune;

namespace {

constexpr uint64_t kSec = 1'000'000;

// A sample of the model's 16 GiB machine with `free` pages free; no counters moved.
Sample quiet_sample(uint64_t mono_usec, uint64_t free) {
    model::Kernel k;
    Sample s = k.tick();
    s.mono_usec = mono_usec;
    for (auto& [name, c] : s.signals.counters) c = CounterDelta{};
    s.signals.psi_some_percent = 0;
    s.signals.atomic_failures_by_order.clear();
    s.signals.failures_by_order.clear();
    s.signals.free_pages = free;
    s.signals.zones_at_or_below_min = 0;
    s.signals.zones_below_low = free < s.signals.low_pages ? 1 : 0;
    return s;
}

void set_delta(Sample& s, const char* name, uint64_t d) {
    s.signals.counters[name] = CounterDelta{d, static_cast<double>(d) / 2.0, false};
}

}  // namespace

TEST(Anticipation, LeastSquaresOnUnevenIntervalsIsExactForALine) {
    // value = 1000 - 50/s, sampled at 0, 0.25, 1, 3.5 and 4 s.
    std::vector<TrendPoint> pts;
    for (double t : {0.0, 0.25, 1.0, 3.5, 4.0})
        pts.push_back({static_cast<uint64_t>((10 + t) * 1e6), 1000 - 50 * t});
    auto tr = fit_trend(pts);
    ASSERT_TRUE(tr);
    EXPECT_NEAR(tr->slope_per_sec, -50, 1e-9);
    EXPECT_NEAR(tr->at_last, 800, 1e-9);
    EXPECT_EQ(tr->points, 5u);
    EXPECT_DOUBLE_EQ(tr->span_sec, 4.0);
    auto t = seconds_until_below(*tr, 300);
    ASSERT_TRUE(t);
    EXPECT_NEAR(*t, 10, 1e-9);
    EXPECT_FALSE(seconds_until_below(*tr, 900)) << "already below";
}

TEST(Anticipation, LeastSquaresAveragesNoiseAndRefusesDegenerateInput) {
    EXPECT_FALSE(fit_trend({}));
    EXPECT_FALSE(fit_trend({{kSec, 5}}));
    EXPECT_FALSE(fit_trend({{kSec, 5}, {kSec, 7}})) << "one time only";
    // Alternating +-10 around a rising line: the fit finds the line's slope (+20/s) closely.
    std::vector<TrendPoint> pts;
    for (int i = 0; i < 20; ++i)
        pts.push_back({static_cast<uint64_t>(i) * kSec / 2, 20.0 * i / 2 + (i % 2 ? 10 : -10)});
    auto tr = fit_trend(pts);
    ASSERT_TRUE(tr);
    EXPECT_NEAR(tr->slope_per_sec, 20, 1.5);
    EXPECT_FALSE(seconds_until_below(*tr, 0)) << "rising: never below";
}

TEST(Anticipation, LearnedFloorHoldsThenDecaysInStepsToTheBaseline) {
    LearnedValue v{100, 1000 * kSec, "x"};
    const uint64_t hold = 600 * kSec, interval = 30 * kSec;
    EXPECT_EQ(learned_floor(v, 1000 * kSec, hold, 10, interval, 10), 100);
    EXPECT_EQ(learned_floor(v, 1599 * kSec, hold, 10, interval, 10), 100);
    EXPECT_EQ(learned_floor(v, 1600 * kSec, hold, 10, interval, 10), 90);
    EXPECT_EQ(learned_floor(v, 1629 * kSec, hold, 10, interval, 10), 90);
    EXPECT_EQ(learned_floor(v, 1630 * kSec, hold, 10, interval, 10), 80);
    EXPECT_EQ(learned_floor(v, 1600 * kSec + 7 * interval, hold, 10, interval, 10), 20);
    EXPECT_FALSE(learned_floor(v, 1600 * kSec + 8 * interval, hold, 10, interval, 10))
        << "decayed to the baseline: nothing left";
    EXPECT_FALSE(learned_floor(v, 1000 * kSec, 0, 10, interval, 10)) << "hold 0: learning off";
    EXPECT_FALSE(learned_floor(LearnedValue{}, 1000 * kSec, hold, 10, interval, 10));
    EXPECT_FALSE(learned_floor(v, 1000 * kSec, hold, 10, interval, 100)) << "not above baseline";
}

TEST(Anticipation, WsfForGapInvertsTheWatermarkModel) {
    Sample s = quiet_sample(10 * kSec, 262144);
    auto gap = [&](int64_t wsf) {
        double g = 0;
        for (const auto& z : predict_watermarks(s.zoneinfo, 67584, wsf, s.profile))
            g += static_cast<double>(z.low - z.min);
        return g;
    };
    for (int64_t want : {20, 60, 150, 299}) {
        const double pages = gap(want);
        EXPECT_EQ(wsf_for_gap(s, 67584, pages), want) << want;
        EXPECT_EQ(wsf_for_gap(s, 67584, pages + 1), want + 1) << want;
    }
    EXPECT_EQ(wsf_for_gap(s, 67584, 0), 1);
    EXPECT_EQ(wsf_for_gap(s, 67584, 1e12), s.profile.range(Knob::watermark_scale_factor).max);
}

TEST(Anticipation, DirectReclaimEpisodeLearnsTheGapThatCoversIt) {
    Config c;
    AnticipationState a;
    Sample s0 = quiet_sample(10 * kSec, 200000);
    a = update_anticipation(s0, a, c);
    EXPECT_FALSE(a.episode.open);
    EXPECT_EQ(a.watermark.value, 0);

    // 2 s later: free at min, 40000 pages reclaimed directly, kswapd 60000 pages.
    Sample s1 = quiet_sample(12 * kSec, s0.signals.min_pages);
    set_delta(s1, "allocstall", 30);
    set_delta(s1, "pgscan_direct", 60000);
    set_delta(s1, "pgsteal_direct", 40000);
    set_delta(s1, "pgsteal_kswapd", 60000);
    s1.signals.zones_below_low = 3;
    a = update_anticipation(s1, a, c);
    ASSERT_TRUE(a.episode.open);
    EXPECT_EQ(a.episode.cause, "direct-reclaim");
    EXPECT_DOUBLE_EQ(a.kswapd_pages_per_sec, 30000);
    const double band = static_cast<double>(s1.signals.low_pages - s1.signals.min_pages);
    // need: the larger of the band + direct reclaim, and the fall below high + what was reclaimed
    // less kswapd's best rate (this tick's 30000/s): (high - min) + 40000 + 60000 - 60000.
    const double uncovered =
        static_cast<double>(s1.signals.high_pages - s1.signals.min_pages) + 40000;
    EXPECT_DOUBLE_EQ(a.episode.need_pages, std::max(band + 40000, uncovered));
    EXPECT_EQ(
        a.watermark.value,
        wsf_for_gap(s1, 67584, c.watermark.learned_margin * std::max(band + 40000, uncovered)));
    EXPECT_EQ(a.watermark.at_usec, 12 * kSec);
    EXPECT_NE(a.watermark.why.find("direct-reclaim episode"), std::string::npos) << a.watermark.why;

    auto p = anticipate_watermark(s1, a, c, 10, 10);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->rule, "learned-headroom");
    EXPECT_EQ(p->target, a.watermark.value);
    EXPECT_NE(p->reason.find("held 6.0 h more"), std::string::npos) << p->reason;
    EXPECT_NE(p->reason.find("high watermark"), std::string::npos) << "the cost is stated";
    EXPECT_FALSE(anticipate_watermark(s1, a, c, a.watermark.value, 10)) << "already in place";

    // A calm tick closes the episode; the learnt value stays and is the decay floor.
    Sample s2 = quiet_sample(14 * kSec, 200000);
    a = update_anticipation(s2, a, c);
    EXPECT_FALSE(a.episode.open);
    EXPECT_EQ(anticipation_floor(Knob::watermark_scale_factor, a, c, 14 * kSec, 10),
              a.watermark.value);
    // Learning off: nothing learnt.
    Config off;
    off.watermark.learned_hold_usec = 0;
    AnticipationState b = update_anticipation(s1, update_anticipation(s0, {}, off), off);
    EXPECT_EQ(b.watermark.value, 0);
}

TEST(Anticipation, AtomicFailuresLearnAReserveAndItsHoldIsRefreshed) {
    Config c;
    Sample s0 = quiet_sample(10 * kSec, 200000);
    AnticipationState a = update_anticipation(s0, {}, c);
    Sample s1 = quiet_sample(12 * kSec, 10000);
    s1.signals.atomic_failures_by_order = {{1, 100}};                   // 200 pages
    s1.signals.zones_below_low = s1.signals.zones_at_or_below_min = 3;  // pure atomic starvation
    a = update_anticipation(s1, a, c);
    EXPECT_EQ(a.watermark.value, 0) << "pure atomic starvation is the reserve's job";
    // max(67584 x 1.5, 67584 + 200 x 4 KiB x 8/5 x 1.25)
    EXPECT_EQ(a.min_free.value, 101376);
    auto p = anticipate_min_free(s1, a, c, 67584, 67584);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->rule, "learned-reserve");
    EXPECT_EQ(p->target, 101376);
    EXPECT_NE(p->reason.find("33 MiB more kept free"), std::string::npos) << p->reason;
    // Later failures refresh the hold.
    Sample s3 = s1;
    s3.mono_usec = 5000 * kSec;
    a = update_anticipation(s3, a, c);
    EXPECT_EQ(a.min_free.at_usec, 5000 * kSec);
}

TEST(Anticipation, PredictLowFiresOnASteadyFallKswapdCannotOutrun) {
    Config c;
    AnticipationState a;
    a.kswapd_pages_per_sec = 20000;  // the best kswapd has shown
    // Free falls 30000 pages/s, sampled at uneven intervals (2 s, 0.5 s, 1.5 s).
    uint64_t t = 100 * kSec;
    double free = 250000;
    for (double dt : {0.0, 2.0, 0.5, 1.5}) {
        t += static_cast<uint64_t>(dt * 1e6);
        free -= 30000 * dt;
        a = update_anticipation(quiet_sample(t, static_cast<uint64_t>(free)), a, c);
    }
    Sample s = quiet_sample(t, static_cast<uint64_t>(free));
    auto p = anticipate_watermark(s, a, c, 10, 10);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->rule, "predict-low");
    EXPECT_GT(p->target, 10);
    EXPECT_NE(p->reason.find("falling 117 MiB/s"), std::string::npos) << p->reason;
    // The same fall with kswapd known to reclaim 60000 pages/s: it refills the gap long before free
    // reaches low: nothing to do.
    a.kswapd_pages_per_sec = 60000;
    EXPECT_FALSE(anticipate_watermark(s, a, c, 10, 10));
    // Prediction off.
    a.kswapd_pages_per_sec = 20000;
    c.watermark.predict = false;
    EXPECT_FALSE(anticipate_watermark(s, a, c, 10, 10));
}

TEST(Anticipation, PredictLowIgnoresASawtooth) {
    Config c;
    AnticipationState a;
    a.kswapd_pages_per_sec = 20000;
    // kswapd cycling between low and high: down, down, up, down, ...
    const double v[] = {60000, 40000, 70000, 50000, 30000, 65000};
    for (int i = 0; i < 6; ++i)
        a = update_anticipation(quiet_sample((100 + 2 * i) * kSec, static_cast<uint64_t>(v[i])), a,
                                c);
    EXPECT_FALSE(anticipate_watermark(quiet_sample(110 * kSec, 65000), a, c, 10, 10));
}

TEST(Anticipation, PredictFragmentationWhenTargetBlocksTrendToZero) {
    Config c;
    AnticipationState a;
    uint64_t blocks = 400;
    Sample s;
    for (int i = 0; i < 4; ++i) {
        s = quiet_sample((100 + 2 * i) * kSec, 200000);
        s.signals.targets.back().free_blocks = blocks;
        a = update_anticipation(s, a, c);
        blocks -= 40;  // 20 blocks/s: 280 left at the last sample, zero in 14 s
    }
    EXPECT_EQ(a.target_order, 9);
    auto p = anticipate_compaction(s, a, c, 20);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->rule, "predict-fragmentation");
    EXPECT_EQ(p->target, 40);
    EXPECT_NE(p->reason.find("none left in 14.0 s"), std::string::npos) << p->reason;
    c.compaction.predict_horizon_usec = 10 * kSec;
    EXPECT_FALSE(anticipate_compaction(s, a, c, 20)) << "zero only beyond the horizon";
}
