// The control law from literal samples: every rule fires, every guard refuses, and the text
// explains.
#include "fragtune/deciding/controller.hpp"

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "known_rules.hpp"

using namespace fragtune;

namespace {

constexpr uint64_t kSec = 1'000'000;
constexpr uint64_t kTick = 2 * kSec;

ZoneInfoZone zone(std::string name, uint64_t free, uint64_t min, uint64_t low, uint64_t high,
                  uint64_t managed) {
    ZoneInfoZone z;
    z.zone = std::move(name);
    z.free = free;
    z.min = min;
    z.low = low;
    z.high = high;
    z.managed = z.present = managed;
    return z;
}

OrderSignals target(int order, uint64_t free_blocks, int unusable_permille) {
    OrderSignals o;
    o.order = order;
    o.free_blocks = free_blocks;
    o.unusable_permille = o.worst_zone_unusable_permille = unusable_permille;
    return o;
}

// The zones of tests/fixtures/live-6.18-vm (managed pages), with free memory given per test.
ZoneInfo live_zones(uint64_t dma32_free = 772915, uint64_t normal_free = 47913) {
    ZoneInfo z;
    z.zones.push_back(zone("DMA", 3840, 57, 71, 85, 3840));
    z.zones.push_back(zone("DMA32", dma32_free, 11483, 14353, 17223, 772915));
    z.zones.push_back(zone("Normal", normal_free, 5355, 6693, 8031, 360448));
    z.zones.push_back(zone("Movable", 0, 32, 32, 32, 0));
    z.zones.push_back(zone("Device", 0, 0, 0, 0, 0));
    return z;
}

// A calm sample of the live VM at time `t_usec`: knobs at the fixture's values, no trouble at all.
Sample calm_sample(uint64_t t_usec) {
    Sample s;
    s.mono_usec = t_usec;
    s.profile = make_kernel_profile("6.18.0", 4096);
    s.kernel = s.profile.version;
    s.zoneinfo = live_zones();
    s.knobs = {67584, 10, 20, 100, 60};
    auto& g = s.signals;
    g.interval_usec = kTick;
    for (const auto& z : s.zoneinfo.zones) {
        if (z.managed == 0) continue;
        ZoneSignals zs;
        zs.zone = z.zone;
        zs.managed_pages = zs.present_pages = z.managed;
        zs.free_pages = z.free;
        zs.min_pages = z.min;
        zs.low_pages = z.low;
        zs.high_pages = z.high;
        g.zones.push_back(zs);
    }
    g.nodes.push_back({0, 10});
    g.targets = {target(3, 100000, 10), target(9, 1500, 100)};
    g.max_fragmentation_score = 10;
    g.psi_some_percent = 0.0;
    g.mem_total_kib = 24731700;
    g.mem_free_kib = 23481256;
    g.sreclaimable_kib = 58520;
    for (const char* c : {"allocstall", "pgscan_direct", "pgscan_kswapd", "compact_stall",
                          "compact_fail", "compact_success", "thp_fault_fallback",
                          "kswapd_low_wmark_hit_quickly", "workingset_refault_file", "pswpin"})
        g.counters[c] = CounterDelta{};
    return s;
}

void set_counter(Sample& s, const std::string& name, uint64_t delta) {
    double per_sec =
        static_cast<double>(delta) / (static_cast<double>(s.signals.interval_usec) / 1e6);
    s.signals.counters[name] = CounterDelta{delta, per_sec, false};
}

// A copy, so that find(decide(...), k) does not dangle. Every decision of the step must name a
// listed rule (known_rules.hpp).
std::optional<Decision> find(const Step& st, Knob k) {
    test::expect_listed_rules(st);
    for (const auto& d : st.decisions)
        if (d.knob == k) return d;
    return std::nullopt;
}

// Applies every applicable decision as the daemon would (right after deciding at `at_usec`), then
// moves the next sample's live knob values.
void apply(Step& st, uint64_t at_usec, Sample& next_sample) {
    for (const auto& d : st.decisions) {
        if (!d.apply || d.action == Action::compact) continue;
        record_applied(st.next, d.knob, d.new_value, at_usec);
        next_sample.knobs[index(d.knob)] = d.new_value;
    }
}

uint64_t lowmem_low_kib(const ZoneInfo& z, int64_t mfk, int64_t wsf) {
    uint64_t low = 0;
    auto wm = predict_watermarks(z, mfk, wsf);
    for (size_t i = 0; i < z.zones.size(); ++i)
        if (z.zones[i].zone == "DMA" || z.zones[i].zone == "DMA32" || z.zones[i].zone == "Normal")
            low += wm[i].low * 4;
    return low;
}
uint64_t lowmem_free_kib(const ZoneInfo& z) {
    uint64_t f = 0;
    for (const auto& zz : z.zones)
        if (zz.zone == "DMA" || zz.zone == "DMA32" || zz.zone == "Normal") f += zz.free * 4;
    return f;
}

}  // namespace

// ---- texts --------------------------------------------------------------------------------------

TEST(Controller, ToStringCoversEveryValue) {
    EXPECT_EQ(to_string(KnobStatus::tuning), "tuning");
    EXPECT_EQ(to_string(KnobStatus::pinned), "pinned");
    EXPECT_EQ(to_string(KnobStatus::conflict), "conflict");
    EXPECT_EQ(to_string(KnobStatus::failed), "failed");
    EXPECT_EQ(to_string(KnobStatus::unsupported), "unsupported");
    EXPECT_EQ(to_string(KnobStatus::disabled), "disabled");
    EXPECT_EQ(to_string(Action::raise), "raise");
    EXPECT_EQ(to_string(Action::lower), "lower");
    EXPECT_EQ(to_string(Action::decay), "decay");
    EXPECT_EQ(to_string(Action::kick), "kick");
    EXPECT_EQ(to_string(Action::refuse), "refuse");
    EXPECT_EQ(to_string(Action::pin), "pin");
    EXPECT_EQ(to_string(Action::compact), "compact");
}

TEST(Controller, FormatDecisionIsTheOneLine) {
    Decision d{Knob::min_free_kbytes,
               Action::raise,
               67584,
               101376,
               "atomic-failures",
               "3 atomic order-1 failures in 2.0 s",
               true};
    EXPECT_EQ(format_decision(d),
              "vm.min_free_kbytes 67584 -> 101376 [raise: atomic-failures] 3 atomic order-1 "
              "failures in 2.0 s");
    Decision c{Knob::compaction_proactiveness, Action::compact, 0, 0, "fragmentation", "x", true};
    EXPECT_EQ(format_decision(c), "vm.compact_memory <- 1 [compact: fragmentation] x");
    Decision p{Knob::swappiness,
               Action::pin,
               60,
               100,
               "admin-override",
               "changed to 100 by someone else (we wrote 60)",
               false};
    EXPECT_EQ(format_decision(p),
              "vm.swappiness 60 -> 100 [pin: admin-override] changed to 100 by someone else (we "
              "wrote 60)");
}

// ---- watermark prediction -----------------------------------------------------------------------

TEST(Controller, PredictWatermarksMatchesLiveFixture) {
    // Read managed and the printed watermarks straight from the captured /proc/zoneinfo.
    std::ifstream in(std::string(FRAGTUNE_FIXTURES_DIR) + "/live-6.18-vm/proc/zoneinfo");
    ASSERT_TRUE(in) << "fixture missing";
    ZoneInfo zi;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string w;
        ls >> w;
        if (w == "Node") {
            ZoneInfoZone z;
            std::string node, zone_kw;  // "Node 0, zone   Normal"
            ls >> node >> zone_kw >> z.zone;
            z.node = std::stoi(node);
            zi.zones.push_back(z);
        } else if (!zi.zones.empty() &&
                   (w == "min" || w == "low" || w == "high" || w == "managed")) {
            uint64_t v = 0;
            if (!(ls >> v)) continue;
            auto& z = zi.zones.back();
            (w == "min" ? z.min : w == "low" ? z.low : w == "high" ? z.high : z.managed) = v;
        }
    }
    ASSERT_EQ(zi.zones.size(), 5u);
    auto wm = predict_watermarks(zi, 67584, 10);
    ASSERT_EQ(wm.size(), 5u);
    for (size_t i = 0; i < wm.size(); ++i) {
        SCOPED_TRACE(zi.zones[i].zone);
        EXPECT_EQ(wm[i].zone, zi.zones[i].zone);
        EXPECT_EQ(wm[i].min, zi.zones[i].min);
        EXPECT_EQ(wm[i].low, zi.zones[i].low);
        EXPECT_EQ(wm[i].high, zi.zones[i].high);
    }
    // The numbers the brief quotes.
    EXPECT_EQ(wm[1].min, 11483u);
    EXPECT_EQ(wm[1].low, 14353u);
    EXPECT_EQ(wm[1].high, 17223u);
    EXPECT_EQ(wm[2].min, 5355u);
    EXPECT_EQ(wm[2].low, 6693u);
    // Movable with no pages: min clamped to 32, no gap (its proportional share is 0).
    EXPECT_EQ(wm[3].min, 32u);
    EXPECT_EQ(wm[3].high, 32u);
}

