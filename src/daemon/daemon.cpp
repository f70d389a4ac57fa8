#include "daemon.hpp"

#include <cerrno>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "fragtune/deciding/transitions.hpp"
#include "fragtune/persisting/persist.hpp"
#include "fragtune/reporting/metrics.hpp"
#include "fragtune/reporting/replay.hpp"
#include "fragtune/reporting/status_text.hpp"
#include "fragtune/sensing/sysctl_io.hpp"
#include "fragtune/util/text.hpp"
#include "fragtune/util/time.hpp"
#include "logging.hpp"

namespace fragtune {

namespace {

SamplerOptions sampler_options(const Config& c) {
    SamplerOptions o;
    o.psi_path = psi_path_for(c.signals.psi_source);
    o.signals.target_orders = c.signals.target_orders;
    o.zoneinfo.every_ticks = c.signals.zoneinfo_every;
    o.zoneinfo.psi_some_percent = c.watermark.psi_some_relax_percent;
    return o;
}

}  // namespace

struct Daemon::Impl {
    explicit Impl(const KernelFs& fs, const Config& c) : sampler(fs, sampler_options(c)) {}

    Sampler sampler;
    std::optional<Sample> last;  // the latest good sample
    ControllerState state;
    Mode mode = Mode::active;
    PersistedState persisted;           // as last loaded or saved
    bool may_save_state = true;         // false when the file on disk must not be overwritten
    bool originals_from_state = false;  // the originals came from a loaded state file
    std::deque<HistoryEntry> history;
    std::vector<ConflictInfo> conflicts;
    std::string persisted_text;  // last sysctl.d contents written (to skip identical rewrites)
    bool persist_dirty = false;  // applied values not yet persisted
    uint64_t last_applied_usec = 0;
    std::string persist_status = "not yet persisted";
    std::string sample_error;    // the last sampling error, logged once until it clears
    std::string psi_error;       // why PSI is absent, logged once per distinct reason
    uint64_t failures_seen = 0;  // kernel-log allocation failures since start
    MetricsCounters metrics;     // for metrics.textfile_path
    MetricsTextfile metrics_file;
    // Observe mode records what active mode would really have done: an observed decision is booked
    // as if applied (cooldowns, hourly caps, histories), and the next samples show the knob at the
    // value it would have had. Per knob: that value, the real value when the overlay began (a
    // different real value later means someone else wrote it) and last_written before it.
    struct Observed {
        int64_t value = 0;
        int64_t real = 0;
        std::optional<int64_t> last_written_before;
    };
    std::array<std::optional<Observed>, kKnobCount> observed{};
    uint64_t record_seq = 0;     // next --record tick directory
    bool record_failed = false;  // --record stopped after an error (logged once)
};

Daemon::Daemon(DaemonOptions options) : options_(std::move(options)), fs_(options_.root) {}
Daemon::~Daemon() = default;

namespace {

// Command-line overrides win over the configuration file, at start and at every reload.
void apply_overrides(Config& c, const DaemonOptions& o) {
    if (o.persist_path) c.daemon.persist_path = *o.persist_path;
    if (o.state_path) c.daemon.state_path = *o.state_path;
    if (o.on_exit) c.daemon.on_exit = *o.on_exit;
    if (o.tick_usec) c.daemon.tick_usec = *o.tick_usec;
    if (o.mode) c.daemon.mode = *o.mode;
}

}  // namespace

Result<void> Daemon::start(uint64_t mono_usec) {
    auto loaded = load_config(fs_, options_.config_path);
    if (!loaded) return loaded.error();
    config_ = std::move(*loaded);
    apply_overrides(config_.config, options_);
    const Config& cfg = config_.config;
    if (auto r = logging::set_level(cfg.daemon.log_level); !r) return r.error();
    for (const auto& w : config_.warnings) spdlog::warn("{}", w.describe());

    // One instance per state file, decided before anything is read from or written to the machine.
    auto lock = InstanceLock::acquire(fs_, lock_path_for(cfg.daemon.state_path));
    if (!lock) return lock.error();
    lock_.emplace(std::move(*lock));

    impl_ = std::make_unique<Impl>(fs_, cfg);
    impl_->mode = cfg.daemon.mode;

    // A crash mid-write leaves a temp file next to the target; the target itself is always whole.
    for (const auto& path : {cfg.daemon.persist_path, cfg.daemon.state_path}) {
        if (auto r = fs_.remove_stale_temps(dir_of(path)); r && *r > 0)
            spdlog::info("removed {} stale temp file(s) in {}", *r, dir_of(path));
    }

    auto first = impl_->sampler.take(mono_usec);
    if (!first) return make_error("first sample failed: " + first.error().describe());
    impl_->last = std::move(*first);
    note_psi();
    impl_->state = state_at_start(*impl_->last, cfg, nullptr);
    record_sample();  // the replay starts from the same first sample as the daemon

    auto st = load_state(fs_, cfg.daemon.state_path, cfg.daemon.history_size);
    switch (st.status) {
        case StateLoadStatus::loaded:
            for (const auto& w : st.state.warnings) spdlog::warn("{}", w);
            break;
        case StateLoadStatus::absent:
            if (options_.restore_only) {
                spdlog::info("no state file at {}: no originals were recorded, nothing to restore",
                             cfg.daemon.state_path);
                impl_->may_save_state = false;
                break;
            }
            spdlog::info("no state file at {}: first start, originals recorded from live values",
                         cfg.daemon.state_path);
            break;
        case StateLoadStatus::corrupt:
            if (options_.restore_only) {
                // The originals are in that file only: leave it where it is for a person to read,
                // and record nothing from live (possibly tuned) values in its place.
                spdlog::error("{}; no originals to restore, the file is left as it is",
                              st.error->describe());
                impl_->may_save_state = false;
                break;
            }
            spdlog::error("{}; starting fresh, the file is kept as {}.corrupt",
                          st.error->describe(), cfg.daemon.state_path);
            if (auto r = set_aside_state_file(fs_, cfg.daemon.state_path); !r) {
                spdlog::error("{}; the state file will not be overwritten", r.error().describe());
                impl_->may_save_state = false;
            }
            break;
        case StateLoadStatus::future_version:
        case StateLoadStatus::unreadable:
            spdlog::error("{}; running without saving state so the file is not overwritten",
                          st.error->describe());
            impl_->may_save_state = false;
            break;
    }
    impl_->originals_from_state = st.status == StateLoadStatus::loaded;
    if (st.status == StateLoadStatus::loaded) {
        impl_->state = state_at_start(*impl_->last, cfg, &st.state);
        impl_->persisted = st.state;
        for (auto& h : st.state.history) impl_->history.push_back(h);
    }
    refresh_conflicts();
    save_state_now();
    if (!options_.restore_only)
        spdlog::info("fragtuned {} started: mode {}, tick {}, root {}", FRAGTUNE_VERSION,
                     to_string(impl_->mode),
                     cfg.daemon.tick_usec != 0
                         ? fmt::format("{} ms", cfg.daemon.tick_usec / 1000)
                         : fmt::format("adaptive {}..{} ms", cfg.daemon.tick_min_usec / 1000,
                                       cfg.daemon.tick_max_usec / 1000),
                     fs_.root().string());
    return {};
}

void Daemon::refresh_conflicts() {
    const Config& cfg = config_.config;
    impl_->conflicts.clear();
    BootSysctlConfig boot = effective_boot_values(fs_, cfg.daemon.persist_path);
    for (const auto& issue : boot.issues)
        spdlog::warn("{}{}: {}", issue.source, issue.line ? fmt::format(":{}", issue.line) : "",
                     issue.message);
    for (const auto& t : kTunables) {
        const KnobBootInfo& kb = boot.knob(t.knob);
        auto add = [&](const SysctlAssignment& a, bool overrides) {
            int64_t v = 0;
            auto parsed = parse_sysctl_int(a.value, a.source);
            if (parsed) v = *parsed;
            impl_->conflicts.push_back(
                ConflictInfo{std::string(t.name), a.source, a.line, v, overrides});
        };
        for (const auto& a : kb.before_ours) add(a, false);
        for (const auto& a : kb.after_ours) add(a, true);
        auto& ks = impl_->state.knob(t.knob);
        if (kb.conflict() && (ks.status == KnobStatus::tuning || ks.status == KnobStatus::failed)) {
            ks.status = KnobStatus::conflict;
            ks.status_reason = kb.describe(t.sysctl) +
                               "; the administrator's file wins and fragtune leaves the knob alone";
            spdlog::warn("{}: {}", t.sysctl, ks.status_reason);
        }
    }
}

// PSI feeds the watermark policy; without it fragtuned tunes on the other signals. Said once per
// reason (not every tick), and again when PSI comes back.
void Daemon::note_psi() {
    const std::string& now = impl_->last->psi_error;
    if (now == impl_->psi_error) return;
    if (!now.empty())
        spdlog::warn("{}; tuning without PSI (watermark_scale_factor follows direct reclaim only)",
                     now);
    else
        spdlog::info("PSI available again from {}", sampler_options(config_.config).psi_path);
    impl_->psi_error = now;
}

void Daemon::record_sample() {
    if (!options_.record_dir || impl_->record_failed || !impl_->last) return;
    if (auto r = record_tick(fs_, *options_.record_dir, impl_->record_seq++, impl_->last->mono_usec,
                             impl_->last->failures, sampler_options(config_.config).psi_path);
        !r) {
        spdlog::error("recording stopped: {}", r.error().describe());
        impl_->record_failed = true;
    }
}

void Daemon::record(const Decision& d, bool applied) {
    logging::decision(d, applied);
    HistoryEntry e = make_history_entry(d, realtime_usec(), applied);
    impl_->history.push_back(e);
    while (impl_->history.size() > config_.config.daemon.history_size) impl_->history.pop_front();
    impl_->metrics.count_decision(d, applied);
    if (listener_) listener_->on_adjusted(e);
}

bool Daemon::apply(const Decision& d, uint64_t mono_usec) {
    const Config& cfg = config_.config;
    if (d.action == Action::compact) {
        auto r = write_compact_memory(fs_);
        if (!r) spdlog::error("{}", r.error().describe());
        return r.ok();
    }
    const Range bounds = effective_bounds(d.knob, impl_->state.knob(d.knob), cfg, *impl_->last);
    auto r = apply_knob(fs_, d.knob, d.new_value, bounds);
    if (!r) {
        // EINVAL for a value inside the range we believed in: the kernel's range is narrower (a
        // kernel without a backport). Learn it and decide again next tick instead of backing off.
        if (r.error().sys_errno == EINVAL &&
            narrow_range(impl_->sampler.profile(), d.knob, d.new_value, d.old_value)) {
            const Range nr = impl_->sampler.profile().range(d.knob);
            spdlog::warn("{}: the kernel refused {}; its range is {}..{} from now on",
                         spec(d.knob).sysctl, d.new_value, nr.min, nr.max);
            return false;
        }
        // Logged once here; the controller backs the knob off so it is not retried every tick.
        spdlog::error("{}", r.error().describe());
        record_failed(impl_->state, d.knob, r.error().describe(), mono_usec);
        return false;
    }
    record_applied(impl_->state, d.knob, *r, mono_usec);
    impl_->persist_dirty = true;
    impl_->last_applied_usec = mono_usec;
    return true;
}

TickOutcome Daemon::tick(uint64_t mono_usec, std::vector<AllocFailure> failures, uint64_t kmsg_lost,
                         uint64_t failures_dropped) {
    const Config& cfg = config_.config;
    TickOutcome outcome;
    outcome.failures = !failures.empty() || failures_dropped > 0;
    if (!failures.empty() || kmsg_lost > 0 || failures_dropped > 0) {
        impl_->failures_seen += failures.size() + failures_dropped;
        // One line per tick, however many failures a flood brings; by order for the kept ones.
        std::map<int, int> by_order;
        for (const auto& f : failures) ++by_order[f.order];
        std::string orders;
        for (auto [o, n] : by_order) orders += fmt::format(" order {}: {}", o, n);
        spdlog::warn(
            "kernel log: {} allocation failure(s){}{}{}", failures.size() + failures_dropped,
            orders, kmsg_lost ? fmt::format(" ({} kernel log records lost)", kmsg_lost) : "",
            failures_dropped
                ? fmt::format(" ({} beyond the per-tick bound, counted only)", failures_dropped)
                : "");
        if (listener_)
            for (const auto& f : failures) listener_->on_allocation_failure(f);
    }
    auto s = impl_->sampler.take(mono_usec, std::move(failures), kmsg_lost);
    if (!s) {
        const std::string msg = s.error().describe();
        if (msg != impl_->sample_error)
            spdlog::error("sampling failed, holding all knobs: {}", msg);
        impl_->sample_error = msg;
        // Not calm: the knobs are held blind, so the cadence stays fast to notice the recovery.
        outcome.trouble = true;
        return outcome;
    }
    if (!impl_->sample_error.empty()) spdlog::info("sampling recovered");
    impl_->sample_error.clear();
    impl_->last = std::move(*s);
    note_psi();
    record_sample();

    bool changed = false;
    if (impl_->mode != Mode::paused) {
        const bool observing = impl_->mode == Mode::observe;
        std::optional<Sample> view;  // a copy only in observe mode
        if (observing) view = observed_view();
        Step step = decide(view ? *view : *impl_->last, impl_->state, cfg);
        impl_->state = std::move(step.next);
        for (const auto& d : step.decisions) {
            const bool applied = impl_->mode == Mode::active && d.apply && apply(d, mono_usec);
            if (observing) book_observed(d, mono_usec);
            record(d, applied);
            changed = true;
        }
    }
    if (impl_->persist_dirty &&
        mono_usec - impl_->last_applied_usec >= cfg.daemon.persist_settle_usec)
        persist_now();
    if (changed) save_state_now();
    // Metrics: counted always, written when configured; a failing path is logged once.
    impl_->metrics.count_failures(impl_->last->signals);
    if (!cfg.metrics.textfile_path.empty()) {
        auto snap =
            make_metrics_snapshot(*impl_->last, impl_->state, cfg, impl_->mode, realtime_usec());
        auto rep = impl_->metrics_file.write(fs_, cfg.metrics.textfile_path,
                                             render_metrics(snap, impl_->metrics));
        if (rep && rep->ok) spdlog::info("{}", rep->message);
        if (rep && !rep->ok) spdlog::error("{}", rep->message);
    }
    if (listener_) listener_->on_state_changed();
    const Signals& sig = impl_->last->signals;
    outcome.sampled = true;
    outcome.decided = changed;
    const auto stall = sig.counter("allocstall");
    outcome.trouble = sig.zones_below_low > 0 || (stall && stall->per_sec > 0);
    outcome.headroom_pages = sig.min_headroom_pages;
    return outcome;
}

void Daemon::set_loop_state(uint64_t interval_usec, bool psi_trigger_armed) {
    const bool differs =
        interval_usec != loop_interval_usec_ || psi_trigger_armed != psi_trigger_armed_;
    loop_interval_usec_ = interval_usec;
    psi_trigger_armed_ = psi_trigger_armed;
    if (differs && listener_) listener_->on_state_changed();
}

Sample Daemon::observed_view() {
    Sample view = *impl_->last;
    for (const auto& t : kTunables) {
        auto& o = impl_->observed[index(t.knob)];
        if (!o) continue;
        const auto real = view.knob(t.knob);
        if (real && *real == o->real) {
            view.knobs[index(t.knob)] = o->value;
        } else {
            // Someone else wrote the knob: the controller sees the real value against what it had
            // before the overlay, and pins the knob as in active mode.
            end_observed(t.knob);
        }
    }
    return view;
}

void Daemon::book_observed(const Decision& d, uint64_t mono_usec) {
    if (!d.apply || d.action == Action::compact) return;
    auto& o = impl_->observed[index(d.knob)];
    if (!o) {
        const auto real = impl_->last->knob(d.knob);
        if (!real) return;
        o = Impl::Observed{d.new_value, *real, impl_->state.knob(d.knob).last_written};
    }
    record_observed(impl_->state, d.knob, d.new_value, mono_usec);
    o->value = d.new_value;
    if (o->value == o->real) end_observed(d.knob);  // back where the machine really is
}

void Daemon::end_observed(Knob k) {
    auto& o = impl_->observed[index(k)];
    if (!o) return;
    impl_->state.knob(k).last_written = o->last_written_before;
    o.reset();
}

void Daemon::end_all_observed() {
    for (const auto& t : kTunables) end_observed(t.knob);
}

ControllerState Daemon::real_state() const {
    ControllerState st = impl_->state;
    for (const auto& t : kTunables)
        if (const auto& o = impl_->observed[index(t.knob)])
            st.knob(t.knob).last_written = o->last_written_before;
    return st;
}

void Daemon::persist_now() {
    const Config& cfg = config_.config;
    impl_->persist_dirty = false;
    if (!cfg.daemon.persist) {
        impl_->persist_status = "persistence off (daemon.persist = false)";
        return;
    }
    PersistInput in;
    in.generated_at = format_iso8601_utc(realtime_usec());
    in.knobs = real_state().knobs;  // never a value only observed
    if (impl_->last)
        in.min_free_cap_kib =
            min_free_cap_kib(impl_->last->zoneinfo, cfg.safety, impl_->last->profile);
    std::string text = render_sysctl_conf(in);
    // The header carries a timestamp: compare without it so unchanged values are not rewritten.
    auto body = [](const std::string& t) { return t.substr(std::min(t.size(), t.find("\nvm."))); };
    if (!impl_->persisted_text.empty() && body(text) == body(impl_->persisted_text)) return;
    if (auto r = persist_sysctl_conf(fs_, cfg.daemon.persist_path, text); !r) {
        impl_->persist_status = "not persisted: " + r.error().describe();
        spdlog::error("{}", impl_->persist_status);
        return;
    }
    impl_->persisted_text = std::move(text);
    impl_->persist_status = "persisted to " + cfg.daemon.persist_path;
    spdlog::info("{}", impl_->persist_status);
}

void Daemon::save_state_now() {
    if (!impl_->may_save_state) return;
    const Config& cfg = config_.config;
    std::vector<HistoryEntry> hist(impl_->history.begin(), impl_->history.end());
    PersistedState snap =
        snapshot_state(real_state(), hist, impl_->persisted, cfg.daemon.history_size);
    if (auto r = save_state(fs_, cfg.daemon.state_path, snap); !r) {
        spdlog::error("state not saved: {}", r.error().describe());
        return;
    }
    impl_->persisted = std::move(snap);
}

Result<void> Daemon::restore_originals(std::string_view why) {
    if (!impl_) return make_error("the daemon is not started");
    // --restore without a loaded state file knows no originals (the ones initial_state() took are
    // today's live values): it writes nothing, neither the kernel nor either file.
    if (options_.restore_only && !impl_->originals_from_state) {
        spdlog::info("{}: no originals known, nothing written", why);
        return {};
    }
    end_all_observed();
    std::vector<std::string> errors;
    std::size_t restored = 0;
    const uint64_t now = impl_->last ? impl_->last->mono_usec : 0;
    KnobValues live{};
    for (const auto& t : kTunables) {
        auto v = read_knob(fs_, t.knob);
        if (v)
            live[index(t.knob)] = *v;
        else
            errors.push_back(v.error().describe());
    }
    for (const auto& d : restore_plan(impl_->state, live, why)) {
        // Restoring is bounded by the kernel's range only: the original is by definition acceptable.
        auto r = apply_knob(fs_, d.knob, d.new_value, impl_->sampler.profile().range(d.knob));
        if (r) {
            record_applied(impl_->state, d.knob, *r, now);
            ++restored;
        } else {
            errors.push_back(r.error().describe());
        }
        record(d, r.ok());
    }
    impl_->persist_dirty = true;
    persist_now();
    save_state_now();
    if (listener_) listener_->on_state_changed();
    if (restored > 0)
        spdlog::info("{}: {} knob{} written back to the original value", why, restored,
                     restored == 1 ? "" : "s");
    else if (errors.empty())
        spdlog::info("{}: every knob already has its original value, nothing written", why);
    if (!errors.empty()) {
        std::string msg = "some knobs could not be restored:";
        for (const auto& e : errors) msg += "\n  " + e;
        return make_error(msg);
    }
    return {};
}

void Daemon::stop() {
    if (!impl_) return;
    if (config_.config.daemon.on_exit == OnExit::restore) {
        if (auto r = restore_originals("on_exit = restore"); !r)
            spdlog::error("{}", r.error().describe());
    } else if (impl_->persist_dirty) {
        persist_now();
    }
    save_state_now();
    if (!options_.restore_only)
        spdlog::info("fragtuned stopped ({} kept)", config_.config.daemon.on_exit == OnExit::restore
                                                        ? "originals"
                                                        : "tuned values");
}

// ---- API -------------------------------------------------------------------------------------------

Mode Daemon::mode() const {
    return impl_ ? impl_->mode : config_.config.daemon.mode;
}
uint64_t Daemon::tick_usec() const {
    if (loop_interval_usec_ != 0) return loop_interval_usec_;
    const DaemonConfig& d = config_.config.daemon;
    return d.tick_usec != 0 ? d.tick_usec : d.tick_min_usec;
}

std::vector<TunableStatus> Daemon::tunables() const {
    std::vector<TunableStatus> out;
    if (!impl_ || !impl_->last) return out;
    for (const auto& t : kTunables) {
        const auto& ks = impl_->state.knob(t.knob);
        const Range b = effective_bounds(t.knob, ks, config_.config, *impl_->last);
        std::string reason = ks.status == KnobStatus::tuning ? ks.last_reason : ks.status_reason;
        out.push_back(TunableStatus{std::string(t.name), impl_->last->knob(t.knob), ks.baseline,
                                    ks.original, b.min, b.max, std::string(to_string(ks.status)),
                                    std::move(reason)});
    }
    return out;
}

std::vector<std::pair<std::string, double>> Daemon::signals() const {
    if (!impl_ || !impl_->last) return {};
    auto out = signal_values(*impl_->last, impl_->failures_seen);
    // The loop's state, which only the daemon knows.
    out.emplace_back("tick_usec", static_cast<double>(tick_usec()));
    out.emplace_back("psi_trigger_armed", psi_trigger_armed_ ? 1 : 0);
    return out;
}

std::vector<ConflictInfo> Daemon::conflicts() const {
    return impl_ ? impl_->conflicts : std::vector<ConflictInfo>{};
}

std::vector<HistoryEntry> Daemon::history(size_t max) const {
    std::vector<HistoryEntry> out;
    if (!impl_) return out;
    const size_t n = std::min(max, impl_->history.size());
    out.assign(impl_->history.end() - static_cast<std::ptrdiff_t>(n), impl_->history.end());
    return out;
}

std::string Daemon::summary() const {
    if (!impl_) return "starting";
    return status_summary(impl_->mode, impl_->state, impl_->last ? &*impl_->last : nullptr,
                          impl_->history.size(), !impl_->sample_error.empty());
}

Result<std::string> Daemon::explain(std::string_view name) const {
    if (!impl_) return explain_knob(name, ControllerState{}, config_.config, nullptr, {});
    return explain_knob(name, impl_->state, config_.config, impl_->last ? &*impl_->last : nullptr,
                        impl_->history);
}

Result<void> Daemon::set_mode(Mode m) {
    if (!impl_) return make_error("the daemon is not started");
    if (impl_->mode == m) return {};
    spdlog::info("mode {} -> {}", to_string(impl_->mode), to_string(m));
    // What observe mode only booked is dropped: active mode starts from the real values. The
    // booked changes still count for cooldowns and hourly caps (the conservative side).
    if (impl_->mode == Mode::observe) end_all_observed();
    impl_->mode = m;
    if (listener_) {
        listener_->on_mode_changed(m);
        listener_->on_state_changed();
    }
    return {};
}

Result<void> Daemon::pin(std::string_view name) {
    auto k = knob_from_name(name);
    if (!k) return make_error(fmt::format("unknown knob '{}'", name.substr(0, 64)));
    if (!impl_) return make_error("the daemon is not started");
    auto& ks = impl_->state.knob(*k);
    if (ks.status == KnobStatus::unsupported)
        return make_error(fmt::format("{} is not supported by this kernel", spec(*k).sysctl));
    end_observed(*k);
    ks.status = KnobStatus::pinned;
    ks.status_reason = "pinned by an operator";
    spdlog::info("{} pinned by an operator", spec(*k).sysctl);
    impl_->persist_dirty = true;
    persist_now();
    save_state_now();
    if (listener_) listener_->on_state_changed();
    return {};
}

Result<void> Daemon::unpin(std::string_view name) {
    auto k = knob_from_name(name);
    if (!k) return make_error(fmt::format("unknown knob '{}'", name.substr(0, 64)));
    if (!impl_ || !impl_->last) return make_error("the daemon is not started");
    auto& ks = impl_->state.knob(*k);
    if (ks.status != KnobStatus::pinned && ks.status != KnobStatus::conflict)
        return make_error(
            fmt::format("{} is not pinned (state {})", spec(*k).sysctl, to_string(ks.status)));
    if (!config_.config.knob(*k).enabled)
        return make_error(fmt::format("{} is disabled in the configuration", spec(*k).sysctl));
    // Take the live value as ours, so the override check does not pin it again at once.
    auto live = read_knob(fs_, *k);
    if (!live) return live.error();
    if (!*live)
        return make_error(fmt::format("{} is not supported by this kernel", spec(*k).sysctl));
    end_observed(*k);
    ks.status = KnobStatus::tuning;
    ks.status_reason.clear();
    ks.last_written = **live;
    spdlog::info("{} unpinned by an operator at {}", spec(*k).sysctl, **live);
    save_state_now();
    if (listener_) listener_->on_state_changed();
    return {};
}

Result<void> Daemon::restore() {
    if (options_.restore_only) return restore_originals("fragtuned --restore");
    auto r = restore_originals("operator restore");
    (void)set_mode(Mode::observe);
    return r;
}

Result<std::vector<std::string>> Daemon::reload() {
    auto loaded = load_config(fs_, options_.config_path);
    if (!loaded)
        return make_error("configuration rejected, the previous one keeps running:\n" +
                          loaded.error().message);
    const Mode old_configured = config_.config.daemon.mode;
    apply_overrides(loaded->config, options_);
    std::vector<std::string> notes = keep_restart_keys(loaded->config, config_.config);
    config_ = std::move(*loaded);
    for (const auto& w : config_.warnings) spdlog::warn("{}", w.describe());
    for (const auto& n : notes) spdlog::warn("reload: {}", n);
    const Config& cfg = config_.config;
    if (auto r = logging::set_level(cfg.daemon.log_level); !r)
        spdlog::warn("{}", r.error().describe());
    impl_->sampler.set_options(sampler_options(cfg));
    if (cfg.daemon.mode != old_configured) (void)set_mode(cfg.daemon.mode);
    // Baselines and enabled flags follow the new file; pins and history stay.
    impl_->state = state_after_reload(impl_->state, cfg, impl_->last ? &*impl_->last : nullptr);
    // Tightened bounds apply now, not at the next rule that fires.
    if (impl_->last) {
        // The live values, not the last sample's: a change applied this tick is not sampled yet.
        KnobValues live{};
        for (const auto& t : kTunables)
            if (auto v = read_knob(fs_, t.knob)) live[index(t.knob)] = *v;
        for (const auto& d : bounds_tightened(impl_->state, cfg, *impl_->last, live)) {
            const bool applied = impl_->mode == Mode::active && apply(d, impl_->last->mono_usec);
            record(d, applied);
        }
    }
    refresh_conflicts();
    save_state_now();
    spdlog::info("configuration reloaded from {} file(s)", config_.files.size());
    if (listener_) listener_->on_state_changed();
    return notes;
}

}  // namespace fragtune
