// The fault matrix: the fragtuned binary (and KernelFs::write_atomic on its own) under faults that
// daemon_test.cpp does not cover. Each fault is made real where it can be: a full tmpfs in a
// private mount namespace (ENOSPC), strace's syscall fault injection (fsync -> EIO, SIGKILL on
// entry to fsync/rename), strace's tracing for the clocks of the loop's timers, SIGKILL and SIGTERM
// at random moments, and a kernel log flooded with 200,000 failure records.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "daemon_harness.hpp"
#include "fragtune/persisting/state_file.hpp"
#include "fragtune/persisting/sysctl_d.hpp"
#include "fragtune/sensing/kernel_fs.hpp"
#include "process_util.hpp"

using namespace fragtune::testing;
using namespace std::chrono_literals;

namespace {

constexpr int64_t kOriginalMinFree = 67584;  // tests/fixtures/live-6.18-vm
const std::string kConf = "/etc/sysctl.d/90-fragtune.conf";
const std::string kState = "/var/lib/fragtune/state.toml";
const std::string kConfTemp = "/etc/sysctl.d/.90-fragtune.conf.fragtune-tmp";
const std::string kStateTemp = "/var/lib/fragtune/.state.toml.fragtune-tmp";

// Active mode and debug logging unless `extra` says otherwise (CLI11 takes each option once).
std::vector<std::string> fault_argv(const FixtureMachine& m, std::vector<std::string> extra,
                                    const std::string& tick = "200ms") {
    std::vector<std::string> argv = {FRAGTUNED_BIN, "--root", m.root().string(),
                                     "--no-bus",    "--tick", tick};
    auto given = [&](const std::string& opt) {
        return std::find(extra.begin(), extra.end(), opt) != extra.end();
    };
    if (!given("--mode")) argv.insert(argv.end(), {"--mode", "active"});
    if (!given("--log-level")) argv.insert(argv.end(), {"--log-level", "debug"});
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
}

// The daemon, optionally behind a wrapper (`prefix`: unshare, strace...), with NOTIFY_SOCKET.
struct FaultDaemon {
    FaultDaemon(const FixtureMachine& m, std::vector<std::string> extra = {},
                std::vector<std::string> env = {}, std::vector<std::string> prefix = {},
                const std::string& tick = "200ms", const std::string& log = "daemon.log")
        : notify(m.scratch() / ("notify-" + log + ".sock")) {
        env.push_back("NOTIFY_SOCKET=" + notify.path().string());
        auto argv = fault_argv(m, std::move(extra), tick);
        argv.insert(argv.begin(), prefix.begin(), prefix.end());
        proc = std::make_unique<Process>(argv, env, m.scratch() / log);
    }
    bool ready(std::chrono::milliseconds t = 15s) {
        return wait_for([&] { return notify.saw("READY=1"); }, t);
    }
    NotifySocket notify;
    std::unique_ptr<Process> proc;
};

// The first child of `pid` (the daemon under strace or sh), or -1.
pid_t child_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    long c = -1;
    in >> c;
    return static_cast<pid_t>(c);
}

// Feeds one atomic failure per 80 ms until `pred` holds; `seq` continues across calls.
bool feed_until(const FixtureMachine& m, int& seq, const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = 10s) {
    return wait_for(
        [&] {
            m.kernel_log_atomic_failure(seq++);
            std::this_thread::sleep_for(80ms);
            return pred();
        },
        timeout);
}

bool have_root() {
    return ::geteuid() == 0;
}

// For a daemon traced by strace: LeakSanitizer cannot run under ptrace and would turn a clean
// exit into a failure in the asan build. No effect on other builds.
const std::string kNoLeakCheckUnderPtrace = "ASAN_OPTIONS=detect_leaks=0";

// strace with working ptrace (containers may forbid it).
bool strace_works() {
    static const bool ok =
        std::system("/usr/bin/strace -qq -o /dev/null /bin/true >/dev/null 2>&1") == 0;
    return ok;
}

