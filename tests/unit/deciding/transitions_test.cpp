// The state transitions outside the tick (deciding/transitions.hpp): start with and without a state
// file, reload, restore, tightened bounds. Samples from the live-6.18-vm fixture, read in place.
#include "fragtune/deciding/transitions.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

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

// DMA 3840 + DMA32 772915 + Normal 360448 managed pages in the fixture's zoneinfo.
constexpr uint64_t kLowmemPages = 3840 + 772915 + 360448;

int64_t two_percent_kib(const Sample& s) {
    const uint64_t lowmem_kib = kLowmemPages * (s.profile.page_size_bytes / 1024);
    return static_cast<int64_t>(2.0 * static_cast<double>(lowmem_kib) / 100.0);
}

Config two_percent_config() {
    Config c;
    c.knob(Knob::min_free_kbytes).baseline_lowmem_percent = 2.0;
    return c;
}

}  // namespace

TEST(Transitions, ManagedLowmemIsDmaToNormalInKib) {
    const Sample s = fixture_sample();
    EXPECT_EQ(managed_lowmem_kib(s), kLowmemPages * (s.profile.page_size_bytes / 1024));
}

// The drift issue #17 found: "2%" gave 2% of lowmem on a first start, the original on every start
// with a state file, and the original again on reload. One rule now, one answer.
TEST(Transitions, PercentBaselineIsTheSameKibOnFirstStartStateFileStartAndReload) {
    const Sample s = fixture_sample();
    const Config cfg = two_percent_config();
    const int64_t expect = two_percent_kib(s);
    ASSERT_NE(expect, 67584);  // differs from the fixture's live value, so the test can tell

    const ControllerState first = state_at_start(s, cfg, nullptr);
    EXPECT_EQ(first.knob(Knob::min_free_kbytes).baseline, expect);
    EXPECT_EQ(first.knob(Knob::min_free_kbytes).original, 67584);

    PersistedState saved;
    saved.knob(Knob::min_free_kbytes).original = 45000;  // recorded by an earlier first start
    const ControllerState restarted = state_at_start(s, cfg, &saved);
    EXPECT_EQ(restarted.knob(Knob::min_free_kbytes).original, 45000);
    EXPECT_EQ(restarted.knob(Knob::min_free_kbytes).baseline, expect);

    // Reload from a file without the percentage, then back to it.
    const ControllerState absolute = state_after_reload(restarted, Config{}, &s);
    EXPECT_EQ(absolute.knob(Knob::min_free_kbytes).baseline, 45000);  // the original
    const ControllerState reloaded = state_after_reload(absolute, cfg, &s);
    EXPECT_EQ(reloaded.knob(Knob::min_free_kbytes).baseline, expect);

    EXPECT_EQ(resolve_baseline(cfg.knob(Knob::min_free_kbytes), 45000, s), expect);
}

TEST(Transitions, BaselineIsConfiguredElseOriginalElseZero) {
    const Sample s = fixture_sample();
    KnobConfig kc;
    EXPECT_EQ(resolve_baseline(kc, 60, s), 60);
    EXPECT_EQ(resolve_baseline(kc, std::nullopt, s), 0);
    kc.baseline = 40;
    EXPECT_EQ(resolve_baseline(kc, 60, s), 40);

    // A state file's original moves the baseline of a knob without a configured one; a configured
    // baseline stays.
    Config cfg;
    cfg.knob(Knob::vfs_cache_pressure).baseline = 150;
    PersistedState saved;
    saved.knob(Knob::swappiness).original = 30;
    saved.knob(Knob::vfs_cache_pressure).original = 90;
    const ControllerState st = state_at_start(s, cfg, &saved);
    EXPECT_EQ(st.knob(Knob::swappiness).original, 30);
    EXPECT_EQ(st.knob(Knob::swappiness).baseline, 30);
    EXPECT_EQ(st.knob(Knob::vfs_cache_pressure).baseline, 150);
    EXPECT_EQ(st.knob(Knob::watermark_scale_factor).baseline, 10);  // live value, no state
}

TEST(Transitions, ReloadDisablesAndReEnablesKnobsAndKeepsPins) {
    const Sample s = fixture_sample();
    ControllerState st = state_at_start(s, Config{}, nullptr);
    st.knob(Knob::vfs_cache_pressure).status = KnobStatus::pinned;
    st.knob(Knob::vfs_cache_pressure).status_reason = "pinned by an operator";
    st.knob(Knob::swappiness).last_written = 55;

    Config off;
    off.knob(Knob::swappiness).enabled = false;
    const ControllerState disabled = state_after_reload(st, off, &s);
    EXPECT_EQ(disabled.knob(Knob::swappiness).status, KnobStatus::disabled);
    EXPECT_EQ(disabled.knob(Knob::swappiness).status_reason, "disabled in the configuration");
    EXPECT_EQ(disabled.knob(Knob::vfs_cache_pressure).status, KnobStatus::pinned);
    EXPECT_EQ(disabled.knob(Knob::min_free_kbytes).status, KnobStatus::tuning);

    const ControllerState enabled = state_after_reload(disabled, Config{}, &s);
    EXPECT_EQ(enabled.knob(Knob::swappiness).status, KnobStatus::tuning);
    EXPECT_EQ(enabled.knob(Knob::swappiness).status_reason, "");
    // Taken as ours: the override check must not pin it at once.
    EXPECT_EQ(enabled.knob(Knob::swappiness).last_written, 60);
    EXPECT_EQ(enabled.knob(Knob::vfs_cache_pressure).status, KnobStatus::pinned);

    // A knob the kernel lacks stays unsupported whatever the file says.
    ControllerState lacking = st;
    lacking.knob(Knob::compaction_proactiveness).status = KnobStatus::unsupported;
    Config no_cp;
    no_cp.knob(Knob::compaction_proactiveness).enabled = false;
    EXPECT_EQ(state_after_reload(lacking, no_cp, &s).knob(Knob::compaction_proactiveness).status,
              KnobStatus::unsupported);
}

