// The daemon's memory across restarts and crashes (default /var/lib/fragtune/state.toml): the value
// each knob had before fragtune first touched it (the truth for restore), what fragtune last wrote,
// which knobs are pinned, and a bounded history of changes. Rendered and parsed as TOML (toml++);
// toml++ exceptions are caught here and become Errors with file:line:column.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fragtune/configuration/config.hpp"
#include "fragtune/deciding/controller.hpp"
#include "fragtune/knobs/tunables.hpp"
#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/util/result.hpp"

namespace fragtune {

// Bumped when the file's meaning changes incompatibly. A file with a larger version was written by
// a newer fragtuned: it is refused and left untouched, never reinterpreted.
inline constexpr int64_t kStateFormatVersion = 1;
// History records kept when the caller does not say (matches DaemonConfig::history_size's default).
inline constexpr std::size_t kDefaultStateHistory = 256;
// The state file is never larger than this: render_state() keeps the newest history records that
// fit, and load_state() refuses a larger file (unreadable: used for nothing, never overwritten). At
// ~250 bytes a record that is some 4,000 records; the rest of history_size lives in memory only.
// Bounded so that a start parses at most 1 MiB and a deciding tick rewrites at most 1 MiB.
inline constexpr std::size_t kMaxStateFileBytes = 1u << 20;
// Each string in the state file (a rule, a reason, a status reason) is cut to this many bytes, at
// a character boundary, so the knobs alone always fit in kMaxStateFileBytes.
inline constexpr std::size_t kMaxStateTextBytes = 4096;
// How the state file is read: its byte bound, and never through a symbolic link.
inline constexpr ReadLimits kStateFileLimits{kMaxStateFileBytes, "state files", true};

// Stable on-disk names. Deliberately separate from the display strings (to_string in
// controller.hpp), so a wording change there never invalidates state files. They equal the
// enumerators' names.
std::string_view status_key(KnobStatus s);
std::optional<KnobStatus> status_from_key(std::string_view key);
std::string_view action_key(Action a);
std::optional<Action> action_from_key(std::string_view key);

// One change record, as kept in the state file, the D-Bus history and fragtunectl. Time is
// wall-clock (CLOCK_REALTIME, microseconds since the epoch): monotonic time means nothing after a
// reboot.
struct HistoryEntry {
    uint64_t realtime_usec = 0;
    Knob knob = Knob::min_free_kbytes;
    Action action = Action::raise;
    int64_t old_value = 0;
    int64_t new_value = 0;
    std::string rule;
    std::string reason;
    bool applied = false;  // written and read back; false: refused, failed or report-only (pin)

    friend bool operator==(const HistoryEntry&, const HistoryEntry&) = default;
};

// A decision as a history record.
HistoryEntry make_history_entry(const Decision& d, uint64_t realtime_usec, bool applied);

struct PersistedKnob {
    std::optional<int64_t> original;  // recorded once, at the first start that saw the knob
    std::optional<int64_t> baseline;  // for status and forensics; config or original rule on load
    std::optional<int64_t> last_written;  // to tell "someone else changed it while we were down"
    // Only pinned and conflict are stored (an operator's or administrator's decision that must
    // outlive a restart); every other status is recomputed at start and is stored and loaded as
    // tuning.
    KnobStatus status = KnobStatus::tuning;
    std::string status_reason;
    // watermark_scale_factor and min_free_kbytes: the value anticipation learnt (anticipation.hpp)
    // and how long ago, so that a restart keeps both the value and the rest of its hold. The time
    // the daemon is down does not count. Absent in files written before issue #13.
    std::optional<int64_t> learned;
    uint64_t learned_age_usec = 0;
    std::string learned_why;

    friend bool operator==(const PersistedKnob&, const PersistedKnob&) = default;
};

struct PersistedState {
    int64_t format_version = kStateFormatVersion;
    std::array<PersistedKnob, kKnobCount> knobs{};
    std::vector<HistoryEntry> history;  // oldest first

    // Filled by parse_state, never rendered: what was skipped and why ("state.toml:12:1: history
    // record skipped: no 'knob'"), and how many old history records were dropped to honour the
    // bound.
    std::vector<std::string> warnings;
    std::size_t history_dropped = 0;

    PersistedKnob& knob(Knob k) { return knobs[index(k)]; }
    const PersistedKnob& knob(Knob k) const { return knobs[index(k)]; }
};

// Pure: the TOML text, with a comment header, at most `max_bytes` long (which must be at least
// 64 KiB): the knobs always, then as many of the newest history records as fit, oldest dropped
// first. Strings go through state_text() so that what is rendered always parses again.
std::string render_state(const PersistedState& state, std::size_t max_bytes = kMaxStateFileBytes);

// Pure: `s` as the state file keeps it: valid UTF-8 (invalid bytes become U+FFFD), cut at a
// character boundary to at most kMaxStateTextBytes bytes.
std::string state_text(std::string_view s);

// Pure: parses `text`; `source` names it in errors ("/var/lib/fragtune/state.toml:3:9: ...").
// Errors: TOML syntax (truncated, corrupt), no or non-integer format_version, a version newer than
// kStateFormatVersion, and wrong types in [knobs] (originals are not guessed). Lenient where losing
// data is harmless: a malformed history record or unknown key is skipped with a warning. Keeps the
// newest `max_history` history records.
Result<PersistedState> parse_state(std::string_view text, std::string_view source,
                                   std::size_t max_history = kDefaultStateHistory);

enum class StateLoadStatus {
    loaded,   // parsed; use it
    absent,   // no file yet (first start): empty state, not an error
    corrupt,  // unparsable or invalid: start fresh, set the file aside (set_aside_state_file)
    future_version,  // written by a newer fragtuned: start fresh but never overwrite it
    unreadable,  // I/O failure (EACCES, EIO...): start fresh, do not overwrite what we cannot read
};
std::string_view to_string(StateLoadStatus s);

struct LoadedState {
    StateLoadStatus status = StateLoadStatus::absent;
    PersistedState state;        // loaded: the file's contents; otherwise an empty state
    std::optional<Error> error;  // corrupt, future_version, unreadable: what and where
};

// Reads and parses `path` through `fs`. Never writes.
LoadedState load_state(const KernelFs& fs, std::string_view path,
                       std::size_t max_history = kDefaultStateHistory);

// Keeps a corrupt state file for inspection as path + ".corrupt" (mode 0600, replacing an older
// one).
Result<void> set_aside_state_file(const KernelFs& fs, std::string_view path);

// Saves atomically with mode 0600; the directory is created with mode 0700.
Result<void> save_state(const KernelFs& fs, std::string_view path, const PersistedState& state);

// ---- bridging to the controller's state (pure) --------------------------------------------------

// What to save now. Originals already recorded in `previous` are kept as they are: once recorded
// they are never overwritten (a later start sees fragtune's own values live, not the originals).
// History keeps the newest `max_history` records of `history`.
PersistedState snapshot_state(const ControllerState& state,
                              const std::vector<HistoryEntry>& history,
                              const PersistedState& previous,
                              std::size_t max_history = kDefaultStateHistory);

// At start, after initial_state(): persisted originals replace the live values found (they are the
// truth for restore; the baselines that follow from them are resolved by state_at_start() in
// deciding/transitions.hpp, which calls this), last_written is restored (for min_free_kbytes also as user_min_free_kbytes), and pinned/conflict statuses come
// back (unless the knob is now unsupported or disabled, which win).
void adopt_persisted(ControllerState& state, const PersistedState& persisted);

}  // namespace fragtune