// Both files the daemon writes, when present, must be whole and valid: the state file parses, the
// sysctl.d file has no malformed line and ends with a newline.
void expect_files_parse(const FixtureMachine& m, const std::string& when) {
    SCOPED_TRACE(when);
    if (fs::exists(m.path(kState))) {
        const std::string text = read_text(m.path(kState));
        auto st = fragtune::parse_state(text, kState);
        ASSERT_TRUE(st.ok()) << st.error().describe() << "\n" << text;
        const auto& mf = st->knob(fragtune::Knob::min_free_kbytes);
        if (mf.original) {
            EXPECT_EQ(*mf.original, kOriginalMinFree) << text;
        }
    }
    if (fs::exists(m.path(kConf))) {
        const std::string text = read_text(m.path(kConf));
        ASSERT_FALSE(text.empty());
        EXPECT_EQ(text.back(), '\n') << text;
        auto parsed = fragtune::parse_sysctl_conf(text, kConf);
        EXPECT_TRUE(parsed.issues.empty()) << parsed.issues.front().message << "\n" << text;
    }
}

// ---- ENOSPC -------------------------------------------------------------------------------------

TEST(Faults, PersistDirectoryFullKeepsRuntimeValuesAndTheOldFile) {
    if (!have_root()) GTEST_SKIP() << "needs root for a mount namespace";
    FixtureMachine m;
    const std::string dir = m.path("/etc/sysctl.d").string();
    const std::string old = "# fragtune's file from an earlier run\nvm.swappiness = 60\n";
    write_text(m.scratch() / "old.conf", old);
    const fs::path after = m.scratch() / "after";
    const fs::path pidfile = m.scratch() / "daemon.pid";
    m.config("[daemon]\npersist_settle = \"0s\"\n");
    // A 2-page tmpfs over the persist directory: the old file takes one page, a filler the other.
    // The daemon runs as the shell's child so the shell can copy the directory out before the
    // namespace (and the tmpfs) goes away.
    const std::string script = "mount -t tmpfs -o size=8k fragtune-full " + dir + " && cp " +
                               (m.scratch() / "old.conf").string() + " " + dir +
                               "/90-fragtune.conf && { cat /dev/zero > " + dir +
                               "/fill 2>/dev/null || true; } && "
                               "{ \"$0\" \"$@\" & echo $! > " +
                               pidfile.string() + "; wait $!; rc=$?; mkdir -p " + after.string() +
                               " && cp -a " + dir + "/. " + after.string() + "/; exit $rc; }";
    FaultDaemon d(m, {}, {},
                  {"/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script});
    ASSERT_TRUE(d.ready()) << d.proc->log();
    int seq = 1;
    ASSERT_TRUE(feed_until(m, seq, [&] { return m.knob("min_free_kbytes") > kOriginalMinFree; }))
        << d.proc->log();
    ASSERT_TRUE(wait_for([&] { return d.proc->log().find("not persisted") != std::string::npos; }))
        << d.proc->log();
    const pid_t daemon_pid = std::stoi(read_text(pidfile));
    ::kill(daemon_pid, SIGTERM);
    ASSERT_EQ(d.proc->wait(), 0) << d.proc->log();

    const std::string log = d.proc->log();
    EXPECT_NE(log.find("No space left on device"), std::string::npos) << log;
    EXPECT_GT(m.knob("min_free_kbytes"), kOriginalMinFree);              // the runtime value stays
    EXPECT_EQ(read_text(after / "90-fragtune.conf"), old);               // the old file is intact
    EXPECT_FALSE(fs::exists(after / ".90-fragtune.conf.fragtune-tmp"));  // no partial temp left
    EXPECT_TRUE(fs::exists(after / "fill"));  // the copy really is of the full tmpfs
}

// ---- fsync -> EIO -------------------------------------------------------------------------------

TEST(Faults, FsyncFailingWithEioLeavesNoFileNoTempAndSaysNotPersisted) {
    if (!strace_works()) GTEST_SKIP() << "strace with ptrace is not available";
    FixtureMachine m;
    m.config("[daemon]\npersist_settle = \"0s\"\n");
    FaultDaemon d(m, {}, {kNoLeakCheckUnderPtrace},
                  {"/usr/bin/strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync,fdatasync",
                   "-e", "inject=fsync,fdatasync:error=EIO"});
    ASSERT_TRUE(d.ready()) << d.proc->log();
    int seq = 1;
    ASSERT_TRUE(feed_until(m, seq, [&] { return m.knob("min_free_kbytes") > kOriginalMinFree; }))
        << d.proc->log();
    ASSERT_TRUE(wait_for([&] { return d.proc->log().find("not persisted") != std::string::npos; }))
        << d.proc->log();
    const pid_t daemon_pid = child_of(d.proc->pid());
    ASSERT_GT(daemon_pid, 0);
    ::kill(daemon_pid, SIGTERM);
    ASSERT_EQ(d.proc->wait(), 0) << d.proc->log();

    const std::string log = d.proc->log();
    EXPECT_NE(log.find("fsync of temp file for " + kConf + ": Input/output error"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("state not saved"), std::string::npos) << log;
    EXPECT_GT(m.knob("min_free_kbytes"), kOriginalMinFree);
    // Never renamed into place, and the temp files were removed.
    EXPECT_FALSE(fs::exists(m.path(kConf)));
    EXPECT_FALSE(fs::exists(m.path(kState)));
    EXPECT_FALSE(fs::exists(m.path(kConfTemp)));
    EXPECT_FALSE(fs::exists(m.path(kStateTemp)));
}

// ---- SIGKILL mid-write: write_atomic alone ------------------------------------------------------

// A KernelFs whose write_atomic() reports each completed step over a socket and then waits for
// the parent's go-ahead, so the parent can SIGKILL the writer at exactly the step it chose.
class SteppedFs : public fragtune::KernelFs {
  public:
    SteppedFs(fs::path root, int sock) : KernelFs(std::move(root)), sock_(sock) {}

  protected:
    void atomic_write_step(fragtune::AtomicWriteStep step, std::string_view) const override {
        const char c = static_cast<char>(step);
        if (::send(sock_, &c, 1, MSG_NOSIGNAL) != 1) ::_exit(3);
        char go = 0;
        if (::recv(sock_, &go, 1, 0) != 1) ::_exit(4);
    }

  private:
    int sock_;
};

constexpr fragtune::AtomicWriteStep kAtomicWriteSteps[] = {
    fragtune::AtomicWriteStep::temp_created, fragtune::AtomicWriteStep::temp_written,
    fragtune::AtomicWriteStep::temp_synced, fragtune::AtomicWriteStep::renamed,
    fragtune::AtomicWriteStep::done};

enum class KillHow {
    none,          // let the write finish
    at_step,       // kill while the writer waits right after the step (deterministic)
    after_release  // let the writer go on from the step and kill it at once: lands anywhere in
                   // the syscalls that follow (the verdict below does not depend on where)
};

struct WriterRun {
    std::vector<fragtune::AtomicWriteStep> steps;  // reported before the kill
    bool signaled = false;
    int exit_code = -1;
};

// Forks a writer that replaces /target.conf under `root` with `contents` and kills it as told.
WriterRun run_writer(const fs::path& root, const std::string& contents, KillHow how,
                     fragtune::AtomicWriteStep kill_step) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        ADD_FAILURE() << "socketpair: " << std::strerror(errno);
        return {};
    }
    const pid_t child = ::fork();
    if (child < 0) {
        ADD_FAILURE() << "fork: " << std::strerror(errno);
        return {};
    }
    if (child == 0) {
        ::close(sv[0]);
        const SteppedFs kfs(root, sv[1]);
        ::_exit(kfs.write_atomic("/target.conf", contents).ok() ? 0 : 1);
    }
    ::close(sv[1]);
    WriterRun run;
    for (;;) {
        char c = 0;
        const ssize_t n = ::recv(sv[0], &c, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n != 1) break;  // EOF: the writer finished (or died)
        const auto step = static_cast<fragtune::AtomicWriteStep>(c);
        run.steps.push_back(step);
        const bool kill_now = how != KillHow::none && step == kill_step;
        if (!(kill_now && how == KillHow::at_step)) {
            const char go = 1;
            if (::send(sv[0], &go, 1, MSG_NOSIGNAL) != 1) break;
        }
        if (kill_now) {
            ::kill(child, SIGKILL);
            break;
        }
    }
    ::close(sv[0]);
    int st = 0;
    if (::waitpid(child, &st, 0) != child) {
        ADD_FAILURE() << "waitpid: " << std::strerror(errno);
        return run;
    }
    run.signaled = WIFSIGNALED(st);
    run.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return run;
}

// Every step of write_atomic is a point where the writer can die. The writer reports each step
// and the parent kills it exactly there, so what is on disk is known in advance: the old contents
// until the rename, the new ones from it on, never anything else, and a temp file exactly when
// the kill came between creating it and renaming it (which remove_stale_temps then removes). Kills
// just after letting a step go on land inside the following syscalls; there only "old or new,
// whole" is asserted, which holds wherever they land.
TEST(Faults, SigkillAtEachStepOfAtomicWritesNeverLeavesAPartialFile) {
    using fragtune::AtomicWriteStep;
    TempDir dir;
    const fragtune::KernelFs kfs(dir.path());
    // Large enough that a write is many pages, different lengths so a mix would show.
    const std::string a = std::string(384 * 1024, 'a') + "\nend of a\n";
    const std::string b = std::string(256 * 1024, 'b') + "\nend of b\n";
    const fs::path target = dir.path() / "target.conf";
    const fs::path temp = dir.path() / ".target.conf.fragtune-tmp";

    // Without a kill the writer reports every step, in order, and exits 0.
    ASSERT_TRUE(kfs.write_atomic("/target.conf", a).ok());
    {
        const WriterRun run = run_writer(dir.path(), b, KillHow::none, AtomicWriteStep::done);
        EXPECT_EQ(run.exit_code, 0);
        EXPECT_EQ(run.steps, std::vector<AtomicWriteStep>(std::begin(kAtomicWriteSteps),
                                                          std::end(kAtomicWriteSteps)));
        ASSERT_EQ(read_text(target), b);
        ASSERT_FALSE(fs::exists(temp));
    }

    int kills = 0, stale = 0;
    for (const bool a_to_b : {true, false}) {
        const std::string& from = a_to_b ? a : b;
        const std::string& to = a_to_b ? b : a;
        for (const AtomicWriteStep step : kAtomicWriteSteps) {
            SCOPED_TRACE(::testing::Message() << (a_to_b ? "a -> b" : "b -> a")
                                              << ", killed at step " << static_cast<int>(step));
            ASSERT_TRUE(kfs.write_atomic("/target.conf", from).ok());
            const WriterRun run = run_writer(dir.path(), to, KillHow::at_step, step);
            ++kills;
            ASSERT_TRUE(run.signaled);
            ASSERT_FALSE(run.steps.empty());
            ASSERT_EQ(run.steps.back(), step);
            const bool renamed = step >= AtomicWriteStep::renamed;
            const std::string text = read_text(target);
            ASSERT_TRUE(text == (renamed ? to : from))
                << "partial or wrong file of " << text.size() << " bytes";
            ASSERT_EQ(fs::exists(temp), !renamed);
            if (!renamed) {
                // The temp holds what the step says: nothing yet, or the whole new contents.
                EXPECT_EQ(read_text(temp), step == AtomicWriteStep::temp_created ? "" : to);
            }
            stale += !renamed;
            auto removed = kfs.remove_stale_temps("/");
            ASSERT_TRUE(removed.ok()) << removed.error().describe();
            EXPECT_EQ(*removed, renamed ? 0 : 1);
            ASSERT_FALSE(fs::exists(temp));

            // Released from the same step and killed at once, ten times.
            for (int i = 0; i < 10; ++i) {
                ASSERT_TRUE(kfs.write_atomic("/target.conf", from).ok());
                const WriterRun loose = run_writer(dir.path(), to, KillHow::after_release, step);
                ++kills;
                const std::string t = read_text(target);
                ASSERT_TRUE(t == from || t == to) << "partial file of " << t.size() << " bytes";
                if (step >= AtomicWriteStep::renamed) {
                    ASSERT_EQ(t, to);
                }
                const bool had_temp = fs::exists(temp);
                stale += had_temp;
                auto r = kfs.remove_stale_temps("/");
                ASSERT_TRUE(r.ok()) << r.error().describe();
                EXPECT_EQ(*r, had_temp ? 1 : 0);
                ASSERT_FALSE(fs::exists(temp));
            }
        }
    }
    std::printf(
        "write_atomic SIGKILL: %d kills (at each of the 5 steps both ways, and 10 just after "
        "each), %d left a temp file, each removed\n",
        kills, stale);
}

// ---- SIGKILL mid-write: the daemon, at each step of its atomic writes ---------------------------

// strace delivers SIGKILL on entry to the K-th fsync or rename of the daemon: its state and
// sysctl.d writes are fsync(temp), rename, fsync(dir) each, so K = 1..6 lands on every step of the
// first writes. After each kill the files on disk must be whole, and a restart must clean the temp
// up.
TEST(Faults, DaemonKilledAtEachStepOfPersistingRestartsCleanly) {
    if (!strace_works()) GTEST_SKIP() << "strace with ptrace is not available";
    struct Step {
        std::string syscall;
        int when;
    };
    std::vector<Step> steps;
    for (int k = 1; k <= 6; ++k) steps.push_back({"fsync", k});
    for (int k = 1; k <= 3; ++k) steps.push_back({"rename", k});
    int temps_left = 0;
    for (const auto& step : steps) {
        SCOPED_TRACE(step.syscall + " #" + std::to_string(step.when));
        FixtureMachine m;
        m.config("[daemon]\npersist_settle = \"0s\"\n");
        int seq = 1;
        {
            FaultDaemon d(
                m, {}, {kNoLeakCheckUnderPtrace},
                {"/usr/bin/strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + step.syscall,
                 "-e", "inject=" + step.syscall + ":signal=KILL:when=" + std::to_string(step.when)},
                "200ms", "killed.log");
            // Failures make the daemon raise, persist and save until the injected SIGKILL lands.
            ASSERT_TRUE(feed_until(
                m, seq, [&] { return !d.proc->running(); }, 20s))
                << d.proc->log();
        }
        expect_files_parse(m, "after the kill");
        const bool had_temp = fs::exists(m.path(kConfTemp)) || fs::exists(m.path(kStateTemp));
        temps_left += had_temp;

        FaultDaemon again(m, {}, {}, {}, "200ms", "restart.log");
        ASSERT_TRUE(again.ready()) << again.proc->log();
        if (had_temp) {
            EXPECT_NE(again.proc->log().find("stale temp file(s)"), std::string::npos)
                << again.proc->log();
        }
        EXPECT_FALSE(fs::exists(m.path(kConfTemp)));
        EXPECT_FALSE(fs::exists(m.path(kStateTemp)));
        feed_until(
            m, seq, [] { return false; }, 600ms);
        again.proc->signal(SIGTERM);
        ASSERT_EQ(again.proc->wait(), 0) << again.proc->log();
        expect_files_parse(m, "after the restart");
        EXPECT_TRUE(fs::exists(m.path(kState)));
    }
    std::printf("daemon killed at %zu fsync/rename steps; %d kills left a temp file\n",
                steps.size(), temps_left);
    EXPECT_GT(temps_left, 0);  // some kills did land between temp creation and rename
}

// ---- state file at start ------------------------------------------------------------------------

TEST(Faults, CorruptStateFileAtStartIsSetAsideAndTheDaemonRuns) {
    FixtureMachine m;
    // torn write
    const std::string corrupt = "format_version = 1\n[knobs.min_free_kbytes\noriginal = 12";
    write_text(m.path(kState), corrupt);
    FaultDaemon d(m);
    ASSERT_TRUE(d.ready()) << d.proc->log();
    EXPECT_NE(d.proc->log().find("starting fresh, the file is kept as " + kState + ".corrupt"),
              std::string::npos)
        << d.proc->log();
    EXPECT_EQ(read_text(m.path(kState + ".corrupt")), corrupt);
    d.proc->signal(SIGTERM);
    ASSERT_EQ(d.proc->wait(), 0) << d.proc->log();
    expect_files_parse(m, "after the run");
    auto st = fragtune::parse_state(read_text(m.path(kState)), kState);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->knob(fragtune::Knob::min_free_kbytes).original, kOriginalMinFree);
}

