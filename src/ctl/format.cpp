#include "format.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

#include "fragtune/knobs/tunables.hpp"
#include "fragtune/util/units.hpp"

namespace fragtune::ctl {
namespace {

// ANSI SGR sequences; used only through paint() so that colour off means byte-identical plain text.
constexpr std::string_view kBold = "1";
constexpr std::string_view kDim = "2";
constexpr std::string_view kRed = "31";
constexpr std::string_view kGreen = "32";
constexpr std::string_view kYellow = "33";

std::string paint(std::string_view text, std::string_view sgr, bool color) {
    if (!color || text.empty()) return std::string(text);
    return fmt::format("\x1b[{}m{}\x1b[0m", sgr, text);
}

std::string_view state_color(std::string_view state) {
    if (state == "tuning") return kGreen;
    if (state == "failed") return kRed;
    if (state == "pinned" || state == "conflict") return kYellow;
    return kDim;  // unsupported, disabled, anything newer
}

std::string_view action_color(std::string_view action) {
    if (action == "raise") return kYellow;
    if (action == "decay" || action == "lower") return kGreen;
    if (action == "refuse" || action == "pin") return kRed;
    return kDim;
}

std::string_view mode_color(std::string_view mode) {
    if (mode == "active") return kGreen;
    if (mode == "observe") return kYellow;
    return kRed;  // paused
}

// The sysctl name ("vm.min_free_kbytes") for a table name, so every change reads as in the journal;
// an unknown name (a newer daemon) is shown as received.
std::string sysctl_name(std::string_view knob) {
    if (auto k = knob_from_name(knob)) return std::string(spec(*k).sysctl);
    return sanitize(knob);
}

std::string format_value(std::optional<int64_t> v) {
    return v ? fmt::format("{}", *v) : "-";
}

std::string format_signal_value(double v) {
    if (!std::isfinite(v)) return fmt::format("{}", v);
    if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.0f}", v);
    return fmt::format("{:.2f}", v);
}

// sanitize(), but keeping line breaks: for the daemon's paragraphs and lists of errors.
std::string sanitize_multiline(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\n') || u == 0x7f) c = '?';
    }
    return out;
}

nlohmann::json optional_json(std::optional<int64_t> v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

ErrorReport describe_bus_error(std::string_view name, std::string_view message) {
    const std::string msg = sanitize_multiline(message);
    if (name == "org.freedesktop.DBus.Error.ServiceUnknown" ||
        name == "org.freedesktop.DBus.Error.NameHasNoOwner")
        return {kExitNotRunning, "fragtuned is not running: systemctl start fragtuned"};
    if (name == "org.freedesktop.DBus.Error.AccessDenied" ||
        name == "org.fragtune1.Error.AccessDenied")
        return {kExitFailure, "permission denied: run as root (this command changes fragtuned)"};
    if (name == "org.fragtune1.Error.UnknownKnob" || name == "org.fragtune1.Error.InvalidArgument")
        return {kExitUsage, msg};
    if (name == "org.fragtune1.Error.ConfigInvalid")
        return {kExitFailure,
                fmt::format("the configuration has errors; fragtuned keeps running the previous "
                            "one:\n{}",
                            msg)};
    if (name == "org.fragtune1.Error.Failed") return {kExitFailure, msg};
    if (name == "org.freedesktop.DBus.Error.NoReply" ||
        name == "org.freedesktop.DBus.Error.Timeout" ||
        name == "org.freedesktop.DBus.Error.TimedOut")
        return {kExitFailure, "fragtuned did not answer in time: see journalctl -u fragtuned"};
    if (name == "org.freedesktop.DBus.Error.UnknownMethod" ||
        name == "org.freedesktop.DBus.Error.UnknownObject" ||
        name == "org.freedesktop.DBus.Error.UnknownInterface" ||
        name == "org.freedesktop.DBus.Error.UnknownProperty" ||
        name == "org.freedesktop.DBus.Error.InvalidArgs")
        return {kExitFailure,
                fmt::format("fragtuned does not speak this fragtunectl's API ({}: {}); "
                            "are both from the same release?",
                            sanitize(name), msg)};
    return {kExitFailure, fmt::format("D-Bus error {}: {}", sanitize(name), msg)};
}

bool want_color(bool stdout_is_tty, const char* no_color_env) {
    return stdout_is_tty && (no_color_env == nullptr || *no_color_env == '\0');
}

std::string format_timestamp(uint64_t realtime_usec, bool utc) {
    auto secs = static_cast<std::time_t>(realtime_usec / 1'000'000);
    std::tm tm{};
    bool ok = utc ? gmtime_r(&secs, &tm) != nullptr : localtime_r(&secs, &tm) != nullptr;
    if (!ok) return fmt::format("@{}", realtime_usec / 1'000'000);
    char buf[32];
    size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return std::string(buf, n);
}

std::string dump_json(const nlohmann::json& j, int indent) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string sanitize(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) c = '?';
    }
    return out;
}

