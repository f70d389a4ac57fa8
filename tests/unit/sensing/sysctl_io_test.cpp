#include "fragtune/sensing/sysctl_io.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace fragtune;

namespace {

// A fake root with the five knob files and compact_memory.
class TempRoot {
  public:
    TempRoot() {
        char tmpl[] = "/tmp/fragtune-sysctl-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) std::abort();
        path_ = tmpl;
        fs::create_directories(path_ / "proc/sys/vm");
        put("proc/sys/vm/min_free_kbytes", "67584\n");
        put("proc/sys/vm/watermark_scale_factor", "10\n");
        put("proc/sys/vm/compaction_proactiveness", "20\n");
        put("proc/sys/vm/vfs_cache_pressure", "100\n");
        put("proc/sys/vm/swappiness", "60\n");
        put("proc/sys/vm/watermark_boost_factor", "15000\n");
        put("proc/sys/vm/compact_memory", "");
    }
    ~TempRoot() { fs::remove_all(path_); }
    TempRoot(const TempRoot&) = delete;
    TempRoot& operator=(const TempRoot&) = delete;

    void put(const std::string& rel, const std::string& text) const {
        std::ofstream(path_ / rel, std::ios::binary | std::ios::trunc) << text;
    }
    std::string get(const std::string& rel) const {
        std::ifstream in(path_ / rel, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

// Fault injection at the one door: a write can fail with a chosen errno, or "succeed" while the
// kernel keeps (reports) another value, as a kernel that clamps or a concurrent writer would.
class FaultFs : public KernelFs {
  public:
    using KernelFs::KernelFs;
    int write_errno = 0;                         // != 0: write_existing fails with it
    std::map<std::string, std::string> read_as;  // path -> contents read() returns after a write
    std::map<std::string, int> read_errno;       // path -> errno read() fails with
    mutable std::vector<std::string> writes;     // "path=data" for every attempted write

    Result<std::string> read(std::string_view path,
                             const ReadLimits& limits = kKernelFileLimits) const override {
        if (auto it = read_errno.find(std::string(path)); it != read_errno.end())
            return make_error("injected read failure of " + std::string(path), it->second);
        if (auto it = read_as.find(std::string(path)); it != read_as.end()) return it->second;
        return KernelFs::read(path, limits);
    }
    Result<void> write_existing(std::string_view path, std::string_view data) const override {
        writes.push_back(std::string(path) + "=" + std::string(data));
        if (write_errno != 0) return make_error("injected write failure", write_errno);
        return KernelFs::write_existing(path, data);
    }
};

bool contains(const std::string& hay, std::string_view needle) {
    return hay.find(needle) != std::string::npos;
}

TEST(SysctlIoParse, Table) {
    struct Case {
        std::string_view text;
        bool ok;
        int64_t value;
    };
    const Case cases[] = {
        {"60\n", true, 60},
        {"60", true, 60},
        {"  67584 \n", true, 67584},
        {"0\n", true, 0},
        {"-1\n", true, -1},
        {"2147483647\n", true, 2147483647},
        {"9223372036854775807\n", true, INT64_MAX},
        {"9223372036854775808\n", false, 0},  // overflow
        {"", false, 0},
        {"\n", false, 0},
        {"abc\n", false, 0},
        {"60 70\n", false, 0},  // a multi-value sysctl is not one of ours
        {"60abc", false, 0},
        {"0x10", false, 0},
        {"+5", false, 0},  // from_chars does not take '+', and the kernel never prints it
    };
    for (const auto& c : cases) {
        auto r = parse_sysctl_int(c.text, "vm.test");
        EXPECT_EQ(r.ok(), c.ok) << "input '" << c.text << "'";
        if (r.ok() && c.ok) {
            EXPECT_EQ(*r, c.value) << "input '" << c.text << "'";
        }
        if (!r.ok()) {
            EXPECT_TRUE(contains(r.error().message, "vm.test")) << r.error().message;
        }
    }
}

TEST(SysctlIo, ReadsEveryKnobFromFixtureRoot) {
    TempRoot root;
    KernelFs kfs(root.path());
    const int64_t expected[] = {67584, 10, 20, 100, 60, 15000};
    for (const auto& t : kTunables) {
        auto r = read_knob(kfs, t.knob);
        ASSERT_TRUE(r.ok()) << r.error().describe();
        ASSERT_TRUE(r->has_value());
        EXPECT_EQ(**r, expected[index(t.knob)]) << t.sysctl;
    }
}

TEST(SysctlIo, ReadsCommittedLiveFixture) {
    KernelFs kfs(fs::path(FRAGTUNE_FIXTURES_DIR) / "live-6.18-vm");
    for (const auto& t : kTunables) {
        auto r = read_knob(kfs, t.knob);
        ASSERT_TRUE(r.ok()) << r.error().describe();
        EXPECT_TRUE(r->has_value()) << t.sysctl;
    }
}

TEST(SysctlIo, AbsentKnobIsUnsupportedNotAnError) {
    TempRoot root;
    fs::remove(root.path() / "proc/sys/vm/compaction_proactiveness");
    auto r = read_knob(KernelFs(root.path()), Knob::compaction_proactiveness);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_FALSE(r->has_value());
}

TEST(SysctlIo, UnreadableOrGarbageKnobIsAnErrorNamingIt) {
    TempRoot root;
    root.put("proc/sys/vm/swappiness", "lots\n");
    auto r = read_knob(KernelFs(root.path()), Knob::swappiness);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error().message, "vm.swappiness")) << r.error().message;
    EXPECT_TRUE(contains(r.error().message, "lots")) << r.error().message;

    FaultFs ffs(root.path());
    ffs.read_errno["/proc/sys/vm/swappiness"] = EACCES;
    auto r2 = read_knob(ffs, Knob::swappiness);
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.error().sys_errno, EACCES);
    EXPECT_TRUE(contains(r2.error().message, "/proc/sys/vm/swappiness")) << r2.error().message;
}

TEST(SysctlIo, AppliesWritesDecimalOnceAndReadsBack) {
    TempRoot root;
    FaultFs ffs(root.path());
    auto r = apply_knob(ffs, Knob::min_free_kbytes, 101376, Range{0, 1048576});
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(*r, 101376);
    EXPECT_EQ(root.get("proc/sys/vm/min_free_kbytes"), "101376");
    EXPECT_EQ(ffs.writes, std::vector<std::string>{"/proc/sys/vm/min_free_kbytes=101376"});
}

TEST(SysctlIo, BoundsAreCheckedBeforeAnyWrite) {
    TempRoot root;
    FaultFs ffs(root.path());
    for (int64_t v : {int64_t{-1}, int64_t{201}, INT64_MAX, INT64_MIN}) {
        auto r = apply_knob(ffs, Knob::swappiness, v, Range{0, 200});
        ASSERT_FALSE(r.ok()) << v;
        const auto& m = r.error().message;
        EXPECT_TRUE(contains(m, "vm.swappiness")) << m;
        EXPECT_TRUE(contains(m, std::to_string(v))) << m;
        EXPECT_TRUE(contains(m, "0..200")) << m;
        EXPECT_EQ(r.error().sys_errno, 0);
    }
    // Empty range (min > max), e.g. a baseline above a configured max.
    auto r = apply_knob(ffs, Knob::swappiness, 50, Range{100, 60});
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(ffs.writes.empty());
    EXPECT_EQ(root.get("proc/sys/vm/swappiness"), "60\n");
    // The edges are inside.
    EXPECT_TRUE(apply_knob(ffs, Knob::swappiness, 0, Range{0, 200}).ok());
    EXPECT_TRUE(apply_knob(ffs, Knob::swappiness, 200, Range{0, 200}).ok());
}

TEST(SysctlIo, WriteErrorsKeepErrnoAndSayWhatToDo) {
    struct Case {
        int err;
        std::string_view advice;
    };
    const Case cases[] = {
        {EINVAL, "lower them in fragtune.toml"},
        {EACCES, "root with CAP_SYS_ADMIN"},
        {EPERM, "security module"},
        {EROFS, "read-only"},
        {ENOENT, "needs Linux 5.9"},
        {EIO, "writing 50 failed"},
    };
    TempRoot root;
    for (const auto& c : cases) {
        FaultFs ffs(root.path());
        ffs.write_errno = c.err;
        auto r = apply_knob(ffs, Knob::compaction_proactiveness, 50, Range{0, 100});
        ASSERT_FALSE(r.ok()) << c.err;
        EXPECT_EQ(r.error().sys_errno, c.err);
        EXPECT_TRUE(contains(r.error().message, "vm.compaction_proactiveness"))
            << r.error().message;
        EXPECT_TRUE(contains(r.error().message, c.advice)) << r.error().message;
        EXPECT_EQ(ffs.writes.size(), 1u);
    }
    EXPECT_EQ(root.get("proc/sys/vm/compaction_proactiveness"), "20\n");
}

TEST(SysctlIo, MissingKnobFileOnWriteIsEnoentFromTheRealDoor) {
    TempRoot root;
    fs::remove(root.path() / "proc/sys/vm/compaction_proactiveness");
    auto r = apply_knob(KernelFs(root.path()), Knob::compaction_proactiveness, 10, Range{0, 100});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().sys_errno, ENOENT);
    EXPECT_TRUE(contains(r.error().message, "lacks the knob")) << r.error().message;
    EXPECT_FALSE(fs::exists(root.path() / "proc/sys/vm/compaction_proactiveness"));  // not created
}

