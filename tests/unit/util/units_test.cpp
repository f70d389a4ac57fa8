#include "fragtune/util/units.hpp"

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

using namespace fragtune;

namespace {

struct Case {
    const char* text;
    uint64_t value;
};

}  // namespace

TEST(Units, ParsesDurations) {
    const Case cases[] = {
        {"500ms", 500'000},
        {"1s", 1'000'000},
        {"2min", 120'000'000},
        {"2m", 120'000'000},
        {"1h", 3'600'000'000},
        {"1d", 86'400'000'000},
        {"250us", 250},
        {"250usec", 250},
        {"3sec", 3'000'000},
        {"7msec", 7'000},
        {"2hr", 7'200'000'000},
        {"1.5s", 1'500'000},
        {"0.25ms", 250},
        {".5s", 500'000},
        {"0", 0},
        {"0ms", 0},
        {"2", 2'000'000},  // a lone number is seconds
        {"1min30s", 90'000'000},
        {"1min 30s", 90'000'000},
        {"1h 2min 3s 4ms", 3'723'004'000},
        {" 10 s \n", 10'000'000},
        {"5MS", 5'000},  // units are case-insensitive
        {"00010ms", 10'000},
    };
    for (const auto& c : cases) {
        auto r = parse_duration_usec(c.text);
        ASSERT_TRUE(r.ok()) << c.text << ": " << r.error().describe();
        EXPECT_EQ(*r, c.value) << c.text;
    }
    // 2^64 us is 213503982.3 days: the last whole day that fits.
    auto big = parse_duration_usec("213503982d");
    ASSERT_TRUE(big.ok());
    EXPECT_EQ(*big, 213503982ull * 86'400'000'000ull);
}

TEST(Units, RejectsBadDurations) {
    const char* bad[] = {
        "",
        " ",
        "ms",
        "-1s",
        "+1s",
        "1x",
        "1 2",
        "1s 2",
        "1.s",
        "1..5s",
        "0.1us",
        "1e3ms",
        "213503983d",  // 2^64 us is 213503982.3 days
        "99999999999999999999s",
        "1s,2s",
        "s1",
        "1 min s",
        "abc",
    };
    for (const char* text : bad) {
        auto r = parse_duration_usec(text);
        EXPECT_FALSE(r.ok()) << "accepted '" << text << "' as " << (r.ok() ? *r : 0);
        if (!r.ok()) {
            EXPECT_NE(r.error().message.find("duration"), std::string::npos);
        }
    }
    // The message quotes the input and names the unit it did not know.
    auto r = parse_duration_usec("5fortnights");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("'5fortnights'"), std::string::npos);
    EXPECT_NE(r.error().message.find("'fortnights'"), std::string::npos);
}

TEST(Units, SumOverflowIsRefused) {
    // Each part fits; the sum does not.
    EXPECT_FALSE(parse_duration_usec("200000000d 200000000d").ok());
}

TEST(Units, ParsesSizes) {
    const Case cases[] = {
        {"123", 123},
        {"4096K", 4096},
        {"4096k", 4096},
        {"256M", 262'144},
        {"256MiB", 262'144},
        {"256mb", 262'144},
        {"1G", 1'048'576},
        {"1GiB", 1'048'576},
        {"2T", 2'147'483'648},
        {"1.5G", 1'572'864},
        {"64 M", 65'536},
        {" 65536\n", 65'536},
        {"0", 0},
    };
    for (const auto& c : cases) {
        auto r = parse_size_kib(c.text);
        ASSERT_TRUE(r.ok()) << c.text << ": " << r.error().describe();
        EXPECT_EQ(*r, c.value) << c.text;
    }
}

TEST(Units, RejectsBadSizes) {
    const char* bad[] = {"",
                         "K",
                         "-1",
                         "+1M",
                         "1X",
                         "1MX",
                         "1Mi",
                         "1 2",
                         "0.5",
                         "0.5K",
                         "1.M",
                         "1e3",
                         "12KiBs",
                         "18446744073709551615T",
                         "9999999999999999T"};
    for (const char* text : bad) {
        auto r = parse_size_kib(text);
        EXPECT_FALSE(r.ok()) << "accepted '" << text << "' as " << (r.ok() ? *r : 0);
        if (!r.ok()) {
            EXPECT_NE(r.error().message.find("size"), std::string::npos);
        }
    }
}

TEST(Units, FormatsDurationsInTheLargestExactUnit) {
    EXPECT_EQ(format_duration_usec(0), "0");
    EXPECT_EQ(format_duration_usec(2'000'000), "2s");
    EXPECT_EQ(format_duration_usec(500'000), "500ms");
    EXPECT_EQ(format_duration_usec(120'000'000), "2min");
    EXPECT_EQ(format_duration_usec(1'500'000), "1500ms");
    EXPECT_EQ(format_duration_usec(7), "7us");
    for (uint64_t v :
         {1ull, 999ull, 1'000ull, 61'000'000ull, 3'600'000'000ull, 86'400'000'001ull}) {
        auto r = parse_duration_usec(format_duration_usec(v));
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(*r, v);
    }
}
