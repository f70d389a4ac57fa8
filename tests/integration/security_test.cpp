// Security properties of fragtuned: the files it creates have fixed modes whatever the umask, no
// name or path from a configuration file (or a D-Bus caller, who reaches knobs by the same
// knob_from_name) can reach outside /proc/sys/vm and the configured files, and no shell is ever
// run.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <regex>

#include "daemon_harness.hpp"
#include "fragtune/configuration/config_file.hpp"
#include "fragtune/knobs/tunables.hpp"
#include "fragtune/sensing/kernel_fs.hpp"

using namespace fragtune::testing;
using namespace std::chrono_literals;

namespace {

constexpr int64_t kOriginalMinFree = 67584;  // tests/fixtures/live-6.18-vm

struct Stat {
    unsigned mode = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};
Stat stat_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return {st.st_mode & 07777u, st.st_uid, st.st_gid};
}

// The umask of this process for the scope (the daemon inherits it), restored at exit.
struct UmaskScope {
    explicit UmaskScope(mode_t m) : old(::umask(m)) {}
    ~UmaskScope() { ::umask(old); }
    mode_t old;
};

TEST(Security, FilesHaveFixedModesAndTheRunningUidWhateverTheUmask) {
    for (mode_t mask : {mode_t{0}, mode_t{077}}) {
        SCOPED_TRACE("umask " + std::to_string(mask));
        FixtureMachine m;
        m.config("[daemon]\npersist_settle = \"0s\"\n");
        // A state directory that does not exist yet, so the daemon creates it.
        const std::string state = "/var/lib/fragtune-new/state.toml";
        NotifySocket notify(m.scratch() / "notify.sock");
        std::unique_ptr<Process> p;
        {
            UmaskScope um(mask);
            p = std::make_unique<Process>(
                std::vector<std::string>{FRAGTUNED_BIN, "--root", m.root().string(), "--no-bus",
                                         "--tick", "200ms", "--mode", "active", "--state-path",
                                         state},
                std::vector<std::string>{"NOTIFY_SOCKET=" + notify.path().string()},
                m.scratch() / "daemon.log");
        }
        ASSERT_TRUE(wait_for([&] { return notify.saw("READY=1"); })) << p->log();
        int seq = 1;
        ASSERT_TRUE(wait_for([&] {
            m.kernel_log_atomic_failure(seq++);
            std::this_thread::sleep_for(80ms);
            return fs::exists(m.path("/etc/sysctl.d/90-fragtune.conf"));
        })) << p->log();
        p->signal(SIGTERM);
        ASSERT_EQ(p->wait(), 0) << p->log();
        EXPECT_GT(m.knob("min_free_kbytes"), kOriginalMinFree);

        const Stat conf = stat_of(m.path("/etc/sysctl.d/90-fragtune.conf"));
        const Stat st = stat_of(m.path(state));
        const Stat dir = stat_of(m.path("/var/lib/fragtune-new"));
        EXPECT_EQ(conf.mode, 0644u);  // world-readable, like every sysctl.d file
        EXPECT_EQ(st.mode, 0600u);    // originals and history: for the daemon only
        EXPECT_EQ(dir.mode, 0700u);
        for (const Stat& s : {conf, st, dir}) {
            EXPECT_EQ(s.uid, ::geteuid());
            EXPECT_EQ(s.gid, ::getegid());
        }
    }
}

bool has_error_for(const fragtune::ConfigReport& r, const std::string& key) {
    for (const auto& d : r.diagnostics)
        if (d.severity == fragtune::ConfigDiagnostic::Severity::error && d.key == key) return true;
    return false;
}

TEST(Security, ConfigPathsThatCouldEscapeAreRejected) {
    const std::vector<std::pair<std::string, std::string>> keys = {
        {"daemon", "persist_path"}, {"daemon", "state_path"},     {"signals", "psi_source"},
        {"signals", "kmsg_path"},   {"metrics", "textfile_path"},
    };
    const std::vector<std::string> hostile = {
        "/etc/sysctl.d/../../root/.ssh/authorized_keys.conf",
        "/var/lib/fragtune/../../../etc/shadow",
        "/sys/fs/cgroup/../../etc",
        "/..",
        "../../etc/passwd.conf",
        "relative/state.toml",
    };
    for (const auto& [section, key] : keys) {
        for (const auto& value : hostile) {
            const std::string text = "[" + section + "]\n" + key + " = \"" + value + "\"\n";
            SCOPED_TRACE(text);
            const auto report = fragtune::check_config_text(text, "hostile.toml");
            EXPECT_FALSE(report.ok());
            EXPECT_TRUE(has_error_for(report, section + "." + key));
        }
    }
}

