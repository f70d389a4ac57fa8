// parse_zoneinfo: the zoneinfo layouts of 3.10, 4.19, 5.15, 6.8 (64 KiB pages) and a live 6.18
// capture, then hostile text.
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "fixture_text.hpp"
#include "fragtune/sensing/parsers.hpp"

using namespace fragtune;

namespace {

using fragtune::test::fixture;

ZoneInfo parse_ok(const std::string& dir) {
    auto z = parse_zoneinfo(fixture(dir + "/proc/zoneinfo"));
    EXPECT_TRUE(z.ok()) << dir << ": " << (z.ok() ? "" : z.error().describe());
    return z.ok() ? *z : ZoneInfo{};
}

const ZoneInfoZone* find(const ZoneInfo& z, int node, const std::string& name) {
    for (const auto& zz : z.zones)
        if (zz.node == node && zz.zone == name) return &zz;
    return nullptr;
}

TEST(ZoneInfo, Live618Capture) {
    const auto z = parse_ok("live-6.18-vm");
    ASSERT_EQ(z.zones.size(), 5u);
    const auto* dma = find(z, 0, "DMA");
    ASSERT_NE(dma, nullptr);
    EXPECT_EQ(dma->free, 3840u);
    EXPECT_EQ(dma->min, 57u);
    EXPECT_EQ(dma->low, 71u);
    EXPECT_EQ(dma->high, 85u);
    EXPECT_EQ(dma->boost, 0u);
    EXPECT_EQ(dma->promo, 99u);
    EXPECT_EQ(dma->spanned, 4095u);
    EXPECT_EQ(dma->present, 3998u);
    EXPECT_EQ(dma->managed, 3840u);
    EXPECT_EQ(dma->cma, 0u);
    EXPECT_EQ(dma->protection, (std::vector<uint64_t>{0, 3019, 4427, 4427, 4427}));
    EXPECT_EQ(dma->nr_free_pages, 3840u);
    EXPECT_EQ(dma->stats.at("nr_free_pages_blocks"), 3584u);
    EXPECT_EQ(dma->stats.at("start_pfn"), 1u);
    EXPECT_EQ(dma->stats.at("node_unreclaimable"), 0u);
    EXPECT_FALSE(dma->stats.contains("count"));  // per-CPU lines are not zone counters
    EXPECT_FALSE(dma->stats.contains("high_max"));

    const auto* normal = find(z, 0, "Normal");
    ASSERT_NE(normal, nullptr);
    EXPECT_EQ(normal->managed, 360448u);
    EXPECT_EQ(normal->stats.at("start_pfn"), 1048576u);

    const auto* movable = find(z, 0, "Movable");
    ASSERT_NE(movable, nullptr);
    EXPECT_EQ(movable->present, 0u);
    EXPECT_EQ(movable->min, 32u);
    EXPECT_TRUE(movable->stats.empty());
    EXPECT_FALSE(movable->nr_free_pages.has_value());

    ASSERT_EQ(z.nodes.size(), 1u);
    EXPECT_EQ(z.nodes[0].node, 0);
    EXPECT_EQ(z.nodes[0].stats.at("nr_inactive_file"), 207302u);
    EXPECT_EQ(z.nodes[0].stats.at("workingset_refault_file"), 0u);
}

TEST(ZoneInfo, TwoNodes419) {
    const auto z = parse_ok("numa2-4.19");
    ASSERT_EQ(z.zones.size(), 10u);  // every zone of both nodes, populated or not
    ASSERT_EQ(z.nodes.size(), 2u);
    EXPECT_EQ(z.nodes[0].node, 0);
    EXPECT_EQ(z.nodes[1].node, 1);
    // 4.x counter names, and the blank-named hidden counter skipped.
    EXPECT_TRUE(z.nodes[1].stats.contains("workingset_refault"));
    EXPECT_FALSE(z.nodes[1].stats.contains("workingset_refault_file"));
    EXPECT_FALSE(z.nodes[0].stats.contains(""));
    const auto* n1 = find(z, 1, "Normal");
    ASSERT_NE(n1, nullptr);
    EXPECT_EQ(n1->managed, 8257264u);
    EXPECT_FALSE(n1->boost.has_value());  // 5.0+
    EXPECT_FALSE(n1->promo.has_value());  // 6.1+
    EXPECT_FALSE(n1->cma.has_value());
    EXPECT_EQ(n1->protection.size(), 5u);
    const auto* n1dma = find(z, 1, "DMA");
    ASSERT_NE(n1dma, nullptr);
    EXPECT_EQ(n1dma->present, 0u);
    EXPECT_FALSE(n1dma->nr_free_pages.has_value());
}

TEST(ZoneInfo, Old310HasCountersInsideZonesAndNoNodeBlock) {
    const auto z = parse_ok("old-3.10");
    ASSERT_EQ(z.zones.size(), 3u);
    EXPECT_TRUE(z.nodes.empty());
    for (const auto& zz : z.zones) {
        ASSERT_TRUE(zz.nr_free_pages.has_value()) << zz.zone;
        EXPECT_EQ(*zz.nr_free_pages, zz.free);
        EXPECT_TRUE(zz.stats.contains("scanned"));
        EXPECT_TRUE(zz.stats.contains("nr_inactive_file"));
        EXPECT_TRUE(zz.stats.contains("all_unreclaimable"));
        EXPECT_TRUE(zz.stats.contains("inactive_ratio"));
        EXPECT_EQ(zz.protection.size(), 4u);
        EXPECT_FALSE(zz.boost.has_value());
    }
}

TEST(ZoneInfo, Arm64With64KPages) {
    const auto z = parse_ok("arm64-64k-6.8");
    ASSERT_EQ(z.zones.size(), 5u);
    const auto* dma32 = find(z, 0, "DMA32");
    ASSERT_NE(dma32, nullptr);
    EXPECT_EQ(dma32->present, 0u);
    const auto* normal = find(z, 0, "Normal");
    ASSERT_NE(normal, nullptr);
    EXPECT_EQ(normal->present, 999424u);
    EXPECT_TRUE(normal->promo.has_value());
    EXPECT_GT(normal->min, 40000u);  // the 5%-of-memory min_free_kbytes of 512 MiB pageblocks
}

TEST(ZoneInfo, SmallVmNormalZoneOfZeroPages) {
    const auto z = parse_ok("small-vm-5.15");
    const auto* normal = find(z, 0, "Normal");
    ASSERT_NE(normal, nullptr);
    EXPECT_EQ(normal->present, 0u);
    EXPECT_EQ(normal->managed, 0u);
    EXPECT_EQ(normal->free, 0u);
    EXPECT_TRUE(normal->boost.has_value());
    EXPECT_FALSE(normal->promo.has_value());
    const auto* dma32 = find(z, 0, "DMA32");
    ASSERT_NE(dma32, nullptr);
    EXPECT_EQ(dma32->boost, 1536u);
}

std::string crlf(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

TEST(ZoneInfo, CrlfAndTrailingBlanksParseTheSame) {
    const std::string text = fixture("live-6.18-vm/proc/zoneinfo");
    auto a = parse_zoneinfo(text);
    auto b = parse_zoneinfo(crlf(text));
    ASSERT_TRUE(a.ok() && b.ok()) << (b.ok() ? "" : b.error().describe());
    ASSERT_EQ(a->zones.size(), b->zones.size());
    for (size_t i = 0; i < a->zones.size(); ++i) {
        EXPECT_EQ(a->zones[i].stats, b->zones[i].stats);
        EXPECT_EQ(a->zones[i].protection, b->zones[i].protection);
        EXPECT_EQ(a->zones[i].high, b->zones[i].high);
    }
}

// A minimal 3.10-style zone, to build hostile variants from.
const std::string kZone =
    "Node 0, zone   Normal\n"
    "  pages free     100\n"
    "        min      10\n"
    "        low      12\n"
    "        high     15\n"
    "        spanned  1000\n"
    "        present  1000\n"
    "        managed  990\n"
    "        protection: (0, 0)\n";

struct Hostile {
    const char* name;
    std::string text;
    const char* error_has;
};

class ZoneInfoHostile : public ::testing::TestWithParam<Hostile> {};

TEST_P(ZoneInfoHostile, IsRefusedWithAPreciseMessage) {
    const auto& c = GetParam();
    auto z = parse_zoneinfo(c.text);
    ASSERT_FALSE(z.ok()) << c.name;
    EXPECT_NE(z.error().message.find("/proc/zoneinfo"), std::string::npos) << z.error().message;
    EXPECT_NE(z.error().message.find(c.error_has), std::string::npos) << z.error().message;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
    s.replace(s.find(from), from.size(), to);
    return s;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ZoneInfoHostile,
    ::testing::Values(
        Hostile{"empty", "", "no zones"},
        Hostile{"text before header", "  pages free 1\n" + kZone,
                "line 1: expected a 'Node <n>, zone <name>' line first"},
        Hostile{"truncated zone", kZone.substr(0, kZone.find("        managed")),
                "line 1: zone Normal of node 0 has no 'managed' line"},
        Hostile{"truncated mid-line", kZone.substr(0, kZone.find("spanned") + 9),
                "expected '<name> <value>', found 'spanned'"},
        Hostile{"missing pages free", replace(kZone, "  pages free     100\n", ""),
                "line 2: expected 'per-node stats' or 'pages free' after the zone header"},
        Hostile{"duplicate zone",
                kZone + "Node 1, zone Normal\n" + kZone.substr(kZone.find('\n') + 1) + kZone,
                "line 19: zone Normal of node 0 is listed twice (first on line 1)"},
        Hostile{
            "duplicate field",
            replace(kZone, "        low      12\n", "        low      12\n        low      13\n"),
            "line 5: 'low' is listed twice (first on line 4)"},
        Hostile{"duplicate counter", kZone + "      nr_free_pages 1\n      nr_free_pages 2\n",
                "line 11: 'nr_free_pages' is listed twice (first on line 10)"},
        Hostile{"non-numeric", replace(kZone, "min      10", "min      ten"),
                "line 3: value of 'min' 'ten' is not a decimal number"},
        Hostile{"overflow",
                replace(kZone, "pages free     100", "pages free     99999999999999999999"),
                "'pages free' '99999999999999999999' is larger than 2^64-1"},
        Hostile{"extra column", replace(kZone, "high     15", "high     15 16"),
                "line 5: expected '<name> <value>', found 'high     15 16'"},
        Hostile{"negative protection", replace(kZone, "(0, 0)", "(0, -1)"),
                "protection entry 1 '-1' has a sign"},
        Hostile{"protection not a list", replace(kZone, "(0, 0)", "0, 0"),
                "expected 'protection: (<n>, <n>, ...)'"},
        Hostile{"protection empty entry", replace(kZone, "(0, 0)", "(0, , 0)"),
                "protection entry 1 is missing"},
        Hostile{"extra token on header", replace(kZone, "zone   Normal", "zone   Normal extra"),
                "unexpected 'extra' after the zone name"},
        Hostile{"node stats twice",
                "Node 0, zone DMA\n  per-node stats\n      nr_dirty 1\n" +
                    kZone.substr(kZone.find('\n') + 1) + "Node 0, zone DMA32\n  per-node stats\n",
                "node 0 prints 'per-node stats' twice"},
        Hostile{"node stats late", replace(kZone, "        min      10\n", "  per-node stats\n"),
                "'per-node stats' must follow the zone header"},
        Hostile{"unrecognized line", kZone + "  something odd here\n",
                "expected '<name> <value>', found 'something odd here'"},
        Hostile{"binary", std::string("Node 0, zone DMA\n\x01\x02\n", 20), "line 2"}),
    [](const auto& p) {
        std::string n = p.param.name;
        for (auto& ch : n)
            if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
        return n;
    });

TEST(ZoneInfo, MinimalZoneParses) {
    auto z = parse_zoneinfo(kZone, "fixture");
    ASSERT_TRUE(z.ok()) << z.error().describe();
    ASSERT_EQ(z->zones.size(), 1u);
    EXPECT_EQ(z->zones[0].managed, 990u);
    EXPECT_FALSE(z->zones[0].nr_free_pages.has_value());
}

}  // namespace
