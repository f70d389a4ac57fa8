#include "fragtune/configuration/config_file.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "config_test_util.hpp"

namespace fs = std::filesystem;
using namespace fragtune;
using fragtune::test::describe_all;
using fragtune::test::fingerprint;

namespace {

// ---- good files ---------------------------------------------------------------------------------

TEST(ConfigFile, EmptyAndCommentOnlyFilesGiveDefaults) {
    for (const char* text :
         {"", "\n\n", "# nothing here\n   # nor here\n", "[daemon]\n[signals]\n"}) {
        auto r = check_config_text(text, "f.toml");
        EXPECT_TRUE(r.ok());
        EXPECT_TRUE(r.diagnostics.empty()) << text;
        EXPECT_EQ(fingerprint(r.loaded.config), fingerprint(Config{})) << text;
        EXPECT_TRUE(r.loaded.origins.empty());
    }
}

TEST(ConfigFile, HumanUnitsAndPlainIntegers) {
    auto r = check_config_text(R"([daemon]
tick = "1s 500ms"
persist_settle = "0"
mode = "observe"
on_exit = "restore"
history_size = 1024

[signals]
psi_source = "/sys/fs/cgroup/system.slice/db.service"
target_orders = [0, 4, 15]
zoneinfo_every = 30

[tunables.min_free_kbytes]
min = 65536
max = "1.5G"
max_step = "32M"
decay_step = 8192

[tunables.swappiness]
min = 10
max = 100
baseline = 60
cooldown = "100ms"

[safety]
margin = "128MiB"
max_min_free_lowmem_percent = 3
)",
                               "f.toml");
    ASSERT_TRUE(r.ok()) << testing::PrintToString(describe_all(r));
    const Config& c = r.loaded.config;
    EXPECT_EQ(c.daemon.tick_usec, 1'500'000u);
    EXPECT_EQ(c.daemon.persist_settle_usec, 0u);
    EXPECT_EQ(c.daemon.mode, Mode::observe);
    EXPECT_EQ(c.daemon.on_exit, OnExit::restore);
    EXPECT_EQ(c.daemon.history_size, 1024u);
    EXPECT_EQ(c.signals.psi_source, "/sys/fs/cgroup/system.slice/db.service");
    EXPECT_EQ(c.signals.target_orders, (std::vector<int>{0, 4, 15}));
    EXPECT_EQ(c.signals.zoneinfo_every, 30u);
    EXPECT_EQ(c.knob(Knob::min_free_kbytes).min, 65536);
    EXPECT_EQ(c.knob(Knob::min_free_kbytes).max, 1572864);
    EXPECT_EQ(c.knob(Knob::min_free_kbytes).max_step, 32768);
    EXPECT_EQ(c.min_free.decay_step_kib, 8192);
    EXPECT_EQ(c.knob(Knob::swappiness).baseline, 60);
    EXPECT_EQ(c.knob(Knob::swappiness).cooldown_usec, 100'000u);
    EXPECT_EQ(c.safety.margin_kib, 131072u);
    EXPECT_DOUBLE_EQ(c.safety.max_min_free_lowmem_percent, 3.0);
    // cooldown 100ms < tick 90s is legal but pointless: a warning, not an error.
    ASSERT_EQ(r.loaded.warnings.size(), 1u);
    EXPECT_EQ(r.loaded.warnings[0].describe(),
              "f.toml:23:12: tunables.swappiness.cooldown: warning: cooldown 100ms is shorter than "
              "daemon.tick 1500ms: the knob can change at most once per tick anyway");
    EXPECT_EQ(r.loaded.origin("daemon.tick").describe(), "f.toml:2");
    EXPECT_EQ(r.loaded.origin("daemon.state_path").describe(), "default");
}

TEST(ConfigFile, PercentOfLowmemIsKeptAsAPercentage) {
    auto r =
        check_config_text("[tunables.min_free_kbytes]\nmin = \"0.5%\"\nmax = \"4%\"\n", "f.toml");
    ASSERT_TRUE(r.ok()) << testing::PrintToString(describe_all(r));
    const KnobConfig& k = r.loaded.config.knob(Knob::min_free_kbytes);
    EXPECT_FALSE(k.min.has_value());
    EXPECT_FALSE(k.max.has_value());
    EXPECT_EQ(k.min_lowmem_percent, 0.5);
    EXPECT_EQ(k.max_lowmem_percent, 4.0);
    EXPECT_EQ(resolve_lowmem_percent_kib(4.0, 16'000'000), 640'000);
}

TEST(ConfigFile, DottedKeysAndInlineTablesAreTheSameKeys) {
    auto r = check_config_text(
        "daemon = { tick = \"5s\" }\ntunables.swappiness.max = 150\n"
        "[tunables.compaction_proactiveness]\nenabled = false\n",
        "f.toml");
    ASSERT_TRUE(r.ok()) << testing::PrintToString(describe_all(r));
    EXPECT_EQ(r.loaded.config.daemon.tick_usec, 5'000'000u);
    EXPECT_EQ(r.loaded.config.knob(Knob::swappiness).max, 150);
    EXPECT_FALSE(r.loaded.config.knob(Knob::compaction_proactiveness).enabled);
    EXPECT_EQ(r.loaded.origin("tunables.swappiness.max").describe(), "f.toml:2");
}

TEST(ConfigFile, UnicodeStringsAreKeptVerbatim) {
    auto r =
        check_config_text("[daemon]\nstate_path = \"/var/lib/fragtune/état-ü.toml\"\n", "f.toml");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.loaded.config.daemon.state_path, "/var/lib/fragtune/état-ü.toml");
}

// ---- bad files: one table, exact messages and positions -----------------------------------------

struct BadCase {
    const char* name;
    const char* text;
    std::vector<std::string> diagnostics;
};

const BadCase kBadCases[] = {
    {"unknown key with suggestion",
     "[daemon]\ntik = \"2s\"\n",
     {"f.toml:2:1: daemon.tik: unknown key \"tik\" in [daemon]; did you mean \"tick\"?"}},
    {"field name from config.hpp",
     "[daemon]\ntick_usec = 2000000\n",
     {"f.toml:2:1: daemon.tick_usec: unknown key \"tick_usec\" in [daemon]; did you mean "
      "\"tick\"?"}},
    {"field name whose prefix is two keys",
     "[daemon]\ntick_max_usec = 2000000\n",
     {"f.toml:2:1: daemon.tick_max_usec: unknown key \"tick_max_usec\" in [daemon]; did you mean "
      "\"tick_max\"?"}},
    {"key in the wrong section",
     "[signals]\ntick = \"2s\"\n",
     {"f.toml:2:1: signals.tick: unknown key \"tick\" in [signals]; it belongs in [daemon]"}},
    {"policy key in the wrong tunable",
     "[tunables.swappiness]\nraise_step = 1\n",
     {"f.toml:2:1: tunables.swappiness.raise_step: unknown key \"raise_step\" in "
      "[tunables.swappiness]; it belongs in [tunables.watermark_scale_factor], "
      "[tunables.compaction_proactiveness] or [tunables.vfs_cache_pressure]"}},
    {"top-level key",
     "tick = \"2s\"\n",
     {"f.toml:1:1: tick: unknown section [tick]; \"tick\" is a key: it belongs in [daemon]"}},
    {"unknown section with suggestion",
     "[deamon]\ntick = \"2s\"\n",
     {"f.toml:1:2: deamon: unknown section [deamon]; did you mean [daemon]?"}},
    {"unknown tunable with suggestion",
     "[tunables.min_free_kbyte]\nmax = 1\n",
     {"f.toml:1:11: tunables.min_free_kbyte: unknown tunable [tunables.min_free_kbyte]; did you "
      "mean [tunables.min_free_kbytes]?"}},
    {"sysctl name as tunable",
     "[tunables.\"vm.swappiness\"]\nmax = 100\n",
     {"f.toml:1:11: tunables.\"vm.swappiness\": unknown tunable [tunables.\"vm.swappiness\"]; did "
      "you "
      "mean [tunables.swappiness]?"}},
    {"unknown tunable without suggestion",
     "[tunables.dirty_ratio]\n",
     {"f.toml:1:11: tunables.dirty_ratio: unknown tunable [tunables.dirty_ratio]; fragtune tunes "
      "min_free_kbytes, watermark_scale_factor, compaction_proactiveness, vfs_cache_pressure, "
      "swappiness, watermark_boost_factor"}},
    {"section that is not a table",
     "daemon = 5\n",
     {"f.toml:1:10: daemon: expected a table [daemon], got integer 5"}},
    {"tunable that is not a table",
     "[tunables]\nswappiness = 60\n",
     {"f.toml:2:14: tunables.swappiness: expected a table [tunables.swappiness], got integer 60"}},
    {"duration as bare integer",
     "[daemon]\ntick = 5\n",
     {"f.toml:2:8: daemon.tick: expected a duration like \"5s\" or \"30min\", got integer 5"}},
    {"duration with unknown unit",
     "[daemon]\ntick = \"5 parsecs\"\n",
     {"f.toml:2:8: daemon.tick: invalid duration '5 parsecs': unknown unit 'parsecs' (use us, ms, "
      "s, "
      "min, h or d)"}},
    {"duration below range",
     "[daemon]\ntick = \"50ms\"\n",
     {"f.toml:2:8: daemon.tick: 50ms is out of range: 100ms..10min (or 0 for the adaptive "
      "cadence)"}},
    {"duration as a date",
     "[daemon]\ntick = 1979-05-27\n",
     {"f.toml:2:8: daemon.tick: expected a duration like \"5s\" or \"30min\", got a date"}},
    {"bad mode, on_exit and log_level",
     "[daemon]\nmode = \"activ\"\non_exit = \"restor\"\nlog_level = \"verbose\"\n",
     {"f.toml:2:8: daemon.mode: expected one of \"active\", \"observe\", \"paused\", got string "
      "\"activ\"; did you mean \"active\"?",
      "f.toml:3:11: daemon.on_exit: expected one of \"keep\", \"restore\", got string \"restor\"; "
      "did "
      "you mean \"restore\"?",
      "f.toml:4:13: daemon.log_level: expected one of \"trace\", \"debug\", \"info\", \"warn\", "
      "\"error\", got string \"verbose\""}},
    {"boolean as string",
     "[daemon]\npersist = \"yes\"\n",
     {"f.toml:2:11: daemon.persist: expected true or false, got string \"yes\""}},
    {"integer out of range and above uint32",
     "[daemon]\nhistory_size = 0\n[tunables.swappiness]\nmax_changes_per_hour = 4294967297\n",
     {"f.toml:2:16: daemon.history_size: 0 is out of range: 1..65536",
      "f.toml:4:24: tunables.swappiness.max_changes_per_hour: 4294967297 is out of range: "
      "1..3600"}},
    {"float for an integer",
     "[daemon]\nhistory_size = 1.5\n",
     {"f.toml:2:16: daemon.history_size: expected an integer, got floating-point 1.5"}},
    {"zoneinfo_every out of range",
     "[signals]\nzoneinfo_every = 0\n",
     {"f.toml:2:18: signals.zoneinfo_every: 0 is out of range: 1..1000"}},
    {"empty target_orders",
     "[signals]\ntarget_orders = []\n",
     {"f.toml:2:17: signals.target_orders: expected at least one page order (0..15), got an empty "
      "array"}},
    {"order out of range, at the element",
     "[signals]\ntarget_orders = [3, 16]\n",
     {"f.toml:2:21: signals.target_orders: page order 16 is out of range: 0..15"}},
    {"negative order",
     "[signals]\ntarget_orders = [-1]\n",
     {"f.toml:2:18: signals.target_orders: page order -1 is out of range: 0..15"}},
    {"duplicate order",
     "[signals]\ntarget_orders = [3, 3]\n",
     {"f.toml:2:21: signals.target_orders: page order 3 is listed twice"}},
    {"order as string",
     "[signals]\ntarget_orders = [\"3\"]\n",
     {"f.toml:2:18: signals.target_orders: expected page orders as integers, got string \"3\""}},
    {"orders not an array",
     "[signals]\ntarget_orders = 3\n",
     {"f.toml:2:17: signals.target_orders: expected an array of page orders like [3, 9], got "
      "integer 3"}},
    {"psi_source relative",
     "[signals]\npsi_source = \"workload.service\"\n",
     {"f.toml:2:14: signals.psi_source: expected \"system\" or an absolute cgroup v2 directory "
      "like "
      "\"/sys/fs/cgroup/system.slice/app.service\", got string \"workload.service\""}},
    {"psi_source escaping with ..",
     "[signals]\npsi_source = \"/sys/fs/cgroup/../../etc\"\n",
     {"f.toml:2:14: signals.psi_source: expected \"system\" or an absolute cgroup v2 directory "
      "like "
      "\"/sys/fs/cgroup/system.slice/app.service\", got string \"/sys/fs/cgroup/../../etc\""}},
    {"negative sizes",
     "[tunables.min_free_kbytes]\nmax = \"-5M\"\nmin = -5\n",
     {"f.toml:2:7: tunables.min_free_kbytes.max: invalid size '-5M': a sign is not allowed",
      "f.toml:3:7: tunables.min_free_kbytes.min: -5 is out of range: 0..2147483647 KiB (the "
      "kernel's range for vm.min_free_kbytes)"}},
    {"huge integer is a TOML error",
     "[tunables.min_free_kbytes]\nmax = 99999999999999999999\n",
     {"f.toml:2:27: invalid TOML: Error while parsing decimal integer: '99999999999999999999' is "
      "not representable in 64 bits"}},
    {"huge size string",
     "[tunables.min_free_kbytes]\nmax = \"99999999999999999999G\"\n",
     {"f.toml:2:7: tunables.min_free_kbytes.max: invalid size '99999999999999999999G': expected a "
      "number"}},
    {"size above the kernel's range",
     "[tunables.min_free_kbytes]\nmax = \"3T\"\n",
     {"f.toml:2:7: tunables.min_free_kbytes.max: \"3T\" (3221225472 KiB) is out of range: "
      "0..2147483647 KiB (the kernel's range for vm.min_free_kbytes)"}},
    {"size that is not whole KiB",
     "[tunables.min_free_kbytes]\nmax_step = \"1.0001K\"\n",
     {"f.toml:2:12: tunables.min_free_kbytes.max_step: invalid size '1.0001K': not a whole number "
      "of KiB, or too large"}},
    {"bad percentages",
     "[tunables.min_free_kbytes]\nmax = \"60%\"\nmin = \"5 %\"\nbaseline = \"-1%\"\n",
     {"f.toml:2:7: tunables.min_free_kbytes.max: 60% is out of range: 0%..50% of managed lowmem",
      "f.toml:3:7: tunables.min_free_kbytes.min: invalid percentage \"5 %\": expected a number "
      "from "
      "0 to 50 followed by %",
      "f.toml:4:12: tunables.min_free_kbytes.baseline: invalid percentage \"-1%\": expected a "
      "number "
      "from 0 to 50 followed by %"}},
    {"percentage where only sizes go",
     "[safety]\nmargin = \"5%\"\n",
     {"f.toml:2:10: safety.margin: a percentage is accepted only for min, max and baseline of "
      "[tunables.min_free_kbytes], got \"5%\""}},
    {"bare integer where the unit is not obvious",
     "[safety]\nmargin = 65536\n",
     {"f.toml:2:10: safety.margin: expected a size like \"64M\" or \"1G\", got integer 65536"}},
    {"integer knob given a size",
     "[tunables.swappiness]\nmax = \"100M\"\n",
     {"f.toml:2:7: tunables.swappiness.max: expected an integer, got string \"100M\""}},
    {"value above the kernel's range",
     "[tunables.compaction_proactiveness]\nmax = 101\n",
     {"f.toml:2:7: tunables.compaction_proactiveness.max: 101 is out of range: 0..100 (the "
      "kernel's "
      "range for vm.compaction_proactiveness)"}},
    {"exclusive lower bound",
     "[tunables.min_free_kbytes]\nraise_factor = 1.0\n",
     {"f.toml:2:16: tunables.min_free_kbytes.raise_factor: 1 is out of range: above 1 and at most "
      "10"}},
    {"nan and inf",
     "[tunables.min_free_kbytes]\nraise_factor = nan\nkswapd_low_quick_per_sec = inf\n",
     {"f.toml:2:16: tunables.min_free_kbytes.raise_factor: expected a finite number, got nan",
      "f.toml:3:28: tunables.min_free_kbytes.kswapd_low_quick_per_sec: expected a finite number, "
      "got "
      "inf"}},
    {"paths",
     "[daemon]\nstate_path = \"state.toml\"\npersist_path = \"/etc/sysctl.d/fragtune\"\n[metrics]\n"
     "textfile_path = \"/tmp/x.txt\"\n",
     {"f.toml:2:14: daemon.state_path: expected an absolute path like "
      "\"/var/lib/fragtune/state.toml\" without \"..\", got \"state.toml\"",
      "f.toml:3:16: daemon.persist_path: \"/etc/sysctl.d/fragtune\" must end in \".conf\": "
      "systemd-sysctl reads only *.conf files",
      "f.toml:5:17: metrics.textfile_path: \"/tmp/x.txt\" must end in \".prom\": node_exporter's "
      "textfile collector reads only *.prom files"}},
    {"min above max",
     "[tunables.swappiness]\nmin = 150\nmax = 100\n",
     {"f.toml:3:7: tunables.swappiness.max: min 150 is above max 100"}},
    {"max below the default min",
     "[tunables.vfs_cache_pressure]\nmax = 30\n",
     {"f.toml:2:7: tunables.vfs_cache_pressure.max: min 50 (the default min; set min too) is above "
      "max 30"}},
    {"baseline outside the bounds",
     "[tunables.swappiness]\nbaseline = 150\nmin = 10\nmax = 100\n",
     // Placed at the key set last: max made the baseline wrong.
     {"f.toml:4:7: tunables.swappiness.max: baseline 150 is above max 100"}},
    {"baseline below min, sizes",
     "[tunables.min_free_kbytes]\nmin = \"128M\"\nbaseline = \"64M\"\n",
     {"f.toml:3:12: tunables.min_free_kbytes.baseline: baseline 65536 KiB is below min 131072 "
      "KiB"}},
    {"percent min above percent max",
     "[tunables.min_free_kbytes]\nmax = \"1%\"\nmin = \"2%\"\n",
     {"f.toml:3:7: tunables.min_free_kbytes.min: min 2% is above max 1% of managed lowmem"}},
    {"percent min above the safety cap",
     "[tunables.min_free_kbytes]\nmin = \"10%\"\n",
     {"f.toml:2:7: tunables.min_free_kbytes.min: min 10% of managed lowmem is above "
      "safety.max_min_free_lowmem_percent 5%: it can never be honoured"}},
    {"safety cap lowered below a percent baseline",
     "[tunables.min_free_kbytes]\nbaseline = \"3%\"\n[safety]\nmax_min_free_lowmem_percent = 2\n",
     {"f.toml:4:31: safety.max_min_free_lowmem_percent: baseline 3% of managed lowmem is above "
      "safety.max_min_free_lowmem_percent 2%: it can never be reached"}},
    {"relax threshold above raise threshold",
     "[tunables.watermark_scale_factor]\npsi_some_relax_percent = 2.0\n",
     {"f.toml:2:26: tunables.watermark_scale_factor.psi_some_relax_percent: psi_some_relax_percent "
      "2 "
      "must be below psi_some_raise_percent 1: the gap between them is the hysteresis that stops "
      "the knob from flapping"}},
    {"relax equal to raise, placed at the later key",
     "[tunables.compaction_proactiveness]\nunusable_relax_permille = 700\nunusable_raise_permille "
     "= "
     "700\n",
     {"f.toml:3:27: tunables.compaction_proactiveness.unusable_raise_permille: "
      "unusable_relax_permille 700 must be below unusable_raise_permille 700: the gap between them "
      "is the hysteresis that stops the knob from flapping"}},
    {"slab shares inverted",
     "[tunables.vfs_cache_pressure]\nslab_raise_share = 0.05\n",
     {"f.toml:2:20: tunables.vfs_cache_pressure.slab_raise_share: slab_relax_share 0.1 must be "
      "below "
      "slab_raise_share 0.05: the gap between them is the hysteresis that stops the knob from "
      "flapping"}},
    {"unicode key and value",
     "[daemon]\n\"tïck\" = \"2s\"\nlog_level = \"ïnfo\"\n",
     {"f.toml:2:1: daemon.\"tïck\": unknown key \"tïck\" in [daemon]; did you mean \"tick\"?",
      "f.toml:3:13: daemon.log_level: expected one of \"trace\", \"debug\", \"info\", \"warn\", "
      "\"error\", got string \"ïnfo\"; did you mean \"info\"?"}},
    {"control characters in a key are escaped",
     "[daemon]\n\"a\\nb\" = 1\n",
     {"f.toml:2:1: daemon.\"a\\nb\": unknown key \"a\\nb\" in [daemon]"}},
    {"syntax error",
     "[daemon\ntick = \"2s\"\n",
     {"f.toml:1:8: invalid TOML: Error while parsing table header: expected ']', saw '\\n'"}},
    {"duplicate key is a TOML error",
     "[daemon]\ntick = \"2s\"\ntick = \"3s\"\n",
     {"f.toml:3:8: invalid TOML: Error while parsing key-value pair: cannot redefine existing "
      "string "
      "'tick'"}},
    {"invalid UTF-8",
     "[daemon]\nstate_path = \"/x\xff\"\n",
     {"f.toml:2:16: invalid TOML: Encountered invalid utf-8 sequence"}},
    {"several errors at once, in file order",
     "[daemon]\ntick = 5\nmode = \"fast\"\n[signals]\ntarget_orders = []\n[tunables.swappiness]\n"
     "min = 300\nbogus = true\n",
     {"f.toml:2:8: daemon.tick: expected a duration like \"5s\" or \"30min\", got integer 5",
      "f.toml:3:8: daemon.mode: expected one of \"active\", \"observe\", \"paused\", got string "
      "\"fast\"",
      "f.toml:5:17: signals.target_orders: expected at least one page order (0..15), got an empty "
      "array",
      "f.toml:7:7: tunables.swappiness.min: 300 is out of range: 0..200 (the kernel's range for "
      "vm.swappiness)",
      "f.toml:8:1: tunables.swappiness.bogus: unknown key \"bogus\" in [tunables.swappiness]"}},
};

void PrintTo(const BadCase& c, std::ostream* os) {
    *os << c.name;
}

class ConfigBadFile : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigBadFile, ReportsExactlyTheseDiagnostics) {
    const BadCase& c = GetParam();
    auto r = check_config_text(c.text, "f.toml");
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(describe_all(r), c.diagnostics) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Table, ConfigBadFile, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& param_info) {
                             std::string n = param_info.param.name;
                             for (auto& ch : n)
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return n;
                         });