TEST(Security, ADaemonGivenAnEscapingStatePathRefusesToStartAndWritesNothing) {
    FixtureMachine m;
    m.config("[daemon]\nstate_path = \"/var/lib/fragtune/../../../escaped/state.toml\"\n");
    Process p({FRAGTUNED_BIN, "--root", m.root().string(), "--no-bus", "--mode", "active"}, {},
              m.scratch() / "daemon.log");
    EXPECT_EQ(p.wait(), 1) << p.log();
    EXPECT_NE(p.log().find("daemon.state_path"), std::string::npos) << p.log();
    EXPECT_FALSE(fs::exists(m.scratch() / "escaped"));
    EXPECT_FALSE(fs::exists(m.root() / "escaped"));
    EXPECT_FALSE(fs::exists("/escaped"));
}

// The files fragtuned writes are never under /proc, /sys or /dev, however the path is spelled.
TEST(Security, WrittenPathsUnderKernelInterfacesAreRejected) {
    struct Case {
        std::string key, value;
    };
    const std::vector<Case> cases = {
        {"daemon.persist_path", "/proc/sys/vm/x.conf"},
        {"daemon.persist_path", "//proc/sys/vm/x.conf"},
        {"daemon.persist_path", "/./sys/kernel/x.conf"},
        {"daemon.state_path", "/proc/sys/vm/swappiness"},
        {"daemon.state_path", "/sys/fs/cgroup/state.toml"},
        {"daemon.state_path", "/dev/sda"},
        {"metrics.textfile_path", "/proc/self/fragtune.prom"},
    };
    for (const auto& c : cases) {
        const auto dot = c.key.find('.');
        const std::string text =
            "[" + c.key.substr(0, dot) + "]\n" + c.key.substr(dot + 1) + " = \"" + c.value + "\"\n";
        SCOPED_TRACE(text);
        const auto report = fragtune::check_config_text(text, "hostile.toml");
        EXPECT_FALSE(report.ok());
        EXPECT_TRUE(has_error_for(report, c.key));
        auto problem = fragtune::path_value_problem(c.key, c.value);
        ASSERT_TRUE(problem.has_value());
        EXPECT_NE(problem->find("fragtuned writes this file"), std::string::npos) << *problem;
    }
    // Reading from there stays allowed (the kernel log source), and ordinary paths pass.
    EXPECT_FALSE(fragtune::path_value_problem("signals.kmsg_path", "/dev/kmsg"));
    EXPECT_FALSE(fragtune::path_value_problem("daemon.state_path", "/var/lib/fragtune/state.toml"));
    EXPECT_FALSE(
        fragtune::path_value_problem("daemon.persist_path", "/etc/sysctl.d/processes.conf"));
}

// --persist-path and --state-path get the checks of the keys they override: each refusal is a
// usage error (exit 2) naming the flag and the value, and nothing is written.
TEST(Security, PathFlagsGetTheChecksOfTheirConfigKeys) {
    struct Case {
        std::string flag, value, message;
    };
    const std::vector<Case> cases = {
        {"--persist-path", "etc/sysctl.d/90-fragtune.conf", "expected an absolute path"},
        {"--persist-path", "/etc/sysctl.d/../escaped.conf", "without \"..\""},
        {"--persist-path", "/etc/sysctl.d/90-fragtune.txt", "must end in \".conf\""},
        {"--persist-path", "/proc/sys/vm/min_free_kbytes", "must end in \".conf\""},
        {"--persist-path", "/proc/sys/vm/x.conf", "is under /proc"},
        {"--persist-path", "/sys/kernel/x.conf", "is under /sys"},
        {"--state-path", "state.toml", "expected an absolute path"},
        {"--state-path", "/var/lib/fragtune/../../escaped/state.toml", "without \"..\""},
        {"--state-path", "/proc/sys/vm/swappiness", "is under /proc"},
        {"--state-path", "/dev/null", "is under /dev"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.flag + " " + c.value);
        FixtureMachine m;
        Process p({FRAGTUNED_BIN, "--root", m.root().string(), "--no-bus", "--mode", "active",
                   c.flag, c.value},
                  {}, m.scratch() / "daemon.log");
        EXPECT_EQ(p.wait(), 2) << p.log();
        const std::string log = p.log();
        EXPECT_NE(log.find("fragtuned: " + c.flag + ": "), std::string::npos) << log;
        EXPECT_NE(log.find(c.value), std::string::npos) << log;
        EXPECT_NE(log.find(c.message), std::string::npos) << log;
        EXPECT_FALSE(fs::exists(m.path("/var/lib/fragtune/state.toml")));
        EXPECT_FALSE(fs::exists(m.path("/etc/sysctl.d/90-fragtune.conf")));
        EXPECT_FALSE(fs::exists(m.root() / "escaped"));
    }
}

