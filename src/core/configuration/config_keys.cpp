// The key registry: every row of config_keys(), the generic sections' rows here and each knob's
// policy rows from its module (kKnobModules).
#include "fragtune/configuration/config_file.hpp"

#include <string_view>

#include <fmt/format.h>

#include "fragtune/configuration/key_rows.hpp"
#include "fragtune/knobs/registry.hpp"
#include "fragtune/knobs/tunables.hpp"
#include "fragtune/sensing/psi_trigger.hpp"
#include "toml_text.hpp"

namespace fragtune {

namespace {

using namespace key_rows;
using namespace config_detail;

// The registry rows name only the members that differ from the defaults; GCC 12 warns about every
// member a designated initializer leaves out (GCC PR c++/96868, fixed in GCC 13), which is the
// point.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

// Rows that every [tunables.NAME] table has, for knob I.
template <std::size_t I>
void add_knob_rows(std::vector<ConfigKey>& rows) {
    const TunableSpec& t = kTunables[I];
    const bool kib = t.unit == "KiB";
    const std::string section = "tunables." + std::string(t.name);
    const std::string kernel_note = fmt::format("the kernel's range for {}", t.sysctl);
    auto common = [&](ConfigKey k) {
        k.section = section;
        k.doc_section = "tunables.*";
        rows.push_back(std::move(k));
    };
    const auto bound_kind = kib ? ValueKind::size_or_percent : ValueKind::integer;
    const std::string unit = t.unit.empty() ? std::string() : std::string(t.unit);
    const auto kmin = static_cast<double>(t.kernel_min), kmax = static_cast<double>(t.kernel_max);

    common({.key = "enabled",
            .kind = ValueKind::boolean,
            .field = &knob_field<I, &KnobConfig::enabled>,
            .doc = "tune this knob; false leaves it untouched"});
    common(
        {.key = "min",
         .kind = bound_kind,
         .unit = unit,
         .min = kmin,
         .max = kmax,
         .allow_int_kib = kib,
         .field = &knob_field<I, &KnobConfig::min>,
         .percent_field = kib ? &knob_field<I, &KnobConfig::min_lowmem_percent> : nullptr,
         .doc =
             "lowest value fragtune sets (unset: the table default; min_free_kbytes: the baseline)",
         .range_note = kernel_note});
    common({.key = "max",
            .kind = bound_kind,
            .unit = unit,
            .min = kmin,
            .max = kmax,
            .allow_int_kib = kib,
            .field = &knob_field<I, &KnobConfig::max>,
            .percent_field = kib ? &knob_field<I, &KnobConfig::max_lowmem_percent> : nullptr,
            .doc = "highest value fragtune sets (unset: the table default)",
            .range_note = kernel_note});
    common({.key = "baseline",
            .kind = bound_kind,
            .unit = unit,
            .min = kmin,
            .max = kmax,
            .allow_int_kib = kib,
            .field = &knob_field<I, &KnobConfig::baseline>,
            .percent_field = kib ? &knob_field<I, &KnobConfig::baseline_lowmem_percent> : nullptr,
            .doc = "value decayed back to when calm (unset: the value found at first start)",
            .range_note = kernel_note});
    common({.key = "max_step",
            .kind = kib ? ValueKind::size : ValueKind::integer,
            .unit = unit,
            .min = 0,
            .max = kmax,
            .allow_int_kib = kib,
            .field = &knob_field<I, &KnobConfig::max_step>,
            .doc = "largest change in one tick (0: the policy's own step)"});
    common({.key = "cooldown",
            .kind = ValueKind::duration,
            .unit = "usec",
            .min = 0,
            .max = kUsecPerDay,
            .field = &knob_field<I, &KnobConfig::cooldown_usec>,
            .doc = "least time between two changes of this knob"});
    common({.key = "max_changes_per_hour",
            .kind = ValueKind::integer,
            .min = 1,
            .max = 3600,
            .field = &knob_field<I, &KnobConfig::max_changes_per_hour>,
            .doc = "hard cap on changes over a sliding hour"});
    common({.key = "calm",
            .kind = ValueKind::duration,
            .unit = "usec",
            .min = 0,
            .max = kUsecPerDay,
            .field = &knob_field<I, &KnobConfig::calm_usec>,
            .doc = "time without trouble before decay towards the baseline starts"});
    common({.key = "decay_interval",
            .kind = ValueKind::duration,
            .unit = "usec",
            .min = 100 * kUsecPerMs,
            .max = kUsecPerDay,
            .field = &knob_field<I, &KnobConfig::decay_interval_usec>,
            .doc = "one decay step per interval once calm"});

    // The knob's own policy keys, from its module.
    kKnobModules[I].add_policy_keys(rows, section);
}

std::vector<ConfigKey> build_registry() {
    std::vector<ConfigKey> rows;
    auto add = [&](std::string section, ConfigKey k) {
        k.section = section;
        k.doc_section = std::move(section);
        rows.push_back(std::move(k));
    };
    add("daemon",
        {.key = "tick",
         .kind = ValueKind::duration,
         .unit = "usec",
         .min = 100 * kUsecPerMs,
         .max = 10 * kUsecPerMin,
         .allow_zero = true,
         .field = &field<&Config::daemon, &DaemonConfig::tick_usec>,
         .doc = "fixed control loop period; \"0s\" (the default): adaptive, tick_min..tick_max",
         .range_note = "or 0 for the adaptive cadence"});
    add("daemon", {.key = "tick_min",
                   .kind = ValueKind::duration,
                   .unit = "usec",
                   .min = 50 * kUsecPerMs,
                   .max = 10 * kUsecPerMin,
                   .field = &field<&Config::daemon, &DaemonConfig::tick_min_usec>,
                   .doc = "adaptive cadence: the tick while trouble lasts"});
    add("daemon", {.key = "tick_max",
                   .kind = ValueKind::duration,
                   .unit = "usec",
                   .min = 50 * kUsecPerMs,
                   .max = 10 * kUsecPerMin,
                   .field = &field<&Config::daemon, &DaemonConfig::tick_max_usec>,
                   .doc = "adaptive cadence: the longest tick while calm"});
    add("daemon", {.key = "mode",
                   .kind = ValueKind::choice,
                   .choices = {"active", "observe", "paused"},
                   .field = &field<&Config::daemon, &DaemonConfig::mode>,
                   .doc = "active: tune; observe: decide and log, write nothing; paused: idle"});
    add("daemon", {.key = "on_exit",
                   .kind = ValueKind::choice,
                   .choices = {"keep", "restore"},
                   .field = &field<&Config::daemon, &DaemonConfig::on_exit>,
                   .doc = "at stop, keep the tuned values or restore the originals"});
    add("daemon", {.key = "persist",
                   .kind = ValueKind::boolean,
                   .field = &field<&Config::daemon, &DaemonConfig::persist>,
                   .doc = "write persist_path so tuned values survive a reboot"});
    add("daemon", {.key = "persist_path",
                   .kind = ValueKind::path,
                   .field = &field<&Config::daemon, &DaemonConfig::persist_path>,
                   .doc = "sysctl.d file holding the settled values",
                   .required_suffix = ".conf",
                   .suffix_reason = "systemd-sysctl reads only *.conf files",
                   .written = true});
    add("daemon", {.key = "persist_settle",
                   .kind = ValueKind::duration,
                   .unit = "usec",
                   .min = 0,
                   .max = kUsecPerDay,
                   .field = &field<&Config::daemon, &DaemonConfig::persist_settle_usec>,
                   .doc = "persist once values have not changed for this long"});
    add("daemon", {.key = "state_path",
                   .kind = ValueKind::path,
                   .field = &field<&Config::daemon, &DaemonConfig::state_path>,
                   .doc = "originals, baselines and change history across restarts",
                   .written = true});
    add("daemon", {.key = "log_level",
                   .kind = ValueKind::choice,
                   .choices = {"trace", "debug", "info", "warn", "error"},
                   .field = &field<&Config::daemon, &DaemonConfig::log_level>,
                   .doc = "least severity logged"});
    add("daemon", {.key = "history_size",
                   .kind = ValueKind::integer,
                   .unit = "changes",
                   .min = 1,
                   .max = 65536,
                   .field = &field<&Config::daemon, &DaemonConfig::history_size>,
                   .doc = "changes kept in memory and in the state file"});

    add("signals", {.key = "psi_source",
                    .kind = ValueKind::psi_source,
                    .field = &field<&Config::signals, &SignalsConfig::psi_source>,
                    .doc = "\"system\" (/proc/pressure/memory) or a cgroup v2 directory"});
    add("signals", {.key = "target_orders",
                    .kind = ValueKind::orders,
                    .field = &field<&Config::signals, &SignalsConfig::target_orders>,
                    .doc = "page orders whose availability compaction defends"});
    add("signals", {.key = "kernel_log",
                    .kind = ValueKind::boolean,
                    .field = &field<&Config::signals, &SignalsConfig::kernel_log>,
                    .doc = "follow the kernel log for page allocation failures"});
    add("signals", {.key = "kmsg_path",
                    .kind = ValueKind::path,
                    .field = &field<&Config::signals, &SignalsConfig::kmsg_path>,
                    .doc = "kernel log device read when kernel_log is true"});
    add("signals", {.key = "psi_trigger",
                    .kind = ValueKind::boolean,
                    .field = &field<&Config::signals, &SignalsConfig::psi_trigger>,
                    .doc = "arm a PSI trigger on psi_source: wake at once on memory stalls"});
    add("signals", {.key = "psi_trigger_stall",
                    .kind = ValueKind::duration,
                    .unit = "usec",
                    .min = 1,
                    .max = 10 * kUsecPerSec,
                    .field = &field<&Config::signals, &SignalsConfig::psi_trigger_stall_usec>,
                    .doc = "stall time within psi_trigger_window that wakes fragtuned"});
    add("signals", {.key = "psi_trigger_window",
                    .kind = ValueKind::duration,
                    .unit = "usec",
                    .min = static_cast<double>(kPsiTriggerMinWindowUsec),
                    .max = static_cast<double>(kPsiTriggerMaxWindowUsec),
                    .field = &field<&Config::signals, &SignalsConfig::psi_trigger_window_usec>,
                    .doc = "PSI trigger window; without CAP_SYS_RESOURCE a multiple of 2s",
                    .range_note = "the kernel's range for PSI trigger windows"});
    add("signals", {.key = "zoneinfo_every",
                    .kind = ValueKind::integer,
                    .unit = "ticks",
                    .min = 1,
                    .max = 1000,
                    .field = &field<&Config::signals, &SignalsConfig::zoneinfo_every>,
                    .doc = "calm ticks between reads of /proc/zoneinfo (1: every tick)"});

    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (add_knob_rows<I>(rows), ...);
    }
    (std::make_index_sequence<kKnobCount>{});