TEST(ConfigFile, WarningsDoNotFailTheLoad) {
    // A fixed tick: the adaptive default (0) has no tick to be shorter than.
    auto r = check_config_text(
        "[daemon]\ntick = \"2s\"\n"
        "[tunables.compaction_proactiveness]\nkick_interval = \"1s\"\n"
        "[tunables.min_free_kbytes]\nmax = \"8%\"\ndecay_interval = \"1s\"\n",
        "f.toml");
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(
        describe_all(r),
        (std::vector<std::string>{
            "f.toml:4:17: tunables.compaction_proactiveness.kick_interval: warning: "
            "kick_interval 1s is shorter than daemon.tick 2s: kcompactd is woken at most once "
            "per tick anyway",
            "f.toml:6:7: tunables.min_free_kbytes.max: warning: max 8% of managed lowmem is "
            "above safety.max_min_free_lowmem_percent 5%: the safety cap wins",
            "f.toml:7:18: tunables.min_free_kbytes.decay_interval: warning: decay_interval 1s "
            "is shorter than daemon.tick 2s: decay steps happen at most once per tick"}));
    EXPECT_EQ(r.loaded.warnings.size(), 3u);
    // A disabled knob's intervals do not matter.
    auto off =
        check_config_text("[tunables.swappiness]\nenabled = false\ncooldown = \"1s\"\n", "f.toml");
    EXPECT_TRUE(off.diagnostics.empty());
}

