#include "fragtune/reporting/metrics.hpp"

#include <unistd.h>

#include <cmath>

#include <fmt/format.h>

namespace fragtune {

void MetricsCounters::count_decision(const Decision& d, bool applied) {
    ++decisions[{d.knob, d.action}];
    if (applied) ++changes[{d.knob, d.action}];
}

void MetricsCounters::count_failures(const Signals& s) {
    for (auto [order, n] : s.failures_by_order) {
        uint32_t atomic = 0;
        if (auto it = s.atomic_failures_by_order.find(order);
            it != s.atomic_failures_by_order.end())
            atomic = it->second;
        // The atomic map is a subset; a count above the total would be a parser bug, not a
        // negative.
        const uint32_t sleeping = n > atomic ? n - atomic : 0;
        if (atomic) failures[{order, true}] += atomic;
        if (sleeping) failures[{order, false}] += sleeping;
    }
    vmalloc_failures += s.vmalloc_failures;
    kmsg_lost += s.kmsg_lost;
}

MetricsSnapshot make_metrics_snapshot(const Sample& sample, const ControllerState& state,
                                      const Config& config, Mode mode, uint64_t realtime_usec,
                                      uint64_t page_size_bytes) {
    MetricsSnapshot out;
    out.mode = mode;
    for (const auto& t : kTunables) {
        const KnobState& ks = state.knob(t.knob);
        out.knobs.push_back(KnobMetrics{t.knob, sample.knob(t.knob), ks.baseline, ks.original,
                                        effective_bounds(t.knob, ks, config, sample), ks.status});
    }
    out.signals = sample.signals;
    if (page_size_bytes == 0) {
        const long sz = ::sysconf(_SC_PAGESIZE);
        page_size_bytes = sz > 0 ? static_cast<uint64_t>(sz) : 4096;
    }
    out.page_size_bytes = page_size_bytes;
    out.realtime_usec = realtime_usec;
    return out;
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
    return out;
}

namespace {

// Go's strconv.ParseFloat (Prometheus' parser) reads what fmt prints for finite doubles (shortest
// round-trip form: "0.125", "1e+21"); the non-finite values have fixed spellings.
std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    return fmt::format("{}", v);
}

using Labels = std::vector<std::pair<std::string_view, std::string>>;

// Collects the samples of one family and emits HELP/TYPE only if there is at least one.
class Family {
  public:
    Family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
        : out_(out), name_(name), type_(type), help_(help) {}

    template <typename T>
    void add(const Labels& labels, T value) {
        std::string line(name_);
        if (!labels.empty()) {
            line += '{';
            for (size_t i = 0; i < labels.size(); ++i) {
                if (i) line += ',';
                line +=
                    fmt::format("{}=\"{}\"", labels[i].first, escape_label_value(labels[i].second));
            }
            line += '}';
        }
        if constexpr (std::is_floating_point_v<T>)
            line += ' ' + format_value(value);
        else
            line += fmt::format(" {}", value);
        lines_ += line + '\n';
    }
    template <typename T>
    void add(T value) {
        add(Labels{}, value);
    }

    ~Family() {
        if (lines_.empty()) return;
        out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, help_, name_, type_);
        out_ += lines_;
    }
    Family(const Family&) = delete;
    Family& operator=(const Family&) = delete;

  private:
    std::string& out_;
    std::string_view name_, type_, help_;
    std::string lines_;
};

constexpr KnobStatus kAllStatuses[] = {KnobStatus::tuning,      KnobStatus::pinned,
                                       KnobStatus::conflict,    KnobStatus::failed,
                                       KnobStatus::unsupported, KnobStatus::disabled};
constexpr Mode kAllModes[] = {Mode::active, Mode::observe, Mode::paused};

}  // namespace

