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

// A handle for `path`; a path the KernelFs refuses (never one of ours) leaves an empty handle,
// whose read() says so.
KernelFile open_or_empty(const KernelFs& fs, std::string_view path) {
    auto f = fs.open_file(path);
    return f ? std::move(*f) : KernelFile();
}

bool is_trouble(ZoneinfoReason r) {
    switch (r) {
        case ZoneinfoReason::forced:
        case ZoneinfoReason::near_watermark:
        case ZoneinfoReason::failures:
        case ZoneinfoReason::stalls:
        case ZoneinfoReason::psi:
            return true;
        default:
            return false;
    }
}

}  // namespace

std::string psi_path_for(std::string_view psi_source) {
    return psi_source == "system" ? std::string("/proc/pressure/memory")
                                  : std::string(psi_source) + "/memory.pressure";
}

Sampler::Sampler(const KernelFs& fs, SamplerOptions options)
    : fs_(fs), options_(std::move(options)), profile_(resolve_kernel_profile(fs)) {
    open_files();
}

void Sampler::open_files() {
    buddyinfo_ = open_or_empty(fs_, kBuddyinfo);
    zoneinfo_ = open_or_empty(fs_, kZoneinfo);
    vmstat_ = open_or_empty(fs_, kVmstat);
    meminfo_ = open_or_empty(fs_, kMeminfo);
    psi_ = open_or_empty(fs_, options_.psi_path);
    vfs_denom_ = open_or_empty(fs_, kVfsDenom);
    for (const auto& t : kTunables) knob_files_[index(t.knob)] = open_or_empty(fs_, t.proc_path);
}

void Sampler::set_options(SamplerOptions options) {
    const bool psi_moved = options.psi_path != options_.psi_path;
    options_ = std::move(options);
    if (psi_moved) psi_ = open_or_empty(fs_, options_.psi_path);
}

Result<Sample> Sampler::take(uint64_t mono_usec, std::vector<AllocFailure> failures,
                             uint64_t kmsg_lost) {
    auto s = next(mono_usec, std::move(failures), kmsg_lost);
    if (!s) return s.error();
    return **s;
}

Result<const Sample*> Sampler::next(uint64_t mono_usec, std::vector<AllocFailure> failures,
                                    uint64_t kmsg_lost, bool force_zoneinfo) {
    Sample& s = buf_[cur_];
    Sample* prev = have_prev_ ? &buf_[cur_ ^ 1] : nullptr;
    s.mono_usec = mono_usec;

    // Mandatory files: an error names the file (KernelFile and the parsers put the path in their
    // messages).
    auto buddy = buddyinfo_.read();
    if (!buddy) return buddy.error();
    if (auto r = parse_buddyinfo_into(*buddy, s.buddy, kBuddyinfo); !r) return r.error();

    // vmstat and meminfo are parsed against the table the previous sample interned.
    auto vm = vmstat_.read();
    if (!vm) return vm.error();
    if (prev) s.vmstat.counters.share_names(prev->vmstat.counters);
    if (auto r = parse_vmstat_into(*vm, s.vmstat, kVmstat); !r) return r.error();

    auto mem = meminfo_.read();
    if (!mem) return mem.error();
    if (prev) s.meminfo.kib.share_names(prev->meminfo.kib);
    if (auto r = parse_meminfo_into(*mem, s.meminfo, kMeminfo); !r) return r.error();

    // PSI is optional: absent without CONFIG_PSI, with psi=0 (the file is missing or reads fail
    // with EOPNOTSUPP), or when the configured cgroup is gone. A file that exists but does not
    // parse is treated the same way: tuning without PSI is degraded, tuning not at all would be
    // worse. Either way the sample says why (psi_error), so that it is never silent.
    s.psi.reset();
    s.psi_error.clear();
    if (auto text = psi_.read()) {
        if (auto psi = parse_psi(*text, options_.psi_path))
            s.psi = *psi;
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
    s.vfs_cache_pressure_denom.reset();
    if (!vfs_denom_.absent()) {  // 6.18+ only
        if (auto text = vfs_denom_.read()) {
            if (auto v = parse_sysctl_int(*text, kVfsDenom); v && *v > 0)
                s.vfs_cache_pressure_denom = *v;
        }
    }

    // A knob this kernel lacks (compaction_proactiveness before 5.9) is absent, as is one whose
    // file cannot be read or parsed: the controller leaves an absent knob alone.
    for (const auto& t : kTunables) {
        auto& v = s.knobs[index(t.knob)];
        v.reset();
        KernelFile& f = knob_files_[index(t.knob)];
        if (f.absent()) continue;
        if (auto text = f.read()) {
            if (auto n = parse_sysctl_int(*text, t.proc_path)) v = *n;
        }
    }

    s.failures = std::move(failures);
    s.kmsg_lost = kmsg_lost;

    // zoneinfo last, when the cheap files say the decision needs it.
    const ZoneinfoReason why =
        zoneinfo_reason(s, prev, zi_state_, options_.zoneinfo, force_zoneinfo);
    if (why != ZoneinfoReason::none) {
        auto text = zoneinfo_.read();
        if (!text) return text.error();
        auto zones = parse_zoneinfo(*text, kZoneinfo);
        if (!zones) return zones.error();
        s.zoneinfo = std::move(*zones);
        s.zoneinfo_fresh = true;
        s.zoneinfo_mono_usec = mono_usec;
    } else {
        // The last read moves here (prev is not read again: after this call it is the scratch).
        std::swap(s.zoneinfo, prev->zoneinfo);
        s.zoneinfo_fresh = false;
        s.zoneinfo_mono_usec = prev->zoneinfo_mono_usec;
    }

    derive_signals(prev, s, options_.signals);

    // Only a good sample moves the policy's state.
    if (why != ZoneinfoReason::none) {
        zi_state_.have = true;
        zi_state_.ticks_since_read = 0;
        zi_state_.min_free_kbytes = s.knob(Knob::min_free_kbytes);
        zi_state_.watermark_scale_factor = s.knob(Knob::watermark_scale_factor);
    } else if (zi_state_.ticks_since_read < UINT32_MAX) {
        ++zi_state_.ticks_since_read;
    }
    if (is_trouble(why))
        zi_state_.ticks_since_trouble = 0;
    else if (zi_state_.ticks_since_trouble < UINT32_MAX)
        ++zi_state_.ticks_since_trouble;
    zi_reason_ = why;

    have_prev_ = true;
    cur_ ^= 1;
    return &buf_[cur_ ^ 1];
}

}  // namespace fragtune