// ---- files on disk: main file and drop-ins ------------------------------------------------------

class ConfigFiles : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/fragtune-cfg-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
        fs::create_directories(root_ / "etc/fragtune");
    }
    void TearDown() override { fs::remove_all(root_); }
    void write(const std::string& path, const std::string& text) {
        fs::create_directories((root_ / path.substr(1)).parent_path());
        std::ofstream(root_ / path.substr(1)) << text;
    }
    ConfigReport check() { return check_config(KernelFs(root_), "/etc/fragtune/fragtune.toml"); }
    fs::path root_;
};

TEST_F(ConfigFiles, NoFilesAtAllMeansBuiltInDefaults) {
    auto r = check();
    EXPECT_TRUE(r.diagnostics.empty());
    EXPECT_TRUE(r.loaded.files.empty());
    EXPECT_EQ(fingerprint(r.loaded.config), fingerprint(Config{}));
    auto loaded = load_config(KernelFs(root_), "/etc/fragtune/fragtune.toml");
    ASSERT_TRUE(loaded.ok());
    EXPECT_TRUE(loaded->files.empty());
}

TEST_F(ConfigFiles, DropInsApplyInLexicalOrderAndLaterValuesWin) {
    write("/etc/fragtune/fragtune.toml", "[daemon]\ntick = \"5s\"\nhistory_size = 10\n");
    write("/etc/fragtune/fragtune.toml.d/20-role.toml", "[daemon]\n\ntick = \"20s\"\n");
    write("/etc/fragtune/fragtune.toml.d/10-base.toml",
          "[daemon]\ntick = \"10s\"\nlog_level = \"debug\"\n");
    write("/etc/fragtune/fragtune.toml.d/README", "not toml at all [[[");
    write("/etc/fragtune/fragtune.toml.d/.20-role.toml.swp", "garbage");
    write("/etc/fragtune/fragtune.toml.d/30-disabled.toml.bak", "[daemon]\ntick = \"1h\"\n");
    auto r = check();
    ASSERT_TRUE(r.ok()) << testing::PrintToString(describe_all(r));
    EXPECT_EQ(r.loaded.files,
              (std::vector<std::string>{"/etc/fragtune/fragtune.toml",
                                        "/etc/fragtune/fragtune.toml.d/10-base.toml",
                                        "/etc/fragtune/fragtune.toml.d/20-role.toml"}));
    EXPECT_EQ(r.loaded.config.daemon.tick_usec, 20'000'000u);
    EXPECT_EQ(r.loaded.config.daemon.log_level, "debug");
    EXPECT_EQ(r.loaded.config.daemon.history_size, 10u);
    EXPECT_EQ(r.loaded.origin("daemon.tick").describe(),
              "/etc/fragtune/fragtune.toml.d/20-role.toml:3");
    EXPECT_EQ(r.loaded.origin("daemon.log_level").describe(),
              "/etc/fragtune/fragtune.toml.d/10-base.toml:3");
    EXPECT_EQ(r.loaded.origin("daemon.history_size").describe(), "/etc/fragtune/fragtune.toml:3");
}