TEST(Controller, PredictWatermarksScaleFactorAndHighmemClamp) {
    ZoneInfo z;
    z.zones.push_back(zone("Normal", 0, 0, 0, 0, 4'000'000));
    z.zones.push_back(zone("Movable", 0, 0, 0, 0, 1'000'000));
    auto wm = predict_watermarks(z, 65536, 100);  // 16384 pages, all to Normal
    EXPECT_EQ(wm[0].min, 16384u);
    EXPECT_EQ(wm[0].low, 16384u + 40000u);  // 1% of 4M pages beats min/4
    EXPECT_EQ(wm[0].high, 16384u + 80000u);
    EXPECT_EQ(wm[1].min, 128u);           // clamp(1e6/1024 = 976, 32, 128)
    EXPECT_EQ(wm[1].low, 128u + 10000u);  // the gap is not capped for Movable
    EXPECT_EQ(min_free_cap_kib(z, SafetyConfig{}), 4'000'000 * 4 * 5 / 100);
}

// ---- initial state ------------------------------------------------------------------------------

TEST(Controller, InitialStateTakesOriginalsAndMarksUnsupportedAndDisabled) {
    Sample s = calm_sample(100 * kSec);
    s.knobs[index(Knob::compaction_proactiveness)].reset();  // kernel < 5.9
    Config c;
    c.knob(Knob::swappiness).enabled = false;
    c.knob(Knob::vfs_cache_pressure).baseline = 120;
    auto st = initial_state(s, c);
    EXPECT_EQ(st.knob(Knob::min_free_kbytes).original, 67584);
    EXPECT_EQ(st.knob(Knob::min_free_kbytes).baseline, 67584);
    EXPECT_EQ(st.knob(Knob::min_free_kbytes).status, KnobStatus::tuning);
    EXPECT_EQ(st.knob(Knob::compaction_proactiveness).status, KnobStatus::unsupported);
    EXPECT_EQ(st.knob(Knob::swappiness).status, KnobStatus::disabled);
    EXPECT_EQ(st.knob(Knob::vfs_cache_pressure).baseline, 120);
    EXPECT_EQ(st.start_usec, 100 * kSec);
    EXPECT_EQ(st.managed_pages_total, 3840u + 772915u + 360448u);

    // Unsupported knobs get no decisions even when their policy would fire.
    s.signals.targets[1].unusable_permille = 990;
    auto step = decide(s, st, c);
    EXPECT_FALSE(find(step, Knob::compaction_proactiveness));
    EXPECT_FALSE(find(step, Knob::swappiness));
}

TEST(Controller, CalmSampleDecidesNothing) {
    Sample s = calm_sample(kSec);
    Config c;
    auto st = initial_state(s, c);
    for (int i = 1; i <= 200; ++i) {
        s.mono_usec = kSec + static_cast<uint64_t>(i) * kTick;
        auto step = decide(s, st, c);
        EXPECT_TRUE(step.decisions.empty()) << format_decision(step.decisions.front());
        st = step.next;
    }
}

// ---- min_free_kbytes ----------------------------------------------------------------------------

TEST(Controller, AtomicFailuresRaiseMinFreeMultiplicatively) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.mono_usec += kTick;
    s.signals.atomic_failures_by_order = {{1, 3}};
    s.signals.failures_by_order = {{1, 3}};
    s.signals.zones_at_or_below_min = 1;
    auto step = decide(s, st, c);
    auto d = find(step, Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::raise);
    EXPECT_TRUE(d->apply);
    EXPECT_EQ(d->old_value, 67584);
    EXPECT_EQ(d->new_value, 101376);
    EXPECT_EQ(d->rule, "atomic-failures");
    EXPECT_EQ(d->reason, "3 atomic order-1 failures in 2.0 s; 1 of 3 zones at or below min");
    EXPECT_EQ(step.next.knob(Knob::min_free_kbytes).last_trouble_usec, s.mono_usec);

    // Order above max_failure_order is not reserve starvation (it is fragmentation).
    Sample h = calm_sample(12 * kSec);
    h.signals.atomic_failures_by_order = {{4, 2}};
    h.signals.failures_by_order = {{4, 2}};
    auto step2 = decide(h, st, c);
    EXPECT_FALSE(find(step2, Knob::min_free_kbytes));
    auto cd = find(step2, Knob::compaction_proactiveness);
    ASSERT_TRUE(cd);
    EXPECT_EQ(cd->rule, "fragmentation");
    EXPECT_NE(cd->reason.find("2 allocation failures of order > 3"), std::string::npos)
        << cd->reason;
}

// A raise of a watermark knob is never applied on watermarks read ticks ago.
TEST(Controller, WatermarkRaisesWaitForAFreshZoneinfo) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.mono_usec += kTick;
    s.signals.atomic_failures_by_order = {{1, 3}};
    s.signals.failures_by_order = {{1, 3}};
    s.signals.zones_at_or_below_min = 1;
    s.zoneinfo_fresh = false;
    s.zoneinfo_mono_usec = s.mono_usec - 3 * kTick;
    auto step = decide(s, st, c);
    auto d = find(step, Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->apply);
    EXPECT_EQ(d->rule, "stale-zoneinfo");
    EXPECT_NE(d->reason.find("the zone watermarks are from a read 6.0 s ago"), std::string::npos)
        << d->reason;
    s.zoneinfo_fresh = true;
    auto fresh = find(decide(s, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(fresh);
    EXPECT_TRUE(fresh->apply);
}

TEST(Controller, MixedOrderAtomicFailuresAreListed) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.signals.atomic_failures_by_order = {{0, 1}, {1, 2}};
    auto d = find(decide(s, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->reason,
              "3 atomic failures (order-0: 1, order-1: 2) in 2.0 s; 0 of 3 zones at or below min");
}

TEST(Controller, MinWatermarkDipsNeedTwoOfTheEightSlotsOfTheWindow) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.signals.zones_at_or_below_min = 1;
    auto step = decide(s, st, c);  // one dip: not yet
    EXPECT_FALSE(find(step, Knob::min_free_kbytes));
    EXPECT_EQ(step.next.min_dip_usec.size(), 1u);
    // Five calm ticks, then a second dip within the 16 s window (8 slots of 2 s).
    s.signals.zones_at_or_below_min = 0;
    for (int i = 0; i < 5; ++i) {
        s.mono_usec += kTick;
        step = decide(s, step.next, c);
        EXPECT_TRUE(step.decisions.empty());
    }
    s.mono_usec += kTick;
    s.signals.zones_at_or_below_min = 2;
    step = decide(s, step.next, c);
    auto d = find(step, Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->rule, "min-watermark-dips");
    EXPECT_EQ(d->reason,
              "zones at or below min in 2 of the 8 slots of the last 16.0 s (>= 2); now 2 of 3");
    EXPECT_EQ(d->new_value, 101376);

    // A dip that left the window long ago does not count.
    auto st2 = initial_state(s, c);
    st2.min_dip_usec = {s.mono_usec - 16 * kSec};  // exactly one window ago: out
    s.signals.zones_at_or_below_min = 1;
    EXPECT_FALSE(find(decide(s, st2, c), Knob::min_free_kbytes));
}