TEST(Faults, StateFileFromAFutureVersionIsNeverOverwritten) {
    FixtureMachine m;
    const std::string future =
        "format_version = 7\n[knobs.min_free_kbytes]\noriginal = 50000\nnew_field = \"kept\"\n";
    write_text(m.path(kState), future);
    FaultDaemon d(m);
    ASSERT_TRUE(d.ready()) << d.proc->log();
    int seq = 1;
    ASSERT_TRUE(feed_until(m, seq, [&] { return m.knob("min_free_kbytes") > kOriginalMinFree; }))
        << d.proc->log();
    d.proc->signal(SIGTERM);
    ASSERT_EQ(d.proc->wait(), 0) << d.proc->log();
    const std::string log = d.proc->log();
    EXPECT_NE(log.find("newer fragtuned"), std::string::npos) << log;
    EXPECT_NE(log.find("running without saving state"), std::string::npos) << log;
    EXPECT_EQ(read_text(m.path(kState)), future);  // byte for byte, after decisions and a stop
    EXPECT_FALSE(fs::exists(m.path(kStateTemp)));
}

// ---- wall clock jumps ---------------------------------------------------------------------------

// A wall-clock jump cannot move a tick when no timer of the loop is on the wall clock: every
// timerfd the daemon creates (sd-event makes one per clock it has sources on) must be on
// CLOCK_MONOTONIC or CLOCK_BOOTTIME, and the ticks must run on them. This used to be checked with
// libfaketime moving CLOCK_REALTIME by +-1 h, but libfaketime 0.9.10 (Debian 12) also shifts
// absolute CLOCK_MONOTONIC timerfd_settime() calls by its offset, even with DONT_FAKE_MONOTONIC,
// which stops sd-event's (absolute) timers: the tool, not the daemon, moved the monotonic clock.
// So the property is checked where it lives, in the syscalls.
TEST(Faults, WallClockJumpsCannotMoveTheTicksNoTimerIsOnTheWallClock) {
    if (!strace_works()) GTEST_SKIP() << "strace cannot trace here (ptrace forbidden)";
    FixtureMachine m;
    const fs::path trace = m.scratch() / "timerfd.strace";
    FaultDaemon d(m, {"--mode", "observe"}, {kNoLeakCheckUnderPtrace},
                  {"/usr/bin/strace", "-f", "-qq", "-e", "trace=timerfd_create,timerfd_settime",
                   "-o", trace.string()});
    ASSERT_TRUE(d.ready(30s)) << d.proc->log();
    // Ticks run: a few STATUS= messages after READY (one per tick at the fixed 200 ms).
    const size_t before = count_of(d.notify.messages(), "STATUS=");
    ASSERT_TRUE(
        wait_for([&] { return count_of(d.notify.messages(), "STATUS=") >= before + 3; }, 30s))
        << d.proc->log();
    // SIGTERM to the daemon under strace (strace itself exits with the tracee's status).
    const pid_t daemon_pid = child_of(d.proc->pid());
    ASSERT_GT(daemon_pid, 0);
    ::kill(daemon_pid, SIGTERM);
    ASSERT_EQ(d.proc->wait(), 0) << d.proc->log();
    const std::string text = read_text(trace);
    size_t monotonic = 0, wall = 0, armed = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.find("timerfd_create(") != std::string::npos) {
            if (line.find("CLOCK_MONOTONIC") != std::string::npos ||
                line.find("CLOCK_BOOTTIME") != std::string::npos)
                ++monotonic;
            else
                ++wall;  // CLOCK_REALTIME, CLOCK_TAI, *_ALARM: clocks that jump
        }
        if (line.find("timerfd_settime(") != std::string::npos) ++armed;
    }
    EXPECT_GE(monotonic, 1u) << text;
    EXPECT_EQ(wall, 0u) << "a timer on a clock that jumps:\n" << text;
    EXPECT_GE(armed, 3u) << "the ticks did not run on these timers:\n" << text;
    EXPECT_TRUE(d.proc->log().find("critical") == std::string::npos) << d.proc->log();
}