TEST(SysctlIo, ReadBackMismatchIsAnError) {
    TempRoot root;
    FaultFs ffs(root.path());
    ffs.read_as["/proc/sys/vm/watermark_scale_factor"] = "1000\n";  // kernel kept (clamped to) 1000
    auto r = apply_knob(ffs, Knob::watermark_scale_factor, 1500, Range{1, 3000});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "vm.watermark_scale_factor: wrote 1500 but kernel reports 1000");
}

TEST(SysctlIo, ReadBackFailuresAreErrors) {
    TempRoot root;
    {
        FaultFs ffs(root.path());
        ffs.read_as["/proc/sys/vm/swappiness"] = "garbage";
        auto r = apply_knob(ffs, Knob::swappiness, 30, Range{0, 200});
        ASSERT_FALSE(r.ok());
        EXPECT_TRUE(contains(r.error().message, "wrote 30 but cannot read it back"))
            << r.error().message;
    }
    {
        FaultFs ffs(root.path());
        ffs.read_errno["/proc/sys/vm/swappiness"] = ENOENT;
        auto r = apply_knob(ffs, Knob::swappiness, 30, Range{0, 200});
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().sys_errno, ENOENT);
        EXPECT_TRUE(contains(r.error().message, "vanished")) << r.error().message;
    }
    {
        FaultFs ffs(root.path());
        ffs.read_errno["/proc/sys/vm/swappiness"] = EIO;
        auto r = apply_knob(ffs, Knob::swappiness, 30, Range{0, 200});
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().sys_errno, EIO);
    }
}

