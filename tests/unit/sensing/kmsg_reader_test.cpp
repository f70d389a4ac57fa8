// KmsgReader over regular files and FIFOs (and, read-only, the machine's /dev/kmsg when readable).
#include "fixture_text.hpp"
#include "fragtune/sensing/kmsg.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace fragtune;

namespace {

using fragtune::test::fixture;

std::string record(uint64_t seq, const std::string& msg, int prio = 4, char flag = '-') {
    return std::to_string(prio) + "," + std::to_string(seq) + "," + std::to_string(seq * 1000) +
           "," + flag + ";" + msg + "\n";
}

class KmsgReaderTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/fragtune-kmsg-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
    }
    void TearDown() override { fs::remove_all(root_); }

    void write_file(const std::string& name, const std::string& text, bool append = false) {
        std::ofstream out(root_ / name,
                          append ? std::ios::app | std::ios::binary : std::ios::binary);
        out << text;
    }

    KmsgReader open_ok(KmsgOptions o) {
        auto r = KmsgReader::open(kfs_(), std::move(o));
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
        return std::move(r).value();
    }

    KernelFs kfs_() const { return KernelFs(root_); }
    fs::path root_;
};

TEST_F(KmsgReaderTest, ReplaysTheFixtureLogFromTheStart) {
    write_file("kmsg", fixture("kmsg/alloc-failures.kmsg"));
    auto r = open_ok({.path = "/kmsg", .from_start = true});
    EXPECT_FALSE(r.is_device());
    auto d = r.drain();
    ASSERT_TRUE(d.ok()) << d.error().describe();
    EXPECT_EQ(d->records, 25u);  // continuation lines are not records
    EXPECT_EQ(d->malformed, 0u);
    EXPECT_EQ(d->lost, 0u);
    EXPECT_EQ(d->failures_dropped, 0u);
    struct Want {
        FailureKind kind;
        std::string task;
        int order;
        bool atomic;
    };
    const auto P = FailureKind::page, V = FailureKind::vmalloc;
    const std::vector<Want> want = {
        {P, "cld", 1, true},
        {P, "runc:[1:CHILD]", 6, false},
        {P, "mysqld", 4, false},
        {P, "kworker/u8:2", 0, true},
        {V, "iptables", 0, false},  // its mode comes from the page line after it (folded)
        {V, "", 1, false},
        {P, "swapper/0", 0, true},
        {P, "java", 2, false},
        {P, "ksoftirqd/3", 0, true},
        {P, "qemu-kvm", 4, false},
        {P, "kworker/0:1H", 0, true},
        {V, "kworker/u16:2", 0, false},
        {V, "emerge", 3, false},
        {P, "khugepaged", 9, false},
        {P, "kworker/1:2", 3, false},  // joined from four fragment records
        // not here: the stall warning, SLUB, OOM kill, and the facility-1 fake from user space
    };
    EXPECT_EQ(d->failures_seen, want.size());
    ASSERT_EQ(d->failures.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(d->failures[i].kind, want[i].kind) << i;
        EXPECT_EQ(d->failures[i].task, want[i].task) << i;
        EXPECT_EQ(d->failures[i].order, want[i].order) << i;
        EXPECT_EQ(d->failures[i].atomic, want[i].atomic) << i;
    }
    EXPECT_EQ(d->failures[4].gfp_mask, 0x200d2u);
    EXPECT_EQ(d->failures[4].size_bytes, 4096u);
    EXPECT_EQ(d->failures[14].gfp_flags, "GFP_KERNEL");
    // Nothing new: the next drain is empty.
    auto again = r.drain();
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->records, 0u);
}

TEST_F(KmsgReaderTest, StartsAtTheEndOfAFileByDefault) {
    write_file("kmsg", record(1, "cld: page allocation failure. order:1, mode:0x20") +
                           record(2, "mysqld: page allocation failure. order:4, mode:0x10c0d0"));
    auto r = open_ok({.path = "/kmsg"});
    auto d = r.drain();
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->records, 0u);
    EXPECT_TRUE(d->failures.empty());
    write_file("kmsg", record(3, "a: page allocation failure: order:5, mode:0xcc0(GFP_KERNEL)"),
               true);
    d = r.drain();
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->records, 1u);
    ASSERT_EQ(d->failures.size(), 1u);
    EXPECT_EQ(d->failures[0].order, 5);
}

