// fragtunectl's output, as pure functions of plain data: what the daemon returned over D-Bus
// (already unpacked from the wire types) in, text or JSON out. No bus, no terminal, no clock: the
// caller decides colour and time zone, so every function here is tested with literal data
// (tests/unit/ctl_format_test).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace fragtune::ctl {

// One entry of the Tunables property / GetStatus tunables (wire: a(sxxxxxss), -1 = absent).
struct TunableRow {
    std::string name;                // table name, "min_free_kbytes"
    std::optional<int64_t> current;  // absent: the kernel lacks the knob
    int64_t baseline = 0;
    std::optional<int64_t> original;
    int64_t min = 0, max = 0;  // effective bounds
    std::string state;         // tuning, pinned, conflict, failed, unsupported, disabled
    std::string reason;
};

// One change (wire: a(tssxxssb)).
struct HistoryRow {
    uint64_t realtime_usec = 0;  // CLOCK_REALTIME, microseconds
    std::string knob;            // table name
    std::string action;          // raise, lower, decay, kick, refuse, pin, compact
    int64_t old_value = 0, new_value = 0;
    std::string rule, reason;
    bool applied = false;
};

// Another sysctl.d file setting one of our knobs (wire: a(ssixb)).
struct ConflictRow {
    std::string knob, file;
    int line = 0;
    int64_t value = 0;
    bool overrides_ours = false;
};

struct StatusView {
    std::string version;
    uint64_t tick_usec = 0;
    std::string mode, summary;
    std::vector<TunableRow> tunables;
    std::map<std::string, double> signals;
    std::vector<HistoryRow> history;  // oldest first
    std::vector<ConflictRow> conflicts;
};

struct FormatOptions {
    bool color = false;         // ANSI colours (only for a terminal, and never with NO_COLOR set)
    bool utc = false;           // timestamps in UTC instead of the local time zone
    bool all_signals = false;   // status: every signal, not just the key ones
    size_t recent_changes = 5;  // status: how many of the latest changes to show
};

// fragtunectl's exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotRunning = 3;

struct ErrorReport {
    int exit_code = kExitFailure;
    std::string message;  // one line (or the daemon's list of errors), saying what to do
};

// A D-Bus error (name and message of an error reply or a failed connection) as what the operator
// sees: "fragtuned is not running: systemctl start fragtuned" (exit 3) when nobody owns
// org.fragtune1, "permission denied: run as root" for the bus policy's or the daemon's AccessDenied
// (exit 1), the daemon's own message for its org.fragtune1.Error.* replies
// (UnknownKnob/InvalidArgument: exit 2).
ErrorReport describe_bus_error(std::string_view name, std::string_view message);

// Colour policy: only when stdout is a terminal and NO_COLOR is unset or empty (no-color.org).
bool want_color(bool stdout_is_tty, const char* no_color_env);

// "2025-03-01 14:02:07" in UTC or the local time zone (TZ).
std::string format_timestamp(uint64_t realtime_usec, bool utc);

// The one way fragtunectl prints JSON: nlohmann's dump() with invalid UTF-8 (kernel-log task names
// and file names are bytes, not text) replaced by U+FFFD, so the output is always valid JSON.
// indent -1: one line.
std::string dump_json(const nlohmann::json& j, int indent = -1);

// Replaces control characters (terminal escapes from a hostile file name or reason) with '?'.
std::string sanitize(std::string_view text);

// The signals `status` shows without --all-signals, in this order, when the daemon reports them.
const std::vector<std::string_view>& key_signal_names();

// One change as a line: "2025-03-01 14:02:07 vm.min_free_kbytes 67584 -> 101376 [raise:
// atomic-failures] 3 atomic order-1 failures in 2.0 s", the same words as the journal's line.
std::string format_history_line(const HistoryRow& row, const FormatOptions& options);

// `fragtunectl status`: header, knob table, key signals, conflicts, the latest changes.
std::string format_status(const StatusView& status, const FormatOptions& options);

// `fragtunectl history`: one line per change, oldest first; a note when there is none.
std::string format_history(const std::vector<HistoryRow>& rows, const FormatOptions& options);

// `fragtunectl explain`: the daemon's paragraphs, each under its knob's name when there are
// several.
std::string format_explain(const std::vector<std::pair<std::string, std::string>>& knob_texts,
                           const FormatOptions& options);

// `fragtunectl monitor` lines; realtime_usec is when the event arrived.
std::string format_adjusted_event(uint64_t realtime_usec, std::string_view knob, int64_t old_value,
                                  int64_t new_value, std::string_view rule, std::string_view reason,
                                  const FormatOptions& options);
std::string format_alloc_failure_event(uint64_t realtime_usec, int order, std::string_view task,
                                       bool atomic, const FormatOptions& options);
std::string format_mode_event(uint64_t realtime_usec, std::string_view mode,
                              const FormatOptions& options);
// `fragtunectl monitor --json`: one object per line, with "event" naming the signal.
nlohmann::json adjusted_event_json(uint64_t realtime_usec, std::string_view knob, int64_t old_value,
                                   int64_t new_value, std::string_view rule,
                                   std::string_view reason);
nlohmann::json alloc_failure_event_json(uint64_t realtime_usec, int order, std::string_view task,
                                        bool atomic);
nlohmann::json mode_event_json(uint64_t realtime_usec, std::string_view mode);

// --json: stable keys, knob names as on the bus, absent values as null, times in microseconds.
nlohmann::json to_json(const TunableRow& row);
nlohmann::json to_json(const HistoryRow& row);
nlohmann::json to_json(const ConflictRow& row);
nlohmann::json to_json(const StatusView& status);
nlohmann::json history_to_json(const std::vector<HistoryRow>& rows);
nlohmann::json explain_to_json(const std::vector<std::pair<std::string, std::string>>& knob_texts);

}  // namespace fragtune::ctl
