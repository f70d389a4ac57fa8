// The controller state's transitions outside the tick: start (with or without a state file),
// reload, restore. Pure functions of (state, config, sample, live values); the daemon does the I/O
// (reading the knobs, writing the decisions) and calls these, so each rule exists once.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fragtune/configuration/config.hpp"
#include "fragtune/deciding/controller.hpp"
#include "fragtune/persisting/state_file.hpp"
#include "fragtune/sensing/sample.hpp"

namespace fragtune {

// Live knob values as the daemon read them just now (absent: the kernel lacks the knob, or the
// read failed and the daemon reported it).
using KnobValues = std::array<std::optional<int64_t>, kKnobCount>;

// Managed pages of the lowmem zones (DMA, DMA32, Normal) in KiB of the sampled kernel's pages: what
// "N%" bounds and baselines of min_free_kbytes are a share of.
uint64_t managed_lowmem_kib(const Sample& sample);

// The one rule for a knob's decay target: the configured baseline, else the configured share of
// managed lowmem (min_free_kbytes "2%", resolved against `sample`), else the original, else 0.
// Start, start with a state file and reload all use it, so the same lowmem gives the same KiB.
int64_t resolve_baseline(const KnobConfig& kc, std::optional<int64_t> original,
                         const Sample& sample);

// The state at start: initial_state() from the first sample, the state file's originals, last
// writes and lasting statuses adopted when one was loaded (adopt_persisted), then every baseline
// resolved against the originals now in force (resolve_baseline).
ControllerState state_at_start(const Sample& first, const Config& config,
                               const PersistedState* persisted);

// Keys read only at start (signals.kernel_log, signals.kmsg_path, daemon.state_path: the kernel-log
// source is opened once, the state file holds the instance lock): a reload keeps their running
// values in `next` and returns one note per key that changed, saying a restart is needed.
std::vector<std::string> keep_restart_keys(Config& next, const Config& running);

// The state after a reload to `next`: baselines follow the new file (resolve_baseline against
// `last`, when there is a sample), knobs disabled in it become `disabled`, knobs enabled again
// become `tuning` with the last sample's value as theirs (so the override check does not pin them
// at once). Pins, originals, history and timers stay.
ControllerState state_after_reload(const ControllerState& state, const Config& next,
                                   const Sample* last);

// Rule "bounds-tightened": for each tuning knob whose live value lies outside its effective bounds
// under `config` (after a reload), a decision to the nearest bound, to be applied now rather than
// at the next rule that fires. Knobs without a live value are skipped.
std::vector<Decision> bounds_tightened(const ControllerState& state, const Config& config,
                                       const Sample& last, const KnobValues& live);

// Rule "restore": for each knob with a known original and a live value that differs from it, a
// decision back to the original (reason: "<why>: back to the original value found at first
// start"). Bounded by the kernel's range only when written: the original is by definition
// acceptable.
std::vector<Decision> restore_plan(const ControllerState& state, const KnobValues& live,
                                   std::string_view why);

}  // namespace fragtune
