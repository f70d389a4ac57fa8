// One Sample: everything fragtune knows about the kernel's memory at one instant, read in one pass and
// stamped with the monotonic clock, plus the signals derived against the previous sample.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/knobs/tunables.hpp"
#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/sensing/kernel_profile.hpp"
#include "fragtune/sensing/parsers.hpp"
#include "fragtune/sensing/signals.hpp"
#include "fragtune/util/result.hpp"

namespace fragtune {

struct Sample {
    uint64_t mono_usec = 0;  // CLOCK_MONOTONIC at the start of the read
    BuddyInfo buddy;
    ZoneInfo zoneinfo;
    VmStat vmstat;
    MemInfo meminfo;
    std::optional<Psi> psi;  // absent: no PSI on this kernel / cgroup
    // why psi is absent ("" when it is present): missing, unreadable, unparsable
    std::string psi_error;
    // live values; absent: kernel lacks the knob
    std::array<std::optional<int64_t>, kKnobCount> knobs{};
    std::optional<KernelVersion> kernel;  // = profile.version (kept for the version checks)
    KernelProfile profile;                // resolved once by the Sampler, the same in every sample
    // 6.18+: vm.vfs_cache_pressure_denom (the effective pressure is vfs_cache_pressure / denom, so
    // 100 / 100 is the default); absent on older kernels, where the denominator is 100.
    std::optional<int64_t> vfs_cache_pressure_denom;
    std::vector<AllocFailure> failures;  // kernel-log failures since the previous sample
    uint64_t kmsg_lost = 0;
    Signals signals;

    std::optional<int64_t> knob(Knob k) const { return knobs[index(k)]; }
};

struct SignalOptions {
    std::vector<int> target_orders = {3, 9};
};

// Pure: fills cur.signals from cur and (when given) the previous sample. Counter deltas and PSI stall
// times need `prev`; without it they are absent and interval_usec is 0.
void derive_signals(const Sample* prev, Sample& cur, const SignalOptions& options);

// The PSI file for a configured source: "system" -> /proc/pressure/memory, otherwise
// "<cgroup dir>/memory.pressure".
std::string psi_path_for(std::string_view psi_source);

struct SamplerOptions {
    std::string psi_path = "/proc/pressure/memory";  // or "<cgroup dir>/memory.pressure"
    SignalOptions signals;
};

// Reads the five /proc files, the PSI file and the knob values through a KernelFs, parses them, and
// derives signals against the previous sample it keeps. Not thread-safe; one per loop.
class Sampler {
  public:
    // Resolves the kernel profile once, here (resolve_kernel_profile).
    Sampler(const KernelFs& fs, SamplerOptions options);

    // A full sample at `mono_usec`, with the kernel-log failures gathered since the last call.
    // A missing or malformed mandatory file (buddyinfo, zoneinfo, vmstat, meminfo) is an error naming
    // it; the previous sample is then kept for the next delta. PSI and knob files are optional.
    Result<Sample> take(uint64_t mono_usec, std::vector<AllocFailure> failures = {},
                        uint64_t kmsg_lost = 0);

    const std::optional<Sample>& previous() const { return prev_; }
    void set_options(SamplerOptions options) { options_ = std::move(options); }
    const KernelProfile& profile() const { return profile_; }
    // The daemon narrows a knob's range here when the kernel refuses a write (narrow_range()); the
    // next sample carries it.
    KernelProfile& profile() { return profile_; }

  private:
    const KernelFs& fs_;
    SamplerOptions options_;
    KernelProfile profile_;
    std::optional<Sample> prev_;
};

}  // namespace fragtune
