// The flat "name value" files: /proc/vmstat, /proc/meminfo, and single sysctl values.
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "fixture_text.hpp"
#include "fragtune/sensing/parsers.hpp"

using namespace fragtune;

namespace {

using fragtune::test::fixture;

std::string crlf(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

std::string test_name(std::string n) {
    for (auto& ch : n)
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return n;
}

// ---- vmstat -------------------------------------------------------------------------------------

TEST(VmStat, LiveCapture) {
    auto v = parse_vmstat(fixture("live-6.18-vm/proc/vmstat"));
    ASSERT_TRUE(v.ok()) << v.error().describe();
    EXPECT_EQ(v->counters.size(), 192u);  // one per line of the capture
    EXPECT_EQ(v->get("nr_free_pages"), 824605u);
    EXPECT_TRUE(v->get("workingset_refault_file").has_value());
    EXPECT_FALSE(v->get("no_such_counter").has_value());
}

TEST(VmStat, Kernel419CounterNames) {
    auto v = parse_vmstat(fixture("numa2-4.19/proc/vmstat"));
    ASSERT_TRUE(v.ok()) << v.error().describe();
    EXPECT_TRUE(v->get("workingset_refault").has_value());
    EXPECT_FALSE(v->get("workingset_refault_file").has_value());  // split in 5.9
    EXPECT_EQ(v->get("allocstall_normal"), 3391u);
    EXPECT_TRUE(v->get("pgscan_direct").has_value());
    EXPECT_FALSE(v->get("allocstall").has_value());
}

TEST(VmStat, Kernel310CounterNames) {
    auto v = parse_vmstat(fixture("old-3.10/proc/vmstat"));
    ASSERT_TRUE(v.ok()) << v.error().describe();
    EXPECT_EQ(v->get("allocstall"), 1182u);
    EXPECT_FALSE(v->get("allocstall_normal").has_value());
    EXPECT_EQ(v->get("pgscan_direct_normal"), 412837u);
    EXPECT_FALSE(v->get("pgscan_direct").has_value());
    EXPECT_FALSE(v->get("workingset_refault").has_value());  // 3.15+
}

TEST(VmStat, EveryFixtureParsesAndCrlfIsTheSame) {
    for (const char* dir :
         {"live-6.18-vm", "numa2-4.19", "old-3.10", "arm64-64k-6.8", "small-vm-5.15"}) {
        const std::string text = fixture(std::string(dir) + "/proc/vmstat");
        auto a = parse_vmstat(text);
        auto b = parse_vmstat(crlf(text) + "\n\n");
        ASSERT_TRUE(a.ok()) << dir << ": " << a.error().describe();
        ASSERT_TRUE(b.ok()) << dir << ": " << b.error().describe();
        EXPECT_EQ(a->counters, b->counters) << dir;
    }
}

TEST(VmStat, LargestValueIsAccepted) {
    auto v = parse_vmstat("nr_free_pages 18446744073709551615\n");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->get("nr_free_pages"), UINT64_MAX);
}

struct Hostile {
    const char* name;
    const char* text;
    const char* error_has;
};

class VmStatHostile : public ::testing::TestWithParam<Hostile> {};

TEST_P(VmStatHostile, IsRefused) {
    auto v = parse_vmstat(GetParam().text, "/x/proc/vmstat");
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.error().message.find("/x/proc/vmstat"), std::string::npos) << v.error().message;
    EXPECT_NE(v.error().message.find(GetParam().error_has), std::string::npos) << v.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, VmStatHostile,
    ::testing::Values(
        Hostile{"empty", "", "no counters"},
        Hostile{"truncated", "nr_free_pages 12\nnr_inactive_anon",
                "line 2: expected '<counter> <value>', found 1 fields"},
        Hostile{"extra column", "nr_free_pages 1 2\n",
                "line 1: expected '<counter> <value>', found 3 fields"},
        Hostile{"non-numeric", "nr_free_pages 12\npgfault lots\n",
                "line 2: value of 'pgfault' 'lots' is not a decimal number"},
        Hostile{"overflow", "nr_free_pages 18446744073709551616\n", "is larger than 2^64-1"},
        Hostile{"negative", "nr_free_pages -5\n", "'-5' has a sign"},
        Hostile{"fraction", "nr_free_pages 1.5\n", "'1.5' is not a decimal number"},
        Hostile{"duplicate", "nr_free_pages 1\npgfault 2\npgfault 3\n",
                "line 3: 'pgfault' is listed twice (first on line 2)"},
        Hostile{"missing key", "pgfault 1\npgmajfault 0\n", "no 'nr_free_pages' counter"},
        Hostile{"meminfo instead", "MemTotal:       24731700 kB\n", "found 3 fields"}),
    [](const auto& p) { return test_name(p.param.name); });

