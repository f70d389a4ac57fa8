#include "fragtune/persisting/sysctl_d.hpp"

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace fragtune;

namespace {

// The value that wins at boot among the other files, as an integer if it is one (the daemon reads
// the assignments themselves; only these tests want the one number).
std::optional<int64_t> winning_value(const KnobBootInfo& b) {
    const SysctlAssignment* w = b.others_winner();
    if (w == nullptr) return std::nullopt;
    int64_t v = 0;
    const char* end = w->value.data() + w->value.size();
    auto [p, ec] = std::from_chars(w->value.data(), end, v);
    if (ec != std::errc() || p != end || w->value.empty()) return std::nullopt;
    return v;
}

// ---- the pure parser ----------------------------------------------------------------------------

TEST(SysctlDNormalize, Table) {
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"vm.swappiness", "vm.swappiness"},
        {"vm/swappiness", "vm.swappiness"},
        {"/vm/swappiness", "vm.swappiness"},
        {"vm//swappiness", "vm.swappiness"},
        {"vm..swappiness", "vm.swappiness"},
        {"vm.swappiness.", "vm.swappiness"},
        // sysctl.d(5): the first separator decides; a dotted interface name survives.
        {"net/ipv4/conf/enp3s0.200/forwarding", "net.ipv4.conf.enp3s0/200.forwarding"},
        {"net.ipv4.conf.enp3s0/200.forwarding", "net.ipv4.conf.enp3s0/200.forwarding"},
        {"kernel", "kernel"},
        {"", ""},
    };
    for (const auto& [in, want] : cases) EXPECT_EQ(normalize_sysctl_key(in), want) << in;
}

TEST(SysctlDParse, AssignmentsCommentsAndIssuesWithLines) {
    const std::string text =
        "# comment\n"
        "; also a comment\n"
        "   # indented comment\n"
        "\n"
        "vm.swappiness = 10\n"                  // 5
        "vm/min_free_kbytes=65536\n"            // 6
        "  vm.vfs_cache_pressure\t=\t200  \n"   // 7
        "-vm.watermark_scale_factor = 200\n"    // 8
        "- vm.compaction_proactiveness=30\n"    // 9
        "vm.swappiness = 20 # not a comment\n"  // 10
        "this line is junk\n"                   // 11
        "= 5\n"                                 // 12
        "vm.swappiness =\n"                     // 13
        "net.ipv4.conf.*.rp_filter = 2\n"       // 14
        "-net.ipv4.conf.all.rp_filter\n"        // 15
        "kernel.domainname = a=b\n"             // 16
        "-\n";                                  // 17
    auto p = parse_sysctl_conf(text, "/etc/sysctl.d/50-x.conf");
    ASSERT_EQ(p.assignments.size(), 8u);
    auto check = [&](size_t i, std::string_view key, std::string_view value, int line, bool ign,
                     bool glob) {
        SCOPED_TRACE(i);
        EXPECT_EQ(p.assignments[i].key, key);
        EXPECT_EQ(p.assignments[i].value, value);
        EXPECT_EQ(p.assignments[i].line, line);
        EXPECT_EQ(p.assignments[i].ignore_failure, ign);
        EXPECT_EQ(p.assignments[i].glob, glob);
        EXPECT_EQ(p.assignments[i].source, "/etc/sysctl.d/50-x.conf");
    };
    check(0, "vm.swappiness", "10", 5, false, false);
    check(1, "vm.min_free_kbytes", "65536", 6, false, false);
    check(2, "vm.vfs_cache_pressure", "200", 7, false, false);
    check(3, "vm.watermark_scale_factor", "200", 8, true, false);
    check(4, "vm.compaction_proactiveness", "30", 9, true, false);
    check(5, "vm.swappiness", "20 # not a comment", 10, false, false);
    check(6, "net.ipv4.conf.*.rp_filter", "2", 14, false, true);
    check(7, "kernel.domainname", "a=b", 16, false, false);

    ASSERT_EQ(p.exclusions.size(), 1u);
    EXPECT_EQ(p.exclusions[0].key, "net.ipv4.conf.all.rp_filter");
    EXPECT_EQ(p.exclusions[0].line, 15);

    ASSERT_EQ(p.issues.size(), 4u);
    EXPECT_EQ(p.issues[0].line, 11);
    EXPECT_NE(p.issues[0].message.find("not an assignment"), std::string::npos);
    EXPECT_EQ(p.issues[1].line, 12);
    EXPECT_NE(p.issues[1].message.find("no key"), std::string::npos);
    EXPECT_EQ(p.issues[2].line, 13);
    EXPECT_NE(p.issues[2].message.find("vm.swappiness has an empty value"), std::string::npos);
    EXPECT_EQ(p.issues[3].line, 17);
    for (const auto& i : p.issues) EXPECT_EQ(i.source, "/etc/sysctl.d/50-x.conf");
}

