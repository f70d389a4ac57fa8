#include "fragtune/sensing/kernel_fs.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

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

TEST_F(KernelFsTest, MakeDirsSetsTheModeOfANewDirectoryOnlyAndKeepsAnExistingOnes) {
    KernelFs kfs(root_);
    // An existing sticky world-writable directory (/var/tmp) keeps 1777 when a 0700 state
    // directory is asked for at that path (--state-path /var/tmp/state.toml).
    fs::create_directories(root_ / "var/tmp");
    ASSERT_EQ(::chmod((root_ / "var/tmp").c_str(), 01777), 0);
    ASSERT_TRUE(kfs.make_dirs("/var/tmp", 0700).ok());
    struct stat st {};
    ASSERT_EQ(::stat((root_ / "var/tmp").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 01777u);

    // A directory created here gets exactly the mode asked for, whatever the umask.
    const mode_t old_umask = ::umask(0077);
    auto r = kfs.make_dirs("/var/tmp/fragtune/state", 0755);
    ::umask(old_umask);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    ASSERT_EQ(::stat((root_ / "var/tmp/fragtune/state").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    ASSERT_TRUE(kfs.make_dirs("/var/lib/fragtune", 0700).ok());
    ASSERT_EQ(::stat((root_ / "var/lib/fragtune").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    ASSERT_EQ(::stat((root_ / "var/tmp").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 01777u);
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

// ---- only regular files, bounded ----------------------------------------------------------------

// A FIFO used to block open() until a writer came. Now it is refused at once, by name. (ctest's
// timeout is the backstop should it ever block again.)
TEST_F(KernelFsTest, RefusesAFifoWithoutBlocking) {
    ASSERT_EQ(::mkfifo((root_ / "fifo.conf").c_str(), 0644), 0);
    auto r = KernelFs(root_).read("/fifo.conf");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().describe(),
              "/fifo.conf is a FIFO, not a regular file: refused (it could block fragtuned)");
}

TEST_F(KernelFsTest, RefusesEveryOtherNonRegularFile) {
    fs::create_directories(root_ / "dir.conf");
    const std::string sock = (root_ / "sock.conf").string();
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    fs::create_symlink("/dev/zero", root_ / "zero.conf");  // would never end
    KernelFs kfs(root_);
    struct Case {
        std::string path, what;
    };
    for (const auto& c :
         std::vector<Case>{{"/dir.conf", "a directory"}, {"/zero.conf", "a character device"}}) {
        auto r = kfs.read(c.path);
        ASSERT_FALSE(r.ok()) << c.path;
        EXPECT_NE(r.error().message.find(c.path + " is " + c.what + ", not a regular file"),
                  std::string::npos)
            << r.error().describe();
    }
    // A socket cannot be opened at all (ENXIO); still an error naming the path, at once.
    auto s = kfs.read("/sock.conf");
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().describe().find("/sock.conf"), std::string::npos);
    ::close(fd);
}

// systemd masks a sysctl.d file with a symlink to /dev/null: that reads as an empty file.
TEST_F(KernelFsTest, TheNullDeviceReadsAsEmpty) {
    fs::create_symlink("/dev/null", root_ / "masked.conf");
    auto r = KernelFs(root_).read("/masked.conf", fragtune::kConfigFileLimits);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(*r, "");
}

TEST_F(KernelFsTest, RefusesFilesOverTheLimitNamingIt) {
    std::ofstream(root_ / "big.toml") << std::string(2000, '#');
    std::ofstream(root_ / "fits.toml") << std::string(1024, '#');
    const fragtune::ReadLimits limits{1024, "test files"};
    KernelFs kfs(root_);
    auto r = kfs.read("/big.toml", limits);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().sys_errno, EFBIG);
    EXPECT_EQ(r.error().message,
              "/big.toml is 2000 bytes, over the 1 KiB limit for test files: refused");
    auto ok = kfs.read("/fits.toml", limits);
    ASSERT_TRUE(ok.ok()) << ok.error().describe();
    EXPECT_EQ(ok->size(), 1024u);
}

TEST_F(KernelFsTest, NoFollowRefusesASymlinkButReadsTheFile) {
    std::ofstream(root_ / "real.toml") << "x = 1\n";
    fs::create_symlink(root_ / "real.toml", root_ / "link.toml");
    const fragtune::ReadLimits own{4096, "own files", true};
    KernelFs kfs(root_);
    EXPECT_EQ(*kfs.read("/real.toml", own), "x = 1\n");
    auto r = kfs.read("/link.toml", own);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("/link.toml is a symbolic link"), std::string::npos);
    EXPECT_EQ(*kfs.read("/link.toml"), "x = 1\n");  // others follow links (sysctl.d, config)
}

// A large regular file (a big state file) is read into its own string: the per-thread buffer for
// procfs files does not grow for it and keep the memory.
TEST_F(KernelFsTest, ALargeRegularFileLeavesTheReadBufferSmall) {
    const std::string big(8u << 20, 'x');
    std::ofstream(root_ / "big") << big;
    auto r = KernelFs(root_).read("/big");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, big);
    EXPECT_LE(KernelFs::read_buffer_bytes(), KernelFs::kKeptReadBufferBytes);
}

// A procfs file larger than the kept size grows the buffer for that read only; it is given back.
TEST_F(KernelFsTest, TheReadBufferIsGivenBackAfterALargeProcfsRead) {
    KernelFs live("/");
    auto r = live.read("/proc/kallsyms");
    if (!r.ok() || r->size() <= KernelFs::kKeptReadBufferBytes)
        GTEST_SKIP() << "no /proc/kallsyms larger than the kept buffer on this machine";
    EXPECT_LE(KernelFs::read_buffer_bytes(), KernelFs::kKeptReadBufferBytes);
    // All of it: kallsyms prints a page per read(), so a short read is not the end.
    std::ifstream in("/proc/kallsyms");
    const std::string whole{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    EXPECT_EQ(r->size(), whole.size());
    EXPECT_EQ(r->back(), '\n');
    // An ordinary procfs read afterwards still works with the small buffer.
    auto small = live.read("/proc/self/status");
    ASSERT_TRUE(small.ok());
    EXPECT_NE(small->find("VmRSS"), std::string::npos);
}

// ---- KernelFile: open once, pread every tick -------------------------------------------------

TEST_F(KernelFsTest, AKernelFileRereadsWithoutReopening) {
    KernelFs kfs(root_);
    auto f = kfs.open_file("/proc/sys/vm/swappiness");
    ASSERT_TRUE(f.ok()) << f.error().describe();
    EXPECT_TRUE(f->is_open());
    EXPECT_EQ(*f->read(), "60\n");
    // Rewritten in place (same inode, as the kernel's files are): the new text, same fd.
    std::ofstream(root_ / "proc/sys/vm/swappiness", std::ios::trunc) << "1\n";
    EXPECT_EQ(*f->read(), "1\n");
    std::ofstream(root_ / "proc/sys/vm/swappiness", std::ios::trunc) << "100\n";
    EXPECT_EQ(*f->read(), "100\n");
    EXPECT_EQ(f->opens(), 1u);
}

TEST_F(KernelFsTest, AKernelFileReopensAFileReplacedByRename) {
    KernelFs kfs(root_);
    auto f = kfs.open_file("/proc/sys/vm/swappiness");
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(*f->read(), "60\n");
    std::ofstream(root_ / "proc/sys/vm/.new") << "10\n";
    fs::rename(root_ / "proc/sys/vm/.new", root_ / "proc/sys/vm/swappiness");
    EXPECT_EQ(*f->read(), "10\n");
    EXPECT_EQ(f->opens(), 2u);
}

TEST_F(KernelFsTest, AKernelFileReportsAbsenceAndPicksTheFileUpOnceItExists) {
    KernelFs kfs(root_);
    auto f = kfs.open_file("/proc/pressure/memory");
    ASSERT_TRUE(f.ok()) << "a missing file still gives a handle";
    EXPECT_FALSE(f->is_open());
    auto r = f->read();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().sys_errno, ENOENT);
    EXPECT_EQ(r.error().message, "cannot open /proc/pressure/memory");
    fs::create_directories(root_ / "proc/pressure");
    std::ofstream(root_ / "proc/pressure/memory") << "some avg10=0.00\n";
    EXPECT_EQ(*f->read(), "some avg10=0.00\n");
    fs::remove(root_ / "proc/pressure/memory");
    auto gone = f->read();
    ASSERT_FALSE(gone.ok());
    EXPECT_EQ(gone.error().sys_errno, ENOENT);
}

TEST_F(KernelFsTest, AKernelFileRefusesWhatReadRefuses) {
    KernelFs kfs(root_);
    EXPECT_FALSE(kfs.open_file("proc/sys/vm/swappiness").ok());
    EXPECT_FALSE(kfs.open_file("/proc/sys/../../etc/shadow").ok());
    ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0644), 0);
    auto fifo = kfs.open_file("/fifo");
    ASSERT_TRUE(fifo.ok());
    auto r = fifo->read();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().describe(),
              "/fifo is a FIFO, not a regular file: refused (it could block fragtuned)");
    fs::create_directories(root_ / "dir");
    auto dir = kfs.open_file("/dir");
    EXPECT_NE(dir->read().error().message.find("/dir is a directory"), std::string::npos);
    std::ofstream(root_ / "big") << std::string(2000, '#');
    auto big = kfs.open_file("/big", fragtune::ReadLimits{1024, "test files"});
    auto b = big->read();
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.error().sys_errno, EFBIG);
    EXPECT_EQ(b.error().message,
              "/big is more than 1 KiB, over the 1 KiB limit for test files: refused");
    fs::create_symlink("/dev/null", root_ / "masked");
    EXPECT_EQ(*kfs.open_file("/masked")->read(), "");
    std::ofstream(root_ / "real") << "x\n";
    fs::create_symlink(root_ / "real", root_ / "link");
    auto link = kfs.open_file("/link", fragtune::ReadLimits{4096, "own files", true});
    EXPECT_EQ(link->read().error().sys_errno, ELOOP);
}