// ---- kernel log flood ---------------------------------------------------------------------------

TEST(Faults, KernelLogFloodKeepsMemoryBoundedAndLogsOneLinePerTick) {
    FixtureMachine m;
    FaultDaemon d(m, {"--mode", "observe", "--log-level", "info"});
    ASSERT_TRUE(d.ready()) << d.proc->log();
    std::this_thread::sleep_for(500ms);
    const long rss_before_kib = proc_status_kib(d.proc->pid(), "VmRSS");
    const int fds_before = open_fds(d.proc->pid());
    ASSERT_GT(rss_before_kib, 0);

    constexpr int kFlood = 200'000;
    {
        std::string batch;
        batch.reserve(static_cast<size_t>(kFlood) * 140);
        for (int seq = 1; seq <= kFlood; ++seq)
            batch += "4," + std::to_string(seq) +
                     ",1000000,-;swapper/0: page allocation failure: order:1, "
                     "mode:0xa20(GFP_ATOMIC), nodemask=(null),cpuset=/,mems_allowed=0\n";
        append_text(m.path("/dev/kmsg"), batch);
    }
    const auto start = std::chrono::steady_clock::now();
    // Every failure is accounted for in the summary lines: the count includes the ones over the
    // per-tick bound, and records the kernel overwrote are added.
    std::regex summary(
        R"(kernel log: (\d+) allocation failure\(s\)[^\n(]*(?:\((\d+) kernel log records lost\))?)");
    auto counted = [&](size_t* lines) {
        const std::string log = d.proc->log();
        uint64_t total = 0;
        size_t n = 0;
        for (std::sregex_iterator it(log.begin(), log.end(), summary), end; it != end; ++it, ++n)
            total +=
                std::stoull((*it)[1].str()) + ((*it)[2].matched ? std::stoull((*it)[2].str()) : 0);
        if (lines) *lines = n;
        return total;
    };
    long rss_max_kib = rss_before_kib;
    const bool done = wait_for(
        [&] {
            rss_max_kib = std::max(rss_max_kib, proc_status_kib(d.proc->pid(), "VmRSS"));
            return counted(nullptr) >= static_cast<uint64_t>(kFlood);
        },
        60s);
    const double elapsed_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    size_t summary_lines = 0;
    const uint64_t total = counted(&summary_lines);
    std::printf(
        "kmsg flood: %d records counted %llu in %.1f s, %zu summary lines, RSS %ld -> max %ld "
        "KiB\n",
        kFlood, static_cast<unsigned long long>(total), elapsed_s, summary_lines, rss_before_kib,
        rss_max_kib);
    ASSERT_TRUE(done) << "counted " << total << " of " << kFlood;
    EXPECT_EQ(total, static_cast<uint64_t>(kFlood));
    // One summary line per tick (200 ms) at most, never one per failure.
    EXPECT_LE(summary_lines, static_cast<size_t>(elapsed_s / 0.2) + 3);
    EXPECT_LE(count_of(d.proc->log(), "page allocation failure"), 0u);  // no per-record echo
#if !defined(__SANITIZE_ADDRESS__)  // ASan's quarantine holds freed buffers: RSS says nothing there
    EXPECT_LT(rss_max_kib - rss_before_kib, 8 * 1024);
    EXPECT_LT(rss_max_kib, 20 * 1024);
#endif
    // A state or persist write may hold one more fd for a moment: the count must come back.
    EXPECT_TRUE(wait_for([&] { return open_fds(d.proc->pid()) == fds_before; }, 3s))
        << open_fds(d.proc->pid()) << " fds, " << fds_before << " before";
    EXPECT_TRUE(d.proc->running());
    d.proc->signal(SIGTERM);
    EXPECT_EQ(d.proc->wait(), 0) << d.proc->log().substr(0, 4000);
}