// The window is time, not ticks: at a 250 ms tick, dips in consecutive ticks are one slot (one
// episode), and two dips count only when they are a slot (2 s, less a quarter of slack) apart.
TEST(Controller, MinWatermarkDipsAreCountedInTimeAtAFastTick) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.signals.zones_at_or_below_min = 1;
    Step step{{}, st};
    for (int i = 0; i < 6; ++i) {  // 1.25 s of dips at 250 ms
        step = decide(s, step.next, c);
        EXPECT_FALSE(find(step, Knob::min_free_kbytes)) << "tick " << i;
        s.mono_usec += 250'000;
    }
    EXPECT_EQ(step.next.min_dip_usec.size(), 1u);
    s.mono_usec = 10 * kSec + 1'500'000;  // the second slot begins (2 s - 0.5 s of slack)
    step = decide(s, step.next, c);
    auto d = find(step, Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->rule, "min-watermark-dips");

    // A longer window keeps a single old dip in it; the default drops it.
    Config wide;
    wide.min_free.min_dip_window_usec = 60 * kSec;
    auto st3 = initial_state(s, wide);
    st3.min_dip_usec = {s.mono_usec - 30 * kSec};
    EXPECT_TRUE(find(decide(s, st3, wide), Knob::min_free_kbytes));
    auto st4 = initial_state(s, c);
    st4.min_dip_usec = {s.mono_usec - 30 * kSec};
    EXPECT_FALSE(find(decide(s, st4, c), Knob::min_free_kbytes));
}

TEST(Controller, KswapdLowWatermarkHitQuicklyRaises) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    set_counter(s, "kswapd_low_wmark_hit_quickly", 10);  // 5.0/s: not above 5.0
    EXPECT_FALSE(find(decide(s, st, c), Knob::min_free_kbytes));
    set_counter(s, "kswapd_low_wmark_hit_quickly", 24);  // 12/s
    auto d = find(decide(s, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->rule, "kswapd-low-quick");
    EXPECT_EQ(d->reason, "kswapd hit the low watermark quickly 12.0/s (> 5.0/s)");
}

TEST(Controller, MinFreeHoldsWhileTroubleLastsThenDecaysToBaselineNeverBelow) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    c.min_free.learned_hold_usec =
        0;  // the reactive rules alone; learned-reserve: anticipation_test
    auto st = initial_state(s, c);
    s.signals.atomic_failures_by_order = {{1, 1}};
    auto step = decide(s, st, c);
    Sample n = s;
    n.mono_usec += kTick;
    apply(step, s.mono_usec, n);
    ASSERT_EQ(n.knob(Knob::min_free_kbytes), 101376);
    const uint64_t trouble_end = s.mono_usec;
    n.signals.atomic_failures_by_order.clear();

    std::vector<std::pair<uint64_t, int64_t>> decays;
    st = step.next;
    for (int i = 0; i < 400; ++i) {
        auto st2 = decide(n, st, c);
        for (const auto& d : st2.decisions) {
            ASSERT_EQ(d.knob, Knob::min_free_kbytes) << format_decision(d);
            ASSERT_EQ(d.action, Action::decay);
            EXPECT_EQ(d.rule, "decay");
            decays.emplace_back(n.mono_usec, d.new_value);
        }
        Sample nn = n;
        nn.mono_usec += kTick;
        apply(st2, n.mono_usec, nn);
        st = st2.next;
        n = nn;
    }
    // 101376 -> 84992 -> 68608 -> 67584: steps of 16384 KiB, the last one clipped at the baseline.
    ASSERT_EQ(decays.size(), 3u);
    EXPECT_EQ(decays[0].second, 84992);
    EXPECT_EQ(decays[1].second, 68608);
    EXPECT_EQ(decays[2].second, 67584);
    EXPECT_GE(decays[0].first - trouble_end, c.knob(Knob::min_free_kbytes).calm_usec);
    EXPECT_LT(decays[0].first - trouble_end, c.knob(Knob::min_free_kbytes).calm_usec + kTick);
    EXPECT_GE(decays[1].first - decays[0].first, c.knob(Knob::min_free_kbytes).decay_interval_usec);
    EXPECT_EQ(n.knob(Knob::min_free_kbytes), 67584);
}

TEST(Controller, SafetyGuardRefusesARaiseThatLeavesFreeUnderTheLowWatermark) {
    Sample s = calm_sample(10 * kSec);
    // Free memory just above today's watermarks: 17300 + 8100 + 3840 pages = 117 MiB.
    s.zoneinfo = live_zones(17300, 8100);
    Config c;
    auto st = initial_state(s, c);
    s.signals.atomic_failures_by_order = {{0, 5}};
    auto step = decide(s, st, c);
    auto d = find(step, Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::refuse);
    EXPECT_FALSE(d->apply);
    EXPECT_EQ(d->rule, "safety-low-watermark");
    EXPECT_EQ(d->new_value, 101376);
    EXPECT_NE(d->reason.find(
                  "free lowmem 116960 KiB must stay 65536 KiB above the predicted low watermark"),
              std::string::npos)
        << d->reason;
    // Reported once, not every tick.
    s.mono_usec += kTick;
    auto again = decide(s, step.next, c);
    EXPECT_FALSE(find(again, Knob::min_free_kbytes));
    EXPECT_EQ(again.next.knob(Knob::min_free_kbytes).last_rule, "safety-low-watermark");
}

TEST(Controller, SafetyGuardRaisesToTheLargestSafeValue) {
    Sample s = calm_sample(10 * kSec);
    s.zoneinfo = live_zones(30660, 8000);  // 166 MiB free
    Config c;
    auto st = initial_state(s, c);
    s.signals.atomic_failures_by_order = {{1, 2}};
    auto d = find(decide(s, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::raise);
    EXPECT_TRUE(d->apply);
    EXPECT_GT(d->new_value, 67584);
    EXPECT_LT(d->new_value, 101376);
    EXPECT_NE(
        d->reason.find("limited to " + std::to_string(d->new_value) + " KiB by the safety guard"),
        std::string::npos)
        << d->reason;
    uint64_t free_kib = lowmem_free_kib(s.zoneinfo);
    EXPECT_GE(free_kib, lowmem_low_kib(s.zoneinfo, d->new_value, 10) + 65536);
    EXPECT_LT(free_kib, lowmem_low_kib(s.zoneinfo, d->new_value + 1, 10) + 65536);
}

TEST(Controller, SafetyCapBoundsAbsurdConfigurations) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    c.min_free.raise_factor = 100;
    c.knob(Knob::min_free_kbytes).max = 100LL * 1024 * 1024;  // 100 GiB
    auto st = initial_state(s, c);
    s.signals.atomic_failures_by_order = {{1, 2}};
    int64_t cap = min_free_cap_kib(s.zoneinfo, c.safety);
    EXPECT_EQ(cap, (3840 + 772915 + 360448) * 4 * 5 / 100);
    auto step = decide(s, st, c);
    auto d = find(step, Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::raise);
    EXPECT_EQ(d->new_value, cap);
    EXPECT_NE(d->reason.find("capped at " + std::to_string(cap) + " KiB (5.0% of managed lowmem)"),
              std::string::npos)
        << d->reason;
    Range b = effective_bounds(Knob::min_free_kbytes, st.knob(Knob::min_free_kbytes), c, s);
    EXPECT_EQ(b.min, 67584);
    EXPECT_EQ(b.max, cap);

    // At the cap: refused with the cap's rule.
    Sample n = s;
    n.mono_usec += 60 * kSec;
    n.knobs[index(Knob::min_free_kbytes)] = cap;
    auto st2 = step.next;
    record_applied(st2, Knob::min_free_kbytes, cap, s.mono_usec);
    n.signals.atomic_failures_by_order = {{1, 2}};
    auto r = find(decide(n, st2, c), Knob::min_free_kbytes);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->action, Action::refuse);
    EXPECT_EQ(r->rule, "safety-cap");
}

// ---- bounds, steps, cooldown, rate limit --------------------------------------------------------