TEST_F(ConfigFiles, DropInsWorkWithoutAMainFile) {
    write("/etc/fragtune/fragtune.toml.d/50-db.toml", "[tunables.swappiness]\nmax = 10\n");
    auto r = check();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.loaded.files,
              (std::vector<std::string>{"/etc/fragtune/fragtune.toml.d/50-db.toml"}));
    EXPECT_EQ(r.loaded.config.knob(Knob::swappiness).max, 10);
}

TEST_F(ConfigFiles, ALaterPercentageReplacesAnAbsoluteValueAndBack) {
    write("/etc/fragtune/fragtune.toml",
          "[tunables.min_free_kbytes]\nmax = \"1G\"\nmin = \"1%\"\n");
    write("/etc/fragtune/fragtune.toml.d/a.toml", "[tunables.min_free_kbytes]\nmax = \"4%\"\n");
    write("/etc/fragtune/fragtune.toml.d/b.toml", "[tunables.min_free_kbytes]\nmin = \"64M\"\n");
    auto r = check();
    ASSERT_TRUE(r.ok()) << testing::PrintToString(describe_all(r));
    const KnobConfig& k = r.loaded.config.knob(Knob::min_free_kbytes);
    EXPECT_FALSE(k.max.has_value());
    EXPECT_EQ(k.max_lowmem_percent, 4.0);
    EXPECT_EQ(k.min, 65536);
    EXPECT_FALSE(k.min_lowmem_percent.has_value());
}