TEST(SysctlDParse, CrlfNoFinalNewlineAndHostileInput) {
    auto crlf =
        parse_sysctl_conf("# windows\r\nvm.swappiness = 10\r\nvm.min_free_kbytes=1\r\n", "f");
    ASSERT_EQ(crlf.assignments.size(), 2u);
    EXPECT_EQ(crlf.assignments[0].value, "10");
    EXPECT_EQ(crlf.assignments[1].line, 3);
    EXPECT_TRUE(crlf.issues.empty());

    auto last = parse_sysctl_conf("vm.swappiness=7", "f");
    ASSERT_EQ(last.assignments.size(), 1u);
    EXPECT_EQ(last.assignments[0].value, "7");

    EXPECT_TRUE(parse_sysctl_conf("", "f").assignments.empty());
    EXPECT_TRUE(parse_sysctl_conf("\n\n\n", "f").issues.empty());

    // Binary junk and a NUL byte: issues, never a crash, line numbers still right.
    std::string junk("\x01\x02\x03\n", 4);
    junk += std::string("vm.swap\0piness = 1\n", 19);
    junk += "vm.swappiness = 3\n";
    auto j = parse_sysctl_conf(junk, "f");
    ASSERT_FALSE(j.assignments.empty());
    EXPECT_EQ(j.assignments.back().key, "vm.swappiness");
    EXPECT_EQ(j.assignments.back().line, 3);
    ASSERT_EQ(j.issues.size(), 1u);
    EXPECT_EQ(j.issues[0].line, 1);

    // A very long value is kept as is (the kernel will judge it).
    const std::string long_value(100000, '9');
    auto l = parse_sysctl_conf("vm.swappiness = " + long_value + "\n", "f");
    ASSERT_EQ(l.assignments.size(), 1u);
    EXPECT_EQ(l.assignments[0].value.size(), long_value.size());
}

// ---- the boot view over a fake root -------------------------------------------------------------

class SysctlDBoot : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/fragtune-sysctld-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
    }
    void TearDown() override { fs::remove_all(root_); }
    void put(const std::string& path, const std::string& text) {
        const fs::path p = root_ / path.substr(1);
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
    }
    void link(const std::string& path, const std::string& target) {
        const fs::path p = root_ / path.substr(1);
        fs::create_directories(p.parent_path());
        fs::create_symlink(target, p);
    }
    BootSysctlConfig boot(std::string_view own = kOwn) {
        return effective_boot_values(KernelFs(root_), own);
    }
    static constexpr std::string_view kOwn = "/etc/sysctl.d/90-fragtune.conf";
    fs::path root_;
};

TEST_F(SysctlDBoot, NothingConfigured) {
    auto b = boot();
    EXPECT_TRUE(b.files.empty());
    EXPECT_TRUE(b.issues.empty());
    EXPECT_FALSE(b.own_file_masked);
    for (const auto& t : kTunables) {
        EXPECT_FALSE(b.knob(t.knob).conflict());
        EXPECT_EQ(b.knob(t.knob).others_winner(), nullptr);
        EXPECT_EQ(b.knob(t.knob).describe(t.sysctl), "");
    }
}