TEST(Controller, BoundsIntersectTheKernelRange) {
    Sample s = calm_sample(0);
    Config c;
    KnobState ks;
    ks.baseline = 60;
    s.profile = make_kernel_profile("5.4.0", 4096);
    EXPECT_EQ(effective_bounds(Knob::swappiness, ks, c, s).max, 100);
    s.profile = make_kernel_profile("6.1.0-28-amd64", 4096);
    EXPECT_EQ(effective_bounds(Knob::swappiness, ks, c, s).max, 200);
    // watermark_scale_factor: 3000 is accepted by patched 5.10/5.15 kernels too, so the range
    // starts wide and a refusal narrows it (to the table's 1000 when nothing larger was accepted).
    c.knob(Knob::watermark_scale_factor).max = 2000;
    s.profile = make_kernel_profile("5.15.0", 4096);
    EXPECT_EQ(effective_bounds(Knob::watermark_scale_factor, ks, c, s).max, 2000);
    EXPECT_TRUE(narrow_range(s.profile, Knob::watermark_scale_factor, 2000, 10));
    EXPECT_EQ(effective_bounds(Knob::watermark_scale_factor, ks, c, s).max, 1000);
    s.profile = KernelProfile{};
    EXPECT_EQ(effective_bounds(Knob::watermark_scale_factor, ks, c, s).max, 2000);
    // min_free_kbytes never below its baseline, even when configured lower.
    c.knob(Knob::min_free_kbytes).min = 1024;
    ks.baseline = 67584;
    EXPECT_EQ(effective_bounds(Knob::min_free_kbytes, ks, c, s).min, 67584);
}

TEST(Controller, PercentBoundsResolveAgainstManagedLowmem) {
    Sample s = calm_sample(0);
    Config c;
    auto& kc = c.knob(Knob::min_free_kbytes);
    kc.max_lowmem_percent = 2.0;
    kc.baseline_lowmem_percent = 0.5;
    const int64_t lowmem_kib = (3840 + 772915 + 360448) * 4;
    ControllerState st = initial_state(s, c);
    EXPECT_EQ(st.knob(Knob::min_free_kbytes).baseline, lowmem_kib * 5 / 1000);
    Range b = effective_bounds(Knob::min_free_kbytes, st.knob(Knob::min_free_kbytes), c, s);
    EXPECT_EQ(b.max, lowmem_kib * 2 / 100);
    EXPECT_EQ(b.min, lowmem_kib * 5 / 1000);
    // An absolute value wins over nothing; the loader never sets both.
    kc.max_lowmem_percent.reset();
    kc.max = 100000;
    EXPECT_EQ(effective_bounds(Knob::min_free_kbytes, st.knob(Knob::min_free_kbytes), c, s).max,
              100000);
}

TEST(Controller, AtTheConfiguredMaximumARaiseIsRefused) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    c.knob(Knob::watermark_scale_factor).max = 10;
    auto st = initial_state(s, c);
    set_counter(s, "allocstall", 40);
    s.signals.zones_below_low = 1;
    auto d = find(decide(s, st, c), Knob::watermark_scale_factor);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::refuse);
    EXPECT_EQ(d->rule, "at-bound");
    EXPECT_NE(d->reason.find("already at the bound [10, 10]"), std::string::npos) << d->reason;
}

TEST(Controller, MaxStepLimitsOneTick) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    c.knob(Knob::min_free_kbytes).max_step = 8192;
    auto st = initial_state(s, c);
    s.signals.atomic_failures_by_order = {{1, 1}};
    auto d = find(decide(s, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->new_value, 67584 + 8192);
    EXPECT_NE(d->reason.find("limited to a step of 8192"), std::string::npos);
}

TEST(Controller, CooldownHoldsAChangeSilently) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.signals.atomic_failures_by_order = {{1, 1}};
    auto step = decide(s, st, c);
    Sample n = s;
    n.mono_usec += kTick;
    apply(step, s.mono_usec, n);
    st = step.next;
    // Failures go on: no change until 10 s after the last one.
    int raises = 0;
    uint64_t second_at = 0;
    for (int i = 0; i < 6; ++i) {
        auto st2 = decide(n, st, c);
        if (auto d = find(st2, Knob::min_free_kbytes)) {
            EXPECT_EQ(d->action, Action::raise);
            ++raises;
            second_at = n.mono_usec;
        }
        if (i < 4) {
            EXPECT_NE(
                st2.next.knob(Knob::min_free_kbytes).last_reason.find("waiting for the cooldown"),
                std::string::npos);
        }
        Sample nn = n;
        nn.mono_usec += kTick;
        apply(st2, n.mono_usec, nn);
        st = st2.next;
        n = nn;
    }
    EXPECT_EQ(raises, 1);
    EXPECT_EQ(second_at, s.mono_usec + 10 * kSec);
}

TEST(Controller, HourlyCapRefusesThenAllowsWhenTheOldestChangeLeavesTheHour) {
    Sample s = calm_sample(4000 * kSec);
    Config c;
    auto st = initial_state(s, c);
    // Five changes of wsf in the last hour, the oldest 50 minutes ago: a raise away from the
    // baseline may use only five of the six (the sixth is kept for a step back).
    auto& ks = st.knob(Knob::watermark_scale_factor);
    for (int i = 0; i < 5; ++i)
        ks.recent_changes_usec.push_back(s.mono_usec - (50 - 5 * i) * 60 * kSec);
    ks.last_change_usec = ks.recent_changes_usec.back();
    ks.last_written = 10;
    set_counter(s, "allocstall", 40);
    s.signals.zones_below_low = 1;
    auto step = decide(s, st, c);
    auto d = find(step, Knob::watermark_scale_factor);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::refuse);
    EXPECT_EQ(d->rule, "rate-limit");
    EXPECT_NE(d->reason.find("5 changes in the last hour (cap 6, the last one kept"),
              std::string::npos)
        << d->reason;
    // Same refusal a tick later is not repeated.
    s.mono_usec += kTick;
    step = decide(s, step.next, c);
    EXPECT_FALSE(find(step, Knob::watermark_scale_factor));
    // Ten minutes later the oldest change is more than an hour old.
    s.mono_usec += 10 * 60 * kSec;
    step = decide(s, step.next, c);
    d = find(step, Knob::watermark_scale_factor);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::raise);
    EXPECT_EQ(d->new_value, 30);
}

// ---- watermark_scale_factor ---------------------------------------------------------------------

TEST(Controller, DirectReclaimRaisesScaleFactorWithHysteresis) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.signals.zones_below_low = 1;
    s.signals.psi_some_percent = 0.5;  // between relax (0.1) and raise (1.0): hold
    auto step = decide(s, st, c);
    EXPECT_FALSE(find(step, Knob::watermark_scale_factor));
    EXPECT_EQ(step.next.knob(Knob::watermark_scale_factor).last_trouble_usec, s.mono_usec);

    s.signals.psi_some_percent = 2.5;
    set_counter(s, "pgscan_direct", 3000);
    auto d = find(decide(s, st, c), Knob::watermark_scale_factor);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::raise);
    EXPECT_EQ(d->new_value, 30);
    EXPECT_EQ(d->rule, "direct-reclaim");
    EXPECT_EQ(d->reason,
              "direct reclaim: 0.0 allocstalls/s (>= 1.0), pgscan_direct 3000 in 2.0 s, PSI some "
              "2.5% (>= 1.0%); 1 "
              "of 3 zones below low");

    // Stalls while no zone is below low: not the scale factor's problem.
    s.signals.zones_below_low = 0;
    EXPECT_FALSE(find(decide(s, st, c), Knob::watermark_scale_factor));
    // Pure atomic starvation: the zone below low is at/below min and atomics failed: min_free's
    // job.
    s.signals.zones_below_low = 1;
    s.signals.zones_at_or_below_min = 1;
    s.signals.atomic_failures_by_order = {{1, 4}};
    auto st3 = decide(s, st, c);
    EXPECT_FALSE(find(st3, Knob::watermark_scale_factor));
    ASSERT_TRUE(find(st3, Knob::min_free_kbytes));
}

