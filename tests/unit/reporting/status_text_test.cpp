// The daemon's status texts as pure functions (reporting/status_text.hpp), over a sample of the
// live-6.18-vm fixture.
#include "fragtune/reporting/status_text.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "fragtune/deciding/transitions.hpp"
#include "fragtune/sensing/kernel_fs.hpp"

using namespace fragtune;

namespace {

Sample fixture_sample() {
    KernelFs fs(std::string(FRAGTUNE_FIXTURES_DIR) + "/live-6.18-vm");
    Sampler sampler(fs, SamplerOptions{});
    auto s = sampler.take(1'000'000);
    EXPECT_TRUE(s.ok()) << s.error().describe();
    return *s;
}

HistoryEntry change(Knob k, int64_t from, int64_t to, std::string rule, bool applied) {
    HistoryEntry e;
    e.knob = k;
    e.old_value = from;
    e.new_value = to;
    e.rule = std::move(rule);
    e.reason = "because";
    e.applied = applied;
    return e;
}

double value_of(const std::vector<std::pair<std::string, double>>& v, std::string_view name) {
    auto it = std::find_if(v.begin(), v.end(), [&](const auto& p) { return p.first == name; });
    EXPECT_NE(it, v.end()) << name;
    return it == v.end() ? -1 : it->second;
}

}  // namespace

TEST(StatusText, SummaryShowsModeValuesStatesChangesAndSamplingTrouble) {
    const Sample s = fixture_sample();
    ControllerState st = state_at_start(s, Config{}, nullptr);
    EXPECT_EQ(status_summary(Mode::active, st, nullptr, 0, false), "starting");
    EXPECT_EQ(status_summary(Mode::active, st, &s, 0, false),
              "active min_free_kbytes=67584 watermark_scale_factor=10 compaction_proactiveness=20 "
              "vfs_cache_pressure=100 swappiness=60 watermark_boost_factor=15000(disabled)");
    st.knob(Knob::swappiness).status = KnobStatus::pinned;
    Sample lacking = s;
    lacking.knobs[index(Knob::compaction_proactiveness)] = std::nullopt;
    EXPECT_EQ(
        status_summary(Mode::observe, st, &lacking, 3, true),
        "observe min_free_kbytes=67584 watermark_scale_factor=10 compaction_proactiveness=- "
        "vfs_cache_pressure=100 swappiness=60(pinned) watermark_boost_factor=15000(disabled); 3 "
        "changes; sampling failing");
}

TEST(StatusText, ExplainNamesTheKnobItsNumbersAndTheLastChange) {
    const Sample s = fixture_sample();
    Config cfg;
    cfg.knob(Knob::swappiness).max = 100;
    ControllerState st = state_at_start(s, cfg, nullptr);
    st.knob(Knob::swappiness).last_rule = "refaults";
    st.knob(Knob::swappiness).last_reason = "7092 refaults/s";
    std::deque<HistoryEntry> history{change(Knob::swappiness, 60, 70, "refaults", true),
                                     change(Knob::min_free_kbytes, 1, 2, "atomic-failures", true),
                                     change(Knob::swappiness, 70, 80, "refaults", false)};

    auto unknown = explain_knob("swapiness", st, cfg, &s, history);
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().message,
              "unknown knob 'swapiness' (valid: min_free_kbytes, watermark_scale_factor, "
              "compaction_proactiveness, vfs_cache_pressure, swappiness, watermark_boost_factor)");
    auto early = explain_knob("swappiness", st, cfg, nullptr, history);
    ASSERT_FALSE(early.ok());
    EXPECT_EQ(early.error().message, "the daemon is not started");

    auto text = explain_knob("swappiness", st, cfg, &s, history);
    ASSERT_TRUE(text.ok()) << text.error().describe();
    const Range b = effective_bounds(Knob::swappiness, st.knob(Knob::swappiness), cfg, s);
    EXPECT_EQ(b.max, 100);
    EXPECT_EQ(text->rfind("vm.swappiness: ", 0), 0u) << *text;
    EXPECT_NE(
        text->find(fmt::format("  value 60, baseline 60, original 60, bounds {}..100\n", b.min)),
        std::string::npos)
        << *text;
    EXPECT_NE(text->find("  state tuning\n"), std::string::npos) << *text;
    EXPECT_NE(text->find("  last decision [refaults] 7092 refaults/s\n"), std::string::npos);
    // The newest change of this knob, not of another one.
    EXPECT_NE(text->find("  last change 70 -> 80 [refaults] because (not applied)\n"),
              std::string::npos)
        << *text;
    EXPECT_EQ(text->find("60 -> 70"), std::string::npos);
}

TEST(StatusText, SignalsNameTheValuesAndHeadroomIsInKibOfTheKernelsPages) {
    Sample s = fixture_sample();
    auto v = signal_values(s, 7);
    EXPECT_EQ(value_of(v, "failures_total"), 7.0);
    EXPECT_EQ(value_of(v, "fragmentation_score"), 34.0);
    EXPECT_EQ(value_of(v, "zones_at_or_below_min"), 0.0);
    EXPECT_EQ(value_of(v, "order9_unusable_permille"),
              static_cast<double>(s.signals.targets[1].unusable_permille));
    EXPECT_TRUE(std::none_of(v.begin(), v.end(), [](const auto& p) {
        return p.first == "allocstall_per_sec";
    })) << "no rates from a first sample";
    const auto pages = static_cast<double>(s.signals.min_headroom_pages);
    s.profile.page_size_bytes = 4096;
    EXPECT_EQ(value_of(signal_values(s, 0), "min_headroom_kib"), pages * 4);
    s.profile.page_size_bytes = 65536;
    EXPECT_EQ(value_of(signal_values(s, 0), "min_headroom_kib"), pages * 64);
}
