// Replays every input the fuzzers ever crashed on (tests/fixtures/fuzz-regressions/<target>/*) and
// the fixtures the fuzzers are seeded from through the fuzz targets' own checks
// (fuzz/fuzz_checks.cpp), in the normal build: a fixed parser bug stays fixed even where no fuzzer
// runs.
#include "fuzz_checks.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fragtune/util/units.hpp"

namespace fs = std::filesystem;
using fragtune::fuzz::find_fuzz_target;
using fragtune::fuzz::fuzz_targets;

namespace {

const fs::path kFixtures = FRAGTUNE_FIXTURES_DIR;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<fs::path> files_under(const fs::path& dir) {
    std::vector<fs::path> out;
    if (!fs::is_directory(dir)) return out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

TEST(FuzzRegressions, EveryRegressionDirectoryNamesATarget) {
    for (const auto& e : fs::directory_iterator(kFixtures / "fuzz-regressions")) {
        if (!e.is_directory()) continue;
        EXPECT_NE(find_fuzz_target(e.path().filename().string()), nullptr)
            << e.path() << " is not the name of a fuzz target (fuzz/fuzz_checks.cpp)";
    }
}

TEST(FuzzRegressions, EveryCrashInputNowPassesItsCheck) {
    for (const auto& t : fuzz_targets()) {
        for (const auto& f : files_under(kFixtures / "fuzz-regressions" / std::string(t.name))) {
            SCOPED_TRACE(f.string());
            EXPECT_EQ(t.check(slurp(f)), "");
        }
    }
}

// The seed corpora: real captured and source-derived text must satisfy every property the fuzzers
// assert, or the fuzzers would report the fixtures themselves.
TEST(FuzzRegressions, FixtureSeedsPassTheirChecks) {
    const std::vector<std::pair<std::string, std::string>> seeds = {
        {"buddyinfo", "proc/buddyinfo"}, {"zoneinfo", "proc/zoneinfo"},   {"vmstat", "proc/vmstat"},
        {"meminfo", "proc/meminfo"},     {"psi", "proc/pressure/memory"},
    };
    int checked = 0;
    for (const auto& e : fs::directory_iterator(kFixtures)) {
        for (const auto& [target, rel] : seeds) {
            const fs::path p = e.path() / rel;
            if (!fs::exists(p)) continue;
            SCOPED_TRACE(p.string());
            EXPECT_EQ(find_fuzz_target(target)->check(slurp(p)), "");
            ++checked;
        }
        for (const auto& knob : files_under(e.path() / "proc/sys/vm")) {
            SCOPED_TRACE(knob.string());
            EXPECT_EQ(find_fuzz_target("sysctl_int")->check(slurp(knob)), "");
            ++checked;
        }
    }
    const std::string kmsg = slurp(kFixtures / "kmsg/alloc-failures.kmsg");
    EXPECT_EQ(find_fuzz_target("kmsg_stream")->check(kmsg), "");
    std::istringstream lines(kmsg);
    for (std::string line; std::getline(lines, line); ++checked)
        EXPECT_EQ(find_fuzz_target("kmsg")->check(line), "") << line;
    EXPECT_EQ(find_fuzz_target("config")->check(
                  slurp(fs::path(FRAGTUNE_SOURCE_DIR) / "config/fragtune.toml")),
              "");
    for (const std::string dir : {"config", "state", "sysctl_conf", "units", "sysctl_int"})
        for (const auto& f : files_under(fs::path(FRAGTUNE_SOURCE_DIR) / "fuzz/seeds" / dir)) {
            SCOPED_TRACE(f.string());
            EXPECT_EQ(find_fuzz_target(dir)->check(slurp(f)), "");
            ++checked;
        }
    EXPECT_GT(checked, 40);  // the fixtures were found: five machines, kernel log, seeds
}

// The checks are not vacuous: hostile inputs that a sound parser must reject or bound.
TEST(FuzzRegressions, ChecksHoldOnHostileInputs) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"buddyinfo", "Node 0, zone Normal 1 2 3\nNode 0, zone DMA 1 2\n"},
        {"psi", "some avg10=nan avg60=inf avg300=-1 total=5\n"},
        {"psi", "some avg10=1e308 avg60=0 avg300=0 total=18446744073709551616\n"},
        {"sysctl_int", "-9223372036854775808\n"},
        {"kmsg", "4,1,1,-;x: page allocation failure: order:4294967297, mode:0x0\n"},
        {"kmsg", "4,1,1,-;vmalloc error: size 18446744073709551615, vm_struct allocation failed"},
        {"kmsg_stream", std::string(100000, 'c') +
                            "\n4,1,1,c;a: page allocation\n4,2,1,+;failure: order:1, mode:0x20\n"},
        {"state", "format_version = 1\n[knobs.swappiness]\noriginal = \"60\"\n"},
        {"state", "format_version = 1\n[[history]]\nknob = \"swappiness\"\nrule = \"\\u0000\"\n"},
        {"sysctl_conf", "-\n=\n - = 1\n/vm//swappiness/ = 2\n"},
        {"config", "[daemon]\npersist_path = \"/etc/sysctl.d/../x.conf\"\n"},
        {"units", "1.0000001s"},
        {"units", "18446744073709551615us"},
    };
    for (const auto& [target, input] : cases) {
        SCOPED_TRACE(target + ": " + input.substr(0, 120));
        EXPECT_EQ(find_fuzz_target(target)->check(input), "");
    }
}

// Found by fuzz_units: a sum of parts reaches 12206619554432119980 us, which format_duration_usec
// renders as "12206619554432119980us", 20 digits that parse_duration_usec used to refuse (it read at
// most 19). It now reads every number that fits 64 bits.
TEST(FuzzRegressions, DurationsFrom1e19UsecRoundTrip) {
    const std::string input = slurp(kFixtures / "fuzz-regressions/units/duration-1e19-usec");
    auto d = fragtune::parse_duration_usec(input);
    ASSERT_TRUE(d.ok()) << d.error().describe();
    const std::string text = fragtune::format_duration_usec(*d);
    auto again = fragtune::parse_duration_usec(text);
    ASSERT_TRUE(again.ok()) << text << ": " << again.error().describe();
    EXPECT_EQ(*again, *d);
}

}  // namespace
