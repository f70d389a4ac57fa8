// The instance lock: one holder per lock file, a message that names the holder, released with the
// holder, and nothing but a regular file accepted at the path.
#include "fragtune/persisting/instance_lock.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace fragtune;

namespace {

class InstanceLockTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/fragtune-lock-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
    }
    void TearDown() override { fs::remove_all(root_); }
    fs::path root_;
};

}  // namespace

TEST_F(InstanceLockTest, OneHolderAtATimeNamedByPid) {
    KernelFs kfs(root_);
    EXPECT_EQ(lock_path_for("/var/lib/fragtune/state.toml"), "/var/lib/fragtune/state.toml.lock");
    auto first = InstanceLock::acquire(kfs, "/var/lib/fragtune/state.toml.lock");
    ASSERT_TRUE(first) << first.error().describe();
    // The directory is created 0700 (the unit's StateDirectoryMode), the file holds our pid.
    struct stat st {};
    ASSERT_EQ(::stat((root_ / "var/lib/fragtune").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    std::ifstream in(root_ / "var/lib/fragtune/state.toml.lock");
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_EQ(ss.str(), std::to_string(::getpid()) + "\n");

    auto second = InstanceLock::acquire(kfs, "/var/lib/fragtune/state.toml.lock");
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().describe(),
              "another fragtuned (pid " + std::to_string(::getpid()) +
                  ") holds /var/lib/fragtune/state.toml.lock: one instance per state file; "
                  "nothing was changed (use fragtunectl to talk to the running one)");

    // Released with its holder (moved-from objects release nothing).
    std::optional<InstanceLock> moved(std::move(*first));
    EXPECT_FALSE(InstanceLock::acquire(kfs, "/var/lib/fragtune/state.toml.lock"));
    moved.reset();
    EXPECT_TRUE(InstanceLock::acquire(kfs, "/var/lib/fragtune/state.toml.lock"));
}

TEST_F(InstanceLockTest, OnlyARegularFileIsALockFile) {
    KernelFs kfs(root_);
    fs::create_directories(root_ / "state");
    ASSERT_EQ(::mkfifo((root_ / "state/fifo.lock").c_str(), 0600), 0);
    auto fifo = InstanceLock::acquire(kfs, "/state/fifo.lock");  // must not block on the open
    ASSERT_FALSE(fifo);
    EXPECT_EQ(fifo.error().describe(), "the lock file /state/fifo.lock is not a regular file");
    fs::create_directories(root_ / "state/dir.lock");
    auto dir = InstanceLock::acquire(kfs, "/state/dir.lock");
    ASSERT_FALSE(dir);
    EXPECT_NE(dir.error().describe().find("/state/dir.lock"), std::string::npos);
    fs::create_symlink(root_ / "elsewhere", root_ / "state/link.lock");
    auto link = InstanceLock::acquire(kfs, "/state/link.lock");
    ASSERT_FALSE(link);
    EXPECT_NE(link.error().describe().find("cannot open the lock file /state/link.lock"),
              std::string::npos)
        << link.error().describe();
    EXPECT_FALSE(fs::exists(root_ / "elsewhere"));
    EXPECT_FALSE(InstanceLock::acquire(kfs, "relative/state.toml.lock"));
}
