#include "fragtune/kernel_fs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using fragtune::KernelFs;

namespace {

class KernelFsTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/fragtune-kfs-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
        fs::create_directories(root_ / "proc/sys/vm");
        std::ofstream(root_ / "proc/sys/vm/swappiness") << "60\n";
    }
    void TearDown() override { fs::remove_all(root_); }
    fs::path root_;
};

TEST_F(KernelFsTest, ReadsUnderRoot) {
    KernelFs kfs(root_);
    auto r = kfs.read("/proc/sys/vm/swappiness");
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(*r, "60\n");
}

TEST_F(KernelFsTest, ReadsFilesLargerThanTheFirstBuffer) {
    std::string big(100 * 1024, 'x');
    std::ofstream(root_ / "big") << big;
    auto r = KernelFs(root_).read("/big");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->size(), big.size());
}

TEST_F(KernelFsTest, MissingFileReportsEnoentAndPath) {
    auto r = KernelFs(root_).read("/proc/buddyinfo");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().sys_errno, ENOENT);
    EXPECT_NE(r.error().describe().find("/proc/buddyinfo"), std::string::npos);
}

TEST_F(KernelFsTest, RefusesRelativeAndDotDotPaths) {
    KernelFs kfs(root_);
    EXPECT_FALSE(kfs.resolve("proc/sys/vm/swappiness").ok());
    EXPECT_FALSE(kfs.resolve("/proc/sys/vm/../../../etc/passwd").ok());
    EXPECT_FALSE(kfs.read("/proc/sys/../../etc/shadow").ok());
    EXPECT_FALSE(kfs.write_existing("/proc/../x", "1").ok());
    auto ok = kfs.resolve("/proc/sys/vm/swappiness");
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(*ok, root_ / "proc/sys/vm/swappiness");
}

TEST_F(KernelFsTest, WriteExistingNeverCreates) {
    KernelFs kfs(root_);
    ASSERT_TRUE(kfs.write_existing("/proc/sys/vm/swappiness", "10").ok());
    EXPECT_EQ(*kfs.read("/proc/sys/vm/swappiness"), "10");
    auto r = kfs.write_existing("/proc/sys/vm/nonexistent", "1");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().sys_errno, ENOENT);
    EXPECT_FALSE(fs::exists(root_ / "proc/sys/vm/nonexistent"));
}

TEST_F(KernelFsTest, WriteAtomicReplacesWithModeAndLeavesNoTemp) {
    KernelFs kfs(root_);
    ASSERT_TRUE(kfs.make_dirs("/etc/sysctl.d").ok());
    ASSERT_TRUE(kfs.write_atomic("/etc/sysctl.d/90-fragtune.conf", "old\n", 0644).ok());
    ASSERT_TRUE(kfs.write_atomic("/etc/sysctl.d/90-fragtune.conf", "new\n", 0600).ok());
    EXPECT_EQ(*kfs.read("/etc/sysctl.d/90-fragtune.conf"), "new\n");
    struct stat st {};
    ASSERT_EQ(::stat((root_ / "etc/sysctl.d/90-fragtune.conf").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    auto names = kfs.list_dir("/etc/sysctl.d");
    ASSERT_TRUE(names.ok());
    EXPECT_EQ(*names, std::vector<std::string>{"90-fragtune.conf"});
}

TEST_F(KernelFsTest, WriteAtomicFailureLeavesOldFile) {
    KernelFs kfs(root_);
    ASSERT_TRUE(kfs.make_dirs("/etc/sysctl.d").ok());
    ASSERT_TRUE(kfs.write_atomic("/etc/sysctl.d/a.conf", "old\n").ok());
    // A directory where the temp file should go makes creation fail.
    fs::create_directory(root_ / "etc/sysctl.d/.a.conf.fragtune-tmp");
    auto r = kfs.write_atomic("/etc/sysctl.d/a.conf", "new\n");
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(*kfs.read("/etc/sysctl.d/a.conf"), "old\n");
}

TEST_F(KernelFsTest, RemovesOnlyOurStaleTemps) {
    KernelFs kfs(root_);
    fs::create_directories(root_ / "etc/sysctl.d");
    std::ofstream(root_ / "etc/sysctl.d/.90-fragtune.conf.fragtune-tmp") << "partial";
    std::ofstream(root_ / "etc/sysctl.d/10-other.conf") << "vm.swappiness = 1\n";
    auto r = kfs.remove_stale_temps("/etc/sysctl.d");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 1);
    EXPECT_EQ(*kfs.list_dir("/etc/sysctl.d"), std::vector<std::string>{"10-other.conf"});
}

}  // namespace
