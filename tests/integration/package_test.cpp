// The Debian package that `make deb` builds with debhelper (debian/), inspected with dpkg-deb and
// lintian: control fields, conffiles, the generated maintainer scripts, the file list and the
// packaged unit. ctest label "package", run by `make test-package` after `make deb`; the package is
// build/deb/fragtune_<version>_<arch>.deb in the source tree (FRAGTUNE_DEB overrides the path).
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "ship_util.hpp"

namespace fs = std::filesystem;
using namespace fragtune::test;

namespace {

fs::path find_deb() {
    if (const char* e = std::getenv("FRAGTUNE_DEB"); e && *e) return e;
    const fs::path dir = fs::path(FRAGTUNE_SOURCE_DIR) / "build/deb";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind(std::string("fragtune_") + FRAGTUNE_VERSION + "_", 0) == 0 &&
            e.path().extension() == ".deb")
            return e.path();
    }
    return {};
}

class Package : public ::testing::Test {
  protected:
    void SetUp() override {
        deb_ = find_deb();
        ASSERT_FALSE(deb_.empty())
            << "no fragtune_" << FRAGTUNE_VERSION
            << "_*.deb in build/deb: run `make deb` (make test-package does)";
        ASSERT_TRUE(fs::is_regular_file(deb_)) << deb_;
    }
    std::string dpkg_deb(const std::string& args) const {
        auto r = run_command("dpkg-deb " + args + " " + shell_quote(deb_.string()));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        return r.output;
    }
    std::string control_file(const std::string& name) const {
        auto r = run_command("dpkg-deb -I " + shell_quote(deb_.string()) + " " + name);
        EXPECT_EQ(r.exit_code, 0) << name << ": " << r.output;
        return r.output;
    }
    std::string data_file(const std::string& path) const {
        auto r = run_command("dpkg-deb --fsys-tarfile " + shell_quote(deb_.string()) +
                             " | tar -xOf - " + shell_quote(path));
        EXPECT_EQ(r.exit_code, 0) << path << ": " << r.output;
        return r.output;
    }
    fs::path deb_;
};

TEST_F(Package, ControlFields) {
    const std::string info = dpkg_deb("-I");
    EXPECT_NE(info.find(" Package: fragtune\n"), std::string::npos) << info;
    EXPECT_NE(info.find(std::string(" Version: ") + FRAGTUNE_VERSION + "\n"), std::string::npos)
        << info;
    EXPECT_NE(info.find(" Section: admin\n"), std::string::npos) << info;
    // The Maintainer of debian/control, never a placeholder on localhost.
    std::smatch m;
    ASSERT_TRUE(std::regex_search(info, m, std::regex(" Maintainer: ([^\n]*)\n"))) << info;
    EXPECT_EQ(m[1].str().find("localhost"), std::string::npos) << m[1];
    EXPECT_NE(read_text(fs::path(FRAGTUNE_SOURCE_DIR) / "debian/control")
                  .find("Maintainer: " + m[1].str() + "\n"),
              std::string::npos)
        << m[1];

    ASSERT_TRUE(std::regex_search(info, m, std::regex(" Depends: ([^\n]*)\n"))) << info;
    const std::string depends = m[1].str();
    // From dh_shlibdeps: the libraries the binaries link, with versions. Library package names
    // carry the soname, which changes between releases (bookworm libfmt9, libspdlog1.10-fmt9,
    // libsdbus-c++1; trixie libfmt10, libspdlog1.15, libsdbus-c++2): match the stem and a version.
    for (const char* lib :
         {R"(libc6 \(>=)", R"(libstdc\+\+6 \(>=)", R"(libsystemd0)", R"(libsdbus-c\+\+[0-9]+)",
          R"(libfmt[0-9]+)", R"(libspdlog1(\.[0-9]+)?(-fmt[0-9]+)?)"})
        EXPECT_TRUE(
            std::regex_search(depends, std::regex(std::string("(^|[,|] *)") + lib + R"(( |,|$))")))
            << lib << " not in: " << depends;
    // The bus is a service, not a library: declared in debian/control.
    EXPECT_NE(depends.find("default-dbus-system-bus | dbus-system-bus"), std::string::npos)
        << depends;
    // "  1234 bytes,    40 lines   *  postinst   #!/bin/sh": the star marks an executable script.
    for (const char* f : {"\\* +postinst", "\\* +prerm", "\\* +postrm", " conffiles"})
        EXPECT_TRUE(
            std::regex_search(info, std::regex(std::string("[0-9]+ bytes, +[0-9]+ lines +") + f)))
            << f << " missing:\n"
            << info;
}

TEST_F(Package, ConffilesAreTheConfiguration) {
    EXPECT_EQ(control_file("conffiles"), "/etc/fragtune/fragtune.toml\n");
}