TEST_F(KernelFsTest, AKernelFileReadsLargeFilesWhole) {
    std::string big(100 * 1024, 'x');
    std::ofstream(root_ / "big") << big;
    auto f = KernelFs(root_).open_file("/big");
    EXPECT_EQ(f->read()->size(), big.size());
    EXPECT_EQ(f->read()->size(), big.size());
}

// The live kernel: procfs files are read whole by pread() at offset 0, again and again, through
// one open; zoneinfo needs several reads (one zone per seq_file record).
TEST_F(KernelFsTest, AKernelFileRereadsLiveProcfs) {
    KernelFs live("/");
    for (std::string_view path : {"/proc/zoneinfo", "/proc/vmstat", "/proc/meminfo"}) {
        auto f = live.open_file(path);
        ASSERT_TRUE(f.ok());
        auto first = f->read();
        if (!first.ok()) GTEST_SKIP() << first.error().describe();
        const std::string a(*first);
        const auto b = live.read(path);
        ASSERT_TRUE(b.ok());
        auto again = f->read();
        ASSERT_TRUE(again.ok()) << again.error().describe();
        // The counters move between reads; the shape (line count) does not.
        EXPECT_EQ(std::count(a.begin(), a.end(), '\n'), std::count(b->begin(), b->end(), '\n'))
            << path;
        EXPECT_EQ(std::count(again->begin(), again->end(), '\n'),
                  std::count(a.begin(), a.end(), '\n'))
            << path;
        EXPECT_EQ(again->back(), '\n');
        EXPECT_EQ(f->opens(), 1u) << path;
    }
}

}  // namespace
