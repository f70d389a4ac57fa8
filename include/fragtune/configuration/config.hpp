// fragtune's configuration as plain structs with documented defaults. The TOML loader (config_file.hpp)
// fills these; with no file at all the daemon runs on exactly these defaults. Units are in the names.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/knobs/tunables.hpp"

namespace fragtune {

enum class Mode { active, observe, paused };
enum class OnExit { keep, restore };

std::string_view to_string(Mode m);
std::optional<Mode> mode_from_string(std::string_view s);
std::string_view to_string(OnExit e);

struct DaemonConfig {
    uint64_t tick_usec = 2'000'000;  // control loop period; range 100 ms .. 10 min
    Mode mode = Mode::active;
    // keep tuned values at stop (tuned's lesson) or restore originals
    OnExit on_exit = OnExit::keep;
    bool persist = true;  // write the sysctl.d file so values survive reboot
    std::string persist_path = "/etc/sysctl.d/90-fragtune.conf";
    // persist once values have not changed for this long
    uint64_t persist_settle_usec = 60'000'000;
    std::string state_path = "/var/lib/fragtune/state.toml";
    std::string log_level = "info";  // trace, debug, info, warn, error
    uint32_t history_size = 256;     // changes kept in memory and in the state file
};

struct SignalsConfig {
    // "system" reads /proc/pressure/memory; otherwise a cgroup v2 directory whose memory.pressure is
    // read (e.g. "/sys/fs/cgroup/system.slice/workload.service").
    std::string psi_source = "system";
    std::vector<int> target_orders = {3, 9};  // orders whose availability compaction defends
    bool kernel_log = true;                   // follow /dev/kmsg for allocation failures
    std::string kmsg_path = "/dev/kmsg";
    // /proc/zoneinfo (megabytes of per-CPU pagesets on a large machine) is read on trouble, near
    // a watermark, when the watermark knobs move, and at least every this many calm ticks.
    uint32_t zoneinfo_every = 10;  // ticks; 1 = every tick
};

// What every knob obeys. Bounds are intersected with the kernel's range; baseline is the value decayed
// back to (unset: the value found at first start).
struct KnobConfig {
    bool enabled = true;
    std::optional<int64_t> min;  // unset: the table's default_min (min_free_kbytes: the baseline)
    std::optional<int64_t> max;  // unset: the table's default_max
    std::optional<int64_t> baseline;      // unset: original value found at first start
    int64_t max_step = 0;                 // largest change in one tick (0: the policy's default)
    uint64_t cooldown_usec = 10'000'000;  // minimum time between two changes of this knob
    uint32_t max_changes_per_hour = 6;    // hard cap, counted over a sliding hour
    uint64_t calm_usec = 120'000'000;     // no trouble for this long before decay starts
    uint64_t decay_interval_usec = 30'000'000;  // one decay step per interval once calm
    // min_free_kbytes only: min/max/baseline given as a share of managed lowmem ("5%" in the file).
    // At most one of `min` and `min_lowmem_percent` is set (likewise max, baseline); the daemon resolves
    // the percentage at run time with resolve_lowmem_percent_kib(), since lowmem changes with hotplug.
    std::optional<double> min_lowmem_percent;
    std::optional<double> max_lowmem_percent;
    std::optional<double> baseline_lowmem_percent;
};

// `percent` of `managed_lowmem_kib`, rounded down to whole KiB.
inline int64_t resolve_lowmem_percent_kib(double percent, uint64_t managed_lowmem_kib) {
    return static_cast<int64_t>(percent * static_cast<double>(managed_lowmem_kib) / 100.0);
}

// Policy thresholds. Each pair is (raise, relax) so the controller has hysteresis.
struct MinFreePolicy {
    double raise_factor = 1.5;   // multiplicative raise on trouble
    int max_failure_order = 3;   // atomic failures up to this order count as reserve starvation
    uint32_t min_dip_ticks = 2;  // zone free <= min watermark in this many of the last 8 ticks
    // kswapd_low_wmark_hit_quickly rate that counts as trouble
    double kswapd_low_quick_per_sec = 5.0;
    // Additive decay step, KiB. Default 16384: one x1.5 raise of a typical 64-90 MiB reserve decays in
    // 2-3 steps, so raise + decay fit in the hourly change cap (decays count as changes).
    int64_t decay_step_kib = 16384;
};
struct WatermarkPolicy {
    int64_t raise_step = 20;                // additive, in 1/10000 of memory
    double allocstall_raise_per_sec = 1.0;  // direct reclaim stalls per second
    double psi_some_raise_percent = 1.0;    // share of the interval some task stalled on memory
    double psi_some_relax_percent = 0.1;
    int64_t decay_step = 10;
    // After direct-reclaim stalls, the scale factor is not lowered below the value that ended them for
    // this long (without stalls): a workload that needs kswapd keeps it busy, and lowering on "kswapd
    // busy" alone would bring the stalls straight back (raise/lower flapping).
    uint64_t stall_memory_usec = 3'600'000'000;
};
struct CompactionPolicy {
    int64_t raise_step = 20;
    int unusable_raise_permille = 800;  // unusable free index at a target order above this: raise
    int unusable_relax_permille = 400;  // below this (blocks plentiful): relax
    double futile_fail_ratio = 4.0;  // compact_fail > ratio * compact_success: compaction is futile
    uint32_t futile_min_fail = 4;    // ... with at least this many compact_fail in the interval
    uint64_t kick_interval_usec = 30'000'000;  // least time between two wake-up writes
    int64_t decay_step = 10;
    bool compact_memory_fallback = false;  // one-shot /proc/sys/vm/compact_memory on kernels < 5.9
    // least time between two compact_memory writes
    uint64_t compact_memory_interval_usec = 600'000'000;
    // After compaction was found futile, fragmentation does not raise proactiveness (nor kick) for this
    // long: compaction that cannot move pages only burns CPU, and without this the knob would oscillate.
    uint64_t futile_backoff_usec = 600'000'000;
};
struct VfsCachePolicy {
    int64_t raise_step = 50;
    double slab_raise_share = 0.20;  // SReclaimable / MemTotal above this while fragmented: raise
    double slab_relax_share = 0.10;
    int fragmentation_score = 50;  // node fragmentation score (0..100) counted as fragmented
    int64_t decay_step = 25;
};
struct SwappinessPolicy {
    int64_t step = 10;
    double refault_file_raise_per_sec = 1000.0;  // file refaults/s that favour swapping cold anon
    double swapin_lower_per_sec = 100.0;         // pswpin/s that favour keeping anon in memory
    double swapin_low_per_sec = 10.0;            // refaults raise only while pswpin/s is below this
    // file refaults/s below this (and swap-ins low): calm
    double refault_file_relax_per_sec = 100.0;
    int64_t decay_step = 5;
};

struct SafetyConfig {
    // A min_free_kbytes raise must leave free memory above the predicted new low watermark by this much.
    uint64_t margin_kib = 65536;
    // min_free_kbytes never exceeds this share of managed lowmem, whatever the bounds say.
    double max_min_free_lowmem_percent = 5.0;
};

struct MetricsConfig {
    std::string textfile_path;  // empty: off. e.g. /var/lib/prometheus/node-exporter/fragtune.prom
};

struct Config {
    DaemonConfig daemon;
    SignalsConfig signals;
    std::array<KnobConfig, kKnobCount> knobs{};
    MinFreePolicy min_free;
    WatermarkPolicy watermark;
    CompactionPolicy compaction;
    VfsCachePolicy vfs_cache;
    SwappinessPolicy swappiness;
    SafetyConfig safety;
    MetricsConfig metrics;

    KnobConfig& knob(Knob k) { return knobs[index(k)]; }
    const KnobConfig& knob(Knob k) const { return knobs[index(k)]; }
};

}  // namespace fragtune