TEST_F(SysctlDBoot, OrderIsByBasenameAcrossDirectoriesAndDecidesConflicts) {
    put("/usr/lib/sysctl.d/50-default.conf", "vm.swappiness = 30\n");
    put("/run/sysctl.d/95-runtime.conf", "vm.swappiness = 5\n");
    put("/usr/local/lib/sysctl.d/10-local.conf", "vm/min_free_kbytes = 45056\n");
    put("/etc/sysctl.d/99-admin.conf", "# admin\nvm.vfs_cache_pressure = 50\n");
    put("/etc/sysctl.d/90-fragtune.conf", "vm.swappiness = 40\nvm.vfs_cache_pressure = 150\n");
    put("/etc/sysctl.d/README.sysctl", "vm.swappiness = 1\n");                   // not *.conf
    put("/etc/sysctl.d/.hidden.conf", "vm.swappiness = 1\n");                    // hidden
    put("/etc/sysctl.d/.90-fragtune.conf.fragtune-tmp", "vm.swappiness = 1\n");  // our temp

    auto b = boot();
    EXPECT_TRUE(b.issues.empty());
    EXPECT_EQ(b.files, (std::vector<std::string>{
                           "/usr/local/lib/sysctl.d/10-local.conf",
                           "/usr/lib/sysctl.d/50-default.conf",
                           "/etc/sysctl.d/90-fragtune.conf",
                           "/run/sysctl.d/95-runtime.conf",
                           "/etc/sysctl.d/99-admin.conf",
                       }));

    const auto& sw = b.knob(Knob::swappiness);
    EXPECT_TRUE(sw.conflict());
    ASSERT_EQ(sw.before_ours.size(), 1u);
    EXPECT_EQ(sw.before_ours[0].source, "/usr/lib/sysctl.d/50-default.conf");
    ASSERT_EQ(sw.after_ours.size(), 1u);
    EXPECT_EQ(sw.others_winner()->source, "/run/sysctl.d/95-runtime.conf");
    EXPECT_EQ(winning_value(sw), 5);
    ASSERT_TRUE(sw.own);
    EXPECT_EQ(sw.own->value, "40");
    EXPECT_EQ(sw.describe("vm.swappiness"),
              "vm.swappiness = 5 is set at boot by /run/sysctl.d/95-runtime.conf:1, after "
              "fragtune's file: that value wins at boot");

    const auto& mf = b.knob(Knob::min_free_kbytes);
    EXPECT_FALSE(mf.conflict());
    EXPECT_EQ(winning_value(mf), 45056);
    EXPECT_EQ(
        mf.describe("vm.min_free_kbytes"),
        "vm.min_free_kbytes is also set in /usr/local/lib/sysctl.d/10-local.conf:1 (= 45056); "
        "fragtune's file is applied later and wins");

    const auto& vfs = b.knob(Knob::vfs_cache_pressure);
    EXPECT_TRUE(vfs.conflict());
    EXPECT_EQ(vfs.after_ours[0].line, 2);

    EXPECT_FALSE(b.knob(Knob::watermark_scale_factor).conflict());
    EXPECT_EQ(b.knob(Knob::watermark_scale_factor).others_winner(), nullptr);
}