// ---- meminfo ------------------------------------------------------------------------------------

TEST(MemInfo, LiveCapture) {
    auto m = parse_meminfo(fixture("live-6.18-vm/proc/meminfo"));
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_EQ(m->get_kib("MemTotal"), 24731700u);
    EXPECT_EQ(m->get_kib("MemAvailable"), 24408644u);
    EXPECT_EQ(m->get_kib("Active(anon)"), 1504u);
    EXPECT_EQ(m->get_kib("VmallocTotal"), 34359738367u);
    EXPECT_EQ(m->get_kib("HugePages_Total"), 0u);  // a count, no unit
    EXPECT_EQ(m->get_kib("Hugepagesize"), 2048u);
    EXPECT_FALSE(m->get_kib("Nonexistent").has_value());
}

TEST(MemInfo, OldKernelHasNoMemAvailable) {
    auto m = parse_meminfo(fixture("old-3.10/proc/meminfo"));
    ASSERT_TRUE(m.ok()) << m.error().describe();
    EXPECT_FALSE(m->get_kib("MemAvailable").has_value());
    EXPECT_EQ(m->get_kib("SwapTotal"), 2097148u);
}

TEST(MemInfo, EveryFixtureParsesAndCrlfIsTheSame) {
    for (const char* dir :
         {"live-6.18-vm", "numa2-4.19", "old-3.10", "arm64-64k-6.8", "small-vm-5.15"}) {
        const std::string text = fixture(std::string(dir) + "/proc/meminfo");
        auto a = parse_meminfo(text);
        auto b = parse_meminfo(crlf(text));
        ASSERT_TRUE(a.ok()) << dir << ": " << a.error().describe();
        ASSERT_TRUE(b.ok()) << dir;
        EXPECT_EQ(a->kib, b->kib);
    }
    auto arm = parse_meminfo(fixture("arm64-64k-6.8/proc/meminfo"));
    ASSERT_TRUE(arm.ok());
    EXPECT_EQ(arm->get_kib("Hugepagesize"), 524288u);  // 512 MiB PMD pages with 64 KiB base pages
}

class MemInfoHostile : public ::testing::TestWithParam<Hostile> {};