const std::vector<std::string_view>& key_signal_names() {
    // The signals the controller's rules read, in the order an operator scans them: pressure first,
    // then reserve headroom, then fragmentation, then the reclaim and failure rates.
    static const std::vector<std::string_view> names = {
        "psi_some_avg10_percent",   "psi_full_avg10_percent", "min_headroom_kib",
        "zones_below_low",          "fragmentation_score",    "order3_unusable_permille",
        "order9_unusable_permille", "allocstall_per_sec",     "compact_stall_per_sec",
        "failures_total",
    };
    return names;
}

std::string format_history_line(const HistoryRow& row, const FormatOptions& options) {
    std::string line =
        fmt::format("{} {} {} -> {} [{}: {}] {}", format_timestamp(row.realtime_usec, options.utc),
                    sysctl_name(row.knob), row.old_value, row.new_value,
                    paint(sanitize(row.action), action_color(row.action), options.color),
                    sanitize(row.rule), sanitize(row.reason));
    // refuse/pin entries are reports; so is a write that failed.
    if (!row.applied) line += paint(" (not applied)", kDim, options.color);
    return line;
}

std::string format_status(const StatusView& st, const FormatOptions& options) {
    const bool color = options.color;
    std::string out = fmt::format(
        "{} {}, mode {}, tick {}\n", paint("fragtuned", kBold, color), sanitize(st.version),
        paint(sanitize(st.mode), mode_color(st.mode), color), format_duration_usec(st.tick_usec));
    if (!st.summary.empty()) out += sanitize(st.summary) + "\n";

    // Knob table: widths from the data so a large min_free_kbytes does not break the columns.
    struct Cells {
        std::string name, value, baseline, original, bounds, state;
    };
    std::vector<Cells> rows;
    Cells head{"KNOB", "VALUE", "BASELINE", "ORIGINAL", "BOUNDS", "STATE"};
    size_t w[5] = {head.name.size(), head.value.size(), head.baseline.size(), head.original.size(),
                   head.bounds.size()};
    for (const auto& t : st.tunables) {
        Cells c{sanitize(t.name),
                format_value(t.current),
                t.current ? fmt::format("{}", t.baseline) : "-",
                format_value(t.original),
                t.current ? fmt::format("{}..{}", t.min, t.max) : "-",
                sanitize(t.state)};
        w[0] = std::max(w[0], c.name.size());
        w[1] = std::max(w[1], c.value.size());
        w[2] = std::max(w[2], c.baseline.size());
        w[3] = std::max(w[3], c.original.size());
        w[4] = std::max(w[4], c.bounds.size());
        rows.push_back(std::move(c));
    }
    out += "\n";
    out += paint(
        fmt::format("{:<{}}  {:>{}}  {:>{}}  {:>{}}  {:<{}}  {}", head.name, w[0], head.value, w[1],
                    head.baseline, w[2], head.original, w[3], head.bounds, w[4], head.state),
        kBold, color);
    out += "\n";
    for (size_t i = 0; i < rows.size(); ++i) {
        const auto& c = rows[i];
        const auto& t = st.tunables[i];
        std::string state = paint(c.state, state_color(t.state), color);
        if (!t.reason.empty()) state += ": " + sanitize(t.reason);
        out += fmt::format("{:<{}}  {:>{}}  {:>{}}  {:>{}}  {:<{}}  {}\n", c.name, w[0], c.value,
                           w[1], c.baseline, w[2], c.original, w[3], c.bounds, w[4], state);
    }

    // Signals: the key ones in a fixed order (or all, sorted by name), wrapped at 100 columns.
    std::vector<std::string> cells;
    if (options.all_signals) {
        for (const auto& [name, value] : st.signals)
            cells.push_back(fmt::format("{} {}", sanitize(name), format_signal_value(value)));
    } else {
        for (auto name : key_signal_names())
            if (auto it = st.signals.find(std::string(name)); it != st.signals.end())
                cells.push_back(fmt::format("{} {}", name, format_signal_value(it->second)));
    }
    if (!cells.empty()) {
        out += "\n" + paint("Signals", kBold, color) + "\n";
        std::string line;
        for (const auto& cell : cells) {
            if (!line.empty() && line.size() + 3 + cell.size() > 100) {
                out += "  " + line + "\n";
                line.clear();
            }
            if (!line.empty()) line += "   ";
            line += cell;
        }
        out += "  " + line + "\n";
    }

    if (!st.conflicts.empty()) {
        out += "\n" + paint("Conflicts", kBold, color) + "\n";
        for (const auto& c : st.conflicts)
            out += fmt::format(
                "  {} = {} in {}:{} ({})\n", sysctl_name(c.knob), c.value, sanitize(c.file), c.line,
                c.overrides_ours ? paint("applied after ours at boot: it wins", kYellow, color)
                                 : "applied before ours at boot");
    }

    out += "\n" + paint("Recent changes", kBold, color) + "\n";
    if (st.history.empty()) {
        out += "  none yet\n";
    } else {
        size_t n = std::min(options.recent_changes, st.history.size());
        for (size_t i = st.history.size() - n; i < st.history.size(); ++i)
            out += "  " + format_history_line(st.history[i], options) + "\n";
    }
    return out;
}