TEST_F(SysctlDBoot, EarlierDirectoryMasksSameNamedFiles) {
    put("/usr/lib/sysctl.d/95-vendor.conf", "vm.swappiness = 1\n");
    put("/etc/sysctl.d/95-vendor.conf", "# overridden by the admin: nothing\n");  // empty masks
    put("/usr/lib/sysctl.d/96-other.conf", "vm.min_free_kbytes = 1\n");
    link("/etc/sysctl.d/96-other.conf", "/dev/null");  // the documented way to mask
    put("/usr/lib/sysctl.d/97-runtime.conf", "vm.vfs_cache_pressure = 1\n");
    put("/run/sysctl.d/97-runtime.conf", "vm.vfs_cache_pressure = 2\n");  // /run beats /usr/lib

    auto b = boot();
    EXPECT_TRUE(b.issues.empty()) << b.issues[0].message;
    EXPECT_EQ(b.files, (std::vector<std::string>{"/etc/sysctl.d/95-vendor.conf",
                                                 "/etc/sysctl.d/96-other.conf",
                                                 "/run/sysctl.d/97-runtime.conf"}));
    EXPECT_FALSE(b.knob(Knob::swappiness).conflict());
    EXPECT_FALSE(b.knob(Knob::min_free_kbytes).conflict());
    ASSERT_TRUE(b.knob(Knob::vfs_cache_pressure).conflict());
    EXPECT_EQ(winning_value(b.knob(Knob::vfs_cache_pressure)), 2);
}

TEST_F(SysctlDBoot, LegacySysctlConfIsAppliedLast) {
    put("/etc/sysctl.conf", "vm.swappiness = 11\n");
    put("/etc/sysctl.d/zz-late.conf", "vm.swappiness = 22\n");
    auto b = boot();
    ASSERT_FALSE(b.files.empty());
    EXPECT_EQ(b.files.back(), "/etc/sysctl.conf");
    const auto& sw = b.knob(Knob::swappiness);
    ASSERT_TRUE(sw.conflict());
    EXPECT_EQ(sw.others_winner()->source, "/etc/sysctl.conf");
    EXPECT_EQ(winning_value(sw), 11);
    // Even with our file sorting after everything in sysctl.d, sysctl.conf comes later still.
    auto late = boot("/etc/sysctl.d/zzz-fragtune.conf");
    EXPECT_TRUE(late.knob(Knob::swappiness).conflict());
    EXPECT_EQ(late.knob(Knob::swappiness).after_ours.size(), 1u);
    EXPECT_EQ(late.knob(Knob::swappiness).before_ours.size(), 1u);
}

TEST_F(SysctlDBoot, DebianSymlinkToSysctlConfCountsAtBothPositions) {
    // Debian 12: /etc/sysctl.d/99-sysctl.conf -> ../sysctl.conf (owned by the systemd package).
    put("/etc/sysctl.conf", "#vm.swappiness = 10\nvm.min_free_kbytes = 90112\n");
    link("/etc/sysctl.d/99-sysctl.conf", "../sysctl.conf");
    auto b = boot();
    EXPECT_EQ(b.files,
              (std::vector<std::string>{"/etc/sysctl.d/99-sysctl.conf", "/etc/sysctl.conf"}));
    const auto& mf = b.knob(Knob::min_free_kbytes);
    ASSERT_TRUE(mf.conflict());
    EXPECT_EQ(mf.after_ours.size(), 2u);
    EXPECT_EQ(winning_value(mf), 90112);
    EXPECT_FALSE(b.knob(Knob::swappiness).conflict());  // commented out
}

TEST_F(SysctlDBoot, OwnFileIsExcludedAndMayNotExistYet) {
    put("/etc/sysctl.d/90-fragtune.conf", "vm.swappiness = 40\nvm.min_free_kbytes = 99999\n");
    auto b = boot();
    for (const auto& t : kTunables) {
        EXPECT_FALSE(b.knob(t.knob).conflict()) << t.sysctl;
        EXPECT_TRUE(b.knob(t.knob).before_ours.empty()) << t.sysctl;
    }
    EXPECT_TRUE(b.knob(Knob::swappiness).own);
    fs::remove(root_ / "etc/sysctl.d/90-fragtune.conf");
    put("/etc/sysctl.d/95-after.conf", "vm.swappiness = 1\n");
    auto b2 = boot();
    EXPECT_TRUE(b2.issues.empty());
    EXPECT_FALSE(b2.knob(Knob::swappiness).own);
    EXPECT_TRUE(b2.knob(Knob::swappiness).conflict());  // position follows from the name
}

