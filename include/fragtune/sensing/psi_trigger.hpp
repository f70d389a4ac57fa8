// PSI triggers (Documentation/accounting/psi.rst, "Monitoring for pressure thresholds"): writing
// "some <stall_us> <window_us>" to /proc/pressure/memory or a cgroup's memory.pressure arms a trigger
// on that open fd; the kernel then wakes poll()/epoll with POLLPRI when tasks stalled for at least
// stall_us within any window_us, and with POLLERR when the file goes away (the cgroup was removed).
//
// This is the pure part: the text to write, the kernel's limits on the values, and what an errno from
// arming means for the operator. Opening and writing go through KernelFs::open_trigger().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fragtune {

// The kernel's window range (psi.rst: "window size must be between 500ms and 10s").
inline constexpr uint64_t kPsiTriggerMinWindowUsec = 500'000;
inline constexpr uint64_t kPsiTriggerMaxWindowUsec = 10'000'000;
// Without CAP_SYS_RESOURCE (Linux >= 6.5 lets unprivileged users arm triggers at all), the window
// must be a multiple of 2 s: those triggers ride the 2 s averaging work instead of the RT poller.
inline constexpr uint64_t kPsiTriggerUnprivilegedWindowUsec = 2'000'000;

struct PsiTriggerSpec {
    uint64_t stall_usec = 0;   // least stall time within one window that fires the trigger
    uint64_t window_usec = 0;  // the tracking window
};

// True when an unprivileged process may arm `spec` (window a multiple of 2 s).
bool psi_trigger_unprivileged_ok(const PsiTriggerSpec& spec);

// What to try when the kernel refused `spec` for want of CAP_SYS_RESOURCE: the window rounded up to
// a multiple of 2 s (the stall scaled to the same share of it), or nullopt when `spec` already is
// one or the rounded window would exceed 10 s. Such a trigger is checked only every 2 s, so it
// wakes later than a privileged one, but sooner than the calm tick.
std::optional<PsiTriggerSpec> psi_trigger_unprivileged_fallback(const PsiTriggerSpec& spec);

// The bytes to write: "some <stall_us> <window_us>" and a terminating NUL. The NUL is needed: the
// kernel (psi_write()) overwrites the last byte of what it is given with one, so a string without a
// terminator would lose its last digit (Android's lmkd writes strlen + 1 for the same reason).
std::string psi_trigger_text(const PsiTriggerSpec& spec);

// One line for the operator on why arming failed with `sys_errno` on `path`, ending in what fragtuned
// does instead ("...; polling instead"). Distinguishes no PSI / no cgroup v2 (ENOENT), PSI disabled
// (EOPNOTSUPP), a file that is not the kernel's (EMEDIUMTYPE, from KernelFs::open_trigger), missing
// privilege (EPERM, EACCES: with the 2 s rule when the window breaks it), a
// read-only cgroup file system (EROFS: ProtectControlGroups=yes), and
// a kernel that refused the values (EINVAL: older than 5.2 or outside its limits).
std::string psi_trigger_failure(std::string_view path, int sys_errno, const PsiTriggerSpec& spec);

}  // namespace fragtune