TEST_F(KmsgReaderTest, SkipsTheRestOfALineCutAtOpen) {
    write_file("kmsg", record(1, "x") + "4,2,2000,-;cld: page allocation failure. order:1, mo");
    auto r = open_ok({.path = "/kmsg"});
    write_file("kmsg", "de:0x20\n" + record(3, "b: page allocation failure: order:3, mode:0x10"),
               true);
    auto d = r.drain();
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->records, 1u);
    EXPECT_EQ(d->malformed, 0u);
    ASSERT_EQ(d->failures.size(), 1u);
    EXPECT_EQ(d->failures[0].task, "b");
    EXPECT_FALSE(d->failures[0].atomic);  // 0x10 is __GFP_WAIT in a bare mask: it could sleep
}

TEST_F(KmsgReaderTest, FifoDeliversWhatIsWrittenAndWaitsForWholeLines) {
    ASSERT_EQ(::mkfifo((root_ / "kmsg").c_str(), 0600), 0);
    auto r = open_ok({.path = "/kmsg"});
    EXPECT_FALSE(r.is_device());
    const int w = ::open((root_ / "kmsg").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(w, 0);
    auto put = [&](const std::string& s) {
        ASSERT_EQ(::write(w, s.data(), s.size()), static_cast<ssize_t>(s.size()));
    };
    auto d = r.drain();  // nothing written yet: EAGAIN
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->records, 0u);

    const std::string line =
        record(10, "kworker/u8:2: page allocation failure: order:0, mode:0xa20(GFP_ATOMIC)");
    put(line.substr(0, 20));
    d = r.drain();
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->records, 0u);  // half a record is kept, not parsed
    put(line.substr(20) + " DEVICE=+pci:0000:00:19.0\n" + record(11, "unrelated"));
    d = r.drain();
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->records, 2u);
    ASSERT_EQ(d->failures.size(), 1u);
    EXPECT_TRUE(d->failures[0].atomic);
    ::close(w);
    d = r.drain();  // writer gone: end of file, not an error
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->records, 0u);
}

TEST_F(KmsgReaderTest, FloodKeepsMemoryBoundedAndCountsTheRest) {
    std::string text;
    for (uint64_t i = 1; i <= 5000; ++i)
        text += record(i, "stress: page allocation failure: order:" + std::to_string(i % 11) +
                              ", mode:0xa20(GFP_ATOMIC)");
    write_file("kmsg", text);
    auto r = open_ok({.path = "/kmsg", .from_start = true});
    auto d = r.drain(10000);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->records, 5000u);
    EXPECT_EQ(d->failures_seen, 5000u);
    EXPECT_EQ(d->failures.size(), 1024u);
    EXPECT_EQ(d->failures_dropped, 5000u - 1024u);
    EXPECT_EQ(d->failures.front().order, 1);  // the first ones are kept, in order
    EXPECT_FALSE(d->limit_reached);

    auto small = open_ok({.path = "/kmsg", .from_start = true, .max_failures_per_drain = 10});
    d = small.drain(10000);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->failures.size(), 10u);
    EXPECT_EQ(d->failures_dropped, 4990u);
}

TEST_F(KmsgReaderTest, MaxRecordsSplitsTheWorkAcrossDrains) {
    std::string text;
    for (uint64_t i = 1; i <= 250; ++i) text += record(i, "line " + std::to_string(i));
    write_file("kmsg", text);
    auto r = open_ok({.path = "/kmsg", .from_start = true});
    uint64_t total = 0;
    for (int round = 0; round < 3; ++round) {
        auto d = r.drain(100);
        ASSERT_TRUE(d.ok());
        EXPECT_EQ(d->records, round < 2 ? 100u : 50u);
        EXPECT_EQ(d->limit_reached, round < 2);
        EXPECT_EQ(d->lost, 0u);
        total += d->records;
    }
    EXPECT_EQ(total, 250u);
}

