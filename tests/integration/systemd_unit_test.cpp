// The installed fragtuned.service, checked offline by systemd itself: `systemd-analyze verify` must
// be clean (with the installed manual pages resolving its Documentation= lines) and
// `systemd-analyze security` must rate the sandbox at an exposure of 1.0 or less (systemd-oomd's
// own unit: 2.0). systemd need not be PID 1 for either.
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "ship_util.hpp"

namespace fs = std::filesystem;
using namespace fragtune::test;

namespace {

constexpr double kMaxExposure = 1.0;

class SystemdUnit : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!have_program("systemd-analyze")) GTEST_SKIP() << "systemd-analyze is not installed";
        ASSERT_FALSE(dest_.path().empty());
        auto r = install_into(dest_.path(), "/usr");
        ASSERT_EQ(r.exit_code, 0) << r.output;
        fs::path units = FRAGTUNE_SYSTEMD_UNIT_DIR;
        if (!units.is_absolute()) units = fs::path("/usr") / units;
        const fs::path installed = dest_.path() / units.relative_path() / "fragtuned.service";
        text_ = read_text(installed);
        ASSERT_FALSE(text_.empty()) << installed;

        // verify needs the commands to exist: point ExecStart at the built daemon in a copy (the
        // file name must stay fragtuned.service for the unit name).
        const std::string built = FRAGTUNED_BIN;
        std::string copy = std::regex_replace(
            text_, std::regex("^ExecStart=\\S+", std::regex::multiline), "ExecStart=" + built);
        ASSERT_NE(copy, text_) << "no ExecStart= line to rewrite";
        // ExecReload= runs the installed fragtunectl; verify wants it to exist as well.
        const std::string with_ctl =
            std::regex_replace(copy, std::regex("^ExecReload=\\S+", std::regex::multiline),
                               std::string("ExecReload=") + FRAGTUNECTL_BIN);
        ASSERT_NE(with_ctl, copy) << "no ExecReload= line to rewrite";
        copy = with_ctl;
        fs::create_directories(work_.path() / "unit");
        unit_ = work_.path() / "unit" / "fragtuned.service";
        std::ofstream(unit_) << copy;
    }

    TempDir dest_, work_;
    std::string text_;
    fs::path unit_;
};

TEST_F(SystemdUnit, VerifyIsClean) {
    // Documentation=man:... is checked with `man`; look the pages up in the installed tree.
    std::string man_opt;
    if (!have_program("man")) man_opt = " --man=no";
    auto r = run_command("MANPATH=" + shell_quote((dest_.path() / "usr/share/man").string()) +
                         " systemd-analyze verify" + man_opt + " " + shell_quote(unit_.string()));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "") << "systemd-analyze verify printed warnings";
}

TEST_F(SystemdUnit, ExposureIsAtMostOne) {
    auto r = run_command("systemd-analyze security --offline=true --no-pager " +
                         shell_quote(unit_.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(
        r.output, m,
        std::regex("Overall exposure level for fragtuned\\.service: ([0-9]+\\.[0-9])")))
        << r.output;
    const double exposure = std::stod(m[1].str());
    RecordProperty("exposure", m[1].str());
    EXPECT_LE(exposure, kMaxExposure) << r.output;
}

// The sandbox must leave open exactly what fragtuned needs; these lines are what make it work, and
// a "hardening" edit that drops one breaks the daemon, not the score.
TEST_F(SystemdUnit, SandboxKeepsWhatTheDaemonNeeds) {
    for (const char* line :
         {"Type=notify\n", "NotifyAccess=main\n", "WatchdogSec=30s\n",
          "ExecReload=/usr/bin/fragtunectl reload\n", "BusName=org.fragtune1\n",
          "ReadWritePaths=/etc/sysctl.d /proc/sys/vm\n", "StateDirectory=fragtune\n",
          "StateDirectoryMode=0700\n", "CapabilityBoundingSet=CAP_SYSLOG\n",
          "ProtectKernelLogs=no\n", "BindReadOnlyPaths=-/dev/kmsg\n", "DeviceAllow=/dev/kmsg r\n",
          "ProcSubset=all\n", "RestrictAddressFamilies=AF_UNIX\n", "UMask=0077\n"}) {
        EXPECT_NE(text_.find(line), std::string::npos) << "missing: " << line;
    }
    // /proc/sys/vm is written, so ProcSubset=pid (which hides /proc/sys) must never appear.
    EXPECT_FALSE(std::regex_search(text_, std::regex("^ProcSubset=pid", std::regex::multiline)));
    // Where /dev/kmsg is missing the unit must still start (226/NAMESPACE otherwise).
    EXPECT_FALSE(std::regex_search(
        text_, std::regex("^BindReadOnlyPaths=/dev/kmsg", std::regex::multiline)));
    // Reload waits for fragtuned's answer and needs no program outside the package (no procps
    // kill).
    EXPECT_FALSE(std::regex_search(text_, std::regex("^ExecReload=.*kill", std::regex::multiline)));
}

std::string unit_value(const std::string& text, const std::string& key) {
    std::smatch m;
    if (!std::regex_search(text, m, std::regex("^" + key + "=(\\S+)$", std::regex::multiline)))
        return {};
    return m[1].str();
}

// systemd's time spans as used in the unit: "5s", "5min", "30s", "1h".
double seconds_of(const std::string& span) {
    std::smatch m;
    if (!std::regex_match(span, m, std::regex("([0-9]+)(s|min|h)"))) return -1;
    const double n = std::stod(m[1].str());
    return m[2] == "s" ? n : m[2] == "min" ? n * 60 : n * 3600;
}

// A permanent failure must reach the start limit: with every restart RestartSec apart, Burst starts
// must fit into the interval, or the limit is never hit and the unit loops for ever.
TEST_F(SystemdUnit, APermanentFailureReachesTheStartLimit) {
    EXPECT_EQ(unit_value(text_, "Restart"), "on-failure");
    const double restart_sec = seconds_of(unit_value(text_, "RestartSec"));
    const double interval_sec = seconds_of(unit_value(text_, "StartLimitIntervalSec"));
    const std::string burst = unit_value(text_, "StartLimitBurst");
    ASSERT_GT(restart_sec, 0) << text_;
    ASSERT_GT(interval_sec, 0) << "no StartLimitIntervalSec= in [Unit]";
    ASSERT_FALSE(burst.empty()) << "no StartLimitBurst= in [Unit]";
    EXPECT_LT(std::stod(burst) * restart_sec, interval_sec);
    // In [Unit], where systemd reads them (in [Service] they are ignored with a warning).
    const auto unit_section = text_.find("[Unit]"), service_section = text_.find("[Service]");
    EXPECT_LT(unit_section, text_.find("StartLimitBurst="));
    EXPECT_GT(service_section, text_.find("StartLimitBurst="));
}

}  // namespace
