// Prometheus metrics for node_exporter's textfile collector (metrics.textfile_path): what fragtuned
// set, where it may move, why it stands where it stands, and the few signals it acts on that
// node_exporter does not export itself (PSI averages, fragmentation indices, watermark position).
// Kernel counters node_exporter already has (node_vmstat_*, node_pressure_*) are not repeated.
//
// render_metrics() is pure: a snapshot and the counters in, the exposition text out (tested against
// literal text and a real parser). MetricsTextfile writes it atomically and decides what is worth
// logging; it never logs itself.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fragtune/configuration/config.hpp"
#include "fragtune/deciding/controller.hpp"
#include "fragtune/knobs/tunables.hpp"
#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/sensing/sample.hpp"
#include "fragtune/sensing/signals.hpp"

namespace fragtune {

// Counted since the daemon started. Prometheus counters may restart at 0 with the process;
// rate()/increase() handle that.
struct MetricsCounters {
    std::map<std::pair<Knob, Action>, uint64_t> decisions;  // every decision, applied or not
    std::map<std::pair<Knob, Action>, uint64_t> changes;    // decisions written and read back
    // (order, atomic) -> page allocation failures
    std::map<std::pair<int, bool>, uint64_t> failures;
    uint64_t vmalloc_failures = 0;
    uint64_t kmsg_lost = 0;  // kernel log records overwritten before fragtuned read them

    void count_decision(const Decision& d, bool applied);
    // Adds one sample's kernel-log failures (Signals::failures_by_order and its atomic subset).
    // Call once per sample.
    void count_failures(const Signals& s);
};

struct KnobMetrics {
    Knob knob = Knob::min_free_kbytes;
    std::optional<int64_t> value;  // live value; absent: the kernel lacks the knob
    int64_t baseline = 0;
    std::optional<int64_t> original;  // value found at first start
    Range bounds;                     // effective bounds
    KnobStatus status = KnobStatus::tuning;
};

struct MetricsSnapshot {
    Mode mode = Mode::active;
    std::vector<KnobMetrics> knobs;  // table order
    Signals signals;
    uint64_t page_size_bytes = 4096;  // converts the signals' pages to bytes
    uint64_t realtime_usec = 0;       // CLOCK_REALTIME of the sample; 0: not exported
};

// The snapshot of a running controller: live values from `sample`, bounds from effective_bounds().
// `page_size_bytes` 0: this machine's page size.
MetricsSnapshot make_metrics_snapshot(const Sample& sample, const ControllerState& state,
                                      const Config& config, Mode mode, uint64_t realtime_usec,
                                      uint64_t page_size_bytes = 0);

// Text exposition format 0.0.4 (what node_exporter's textfile collector reads): one HELP and one
// TYPE line per family, the family's samples right after them, no timestamps. Families without
// samples (e.g. no PSI on this kernel) are left out entirely. Deterministic: same input, same
// bytes.
std::string render_metrics(const MetricsSnapshot& snapshot, const MetricsCounters& counters);

// Prometheus label-value escaping: backslash, double quote and newline.
std::string escape_label_value(std::string_view value);

// Writes the metrics file and remembers the outcome, so that a path that stays unwritable is
// reported once instead of every tick.
class MetricsTextfile {
  public:
    struct Report {
        bool ok = false;      // true: a recovery after failures
        std::string message;  // names the path and what went wrong
    };
    // Replaces `path` atomically with `text`, mode 0644 (node_exporter runs as another user).
    // Returns a report when the outcome differs from the previous call's (first failure, another
    // failure, recovery), nullopt otherwise.
    std::optional<Report> write(const KernelFs& fs, std::string_view path, std::string_view text);

  private:
    std::string last_error_;
};

}  // namespace fragtune
