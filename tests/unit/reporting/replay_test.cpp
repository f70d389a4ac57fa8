#include "fragtune/reporting/replay.hpp"

#include "fragtune/sensing/kernel_profile.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

using namespace fragtune;
namespace fs = std::filesystem;

namespace {

TEST(Replay, FailureLinesParseBackToTheSameFailure) {
    std::vector<AllocFailure> cases(4);
    cases[0].task = "swapper/0";
    cases[0].order = 1;
    cases[0].atomic = true;
    cases[1].task = "runc:[1:CHILD]";
    cases[1].order = 6;
    cases[1].atomic = false;
    cases[2].task = "kworker/u8:2";
    cases[2].order = 0;
    cases[2].gfp_mask = 0xa20;
    cases[2].gfp_flags = "GFP_ATOMIC";
    cases[2].atomic = true;
    cases[3].kind = FailureKind::vmalloc;
    cases[3].task = "iptables";
    cases[3].size_bytes = 8192;
    cases[3].order = 1;
    for (const auto& c : cases) {
        const std::string line = format_alloc_failure_line(c);
        auto back = parse_alloc_failure(line);
        ASSERT_TRUE(back) << line;
        EXPECT_EQ(back->kind, c.kind) << line;
        EXPECT_EQ(back->task, c.task) << line;
        EXPECT_EQ(back->order, c.order) << line;
        EXPECT_EQ(back->atomic, c.atomic) << line;
    }
}

class RecordReplay : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/fragtune-replay-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        fs::copy(fs::path(FRAGTUNE_FIXTURES_DIR) / "live-6.18-vm", dir_ / "root",
                 fs::copy_options::recursive);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST_F(RecordReplay, RecordedTicksReplayIntoTheSameDecisionsAsLive) {
    const KernelFs live(dir_ / "root");
    AllocFailure atomic;
    atomic.task = "swapper/0";
    atomic.order = 1;
    atomic.atomic = true;
    const std::vector<AllocFailure> none, burst(3, atomic);
    const fs::path rec = dir_ / "rec";
    ASSERT_TRUE(record_tick(live, rec, 0, 1'000'000, none, "/proc/pressure/memory").ok());
    ASSERT_TRUE(record_tick(live, rec, 1, 3'000'000, burst, "/proc/pressure/memory").ok());
    ASSERT_TRUE(record_tick(live, rec, 2, 5'000'000, none, "/proc/pressure/memory").ok());
    EXPECT_TRUE(fs::exists(rec / "00000001/proc/zoneinfo"));
    EXPECT_TRUE(fs::exists(rec / "00000001/proc/sys/vm/min_free_kbytes"));

    Config config;
    auto r = replay_recording(rec, config);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->ticks, 3u);
    EXPECT_TRUE(r->skipped.empty());
    ASSERT_FALSE(r->decisions.empty());
    const auto& first = r->decisions.front();
    EXPECT_EQ(first.offset_usec, 2'000'000u);
    EXPECT_EQ(first.decision.knob, Knob::min_free_kbytes);
    EXPECT_EQ(first.decision.old_value, 67584);
    EXPECT_GT(first.decision.new_value, 67584);
    const std::string text = format_replay(*r);
    EXPECT_NE(text.find("+2.0s vm.min_free_kbytes 67584 -> "), std::string::npos) << text;
    EXPECT_NE(text.find("3 ticks replayed"), std::string::npos) << text;
}

// A recording carries what the kernel profile is resolved from: a tick recorded on a 64 KiB-page
// arm64 machine resolves to 64 KiB pages and huge-page order 13 again, not to the 4 KiB default.
TEST_F(RecordReplay, ARecordingKeepsThePageSizeOfTheKernelProfile) {
    const fs::path arm = dir_ / "arm";
    fs::copy(fs::path(FRAGTUNE_FIXTURES_DIR) / "arm64-64k-6.8", arm, fs::copy_options::recursive);
    const KernelFs live(arm);
    const KernelProfile source = resolve_kernel_profile(live);
    ASSERT_EQ(source.page_size_bytes, 65536u);
    const fs::path rec = dir_ / "rec";
    ASSERT_TRUE(record_tick(live, rec, 0, 1'000'000, {}, "/proc/pressure/memory").ok());
    EXPECT_TRUE(fs::exists(rec / ("00000000" + std::string(kHpagePmdSizePath))));
    const KernelProfile replayed = resolve_kernel_profile(KernelFs(rec / "00000000"));
    EXPECT_EQ(replayed.page_size_bytes, 65536u);
    EXPECT_EQ(replayed.hpage_pmd_order, 13);
    EXPECT_EQ(replayed.release, source.release);
}

TEST_F(RecordReplay, BrokenTicksAreSkippedWithTheirReason) {
    const KernelFs live(dir_ / "root");
    const fs::path rec = dir_ / "rec";
    ASSERT_TRUE(record_tick(live, rec, 0, 1'000'000, {}, "/proc/pressure/memory").ok());
    ASSERT_TRUE(record_tick(live, rec, 1, 2'000'000, {}, "/proc/pressure/memory").ok());
    fs::remove(rec / "00000001/proc/buddyinfo");
    auto r = replay_recording(rec, Config{});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->ticks, 1u);
    ASSERT_EQ(r->skipped.size(), 1u);
    EXPECT_NE(r->skipped[0].find("/proc/buddyinfo"), std::string::npos) << r->skipped[0];
}

TEST_F(RecordReplay, EmptyOrMissingDirectoryIsAnError) {
    EXPECT_FALSE(replay_recording(dir_ / "nope", Config{}).ok());
    fs::create_directories(dir_ / "empty");
    auto r = replay_recording(dir_ / "empty", Config{});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("no recorded ticks"), std::string::npos);
}

}  // namespace
