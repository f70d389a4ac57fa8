// `cmake --install` into a DESTDIR: every shipped file in its place with its mode, and the unit's
// ExecStart pointing at the installed daemon for the prefix used at install time.
#include <sys/stat.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ship_util.hpp"

namespace fs = std::filesystem;
using namespace fragtune::test;

namespace {

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
}

// The unit directory as configured (absolute on Debian: /lib/systemd/system).
fs::path unit_dir(const std::string& prefix) {
    fs::path d = FRAGTUNE_SYSTEMD_UNIT_DIR;
    return d.is_absolute() ? d : fs::path(prefix) / d;
}

std::string exec_start(const std::string& unit_text) {
    std::smatch m;
    static const std::regex re("^ExecStart=(\\S+)", std::regex::multiline);
    return std::regex_search(unit_text, m, re) ? m[1].str() : std::string();
}

struct Expected {
    std::string path;  // relative to DESTDIR
    unsigned mode;
};

TEST(Install, PrefixUsrPutsEveryFileInPlace) {
    TempDir dest;
    ASSERT_FALSE(dest.path().empty());
    auto r = install_into(dest.path(), "/usr");
    ASSERT_EQ(r.exit_code, 0) << r.output;

    const std::string units = unit_dir("/usr").relative_path().string();
    std::vector<Expected> expected = {
        {"usr/sbin/fragtuned", 0755},
        {"usr/bin/fragtunectl", 0755},
        {units + "/fragtuned.service", 0644},
        {"etc/fragtune/fragtune.toml", 0644},  // /etc, not /usr/etc: GNUInstallDirs' rule for /usr
        {"usr/share/dbus-1/system.d/org.fragtune1.conf", 0644},
        {"usr/share/bash-completion/completions/fragtunectl", 0644},
    };
    // Every manual page of the source tree, in its section.
    for (const auto& e : fs::directory_iterator(fs::path(FRAGTUNE_SOURCE_DIR) / "man")) {
        const std::string ext = e.path().extension().string();
        if (ext.size() != 2) continue;
        expected.push_back(
            {"usr/share/man/man" + ext.substr(1) + "/" + e.path().filename().string(), 0644});
    }
    ASSERT_GE(expected.size(), 7u);

    for (const auto& e : expected) {
        const fs::path p = dest.path() / e.path;
        EXPECT_TRUE(fs::is_regular_file(p)) << e.path << " missing; install output:\n" << r.output;
        EXPECT_EQ(mode_of(p), e.mode) << e.path;
    }
    // The configuration is the shipped file, byte for byte.
    EXPECT_EQ(read_text(dest.path() / "etc/fragtune/fragtune.toml"),
              read_text(fs::path(FRAGTUNE_SOURCE_DIR) / "config/fragtune.toml"));

    // ExecStart names the installed daemon, which exists in the tree.
    const std::string unit = read_text(dest.path() / units / "fragtuned.service");
    EXPECT_EQ(exec_start(unit), "/usr/sbin/fragtuned");
    EXPECT_FALSE(std::regex_search(unit, std::regex("@[A-Z_]+@")))
        << "unsubstituted @VAR@ in the unit";

    // Nothing under the prefix's own etc, nothing in /usr/local.
    EXPECT_FALSE(fs::exists(dest.path() / "usr/etc"));
    EXPECT_FALSE(fs::exists(dest.path() / "usr/local"));
}

TEST(Install, PrefixIsTakenAtInstallTimeNotConfigureTime) {
    TempDir dest;
    ASSERT_FALSE(dest.path().empty());
    auto r = install_into(dest.path(), "/opt/fragtune");
    ASSERT_EQ(r.exit_code, 0) << r.output;

    EXPECT_TRUE(fs::is_regular_file(dest.path() / "opt/fragtune/sbin/fragtuned"));
    // GNUInstallDirs: prefix /opt/X keeps its configuration in /etc/opt/X.
    EXPECT_TRUE(fs::is_regular_file(dest.path() / "etc/opt/fragtune/fragtune/fragtune.toml"));
    const fs::path unit =
        dest.path() / unit_dir("/opt/fragtune").relative_path() / "fragtuned.service";
    ASSERT_TRUE(fs::is_regular_file(unit)) << r.output;
    EXPECT_EQ(exec_start(read_text(unit)), "/opt/fragtune/sbin/fragtuned");
}

}  // namespace
