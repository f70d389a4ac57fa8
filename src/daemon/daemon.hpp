// The daemon proper: owns configuration, controller state, history and the tick. It is the API the
// D-Bus adaptor translates to (and nothing else): the adaptor never reaches into controller or sysctl
// code directly. Single-threaded: every method is called from the one event loop thread.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/configuration/config.hpp"
#include "fragtune/configuration/config_file.hpp"
#include "fragtune/deciding/controller.hpp"
#include "fragtune/persisting/instance_lock.hpp"
#include "fragtune/persisting/state_file.hpp"
#include "fragtune/persisting/sysctl_d.hpp"
#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/sensing/sample.hpp"

namespace fragtune {

struct DaemonOptions {
    std::filesystem::path root = "/";  // KernelFs root (fixture trees in tests)
    std::string config_path = "/etc/fragtune/fragtune.toml";
    std::optional<Mode> mode;                         // overrides the configured mode
    std::optional<std::string> persist_path;          // overrides daemon.persist_path
    std::optional<std::string> state_path;            // overrides daemon.state_path
    std::optional<OnExit> on_exit;                    // overrides daemon.on_exit
    std::optional<uint64_t> tick_usec;                // overrides daemon.tick
    std::optional<std::filesystem::path> record_dir;  // --record: save each tick's /proc files here
    // fragtuned --restore: started only to write the originals back. start() and stop() then do not
    // announce a running daemon, and without a state file nothing is recorded (there are no
    // originals to restore, and live values must not become them).
    bool restore_only = false;
};

// One knob as operators see it (D-Bus Tunables property, fragtunectl status).
struct TunableStatus {
    std::string name;                // table name, e.g. "min_free_kbytes"
    std::optional<int64_t> current;  // live value; absent when the kernel lacks the knob
    int64_t baseline = 0;
    std::optional<int64_t> original;
    int64_t min = 0, max = 0;  // effective bounds
    std::string state;         // to_string(KnobStatus)
    std::string reason;        // why it is in that state / last decision's reason
};

// Another sysctl.d file that sets one of our knobs.
struct ConflictInfo {
    std::string knob;
    std::string file;
    int line = 0;
    int64_t value = 0;
    bool overrides_ours = false;  // applied after our file at boot: the administrator's value wins
};

// Receives the daemon's events; the D-Bus adaptor implements it to emit signals.
class DaemonListener {
  public:
    virtual ~DaemonListener() = default;
    virtual void on_adjusted(const HistoryEntry& entry) = 0;
    virtual void on_allocation_failure(const AllocFailure& failure) = 0;
    virtual void on_mode_changed(Mode mode) = 0;
    // Status-visible state changed (values, states, signals): properties should be re-read.
    virtual void on_state_changed() = 0;
};

// What one tick saw, for the loop's cadence (deciding/cadence.hpp).
struct TickOutcome {
    bool sampled = false;        // a sample was taken (false: sampling failed, knobs held)
    bool decided = false;        // the controller made at least one decision
    bool failures = false;       // allocation failures reached this tick
    bool trouble = false;        // a zone below its low watermark, or direct reclaim stalls
    int64_t headroom_pages = 0;  // Signals::min_headroom_pages of the sample
};

class Daemon {
  public:
    explicit Daemon(DaemonOptions options);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Loads configuration, takes the instance lock beside the state file (before anything else is
    // read or written: a second fragtuned on the same state file fails here and changes nothing),
    // then loads state, removes stale temp files, takes the first sample and initialises the
    // controller. An error here (bad configuration, the lock held by another fragtuned, unreadable
    // /proc) means the daemon cannot run; stop() is then a no-op.
    Result<void> start(uint64_t mono_usec);

    // One control step at `mono_usec` with the kernel-log failures gathered since the last tick;
    // `kmsg_lost` records were overwritten unread, `failures_dropped` more failures were seen but not
    // kept (bounded memory under a flood): both are counted, neither is logged one by one.
    TickOutcome tick(uint64_t mono_usec, std::vector<AllocFailure> failures = {},
                     uint64_t kmsg_lost = 0, uint64_t failures_dropped = 0);

    // The loop reports its cadence and wake-up sources: tick_usec() then returns the interval
    // in force (the TickUSec property), and signals() shows "tick_usec" and "psi_trigger_armed".
    void set_loop_state(uint64_t interval_usec, bool psi_trigger_armed);

    // Stop: honours on_exit (keep or restore), persists settled values, saves state.
    void stop();

    // ---- API for D-Bus and signals -------------------------------------------------------------
    Mode mode() const;
    uint64_t tick_usec() const;  // the interval in force (set_loop_state), else daemon.tick
    std::vector<TunableStatus> tunables() const;
    // The latest derived signals as name -> value (PSI, indices, headroom, rates, failures per order).
    std::vector<std::pair<std::string, double>> signals() const;
    std::vector<ConflictInfo> conflicts() const;
    std::vector<HistoryEntry> history(size_t max) const;  // newest last
    // One line summary for sd_notify STATUS= and fragtunectl.
    std::string summary() const;
    // A paragraph on one knob: what it does, its value, bounds, state, the rules that move it and the
    // last decision. Unknown knob names are an error listing the valid ones.
    Result<std::string> explain(std::string_view knob) const;

    Result<void> set_mode(Mode mode);
    Result<void> pin(std::string_view knob);
    Result<void> unpin(std::string_view knob);
    // Writes the original values back and switches to observe mode (restore_only: no mode change).
    Result<void> restore();
    // Re-reads the configuration; on errors the old configuration keeps running and the errors are
    // returned (file:line:col each). A valid file is applied; the keys that only take effect at a
    // restart (keep_restart_keys() in daemon.cpp) keep their running values, and each one the file
    // changed is returned (and logged) as a note: the key, old and new value, "needs a restart".
    Result<std::vector<std::string>> reload();

    void set_listener(DaemonListener* listener) { listener_ = listener; }
    const KernelFs& fs() const { return fs_; }
    const Config& config() const { return config_.config; }

  private:
    struct Impl;
    void refresh_conflicts();
    void record(const Decision& d, bool applied);
    void record_sample();  // --record: save the latest sample's files
    void note_psi();       // logs a change in why PSI is absent
    // Observe mode (see Impl::Observed): the latest sample with observed values in place of the
    // real ones, booking a decision as if applied, and dropping the overlay of one or all knobs.
    Sample observed_view();
    void book_observed(const Decision& d, uint64_t mono_usec);
    void end_observed(Knob k);
    void end_all_observed();
    // The controller state with only real writes in last_written: what is persisted and saved.
    ControllerState real_state() const;
    bool apply(const Decision& d, uint64_t mono_usec);
    void persist_now();
    void save_state_now();
    Result<void> restore_originals(std::string_view why);

    DaemonOptions options_;
    KernelFs fs_;
    LoadedConfig config_;
    DaemonListener* listener_ = nullptr;
    std::optional<InstanceLock> lock_;  // held from start() until destruction
    uint64_t loop_interval_usec_ = 0;   // set_loop_state(); 0: not reported yet
    bool psi_trigger_armed_ = false;
    std::unique_ptr<Impl> impl_;
};

}  // namespace fragtune