TEST(Controller, ScaleFactorLowersWhenKswapdIsBusyAndDecaysWhenCalm) {
    Sample s = calm_sample(1000 * kSec);
    Config c;
    s.knobs[index(Knob::watermark_scale_factor)] = 70;
    auto st = initial_state(s, c);
    st.knob(Knob::watermark_scale_factor).baseline = 10;
    st.knob(Knob::watermark_scale_factor).last_written = 70;
    st.knob(Knob::watermark_scale_factor).last_trouble_usec = s.mono_usec - 200 * kSec;
    st.start_usec = 0;
    set_counter(s, "pgscan_kswapd", 5000);
    auto d = find(decide(s, st, c), Knob::watermark_scale_factor);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::lower);
    EXPECT_EQ(d->rule, "kswapd-busy");
    EXPECT_EQ(d->new_value, 50);  // raise_step 20
    set_counter(s, "pgscan_kswapd", 0);
    d = find(decide(s, st, c), Knob::watermark_scale_factor);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::decay);
    EXPECT_EQ(d->new_value, 60);  // decay_step 10
    // Not calm long enough yet.
    st.knob(Knob::watermark_scale_factor).last_trouble_usec = s.mono_usec - 100 * kSec;
    EXPECT_FALSE(find(decide(s, st, c), Knob::watermark_scale_factor));
}

// ---- compaction_proactiveness -------------------------------------------------------------------

TEST(Controller, FragmentationRaisesProactiveness) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.signals.targets[1].unusable_permille = 870;
    s.signals.targets[1].free_blocks = 12;
    s.signals.max_fragmentation_score = 87;  // consistent with the order-9 index
    auto d = find(decide(s, st, c), Knob::compaction_proactiveness);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::raise);
    EXPECT_EQ(d->new_value, 40);
    EXPECT_EQ(d->reason,
              "order-9 unusable free index 870/1000 (12 free blocks) (>= 800/1000) in 2.0 s");
    // compact_stall alone, and thp_fault_fallback alone, also raise.
    Sample t = calm_sample(10 * kSec);
    set_counter(t, "compact_stall", 3);
    EXPECT_TRUE(find(decide(t, st, c), Knob::compaction_proactiveness));
    t = calm_sample(10 * kSec);
    set_counter(t, "thp_fault_fallback", 9);
    EXPECT_TRUE(find(decide(t, st, c), Knob::compaction_proactiveness));
}

TEST(Controller, FragmentationRaisesFarEnoughForKcompactdToWork) {
    // Score 60: kcompactd starts above (100 - p) + 10, so p must exceed 50; one +20 step from 20
    // would leave it idle. The raise goes to 60 at once.
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.signals.targets[1].unusable_permille = 820;
    s.signals.max_fragmentation_score = 60;
    auto d = find(decide(s, st, c), Knob::compaction_proactiveness);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::raise);
    EXPECT_EQ(d->new_value, 60);
    EXPECT_NE(d->reason.find("so that kcompactd works on fragmentation score 60"),
              std::string::npos)
        << d->reason;
    // Never beyond the bounds, whatever the score says.
    s.signals.max_fragmentation_score = 5;
    d = find(decide(s, st, c), Knob::compaction_proactiveness);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->new_value, 90);  // table default max
}

TEST(Controller, FutileCompactionBacksOffAndHolds) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.signals.targets[1].unusable_permille = 950;
    set_counter(s, "compact_fail", 50);
    set_counter(s, "compact_success", 10);  // 50 > 4 * 10
    auto step = decide(s, st, c);
    auto d = find(step, Knob::compaction_proactiveness);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::lower);
    EXPECT_EQ(d->rule, "compaction-futile");
    EXPECT_EQ(d->new_value, 0);
    EXPECT_EQ(d->reason,
              "compact_fail 50 vs compact_success 10 in 2.0 s (> 4.0x): compaction is futile, "
              "backing off");
    // Within the futile back-off, fragmentation neither raises nor kicks.
    Sample n = s;
    n.mono_usec += 60 * kSec;
    set_counter(n, "compact_fail", 0);
    set_counter(n, "compact_success", 0);
    apply(step, s.mono_usec, n);
    auto step2 = decide(n, step.next, c);
    EXPECT_FALSE(find(step2, Knob::compaction_proactiveness));
    EXPECT_NE(
        step2.next.knob(Knob::compaction_proactiveness).last_reason.find("compaction was futile"),
        std::string::npos);
    // 50 fail vs 13 success is not futile (50 <= 52).
    set_counter(s, "compact_success", 13);
    d = find(decide(s, st, c), Knob::compaction_proactiveness);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->rule, "fragmentation");
}

TEST(Controller, KickAtMaximumOncePerIntervalOnKernelsThatWakeOnWrite) {
    Sample s = calm_sample(100 * kSec);
    s.knobs[index(Knob::compaction_proactiveness)] = 90;
    Config c;
    auto st = initial_state(s, c);
    s.signals.targets[1].unusable_permille = 930;
    auto step = decide(s, st, c);
    auto d = find(step, Knob::compaction_proactiveness);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::kick);
    EXPECT_TRUE(d->apply);
    EXPECT_EQ(d->old_value, 90);
    EXPECT_EQ(d->new_value, 90);
    EXPECT_EQ(d->rule, "compaction-kick");
    EXPECT_NE(d->reason.find("proactiveness already at its maximum 90"), std::string::npos)
        << d->reason;
    // The kick writes the same value: not a change for cooldown or the hourly cap.
    record_applied(step.next, Knob::compaction_proactiveness, 90, s.mono_usec);
    EXPECT_EQ(step.next.knob(Knob::compaction_proactiveness).recent_changes_usec.size(), 0u);

    int kicks = 0;
    auto cur = step.next;
    for (int i = 1; i <= 29; ++i) {  // 58 s
        s.mono_usec += kTick;
        auto st2 = decide(s, cur, c);
        if (auto k = find(st2, Knob::compaction_proactiveness)) {
            EXPECT_EQ(k->action, Action::kick);
            EXPECT_EQ(s.mono_usec, 100 * kSec + 30 * kSec);  // exactly one kick interval later
            ++kicks;
        }
        cur = st2.next;
    }
    EXPECT_EQ(kicks, 1);

    // 5.10 has the knob but a rewrite does not wake kcompactd: refuse at the bound instead.
    s.kernel = KernelVersion{5, 10};
    s.profile = make_kernel_profile("5.10.0", 4096);
    auto d510 = find(decide(s, st, c), Knob::compaction_proactiveness);
    ASSERT_TRUE(d510);
    EXPECT_EQ(d510->action, Action::refuse);
}

TEST(Controller, KickDuringCooldown) {
    Sample s = calm_sample(100 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.signals.targets[1].unusable_permille = 900;
    s.signals.max_fragmentation_score = 90;  // consistent with the order-9 index
    auto step = decide(s, st, c);
    Sample n = s;
    n.mono_usec += kTick;
    apply(step, s.mono_usec, n);
    ASSERT_EQ(n.knob(Knob::compaction_proactiveness), 40);
    auto d = find(decide(n, step.next, c), Knob::compaction_proactiveness);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::kick);
    EXPECT_EQ(d->new_value, 40);
    EXPECT_NE(d->reason.find("the cooldown forbids a change"), std::string::npos);
}

TEST(Controller, ProactivenessDecaysWhenBlocksArePlentiful) {
    Sample s = calm_sample(1000 * kSec);
    s.knobs[index(Knob::compaction_proactiveness)] = 60;
    Config c;
    auto st = initial_state(s, c);
    st.knob(Knob::compaction_proactiveness).baseline = 20;
    st.knob(Knob::compaction_proactiveness).last_written = 60;
    st.start_usec = 0;
    s.signals.targets[1].unusable_permille = 500;  // between relax 400 and raise 800: hold
    EXPECT_FALSE(find(decide(s, st, c), Knob::compaction_proactiveness));
    s.signals.targets[1].unusable_permille = 300;
    auto d = find(decide(s, st, c), Knob::compaction_proactiveness);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::decay);
    EXPECT_EQ(d->new_value, 50);
}