std::string format_history(const std::vector<HistoryRow>& rows, const FormatOptions& options) {
    if (rows.empty()) return "No changes recorded yet.\n";
    std::string out;
    for (const auto& r : rows) out += format_history_line(r, options) + "\n";
    return out;
}

std::string format_explain(const std::vector<std::pair<std::string, std::string>>& knob_texts,
                           const FormatOptions& options) {
    std::string out;
    for (size_t i = 0; i < knob_texts.size(); ++i) {
        const auto& [knob, text] = knob_texts[i];
        if (knob_texts.size() > 1) {
            if (i > 0) out += "\n";
            out += paint(fmt::format("{} ({})", sanitize(knob), sysctl_name(knob)), kBold,
                         options.color) +
                   "\n";
        }
        std::string body = sanitize_multiline(text);  // a paragraph may have several lines
        out += body;
        if (body.empty() || body.back() != '\n') out += "\n";
    }
    return out;
}

std::string format_adjusted_event(uint64_t realtime_usec, std::string_view knob, int64_t old_value,
                                  int64_t new_value, std::string_view rule, std::string_view reason,
                                  const FormatOptions& options) {
    return fmt::format("{} adjusted {} {} -> {} [{}] {}",
                       format_timestamp(realtime_usec, options.utc), sysctl_name(knob), old_value,
                       new_value, paint(sanitize(rule), kYellow, options.color), sanitize(reason));
}

