// `fragtuned --check-config` and `--dump-config` as a process, the way configuration management
// calls them: exit codes, every diagnostic on stderr, the merged configuration on stdout.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "ship_util.hpp"

namespace fs = std::filesystem;
using namespace fragtune::test;

namespace {

struct CliRun {
    int exit_code = -1;
    std::string out, err;
};

CliRun run_fragtuned(const std::string& args, const TempDir& tmp) {
    const fs::path err_file = tmp.path() / "stderr.txt";
    // run_command() merges stderr into stdout after the command; the group keeps them apart.
    auto r = run_command("{ " + shell_quote(FRAGTUNED_BIN) + " " + args + " 2>" +
                         shell_quote(err_file.string()) + "; }");
    return {r.exit_code, r.output, read_text(err_file)};
}

void write_file(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

TEST(ConfigCli, CheckConfigAcceptsAGoodFile) {
    TempDir tmp;
    const fs::path cfg = tmp.path() / "candidate.toml";
    write_file(cfg, "[daemon]\ntick = \"5s\"\n[tunables.min_free_kbytes]\nmax = \"2%\"\n");
    auto r = run_fragtuned("--check-config --config " + shell_quote(cfg.string()), tmp);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.out, "configuration valid: " + cfg.string() + "\n");
}

TEST(ConfigCli, CheckConfigAcceptsTheShippedFile) {
    TempDir tmp;
    const std::string shipped = std::string(FRAGTUNE_SOURCE_DIR) + "/config/fragtune.toml";
    auto r = run_fragtuned("--check-config --config " + shell_quote(shipped), tmp);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
}

TEST(ConfigCli, CheckConfigReportsEveryErrorAndExitsOne) {
    TempDir tmp;
    const fs::path cfg = tmp.path() / "fragtune.toml";
    write_file(cfg, "[daemon]\ntick = 5\nmode = \"activ\"\n[tunables.swappiness]\nmin = 150\n");
    write_file(tmp.path() / "fragtune.toml.d/50-role.toml", "[tunables.swappiness]\nmax = 100\n");
    auto r = run_fragtuned("--check-config --config " + shell_quote(cfg.string()), tmp);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    const std::string c = cfg.string();
    EXPECT_EQ(
        r.err,
        c + ":2:8: daemon.tick: expected a duration like \"5s\" or \"30min\", got integer 5\n" + c +
            ":3:8: daemon.mode: expected one of \"active\", \"observe\", \"paused\", got string "
            "\"activ\"; did you mean \"active\"?\n" +
            c + ".d/50-role.toml:2:7: tunables.swappiness.max: min 150 is above max 100\n" +
            "fragtuned: configuration invalid: 3 errors\n");
}

TEST(ConfigCli, RelativeConfigPathIsFromTheWorkingDirectory) {
    TempDir tmp;
    write_file(tmp.path() / "sub/f.toml", "[daemon]\nlog_level = \"loud\"\n");
    auto r = run_command("cd " + shell_quote(tmp.path().string()) + " && " +
                         shell_quote(FRAGTUNED_BIN) + " --check-config --config sub/../sub/f.toml");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find((tmp.path() / "sub/f.toml").string() + ":2:13: daemon.log_level:"),
              std::string::npos)
        << r.output;
}

TEST(ConfigCli, MissingFileMeansDefaultsAndIsValid) {
    TempDir tmp;
    auto r = run_fragtuned(
        "--check-config --config " + shell_quote((tmp.path() / "absent.toml").string()), tmp);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "configuration valid: no file found, built-in defaults\n");
}

TEST(ConfigCli, DumpConfigShowsMergedValuesWithOrigins) {
    TempDir tmp;
    const fs::path cfg = tmp.path() / "fragtune.toml";
    write_file(cfg, "[daemon]\ntick = \"5s\"\n");
    write_file(tmp.path() / "fragtune.toml.d/10-a.toml", "[daemon]\n\ntick = \"7s\"\n");
    write_file(tmp.path() / "fragtune.toml.d/20-b.toml",
               "[tunables.swappiness]\ncooldown = \"1s\"\n");
    auto r = run_fragtuned("--dump-config --config " + shell_quote(cfg.string()), tmp);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("tick = \"7s\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("# from " + cfg.string() + ".d/10-a.toml:3\n"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("mode = \"active\""), std::string::npos);
    EXPECT_NE(r.out.find("# default\n"), std::string::npos);
    // Warnings do not fail the dump; they go to stderr.
    EXPECT_EQ(r.err, cfg.string() +
                         ".d/20-b.toml:2:12: tunables.swappiness.cooldown: warning: cooldown 1s is "
                         "shorter than daemon.tick 7s: the knob can change at most once per tick "
                         "anyway\n");
    // The dump is itself a valid configuration with the same values.
    write_file(tmp.path() / "dump/fragtune.toml", r.out);
    auto again = run_fragtuned(
        "--dump-config --config " + shell_quote((tmp.path() / "dump/fragtune.toml").string()), tmp);
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_NE(again.out.find("tick = \"7s\""), std::string::npos);
}

TEST(ConfigCli, DumpConfigOfAnInvalidFileFails) {
    TempDir tmp;
    const fs::path cfg = tmp.path() / "bad.toml";
    write_file(cfg, "[daemon\n");
    auto r = run_fragtuned("--dump-config --config " + shell_quote(cfg.string()), tmp);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, cfg.string() +
                         ":1:8: invalid TOML: Error while parsing table header: expected ']', saw "
                         "'\\n'\nfragtuned: configuration invalid: 1 error\n");
}

TEST(ConfigCli, ManPageOfTheFileIsLintClean) {
    if (!have_program("mandoc")) GTEST_SKIP() << "mandoc is not installed";
    const std::string page = std::string(FRAGTUNE_SOURCE_DIR) + "/man/fragtune.toml.5";
    auto r = run_command("mandoc -Tlint -W warning " + shell_quote(page));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "");
}

}  // namespace