// ---- SIGTERM at random moments ------------------------------------------------------------------

TEST(Faults, SigtermAtRandomMomentsAlwaysLeavesWholeFiles) {
    FixtureMachine m;
    // Decisions every tick (no cooldown): every tick raises, persists and saves the state, or
    // refuses at the cap and saves the state, so a SIGTERM lands among writes.
    m.config(
        "[daemon]\npersist_settle = \"0s\"\n[tunables.min_free_kbytes]\ncooldown = \"0s\"\n"
        "max_changes_per_hour = 3600\n");
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> delay_ms(0, 700);
    int seq = 1;
    constexpr int kIterations = 20;
    for (int i = 0; i < kIterations; ++i) {
        SCOPED_TRACE("iteration " + std::to_string(i));
        // Each run starts from the files the previous one left.
        FaultDaemon d(m, {}, {}, {}, "100ms", "run" + std::to_string(i) + ".log");
        ASSERT_TRUE(d.ready()) << d.proc->log();
        const auto until =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms(rng));
        while (std::chrono::steady_clock::now() < until) {
            m.kernel_log_atomic_failure(seq++);
            std::this_thread::sleep_for(20ms);
        }
        d.proc->signal(SIGTERM);
        ASSERT_EQ(d.proc->wait(), 0) << d.proc->log();
        expect_files_parse(m, "after SIGTERM");
        EXPECT_FALSE(fs::exists(m.path(kConfTemp)));
        EXPECT_FALSE(fs::exists(m.path(kStateTemp)));
        if (::testing::Test::HasFatalFailure()) return;
    }
}

