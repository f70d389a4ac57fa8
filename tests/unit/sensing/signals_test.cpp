// Derived signals against values computed by hand with the kernel's integer arithmetic (the
// arithmetic is written next to each expectation so a reader can check it without running
// anything).
#include "fragtune/sensing/signals.hpp"

#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fragtune/sensing/sample.hpp"

using namespace fragtune;

namespace {

// free_blocks = {4, 2, 1, 0}: orders 0..3.
// free_pages = 4*1 + 2*2 + 1*4 + 0*8 = 12, free_blocks_total = 4 + 2 + 1 + 0 = 7.
const std::vector<uint64_t> kSmall = {4, 2, 1, 0};

ZoneInfoZone zone(int node, std::string name, uint64_t free, uint64_t min, uint64_t low,
                  uint64_t high, uint64_t present, uint64_t managed) {
    ZoneInfoZone z;
    z.node = node;
    z.zone = std::move(name);
    z.free = free;
    z.min = min;
    z.low = low;
    z.high = high;
    z.spanned = present;
    z.present = present;
    z.managed = managed;
    return z;
}

// Two nodes, four orders (so compaction_order is 3):
//   node 0 DMA     buddy {0,0,0,2}   = 16 pages; zoneinfo free 16, min 10, low 20, high 30, present
//   100 node 0 Normal  buddy {4,2,1,0}   = 12 pages; zoneinfo free 12, min 12, low 15, high 18,
//   present 300 node 0 Movable present 0, managed 0: not populated, no buddyinfo line node 1 Normal
//   buddy {0,0,0,250} = 1000 pages; free 1000, min 100, low 200, high 300, present 2000
Sample synthetic_sample() {
    Sample s;
    s.buddy.orders = 4;
    s.buddy.zones = {
        {0, "DMA", {0, 0, 0, 2}}, {0, "Normal", kSmall}, {1, "Normal", {0, 0, 0, 250}}};
    s.zoneinfo.zones = {
        zone(0, "DMA", 16, 10, 20, 30, 100, 90), zone(0, "Normal", 12, 12, 15, 18, 300, 280),
        zone(0, "Movable", 0, 0, 0, 0, 0, 0), zone(1, "Normal", 1000, 100, 200, 300, 2000, 1900)};
    s.meminfo.kib = {{"MemTotal", 8000},  {"MemFree", 4000},   {"SReclaimable", 300},
                     {"SUnreclaim", 100}, {"SwapTotal", 2048}, {"SwapFree", 1024}};
    return s;
}

}  // namespace

// ---- the kernel's index functions ---------------------------------------------------------------

TEST(SignalsIndex, FillContigPageInfoCountsLikeTheKernel) {
    // order 1: suitable = blocks of order >= 1, each split into 2^(o-1) order-1 blocks = 2*1 + 1*2
    // = 4
    ContigInfo c1 = fill_contig_page_info(kSmall, 1);
    EXPECT_EQ(c1.free_pages, 12u);
    EXPECT_EQ(c1.free_blocks_total, 7u);
    EXPECT_EQ(c1.free_blocks_suitable, 4u);
    // order 0: every free page is a suitable order-0 block: 12
    EXPECT_EQ(fill_contig_page_info(kSmall, 0).free_blocks_suitable, 12u);
    // order 2: only the single order-2 block = 1
    EXPECT_EQ(fill_contig_page_info(kSmall, 2).free_blocks_suitable, 1u);
    // order 3: none
    EXPECT_EQ(fill_contig_page_info(kSmall, 3).free_blocks_suitable, 0u);
    // An order beyond the free lists: nothing suitable, totals unchanged.
    ContigInfo c9 = fill_contig_page_info(kSmall, 9);
    EXPECT_EQ(c9.free_pages, 12u);
    EXPECT_EQ(c9.free_blocks_suitable, 0u);
}