std::string render_metrics(const MetricsSnapshot& s, const MetricsCounters& c) {
    std::string out;
    auto knob_label = [](Knob k) { return Labels{{"knob", std::string(spec(k).name)}}; };

    {
        Family f(out, "fragtune_info", "gauge", "fragtuned build information (always 1).");
        f.add(Labels{{"version", FRAGTUNE_VERSION}}, 1);
    }
    {
        Family f(out, "fragtune_mode", "gauge",
                 "1 for the daemon's current mode, 0 for the others.");
        for (Mode m : kAllModes)
            f.add(Labels{{"mode", std::string(to_string(m))}}, m == s.mode ? 1 : 0);
    }
    if (s.realtime_usec) {
        Family f(out, "fragtune_last_update_timestamp_seconds", "gauge",
                 "Wall-clock time of the sample these metrics describe.");
        f.add(static_cast<double>(s.realtime_usec) / 1e6);
    }

    // ---- knobs ----
    {
        Family f(out, "fragtune_knob_value", "gauge",
                 "Live value of the vm sysctl (unit as in /proc/sys/vm; absent when the kernel "
                 "lacks it).");
        for (const auto& k : s.knobs)
            if (k.value) f.add(knob_label(k.knob), *k.value);
    }
    {
        Family f(out, "fragtune_knob_baseline", "gauge",
                 "Value the knob decays back to once memory is calm.");
        for (const auto& k : s.knobs) f.add(knob_label(k.knob), k.baseline);
    }
    {
        Family f(out, "fragtune_knob_original", "gauge",
                 "Value found at first start, written back by restore.");
        for (const auto& k : s.knobs)
            if (k.original) f.add(knob_label(k.knob), *k.original);
    }
    {
        Family f(out, "fragtune_knob_min", "gauge", "Effective lower bound of the knob.");
        for (const auto& k : s.knobs) f.add(knob_label(k.knob), k.bounds.min);
    }
    {
        Family f(out, "fragtune_knob_max", "gauge",
                 "Effective upper bound of the knob (safety caps included).");
        for (const auto& k : s.knobs) f.add(knob_label(k.knob), k.bounds.max);
    }
    {
        Family f(out, "fragtune_knob_state", "gauge",
                 "1 for the knob's current state, 0 for the others.");
        for (const auto& k : s.knobs)
            for (KnobStatus st : kAllStatuses)
                f.add(Labels{{"knob", std::string(spec(k.knob).name)},
                             {"state", std::string(to_string(st))}},
                      k.status == st ? 1 : 0);
    }

    // ---- counters ----
    {
        Family f(
            out, "fragtune_decisions_total", "counter",
            "Controller decisions by knob and action, applied or not (refusals, observe mode).");
        for (const auto& [key, n] : c.decisions)
            f.add(Labels{{"knob", std::string(spec(key.first).name)},
                         {"action", std::string(to_string(key.second))}},
                  n);
    }
    {
        Family f(out, "fragtune_changes_total", "counter",
                 "Values written to the kernel and read back, by knob and action.");
        for (const auto& [key, n] : c.changes)
            f.add(Labels{{"knob", std::string(spec(key.first).name)},
                         {"action", std::string(to_string(key.second))}},
                  n);
    }
    {
        Family f(out, "fragtune_allocation_failures_total", "counter",
                 "Page allocation failures reported in the kernel log, by order and whether the "
                 "caller could not sleep.");
        for (const auto& [key, n] : c.failures)
            f.add(Labels{{"order", std::to_string(key.first)},
                         {"atomic", key.second ? "true" : "false"}},
                  n);
    }
    {
        Family f(out, "fragtune_vmalloc_failures_total", "counter",
                 "vmalloc allocation failures reported in the kernel log.");
        f.add(c.vmalloc_failures);
    }
    {
        Family f(
            out, "fragtune_kernel_log_lost_total", "counter",
            "Kernel log records overwritten before fragtuned read them (failures may be missing).");
        f.add(c.kmsg_lost);
    }

    // ---- signals ----
    const Signals& g = s.signals;
    if (g.psi_some_avg10) {
        Family f(
            out, "fragtune_psi_memory_avg10_ratio", "gauge",
            "Share of the last 10 s in which tasks stalled on memory (kernel PSI avg10 / 100).");
        f.add(Labels{{"kind", "some"}}, *g.psi_some_avg10 / 100.0);
        if (g.psi_full_avg10) f.add(Labels{{"kind", "full"}}, *g.psi_full_avg10 / 100.0);
    }
    {
        Family f(out, "fragtune_fragmentation_score_ratio", "gauge",
                 "kcompactd's fragmentation score of the node at the compaction order, 0..1.");
        for (const auto& n : g.nodes)
            f.add(Labels{{"node", std::to_string(n.node)}},
                  static_cast<double>(n.fragmentation_score) / 100.0);
    }
    {
        Family f(out, "fragtune_unusable_free_index_ratio", "gauge",
                 "Share of free memory unusable for an allocation of this order, all zones "
                 "together, 0..1.");
        for (const auto& t : g.targets)
            f.add(Labels{{"order", std::to_string(t.order)}},
                  static_cast<double>(t.unusable_permille) / 1000.0);
    }
    {
        Family f(out, "fragtune_free_blocks", "gauge",
                 "Blocks of 2^order pages obtainable from the free lists, all zones together.");
        for (const auto& t : g.targets)
            f.add(Labels{{"order", std::to_string(t.order)}}, t.free_blocks);
    }
    if (!g.zones.empty()) {
        {
            Family f(out, "fragtune_zones_below_watermark", "gauge",
                     "Populated zones with free pages at or below min, below low, below high.");
            f.add(Labels{{"watermark", "min"}}, g.zones_at_or_below_min);
            f.add(Labels{{"watermark", "low"}}, g.zones_below_low);
            f.add(Labels{{"watermark", "high"}}, g.zones_below_high);
        }
        {
            Family f(out, "fragtune_watermark_headroom_bytes", "gauge",
                     "Smallest free minus low watermark over populated zones; negative below low.");
            f.add(g.min_headroom_pages * static_cast<int64_t>(s.page_size_bytes));
        }
    }
    if (g.mem_available_kib) {
        Family f(out, "fragtune_memory_available_bytes", "gauge",
                 "MemAvailable from /proc/meminfo.");
        f.add(*g.mem_available_kib * 1024);
    }
    return out;
}

std::optional<MetricsTextfile::Report> MetricsTextfile::write(const KernelFs& fs,
                                                              std::string_view path,
                                                              std::string_view text) {
    auto r = fs.write_atomic(path, text, 0644);
    if (r) {
        if (last_error_.empty()) return std::nullopt;
        last_error_.clear();
        return Report{true, fmt::format("metrics: writing {} works again", path)};
    }
    std::string msg = fmt::format("metrics: {} not written: {}", path, r.error().describe());
    if (msg == last_error_) return std::nullopt;
    last_error_ = msg;
    return Report{false, std::move(msg) + " (reported once until it changes)"};
}

}  // namespace fragtune