TEST(Controller, CompactMemoryFallbackOnlyWhenEnabledAndRateLimited) {
    Sample s = calm_sample(100 * kSec);
    s.knobs[index(Knob::compaction_proactiveness)].reset();
    s.kernel = KernelVersion{5, 4};
    s.profile = make_kernel_profile("5.4.0", 4096);
    s.signals.targets[1].unusable_permille = 1000;
    s.signals.targets[1].free_blocks = 0;
    Config c;
    auto st = initial_state(s, c);
    EXPECT_TRUE(decide(s, st, c).decisions.empty());
    c.compaction.compact_memory_fallback = true;
    auto step = decide(s, st, c);
    ASSERT_EQ(step.decisions.size(), 1u);
    EXPECT_EQ(step.decisions[0].action, Action::compact);
    EXPECT_TRUE(step.decisions[0].apply);
    EXPECT_EQ(format_decision(step.decisions[0])
                  .rfind("vm.compact_memory <- 1 [compact: fragmentation]", 0),
              0u);
    s.mono_usec += 300 * kSec;
    EXPECT_TRUE(decide(s, step.next, c).decisions.empty());
    s.mono_usec += 300 * kSec;
    EXPECT_EQ(decide(s, step.next, c).decisions.size(), 1u);
}

// ---- vfs_cache_pressure -------------------------------------------------------------------------

TEST(Controller, SlabWithFragmentationRaisesCachePressureThenBackToBaseline) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.signals.sreclaimable_kib = 24731700 / 4;  // 25%
    s.signals.max_fragmentation_score = 40;     // not fragmented
    EXPECT_FALSE(find(decide(s, st, c), Knob::vfs_cache_pressure));
    s.signals.max_fragmentation_score = 70;
    auto d = find(decide(s, st, c), Knob::vfs_cache_pressure);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->rule, "slab-fragmentation");
    EXPECT_EQ(d->new_value, 150);
    EXPECT_NE(
        d->reason.find(
            "= 25.0% of MemTotal (>= 20.0%) while fragmented: fragmentation score 70 (>= 50)"),
        std::string::npos)
        << d->reason;
    // Raised to 250; slab at 15% (between relax and raise) while fragmented: hold.
    s.knobs[index(Knob::vfs_cache_pressure)] = 250;
    st.knob(Knob::vfs_cache_pressure).last_written = 250;
    s.signals.sreclaimable_kib = 24731700 * 15 / 100;
    EXPECT_FALSE(find(decide(s, st, c), Knob::vfs_cache_pressure));
    // Under 10%: straight back to the baseline.
    s.signals.sreclaimable_kib = 24731700 * 5 / 100;
    d = find(decide(s, st, c), Knob::vfs_cache_pressure);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::decay);
    EXPECT_EQ(d->new_value, 100);
}

// ---- swappiness ---------------------------------------------------------------------------------

TEST(Controller, SwappinessWithoutSwapIsLeftAloneAndSaysWhy) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    set_counter(s, "workingset_refault_file", 20000);
    auto step = decide(s, st, c);
    EXPECT_FALSE(find(step, Knob::swappiness));
    EXPECT_EQ(step.next.knob(Knob::swappiness).last_reason, "no swap: swappiness has no effect");
}

TEST(Controller, SwappinessFollowsRefaultsAndSwapIns) {
    Sample s = calm_sample(10 * kSec);
    s.signals.swap_total_kib = 8 << 20;
    Config c;
    auto st = initial_state(s, c);
    set_counter(s, "workingset_refault_file", 6000);  // 3000/s
    set_counter(s, "pswpin", 4);                      // 2/s
    auto d = find(decide(s, st, c), Knob::swappiness);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->rule, "refaults");
    EXPECT_EQ(d->new_value, 70);
    set_counter(s, "pswpin", 60);  // 30/s: not low, not high: hold
    EXPECT_FALSE(find(decide(s, st, c), Knob::swappiness));
    set_counter(s, "pswpin", 400);  // 200/s
    d = find(decide(s, st, c), Knob::swappiness);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->rule, "swap-ins");
    EXPECT_EQ(d->action, Action::lower);
    EXPECT_EQ(d->new_value, 50);
    EXPECT_EQ(d->reason, "200 swap-ins/s (>= 100/s): keep anonymous memory in RAM");
}

// ---- the administrator wins ---------------------------------------------------------------------

TEST(Controller, AdminOverridePinsAndIsNeverTouchedAgain) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    st.knob(Knob::swappiness).last_written = 60;
    s.signals.swap_total_kib = 1 << 20;
    s.knobs[index(Knob::swappiness)] = 100;
    auto step = decide(s, st, c);
    auto d = find(step, Knob::swappiness);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::pin);
    EXPECT_FALSE(d->apply);
    EXPECT_EQ(d->rule, "admin-override");
    EXPECT_EQ(d->reason, "changed to 100 by someone else (we wrote 60)");
    EXPECT_EQ(step.next.knob(Knob::swappiness).status, KnobStatus::pinned);
    // Even strong signals later leave it alone.
    s.mono_usec += 600 * kSec;
    set_counter(s, "pswpin", 10000);
    auto step2 = decide(s, step.next, c);
    EXPECT_FALSE(find(step2, Knob::swappiness));
    EXPECT_EQ(step2.next.knob(Knob::swappiness).status, KnobStatus::pinned);

    // A change before we ever wrote (against the value found at start) pins too.
    Sample t = calm_sample(10 * kSec);
    auto st3 = initial_state(t, c);
    t.knobs[index(Knob::vfs_cache_pressure)] = 200;
    auto p = find(decide(t, st3, c), Knob::vfs_cache_pressure);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->reason, "changed to 200 by someone else (it was 100 at start)");
}

// A small machine whose THP recommendation is capped at 5% of its buffer pages, so that memory
// hotplug moves the kernel's min_free_kbytes up and down.
Sample small_sample(uint64_t t_usec, int64_t mfk) {
    Sample s = calm_sample(t_usec);
    s.zoneinfo.zones.clear();
    s.zoneinfo.zones.push_back(zone("DMA", 3000, 20, 50, 85, 3840));
    s.zoneinfo.zones.push_back(zone("DMA32", 150000, 1000, 2000, 3000, 200000));
    s.knobs[index(Knob::min_free_kbytes)] = mfk;
    return s;
}