TEST(SignalsIndex, UnusableFreeIndex) {
    // order 0: (12 - 12<<0) * 1000 / 12 = 0
    EXPECT_EQ(unusable_free_index_permille(fill_contig_page_info(kSmall, 0), 0), 0);
    // order 1: (12 - 4<<1) * 1000 / 12 = 4000 / 12 = 333
    EXPECT_EQ(unusable_free_index_permille(fill_contig_page_info(kSmall, 1), 1), 333);
    // order 2: (12 - 1<<2) * 1000 / 12 = 8000 / 12 = 666 (truncated, as div_u64 does)
    EXPECT_EQ(unusable_free_index_permille(fill_contig_page_info(kSmall, 2), 2), 666);
    // order 3: (12 - 0) * 1000 / 12 = 1000
    EXPECT_EQ(unusable_free_index_permille(fill_contig_page_info(kSmall, 3), 3), 1000);
    // Nothing free at all counts as all unusable.
    EXPECT_EQ(unusable_free_index_permille(fill_contig_page_info({0, 0, 0}, 1), 1), 1000);
    EXPECT_EQ(unusable_free_index_permille(fill_contig_page_info({}, 0), 0), 1000);
}

TEST(SignalsIndex, FragmentationIndex) {
    // Orders 0..2 would succeed: -1000.
    for (int o = 0; o <= 2; ++o)
        EXPECT_EQ(fragmentation_index_permille(fill_contig_page_info(kSmall, o), o), -1000) << o;
    // order 3 fails: requested = 8; 1000 - (1000 + 12*1000/8) / 7 = 1000 - (1000 + 1500) / 7
    //                = 1000 - 357 = 643  ("towards fragmentation")
    EXPECT_EQ(fragmentation_index_permille(fill_contig_page_info(kSmall, 3), 3), 643);
    // Many order-0 blocks, order 9 requested: {1000}: free 1000, total 1000, requested 512;
    // 1000 - (1000 + 1000*1000/512) / 1000 = 1000 - (1000 + 1953) / 1000 = 1000 - 2 = 998
    EXPECT_EQ(fragmentation_index_permille(fill_contig_page_info({1000}, 9), 9), 998);
    // One order-2 block, order 3 requested: 1000 - (1000 + 4*1000/8) / 1 = 1000 - 1500 = -500. The
    // kernel's formula leaves [0, 1000] here and we return what the kernel would.
    EXPECT_EQ(fragmentation_index_permille(fill_contig_page_info({0, 0, 1}, 3), 3), -500);
    // No free blocks: 0.
    EXPECT_EQ(fragmentation_index_permille(fill_contig_page_info({0, 0, 0, 0}, 3), 3), 0);
}

TEST(SignalsIndex, ExtfragForOrder) {
    // order 1: (12 - 4<<1) * 100 / 12 = 400 / 12 = 33
    EXPECT_EQ(extfrag_for_order_percent(fill_contig_page_info(kSmall, 1), 1), 33);
    // order 2: (12 - 4) * 100 / 12 = 66
    EXPECT_EQ(extfrag_for_order_percent(fill_contig_page_info(kSmall, 2), 2), 66);
    EXPECT_EQ(extfrag_for_order_percent(fill_contig_page_info(kSmall, 3), 3), 100);
    // Unlike the unusable index, nothing free means no fragmentation: 0.
    EXPECT_EQ(extfrag_for_order_percent(fill_contig_page_info({0, 0}, 1), 1), 0);
}

TEST(SignalsIndex, HostileCountsSaturateInsteadOfWrapping) {
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    const std::vector<uint64_t> huge = {kMax, kMax, kMax};
    ContigInfo c = fill_contig_page_info(huge, 1);
    EXPECT_EQ(c.free_pages, kMax);
    EXPECT_EQ(c.free_blocks_total, kMax);
    int u = unusable_free_index_permille(c, 1);
    EXPECT_GE(u, 0);
    EXPECT_LE(u, 1000);
    int e = extfrag_for_order_percent(c, 1);
    EXPECT_GE(e, 0);
    EXPECT_LE(e, 100);
    // A 70-column line: shifting by >= 64 must not be undefined behaviour.
    std::vector<uint64_t> wide(70, 1);
    ContigInfo w = fill_contig_page_info(wide, 65);
    EXPECT_EQ(w.free_pages, kMax);
    EXPECT_EQ(fragmentation_index_permille(w, 65), 0);
}

TEST(SignalsIndex, CompactionOrder) {
    EXPECT_EQ(compaction_order(11), 9);  // x86-64 before 6.8 (MAX_ORDER 11)
    EXPECT_EQ(compaction_order(10), 9);
    EXPECT_EQ(compaction_order(4), 3);  // a kernel whose largest order is 3
    EXPECT_EQ(compaction_order(1), 0);
    EXPECT_EQ(compaction_order(0), 9);  // unknown: the huge page order
}