// The scripts are debhelper's (dh_installsystemd) plus fragtune's own lines, in the right order.
TEST_F(Package, MaintainerScripts) {
    const std::string postinst = control_file("postinst");
    const auto bus_reload = postinst.find("deb-systemd-invoke reload dbus.service");
    const auto enable = postinst.find("deb-systemd-helper enable 'fragtuned.service'");
    const auto start = postinst.find("deb-systemd-invoke $_dh_action 'fragtuned.service'");
    ASSERT_NE(bus_reload, std::string::npos) << postinst;
    ASSERT_NE(enable, std::string::npos) << postinst;
    ASSERT_NE(start, std::string::npos) << postinst;
    // The bus policy is live before fragtuned starts and asks for org.fragtune1.
    EXPECT_LT(bus_reload, start) << postinst;

    const std::string prerm = control_file("prerm");
    const auto stop = prerm.find("deb-systemd-invoke stop 'fragtuned.service'");
    // The command, not the comment above it that names it too.
    const auto restore = prerm.find("\n    fragtuned --restore");
    ASSERT_NE(stop, std::string::npos) << prerm;
    ASSERT_NE(restore, std::string::npos) << prerm;
    // Originals are written back after the daemon has stopped, not while it may still tune.
    EXPECT_LT(stop, restore) << prerm;
    EXPECT_EQ(prerm.find("/usr/sbin/fragtuned"), std::string::npos) << "absolute path:\n" << prerm;

    const std::string postrm = control_file("postrm");
    EXPECT_NE(postrm.find("deb-systemd-helper purge 'fragtuned.service'"), std::string::npos)
        << postrm;
    EXPECT_NE(postrm.find("rm -f /etc/sysctl.d/90-fragtune.conf"), std::string::npos) << postrm;
    EXPECT_NE(postrm.find("rm -rf /var/lib/fragtune"), std::string::npos) << postrm;
}

TEST_F(Package, FileList) {
    const std::string list = dpkg_deb("-c");
    struct Entry {
        const char* path;
        const char* perms;
    };
    for (const Entry& e :
         {Entry{"./usr/sbin/fragtuned", "-rwxr-xr-x"}, Entry{"./usr/bin/fragtunectl", "-rwxr-xr-x"},
          Entry{"./lib/systemd/system/fragtuned.service", "-rw-r--r--"},
          Entry{"./usr/share/dbus-1/system.d/org.fragtune1.conf", "-rw-r--r--"},
          Entry{"./etc/fragtune/fragtune.toml", "-rw-r--r--"},
          Entry{"./usr/share/man/man8/fragtuned.8.gz", "-rw-r--r--"},
          Entry{"./usr/share/man/man5/fragtune.toml.5.gz", "-rw-r--r--"},
          Entry{"./usr/share/man/man1/fragtunectl.1.gz", "-rw-r--r--"},
          Entry{"./usr/share/doc/fragtune/copyright", "-rw-r--r--"},
          Entry{"./usr/share/doc/fragtune/changelog.gz", "-rw-r--r--"},
          Entry{"./usr/share/bash-completion/completions/fragtunectl", "-rw-r--r--"}}) {
        std::smatch m;
        const std::regex line(std::string("(\\S+) (\\S+) +[0-9]+ [0-9-]+ [0-9:]+ ") +
                              std::regex_replace(e.path, std::regex("[.+]"), "\\$&") + "\n");
        ASSERT_TRUE(std::regex_search(list, m, line)) << e.path << " not in:\n" << list;
        EXPECT_EQ(m[1].str(), e.perms) << e.path;
        EXPECT_EQ(m[2].str(), "root/root") << e.path;
    }
    // Staged with the real prefix: nothing under the build machine's paths or /usr/local.
    EXPECT_EQ(list.find("/usr/local"), std::string::npos);
    EXPECT_EQ(list.find("./usr/etc"), std::string::npos);
    EXPECT_EQ(list.find("/build/"), std::string::npos);

    // The packaged unit starts the packaged binary and reloads through the packaged client.
    const std::string unit = data_file("./lib/systemd/system/fragtuned.service");
    EXPECT_NE(unit.find("\nExecStart=/usr/sbin/fragtuned\n"), std::string::npos) << unit;
    EXPECT_NE(unit.find("\nExecReload=/usr/bin/fragtunectl reload\n"), std::string::npos) << unit;
    // The copyright file is machine-readable (DEP-5).
    EXPECT_EQ(
        data_file("./usr/share/doc/fragtune/copyright")
            .rfind("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n",
                   0),
        0u);
}

TEST_F(Package, LintianReportsNoErrorAndNoWarning) {
    ASSERT_TRUE(have_program("lintian")) << "lintian is not installed (make deb installs it)";
    auto r = run_command("lintian --fail-on error,warning " + shell_quote(deb_.string()));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    // Nothing but overridden tags: E: and W: lines would be findings.
    EXPECT_FALSE(std::regex_search(r.output, std::regex("^[EW]: ", std::regex::multiline)))
        << r.output;
}

}  // namespace
