// One Sample: everything fragtune knows about the kernel's memory at one instant, read in one pass and
// stamped with the monotonic clock, plus the signals derived against the previous sample.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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
    // Read only when the decision needs it (zoneinfo_reason()): when `zoneinfo_fresh` is false it
    // is the last fresh read, taken at `zoneinfo_mono_usec`, and the zones' free pages in
    // signals come from buddyinfo (current) while the watermarks are the last known ones.
    ZoneInfo zoneinfo;
    bool zoneinfo_fresh = true;
    uint64_t zoneinfo_mono_usec = 0;
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

// When /proc/zoneinfo is read (the expensive file: its per-CPU pagesets are megabytes on a
// 256-CPU machine). The other files are read every tick.
struct ZoneinfoPolicy {
    // A fresh read at least every this many ticks while calm (1: every tick, the old behaviour).
    uint32_t every_ticks = 10;
    // PSI "some" (avg10, or the share of the last interval) at or above this is trouble: the
    // relax threshold of the rules that read watermarks.
    double psi_some_percent = 0.1;
    // After trouble, read fresh for this many ticks: the controller's dip and failure history
    // spans 8 ticks, and its raises must never act on stale watermarks.
    uint32_t settle_ticks = 8;
};

// What the Sampler remembers between ticks for the policy.
struct ZoneinfoState {
    bool have = false;              // a fresh read has been made
    uint32_t ticks_since_read = 0;  // ticks since the last fresh read
    uint32_t ticks_since_trouble = UINT32_MAX;
    // min_free_kbytes and watermark_scale_factor at the last fresh read: the watermarks follow
    // them, so a change means the known watermarks are stale.
    std::optional<int64_t> min_free_kbytes, watermark_scale_factor;
};

enum class ZoneinfoReason {
    none,            // the last read will do
    first,           // no read yet
    forced,          // the caller asked (a raise of min_free_kbytes/watermark_scale_factor)
    periodic,        // every_ticks calm ticks since the last read
    knobs_changed,   // min_free_kbytes or watermark_scale_factor moved: watermarks moved
    near_watermark,  // a zone's free pages (buddyinfo, now) near its last known low watermark
    failures,        // allocation failures in the kernel log
    stalls,          // allocstall, pgscan_direct or compact_stall moved
    psi,             // PSI at or above the policy's threshold
    settling,        // trouble within the last settle_ticks ticks
};
std::string_view to_string(ZoneinfoReason r);

// Pure: whether this tick must read zoneinfo, and why. `cur` holds this tick's cheap files
// (buddyinfo, vmstat, PSI, knobs, failures; its zoneinfo is not looked at), `prev` the previous
// sample (nullptr on the first) whose zoneinfo holds the last known watermarks. A zone is near
// its watermark when its free pages are below high + (high - min) of the last read, i.e. within
// one watermark gap of kswapd's wake-up point.
ZoneinfoReason zoneinfo_reason(const Sample& cur, const Sample* prev, const ZoneinfoState& state,
                               const ZoneinfoPolicy& policy, bool forced = false);

struct SamplerOptions {
    std::string psi_path = "/proc/pressure/memory";  // or "<cgroup dir>/memory.pressure"
    SignalOptions signals;
    ZoneinfoPolicy zoneinfo;
};

// Reads the /proc files, the PSI file and the knob values through a KernelFs, parses them, and
// derives signals against the previous sample it keeps. The files are opened once and pread()
// each tick (KernelFile), the parsed values land in storage kept from the tick before (two Samples
// used in turn), so a steady-state tick that skips zoneinfo allocates nothing (tested in
// tests/alloc). Not thread-safe; one per loop.
class Sampler {
  public:
    // Resolves the kernel profile once, here (resolve_kernel_profile), and opens the files.
    Sampler(const KernelFs& fs, SamplerOptions options);

    // The next sample at `mono_usec`, with the kernel-log failures gathered since the last call.
    // Owned by the Sampler: valid until the next call of next() or take(). A missing or
    // malformed mandatory file (buddyinfo, zoneinfo, vmstat, meminfo) is an error naming it; the
    // previous sample is then kept for the next delta. PSI and knob files are optional.
    // `force_zoneinfo`: read zoneinfo whatever the policy says.
    Result<const Sample*> next(uint64_t mono_usec, std::vector<AllocFailure> failures = {},
                               uint64_t kmsg_lost = 0, bool force_zoneinfo = false);
    // next(), copied out.
    Result<Sample> take(uint64_t mono_usec, std::vector<AllocFailure> failures = {},
                        uint64_t kmsg_lost = 0);

    // The last good sample, or nullptr before the first.
    const Sample* previous() const { return have_prev_ ? &buf_[cur_ ^ 1] : nullptr; }
    // Why the last good sample read zoneinfo (none: it carries the read before).
    ZoneinfoReason last_zoneinfo_reason() const { return zi_reason_; }
    void set_options(SamplerOptions options);
    const KernelProfile& profile() const { return profile_; }
    // The daemon narrows a knob's range here when the kernel refuses a write (narrow_range()); the
    // next sample carries it.
    KernelProfile& profile() { return profile_; }

  private:
    void open_files();

    const KernelFs& fs_;
    SamplerOptions options_;
    KernelProfile profile_;
    KernelFile buddyinfo_, zoneinfo_, vmstat_, meminfo_, psi_, vfs_denom_;
    std::array<KernelFile, kKnobCount> knob_files_;
    std::array<Sample, 2> buf_;
    unsigned cur_ = 0;  // buf_[cur_] is written by the next call; buf_[cur_ ^ 1] is the last
    bool have_prev_ = false;
    ZoneinfoState zi_state_;
    ZoneinfoReason zi_reason_ = ZoneinfoReason::none;
};

}  // namespace fragtune
