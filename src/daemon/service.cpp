#include "service.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <systemd/sd-event.h>

#include "bus.hpp"
#include "event_bus.hpp"
#include "fragtune/deciding/cadence.hpp"
#include "fragtune/sensing/kmsg.hpp"
#include "fragtune/sensing/psi_trigger.hpp"
#include "fragtune/sensing/sample.hpp"
#include "fragtune/util/fd.hpp"
#include "fragtune/util/time.hpp"
#include "logging.hpp"
#include "notify.hpp"

namespace fragtune {

namespace {

// Kernel-log failures gathered between ticks; bounded so a flood cannot grow memory.
constexpr size_t kMaxPendingFailures = 1024;
constexpr size_t kMaxRecordsPerDrain = 4096;
// Wake-ups closer together than this to the last tick are deferred to it: a flood of kernel-log
// failures or trigger events costs at most 20 ticks a second.
constexpr uint64_t kMinWakeSpacingUsec = 50'000;

CadenceConfig cadence_config(const Config& c) {
    return CadenceConfig{c.daemon.tick_usec, c.daemon.tick_min_usec, c.daemon.tick_max_usec};
}

// What the PSI trigger is armed with; a reload that changes it re-arms.
struct TriggerWanted {
    bool enabled = false;
    std::string path;
    PsiTriggerSpec spec;
    bool operator==(const TriggerWanted& o) const {
        return enabled == o.enabled && path == o.path && spec.stall_usec == o.spec.stall_usec &&
               spec.window_usec == o.spec.window_usec;
    }
};

TriggerWanted trigger_wanted(const Config& c) {
    return TriggerWanted{
        c.signals.psi_trigger, psi_path_for(c.signals.psi_source),
        PsiTriggerSpec{c.signals.psi_trigger_stall_usec, c.signals.psi_trigger_window_usec}};
}

std::string sd_error(std::string_view what, int r) {
    return fmt::format("{}: {}", what, std::strerror(-r));
}

// The loop's state. Every callback runs on the one thread inside sd_event_loop().
class Loop {
  public:
    Loop(const ServiceOptions& options, Daemon& daemon) : options_(options), daemon_(daemon) {}
    ~Loop() {
        glue_.reset();
        bus_.reset();
        disarm_trigger();
        sd_event_source_disable_unref(kmsg_src_);
        sd_event_source_disable_unref(tick_src_);
        sd_event_unref(event_);
    }
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    // Sets up every source; false after logging why (the caller exits 1).
    bool setup(bool with_bus);
    int run();

  private:
    static int on_signal(sd_event_source*, const signalfd_siginfo* si, void* self);
    static int on_tick(sd_event_source*, uint64_t, void* self);
    static int on_kmsg(sd_event_source*, int, uint32_t revents, void* self);
    static int on_trigger(sd_event_source*, int, uint32_t revents, void* self);

    // Stops the loop with exit status 1 and a critical message: never a loop that lives on with
    // its tick gone (and, petting the watchdog, would hide that).
    void fatal(const std::string& message);
    bool drain_kmsg();  // true when the batch stopped at its bound
    void run_tick(bool woken);
    // A wake-up (trigger, kernel-log failure): a tick now, or at kMinWakeSpacingUsec after the last.
    void wake(std::string_view why);
    bool arm_tick(uint64_t at_usec);
    void arm_trigger();
    void disarm_trigger();
    void reload();
    void publish();  // STATUS= and the daemon's loop state (TickUSec, psi_trigger_armed)

    const ServiceOptions& options_;
    Daemon& daemon_;
    sd_event* event_ = nullptr;
    sd_event_source* tick_src_ = nullptr;
    sd_event_source* kmsg_src_ = nullptr;
    sd_event_source* trigger_src_ = nullptr;
    std::optional<KmsgReader> kmsg_;
    UniqueFd trigger_fd_;
    TriggerWanted trigger_;     // what the trigger was last armed (or tried) with
    std::string trigger_note_;  // the last "cannot arm" message, logged once per distinct text
    std::unique_ptr<BusService> bus_;
    std::unique_ptr<EventBus> glue_;

    std::vector<AllocFailure> pending_;
    uint64_t pending_lost_ = 0;     // kernel-log records overwritten before we read them
    uint64_t pending_dropped_ = 0;  // failures seen but not kept (bound on memory under a flood)