TEST(SysctlIo, CompactMemoryWritesOne) {
    TempRoot root;
    FaultFs ffs(root.path());
    ASSERT_TRUE(write_compact_memory(ffs).ok());
    EXPECT_EQ(root.get("proc/sys/vm/compact_memory"), "1");
    EXPECT_EQ(ffs.writes, std::vector<std::string>{"/proc/sys/vm/compact_memory=1"});

    ffs.write_errno = EROFS;
    auto r = write_compact_memory(ffs);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().sys_errno, EROFS);
    EXPECT_TRUE(contains(r.error().message, "vm.compact_memory")) << r.error().message;

    fs::remove(root.path() / "proc/sys/vm/compact_memory");  // CONFIG_COMPACTION=n
    auto r2 = write_compact_memory(KernelFs(root.path()));
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.error().sys_errno, ENOENT);
}

// ---- opt-in: the real kernel --------------------------------------------------------------------

// Restores a knob to the value it had when the guard was made, whatever happens in between.
class RestoreGuard {
  public:
    RestoreGuard(const KernelFs& kfs, Knob k, int64_t original) : kfs_(kfs), k_(k), v_(original) {}
    ~RestoreGuard() {
        auto r = apply_knob(kfs_, k_, v_, Range{v_, v_});
        if (!r)
            ADD_FAILURE() << "could not restore " << spec(k_).sysctl << " to " << v_ << ": "
                          << r.error().describe();
    }
    RestoreGuard(const RestoreGuard&) = delete;
    RestoreGuard& operator=(const RestoreGuard&) = delete;

  private:
    const KernelFs& kfs_;
    Knob k_;
    int64_t v_;
};

TEST(SysctlIoRealKernel, WritesReadsBackAndRestoresSwappinessAndProactiveness) {
    const char* opt = std::getenv("FRAGTUNE_REAL_SYSCTL");
    if (opt == nullptr || std::string_view(opt) != "1")
        GTEST_SKIP() << "set FRAGTUNE_REAL_SYSCTL=1 (as root) to write the real /proc/sys/vm";
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to write /proc/sys/vm";

    KernelFs kfs("/");
    for (Knob k : {Knob::swappiness, Knob::compaction_proactiveness}) {
        SCOPED_TRACE(std::string(spec(k).sysctl));
        auto before = read_knob(kfs, k);
        ASSERT_TRUE(before.ok()) << before.error().describe();
        if (!before->has_value()) {
            // compaction_proactiveness needs 5.9; a kernel without it is fine.
            continue;
        }
        const int64_t original = **before;
        RestoreGuard guard(kfs, k, original);
        const Range r{0, 100};  // both knobs accept 0..100 on every kernel
        const int64_t target = original == 37 ? 38 : 37;
        auto w = apply_knob(kfs, k, target, r);
        if (!w && w.error().sys_errno == EROFS) GTEST_SKIP() << w.error().describe();
        ASSERT_TRUE(w.ok()) << w.error().describe();
        EXPECT_EQ(*w, target);
        auto now = read_knob(kfs, k);
        ASSERT_TRUE(now.ok() && now->has_value());
        EXPECT_EQ(**now, target);
    }
}

}  // namespace
