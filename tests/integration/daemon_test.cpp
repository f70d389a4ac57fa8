// End to end: the fragtuned binary on a fixture root whose /proc files and kernel log the test writes.
// Decisions must land in the fake /proc/sys/vm files, the persisted sysctl.d file and the state file;
// sd_notify messages must reach NOTIFY_SOCKET; faults must be survived as promised in fragtuned(8).
#include <sys/stat.h>

#include <map>
#include <utility>

#include <gtest/gtest.h>

#include "daemon_harness.hpp"

using namespace fragtune::testing;
using namespace std::chrono_literals;

namespace {

constexpr int64_t kOriginalMinFree = 67584;  // tests/fixtures/live-6.18-vm

std::vector<std::string> daemon_argv(const FixtureMachine& m, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {FRAGTUNED_BIN, "--root", m.root().string(), "--no-bus",
                                     "--tick",      "200ms",  "--log-level",     "debug"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
}

struct Running {
    Running(const FixtureMachine& m, std::vector<std::string> extra = {},
            std::vector<std::string> env = {}, std::vector<std::string> prefix = {})
        : notify(m.scratch() / "notify.sock") {
        env.push_back("NOTIFY_SOCKET=" + notify.path().string());
        auto argv = daemon_argv(m, std::move(extra));
        argv.insert(argv.begin(), prefix.begin(), prefix.end());
        proc = std::make_unique<Process>(argv, env, m.scratch() / "daemon.log");
    }
    bool ready() {
        return wait_for([&] { return notify.saw("READY=1"); });
    }
    NotifySocket notify;
    std::unique_ptr<Process> proc;
};

// Runs argv to completion (10 s at most, then killed), returns (exit status or -1, stdout+stderr).
std::pair<int, std::string> run_command_simple(const std::vector<std::string>& argv) {
    TempDir dir;
    Process p(argv, {}, dir.path() / "out.log");
    const int rc = p.wait(10s);
    return {rc, p.log()};
}

// Feeds one atomic failure per 100 ms until `pred` holds.
bool feed_failures_until(const FixtureMachine& m, const std::function<bool()>& pred,
                         std::chrono::milliseconds timeout = 10s) {
    int seq = 1;
    return wait_for(
        [&] {
            m.kernel_log_atomic_failure(seq++);
            std::this_thread::sleep_for(80ms);
            return pred();
        },
        timeout);
}

TEST(Daemon, NotifiesReadyWatchdogStatusAndStopping) {
    FixtureMachine m;
    Running d(m, {"--mode", "observe"}, {"WATCHDOG_USEC=400000"});
    ASSERT_TRUE(d.ready()) << d.proc->log();
    EXPECT_TRUE(d.notify.saw("STATUS=observe"));
    EXPECT_TRUE(wait_for([&] { return d.notify.saw("WATCHDOG=1"); })) << d.notify.messages();
    d.proc->signal(SIGTERM);
    EXPECT_EQ(d.proc->wait(), 0) << d.proc->log();
    EXPECT_TRUE(d.notify.saw("STOPPING=1"));
}

TEST(Daemon, AtomicFailuresRaiseMinFreeAndTheValueIsPersisted) {
    FixtureMachine m;
    Running d(m, {"--mode", "active"});
    ASSERT_TRUE(d.ready()) << d.proc->log();
    ASSERT_TRUE(feed_failures_until(m, [&] {
        return m.knob("min_free_kbytes") > kOriginalMinFree;
    })) << d.proc->log();
    const int64_t raised = m.knob("min_free_kbytes");
    EXPECT_NE(d.proc->log().find("vm.min_free_kbytes 67584 -> " + std::to_string(raised)),
              std::string::npos)
        << d.proc->log();
    d.proc->signal(SIGTERM);
    ASSERT_EQ(d.proc->wait(), 0) << d.proc->log();
    // on_exit = keep (the default): the tuned value stays and is persisted for the next boot.
    EXPECT_EQ(m.knob("min_free_kbytes"), raised);
    const std::string conf = read_text(m.path("/etc/sysctl.d/90-fragtune.conf"));
    EXPECT_NE(conf.find("vm.min_free_kbytes = " + std::to_string(raised)), std::string::npos)
        << conf;
    const std::string state = read_text(m.path("/var/lib/fragtune/state.toml"));
    EXPECT_NE(state.find("original = 67584"), std::string::npos) << state;
    EXPECT_NE(state.find("atomic"), std::string::npos) << state;  // the history keeps the reason
}

TEST(Daemon, ObserveModeDecidesButWritesNothing) {
    FixtureMachine m;
    Running d(m, {"--mode", "observe"});
    ASSERT_TRUE(d.ready()) << d.proc->log();
    EXPECT_TRUE(feed_failures_until(m, [&] {
        return d.proc->log().find("(not applied)") != std::string::npos;
    })) << d.proc->log();
    EXPECT_EQ(m.knob("min_free_kbytes"), kOriginalMinFree);
    d.proc->signal(SIGTERM);
    EXPECT_EQ(d.proc->wait(), 0);
    EXPECT_EQ(m.knob("min_free_kbytes"), kOriginalMinFree);
}

// Observe mode books each decision as if applied (cooldown, hourly cap, the failure history the
// raise answers), so one failure gives one proposal, not one per tick while it is remembered; the
// knob is not written and not pinned (the controller sees the value it would have had).
TEST(Daemon, ObserveModeProposesWhatActiveModeWouldDoOnce) {
    FixtureMachine m;
    {
        Running d(m, {"--mode", "observe"});
        ASSERT_TRUE(d.ready()) << d.proc->log();
        m.kernel_log_atomic_failure(1);
        ASSERT_TRUE(wait_for([&] {
            return d.proc->log().find("vm.min_free_kbytes 67584 -> 101376") != std::string::npos;
        })) << d.proc->log();
        // Twelve more ticks (each sends one STATUS=): more than the 8 ticks a failure is
        // remembered.
        const size_t ticks = count_of(d.notify.messages(), "STATUS=");
        ASSERT_TRUE(wait_for([&] {
            return count_of(d.notify.messages(), "STATUS=") >= ticks + 12;
        })) << d.notify.messages();
        d.proc->signal(SIGTERM);
        ASSERT_EQ(d.proc->wait(), 0) << d.proc->log();
        const std::string log = d.proc->log();
        EXPECT_EQ(count_of(log, "[raise: atomic-failures]"), 1u) << log;
        EXPECT_EQ(count_of(log, "admin-override"), 0u) << log;
        EXPECT_EQ(m.knob("min_free_kbytes"), kOriginalMinFree);
        // What is saved is the machine's truth, not the observed value: a restart does not pin.
        const std::string state = read_text(m.path("/var/lib/fragtune/state.toml"));
        EXPECT_EQ(state.find("last_written = 101376"), std::string::npos) << state;
    }
    fs::remove(m.scratch() / "notify.sock");
    Running again(m, {"--mode", "active"});
    ASSERT_TRUE(again.ready()) << again.proc->log();
    const size_t t2 = count_of(again.notify.messages(), "STATUS=");
    ASSERT_TRUE(wait_for([&] { return count_of(again.notify.messages(), "STATUS=") >= t2 + 3; }));
    EXPECT_EQ(again.proc->log().find("admin-override"), std::string::npos) << again.proc->log();
}

// One instance per state file: a second fragtuned (and `fragtuned --restore`) on the same state
// file fails before reading or writing anything, says who holds the lock, and changes nothing:
// not the files' bytes or mtimes, not the tuned sysctl (its on_exit restore would have put the
// original back under the running daemon).
TEST(Daemon, ASecondInstanceOnTheSameStateFileFailsAndChangesNothing) {
    FixtureMachine m;
    Running d(m, {"--mode", "active"});
    ASSERT_TRUE(d.ready()) << d.proc->log();
    ASSERT_TRUE(feed_failures_until(m, [&] {
        return m.knob("min_free_kbytes") > kOriginalMinFree;
    })) << d.proc->log();
    const int64_t raised = m.knob("min_free_kbytes");
    // The raise is saved in the state file before the daemon goes quiet again.
    ASSERT_TRUE(wait_for([&] {
        return read_text(m.path("/var/lib/fragtune/state.toml")).find("atomic") !=
               std::string::npos;
    }));
    const auto before = machine_files(m);
    const std::string held = "another fragtuned (pid " + std::to_string(d.proc->pid()) +
                             ") holds /var/lib/fragtune/state.toml.lock";

    auto second = run_command_simple(daemon_argv(m, {"--mode", "active", "--on-exit", "restore"}));
    EXPECT_EQ(second.first, 1) << second.second;
    EXPECT_NE(second.second.find(held), std::string::npos) << second.second;
    EXPECT_EQ(machine_files(m), before);

    auto restore = run_command_simple({FRAGTUNED_BIN, "--root", m.root().string(), "--restore"});
    EXPECT_EQ(restore.first, 1) << restore.second;
    EXPECT_NE(restore.second.find(held), std::string::npos) << restore.second;
    EXPECT_EQ(machine_files(m), before);
    EXPECT_EQ(m.knob("min_free_kbytes"), raised);

    EXPECT_TRUE(d.proc->running());
    // The daemon sent a STATUS= per tick meanwhile; a full notify socket blocks its sd_notify (as
    // a stalled service manager would), so read them before asking it to stop.
    d.notify.messages();
    d.proc->signal(SIGTERM);
    ASSERT_TRUE(wait_for([&] {
        d.notify.messages();
        return !d.proc->running();
    }));
    ASSERT_EQ(d.proc->wait(), 0) << d.proc->log();
    // The lock goes with the process: now --restore works.
    auto after = run_command_simple({FRAGTUNED_BIN, "--root", m.root().string(), "--restore"});
    EXPECT_EQ(after.first, 0) << after.second;
    EXPECT_EQ(m.knob("min_free_kbytes"), kOriginalMinFree);
}

// A reload that changes a key read only at start says so (key, old and new value, "needs a
// restart") and keeps the running value: the kernel log is still followed.
TEST(Daemon, ReloadSaysWhichChangedKeysNeedARestart) {
    FixtureMachine m;
    Running d(m, {"--mode", "active"});
    ASSERT_TRUE(d.ready()) << d.proc->log();
    m.config("[signals]\nkernel_log = false\n");
    d.proc->signal(SIGHUP);
    ASSERT_TRUE(wait_for([&] {
        return d.proc->log().find("configuration reloaded") != std::string::npos;
    })) << d.proc->log();
    EXPECT_NE(d.proc->log().find("reload: signals.kernel_log changed from true to false: needs a "
                                 "restart (systemctl restart fragtuned); true stays in force"),
              std::string::npos)
        << d.proc->log();
    EXPECT_TRUE(feed_failures_until(m, [&] {
        return m.knob("min_free_kbytes") > kOriginalMinFree;
    })) << d.proc->log();
    // A reload that changes nothing that needs a restart says nothing of the kind.
    m.config("[signals]\nkernel_log = true\n");
    d.proc->signal(SIGHUP);
    ASSERT_TRUE(wait_for([&] { return count_of(d.proc->log(), "configuration reloaded") == 2; }));
    EXPECT_EQ(count_of(d.proc->log(), "needs a restart"), 1u) << d.proc->log();
    d.notify.messages();  // a full notify socket would block the daemon's sd_notify
    d.proc->signal(SIGTERM);
    EXPECT_TRUE(wait_for([&] {
        d.notify.messages();
        return !d.proc->running();
    }));
    EXPECT_EQ(d.proc->wait(), 0);
}

// A missing PSI is said once (not every tick), and its return is said too.
TEST(Daemon, MissingPsiIsReportedOnceAndItsReturnToo) {
    FixtureMachine m;
    const std::string psi = read_text(m.path("/proc/pressure/memory"));
    fs::remove(m.path("/proc/pressure/memory"));
    Running d(m, {"--mode", "observe"});
    ASSERT_TRUE(d.ready()) << d.proc->log();
    const size_t ticks = count_of(d.notify.messages(), "STATUS=");
    ASSERT_TRUE(wait_for([&] { return count_of(d.notify.messages(), "STATUS=") >= ticks + 5; }));
    EXPECT_EQ(count_of(d.proc->log(), "no PSI: /proc/pressure/memory does not exist"), 1u)
        << d.proc->log();
    write_text(m.path("/proc/pressure/memory"), psi);
    EXPECT_TRUE(wait_for([&] {
        return d.proc->log().find("PSI available again from /proc/pressure/memory") !=
               std::string::npos;
    })) << d.proc->log();
    EXPECT_EQ(count_of(d.proc->log(), "no PSI"), 1u) << d.proc->log();
    d.proc->signal(SIGTERM);
    EXPECT_EQ(d.proc->wait(), 0);
}

TEST(Daemon, OnExitRestoreWritesOriginalsBack) {
    FixtureMachine m;
    Running d(m, {"--mode", "active", "--on-exit", "restore"});
    ASSERT_TRUE(d.ready());
    ASSERT_TRUE(feed_failures_until(m, [&] {
        return m.knob("min_free_kbytes") > kOriginalMinFree;
    })) << d.proc->log();
    d.proc->signal(SIGINT);
    ASSERT_EQ(d.proc->wait(), 0) << d.proc->log();
    EXPECT_EQ(m.knob("min_free_kbytes"), kOriginalMinFree);
}

TEST(Daemon, RestoreCommandUsesTheOriginalsFromTheStateFile) {
    FixtureMachine m;
    {
        Running d(m, {"--mode", "active"});
        ASSERT_TRUE(d.ready());
        ASSERT_TRUE(
            feed_failures_until(m, [&] { return m.knob("min_free_kbytes") > kOriginalMinFree; }));
        d.proc->signal(SIGTERM);
        ASSERT_EQ(d.proc->wait(), 0);
    }
    ASSERT_GT(m.knob("min_free_kbytes"), kOriginalMinFree);
    Process restore({FRAGTUNED_BIN, "--root", m.root().string(), "--restore"}, {},
                    m.scratch() / "restore.log");
    ASSERT_EQ(restore.wait(), 0) << restore.log();
    EXPECT_EQ(m.knob("min_free_kbytes"), kOriginalMinFree);
    // The persisted file no longer carries a tuned value for the next boot.
    EXPECT_EQ(read_text(m.path("/etc/sysctl.d/90-fragtune.conf")).find("vm.min_free_kbytes ="),
              std::string::npos);
    // Its messages say what it did (prerm shows them), not what a running daemon would say.
    const std::string log = restore.log();
    EXPECT_NE(log.find("vm.min_free_kbytes "), std::string::npos) << log;
    EXPECT_NE(log.find("fragtuned --restore: 1 knob written back to the original value"),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find("started"), std::string::npos) << log;
    EXPECT_EQ(log.find("kept"), std::string::npos) << log;
    EXPECT_EQ(log.find("mode "), std::string::npos) << log;

    // Run again: nothing left to do, and it says so.
    Process again({FRAGTUNED_BIN, "--root", m.root().string(), "--restore"}, {},
                  m.scratch() / "again.log");
    ASSERT_EQ(again.wait(), 0) << again.log();
    EXPECT_NE(again.log().find("fragtuned --restore: every knob already has its original value"),
              std::string::npos)
        << again.log();
}

TEST(Daemon, RestoreCommandWithoutAStateFileRestoresNothingAndRecordsNothing) {
    FixtureMachine m;
    m.set_knob("min_free_kbytes", kOriginalMinFree + 1000);  // not an original: nobody recorded one
    Process restore({FRAGTUNED_BIN, "--root", m.root().string(), "--restore"}, {},
                    m.scratch() / "restore.log");
    ASSERT_EQ(restore.wait(), 0) << restore.log();
    EXPECT_EQ(m.knob("min_free_kbytes"), kOriginalMinFree + 1000);
    EXPECT_NE(restore.log().find("no originals were recorded, nothing to restore"),
              std::string::npos)
        << restore.log();
    EXPECT_EQ(restore.log().find("started"), std::string::npos) << restore.log();
    // Live values must not become the originals of a later start.
    EXPECT_FALSE(std::filesystem::exists(m.path("/var/lib/fragtune/state.toml")));
}

// A corrupt state file holds the only record of the originals: --restore (run by the package's
// prerm) leaves it in place, writes nothing, and records no live (tuned) value as an original.
TEST(Daemon, RestoreCommandWithACorruptStateFileChangesNothing) {
    FixtureMachine m;
    m.set_knob("min_free_kbytes", kOriginalMinFree + 1000);
    const auto state = m.path("/var/lib/fragtune/state.toml");
    std::filesystem::create_directories(state.parent_path());
    { std::ofstream(state) << "this is [not toml\n"; }
    const std::string before = read_text(state);
    Process restore({FRAGTUNED_BIN, "--root", m.root().string(), "--restore"}, {},
                    m.scratch() / "restore.log");
    ASSERT_EQ(restore.wait(), 0) << restore.log();
    EXPECT_EQ(m.knob("min_free_kbytes"), kOriginalMinFree + 1000);
    EXPECT_NE(restore.log().find("no originals to restore, the file is left as it is"),
              std::string::npos)
        << restore.log();
    EXPECT_EQ(read_text(state), before);
    EXPECT_FALSE(std::filesystem::exists(m.path("/var/lib/fragtune/state.toml.corrupt")));
    EXPECT_FALSE(std::filesystem::exists(m.path("/etc/sysctl.d/90-fragtune.conf")));
}

TEST(Daemon, AValueChangedBySomeoneElsePinsTheKnob) {
    FixtureMachine m;
    Running d(m, {"--mode", "active"});
    ASSERT_TRUE(d.ready());
    ASSERT_TRUE(
        feed_failures_until(m, [&] { return m.knob("min_free_kbytes") > kOriginalMinFree; }));
    m.set_knob("min_free_kbytes", 70000);  // the administrator
    ASSERT_TRUE(wait_for([&] { return d.proc->log().find("admin-override") != std::string::npos; }))
        << d.proc->log();
    // More trouble: the knob stays where the administrator put it.
    feed_failures_until(
        m, [] { return false; }, 1500ms);
    EXPECT_EQ(m.knob("min_free_kbytes"), 70000);
    d.proc->signal(SIGTERM);
    EXPECT_EQ(d.proc->wait(), 0);
    EXPECT_NE(read_text(m.path("/var/lib/fragtune/state.toml")).find("pinned"), std::string::npos);
}

TEST(Daemon, SighupWithABrokenConfigKeepsTheOldOneRunning) {
    FixtureMachine m;
    m.config("[daemon]\nmode = \"active\"\n");
    Running d(m);
    ASSERT_TRUE(d.ready()) << d.proc->log();
    m.config("[daemon]\nmode = \"fast\"\ntikc = \"1s\"\n");
    d.proc->signal(SIGHUP);
    ASSERT_TRUE(wait_for([&] {
        return d.proc->log().find("configuration rejected") != std::string::npos;
    })) << d.proc->log();
    EXPECT_TRUE(d.notify.saw("RELOADING=1"));
    EXPECT_TRUE(d.proc->running());
    // Still active on the old configuration: failures are still acted on.
    EXPECT_TRUE(feed_failures_until(m, [&] {
        return m.knob("min_free_kbytes") > kOriginalMinFree;
    })) << d.proc->log();
    d.proc->signal(SIGTERM);
    EXPECT_EQ(d.proc->wait(), 0);
}

TEST(Daemon, SighupWithAGoodConfigAppliesIt) {
    FixtureMachine m;
    m.config("[daemon]\nmode = \"observe\"\n");
    Running d(m);
    ASSERT_TRUE(d.ready()) << d.proc->log();
    m.config("[daemon]\nmode = \"active\"\n");
    d.proc->signal(SIGHUP);
    ASSERT_TRUE(wait_for([&] {
        return d.proc->log().find("mode observe -> active") != std::string::npos;
    })) << d.proc->log();
    EXPECT_TRUE(
        feed_failures_until(m, [&] { return m.knob("min_free_kbytes") > kOriginalMinFree; }));
    d.proc->signal(SIGTERM);
    EXPECT_EQ(d.proc->wait(), 0);
}

TEST(Daemon, ReloadTightensBoundsAtOnce) {
    FixtureMachine m;
    m.config("[daemon]\nmode = \"active\"\n");
    Running d(m);
    ASSERT_TRUE(d.ready()) << d.proc->log();
    ASSERT_TRUE(feed_failures_until(m, [&] { return m.knob("min_free_kbytes") > 81920; }))
        << d.proc->log();
    m.config("[daemon]\nmode = \"active\"\n[tunables.min_free_kbytes]\nmax = \"80M\"\n");
    d.proc->signal(SIGHUP);
    ASSERT_TRUE(wait_for([&] { return m.knob("min_free_kbytes") == 81920; })) << d.proc->log();
    EXPECT_NE(d.proc->log().find("[lower: bounds-tightened]"), std::string::npos) << d.proc->log();
    d.proc->signal(SIGTERM);
    EXPECT_EQ(d.proc->wait(), 0);
}

// A read-only bind mount in a private mount namespace: real EROFS from the kernel.
std::vector<std::string> read_only(const fs::path& dir) {
    const std::string d = dir.string();
    return {"/usr/bin/unshare",
            "-m",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            "mount --bind " + d + " " + d + " && mount -o remount,bind,ro " + d + " " + d +
                " && exec \"$0\" \"$@\""};
}

TEST(Daemon, ReadOnlyPersistDirectoryKeepsRuntimeValuesAndSaysNotPersisted) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for a mount namespace";
    FixtureMachine m;
    Running d(m, {"--mode", "active"}, {}, read_only(m.path("/etc/sysctl.d")));
    ASSERT_TRUE(d.ready()) << d.proc->log();
    ASSERT_TRUE(feed_failures_until(m, [&] {
        return m.knob("min_free_kbytes") > kOriginalMinFree;
    })) << d.proc->log();
    d.proc->signal(SIGTERM);
    EXPECT_EQ(d.proc->wait(), 0) << d.proc->log();
    EXPECT_GT(m.knob("min_free_kbytes"), kOriginalMinFree);
    EXPECT_NE(d.proc->log().find("not persisted"), std::string::npos) << d.proc->log();
    EXPECT_FALSE(fs::exists(m.path("/etc/sysctl.d/90-fragtune.conf")));
}

TEST(Daemon, RejectedSysctlWriteMarksTheKnobFailedAndTheDaemonGoesOn) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for a mount namespace";
    FixtureMachine m;
    Running d(m, {"--mode", "active"}, {}, read_only(m.path("/proc/sys/vm")));
    ASSERT_TRUE(d.ready()) << d.proc->log();
    ASSERT_TRUE(feed_failures_until(m, [&] {
        return d.proc->log().find("Read-only file system") != std::string::npos;
    })) << d.proc->log();
    // Logged once, then backed off rather than retried every tick.
    feed_failures_until(
        m, [] { return false; }, 1500ms);
    const std::string log = d.proc->log();
    size_t count = 0;
    for (size_t pos = 0; (pos = log.find("Read-only file system", pos)) != std::string::npos; ++pos)
        ++count;
    EXPECT_LE(count, 2u) << log;
    EXPECT_TRUE(d.proc->running());
    EXPECT_EQ(m.knob("min_free_kbytes"), kOriginalMinFree);
    d.proc->signal(SIGTERM);
    EXPECT_EQ(d.proc->wait(), 0);
}