// ---- derive_signals: zones, nodes, targets ------------------------------------------------------

TEST(SignalsDerive, ZonesWatermarksAndIndices) {
    Sample s = synthetic_sample();
    derive_signals(nullptr, s, SignalOptions{{1, 3, 9, 1}});
    const Signals& g = s.signals;

    // Movable (managed 0) is left out.
    ASSERT_EQ(g.zones.size(), 3u);
    EXPECT_EQ(g.zones[0].zone, "DMA");
    EXPECT_EQ(g.zones[1].zone, "Normal");
    EXPECT_EQ(g.zones[2].node, 1);
    EXPECT_EQ(g.zones[1].free_blocks, kSmall);
    EXPECT_EQ(g.zones[1].unusable_permille, (std::vector<int>{0, 333, 666, 1000}));
    EXPECT_EQ(g.zones[1].extfrag_permille, (std::vector<int>{-1000, -1000, -1000, 643}));

    // Watermarks: DMA 16 > min 10 but < low 20 and < high 30; node-0 Normal 12 <= min 12 (so also
    // below low 15 and high 18); node-1 Normal 1000 above all.
    EXPECT_EQ(g.zones_at_or_below_min, 1u);
    EXPECT_EQ(g.zones_below_low, 2u);
    EXPECT_EQ(g.zones_below_high, 2u);
    // headrooms: 16-20 = -4, 12-15 = -3, 1000-200 = 800 -> -4
    EXPECT_EQ(g.min_headroom_pages, -4);
    EXPECT_EQ(g.free_pages, 16u + 12u + 1000u);
    EXPECT_EQ(g.min_pages, 10u + 12u + 100u);
    EXPECT_EQ(g.low_pages, 20u + 15u + 200u);
    EXPECT_EQ(g.high_pages, 30u + 18u + 300u);

    // Fragmentation score at compaction order 3 (four orders).
    //   node 0: node_present = 100 + 300 + 0 = 400
    //     DMA {0,0,0,2}: extfrag(3) = (16 - 2<<3)*100/16 = 0 -> 100*0/401 = 0
    //     Normal {4,2,1,0}: extfrag(3) = 100 -> 300*100/401 = 30000/401 = 74
    //   node 1: {0,0,0,250}: extfrag 0 -> 0
    EXPECT_EQ(g.compaction_order, 3);
    ASSERT_EQ(g.nodes.size(), 2u);
    EXPECT_EQ(g.nodes[0].node, 0);
    EXPECT_EQ(g.nodes[0].fragmentation_score, 74);
    EXPECT_EQ(g.nodes[1].fragmentation_score, 0);
    EXPECT_EQ(g.max_fragmentation_score, 74);

    // Targets: 9 does not exist with four orders, the second 1 is a duplicate.
    // combined free lists {4, 2, 1, 252}: free = 4 + 4 + 4 + 2016 = 2028 pages
    //   order 1: suitable = 2 + 1*2 + 252*4 = 1012; unusable = (2028 - 2024)*1000/2028 = 1
    //            worst zone: node-0 Normal 333
    //   order 3: suitable = 252; unusable = (2028 - 2016)*1000/2028 = 12000/2028 = 5
    //            worst zone: node-0 Normal 1000
    ASSERT_EQ(g.targets.size(), 2u);
    EXPECT_EQ(g.targets[0].order, 1);
    EXPECT_EQ(g.targets[0].free_blocks, 1012u);
    EXPECT_EQ(g.targets[0].unusable_permille, 1);
    EXPECT_EQ(g.targets[0].worst_zone_unusable_permille, 333);
    EXPECT_EQ(g.targets[1].order, 3);
    EXPECT_EQ(g.targets[1].free_blocks, 252u);
    EXPECT_EQ(g.targets[1].unusable_permille, 5);
    EXPECT_EQ(g.targets[1].worst_zone_unusable_permille, 1000);

    // Meminfo: present fields copied, MemAvailable absent (never a made-up zero).
    EXPECT_EQ(g.mem_total_kib, 8000u);
    EXPECT_EQ(g.mem_free_kib, 4000u);
    EXPECT_FALSE(g.mem_available_kib.has_value());
    EXPECT_EQ(g.sreclaimable_kib, 300u);
    EXPECT_EQ(g.sunreclaim_kib, 100u);
    EXPECT_EQ(g.swap_total_kib, 2048u);
    EXPECT_EQ(g.swap_free_kib, 1024u);

    // Without a previous sample there are no rates.
    EXPECT_EQ(g.interval_usec, 0u);
    EXPECT_TRUE(g.counters.empty());
}

