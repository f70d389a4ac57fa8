#include "fragtune/sensing/psi_trigger.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "fragtune/sensing/kernel_fs.hpp"

using namespace fragtune;

namespace {

TEST(PsiTrigger, TextEndsInTheNulTheKernelOverwrites) {
    const std::string t = psi_trigger_text({70'000, 1'000'000});
    EXPECT_EQ(t, std::string("some 70000 1000000\0", 19));
    EXPECT_EQ(t.back(), '\0');
}

TEST(PsiTrigger, UnprivilegedWindowsAreMultiplesOfTwoSeconds) {
    EXPECT_FALSE(psi_trigger_unprivileged_ok({70'000, 1'000'000}));
    EXPECT_TRUE(psi_trigger_unprivileged_ok({140'000, 2'000'000}));
    EXPECT_TRUE(psi_trigger_unprivileged_ok({140'000, 4'000'000}));
    EXPECT_FALSE(psi_trigger_unprivileged_ok({140'000, 3'000'000}));
}

TEST(PsiTrigger, UnprivilegedFallbackRoundsTheWindowUpAndScalesTheStall) {
    auto f = psi_trigger_unprivileged_fallback({70'000, 1'000'000});
    ASSERT_TRUE(f);
    EXPECT_EQ(f->stall_usec, 140'000u);
    EXPECT_EQ(f->window_usec, 2'000'000u);
    f = psi_trigger_unprivileged_fallback({500'000, 2'500'000});
    ASSERT_TRUE(f);
    EXPECT_EQ(f->window_usec, 4'000'000u);
    EXPECT_EQ(f->stall_usec, 800'000u);
    EXPECT_FALSE(psi_trigger_unprivileged_fallback({140'000, 2'000'000}));  // already fine
    f = psi_trigger_unprivileged_fallback({100'000, 9'500'000});            // up to the 10 s limit
    ASSERT_TRUE(f);
    EXPECT_EQ(f->window_usec, 10'000'000u);
}

TEST(PsiTrigger, FailuresSayWhyAndThatFragtunedPolls) {
    const PsiTriggerSpec one{70'000, 1'000'000}, two{140'000, 2'000'000};
    EXPECT_EQ(psi_trigger_failure("/proc/pressure/memory", ENOENT, one),
              "PSI trigger 'some 70000 1000000' on /proc/pressure/memory: the file does not exist "
              "(a kernel without CONFIG_PSI, or booted with psi=0); polling instead");
    EXPECT_NE(psi_trigger_failure("/sys/fs/cgroup/a.slice/memory.pressure", ENOENT, one)
                  .find("not a cgroup v2 directory"),
              std::string::npos);
    EXPECT_NE(psi_trigger_failure("/proc/pressure/memory", EPERM, one)
                  .find("without CAP_SYS_RESOURCE the window must be a multiple of 2s, and "
                        "psi_trigger_window is 1s"),
              std::string::npos);
    EXPECT_NE(psi_trigger_failure("/proc/pressure/memory", EPERM, two).find("before 6.5"),
              std::string::npos);
    EXPECT_EQ(psi_trigger_failure("/proc/pressure/memory", EINVAL, one),
              "PSI trigger 'some 70000 1000000' on /proc/pressure/memory: the kernel refused the "
              "trigger: without CAP_SYS_RESOURCE the window must be a multiple of 2s, and "
              "psi_trigger_window is 1s (or a kernel older than 5.2); polling instead");
    EXPECT_NE(psi_trigger_failure("/proc/pressure/memory", EINVAL, two).find("older than 5.2"),
              std::string::npos);
    EXPECT_NE(psi_trigger_failure("/proc/pressure/memory", EOPNOTSUPP, one).find("disabled"),
              std::string::npos);
    EXPECT_NE(
        psi_trigger_failure("/sys/fs/cgroup/x/memory.pressure", EROFS, one).find("ReadWritePaths"),
        std::string::npos);
}

// The fd side through KernelFs: rooted like every path, only on the kernel's file systems; errors
// keep errno.
TEST(PsiTrigger, OpenTriggerRefusesFilesThatAreNotTheKernelsAndStaysUnderTheRoot) {
    char tmpl[] = "/tmp/fragtune-psi-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::filesystem::path root = tmpl;
    std::filesystem::create_directories(root / "proc/pressure");
    std::ofstream(root / "proc/pressure/memory") << "";
    KernelFs fs(root);
    const std::string text = psi_trigger_text({70'000, 1'000'000});
    // A regular file in a fixture tree is not the kernel's PSI file: refused, and left as it was
    // (a trigger written into it would corrupt the fixture).
    auto fd = fs.open_trigger("/proc/pressure/memory", text);
    ASSERT_FALSE(fd.ok());
    EXPECT_EQ(fd.error().sys_errno, EMEDIUMTYPE);
    // ... and the operator is told so, not that PSI is disabled.
    const std::string note =
        psi_trigger_failure("/proc/pressure/memory", fd.error().sys_errno, {70'000, 1'000'000});
    EXPECT_NE(note.find("not the kernel's PSI file"), std::string::npos) << note;
    EXPECT_EQ(note.find("disabled"), std::string::npos) << note;
    EXPECT_NE(fd.error().message.find("not a kernel PSI file"), std::string::npos);
    std::ifstream in(root / "proc/pressure/memory", std::ios::binary);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "");

    auto absent = fs.open_trigger("/sys/fs/cgroup/gone/memory.pressure", text);
    ASSERT_FALSE(absent.ok());
    EXPECT_EQ(absent.error().sys_errno, ENOENT);
    EXPECT_NE(absent.error().message.find("/sys/fs/cgroup/gone/memory.pressure"),
              std::string::npos);
    EXPECT_FALSE(fs.open_trigger("/proc/../etc/passwd", text).ok());  // never outside the root
    std::filesystem::remove_all(root);
}

// The live kernel's PSI file takes a trigger (a 2 s window: allowed without CAP_SYS_RESOURCE since
// 6.5; older kernels need the capability, which root has). Closing the fd removes it again.
TEST(PsiTrigger, ArmsOnTheLiveKernelsPsiFile) {
    if (::access("/proc/pressure/memory", W_OK) != 0)
        GTEST_SKIP() << "no writable /proc/pressure/memory";
    KernelFs fs("/");
    auto fd = fs.open_trigger("/proc/pressure/memory", psi_trigger_text({500'000, 2'000'000}));
    ASSERT_TRUE(fd.ok()) << fd.error().describe();
    EXPECT_GE(fd->get(), 0);
}

}  // namespace