    add("safety",
        {.key = "margin",
         .kind = ValueKind::size,
         .unit = "KiB",
         .min = 0,
         .max = kKibPerTib,
         .field = &field<&Config::safety, &SafetyConfig::margin_kib>,
         .doc = "free memory a min_free_kbytes raise must leave above the new low watermark"});
    add("safety", {.key = "max_min_free_lowmem_percent",
                   .kind = ValueKind::number,
                   .unit = "percent",
                   .min = 0,
                   .max = kMaxLowmemPercent,
                   .min_exclusive = true,
                   .field = &field<&Config::safety, &SafetyConfig::max_min_free_lowmem_percent>,
                   .doc = "min_free_kbytes never exceeds this share of managed lowmem"});

    add("metrics", {.key = "textfile_path",
                    .kind = ValueKind::optional_path,
                    .field = &field<&Config::metrics, &MetricsConfig::textfile_path>,
                    .doc = "Prometheus textfile-collector file written every tick (\"\": off)",
                    .required_suffix = ".prom",
                    .suffix_reason = "node_exporter's textfile collector reads only *.prom files",
                    .written = true});
    return rows;
}
#pragma GCC diagnostic pop

}  // namespace

const std::vector<ConfigKey>& config_keys() {
    static const std::vector<ConfigKey> rows = build_registry();
    return rows;
}

const ConfigKey* find_config_key(std::string_view full_name) {
    for (const auto& r : config_keys())
        if (r.full_name() == full_name) return &r;
    return nullptr;
}

}  // namespace fragtune