TEST(SignalsDerive, ZoneWithoutBuddyLineKeepsWatermarksButNoIndices) {
    Sample s = synthetic_sample();
    s.buddy.zones.erase(s.buddy.zones.begin());  // DMA vanished from buddyinfo
    derive_signals(nullptr, s, {});
    ASSERT_EQ(s.signals.zones.size(), 3u);
    EXPECT_TRUE(s.signals.zones[0].free_blocks.empty());
    EXPECT_TRUE(s.signals.zones[0].unusable_permille.empty());
    EXPECT_EQ(s.signals.zones_below_low, 2u);
}

// ---- counters -----------------------------------------------------------------------------------

TEST(SignalsCounters, DeltasResetsAbsenceAndOldKernelSums) {
    Sample prev = synthetic_sample(), cur = synthetic_sample();
    prev.mono_usec = 1'000'000;
    cur.mono_usec = 3'000'000;  // 2 s
    // A 4.4-era vmstat: single allocstall, per-zone pgscan_direct_*, workingset_refault.
    prev.vmstat.counters = {{"compact_stall", 10},         {"compact_fail", 5},
                            {"pgscan_direct_normal", 100}, {"pgscan_direct_dma", 1},
                            {"pgscan_direct_throttle", 7}, {"allocstall", 3},
                            {"workingset_refault", 50},    {"only_before", 1}};
    cur.vmstat.counters = {{"compact_stall", 14},         {"compact_fail", 2},
                           {"pgscan_direct_normal", 160}, {"pgscan_direct_dma", 3},
                           {"pgscan_direct_throttle", 9}, {"allocstall", 5},
                           {"workingset_refault", 80},    {"only_after", 2}};
    derive_signals(&prev, cur, {});
    const Signals& g = cur.signals;
    EXPECT_EQ(g.interval_usec, 2'000'000u);

    auto stall = g.counter("compact_stall");  // 14 - 10 = 4 in 2 s = 2/s
    ASSERT_TRUE(stall);
    EXPECT_EQ(stall->delta, 4u);
    EXPECT_DOUBLE_EQ(stall->per_sec, 2.0);
    EXPECT_FALSE(stall->reset);

    auto fail = g.counter("compact_fail");  // 5 -> 2 went backwards
    ASSERT_TRUE(fail);
    EXPECT_TRUE(fail->reset);
    EXPECT_EQ(fail->delta, 0u);
    EXPECT_DOUBLE_EQ(fail->per_sec, 0.0);

    // pgscan_direct = (160 + 3) - (100 + 1) = 62 -> 31/s; pgscan_direct_throttle is not a zone
    // variant.
    auto scan = g.counter("pgscan_direct");
    ASSERT_TRUE(scan);
    EXPECT_EQ(scan->delta, 62u);
    EXPECT_DOUBLE_EQ(scan->per_sec, 31.0);

    auto alloc = g.counter("allocstall");  // 5 - 3 = 2
    ASSERT_TRUE(alloc);
    EXPECT_EQ(alloc->delta, 2u);

    auto refault = g.counter("workingset_refault_file");  // 80 - 50 = 30 -> 15/s
    ASSERT_TRUE(refault);
    EXPECT_EQ(refault->delta, 30u);
    EXPECT_DOUBLE_EQ(refault->per_sec, 15.0);

    // Present in only one sample, or in neither: absent.
    EXPECT_FALSE(g.counter("only_before"));
    EXPECT_FALSE(g.counter("only_after"));
    EXPECT_FALSE(g.counter("pgsteal_direct"));
    EXPECT_FALSE(g.counter("thp_fault_fallback"));
}

