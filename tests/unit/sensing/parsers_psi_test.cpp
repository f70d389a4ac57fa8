// parse_psi: /proc/pressure/memory and cgroup memory.pressure.
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "fixture_text.hpp"
#include "fragtune/sensing/parsers.hpp"

using namespace fragtune;

namespace {

using fragtune::test::fixture;

TEST(Psi, LiveCaptureIsIdle) {
    auto p = parse_psi(fixture("live-6.18-vm/proc/pressure/memory"));
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_EQ(p->some.avg10, 0.0);
    EXPECT_EQ(p->some.total_usec, 0u);
    ASSERT_TRUE(p->full.has_value());
    EXPECT_EQ(p->full->avg300, 0.0);
}

TEST(Psi, FixturesWithPressure) {
    auto a = parse_psi(fixture("small-vm-5.15/proc/pressure/memory"));
    ASSERT_TRUE(a.ok()) << a.error().describe();
    EXPECT_DOUBLE_EQ(a->some.avg10, 1.27);
    EXPECT_DOUBLE_EQ(a->some.avg60, 0.84);
    EXPECT_DOUBLE_EQ(a->some.avg300, 0.31);
    EXPECT_EQ(a->some.total_usec, 91827364u);
    ASSERT_TRUE(a->full.has_value());
    EXPECT_DOUBLE_EQ(a->full->avg10, 0.52);
    EXPECT_EQ(a->full->total_usec, 41827364u);
    auto b = parse_psi(fixture("arm64-64k-6.8/proc/pressure/memory"), "memory.pressure");
    ASSERT_TRUE(b.ok());
    EXPECT_DOUBLE_EQ(b->some.avg60, 0.02);
}

TEST(Psi, SomeOnlyAndFullAt100) {
    auto p = parse_psi("some avg10=100.00 avg60=99.99 avg300=0.01 total=18446744073709551615\n");
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_FALSE(p->full.has_value());
    EXPECT_DOUBLE_EQ(p->some.avg10, 100.0);
    EXPECT_EQ(p->some.total_usec, UINT64_MAX);
}

TEST(Psi, CrlfAndFullFirst) {
    auto p = parse_psi(
        "full avg10=0.50 avg60=0.25 avg300=0.10 total=5\r\nsome avg10=1.00 avg60=0.50 "
        "avg300=0.20 total=10\r\n");
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_EQ(p->some.total_usec, 10u);
    EXPECT_EQ(p->full->total_usec, 5u);
}

struct Hostile {
    const char* name;
    const char* text;
    const char* error_has;
};

class PsiHostile : public ::testing::TestWithParam<Hostile> {};

TEST_P(PsiHostile, IsRefused) {
    auto p = parse_psi(GetParam().text);
    ASSERT_FALSE(p.ok()) << GetParam().name;
    EXPECT_NE(p.error().message.find("/proc/pressure/memory"), std::string::npos);
    EXPECT_NE(p.error().message.find(GetParam().error_has), std::string::npos) << p.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, PsiHostile,
    ::testing::Values(
        Hostile{"empty", "", "no 'some' line"},
        Hostile{"full only", "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", "no 'some' line"},
        Hostile{"truncated", "some avg10=0.00 avg60=0.00 avg3",
                "line 1: expected 'some avg10=.. avg60=.. avg300=.. total=..', found 4 fields"},
        Hostile{"extra field", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0 avg900=0.00\n",
                "found 6 fields"},
        Hostile{"swapped fields", "some avg60=0.00 avg10=0.00 avg300=0.00 total=0\n",
                "field 2 is 'avg60=0.00', expected 'avg10=<value>'"},
        Hostile{"duplicate some",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nsome avg10=0.00 avg60=0.00 "
                "avg300=0.00 total=0\n",
                "line 2: 'some' is listed twice (first on line 1)"},
        Hostile{"non-numeric", "some avg10=abc avg60=0.00 avg300=0.00 total=0\n",
                "avg10 'abc' is not a percentage"},
        Hostile{"negative", "some avg10=-1.00 avg60=0.00 avg300=0.00 total=0\n",
                "avg10 '-1.00' is not a percentage"},
        Hostile{"over 100", "some avg10=100.01 avg60=0.00 avg300=0.00 total=0\n", "avg10 '100.01'"},
        Hostile{"nan", "some avg10=nan avg60=0.00 avg300=0.00 total=0\n", "avg10 'nan'"},
        Hostile{"total overflow",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551616\n",
                "total '18446744073709551616' is larger than 2^64-1"},
        Hostile{"total negative", "some avg10=0.00 avg60=0.00 avg300=0.00 total=-1\n",
                "has a sign"},
        Hostile{"empty value", "some avg10= avg60=0.00 avg300=0.00 total=0\n", "avg10 ''"},
        Hostile{"unknown line", "cpu avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                "expected a 'some' or 'full' line, found 'cpu'"}),
    [](const auto& p) {
        std::string n = p.param.name;
        for (auto& ch : n)
            if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
        return n;
    });

}  // namespace
