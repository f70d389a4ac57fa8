#include "fragtune/deciding/cadence.hpp"

#include <vector>

#include <gtest/gtest.h>

using namespace fragtune;

namespace {

constexpr uint64_t kMs = 1000;
constexpr uint64_t kSec = 1'000'000;
const CadenceConfig kAdaptive{0, 250 * kMs, 10 * kSec};

// Feeds calm ticks (headroom steady) and returns the intervals chosen.
std::vector<uint64_t> calm_run(CadenceState& st, int ticks, uint64_t& now,
                               int64_t headroom = 100000) {
    std::vector<uint64_t> out;
    for (int i = 0; i < ticks; ++i) {
        CadenceStep s = next_cadence(st, {.mono_usec = now, .headroom_pages = headroom}, kAdaptive);
        st = s.next;
        out.push_back(s.interval_usec);
        now += s.interval_usec;
    }
    return out;
}

TEST(Cadence, CalmDoublesFromTickMinToTickMax) {
    CadenceState st;
    uint64_t now = 1 * kSec;
    auto iv = calm_run(st, 8, now);
    EXPECT_EQ(iv, (std::vector<uint64_t>{500 * kMs, 1 * kSec, 2 * kSec, 4 * kSec, 8 * kSec,
                                         10 * kSec, 10 * kSec, 10 * kSec}));
    EXPECT_EQ(st.calm_ticks, 8u);
}

TEST(Cadence, EveryKindOfTroubleGoesBackToTickMin) {
    for (int kind = 0; kind < 4; ++kind) {
        CadenceState st;
        uint64_t now = 1 * kSec;
        calm_run(st, 6, now);
        CadenceInput in{.mono_usec = now, .headroom_pages = 100000};
        in.woken = kind == 0;
        in.failures = kind == 1;
        in.decided = kind == 2;
        in.trouble = kind == 3;
        CadenceStep s = next_cadence(st, in, kAdaptive);
        EXPECT_EQ(s.interval_usec, 250 * kMs) << "kind " << kind;
        EXPECT_EQ(s.why, "trouble");
        EXPECT_EQ(s.next.calm_ticks, 0u);
        // And stretches again from there once calm.
        st = s.next;
        now += s.interval_usec;
        EXPECT_EQ(calm_run(st, 1, now)[0], 500 * kMs);
    }
}

TEST(Cadence, HeadroomCapsTheCalmIntervalAtTheFastestDrainSeen) {
    CadenceState st;
    uint64_t now = 1 * kSec;
    calm_run(st, 6, now, 100000);
    ASSERT_EQ(st.interval_usec, 10 * kSec);
    // 20000 pages fell in 10 s: 2000 pages/s. 80000 pages of room last 40 s, halved: 20 s > 10 s.
    CadenceStep s = next_cadence(st, {.mono_usec = now, .headroom_pages = 80000}, kAdaptive);
    EXPECT_DOUBLE_EQ(s.next.max_drain_pages_per_sec, 2000);
    EXPECT_EQ(s.interval_usec, 10 * kSec);
    st = s.next;
    now += s.interval_usec;
    // A burst: 70000 pages in 10 s (7000/s); 10000 pages left last 1.43 s, halved 714 ms.
    s = next_cadence(st, {.mono_usec = now, .headroom_pages = 10000}, kAdaptive);
    EXPECT_DOUBLE_EQ(s.next.max_drain_pages_per_sec, 7000);
    EXPECT_EQ(s.interval_usec, 714'285u);
    EXPECT_EQ(s.why, "headroom");
    // The fastest drain is remembered: calm at the same headroom stays capped.
    st = s.next;
    now += s.interval_usec;
    s = next_cadence(st, {.mono_usec = now, .headroom_pages = 10000}, kAdaptive);
    EXPECT_EQ(s.interval_usec, 714'285u);
    // No room at all: tick_min, never below.
    st = s.next;
    now += s.interval_usec;
    s = next_cadence(st, {.mono_usec = now, .headroom_pages = -500}, kAdaptive);
    EXPECT_EQ(s.interval_usec, 250 * kMs);
}

TEST(Cadence, AFixedTickIsUsedAsIsButTheDrainIsStillTracked) {
    const CadenceConfig fixed{2 * kSec, 250 * kMs, 10 * kSec};
    CadenceState st;
    CadenceStep s = next_cadence(st, {.mono_usec = 1 * kSec, .headroom_pages = 100000}, fixed);
    EXPECT_EQ(s.interval_usec, 2 * kSec);
    EXPECT_EQ(s.why, "fixed");
    s = next_cadence(s.next,
                     {.mono_usec = 3 * kSec, .headroom_pages = 10, .woken = true, .failures = true},
                     fixed);
    EXPECT_EQ(s.interval_usec, 2 * kSec);
    EXPECT_GT(s.next.max_drain_pages_per_sec, 0);
}

TEST(Cadence, TickMaxBelowTickMinIsTreatedAsTickMin) {
    const CadenceConfig odd{0, 1 * kSec, 500 * kMs};
    CadenceState st;
    CadenceStep s = next_cadence(st, {.mono_usec = 1 * kSec, .headroom_pages = 1000}, odd);
    EXPECT_EQ(s.interval_usec, 1 * kSec);
}

}  // namespace