TEST(Daemon, UsageErrorsExitTwo) {
    TempDir tmp;
    Process bad({FRAGTUNED_BIN, "--no-such-option"}, {}, tmp.path() / "a.log");
    EXPECT_EQ(bad.wait(), 2) << bad.log();
    Process bad_mode({FRAGTUNED_BIN, "--mode", "fast"}, {}, tmp.path() / "b.log");
    EXPECT_EQ(bad_mode.wait(), 2) << bad_mode.log();
    Process bad_tick({FRAGTUNED_BIN, "--tick", "1ms"}, {}, tmp.path() / "c.log");
    EXPECT_EQ(bad_tick.wait(), 2) << bad_tick.log();
    Process help({FRAGTUNED_BIN, "--help"}, {}, tmp.path() / "d.log");
    EXPECT_EQ(help.wait(), 0);
}

TEST(Daemon, MissingProcFileFailsStartWithItsName) {
    FixtureMachine m;
    fs::remove(m.path("/proc/buddyinfo"));
    Process p(daemon_argv(m), {}, m.scratch() / "daemon.log");
    EXPECT_EQ(p.wait(), 1);
    EXPECT_NE(p.log().find("/proc/buddyinfo"), std::string::npos) << p.log();
}

TEST(Daemon, ProcFileVanishingMidRunHoldsKnobsAndRecovers) {
    FixtureMachine m;
    Running d(m, {"--mode", "active"});
    ASSERT_TRUE(d.ready());
    const std::string buddyinfo = read_text(m.path("/proc/buddyinfo"));
    fs::remove(m.path("/proc/buddyinfo"));
    ASSERT_TRUE(wait_for([&] {
        return d.proc->log().find("sampling failed") != std::string::npos;
    })) << d.proc->log();
    write_text(m.path("/proc/buddyinfo"), buddyinfo.substr(0, buddyinfo.size() / 3));  // truncated
    std::this_thread::sleep_for(500ms);
    EXPECT_TRUE(d.proc->running());
    write_text(m.path("/proc/buddyinfo"), buddyinfo);
    EXPECT_TRUE(wait_for([&] {
        return d.proc->log().find("sampling recovered") != std::string::npos;
    })) << d.proc->log();
    d.proc->signal(SIGTERM);
    EXPECT_EQ(d.proc->wait(), 0);
}