TEST_F(ConfigFiles, ErrorsFromAllFilesAreReportedTogetherInFileOrder) {
    write("/etc/fragtune/fragtune.toml",
          "[daemon]\nmode = \"turbo\"\n[tunables.swappiness]\nmin = 150\n");
    write("/etc/fragtune/fragtune.toml.d/10-a.toml", "[daemon\n");
    write("/etc/fragtune/fragtune.toml.d/20-b.toml", "[tunables.swappiness]\nmax = 100\ntik = 1\n");
    auto r = check();
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(
        describe_all(r),
        (std::vector<std::string>{
            "/etc/fragtune/fragtune.toml:2:8: daemon.mode: expected one of \"active\", "
            "\"observe\", \"paused\", got string \"turbo\"",
            "/etc/fragtune/fragtune.toml.d/10-a.toml:1:8: invalid TOML: Error while parsing "
            "table header: expected ']', saw '\\n'",
            // The contradiction appears only after merging; it is placed at the later key.
            "/etc/fragtune/fragtune.toml.d/20-b.toml:2:7: tunables.swappiness.max: min 150 is "
            "above max 100",
            "/etc/fragtune/fragtune.toml.d/20-b.toml:3:1: tunables.swappiness.tik: unknown key "
            "\"tik\" in [tunables.swappiness]"}));
    auto loaded = load_config(KernelFs(root_), "/etc/fragtune/fragtune.toml");
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(
        loaded.error().message,
        "/etc/fragtune/fragtune.toml:2:8: daemon.mode: expected one of \"active\", "
        "\"observe\", \"paused\", got string \"turbo\"\n"
        "/etc/fragtune/fragtune.toml.d/10-a.toml:1:8: invalid TOML: Error while parsing table "
        "header: expected ']', saw '\\n'\n"
        "/etc/fragtune/fragtune.toml.d/20-b.toml:2:7: tunables.swappiness.max: min 150 is "
        "above max 100\n"
        "/etc/fragtune/fragtune.toml.d/20-b.toml:3:1: tunables.swappiness.tik: unknown key "
        "\"tik\" in [tunables.swappiness]");
}

