// What the daemon tells people about its state (fragtunectl status/explain, sd_notify STATUS=, the
// D-Bus Signals property): pure functions of (mode, controller state, configuration, sample,
// history). The daemon's methods are one-line calls to these.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fragtune/configuration/config.hpp"
#include "fragtune/deciding/controller.hpp"
#include "fragtune/persisting/state_file.hpp"
#include "fragtune/sensing/sample.hpp"
#include "fragtune/util/result.hpp"

namespace fragtune {

// One line: "active min_free_kbytes=67584 ... swappiness=60(pinned); 3 changes; sampling failing".
// A knob shows its state in parentheses unless it is tuning, "-" when the sample lacks it.
// `last` null: "starting".
std::string status_summary(Mode mode, const ControllerState& state, const Sample* last,
                           size_t history_size, bool sampling_failing);

// The explain text of one knob (by table name): what it is, its value, baseline, original and
// effective bounds, its state and why, the last decision and the last change in `history`.
// Errors: an unknown name (listing the valid ones), no sample yet (`last` null).
Result<std::string> explain_knob(std::string_view name, const ControllerState& state,
                                 const Config& config, const Sample* last,
                                 const std::deque<HistoryEntry>& history);

// The latest derived signals as (name, value): PSI, the fragmentation score, per target order free
// blocks and unusable index, watermark counts and headroom (KiB of the sampled kernel's pages),
// memory, the rule counters' rates, failures per order, and `failures_seen` (kernel-log
// allocation failures since start) as failures_total. Absent signals are left out.
std::vector<std::pair<std::string, double>> signal_values(const Sample& sample,
                                                          uint64_t failures_seen);

}  // namespace fragtune