// ---- files that are not regular files -----------------------------------------------------------
//
// A FIFO at a path fragtuned reads used to block it in open() forever, signals unread. Each is now
// refused with a message naming the path. The 30 s timeouts are only a backstop against the old
// hang.

void make_fifo(const fs::path& p) {
    fs::create_directories(p.parent_path());
    ASSERT_EQ(::mkfifo(p.c_str(), 0644), 0) << p << ": " << std::strerror(errno);
}

CommandResult run_fragtuned(std::vector<std::string> args) {
    args.insert(args.begin(), FRAGTUNED_BIN);
    return run_command(args, {}, 30s);
}

TEST(Faults, AFifoAsTheConfigurationIsRefusedByCheckConfig) {
    TempDir tmp;
    const fs::path cfg = tmp.path() / "fragtune.toml";
    make_fifo(cfg);
    const auto r = run_fragtuned({"--check-config", "--config", cfg.string()});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find(cfg.string() + " is a FIFO, not a regular file"), std::string::npos)
        << r.err;
}

TEST(Faults, AFifoAsADropInIsRefusedByCheckConfig) {
    TempDir tmp;
    const fs::path cfg = tmp.path() / "fragtune.toml";
    write_text(cfg, "[daemon]\ntick = \"5s\"\n");
    const fs::path dropin = tmp.path() / "fragtune.toml.d/50-role.toml";
    make_fifo(dropin);
    const auto r = run_fragtuned({"--check-config", "--config", cfg.string()});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find(dropin.string() + " is a FIFO, not a regular file"), std::string::npos)
        << r.err;
}