TEST(Transitions, RestartOnlyKeysKeepTheirRunningValues) {
    Config running;
    Config next = running;
    EXPECT_TRUE(keep_restart_keys(next, running).empty());

    next.signals.kmsg_path = "/tmp/kmsg";
    next.daemon.state_path = "/tmp/state.toml";
    next.signals.kernel_log = !running.signals.kernel_log;
    next.daemon.tick_usec = running.daemon.tick_usec * 2;  // applied live: no note
    const auto notes = keep_restart_keys(next, running);
    ASSERT_EQ(notes.size(), 3u);
    EXPECT_EQ(notes[0].rfind("signals.kernel_log changed from ", 0), 0u) << notes[0];
    EXPECT_EQ(notes[1],
              "signals.kmsg_path changed from \"" + running.signals.kmsg_path +
                  "\" to \"/tmp/kmsg\": needs a restart (systemctl restart fragtuned); \"" +
                  running.signals.kmsg_path + "\" stays in force until then");
    EXPECT_EQ(notes[2].rfind("daemon.state_path changed from ", 0), 0u) << notes[2];
    EXPECT_EQ(next.signals.kmsg_path, running.signals.kmsg_path);
    EXPECT_EQ(next.daemon.state_path, running.daemon.state_path);
    EXPECT_EQ(next.signals.kernel_log, running.signals.kernel_log);
    EXPECT_EQ(next.daemon.tick_usec, running.daemon.tick_usec * 2);
}

TEST(Transitions, TightenedBoundsMoveTuningKnobsToTheNearestBound) {
    const Sample s = fixture_sample();
    Config cfg;
    cfg.knob(Knob::swappiness).max = 50;
    cfg.knob(Knob::vfs_cache_pressure).min = 200;
    cfg.knob(Knob::watermark_scale_factor).max = 5;
    ControllerState st = state_at_start(s, cfg, nullptr);
    st.knob(Knob::watermark_scale_factor).status = KnobStatus::pinned;  // not ours to move

    KnobValues live{};
    live[index(Knob::swappiness)] = 60;
    live[index(Knob::vfs_cache_pressure)] = 100;
    live[index(Knob::watermark_scale_factor)] = 10;
    live[index(Knob::compaction_proactiveness)] = 20;  // inside its bounds
    // min_free_kbytes absent (unreadable): skipped
    const auto ds = bounds_tightened(st, cfg, s, live);
    ASSERT_EQ(ds.size(), 2u);
    EXPECT_EQ(ds[0].knob, Knob::vfs_cache_pressure);  // table order
    EXPECT_EQ(ds[0].action, Action::raise);
    EXPECT_EQ(ds[0].old_value, 100);
    EXPECT_EQ(ds[0].new_value, 200);
    EXPECT_EQ(ds[0].rule, "bounds-tightened");
    EXPECT_TRUE(ds[0].apply);
    EXPECT_EQ(ds[1].knob, Knob::swappiness);
    EXPECT_EQ(ds[1].action, Action::lower);
    EXPECT_EQ(ds[1].new_value, 50);
    const Range b = effective_bounds(Knob::swappiness, st.knob(Knob::swappiness), cfg, s);
    EXPECT_EQ(ds[1].reason, fmt::format("reloaded configuration bounds {}..50 exclude 60", b.min));
}

TEST(Transitions, RestorePlanWritesEveryKnownOriginalThatDiffers) {
    ControllerState st;
    st.knob(Knob::min_free_kbytes).original = 67584;
    st.knob(Knob::swappiness).original = 60;
    st.knob(Knob::vfs_cache_pressure).original = 100;
    st.knob(Knob::watermark_scale_factor).original = 10;
    // compaction_proactiveness: no original known
    KnobValues live{};
    live[index(Knob::min_free_kbytes)] = 101376;
    live[index(Knob::swappiness)] = 40;
    live[index(Knob::vfs_cache_pressure)] = 100;  // already there
    live[index(Knob::compaction_proactiveness)] = 40;
    // watermark_scale_factor: not readable now
    const auto ds = restore_plan(st, live, "operator restore");
    ASSERT_EQ(ds.size(), 2u);
    EXPECT_EQ(ds[0].knob, Knob::min_free_kbytes);
    EXPECT_EQ(ds[0].action, Action::lower);
    EXPECT_EQ(ds[0].old_value, 101376);
    EXPECT_EQ(ds[0].new_value, 67584);
    EXPECT_EQ(ds[0].rule, "restore");
    EXPECT_EQ(ds[0].reason, "operator restore: back to the original value found at first start");
    EXPECT_EQ(ds[1].knob, Knob::swappiness);
    EXPECT_EQ(ds[1].action, Action::raise);
    EXPECT_EQ(ds[1].new_value, 60);
    EXPECT_TRUE(restore_plan(ControllerState{}, live, "x").empty());
}
