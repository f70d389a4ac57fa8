// fragtune's configuration as plain structs with documented defaults. The TOML loader (config_file.hpp)
// fills these; with no file at all the daemon runs on exactly these defaults. Units are in the names.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/knobs/registry.hpp"
#include "fragtune/knobs/tunables.hpp"

namespace fragtune {

enum class Mode { active, observe, paused };
enum class OnExit { keep, restore };

std::string_view to_string(Mode m);
std::optional<Mode> mode_from_string(std::string_view s);
std::string_view to_string(OnExit e);

struct DaemonConfig {
    // Fixed control loop period (100 ms .. 10 min); 0, the default: adaptive between tick_min and
    // tick_max (deciding/cadence.hpp).
    uint64_t tick_usec = 0;
    uint64_t tick_min_usec = 250'000;     // adaptive cadence: the fast tick while trouble lasts
    uint64_t tick_max_usec = 10'000'000;  // adaptive cadence: the longest calm tick
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
    // PSI trigger on the psi_source file: wakes the loop when tasks stalled on memory for
    // psi_trigger_stall within psi_trigger_window (Android lmkd: 70 ms in 1 s).
    bool psi_trigger = true;
    uint64_t psi_trigger_stall_usec = 70'000;
    uint64_t psi_trigger_window_usec = 1'000'000;
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

// The policy thresholds (MinFreePolicy, WatermarkPolicy, ...) are defined by each knob's module,
// knobs/<name>.hpp, which tunables.hpp brings in through the registry.

struct SafetyConfig {
    // A min_free_kbytes raise must leave free memory above the predicted new low watermark by this much.
    uint64_t margin_kib = 65536;
    // min_free_kbytes never exceeds this share of managed lowmem, whatever the bounds say.
    double max_min_free_lowmem_percent = 5.0;
};

struct MetricsConfig {
    std::string textfile_path;  // empty: off. e.g. /var/lib/prometheus/node-exporter/fragtune.prom
};

// Every knob's KnobConfig defaults, enabled as its module says (KnobModule::enabled_by_default).
inline std::array<KnobConfig, kKnobCount> default_knob_configs() {
    std::array<KnobConfig, kKnobCount> knobs{};
    for (std::size_t i = 0; i < kKnobCount; ++i)
        knobs[i].enabled = kKnobModules[i].enabled_by_default;
    return knobs;
}

struct Config {
    DaemonConfig daemon;
    SignalsConfig signals;
    std::array<KnobConfig, kKnobCount> knobs = default_knob_configs();
    MinFreePolicy min_free;
    WatermarkPolicy watermark;
    CompactionPolicy compaction;
    VfsCachePolicy vfs_cache;
    SwappinessPolicy swappiness;
    WatermarkBoostPolicy watermark_boost;
    SafetyConfig safety;
    MetricsConfig metrics;

    KnobConfig& knob(Knob k) { return knobs[index(k)]; }
    const KnobConfig& knob(Knob k) const { return knobs[index(k)]; }
};

}  // namespace fragtune