TEST_P(MemInfoHostile, IsRefused) {
    auto m = parse_meminfo(GetParam().text);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("/proc/meminfo"), std::string::npos) << m.error().message;
    EXPECT_NE(m.error().message.find(GetParam().error_has), std::string::npos) << m.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, MemInfoHostile,
    ::testing::Values(
        Hostile{"empty", "", "no fields"},
        Hostile{"no colon", "MemTotal 100 kB\n", "line 1: expected '<Name>: <value> [kB]'"},
        Hostile{"truncated", "MemTotal:       24731700 kB\nMemFree:",
                "line 2: expected 'MemFree: <value> [kB]', found 0 fields"},
        Hostile{"extra column", "MemTotal: 1 kB extra\n", "found 3 fields after the colon"},
        Hostile{"wrong unit", "MemTotal: 1 MB\n", "unit of 'MemTotal' is 'MB', expected 'kB'"},
        Hostile{"non-numeric", "MemTotal: lots kB\n",
                "value of 'MemTotal' 'lots' is not a decimal number"},
        Hostile{"overflow", "MemTotal: 18446744073709551616 kB\n", "larger than 2^64-1"},
        Hostile{"negative", "MemTotal: -1 kB\n", "has a sign"},
        Hostile{"per-node file", "Node 0 MemTotal:       24731700 kB\n",
                "'Node 0 MemTotal' is not a meminfo key"},
        Hostile{"duplicate", "MemTotal: 1 kB\nMemFree: 1 kB\nMemTotal: 2 kB\n",
                "line 3: 'MemTotal' is listed twice (first on line 1)"},
        Hostile{"missing MemFree", "MemTotal: 1 kB\nBuffers: 2 kB\n", "no 'MemFree' line"},
        Hostile{"missing MemTotal", "MemFree: 1 kB\n", "no 'MemTotal' line"}),
    [](const auto& p) { return test_name(p.param.name); });

// ---- one sysctl value (parse_sysctl_int is defined in sysctl_io.cpp) ----------------------------

TEST(SysctlInt, FixtureKnobs) {
    struct Case {
        const char* rel;
        int64_t value;
    };
    for (const auto& c : {Case{"live-6.18-vm/proc/sys/vm/min_free_kbytes", 67584},
                          Case{"live-6.18-vm/proc/sys/vm/swappiness", 60},
                          Case{"numa2-4.19/proc/sys/vm/min_free_kbytes", 90112},
                          Case{"old-3.10/proc/sys/vm/min_free_kbytes", 67584},
                          Case{"small-vm-5.15/proc/sys/vm/compaction_proactiveness", 20}}) {
        auto v = parse_sysctl_int(fixture(c.rel), c.rel);
        ASSERT_TRUE(v.ok()) << c.rel << ": " << v.error().describe();
        EXPECT_EQ(*v, c.value) << c.rel;
    }
}

TEST(SysctlInt, AcceptedForms) {
    EXPECT_EQ(*parse_sysctl_int("67584\n", "x"), 67584);
    EXPECT_EQ(*parse_sysctl_int("67584\r\n", "x"), 67584);
    EXPECT_EQ(*parse_sysctl_int("10 \t\n", "x"), 10);
    EXPECT_EQ(*parse_sysctl_int("-1\n", "x"), -1);
    EXPECT_EQ(*parse_sysctl_int("0", "x"), 0);
    EXPECT_EQ(*parse_sysctl_int("9223372036854775807\n", "x"), INT64_MAX);
}

class SysctlIntHostile : public ::testing::TestWithParam<Hostile> {};

TEST_P(SysctlIntHostile, IsRefusedNamingTheKnob) {
    auto v = parse_sysctl_int(GetParam().text, "vm.min_free_kbytes");
    ASSERT_FALSE(v.ok()) << GetParam().name;
    EXPECT_NE(v.error().message.find("vm.min_free_kbytes"), std::string::npos) << v.error().message;
    EXPECT_NE(v.error().message.find(GetParam().error_has), std::string::npos) << v.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, SysctlIntHostile,
    ::testing::Values(Hostile{"empty", "", "empty"}, Hostile{"newline only", "\n", "empty"},
                      Hostile{"plus sign", "+5\n", "'+5'"},
                      Hostile{"two values", "4096\t4096\n", "expected a single integer"},
                      Hostile{"hex", "0x10\n", "'0x10'"}, Hostile{"garbage", "abc\n", "'abc'"},
                      Hostile{"trailing garbage", "12abc\n", "'12abc'"},
                      Hostile{"overflow", "9223372036854775808\n", "does not fit"},
                      Hostile{"huge", "18446744073709551616\n", "does not fit"}),
    [](const auto& p) { return test_name(p.param.name); });

}  // namespace