TEST_F(ConfigFiles, UnreadableFilesAreErrorsNotDefaults) {
    fs::create_directories(root_ /
                           "etc/fragtune/fragtune.toml");  // a directory where the file goes
    write("/etc/fragtune/fragtune.toml.d/ok.toml", "[daemon]\ntick = \"3s\"\n");
    auto r = check();
    EXPECT_FALSE(r.ok());
    ASSERT_EQ(r.diagnostics.size(), 1u);
    EXPECT_EQ(r.diagnostics[0].file, "/etc/fragtune/fragtune.toml");
    EXPECT_EQ(r.diagnostics[0].line, 0u);
    EXPECT_EQ(r.diagnostics[0].describe().rfind(
                  "/etc/fragtune/fragtune.toml: cannot read the configuration: ", 0),
              0u)
        << r.diagnostics[0].describe();
    EXPECT_EQ(r.loaded.config.daemon.tick_usec, 3'000'000u);  // the rest is still checked
}

TEST_F(ConfigFiles, DropInPathThatIsAFileIsAnError) {
    write("/etc/fragtune/fragtune.toml.d", "oops");
    auto r = check();
    EXPECT_FALSE(r.ok());
    ASSERT_EQ(r.diagnostics.size(), 1u);
    EXPECT_EQ(r.diagnostics[0].describe().rfind(
                  "/etc/fragtune/fragtune.toml.d: cannot list the drop-in directory", 0),
              0u)
        << r.diagnostics[0].describe();
}

TEST_F(ConfigFiles, RelativeMainPathIsRefusedByTheKernelFs) {
    auto r = check_config(KernelFs(root_), "etc/fragtune/fragtune.toml");
    EXPECT_FALSE(r.ok());
}

}  // namespace
