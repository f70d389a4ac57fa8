// The watermark_boost_factor policy from literal samples: boost-driven reclaim that makes the file
// working set refault lowers the factor, fragmentation or low refaults do not, calm steps it back.
#include "fragtune/knobs/watermark_boost_factor.hpp"

#include <gtest/gtest.h>

#include "fragtune/configuration/config_file.hpp"
#include "fragtune/deciding/controller.hpp"

using namespace fragtune;

namespace {

constexpr uint64_t kSec = 1'000'000;
constexpr uint64_t kTick = 2 * kSec;
constexpr Knob kBoost = Knob::watermark_boost_factor;

OrderSignals target(int order, int unusable_permille) {
    OrderSignals o;
    o.order = order;
    o.free_blocks = 1000;
    o.unusable_permille = o.worst_zone_unusable_permille = unusable_permille;
    return o;
}

void set_counter(Sample& s, const std::string& name, uint64_t delta) {
    s.signals.counters[name] =
        CounterDelta{delta, static_cast<double>(delta) / (s.signals.interval_usec / 1e6), false};
}

// Two zones, no boost, no reclaim: calm. The boost factor at the kernel's default 15000.
Sample sample(uint64_t t_usec) {
    Sample s;
    s.mono_usec = t_usec;
    s.profile = make_kernel_profile("6.18.0", 4096);
    s.kernel = s.profile.version;
    s.knobs = {67584, 10, 20, 100, 60, 15000};
    auto& g = s.signals;
    g.interval_usec = kTick;
    for (const char* name : {"DMA32", "Normal"}) {
        ZoneSignals z;
        z.zone = name;
        z.managed_pages = z.present_pages = 500000;
        z.free_pages = 100000;
        z.min_pages = 5000;
        z.low_pages = 6000;
        z.high_pages = 7000;
        g.zones.push_back(z);
    }
    g.targets = {target(3, 10), target(9, 100)};
    for (const char* c : {"pgscan_kswapd", "workingset_refault_file"}) set_counter(s, c, 0);
    return s;
}

// Boost-driven reclaim: the Normal zone boosted, kswapd scanning, 3000 file refaults/s.
Sample costly(uint64_t t_usec) {
    Sample s = sample(t_usec);
    s.signals.zones[1].boost_pages = 10500;
    set_counter(s, "pgscan_kswapd", 40000);
    set_counter(s, "workingset_refault_file", 6000);
    return s;
}

Config enabled() {
    Config c;
    c.knob(kBoost).enabled = true;
    return c;
}

std::optional<Decision> find(const Step& st, Knob k) {
    for (const auto& d : st.decisions)
        if (d.knob == k) return d;
    return std::nullopt;
}

TEST(WatermarkBoostFactor, DisabledByDefaultAndInTheShippedConfiguration) {
    EXPECT_FALSE(Config{}.knob(kBoost).enabled);
    auto st = initial_state(costly(0), Config{});
    EXPECT_EQ(st.knob(kBoost).status, KnobStatus::disabled);
    auto step = decide(costly(kTick), st, Config{});
    EXPECT_FALSE(find(step, kBoost));
    EXPECT_EQ(spec(kBoost).default_max, 15000);
    EXPECT_EQ(kernel_range(kBoost, KernelVersion{6, 1}).max, 2147483647);
}

TEST(WatermarkBoostFactor, KernelsWithoutItAreUnsupported) {
    Sample s = costly(0);
    s.knobs[index(kBoost)].reset();  // before 5.0
    auto st = initial_state(s, enabled());
    EXPECT_EQ(st.knob(kBoost).status, KnobStatus::unsupported);
}

TEST(WatermarkBoostFactor, BoostDrivenRefaultsLowerItTowardsTheLowerBound) {
    const Config c = enabled();
    auto st = initial_state(sample(0), c);
    auto step = decide(costly(kTick), st, c);
    auto d = find(step, kBoost);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->action, Action::lower);
    EXPECT_EQ(d->rule, "boost-reclaim");
    EXPECT_EQ(d->old_value, 15000);
    EXPECT_EQ(d->new_value, 10000);
    EXPECT_NE(d->reason.find("1 of 2 zones boosted (10500 pages"), std::string::npos) << d->reason;
    EXPECT_NE(d->reason.find("3000/s (>= 1000/s)"), std::string::npos) << d->reason;

    // Never below the lower bound: from 3000 a lower of 5000 stops at 0.
    Sample low = costly(kTick);
    low.knobs[index(kBoost)] = 3000;
    Sample start = sample(0);
    start.knobs[index(kBoost)] = 3000;  // found at 3000 (else 3000 would be an administrator's)
    auto st2 = initial_state(start, c);
    auto d2 = find(decide(low, st2, c), kBoost);
    ASSERT_TRUE(d2);
    EXPECT_EQ(d2->new_value, 0);
}

TEST(WatermarkBoostFactor, NoLoweringWithoutEveryPartOfTheSignal) {
    const Config c = enabled();
    auto st = initial_state(sample(0), c);
    Sample no_boost = costly(kTick);
    no_boost.signals.zones[1].boost_pages = 0;
    Sample no_kswapd = costly(kTick);
    set_counter(no_kswapd, "pgscan_kswapd", 0);
    Sample few_refaults = costly(kTick);
    set_counter(few_refaults, "workingset_refault_file", 1000);  // 500/s
    Sample fragmented = costly(kTick);
    fragmented.signals.targets = {target(3, 10), target(9, 900)};  // the boost serves this
    for (const Sample* s : {&no_boost, &no_kswapd, &few_refaults, &fragmented})
        EXPECT_FALSE(find(decide(*s, st, c), kBoost));
}

TEST(WatermarkBoostFactor, StepsBackToTheBaselineWhenCalm) {
    const Config c = enabled();
    auto st = initial_state(sample(0), c);
    auto step = decide(costly(kTick), st, c);
    ASSERT_TRUE(find(step, kBoost));
    record_applied(step.next, kBoost, 10000, kTick);
    st = step.next;
    uint64_t t = kTick;
    const uint64_t calm = c.knob(kBoost).calm_usec;
    std::vector<int64_t> values;
    int64_t cur = 10000;
    for (t = 2 * kTick; t <= kTick + calm + 3 * c.knob(kBoost).decay_interval_usec; t += kTick) {
        Sample s = sample(t);
        s.knobs[index(kBoost)] = cur;
        auto st2 = decide(s, st, c);
        if (auto d = find(st2, kBoost)) {
            EXPECT_EQ(d->action, Action::decay);
            EXPECT_GE(t - kTick, calm);
            record_applied(st2.next, kBoost, d->new_value, t);
            cur = d->new_value;
            values.push_back(cur);
        }
        st = st2.next;
    }
    EXPECT_EQ(values, (std::vector<int64_t>{15000}));
}

TEST(WatermarkBoostFactor, ConfigKeysLoad) {
    auto r = check_config_text(
        "[tunables.watermark_boost_factor]\nenabled = true\nlower_step = 2000\n"
        "refault_lower_per_sec = 500.0\nrefault_relax_per_sec = 50.0\ndecay_step = 1000\n",
        "boost.toml");
    ASSERT_TRUE(r.ok());
    const auto& c = r.loaded.config;
    EXPECT_TRUE(c.knob(kBoost).enabled);
    EXPECT_EQ(c.watermark_boost.lower_step, 2000);
    EXPECT_EQ(c.watermark_boost.refault_lower_per_sec, 500.0);
    EXPECT_EQ(c.watermark_boost.refault_relax_per_sec, 50.0);
    EXPECT_EQ(c.watermark_boost.decay_step, 1000);
}

}  // namespace