TEST(SignalsCounters, ModernKernelSumsAllocstallZonesAndKeepsSingleCounters) {
    Sample prev = synthetic_sample(), cur = synthetic_sample();
    prev.mono_usec = 10'000'000;
    cur.mono_usec = 10'500'000;  // 0.5 s
    prev.vmstat.counters = {{"allocstall_dma32", 1},       {"allocstall_normal", 10},
                            {"allocstall_movable", 0},     {"pgscan_direct", 1000},
                            {"pgscan_direct_throttle", 5}, {"workingset_refault_file", 7},
                            {"workingset_refault_anon", 3}};
    cur.vmstat.counters = {{"allocstall_dma32", 2},         {"allocstall_normal", 13},
                           {"allocstall_movable", 0},       {"pgscan_direct", 1100},
                           {"pgscan_direct_throttle", 500}, {"workingset_refault_file", 9},
                           {"workingset_refault_anon", 3}};
    derive_signals(&prev, cur, {});
    const Signals& g = cur.signals;
    // allocstall = (2 + 13 + 0) - (1 + 10 + 0) = 4 in 0.5 s = 8/s
    auto alloc = g.counter("allocstall");
    ASSERT_TRUE(alloc);
    EXPECT_EQ(alloc->delta, 4u);
    EXPECT_DOUBLE_EQ(alloc->per_sec, 8.0);
    // The kernel's own pgscan_direct, untouched by pgscan_direct_throttle.
    EXPECT_EQ(g.counter("pgscan_direct")->delta, 100u);
    EXPECT_EQ(g.counter("workingset_refault_file")->delta, 2u);
    // The raw per-zone counters are there as well.
    EXPECT_EQ(g.counter("allocstall_normal")->delta, 3u);
}

TEST(SignalsCounters, NoRatesWhenTimeDidNotAdvance) {
    Sample prev = synthetic_sample(), cur = synthetic_sample();
    prev.mono_usec = cur.mono_usec = 5'000'000;
    prev.vmstat.counters = {{"compact_stall", 1}};
    cur.vmstat.counters = {{"compact_stall", 2}};
    derive_signals(&prev, cur, {});
    EXPECT_EQ(cur.signals.interval_usec, 0u);
    EXPECT_TRUE(cur.signals.counters.empty());
}

// ---- PSI ----------------------------------------------------------------------------------------

