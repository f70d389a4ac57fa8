#include "fragtune/sensing/sysctl_io.hpp"

#include <cerrno>
#include <charconv>
#include <string>

#include <fmt/format.h>

#include "fragtune/util/text.hpp"
namespace fragtune {

namespace {

constexpr std::string_view kCompactMemoryPath = "/proc/sys/vm/compact_memory";

// What to do about a failed write, by errno. `target` names the sysctl, `attempt` what was written.
Error write_error(std::string_view target, std::string_view attempt, const Error& io,
                  std::string_view since_kernel) {
    const int e = io.sys_errno;
    switch (e) {
        case EINVAL:
            return make_error(
                fmt::format(
                    "{}: the kernel rejected {}; the running kernel accepts a narrower range "
                    "than the configured bounds: lower them in fragtune.toml",
                    target, attempt),
                e);
        case EACCES:
        case EPERM:
            return make_error(
                fmt::format(
                    "{}: not permitted to write {}; run fragtuned as root with CAP_SYS_ADMIN "
                    "(a security module or kernel lockdown may also refuse it), or set "
                    "mode = \"observe\"",
                    target, attempt),
                e);
        case EROFS:
            return make_error(
                fmt::format("{}: /proc/sys is read-only here (usually a container), so "
                            "{} was not written; run fragtuned on the host, or set "
                            "mode = \"observe\"",
                            target, attempt),
                e);
        case ENOENT:
            if (!since_kernel.empty())
                return make_error(
                    fmt::format("{}: this kernel lacks the knob (it needs Linux {} or later)",
                                target, since_kernel),
                    e);
            return make_error(fmt::format("{}: this kernel lacks the knob", target), e);
        default:
            return make_error(
                fmt::format("{}: writing {} failed ({})", target, attempt, io.message), e);
    }
}

}  // namespace

Result<int64_t> parse_sysctl_int(std::string_view text, std::string_view what) {
    const std::string_view t = trim(text);
    if (t.empty()) return make_error(fmt::format("{} is empty, expected an integer", what));
    int64_t v = 0;
    const char* end = t.data() + t.size();
    auto [p, ec] = std::from_chars(t.data(), end, v);
    if (ec == std::errc::result_out_of_range)
        return make_error(
            fmt::format("{} holds '{}', which does not fit a 64-bit integer", what, t));
    if (ec != std::errc() || p != end)
        return make_error(fmt::format("{} holds '{}', expected a single integer", what, t));
    return v;
}

Result<std::optional<int64_t>> read_knob(const KernelFs& fs, Knob knob) {
    const auto& s = spec(knob);
    auto text = fs.read(s.proc_path);
    if (!text) {
        if (text.error().sys_errno == ENOENT) return std::optional<int64_t>{};
        return make_error(fmt::format("{}: cannot read {}", s.sysctl, s.proc_path),
                          text.error().sys_errno);
    }
    auto v = parse_sysctl_int(*text, fmt::format("{} ({})", s.sysctl, s.proc_path));
    if (!v) return v.error();
    return std::optional<int64_t>{*v};
}

Result<int64_t> apply_knob(const KernelFs& fs, Knob knob, int64_t value, Range bounds) {
    const auto& s = spec(knob);
    if (bounds.min > bounds.max)
        return make_error(fmt::format("{}: empty allowed range {}..{}; {} not written", s.sysctl,
                                      bounds.min, bounds.max, value));
    if (!bounds.contains(value))
        return make_error(fmt::format("{}: {} is outside the allowed range {}..{}; not written",
                                      s.sysctl, value, bounds.min, bounds.max));
    const std::string text = std::to_string(value);
    if (auto w = fs.write_existing(s.proc_path, text); !w)
        return write_error(s.sysctl, text, w.error(), s.since_kernel);

    auto back = read_knob(fs, knob);
    if (!back)
        return make_error(fmt::format("{}: wrote {} but cannot read it back: {}", s.sysctl, value,
                                      back.error().message),
                          back.error().sys_errno);
    if (!back->has_value())
        return make_error(
            fmt::format("{}: wrote {} but {} vanished on read-back", s.sysctl, value, s.proc_path),
            ENOENT);
    if (**back != value)
        return make_error(
            fmt::format("{}: wrote {} but kernel reports {}", s.sysctl, value, **back));
    return **back;
}

Result<void> write_compact_memory(const KernelFs& fs) {
    if (auto w = fs.write_existing(kCompactMemoryPath, "1"); !w)
        return write_error("vm.compact_memory", "1", w.error(), "");
    return {};
}

}  // namespace fragtune