TEST(Faults, AFifoAsTheConfigurationStopsTheDaemonAtStart) {
    FixtureMachine m;
    make_fifo(m.path("/etc/fragtune/fragtune.toml"));
    const auto r = run_fragtuned({"--root", m.root().string(), "--no-bus", "--mode", "active"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE((r.out + r.err).find("/etc/fragtune/fragtune.toml is a FIFO, not a regular file"),
              std::string::npos)
        << r.out << r.err;
    EXPECT_FALSE(fs::exists(m.path(kState)));
}

TEST(Faults, AFifoInARecordingIsReportedByReplay) {
    TempDir tmp;
    const fs::path rec = tmp.path() / "rec";
    make_fifo(rec / "00000001/tick");
    const auto r =
        run_fragtuned({"--replay", rec.string(), "--config", (tmp.path() / "none.toml").string()});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("skipped 00000001: /tick is a FIFO, not a regular file"),
              std::string::npos)
        << r.out << r.err;

    // And as the --config given to --replay.
    const fs::path cfg = tmp.path() / "fragtune.toml";
    make_fifo(cfg);
    const auto c = run_fragtuned({"--replay", rec.string(), "--config", cfg.string()});
    EXPECT_EQ(c.exit_code, 1) << c.out << c.err;
    EXPECT_NE(c.err.find(cfg.string() + " is a FIFO, not a regular file"), std::string::npos)
        << c.err;
}

TEST(Faults, AFifoAsTheStateFileIsRefusedAndLeftAlone) {
    FixtureMachine m;
    make_fifo(m.path(kState));
    FaultDaemon d(m);
    ASSERT_TRUE(d.ready(30s)) << d.proc->log();
    EXPECT_NE(d.proc->log().find("cannot read state file " + kState + ": " + kState +
                                 " is a FIFO, not a regular file"),
              std::string::npos)
        << d.proc->log();
    d.proc->signal(SIGTERM);
    ASSERT_EQ(d.proc->wait(30s), 0) << d.proc->log();
    struct stat st {};
    ASSERT_EQ(::lstat(m.path(kState).c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));  // not overwritten: it is not ours to replace
}

TEST(Faults, AFifoInSysctlDIsReportedAndTheDaemonRuns) {
    FixtureMachine m;
    const std::string fifo = "/etc/sysctl.d/50-other.conf";
    make_fifo(m.path(fifo));
    FaultDaemon d(m);
    ASSERT_TRUE(d.ready(30s)) << d.proc->log();
    EXPECT_NE(d.proc->log().find(fifo + " is a FIFO, not a regular file"), std::string::npos)
        << d.proc->log();
    d.proc->signal(SIGTERM);
    ASSERT_EQ(d.proc->wait(30s), 0) << d.proc->log();
}

}  // namespace