TEST(Daemon, RecordThenReplayShowsTheDecisionsTheDaemonMade) {
    FixtureMachine m;
    const fs::path rec = m.scratch() / "rec";
    {
        Running d(m, {"--mode", "observe", "--record", rec.string()});
        ASSERT_TRUE(d.ready()) << d.proc->log();
        ASSERT_TRUE(feed_failures_until(
            m, [&] { return d.proc->log().find("(not applied)") != std::string::npos; }));
        d.proc->signal(SIGTERM);
        ASSERT_EQ(d.proc->wait(), 0);
    }
    ASSERT_TRUE(fs::exists(rec / "00000000/proc/buddyinfo"));
    Process replay({FRAGTUNED_BIN, "--root", m.root().string(), "--replay", rec.string()}, {},
                   m.scratch() / "replay.log");
    ASSERT_EQ(replay.wait(), 0) << replay.log();
    const std::string out = replay.log();
    EXPECT_NE(out.find("vm.min_free_kbytes 67584 -> "), std::string::npos) << out;
    EXPECT_NE(out.find("atomic"), std::string::npos) << out;
    EXPECT_NE(out.find("ticks replayed"), std::string::npos) << out;
}

// Opt-in: the real kernel. Runs the daemon on / in active mode with on_exit = restore and checks that
// every knob is back at its original value afterwards. A guard restores them even if the test fails.
TEST(DaemonRealKernel, ActiveRunOnTheLiveKernelRestoresEveryKnob) {
    const char* opt = std::getenv("FRAGTUNE_REAL_SYSCTL");
    if (!opt || std::string(opt) != "1" || ::geteuid() != 0)
        GTEST_SKIP() << "set FRAGTUNE_REAL_SYSCTL=1 and run as root";
    const std::vector<std::string> knobs = {"min_free_kbytes", "watermark_scale_factor",
                                            "swappiness", "vfs_cache_pressure",
                                            "compaction_proactiveness"};
    struct Guard {
        std::vector<std::pair<std::string, std::string>> saved;
        ~Guard() {
            for (auto& [k, v] : saved) std::ofstream("/proc/sys/vm/" + k) << v;
        }
    } guard;
    for (const auto& k : knobs) guard.saved.emplace_back(k, read_text("/proc/sys/vm/" + k));

    TempDir tmp;
    NotifySocket notify(tmp.path() / "notify.sock");
    Process p({FRAGTUNED_BIN, "--no-bus", "--mode", "active", "--on-exit", "restore", "--tick",
               "500ms", "--persist-path", (tmp.path() / "90-fragtune.conf").string(),
               "--state-path", (tmp.path() / "state.toml").string()},
              {"NOTIFY_SOCKET=" + notify.path().string()}, tmp.path() / "daemon.log");
    ASSERT_TRUE(wait_for([&] { return notify.saw("READY=1"); })) << p.log();
    std::this_thread::sleep_for(3s);
    p.signal(SIGTERM);
    ASSERT_EQ(p.wait(), 0) << p.log();
    for (const auto& [k, v] : guard.saved) EXPECT_EQ(read_text("/proc/sys/vm/" + k), v) << k;
}

}  // namespace