TEST_F(SysctlDBoot, OwnFileMasksAVendorFileOfTheSameName) {
    put("/usr/lib/sysctl.d/90-fragtune.conf", "vm.swappiness = 1\n");
    auto b = boot();  // our /etc file does not exist yet; once written, it masks the vendor file
    EXPECT_FALSE(b.own_file_masked);
    EXPECT_TRUE(b.issues.empty());
    EXPECT_FALSE(b.knob(Knob::swappiness).conflict());
    EXPECT_TRUE(b.knob(Knob::swappiness).before_ours.empty());
}

TEST_F(SysctlDBoot, OwnFileMaskedByHigherPrecedenceFile) {
    put("/etc/sysctl.d/90-fragtune.conf", "vm.swappiness = 3\n");
    put("/usr/lib/sysctl.d/10-x.conf", "vm.vfs_cache_pressure = 120\n");
    auto b = boot("/usr/lib/sysctl.d/90-fragtune.conf");
    EXPECT_TRUE(b.own_file_masked);
    ASSERT_EQ(b.issues.size(), 1u);
    EXPECT_NE(b.issues[0].message.find("masked by /etc/sysctl.d/90-fragtune.conf"),
              std::string::npos);
    // Nothing of ours applies at boot, so every other assignment stands: conflicts.
    EXPECT_TRUE(b.knob(Knob::swappiness).conflict());
    EXPECT_TRUE(b.knob(Knob::vfs_cache_pressure).conflict());

    auto outside = boot("/opt/fragtune/90-fragtune.conf");
    EXPECT_TRUE(outside.own_file_masked);
    EXPECT_NE(outside.issues[0].message.find("not in a sysctl.d directory"), std::string::npos);
}

TEST_F(SysctlDBoot, MalformedLinesAndUnreadableFilesAreReportedNotFatal) {
    put("/etc/sysctl.d/50-bad.conf", "vm.swappiness 10\nvm.swappiness = 12\r\n");
    fs::create_directories(root_ / "etc/sysctl.d/60-dir.conf");  // a directory named *.conf
    put("/etc/sysctl.d/95-late.conf", "vm.watermark_scale_factor = lots\n");
    auto b = boot();
    ASSERT_EQ(b.issues.size(), 2u);
    EXPECT_EQ(b.issues[0].source, "/etc/sysctl.d/50-bad.conf");
    EXPECT_EQ(b.issues[0].line, 1);
    EXPECT_EQ(b.issues[1].source, "/etc/sysctl.d/60-dir.conf");
    EXPECT_EQ(b.issues[1].line, 0);
    EXPECT_EQ(winning_value(b.knob(Knob::swappiness)), 12);
    // A non-integer value still wins the key at boot (the kernel would reject it); it is a conflict
    // with no integer value.
    EXPECT_TRUE(b.knob(Knob::watermark_scale_factor).conflict());
    EXPECT_FALSE(winning_value(b.knob(Knob::watermark_scale_factor)));
}

TEST_F(SysctlDBoot, GlobsAreReportedNotExpanded) {
    put("/etc/sysctl.d/95-globs.conf", "vm.* = 5\nnet.ipv4.conf.*.rp_filter = 2\n");
    put("/etc/sysctl.d/96-except.conf", "-vm.swappiness\n");
    auto b = boot();
    EXPECT_TRUE(b.issues.empty());
    for (const auto& t : kTunables) EXPECT_FALSE(b.knob(t.knob).conflict()) << t.sysctl;
    const auto& mf = b.knob(Knob::min_free_kbytes);
    ASSERT_EQ(mf.globs.size(), 1u);
    EXPECT_EQ(mf.globs[0].key, "vm.*");
    EXPECT_EQ(
        mf.describe("vm.min_free_kbytes"),
        "vm.min_free_kbytes may also be set by the glob vm.* in /etc/sysctl.d/95-globs.conf:1 "
        "(globs are not evaluated)");
    EXPECT_TRUE(b.knob(Knob::swappiness).globs.empty());  // excluded by "-vm.swappiness"
}

}  // namespace