    CadenceState cadence_;
    CadenceConfig cadence_cfg_;
    uint64_t interval_usec_ = 0;
    uint64_t last_tick_usec_ = 0;
    bool wake_pending_ = false;   // the armed tick answers a wake-up
    uint64_t watchdog_usec_ = 0;  // half of WatchdogSec=, 0: off
    uint64_t last_pet_usec_ = 0;
    std::string last_status_;
    int exit_code_ = 0;
};

void Loop::fatal(const std::string& message) {
    spdlog::critical("{}", message);
    notify::status("failed: " + message);
    exit_code_ = 1;
    (void)sd_event_exit(event_, 1);
}

bool Loop::setup(bool with_bus) {
    int r = sd_event_new(&event_);
    if (r < 0) {
        spdlog::critical("{}", sd_error("sd_event_new", r));
        return false;
    }
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
        r = sd_event_add_signal(event_, nullptr, sig, &Loop::on_signal, this);
        if (r < 0) {
            spdlog::critical("{}", sd_error(fmt::format("sd_event_add_signal {}", sig), r));
            return false;
        }
    }

    if (daemon_.config().signals.kernel_log) {
        KmsgOptions ko;
        ko.path = daemon_.config().signals.kmsg_path;
        ko.max_failures_per_drain = kMaxPendingFailures;
        ko.page_size_bytes = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
        auto k = KmsgReader::open(daemon_.fs(), ko);
        if (k) {
            kmsg_.emplace(std::move(*k));
        } else {
            spdlog::warn("not following the kernel log: {}", k.error().describe());
        }
    }
    // Only /dev/kmsg is polled: a regular file or a FIFO without a writer always polls ready
    // (POLLIN/POLLHUP) and would spin the loop; those are drained once per tick.
    if (kmsg_ && kmsg_->is_device()) {
        r = sd_event_add_io(event_, &kmsg_src_, kmsg_->fd(), EPOLLIN, &Loop::on_kmsg, this);
        if (r < 0) {
            spdlog::critical("{}", sd_error("sd_event_add_io (kernel log)", r));
            return false;
        }
    }

    if (with_bus) {
        auto b = BusService::open(daemon_);
        if (!b) {
            spdlog::critical("cannot own org.fragtune1 on the system bus: {}",
                             b.error().describe());
            // No daemon.stop(): this instance has tuned nothing, and its on_exit restore would
            // write sysctls under the fragtuned that owns the name (with another state file).
            return false;
        }
        bus_ = std::move(*b);
        std::string error;
        glue_ = EventBus::attach(
            event_, bus_->connection(),
            [this](const std::string& why) {
                // Never live on without our name: exit non-zero and let systemd restart us.
                fatal("lost the bus: " + why +
                      "; exiting so the service manager restarts fragtuned");
            },
            error);
        if (!glue_) {
            spdlog::critical("{}", error);
            return false;
        }
    }

