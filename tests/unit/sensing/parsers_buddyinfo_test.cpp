// parse_buddyinfo: every fixture machine, then hostile text.
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "fixture_text.hpp"
#include "fragtune/sensing/parsers.hpp"

using namespace fragtune;

namespace {

using fragtune::test::fixture;

uint64_t pages(const std::vector<uint64_t>& blocks) {
    uint64_t sum = 0;
    for (size_t o = 0; o < blocks.size(); ++o) sum += blocks[o] << o;
    return sum;
}

std::string crlf(std::string s) {
    std::string out;
    for (char c : s) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

struct MachineCase {
    const char* dir;
    size_t zones;
    int orders;
};

class BuddyInfoMachines : public ::testing::TestWithParam<MachineCase> {};

TEST_P(BuddyInfoMachines, ParsesAndAgreesWithZoneinfo) {
    const auto& c = GetParam();
    auto b = parse_buddyinfo(fixture(std::string(c.dir) + "/proc/buddyinfo"));
    ASSERT_TRUE(b.ok()) << b.error().describe();
    EXPECT_EQ(b->zones.size(), c.zones);
    EXPECT_EQ(b->orders, c.orders);
    auto z = parse_zoneinfo(fixture(std::string(c.dir) + "/proc/zoneinfo"));
    ASSERT_TRUE(z.ok()) << z.error().describe();
    // buddyinfo lists exactly the populated zones, and their free lists add up to "pages free".
    size_t populated = 0;
    for (const auto& zz : z->zones) populated += zz.present > 0 ? 1 : 0;
    EXPECT_EQ(b->zones.size(), populated);
    for (const auto& bz : b->zones) {
        EXPECT_EQ(bz.free_blocks.size(), static_cast<size_t>(c.orders));
        bool found = false;
        for (const auto& zz : z->zones) {
            if (zz.node != bz.node || zz.zone != bz.zone) continue;
            found = true;
            EXPECT_EQ(pages(bz.free_blocks), zz.free)
                << c.dir << " node " << bz.node << " " << bz.zone;
        }
        EXPECT_TRUE(found) << bz.zone;
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BuddyInfoMachines,
                         ::testing::Values(MachineCase{"live-6.18-vm", 3, 11},
                                           MachineCase{"numa2-4.19", 4, 11},
                                           MachineCase{"old-3.10", 3, 11},
                                           MachineCase{"arm64-64k-6.8", 2, 14},
                                           MachineCase{"small-vm-5.15", 2, 11}));

TEST(BuddyInfo, LiveCaptureValues) {
    auto b = parse_buddyinfo(fixture("live-6.18-vm/proc/buddyinfo"));
    ASSERT_TRUE(b.ok()) << b.error().describe();
    ASSERT_EQ(b->zones.size(), 3u);
    EXPECT_EQ(b->zones[0].zone, "DMA");
    EXPECT_EQ(b->zones[1].zone, "DMA32");
    EXPECT_EQ(b->zones[2].zone, "Normal");
    EXPECT_EQ(b->zones[2].node, 0);
    EXPECT_EQ(b->zones[2].free_blocks.front(), 5071u);
    EXPECT_EQ(b->zones[1].free_blocks.back(), 752u);
}

TEST(BuddyInfo, TwoNodesKeepTheirNodeNumbers) {
    auto b = parse_buddyinfo(fixture("numa2-4.19/proc/buddyinfo"));
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->zones.back().node, 1);
    EXPECT_EQ(b->zones.back().zone, "Normal");
}

TEST(BuddyInfo, CrlfTabsAndTrailingBlanksParseTheSame) {
    const std::string text = fixture("live-6.18-vm/proc/buddyinfo");
    auto a = parse_buddyinfo(text);
    auto b = parse_buddyinfo(crlf(text));
    std::string tabs = "Node 0,\tzone\tDMA\t1\t2\t3   \t\n";
    auto c = parse_buddyinfo(tabs);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    ASSERT_EQ(a->zones.size(), b->zones.size());
    for (size_t i = 0; i < a->zones.size(); ++i)
        EXPECT_EQ(a->zones[i].free_blocks, b->zones[i].free_blocks);
    EXPECT_EQ(c->zones[0].free_blocks, (std::vector<uint64_t>{1, 2, 3}));
}

TEST(BuddyInfo, LargestCountIsAccepted) {
    auto b = parse_buddyinfo("Node 0, zone Normal 18446744073709551615 0\n");
    ASSERT_TRUE(b.ok()) << b.error().describe();
    EXPECT_EQ(b->zones[0].free_blocks[0], UINT64_MAX);
}

TEST(BuddyInfo, ExtraColumnMessageNamesLineAndCounts) {
    const std::string text =
        "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      "
        "1      3 \n"
        "Node 0, zone    DMA32      1      1      4      2      5      4      3      3      4      "
        "2    752 \n"
        "Node 0, zone   Normal   5071    829    540    318     88     36     18     14      7      "
        "5     26      9 \n";
    auto b = parse_buddyinfo(text);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.error().message,
              "/proc/buddyinfo line 3: expected 11 order columns like the lines before, found 12");
}

struct Hostile {
    const char* name;
    const char* text;
    const char* error_has;
};

class BuddyInfoHostile : public ::testing::TestWithParam<Hostile> {};

TEST_P(BuddyInfoHostile, IsRefusedWithAPreciseMessage) {
    const auto& c = GetParam();
    auto b = parse_buddyinfo(c.text, "/root/proc/buddyinfo");
    ASSERT_FALSE(b.ok()) << c.name;
    EXPECT_NE(b.error().message.find("/root/proc/buddyinfo"), std::string::npos)
        << b.error().message;
    EXPECT_NE(b.error().message.find(c.error_has), std::string::npos) << b.error().message;
    EXPECT_EQ(b.error().sys_errno, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Table, BuddyInfoHostile,
    ::testing::Values(
        Hostile{"empty", "", "no zones"}, Hostile{"blank", "\n  \n\r\n", "no zones"},
        Hostile{"truncated header", "Node 0, zo",
                "line 1: expected a line starting with 'Node <n>, zone <name>'"},
        Hostile{"truncated counts", "Node 0, zone DMA32 1 1 4\nNode 0, zone Normal 5071 829",
                "line 2: expected 3 order columns like the lines before, found 2"},
        Hostile{"fewer columns later", "Node 0, zone DMA 1 2 3\nNode 0, zone DMA32 1 2\n",
                "expected 3 order columns like the lines before, found 2"},
        Hostile{"no counts", "Node 0, zone DMA\n", "zone DMA of node 0 has no free counts"},
        Hostile{"non-numeric", "Node 0, zone DMA 0 x 0\n",
                "line 1: free count of order 1 'x' is not a decimal number"},
        Hostile{"hex", "Node 0, zone DMA 0 0x10 0\n", "'0x10' is not a decimal number"},
        Hostile{"overflow", "Node 0, zone DMA 18446744073709551616\n",
                "free count of order 0 '18446744073709551616' is larger than 2^64-1"},
        Hostile{"negative", "Node 0, zone DMA -1\n", "'-1' has a sign"},
        Hostile{"plus", "Node 0, zone DMA +1\n", "'+1' has a sign"},
        Hostile{"duplicate zone",
                "Node 0, zone DMA 1 2\nNode 1, zone DMA 1 2\nNode 0, zone DMA 3 4\n",
                "line 3: zone DMA of node 0 is listed twice (first on line 1)"},
        Hostile{"node not a number", "Node x, zone DMA 1\n",
                "node number 'x' is not a decimal number"},
        Hostile{"node too large", "Node 70000, zone DMA 1\n",
                "node number 70000 is larger than 65535"},
        Hostile{"missing comma", "Node 0 zone DMA 1\n", "expected a line starting with"},
        Hostile{"zone name not a name", "Node 0, zone 123 1 2\n", "'123' is not a zone name"},
        Hostile{"pagetypeinfo text", "Node    0, zone      DMA, type    Unmovable      0      1\n",
                "'DMA,' is not a zone name"},
        Hostile{"65 orders",
                "Node 0, zone DMA 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
                "0 0 0 0 0 "
                "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
                "65 order columns is more than any kernel has (64)"},
        Hostile{"garbage", "\x01\x02\x03 binary\n", "expected a line starting with"}),
    [](const auto& p) {
        std::string n = p.param.name;
        for (auto& ch : n)
            if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
        return n;
    });

}  // namespace
