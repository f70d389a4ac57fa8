#include "fragtune/sensing/psi_trigger.hpp"

#include <cerrno>
#include <cstring>

#include <algorithm>

#include <fmt/format.h>

#include "fragtune/util/units.hpp"

namespace fragtune {

bool psi_trigger_unprivileged_ok(const PsiTriggerSpec& spec) {
    return spec.window_usec % kPsiTriggerUnprivilegedWindowUsec == 0;
}

std::optional<PsiTriggerSpec> psi_trigger_unprivileged_fallback(const PsiTriggerSpec& spec) {
    if (psi_trigger_unprivileged_ok(spec)) return std::nullopt;
    const uint64_t step = kPsiTriggerUnprivilegedWindowUsec;
    const uint64_t window = (spec.window_usec + step - 1) / step * step;
    if (window > kPsiTriggerMaxWindowUsec) return std::nullopt;
    // The same share of the window: 70 ms in 1 s becomes 140 ms in 2 s.
    const uint64_t stall =
        static_cast<uint64_t>(static_cast<double>(spec.stall_usec) * static_cast<double>(window) /
                              static_cast<double>(spec.window_usec));
    return PsiTriggerSpec{std::min(std::max<uint64_t>(stall, 1), window), window};
}

std::string psi_trigger_text(const PsiTriggerSpec& spec) {
    std::string out = fmt::format("some {} {}", spec.stall_usec, spec.window_usec);
    out.push_back('\0');
    return out;
}

std::string psi_trigger_failure(std::string_view path, int sys_errno, const PsiTriggerSpec& spec) {
    std::string why;
    switch (sys_errno) {
        case ENOENT:
            why = path.starts_with("/proc/")
                      ? "the file does not exist (a kernel without CONFIG_PSI, or booted with "
                        "psi=0)"
                      : "no memory.pressure there (not a cgroup v2 directory, or the kernel has "
                        "no PSI)";
            break;
        case EOPNOTSUPP:
            why = "PSI is disabled in this kernel (psi=0 or cgroup.pressure is 0)";
            break;
        case EMEDIUMTYPE:
            why =
                "not the kernel's PSI file (not on procfs or cgroupfs: a fixture root or a copy), "
                "so no trigger was written";
            break;
        case EPERM:
        case EACCES:
            why = psi_trigger_unprivileged_ok(spec)
                      ? "not permitted (kernels before 6.5 need CAP_SYS_RESOURCE for any trigger, "
                        "or the file is not writable)"
                      : fmt::format(
                            "not permitted: without CAP_SYS_RESOURCE the window must be a "
                            "multiple of 2s, and psi_trigger_window is {}",
                            format_duration_usec(spec.window_usec));
            break;
        case EROFS:
            why =
                "the file system is read-only (under systemd, ProtectControlGroups=yes: allow the "
                "cgroup with ReadWritePaths= in a drop-in)";
            break;
        case EINVAL:
            // Linux >= 6.5 answers an unprivileged window that is not a 2 s multiple with EINVAL.
            why = psi_trigger_unprivileged_ok(spec)
                      ? std::string(
                            "the kernel refused the trigger (a kernel older than 5.2, or "
                            "values outside its limits)")
                      : fmt::format(
                            "the kernel refused the trigger: without CAP_SYS_RESOURCE the "
                            "window must be a multiple of 2s, and psi_trigger_window is {} "
                            "(or a kernel older than 5.2)",
                            format_duration_usec(spec.window_usec));
            break;
        default:
            why = std::strerror(sys_errno);
            break;
    }
    return fmt::format("PSI trigger '{}' on {}: {}; polling instead",
                       psi_trigger_text(spec).c_str(), path, why);
}

}  // namespace fragtune