TEST(Security, KnobNamesComeOnlyFromTheTable) {
    for (const std::string& name : std::vector<std::string>{
             "../../kernel/core_pattern", "vm/../kernel/core_pattern", "min_free_kbytes/../../x",
             "vm.min_free_kbytes/..", "/proc/sys/vm/min_free_kbytes", "vm.min_free_kbytes\n",
             "min_free_kbytes ", "", "vm.", "kernel.core_pattern", "vm.overcommit_memory",
             std::string("swappiness\0x", 11)}) {
        EXPECT_FALSE(fragtune::knob_from_name(name).has_value()) << "'" << name << "'";
    }
    for (const auto& t : fragtune::kTunables) {
        EXPECT_EQ(fragtune::knob_from_name(t.name), t.knob);
        EXPECT_EQ(fragtune::knob_from_name(t.sysctl), t.knob);
        // Every path the table can produce stays in /proc/sys/vm.
        EXPECT_EQ(std::string(t.proc_path).rfind("/proc/sys/vm/", 0), 0u) << t.proc_path;
        EXPECT_EQ(std::string(t.proc_path).find(".."), std::string::npos) << t.proc_path;
    }
    // A tunable section that is not in the table is an error, not a new sysctl.
    for (const std::string section :
         {"tunables.overcommit_memory", "tunables.\"../../kernel/core_pattern\""}) {
        const auto report =
            fragtune::check_config_text("[" + section + "]\nenabled = true\n", "hostile.toml");
        EXPECT_FALSE(report.ok()) << section;
    }
    // And the one door to the kernel refuses anything that climbs out of its root.
    const fragtune::KernelFs kfs("/nonexistent-root");
    for (const std::string path : {"/proc/sys/vm/../../kernel/core_pattern",
                                   "proc/sys/vm/swappiness", "/..", "/proc/sys/vm/swappiness/.."})
        EXPECT_FALSE(kfs.resolve(path).ok()) << path;
}

// No shell, no other program: fragtuned and fragtunectl only read and write files and talk D-Bus.
// Comments are stripped first, so documentation may name what the code never does.
TEST(Security, NoShellOrProgramIsEverStartedFromTheSources) {
    const std::regex forbidden(
        R"(\bsystem\s*\(|\bpopen\s*\(|\bexec(l|lp|le|v|vp|vpe|ve)\s*\(|\bfexecve\s*\(|\bposix_spawnp?\s*\(|\bv?fork\s*\(|/bin/(ba)?sh|\bclone3?\s*\()");
    const std::regex comments(R"(//[^\n]*|/\*[\s\S]*?\*/)");
    int scanned = 0;
    for (const auto& e : fs::recursive_directory_iterator(fs::path(FRAGTUNE_SOURCE_DIR) / "src")) {
        const auto ext = e.path().extension();
        if (!e.is_regular_file() || (ext != ".cpp" && ext != ".hpp" && ext != ".h")) continue;
        ++scanned;
        const std::string code = std::regex_replace(read_text(e.path()), comments, "");
        std::smatch hit;
        EXPECT_FALSE(std::regex_search(code, hit, forbidden)) << e.path() << ": " << hit.str();
    }
    EXPECT_GT(scanned, 20);
    // The scanner itself finds what it is meant to find.
    for (const std::string bad :
         {"std::system(\"ls\")", "::popen(cmd, \"r\")", "execv(args[0], args)",
          "execlp(\"sh\", \"sh\")", "const char* sh = \"/bin/sh\";", "pid_t p = fork();"})
        EXPECT_TRUE(std::regex_search(bad, forbidden)) << bad;
}

}  // namespace
