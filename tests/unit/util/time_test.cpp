// The clock helpers: the units are microseconds, of the clock each name says.
#include "fragtune/util/time.hpp"

#include <time.h>

#include <gtest/gtest.h>

using namespace fragtune;

TEST(Time, RealtimeIsMicrosecondsSinceTheEpoch) {
    const time_t before = ::time(nullptr);
    const uint64_t now = realtime_usec();
    const time_t after = ::time(nullptr);
    EXPECT_GE(now / 1'000'000, static_cast<uint64_t>(before));
    EXPECT_LE(now / 1'000'000, static_cast<uint64_t>(after));
}

TEST(Time, MonotonicIsMicrosecondsOfClockMonotonicAndNeverGoesBack) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const uint64_t a = monotonic_usec();
    const uint64_t b = monotonic_usec();
    timespec te{};
    ::clock_gettime(CLOCK_MONOTONIC, &te);
    EXPECT_LE(a, b);
    EXPECT_GE(a, static_cast<uint64_t>(ts.tv_sec) * 1'000'000u +
                     static_cast<uint64_t>(ts.tv_nsec) / 1000u);
    EXPECT_LE(b, static_cast<uint64_t>(te.tv_sec) * 1'000'000u +
                     static_cast<uint64_t>(te.tv_nsec) / 1000u);
}