std::string format_alloc_failure_event(uint64_t realtime_usec, int order, std::string_view task,
                                       bool atomic, const FormatOptions& options) {
    return fmt::format(
        "{} {} order-{} allocation failure{}{}", format_timestamp(realtime_usec, options.utc),
        paint(atomic ? "atomic" : "sleeping", atomic ? kRed : kYellow, options.color), order,
        task.empty() ? "" : " in task ", sanitize(task));
}

std::string format_mode_event(uint64_t realtime_usec, std::string_view mode,
                              const FormatOptions& options) {
    return fmt::format("{} mode changed to {}", format_timestamp(realtime_usec, options.utc),
                       paint(sanitize(mode), mode_color(mode), options.color));
}

nlohmann::json adjusted_event_json(uint64_t realtime_usec, std::string_view knob, int64_t old_value,
                                   int64_t new_value, std::string_view rule,
                                   std::string_view reason) {
    return {{"event", "Adjusted"},
            {"realtime_usec", realtime_usec},
            {"knob", std::string(knob)},
            {"old", old_value},
            {"new", new_value},
            {"rule", std::string(rule)},
            {"reason", std::string(reason)}};
}

nlohmann::json alloc_failure_event_json(uint64_t realtime_usec, int order, std::string_view task,
                                        bool atomic) {
    return {{"event", "AllocationFailure"},
            {"realtime_usec", realtime_usec},
            {"order", order},
            {"task", std::string(task)},
            {"atomic", atomic}};
}

nlohmann::json mode_event_json(uint64_t realtime_usec, std::string_view mode) {
    return {
        {"event", "ModeChanged"}, {"realtime_usec", realtime_usec}, {"mode", std::string(mode)}};
}

nlohmann::json to_json(const TunableRow& t) {
    return {{"name", std::string(t.name)},
            {"current", optional_json(t.current)},
            {"baseline", t.baseline},
            {"original", optional_json(t.original)},
            {"min", t.min},
            {"max", t.max},
            {"state", std::string(t.state)},
            {"reason", std::string(t.reason)}};
}

nlohmann::json to_json(const HistoryRow& h) {
    return {{"realtime_usec", h.realtime_usec},
            {"knob", std::string(h.knob)},
            {"action", std::string(h.action)},
            {"old", h.old_value},
            {"new", h.new_value},
            {"rule", std::string(h.rule)},
            {"reason", std::string(h.reason)},
            {"applied", h.applied}};
}

nlohmann::json to_json(const ConflictRow& c) {
    return {{"knob", std::string(c.knob)},
            {"file", std::string(c.file)},
            {"line", c.line},
            {"value", c.value},
            {"overrides_ours", c.overrides_ours}};
}

nlohmann::json to_json(const StatusView& st) {
    nlohmann::json tunables = nlohmann::json::array();
    for (const auto& t : st.tunables) tunables.push_back(to_json(t));
    nlohmann::json signals = nlohmann::json::object();
    for (const auto& [name, value] : st.signals)
        signals[std::string(name)] = std::isfinite(value) ? nlohmann::json(value) : nullptr;
    nlohmann::json conflicts = nlohmann::json::array();
    for (const auto& c : st.conflicts) conflicts.push_back(to_json(c));
    return {{"version", std::string(st.version)},
            {"mode", std::string(st.mode)},
            {"tick_usec", st.tick_usec},
            {"summary", std::string(st.summary)},
            {"tunables", tunables},
            {"signals", signals},
            {"history", history_to_json(st.history)},
            {"conflicts", conflicts}};
}

nlohmann::json history_to_json(const std::vector<HistoryRow>& rows) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : rows) out.push_back(to_json(r));
    return out;
}

nlohmann::json explain_to_json(const std::vector<std::pair<std::string, std::string>>& knob_texts) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [knob, text] : knob_texts) out[std::string(knob)] = std::string(text);
    return out;
}

}  // namespace fragtune::ctl