TEST(Controller, KernelRecalculationAfterHotplugIsAdoptedAsBaseline) {
    // The model: nr_free_buffer_pages = (3840 - 85) + (200000 - 3000) = 200755, so the sqrt rule is
    // int_sqrt(803020 * 16) = 3584 KiB; with the watermarks of 3584 KiB (highs 24 and 1317) the
    // buffer pages are 202499, and khugepaged's 11 pageblocks x 2 zones (11264 pages) are capped
    // at 202499 / 20 = 10124 pages = 40496 KiB.
    Sample s = small_sample(10 * kSec, 40496);
    const auto k = kernel_min_free_kbytes(s.zoneinfo, s.profile, 10);
    EXPECT_EQ(k.sqrt_rule, 3584);
    EXPECT_EQ(k.no_thp, 3584);
    EXPECT_EQ(k.thp, 40496);
    // After a write of 50000 by user space (user_min_free_kbytes) the sqrt rule does not apply:
    // the value stays as it was and khugepaged does not lower it: measured on 6.12, where
    // removing a DIMM left 51816 although the recommendation had fallen to ~40000.
    EXPECT_EQ(kernel_min_free_kbytes(s.zoneinfo, s.profile, 10, 50000, 60000).with_thp(), 60000);
    // Held at 30000, khugepaged raises it to its recommendation under 30000's (higher) watermarks.
    const auto held = kernel_min_free_kbytes(s.zoneinfo, s.profile, 10, 50000, 30000);
    EXPECT_EQ(held.no_thp, 30000);
    EXPECT_GT(held.with_thp(), 30000);
    EXPECT_LT(held.with_thp(), 40496);
    Config c;
    auto st = initial_state(s, c);

    // 400 MiB hot-added as a Normal zone: the kernel recalculates (THP cap grows).
    Sample up = small_sample(12 * kSec, 0);
    up.zoneinfo.zones.push_back(zone("Normal", 100000, 300, 900, 1500, 102400));
    const int64_t high_delta = 3085 - 4585;  // the new zone had no watermarks when computed
    const int64_t kernel_up =
        kernel_min_free_kbytes(up.zoneinfo, up.profile, 10, std::nullopt, 0, high_delta).with_thp();
    EXPECT_GT(kernel_up, 40496);
    up.knobs[index(Knob::min_free_kbytes)] = kernel_up;
    auto step = decide(up, st, c);
    auto d = find(step, Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->rule, "kernel-recalculated");
    EXPECT_FALSE(d->apply);
    EXPECT_EQ(d->old_value, 40496);
    EXPECT_EQ(d->new_value, kernel_up);
    EXPECT_NE(d->reason.find("adopted as the new baseline (was 40496)"), std::string::npos)
        << d->reason;
    EXPECT_EQ(step.next.knob(Knob::min_free_kbytes).status, KnobStatus::tuning);
    EXPECT_EQ(step.next.knob(Knob::min_free_kbytes).baseline, kernel_up);
    up.mono_usec += kTick;
    EXPECT_FALSE(find(decide(up, step.next, c), Knob::min_free_kbytes));

    // Offline again: the kernel's value goes DOWN (fragtune never wrote, so user_min_free_kbytes
    // does not hold it up). Adopted, not pinned: before the profile this pinned the knob.
    Sample down = small_sample(16 * kSec, 40496);
    auto d2 = find(decide(down, step.next, c), Knob::min_free_kbytes);
    ASSERT_TRUE(d2);
    EXPECT_EQ(d2->rule, "kernel-recalculated");
    EXPECT_EQ(d2->action, Action::lower);

    // A value change without a managed-pages change: an administrator.
    Sample t = small_sample(12 * kSec, 90112);
    auto p = find(decide(t, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->action, Action::pin);

    // A balloon (managed pages change, the kernel does not recalculate) and an administrator's
    // larger write in that tick: pinned, not adopted (before the profile it was adopted).
    Sample b = small_sample(12 * kSec, 90112);
    b.zoneinfo.zones[1].managed -= 50000;
    p = find(decide(b, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->action, Action::pin);

    // After fragtune wrote 50000, the kernel cannot go below it: a lower value is someone else's.
    auto st2 = initial_state(s, c);
    record_applied(st2, Knob::min_free_kbytes, 50000, 11 * kSec);
    EXPECT_EQ(st2.user_min_free_kbytes, 50000);
    Sample u = small_sample(12 * kSec, 40496);
    u.zoneinfo.zones[1].managed += 10;
    p = find(decide(u, st2, c), Knob::min_free_kbytes);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->action, Action::pin);
}

TEST(Controller, AnObservedWriteIsNotTheKernelsUserMinFreeKbytes) {
    // Observe mode books 50000 without writing it: the kernel's user_min_free_kbytes stays unset,
    // so when the daemon drops the overlay (the real value moved) and memory is hot-added, the
    // kernel's recalculation is adopted, not judged against a value the kernel never saw.
    Sample s = small_sample(10 * kSec, 40496);
    Config c;
    auto st = initial_state(s, c);
    record_observed(st, Knob::min_free_kbytes, 50000, 11 * kSec);
    EXPECT_EQ(st.knob(Knob::min_free_kbytes).last_written, 50000);
    EXPECT_FALSE(st.user_min_free_kbytes);
    st.knob(Knob::min_free_kbytes).last_written.reset();  // Daemon::end_observed

    Sample up = small_sample(12 * kSec, 0);
    up.zoneinfo.zones.push_back(zone("Normal", 100000, 300, 900, 1500, 102400));
    const int64_t kernel_up =
        kernel_min_free_kbytes(up.zoneinfo, up.profile, 10, std::nullopt, 0, 3085 - 4585)
            .with_thp();
    up.knobs[index(Knob::min_free_kbytes)] = kernel_up;
    auto d = find(decide(up, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->rule, "kernel-recalculated") << format_decision(*d);

    // A real write does set it.
    record_applied(st, Knob::min_free_kbytes, 50000, 13 * kSec);
    EXPECT_EQ(st.user_min_free_kbytes, 50000);
}

TEST(Controller, LowmemReserveCountsInTheSafetyHeadroom) {
    // DMA32 protects 20000 pages from allocations that could use Normal. Free lowmem just covers
    // the predicted low watermarks plus the margin without it, not with it: the raise is refused.
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.signals.atomic_failures_by_order = {{1, 3}};
    const auto wm = predict_watermarks(s.zoneinfo, 101376, 10, s.profile);
    uint64_t low = 0;
    for (size_t i = 0; i < 3; ++i) low += wm[i].low;
    const uint64_t free_pages = low + c.safety.margin_kib / 4 + 10000;
    s.zoneinfo.zones[0].free = 0;
    s.zoneinfo.zones[2].free = 0;
    s.zoneinfo.zones[1].free = free_pages;
    auto ok = find(decide(s, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->action, Action::raise) << ok->reason;
    s.zoneinfo.zones[1].protection = {0, 0, 20000, 20000, 20000};
    auto d = find(decide(s, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->action == Action::refuse || d->new_value < 101376) << format_decision(*d);
}

TEST(Controller, KcompactdFutilityJudgedByDaemonCounters) {
    Config c;
    Sample s = calm_sample(10 * kSec);
    s.knobs[index(Knob::compaction_proactiveness)] = 60;
    auto st = initial_state(s, c);
    // Direct compaction failing massively says nothing about kcompactd on a kernel that prints
    // compact_daemon_*: no futility verdict.
    set_counter(s, "compact_daemon_migrate_scanned", 0);
    set_counter(s, "compact_fail", 500);
    set_counter(s, "compact_success", 1);
    auto d = find(decide(s, st, c), Knob::compaction_proactiveness);
    EXPECT_FALSE(d && d->rule == "compaction-futile");
    // kcompactd scanning tick after tick while the score stays: futile after futile_min_fail ticks.
    set_counter(s, "compact_fail", 0);
    set_counter(s, "compact_daemon_migrate_scanned", 40000);
    s.signals.max_fragmentation_score = 40;
    auto cur = st;
    std::optional<Decision> futile;
    for (uint32_t i = 0; i < c.compaction.futile_min_fail + 2 && !futile; ++i) {
        s.mono_usec += kTick;
        auto step = decide(s, cur, c);
        if (auto x = find(step, Knob::compaction_proactiveness);
            x && x->rule == "compaction-futile")
            futile = x;
        cur = step.next;
    }
    ASSERT_TRUE(futile);
    EXPECT_EQ(futile->action, Action::lower);
    EXPECT_NE(futile->reason.find("compact_daemon_migrate_scanned"), std::string::npos);
    // A falling score resets the count.
    auto st3 = initial_state(s, c);
    for (uint32_t i = 0; i < c.compaction.futile_min_fail + 2; ++i) {
        s.mono_usec += kTick;
        s.signals.max_fragmentation_score = 60 - static_cast<int>(i);
        auto step = decide(s, st3, c);
        auto x = find(step, Knob::compaction_proactiveness);
        EXPECT_FALSE(x && x->rule == "compaction-futile");
        st3 = step.next;
    }
}

TEST(Controller, FailedWritesBackOffThenRetry) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    s.signals.atomic_failures_by_order = {{1, 1}};
    auto step = decide(s, st, c);
    ASSERT_TRUE(find(step, Knob::min_free_kbytes));
    record_failed(step.next, Knob::min_free_kbytes, "EROFS", s.mono_usec);
    EXPECT_EQ(step.next.knob(Knob::min_free_kbytes).status, KnobStatus::failed);
    EXPECT_EQ(step.next.knob(Knob::min_free_kbytes).retry_after_usec, s.mono_usec + 10 * kSec);
    record_failed(step.next, Knob::min_free_kbytes, "EROFS", s.mono_usec);
    EXPECT_EQ(step.next.knob(Knob::min_free_kbytes).retry_after_usec, s.mono_usec + 20 * kSec);
    s.mono_usec += 10 * kSec;
    EXPECT_FALSE(find(decide(s, step.next, c), Knob::min_free_kbytes));
    s.mono_usec += 10 * kSec;
    auto step2 = decide(s, step.next, c);
    auto d = find(step2, Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    record_applied(step2.next, Knob::min_free_kbytes, d->new_value, s.mono_usec);
    EXPECT_EQ(step2.next.knob(Knob::min_free_kbytes).status, KnobStatus::tuning);
    EXPECT_EQ(step2.next.knob(Knob::min_free_kbytes).failures, 0u);
}

TEST(Controller, DecideIgnoresTheModeAndIsDeterministic) {
    Sample s = calm_sample(10 * kSec);
    s.signals.atomic_failures_by_order = {{1, 3}};
    s.signals.targets[1].unusable_permille = 900;
    Config active, observe;
    observe.daemon.mode = Mode::observe;
    auto st = initial_state(s, active);
    auto a = decide(s, st, active);
    auto o = decide(s, st, observe);
    ASSERT_EQ(a.decisions.size(), o.decisions.size());
    ASSERT_EQ(a.decisions.size(), 2u);
    for (size_t i = 0; i < a.decisions.size(); ++i)
        EXPECT_EQ(format_decision(a.decisions[i]), format_decision(o.decisions[i]));
}

TEST(Controller, ScaleFactorIsNotLoweredBelowTheValueThatEndedStallsForAnHour) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    set_counter(s, "allocstall", 40);
    s.signals.zones_below_low = 1;
    auto step = decide(s, st, c);
    ASSERT_TRUE(find(step, Knob::watermark_scale_factor));
    record_applied(step.next, Knob::watermark_scale_factor, 30, s.mono_usec);
    EXPECT_EQ(step.next.wsf_relief_value, 30);
    // Calm afterwards, kswapd busy: held at 30 while the stalls are remembered.
    Sample n = calm_sample(s.mono_usec + 600 * kSec);
    n.knobs[index(Knob::watermark_scale_factor)] = 30;
    set_counter(n, "pgscan_kswapd", 5000);
    auto held = decide(n, step.next, c);
    EXPECT_FALSE(find(held, Knob::watermark_scale_factor));
    EXPECT_NE(held.next.knob(Knob::watermark_scale_factor).last_reason.find("holding at 30"),
              std::string::npos);
    // An hour after the last stall it may go back.
    n.mono_usec = s.mono_usec + c.watermark.stall_memory_usec;
    auto back = find(decide(n, step.next, c), Knob::watermark_scale_factor);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->rule, "kswapd-busy");
    EXPECT_EQ(back->new_value, 10);
}

TEST(Controller, OneFailedCompactionIsNotAFutilityVerdict) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    set_counter(s, "compact_fail", 3);  // < futile_min_fail (4)
    set_counter(s, "compact_stall", 3);
    auto d = find(decide(s, st, c), Knob::compaction_proactiveness);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->rule, "fragmentation");
}