TEST(SignalsPsi, StallTimeAndShareOfTheInterval) {
    Sample prev = synthetic_sample(), cur = synthetic_sample();
    prev.mono_usec = 1'000'000;
    cur.mono_usec = 3'000'000;
    prev.psi = Psi{{0.5, 0.4, 0.3, 1'000'000}, PsiLine{0.1, 0.1, 0.1, 500'000}};
    cur.psi = Psi{{2.5, 1.0, 0.5, 1'300'000}, PsiLine{0.7, 0.2, 0.1, 600'000}};
    derive_signals(&prev, cur, {});
    const Signals& g = cur.signals;
    EXPECT_DOUBLE_EQ(*g.psi_some_avg10, 2.5);
    EXPECT_DOUBLE_EQ(*g.psi_full_avg10, 0.7);
    EXPECT_EQ(*g.psi_some_stall_usec, 300'000u);  // 1.3 s - 1.0 s
    EXPECT_EQ(*g.psi_full_stall_usec, 100'000u);
    EXPECT_DOUBLE_EQ(*g.psi_some_percent, 15.0);  // 0.3 s of 2 s
}

TEST(SignalsPsi, AbsentWithoutPsiAndNoDeltaWithoutPrevious) {
    Sample none = synthetic_sample();
    derive_signals(nullptr, none, {});
    EXPECT_FALSE(none.signals.psi_some_avg10);
    EXPECT_FALSE(none.signals.psi_some_percent);

    Sample prev = synthetic_sample(), cur = synthetic_sample();
    prev.mono_usec = 1;
    cur.mono_usec = 1'000'001;
    cur.psi = Psi{{1.0, 0, 0, 42}, std::nullopt};  // previous sample had no PSI; "some" only
    derive_signals(&prev, cur, {});
    EXPECT_DOUBLE_EQ(*cur.signals.psi_some_avg10, 1.0);
    EXPECT_FALSE(cur.signals.psi_full_avg10);
    EXPECT_FALSE(cur.signals.psi_some_stall_usec);
    EXPECT_FALSE(cur.signals.psi_some_percent);
}

TEST(SignalsPsi, TotalGoingBackwardsIsNoStallAndShareIsCapped) {
    Sample prev = synthetic_sample(), cur = synthetic_sample();
    prev.mono_usec = 0;
    cur.mono_usec = 1'000'000;
    prev.psi = Psi{{0, 0, 0, 5'000'000}, std::nullopt};
    cur.psi = Psi{{0, 0, 0, 4'000'000}, std::nullopt};  // cgroup recreated
    derive_signals(&prev, cur, {});
    EXPECT_EQ(*cur.signals.psi_some_stall_usec, 0u);
    EXPECT_DOUBLE_EQ(*cur.signals.psi_some_percent, 0.0);

    cur.psi = Psi{{0, 0, 0, 6'000'100}, std::nullopt};  // 1.0001 s of stall in a 1 s interval
    derive_signals(&prev, cur, {});
    EXPECT_EQ(*cur.signals.psi_some_stall_usec, 1'000'100u);
    EXPECT_DOUBLE_EQ(*cur.signals.psi_some_percent, 100.0);
}

// ---- kernel-log failures ------------------------------------------------------------------------

TEST(SignalsFailures, CountedByOrderAtomicAndVmalloc) {
    Sample s = synthetic_sample();
    AllocFailure a1{FailureKind::page, "swapper/0", 1, 0xa20, "GFP_ATOMIC", true, std::nullopt};
    AllocFailure k1{FailureKind::page, "cc1", 1, 0xcc0, "GFP_KERNEL", false, std::nullopt};
    AllocFailure a3{FailureKind::page, "kworker/1:0", 3, 0x20, "", true, std::nullopt};
    AllocFailure v{FailureKind::vmalloc,    "modprobe", 2,    0xdc0,
                   "GFP_KERNEL|__GFP_ZERO", false,      16384};
    s.failures = {a1, k1, a3, v};
    s.kmsg_lost = 7;
    derive_signals(nullptr, s, {});
    EXPECT_EQ(s.signals.failures_by_order, (std::map<int, uint32_t>{{1, 2}, {3, 1}}));
    EXPECT_EQ(s.signals.atomic_failures_by_order, (std::map<int, uint32_t>{{1, 1}, {3, 1}}));
    EXPECT_EQ(s.signals.vmalloc_failures, 1u);
    EXPECT_EQ(s.signals.kmsg_lost, 7u);
}

// ---- the live 6.18 fixture ----------------------------------------------------------------------

namespace {

std::string read_fixture(const std::string& rel) {
    std::ifstream in(std::string(FRAGTUNE_FIXTURES_DIR) + "/live-6.18-vm/proc/" + rel);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST(SignalsLiveFixture, IndicesScoreAndWatermarksOfA618Vm) {
    Sample s;
    auto buddy = parse_buddyinfo(read_fixture("buddyinfo"));
    ASSERT_TRUE(buddy.ok()) << buddy.error().describe();
    auto zones = parse_zoneinfo(read_fixture("zoneinfo"));
    ASSERT_TRUE(zones.ok()) << zones.error().describe();
    s.buddy = *buddy;
    s.zoneinfo = *zones;
    derive_signals(nullptr, s, SignalOptions{{3, 9}});
    const Signals& g = s.signals;

    // DMA, DMA32, Normal are populated; Movable and Device have managed 0.
    ASSERT_EQ(g.zones.size(), 3u);
    const ZoneSignals& dma = g.zones[0];
    const ZoneSignals& dma32 = g.zones[1];
    const ZoneSignals& normal = g.zones[2];
    EXPECT_EQ(normal.zone, "Normal");

    // Normal {5071,829,540,318,88,36,18,14,7,5,26}:
    //   free = 5071 + 829*2 + 540*4 + 318*8 + 88*16 + 36*32 + 18*64 + 14*128 + 7*256 + 5*512 +
    //   26*1024
    //        = 47913 pages (equal to zoneinfo's "pages free")
    EXPECT_EQ(fill_contig_page_info(normal.free_blocks, 0).free_pages, 47913u);
    //   order 3: pages in orders 0..2 = 5071 + 1658 + 2160 = 8889 -> 8889000 / 47913 = 185
    EXPECT_EQ(normal.unusable_permille[3], 185);
    //   order 9: suitable = 5 + 26*2 = 57 -> 57*512 = 29184 usable -> (47913 - 29184)*1000/47913
    //          = 18729000 / 47913 = 390
    EXPECT_EQ(normal.unusable_permille[9], 390);
    //   an order-9 block exists, so the fragmentation index says "would succeed"
    EXPECT_EQ(normal.extfrag_permille[9], -1000);
    // DMA {0,0,0,0,0,0,0,0,1,1,3} = 256 + 512 + 3072 = 3840 pages
    //   order 9: suitable = 1 + 3*2 = 7 -> 3584 usable -> 256000 / 3840 = 66
    EXPECT_EQ(dma.unusable_permille[9], 66);
    EXPECT_EQ(dma.unusable_permille[3], 0);  // everything free is in order >= 8
    // DMA32: 772915 pages, order 9: suitable = 2 + 752*2 = 1506 -> 771072 usable
    //   -> 1843000 / 772915 = 2
    EXPECT_EQ(dma32.unusable_permille[9], 2);

    // Fragmentation score at order 9, node_present = 3998 + 782336 + 5505024 + 0 + 0 = 6291358
    //   DMA:    extfrag = 25600/3840 = 6     -> 3998*6/6291359 = 0
    //   DMA32:  extfrag = 184300/772915 = 0  -> 0
    //   Normal: extfrag = 1872900/47913 = 39 -> 5505024*39/6291359 = 214695936/6291359 = 34
    EXPECT_EQ(g.compaction_order, 9);
    ASSERT_EQ(g.nodes.size(), 1u);
    EXPECT_EQ(g.nodes[0].fragmentation_score, 34);

    // Targets over DMA + DMA32 + Normal combined:
    //   order 3 suitable = DMA (1*32 + 1*64 + 3*128 = 480)
    //                    + DMA32 (2 + 5*2 + 4*4 + 3*8 + 3*16 + 4*32 + 2*64 + 752*128 = 96612)
    //                    + Normal (318 + 176 + 144 + 144 + 224 + 224 + 320 + 3328 = 4878) = 101970
    //   free = 3840 + 772915 + 47913 = 824668; unusable = (824668 - 815760)*1000/824668 = 10
    ASSERT_EQ(g.targets.size(), 2u);
    EXPECT_EQ(g.targets[0].order, 3);
    EXPECT_EQ(g.targets[0].free_blocks, 101970u);
    EXPECT_EQ(g.targets[0].unusable_permille, 10);
    EXPECT_EQ(g.targets[0].worst_zone_unusable_permille, 185);
    //   order 9 suitable = 7 + 1506 + 57 = 1570 -> 803840 usable -> 20828000 / 824668 = 25
    EXPECT_EQ(g.targets[1].free_blocks, 1570u);
    EXPECT_EQ(g.targets[1].unusable_permille, 25);
    EXPECT_EQ(g.targets[1].worst_zone_unusable_permille, 390);

    // Far above every watermark; the tightest zone is DMA: 3840 - 71 = 3769 pages above low.
    EXPECT_EQ(g.zones_at_or_below_min, 0u);
    EXPECT_EQ(g.zones_below_low, 0u);
    EXPECT_EQ(g.zones_below_high, 0u);
    EXPECT_EQ(g.min_headroom_pages, 3769);
    EXPECT_EQ(g.min_pages, 57u + 11483u + 5355u);
}

TEST(Signals, BoostedMinIsNotAMinWatermarkDip) {
    // boost-6.18: the live VM with a watermark boost of 45000 pages on Normal (after a fragmenting
    // fallback); zoneinfo prints min = 5355 + 45000, free is 47913. Atomic order-0 allocations test
    // the unboosted min, so this is no dip (it counted as one before the profile work).
    const KernelFs fs(std::string(FRAGTUNE_FIXTURES_DIR) + "/boost-6.18");
    Sampler sampler(fs, SamplerOptions{});
    auto s = sampler.take(1'000'000);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    const ZoneSignals* normal = nullptr;
    for (const auto& z : s->signals.zones)
        if (z.zone == "Normal") normal = &z;
    ASSERT_NE(normal, nullptr);
    EXPECT_EQ(normal->boost_pages, 45000u);
    EXPECT_LE(normal->free_pages, normal->min_pages);  // below the printed (boosted) min
    EXPECT_EQ(s->signals.zones_at_or_below_min, 0u);
    // Below the unboosted min it is one.
    auto zi = s->zoneinfo;
    for (auto& z : zi.zones)
        if (z.zone == "Normal") z.free = 5000;
    Sample t = *s;
    t.zoneinfo = zi;
    derive_signals(nullptr, t, SignalOptions{});
    EXPECT_EQ(t.signals.zones_at_or_below_min, 1u);
}
