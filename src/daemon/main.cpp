// fragtuned entry point: parses arguments and wires objects; no logic lives here.
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <tuple>

#include <CLI/CLI.hpp>

#include "fragtune/configuration/config_file.hpp"
#include "fragtune/reporting/replay.hpp"
#include "fragtune/reporting/sample_render.hpp"
#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/sensing/sample.hpp"
#include "fragtune/util/time.hpp"
#include "fragtune/util/units.hpp"
#include "logging.hpp"
#include "service.hpp"

// ---- fragtuned --sample ----------------------------------------------------------------------
//
// Prints what the daemon sees, one sample per interval, and changes nothing. Kept apart from the
// daemon mode: it shares only the core library (KernelFs, Sampler).
namespace {

struct SampleArgs {
    std::string root = "/";
    std::string interval = "1s";
    uint64_t count = 0;  // 0: until SIGINT/SIGTERM
    bool json = false;
};

using fragtune::monotonic_usec;

// Exit status: 0 after `count` samples or a clean stop by SIGINT/SIGTERM; 1 when a sample cannot be
// taken (the message names the file); 2 for a bad --interval.
int run_sample(const SampleArgs& args) {
    auto interval = fragtune::parse_duration_usec(args.interval);
    if (!interval) {
        std::fprintf(stderr, "fragtuned: --interval: %s\n", interval.error().describe().c_str());
        return 2;
    }
    if (*interval < 10'000 || *interval > 3'600'000'000) {
        std::fprintf(stderr, "fragtuned: --interval must be between 10ms and 1h\n");
        return 2;
    }

    // SIGINT and SIGTERM stay blocked and are taken with sigtimedwait() while waiting, so a signal
    // that arrives at any moment (even while a sample is being read) ends the loop at the next wait
    // without a race between "check a flag" and "go to sleep" that a handler plus clock_nanosleep()
    // would have.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);

    fragtune::KernelFs fs(args.root);
    fragtune::Sampler sampler(fs, fragtune::SamplerOptions{});

    // Deadlines are absolute on CLOCK_MONOTONIC (start + k * interval): each wait is recomputed
    // from the schedule, so the time spent reading and printing never accumulates into drift. Ticks
    // missed by a stalled process are skipped, not bunched up.
    const uint64_t start_usec = monotonic_usec();
    uint64_t deadline_usec = start_usec;
    for (uint64_t n = 0; args.count == 0 || n < args.count; ++n) {
        if (n > 0) {
            const uint64_t now = monotonic_usec();
            deadline_usec += *interval;
            if (deadline_usec <= now)
                deadline_usec += (now - deadline_usec) / *interval * *interval + *interval;
            bool stop = false;
            for (uint64_t t = monotonic_usec(); t < deadline_usec; t = monotonic_usec()) {
                const uint64_t wait_usec = deadline_usec - t;
                const timespec ts{static_cast<time_t>(wait_usec / 1'000'000),
                                  static_cast<long>(wait_usec % 1'000'000) * 1'000};
                if (::sigtimedwait(&stop_signals, nullptr, &ts) >= 0) {
                    stop = true;
                    break;
                }
                // EAGAIN: the deadline came; EINTR: another signal (SIGSTOP/SIGCONT): wait on.
            }
            if (stop) break;
        }
        auto sample = sampler.take(monotonic_usec());
        if (!sample) {
            std::fprintf(stderr, "fragtuned: %s\n", sample.error().describe().c_str());
            return 1;
        }
        const std::string text = args.json
                                     ? fragtune::format_sample_json(*sample) + "\n"
                                     : (n > 0 ? "\n" : "") + fragtune::format_sample_text(*sample);
        std::fputs(text.c_str(), stdout);
        std::fflush(stdout);
    }
    return 0;
}

// ---- fragtuned (the daemon) and fragtuned --restore -------------------------------------------

struct DaemonArgs {
    bool no_bus = false;
    bool restore = false;
    std::string mode, on_exit, tick, persist_path, state_path, log_level, record, replay;
};

// ---- fragtuned --config / --check-config / --dump-config -------------------------------------------
//
// Validation for configuration management (Ansible's `validate: fragtuned --check-config --config %s`)
// and the merged view. Exit status: 0 valid, 1 invalid (every diagnostic on stderr).
struct ConfigArgs {
    std::string path = std::string(fragtune::kDefaultConfigPath);
    bool check = false;
    bool dump = false;
};

void add_config_options(CLI::App& app, ConfigArgs& a) {
    app.add_option("--config", a.path, "configuration file; drop-ins are read from FILE.d/*.toml")
        ->capture_default_str();
    app.add_flag("--check-config", a.check,
                 "validate the configuration, print every error, exit 0 (valid) or 1 (invalid)");
    app.add_flag("--dump-config", a.dump,
                 "print the merged configuration, each value with the file:line it came from");
}

// KernelFs takes absolute paths only; a relative --config is relative to the working directory.
std::string absolute_config_path(const std::string& path) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    return ec ? path : abs.lexically_normal().string();
}

int run_config_command(const ConfigArgs& a, const std::string& root) {
    const fragtune::KernelFs fs(root);
    const auto report = fragtune::check_config(fs, absolute_config_path(a.path));
    std::size_t errors = 0;
    for (const auto& d : report.diagnostics) {
        std::fprintf(stderr, "%s\n", d.describe().c_str());
        if (d.severity == fragtune::ConfigDiagnostic::Severity::error) ++errors;
    }
    if (errors > 0) {
        std::fprintf(stderr, "fragtuned: configuration invalid: %zu error%s\n", errors,
                     errors == 1 ? "" : "s");
        return 1;
    }
    if (a.dump) {
        std::fputs(fragtune::render_effective_config(report.loaded).c_str(), stdout);
        return 0;
    }
    const auto& files = report.loaded.files;
    std::string read = files.empty() ? "no file found, built-in defaults" : "";
    for (std::size_t i = 0; i < files.size(); ++i) read += (i ? ", " : "") + files[i];
    std::printf("configuration valid: %s\n", read.c_str());
    return 0;
}

void add_daemon_options(CLI::App& app, DaemonArgs& a) {
    app.add_flag("--no-bus", a.no_bus, "do not own org.fragtune1 on the system bus (no D-Bus API)");
    app.add_flag("--restore", a.restore,
                 "write the original values recorded in the state file back, then exit");
    app.add_option("--mode", a.mode, "override daemon.mode")
        ->check(CLI::IsMember({"active", "observe", "paused"}));
    app.add_option("--on-exit", a.on_exit, "override daemon.on_exit")
        ->check(CLI::IsMember({"keep", "restore"}));
    app.add_option("--tick", a.tick, "override daemon.tick (e.g. 2s, 500ms)");
    app.add_option("--persist-path", a.persist_path, "override daemon.persist_path");
    app.add_option("--state-path", a.state_path, "override daemon.state_path");
    app.add_option("--log-level", a.log_level, "override daemon.log_level")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    app.add_option("--record", a.record,
                   "save each tick's /proc files and kernel-log failures under DIR (for --replay)");
    app.add_option(
        "--replay", a.replay,
        "run the controller over a recording made with --record (observe only) and print "
        "the decisions it would have made, then exit");
}

// --replay: the configuration is read from the real filesystem (or --root), the recording from DIR.
int run_replay(const std::string& dir, const std::string& root, const std::string& config_path) {
    auto cfg = fragtune::load_config(fragtune::KernelFs(root), config_path);
    if (!cfg) {
        std::fprintf(stderr, "fragtuned: %s\n", cfg.error().describe().c_str());
        return 1;
    }
    auto r = fragtune::replay_recording(absolute_config_path(dir), cfg->config);
    if (!r) {
        std::fprintf(stderr, "fragtuned: --replay: %s\n", r.error().describe().c_str());
        return 1;
    }
    std::fputs(fragtune::format_replay(*r).c_str(), stdout);
    return 0;
}

// Exit status: see fragtuned(8). 0 clean stop, 1 failure, 2 usage.
int run_daemon(const DaemonArgs& a, const std::string& root, const std::string& config_path) {
    fragtune::ServiceOptions so;
    so.daemon.root = root;
    so.daemon.config_path = config_path;
    so.bus = !a.no_bus;
    so.log_level = a.log_level;
    if (!a.mode.empty()) so.daemon.mode = fragtune::mode_from_string(a.mode);
    if (!a.on_exit.empty())
        so.daemon.on_exit =
            a.on_exit == "restore" ? fragtune::OnExit::restore : fragtune::OnExit::keep;
    if (!a.tick.empty()) {
        auto t = fragtune::parse_duration_usec(a.tick);
        if (!t || *t < 100'000 || *t > 600'000'000) {
            std::fprintf(stderr, "fragtuned: --tick: %s\n",
                         t ? "must be between 100ms and 10min" : t.error().describe().c_str());
            return 2;
        }
        so.daemon.tick_usec = *t;
    }
    // The same checks as the configuration keys they override (fragtune.toml(5)); a usage error.
    for (const auto& [flag, key, value] :
         {std::tuple{"--persist-path", "daemon.persist_path", &a.persist_path},
          std::tuple{"--state-path", "daemon.state_path", &a.state_path}}) {
        if (value->empty()) continue;
        if (auto problem = fragtune::path_value_problem(key, *value)) {
            std::fprintf(stderr, "fragtuned: %s: %s\n", flag, problem->c_str());
            return 2;
        }
    }
    if (!a.persist_path.empty()) so.daemon.persist_path = a.persist_path;
    if (!a.state_path.empty()) so.daemon.state_path = a.state_path;
    if (!a.record.empty()) so.daemon.record_dir = absolute_config_path(a.record);
    if (!a.restore) return fragtune::run_service(so);

    // --restore: the originals come from the state file; nothing is tuned.
    (void)fragtune::logging::setup(a.log_level.empty() ? "info" : a.log_level);
    so.daemon.mode = fragtune::Mode::paused;
    so.daemon.on_exit = fragtune::OnExit::keep;
    so.daemon.restore_only = true;  // its messages say what it restored, not "started"/"kept"
    fragtune::Daemon d(so.daemon);
    if (auto r = d.start(monotonic_usec()); !r) {
        std::fprintf(stderr, "fragtuned: %s\n", r.error().describe().c_str());
        return 1;
    }
    auto r = d.restore();
    d.stop();
    if (!r) {
        std::fprintf(stderr, "fragtuned: %s\n", r.error().describe().c_str());
        return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"fragtuned - keeps Linux out of page allocation failures by tuning vm sysctls"};
    app.set_version_flag("--version", std::string("fragtuned ") + FRAGTUNE_VERSION);

    bool sample_mode = false;
    SampleArgs sample_args;
    auto* sample_flag =
        app.add_flag("--sample", sample_mode,
                     "print what fragtuned sees, one sample per --interval, change nothing");
    app.add_option("--root", sample_args.root,
                   "directory the kernel files are read under (tests, replays)")
        ->capture_default_str();
    app.add_option("--interval", sample_args.interval, "time between samples: 500ms, 1s, 2min")
        ->capture_default_str()
        ->needs(sample_flag);
    app.add_option("--count", sample_args.count, "stop after this many samples (0: until Ctrl-C)")
        ->capture_default_str()
        ->needs(sample_flag);
    app.add_flag("--json", sample_args.json, "one JSON object per line (doc/sample-json.md)")
        ->needs(sample_flag);

    DaemonArgs daemon_args;
    add_daemon_options(app, daemon_args);
    ConfigArgs config_args;
    add_config_options(app, config_args);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version exit 0; every usage error exits 2 (CLI11's own codes are not ours).
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (config_args.check || config_args.dump)
        return run_config_command(config_args, sample_args.root);
    if (sample_mode) return run_sample(sample_args);
    if (!daemon_args.replay.empty())
        return run_replay(daemon_args.replay, sample_args.root,
                          absolute_config_path(config_args.path));
    return run_daemon(daemon_args, sample_args.root, absolute_config_path(config_args.path));
}