// ---- state the guards did not expect (issue 15) -------------------------------------------------

// An administrator lowered min_free_kbytes under its baseline, then unpinned it: every target is
// clamped into the bounds, so a decay moves it up to the baseline and atomic failures still get a
// raise that the write accepts (before: a decay or raise below the bounds, refused by the write,
// and the knob "failed").
TEST(Controller, AKnobBelowItsBaselineIsMovedIntoTheBoundsNotFailed) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    c.knob(Knob::min_free_kbytes).max_step = 4096;  // the bounds beat the step limit
    auto st = initial_state(s, c);
    auto& ks = st.knob(Knob::min_free_kbytes);
    ASSERT_EQ(ks.baseline, 67584);
    ks.last_written = 20000;  // unpin takes the live value as ours
    s.knobs[index(Knob::min_free_kbytes)] = 20000;
    const Range b = effective_bounds(Knob::min_free_kbytes, ks, c, s);
    ASSERT_EQ(b.min, 67584);

    // Atomic failures: 20000 x 1.5 = 30000 would be below the bound; a raise from below the
    // baseline starts from the baseline (67584 x 1.5), as it would have without the administrator.
    Sample f = s;
    f.mono_usec += kTick;
    f.signals.atomic_failures_by_order = {{1, 2}};
    auto d = find(decide(f, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::raise);
    EXPECT_TRUE(d->apply);
    EXPECT_EQ(d->old_value, 20000);
    EXPECT_EQ(d->new_value, 101376);
    EXPECT_TRUE(b.contains(d->new_value));

    // Calm for long: the decay from below moves up to the baseline in one step, not into a write
    // the bounds refuse.
    Sample calm = s;
    calm.mono_usec += 10 * 60 * kSec;
    auto dd = find(decide(calm, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(dd);
    EXPECT_EQ(dd->action, Action::decay);
    EXPECT_EQ(dd->new_value, 67584);
    EXPECT_NE(dd->reason.find("moved to the bound 67584"), std::string::npos) << dd->reason;

    // Another knob below a configured minimum: a raise is clamped up to it, past max_step.
    Config cw;
    cw.knob(Knob::watermark_scale_factor).min = 100;
    cw.knob(Knob::watermark_scale_factor).max_step = 5;
    auto sw = initial_state(s, cw);  // live watermark_scale_factor 10
    Sample r = s;
    r.mono_usec += kTick;
    set_counter(r, "allocstall", 10);
    r.signals.zones_below_low = 1;
    auto dw = find(decide(r, sw, cw), Knob::watermark_scale_factor);
    ASSERT_TRUE(dw);
    EXPECT_EQ(dw->action, Action::raise) << format_decision(*dw);
    EXPECT_EQ(dw->new_value, 100) << format_decision(*dw);
}

// From below its baseline, with memory tight: the largest safe value lies between the live value
// and the bounds' minimum. Writing it would be refused as out of range (and the knob marked
// failed), so the guard refuses the raise instead, saying why.
TEST(Controller, ASafeValueUnderTheBoundsIsRefusedNotWritten) {
    Sample s = calm_sample(10 * kSec);
    s.zoneinfo = live_zones(17300, 8100);  // 117 MiB free: safe up to ~40 MiB of min_free_kbytes
    Config c;
    auto st = initial_state(s, c);
    auto& ks = st.knob(Knob::min_free_kbytes);
    ASSERT_EQ(ks.baseline, 67584);
    ks.last_written = 20000;
    s.knobs[index(Knob::min_free_kbytes)] = 20000;
    s.mono_usec += kTick;
    s.signals.atomic_failures_by_order = {{1, 2}};
    auto d = find(decide(s, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::refuse) << format_decision(*d);
    EXPECT_FALSE(d->apply);
    EXPECT_EQ(d->rule, "safety-low-watermark");
    EXPECT_NE(d->reason.find("below the bounds' minimum 67584 KiB"), std::string::npos)
        << d->reason;
}

// A lower from below the minimum would be clamped upwards: that is no move, and nothing is written.
TEST(Controller, AClampThatWouldTurnTheMoveAroundIsNoMove) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    c.knob(Knob::compaction_proactiveness).min = 30;
    auto st = initial_state(s, c);  // live proactiveness 20: under the configured minimum
    s.mono_usec += kTick;
    set_counter(s, "compact_fail", 40);
    set_counter(s, "compact_success", 1);
    auto d = find(decide(s, st, c), Knob::compaction_proactiveness);
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->apply) << format_decision(*d);
    EXPECT_EQ(d->action, Action::refuse);
}

// A baseline above the safety cap (an absurd original from a state file) never becomes a target.
TEST(Controller, ABaselineAboveTheSafetyCapIsHeldAtTheCap) {
    Sample s = calm_sample(10 * kSec);
    Config c;
    auto st = initial_state(s, c);
    st.knob(Knob::min_free_kbytes).baseline = 2'000'000'000;
    const int64_t cap = min_free_cap_kib(s.zoneinfo, c.safety);
    const Range b = effective_bounds(Knob::min_free_kbytes, st.knob(Knob::min_free_kbytes), c, s);
    EXPECT_EQ(b.min, cap);
    EXPECT_EQ(b.max, cap);
    s.mono_usec += 10 * 60 * kSec;
    s.signals.atomic_failures_by_order = {{1, 1}};
    auto d = find(decide(s, st, c), Knob::min_free_kbytes);
    ASSERT_TRUE(d);
    EXPECT_LE(d->new_value, cap) << format_decision(*d);
}