    arm_trigger();
    cadence_cfg_ = cadence_config(daemon_.config());
    watchdog_usec_ = notify::watchdog_interval_usec();
    const uint64_t now = monotonic_usec();
    last_tick_usec_ = now;
    interval_usec_ =
        next_cadence(cadence_, CadenceInput{.mono_usec = now, .trouble = true}, cadence_cfg_)
            .interval_usec;
    if (watchdog_usec_) interval_usec_ = std::min(interval_usec_, watchdog_usec_);
    // Accuracy 1 ms: the default 250 ms would let sd-event coalesce a fast tick late.
    r = sd_event_add_time(event_, &tick_src_, CLOCK_MONOTONIC, now + interval_usec_, 1000,
                          &Loop::on_tick, this);
    if (r < 0) {
        spdlog::critical("{}", sd_error("sd_event_add_time (tick)", r));
        return false;
    }
    (void)sd_event_source_set_description(tick_src_, "tick");
    return true;
}

int Loop::run() {
    publish();
    notify::ready(last_status_);
    if (watchdog_usec_) {
        notify::watchdog();
        last_pet_usec_ = monotonic_usec();
    }
    const int r = sd_event_loop(event_);
    if (r < 0 && exit_code_ == 0) {
        spdlog::critical("{}", sd_error("sd_event_loop", r));
        exit_code_ = 1;
    }
    return exit_code_;
}

bool Loop::drain_kmsg() {
    if (!kmsg_) return false;
    auto batch = kmsg_->drain(kMaxRecordsPerDrain);
    if (!batch) {
        spdlog::error("kernel log: {}; no longer following it", batch.error().describe());
        kmsg_src_ = sd_event_source_disable_unref(kmsg_src_);
        kmsg_.reset();
        return false;
    }
    pending_lost_ += batch->lost;
    pending_dropped_ += batch->failures_dropped;
    for (auto& f : batch->failures) {
        if (pending_.size() < kMaxPendingFailures)
            pending_.push_back(std::move(f));
        else
            ++pending_dropped_;
    }
    return batch->limit_reached;
}

bool Loop::arm_tick(uint64_t at_usec) {
    int r = sd_event_source_set_time(tick_src_, at_usec);
    if (r >= 0) r = sd_event_source_set_enabled(tick_src_, SD_EVENT_ONESHOT);
    if (r < 0) {
        fatal(sd_error("cannot arm the tick timer", r) + "; stopping");
        return false;
    }
    return true;
}

void Loop::run_tick(bool woken) {
    // Files and FIFOs are not polled (see setup()): read all that is there now, in bounded
    // batches; what is over the bound is counted, not kept.
    if (kmsg_ && !kmsg_->is_device()) {
        for (int batch = 0; batch < 256 && kmsg_ && drain_kmsg(); ++batch) {
        }
    }
    const uint64_t start = monotonic_usec();
    const TickOutcome out =
        daemon_.tick(start, std::move(pending_), pending_lost_, pending_dropped_);
    pending_.clear();
    pending_lost_ = 0;
    pending_dropped_ = 0;
    const uint64_t end = monotonic_usec();
    last_tick_usec_ = start;
    // Every tick, at debug level: when it ran and whether it decided something.
    spdlog::debug("tick at {} us (CLOCK_MONOTONIC){}{}; done at {} us", start,
                  woken ? ", woken," : "", out.decided ? " decided" : "", end);

    // The configuration may have changed through D-Bus Reload since the last tick.
    if (trigger_wanted(daemon_.config()) != trigger_) arm_trigger();
    cadence_cfg_ = cadence_config(daemon_.config());
    CadenceInput in;
    in.mono_usec = start;
    in.headroom_pages = out.headroom_pages;
    in.woken = woken;
    in.failures = out.failures;
    in.decided = out.decided;
    in.trouble = out.trouble;
    if (!out.sampled) in.headroom_pages = cadence_.last_headroom_pages.value_or(0);
    CadenceStep step = next_cadence(cadence_, in, cadence_cfg_);
    cadence_ = step.next;
    interval_usec_ = step.interval_usec;
    // The watchdog is petted from here only, so it stops when ticks stop; a tick at least every
    // half period keeps it fed.
    if (watchdog_usec_) interval_usec_ = std::min(interval_usec_, watchdog_usec_);
    if (!arm_tick(start + interval_usec_)) return;
    wake_pending_ = false;
    if (watchdog_usec_ && end - last_pet_usec_ >= watchdog_usec_ / 2) {
        notify::watchdog();
        last_pet_usec_ = end;
    }
    publish();
}

void Loop::wake(std::string_view why) {
    const uint64_t now = monotonic_usec();
    spdlog::debug("wake-up: {} at {} us (CLOCK_MONOTONIC)", why, now);
    const uint64_t spacing = std::min(kMinWakeSpacingUsec, cadence_cfg_.min_usec);
    if (now - last_tick_usec_ >= spacing) {
        run_tick(true);
        return;
    }
    wake_pending_ = true;
    (void)arm_tick(last_tick_usec_ + spacing);
}

void Loop::disarm_trigger() {
    trigger_src_ = sd_event_source_disable_unref(trigger_src_);
    trigger_fd_.reset();
}

void Loop::arm_trigger() {
    disarm_trigger();
    trigger_ = trigger_wanted(daemon_.config());
    if (!trigger_.enabled) return;
    PsiTriggerSpec spec = trigger_.spec;
    auto fd = daemon_.fs().open_trigger(trigger_.path, psi_trigger_text(spec));
    // Without CAP_SYS_RESOURCE (Linux >= 6.5: EINVAL; older: EPERM) a 2 s multiple may still be
    // allowed; it is checked every 2 s only, but that is sooner than a calm tick.
    if (!fd && (fd.error().sys_errno == EINVAL || fd.error().sys_errno == EPERM)) {
        if (auto wider = psi_trigger_unprivileged_fallback(spec)) {
            auto again = daemon_.fs().open_trigger(trigger_.path, psi_trigger_text(*wider));
            if (again) {
                std::string why = psi_trigger_failure(trigger_.path, fd.error().sys_errno, spec);
                why.resize(why.rfind("; polling instead"));
                spdlog::info(
                    "{}; armed 'some {} {}' instead (allowed without CAP_SYS_RESOURCE, "
                    "checked every 2s)",
                    why, wider->stall_usec, wider->window_usec);
                spec = *wider;
                fd = std::move(again);
            }
        }
    }
    if (!fd) {
        // Said once per distinct reason: every reload would otherwise repeat it.
        std::string note = psi_trigger_failure(trigger_.path, fd.error().sys_errno, trigger_.spec);
        if (note != trigger_note_) spdlog::warn("{}", note);
        trigger_note_ = std::move(note);
        return;
    }
    trigger_fd_ = std::move(*fd);
    int r = sd_event_add_io(event_, &trigger_src_, trigger_fd_.get(), EPOLLPRI, &Loop::on_trigger,
                            this);
    if (r == -EPERM) {
        // epoll refuses regular files: a fixture tree (--root) or a recording, not the kernel's
        // PSI file. Nothing to wait for; polling is all there is.
        trigger_fd_.reset();
        std::string note = fmt::format(
            "PSI trigger on {}: the file cannot be polled (a regular file, not the kernel's PSI "
            "file); polling instead",
            trigger_.path);
        if (note != trigger_note_) spdlog::warn("{}", note);
        trigger_note_ = std::move(note);
        return;
    }
    if (r < 0) {
        trigger_fd_.reset();
        fatal(sd_error("sd_event_add_io (PSI trigger)", r) + "; stopping");
        return;
    }
    (void)sd_event_source_set_description(trigger_src_, "psi-trigger");
    trigger_note_.clear();
    spdlog::info("PSI trigger armed on {}: wake when tasks stall {} ms within {} ms", trigger_.path,
                 spec.stall_usec / 1000, spec.window_usec / 1000);
}

void Loop::reload() {
    notify::reloading(monotonic_usec());
    // Notes on keys that need a restart are logged by reload() itself.
    if (auto r = daemon_.reload(); !r) spdlog::error("{}", r.error().describe());
    if (trigger_wanted(daemon_.config()) != trigger_) arm_trigger();
    cadence_cfg_ = cadence_config(daemon_.config());
    // The new cadence starts now: fast, then stretching if the machine is calm.
    const uint64_t now = monotonic_usec();
    CadenceState fresh = cadence_;
    fresh.interval_usec = 0;
    interval_usec_ =
        next_cadence(fresh, CadenceInput{.mono_usec = now, .headroom_pages = 0, .trouble = true},
                     cadence_cfg_)
            .interval_usec;
    cadence_.interval_usec = interval_usec_;
    if (watchdog_usec_) interval_usec_ = std::min(interval_usec_, watchdog_usec_);
    if (!arm_tick(now + interval_usec_)) return;
    publish();
    notify::ready(last_status_);
}

void Loop::publish() {
    daemon_.set_loop_state(interval_usec_, static_cast<bool>(trigger_fd_));
    // STATUS= every tick, as before: the integration tests count ticks by it. Sending it only on
    // a change (issue #12) needs those tests to count ticks another way first.
    last_status_ = daemon_.summary();
    notify::status(last_status_);
}

int Loop::on_signal(sd_event_source*, const signalfd_siginfo* si, void* self) {
    auto* l = static_cast<Loop*>(self);
    if (si->ssi_signo == SIGHUP) {
        l->reload();
        return 0;
    }
    spdlog::info("signal {} received, stopping", strsignal(static_cast<int>(si->ssi_signo)));
    (void)sd_event_exit(l->event_, 0);
    return 0;
}

int Loop::on_tick(sd_event_source*, uint64_t, void* self) {
    auto* l = static_cast<Loop*>(self);
    l->run_tick(l->wake_pending_);
    return 0;
}

int Loop::on_kmsg(sd_event_source*, int, uint32_t, void* self) {
    auto* l = static_cast<Loop*>(self);
    const size_t before = l->pending_.size();
    const uint64_t dropped = l->pending_dropped_;
    (void)l->drain_kmsg();
    // A new allocation failure is trouble now, not at the next timer tick.
    if (l->pending_.size() > before || l->pending_dropped_ > dropped)
        l->wake("allocation failure in the kernel log");
    return 0;
}

int Loop::on_trigger(sd_event_source*, int, uint32_t revents, void* self) {
    auto* l = static_cast<Loop*>(self);
    if (revents & (EPOLLERR | EPOLLHUP)) {
        // The kernel reports POLLERR once the trigger's file is gone (the cgroup was removed).
        spdlog::warn("PSI trigger on {}: the file went away (cgroup removed?); polling instead",
                     l->trigger_.path);
        l->disarm_trigger();
        l->publish();
        return 0;
    }
    if (revents & EPOLLPRI) l->wake("PSI trigger");
    return 0;
}

}  // namespace

int run_service(const ServiceOptions& options) {
    if (auto r = logging::setup(options.log_level.empty() ? "info" : options.log_level); !r) {
        fmt::print(stderr, "fragtuned: {}\n", r.error().describe());
        return 2;
    }

    // sd_event_add_signal() wants the signals blocked first; blocked before anything else so a
    // TERM during start-up waits for the loop instead of killing a half-started daemon.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);

    Daemon daemon(options.daemon);
    if (auto r = daemon.start(monotonic_usec()); !r) {
        spdlog::critical("cannot start: {}", r.error().describe());
        notify::status("failed: " + r.error().describe());
        return 1;
    }
    if (!options.log_level.empty()) (void)logging::set_level(options.log_level);

    int exit_code = 1;
    {
        Loop loop(options, daemon);
        if (!loop.setup(options.bus)) return 1;
        exit_code = loop.run();
    }
    notify::stopping();
    daemon.stop();
    return exit_code;
}

}  // namespace fragtune