TEST_F(KmsgReaderTest, SequenceGapsCountAsLost) {
    write_file("kmsg", record(1, "a") + record(2, "b") + record(5, "c") + record(6, "d") +
                           record(10, "e") + record(3, "replayed: going back is not a loss"));
    auto r = open_ok({.path = "/kmsg", .from_start = true});
    auto d = r.drain();
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->records, 6u);
    EXPECT_EQ(d->lost, 2u + 3u);
}

TEST_F(KmsgReaderTest, MalformedAndOverlongLinesAreCountedAndSkipped) {
    write_file("kmsg",
               "not a kmsg record\n" + std::string(20000, 'x') + "\n" +
                   record(7, "ok: page allocation failure: order:2, mode:0xcc0(GFP_KERNEL)"));
    auto r = open_ok({.path = "/kmsg", .from_start = true});
    auto d = r.drain();
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->malformed, 2u);
    ASSERT_EQ(d->failures.size(), 1u);
    EXPECT_EQ(d->failures[0].task, "ok");
}

TEST_F(KmsgReaderTest, UserSpaceCannotFakeAFailure) {
    // Priority 12 = facility 1 (user), level 4: what a write() to /dev/kmsg produces.
    write_file("kmsg",
               record(1, "evil: page allocation failure: order:9, mode:0xa20(GFP_ATOMIC)", 12));
    auto r = open_ok({.path = "/kmsg", .from_start = true});
    auto d = r.drain();
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->records, 1u);
    EXPECT_TRUE(d->failures.empty());
}

TEST_F(KmsgReaderTest, OpenErrorsNameThePath) {
    auto missing = KmsgReader::open(kfs_(), {.path = "/dev/kmsg"});
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().sys_errno, ENOENT);
    EXPECT_NE(missing.error().message.find("/dev/kmsg"), std::string::npos);
    fs::create_directories(root_ / "dir");
    auto dir = KmsgReader::open(kfs_(), {.path = "/dir"});
    ASSERT_FALSE(dir.ok());
    EXPECT_EQ(dir.error().sys_errno, EINVAL);
    EXPECT_FALSE(KmsgReader::open(kfs_(), {.path = "/../etc/passwd"}).ok());
}

TEST_F(KmsgReaderTest, MoveTransfersTheFd) {
    write_file("kmsg", "");
    auto a = open_ok({.path = "/kmsg"});
    const int fd = a.fd();
    KmsgReader b(std::move(a));
    EXPECT_EQ(b.fd(), fd);
    EXPECT_EQ(a.fd(), -1);  // NOLINT(bugprone-use-after-move): the contract under test
    auto d = a.drain();     // NOLINT(bugprone-use-after-move)
    EXPECT_FALSE(d.ok());
}

// The machine's own kernel log, read only: every record the running kernel prints must frame.
TEST(KmsgReaderDevice, FramesEveryRecordOfTheRunningKernel) {
    struct stat st {};
    if (::stat("/dev/kmsg", &st) != 0 || !S_ISCHR(st.st_mode) || ::access("/dev/kmsg", R_OK) != 0)
        GTEST_SKIP() << "/dev/kmsg is not readable here";
    auto opened = KmsgReader::open(KernelFs("/"), {.from_start = true});
    if (!opened.ok()) GTEST_SKIP() << opened.error().describe();
    auto r = std::move(opened).value();
    EXPECT_TRUE(r.is_device());
    auto d = r.drain(1000000);
    ASSERT_TRUE(d.ok()) << d.error().describe();
    EXPECT_GT(d->records, 0u);
    EXPECT_EQ(d->malformed, 0u);

    auto at_end = KmsgReader::open(KernelFs("/"));
    ASSERT_TRUE(at_end.ok());
    auto e = at_end->drain(1000000);
    ASSERT_TRUE(e.ok());
    EXPECT_LT(e->records, d->records);  // opened at the end: old records are not replayed
}

}  // namespace
