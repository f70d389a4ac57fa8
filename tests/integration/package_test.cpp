// The Debian package built by CPack from this build tree, inspected with dpkg-deb: control fields,
// conffiles, maintainer scripts and the file list. Slow-ish (strip + dpkg-shlibdeps): ctest label
// "package".
#include <filesystem>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "ship_util.hpp"

namespace fs = std::filesystem;
using namespace fragtune::test;

namespace {

class Package : public ::testing::Test {
  protected:
    // Under ctest the fixture test package_deb has built the .deb into FRAGTUNE_PACKAGE_DIR (once
    // for all tests: tests/CMakeLists.txt). Run by hand without it, the suite builds its own.
    static void SetUpTestSuite() {
        if (!have_program("dpkg-deb") || !have_program("dpkg-shlibdeps")) return;
        fs::path dir = FRAGTUNE_PACKAGE_DIR;
        std::error_code ec;
        cpack_.exit_code = 0;  // built by the fixture
        if (!fs::is_directory(dir, ec)) {
            out_ = new TempDir;
            dir = out_->path();
            cpack_ =
                run_command("cpack --config " +
                            shell_quote(std::string(FRAGTUNE_BINARY_DIR) + "/CPackConfig.cmake") +
                            " -G DEB -B " + shell_quote(dir.string()));
        }
        for (const auto& e : fs::directory_iterator(dir, ec))
            if (e.path().extension() == ".deb") deb_ = e.path();
    }
    static void TearDownTestSuite() {
        delete out_;
        out_ = nullptr;
    }
    void SetUp() override {
        if (!have_program("dpkg-deb") || !have_program("dpkg-shlibdeps"))
            GTEST_SKIP() << "dpkg-deb/dpkg-shlibdeps (dpkg-dev) are not installed";
        ASSERT_EQ(cpack_.exit_code, 0) << cpack_.output;
        ASSERT_FALSE(deb_.empty()) << "no .deb in " << FRAGTUNE_PACKAGE_DIR << " (ctest builds it "
                                   << "in the fixture test package_deb):\n"
                                   << cpack_.output;
    }
    static std::string dpkg_deb(const std::string& args) {
        auto r = run_command("dpkg-deb " + args + " " + shell_quote(deb_.string()));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        return r.output;
    }

    static inline TempDir* out_ = nullptr;
    static inline CommandResult cpack_;
    static inline fs::path deb_;
};

TEST_F(Package, ControlFields) {
    const std::string info = dpkg_deb("-I");
    EXPECT_NE(info.find(" Package: fragtune\n"), std::string::npos) << info;
    EXPECT_NE(info.find(std::string(" Version: ") + FRAGTUNE_VERSION + "\n"), std::string::npos)
        << info;
    EXPECT_NE(info.find(" Section: admin\n"), std::string::npos) << info;
    EXPECT_EQ(deb_.filename().string().rfind(std::string("fragtune_") + FRAGTUNE_VERSION + "_", 0),
              0u)
        << deb_;

    std::smatch m;
    ASSERT_TRUE(std::regex_search(info, m, std::regex(" Depends: ([^\n]*)\n"))) << info;
    const std::string depends = m[1].str();
    // From dpkg-shlibdeps: the libraries the binaries link, with versions.
    for (const char* lib :
         {"libc6 (>=", "libstdc++6 (>=", "libsystemd0", "libsdbus-c++1", "libfmt9"})
        EXPECT_NE(depends.find(lib), std::string::npos) << lib << " not in: " << depends;
    // The bus is a service, not a library: declared by hand.
    EXPECT_NE(depends.find("default-dbus-system-bus | dbus-system-bus"), std::string::npos)
        << depends;

    // Maintainer scripts and conffiles are in the control archive.
    // "  1234 bytes,    40 lines   *  postinst   #!/bin/sh": the star marks an executable script.
    for (const char* f : {"\\* +postinst", "\\* +prerm", "\\* +postrm", " conffiles"})
        EXPECT_TRUE(
            std::regex_search(info, std::regex(std::string("[0-9]+ bytes, +[0-9]+ lines +") + f)))
            << f << " missing:\n"
            << info;
}

TEST_F(Package, ConffilesAndScripts) {
    auto conffiles = run_command("dpkg-deb -I " + shell_quote(deb_.string()) + " conffiles");
    ASSERT_EQ(conffiles.exit_code, 0) << conffiles.output;
    EXPECT_EQ(conffiles.output, "/etc/fragtune/fragtune.toml\n");

    auto postinst = run_command("dpkg-deb -I " + shell_quote(deb_.string()) + " postinst");
    ASSERT_EQ(postinst.exit_code, 0) << postinst.output;
    EXPECT_NE(postinst.output.find("deb-systemd-helper enable 'fragtuned.service'"),
              std::string::npos);
    EXPECT_NE(postinst.output.find("deb-systemd-invoke \"$_action\" 'fragtuned.service'"),
              std::string::npos);
    EXPECT_NE(postinst.output.find("systemctl reload dbus.service"), std::string::npos);
    auto prerm = run_command("dpkg-deb -I " + shell_quote(deb_.string()) + " prerm");
    EXPECT_NE(prerm.output.find("deb-systemd-invoke stop 'fragtuned.service'"), std::string::npos);
    auto postrm = run_command("dpkg-deb -I " + shell_quote(deb_.string()) + " postrm");
    EXPECT_NE(postrm.output.find("deb-systemd-helper purge 'fragtuned.service'"),
              std::string::npos);
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
          Entry{"./usr/share/man/man8/fragtuned.8", "-rw-r--r--"},
          Entry{"./usr/share/man/man1/fragtunectl.1", "-rw-r--r--"},
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
    EXPECT_EQ(list.find("_CPack_Packages"), std::string::npos);
    EXPECT_EQ(list.find("./usr/etc"), std::string::npos);

    // The packaged unit starts the packaged binary.
    auto unit = run_command("dpkg-deb --fsys-tarfile " + shell_quote(deb_.string()) +
                            " | tar -xOf - ./lib/systemd/system/fragtuned.service");
    ASSERT_EQ(unit.exit_code, 0) << unit.output;
    EXPECT_NE(unit.output.find("\nExecStart=/usr/sbin/fragtuned\n"), std::string::npos)
        << unit.output;
}

}  // namespace
