// The Sampler: one pass over the kernel's memory files through KernelFs, parsed and derived into a
// Sample. Its renderings are in reporting/sample_render.cpp.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

#include <fmt/format.h>

#include "fragtune/sensing/sample.hpp"

namespace fragtune {

namespace {

constexpr std::string_view kBuddyinfo = "/proc/buddyinfo";
constexpr std::string_view kZoneinfo = "/proc/zoneinfo";
constexpr std::string_view kVmstat = "/proc/vmstat";
constexpr std::string_view kMeminfo = "/proc/meminfo";
constexpr std::string_view kVfsDenom = kVfsCachePressureDenomPath;

// Reads and parses one mandatory file; both failure kinds name the file (KernelFs and the parsers
// put the path in their messages).
template <typename T, typename Parse>
Result<T> read_parsed(const KernelFs& fs, std::string_view path, Parse parse) {
    auto text = fs.read(path);
    if (!text) return text.error();
    return parse(*text, path);
}

}  // namespace

std::string psi_path_for(std::string_view psi_source) {
    return psi_source == "system" ? std::string("/proc/pressure/memory")
                                  : std::string(psi_source) + "/memory.pressure";
}

Sampler::Sampler(const KernelFs& fs, SamplerOptions options)
    : fs_(fs), options_(std::move(options)), profile_(resolve_kernel_profile(fs)) {}

Result<Sample> Sampler::take(uint64_t mono_usec, std::vector<AllocFailure> failures,
                             uint64_t kmsg_lost) {
    Sample s;
    s.mono_usec = mono_usec;

    auto buddy = read_parsed<BuddyInfo>(
        fs_, kBuddyinfo,
        [](std::string_view t, std::string_view p) { return parse_buddyinfo(t, p); });
    if (!buddy) return buddy.error();
    s.buddy = std::move(*buddy);

    auto zones = read_parsed<ZoneInfo>(fs_, kZoneinfo, [](std::string_view t, std::string_view p) {
        return parse_zoneinfo(t, p);
    });
    if (!zones) return zones.error();
    s.zoneinfo = std::move(*zones);

    auto vm = read_parsed<VmStat>(
        fs_, kVmstat, [](std::string_view t, std::string_view p) { return parse_vmstat(t, p); });
    if (!vm) return vm.error();
    s.vmstat = std::move(*vm);

    auto mem = read_parsed<MemInfo>(
        fs_, kMeminfo, [](std::string_view t, std::string_view p) { return parse_meminfo(t, p); });
    if (!mem) return mem.error();
    s.meminfo = std::move(*mem);

    // PSI is optional: absent without CONFIG_PSI, with psi=0 (the file is missing or reads fail
    // with EOPNOTSUPP), or when the configured cgroup is gone. A file that exists but does not
    // parse is treated the same way: tuning without PSI is degraded, tuning not at all would be
    // worse. Either way the sample says why (psi_error), so that it is never silent.
    if (auto text = fs_.read(options_.psi_path)) {
        if (auto psi = parse_psi(*text, options_.psi_path))
            s.psi = std::move(*psi);
        else
            s.psi_error = fmt::format("PSI file does not parse: {}", psi.error().describe());
    } else if (text.error().sys_errno == ENOENT) {
        s.psi_error = fmt::format(
            "no PSI: {} does not exist (kernel without CONFIG_PSI, booted with psi=0, or the "
            "cgroup is gone)",
            options_.psi_path);
    } else {
        s.psi_error = fmt::format("PSI unreadable: {}", text.error().describe());
    }

    s.profile = profile_;
    s.kernel = profile_.version;
    if (auto text = fs_.read(kVfsDenom)) {
        if (auto v = parse_sysctl_int(*text, kVfsDenom); v && *v > 0)
            s.vfs_cache_pressure_denom = *v;
    }

    // A knob this kernel lacks (compaction_proactiveness before 5.9) is absent, as is one whose
    // file cannot be read or parsed: the controller leaves an absent knob alone.
    for (const auto& t : kTunables) {
        if (auto text = fs_.read(t.proc_path)) {
            if (auto v = parse_sysctl_int(*text, t.proc_path)) s.knobs[index(t.knob)] = *v;
        }
    }

    s.failures = std::move(failures);
    s.kmsg_lost = kmsg_lost;

    derive_signals(prev_ ? &*prev_ : nullptr, s, options_.signals);
    prev_ = s;
    return s;
}

}  // namespace fragtune
