// fragtunectl's output from literal data: the text an operator reads and the JSON scripts parse.
#include "format.hpp"

#include <gtest/gtest.h>

#include "fragtune/util/units.hpp"

using fragtune::format_duration_usec;
using namespace fragtune::ctl;

namespace {

// 2024-05-01 12:00:00 UTC
constexpr uint64_t kMay1Noon = 1714564800ULL * 1'000'000;

StatusView sample_status() {
    StatusView st;
    st.version = "0.1.0";
    st.tick_usec = 2'000'000;
    st.mode = "active";
    st.summary = "active: 1 change in the last hour, 1 knob pinned";
    st.tunables = {
        {"min_free_kbytes", 101376, 67584, 67584, 67584, 1048576, "tuning", "atomic-failures"},
        {"watermark_scale_factor", 10, 10, 10, 10, 300, "tuning", ""},
        {"compaction_proactiveness", std::nullopt, 0, std::nullopt, 0, 0, "unsupported",
         "kernel 5.4 lacks vm.compaction_proactiveness (5.9+)"},
        {"vfs_cache_pressure", 100, 100, 100, 50, 500, "tuning", ""},
        {"swappiness", 10, 60, 60, 0, 200, "pinned", "value changed to 10 by someone else"},
    };
    st.signals = {{"psi_some_avg10_percent", 1.25},
                  {"min_headroom_kib", -512},
                  {"fragmentation_score", 34},
                  {"some_unlisted_signal", 7.5}};
    st.history = {
        {kMay1Noon, "min_free_kbytes", "raise", 67584, 101376, "atomic-failures",
         "3 atomic order-1 failures in 2.0 s", true},
        {kMay1Noon + 4'000'000, "swappiness", "pin", 60, 10, "external-write",
         "value changed to 10 by someone else", false},
    };
    st.conflicts = {{"swappiness", "/etc/sysctl.d/99-local.conf", 3, 10, true}};
    return st;
}

FormatOptions plain_utc() {
    FormatOptions o;
    o.utc = true;
    return o;
}

}  // namespace

TEST(CtlFormat, ColourOnlyOnATerminalWithoutNoColor) {
    EXPECT_TRUE(want_color(true, nullptr));
    EXPECT_TRUE(want_color(true, ""));  // no-color.org: only a non-empty NO_COLOR disables
    EXPECT_FALSE(want_color(true, "1"));
    EXPECT_FALSE(want_color(false, nullptr));
    EXPECT_FALSE(want_color(false, ""));
}

TEST(CtlFormat, TimestampsAndDurations) {
    EXPECT_EQ(format_timestamp(kMay1Noon, true), "2024-05-01 12:00:00");
    EXPECT_EQ(format_timestamp(kMay1Noon + 999'999, true), "2024-05-01 12:00:00");
    EXPECT_EQ(format_timestamp(0, true), "1970-01-01 00:00:00");
    // The core's format_duration_usec, the notation of the configuration file (round-trips
    // through parse_duration_usec; tests/unit/util/units_test.cpp).
    EXPECT_EQ(format_duration_usec(2'000'000), "2s");
    EXPECT_EQ(format_duration_usec(500'000), "500ms");
    EXPECT_EQ(format_duration_usec(600'000'000), "10min");
    EXPECT_EQ(format_duration_usec(90'000'000), "90s");
    EXPECT_EQ(format_duration_usec(1'500), "1500us");
}

TEST(CtlFormat, SanitizeDropsTerminalEscapes) {
    EXPECT_EQ(sanitize("plain text"), "plain text");
    EXPECT_EQ(sanitize("evil\x1b]0;title\x07name"), "evil?]0;title?name");
    EXPECT_EQ(sanitize("two\nlines\r"), "two?lines?");
    EXPECT_EQ(sanitize(std::string_view("nul\0byte", 8)), "nul?byte");
}

TEST(CtlFormat, HistoryLineReadsLikeTheJournal) {
    auto st = sample_status();
    EXPECT_EQ(format_history_line(st.history[0], plain_utc()),
              "2024-05-01 12:00:00 vm.min_free_kbytes 67584 -> 101376 [raise: atomic-failures] "
              "3 atomic order-1 failures in 2.0 s");
    EXPECT_EQ(
        format_history_line(st.history[1], plain_utc()),
        "2024-05-01 12:00:04 vm.swappiness 60 -> 10 [pin: external-write] value changed to 10 "
        "by someone else (not applied)");
    // A knob this fragtunectl does not know (newer daemon) is shown as received, sanitised.
    HistoryRow odd{kMay1Noon, "new_knob\x1b", "raise", 1, 2, "r", "why", true};
    EXPECT_EQ(format_history_line(odd, plain_utc()),
              "2024-05-01 12:00:00 new_knob? 1 -> 2 [raise: r] why");
}

TEST(CtlFormat, StatusIsAnAlignedTable) {
    const std::string expected =
        "fragtuned 0.1.0, mode active, tick 2s\n"
        "active: 1 change in the last hour, 1 knob pinned\n"
        "\n"
        "KNOB                       VALUE  BASELINE  ORIGINAL  BOUNDS          STATE\n"
        "min_free_kbytes           101376     67584     67584  67584..1048576  tuning: "
        "atomic-failures\n"
        "watermark_scale_factor        10        10        10  10..300         tuning\n"
        "compaction_proactiveness       -         -         -  -               unsupported: kernel "
        "5.4 lacks vm.compaction_proactiveness (5.9+)\n"
        "vfs_cache_pressure           100       100       100  50..500         tuning\n"
        "swappiness                    10        60        60  0..200          pinned: value "
        "changed to 10 by someone else\n"
        "\n"
        "Signals\n"
        "  psi_some_avg10_percent 1.25   min_headroom_kib -512   fragmentation_score 34\n"
        "\n"
        "Conflicts\n"
        "  vm.swappiness = 10 in /etc/sysctl.d/99-local.conf:3 (applied after ours at boot: it "
        "wins)\n"
        "\n"
        "Recent changes\n"
        "  2024-05-01 12:00:00 vm.min_free_kbytes 67584 -> 101376 [raise: atomic-failures] 3 "
        "atomic order-1 failures in 2.0 s\n"
        "  2024-05-01 12:00:04 vm.swappiness 60 -> 10 [pin: external-write] value changed to 10 "
        "by someone else (not applied)\n";
    EXPECT_EQ(format_status(sample_status(), plain_utc()), expected);
}

TEST(CtlFormat, StatusOptionsAllSignalsAndRecentCount) {
    auto st = sample_status();
    auto o = plain_utc();
    o.all_signals = true;
    o.recent_changes = 1;
    auto text = format_status(st, o);
    // All signals, sorted by name, including ones status normally leaves out; wrapped at 100
    // columns.
    EXPECT_NE(text.find("Signals\n  fragmentation_score 34   min_headroom_kib -512   "
                        "psi_some_avg10_percent 1.25\n  some_unlisted_signal 7.50\n"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("vm.min_free_kbytes 67584 -> 101376"), std::string::npos) << text;
    EXPECT_NE(text.find("vm.swappiness 60 -> 10"), std::string::npos);
}

TEST(CtlFormat, StatusOfAFreshDaemon) {
    StatusView st;
    st.version = "0.1.0";
    st.tick_usec = 500'000;
    st.mode = "paused";
    auto text = format_status(st, plain_utc());
    EXPECT_EQ(text,
              "fragtuned 0.1.0, mode paused, tick 500ms\n"
              "\n"
              "KNOB  VALUE  BASELINE  ORIGINAL  BOUNDS  STATE\n"
              "\n"
              "Recent changes\n"
              "  none yet\n");
}

TEST(CtlFormat, ColourWrapsOnlyWordsAndKeepsColumns) {
    auto st = sample_status();
    auto o = plain_utc();
    o.color = true;
    auto coloured = format_status(st, o);
    EXPECT_NE(coloured.find("\x1b[32mtuning\x1b[0m"), std::string::npos);
    EXPECT_NE(coloured.find("\x1b[33mpinned\x1b[0m: value changed"), std::string::npos);
    EXPECT_NE(coloured.find("mode \x1b[32mactive\x1b[0m"), std::string::npos);
    // Stripping the escapes gives exactly the plain text.
    std::string stripped;
    for (size_t i = 0; i < coloured.size(); ++i) {
        if (coloured[i] == '\x1b') {
            i = coloured.find('m', i);
            continue;
        }
        stripped += coloured[i];
    }
    EXPECT_EQ(stripped, format_status(st, plain_utc()));
}

TEST(CtlFormat, HistoryAndExplain) {
    EXPECT_EQ(format_history({}, plain_utc()), "No changes recorded yet.\n");
    auto st = sample_status();
    auto text = format_history(st.history, plain_utc());
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);

    EXPECT_EQ(format_explain({{"swappiness", "Relative cost of swapping.\nPinned."}}, plain_utc()),
              "Relative cost of swapping.\nPinned.\n");
    EXPECT_EQ(format_explain({{"swappiness", "A."}, {"min_free_kbytes", "B.\n"}}, plain_utc()),
              "swappiness (vm.swappiness)\nA.\n\nmin_free_kbytes (vm.min_free_kbytes)\nB.\n");
    EXPECT_EQ(format_explain({{"swappiness", "bell\x07"}}, plain_utc()), "bell?\n");
}

TEST(CtlFormat, MonitorLines) {
    auto o = plain_utc();
    EXPECT_EQ(format_adjusted_event(kMay1Noon, "watermark_scale_factor", 10, 30, "allocstall",
                                    "2.5 direct reclaim stalls/s", o),
              "2024-05-01 12:00:00 adjusted vm.watermark_scale_factor 10 -> 30 [allocstall] 2.5 "
              "direct reclaim stalls/s");
    EXPECT_EQ(format_alloc_failure_event(kMay1Noon, 3, "kworker/u8:1", true, o),
              "2024-05-01 12:00:00 atomic order-3 allocation failure in task kworker/u8:1");
    EXPECT_EQ(format_alloc_failure_event(kMay1Noon, 0, "", false, o),
              "2024-05-01 12:00:00 sleeping order-0 allocation failure");
    EXPECT_EQ(format_mode_event(kMay1Noon, "observe", o),
              "2024-05-01 12:00:00 mode changed to observe");
}

TEST(CtlFormat, JsonHasStableKeysAndNullsForAbsentValues) {
    auto j = to_json(sample_status());
    EXPECT_EQ(j["version"], "0.1.0");
    EXPECT_EQ(j["mode"], "active");
    EXPECT_EQ(j["tick_usec"], 2'000'000);
    ASSERT_EQ(j["tunables"].size(), 5u);
    EXPECT_EQ(j["tunables"][0]["name"], "min_free_kbytes");
    EXPECT_EQ(j["tunables"][0]["current"], 101376);
    EXPECT_TRUE(j["tunables"][2]["current"].is_null());
    EXPECT_TRUE(j["tunables"][2]["original"].is_null());
    EXPECT_EQ(j["tunables"][4]["state"], "pinned");
    EXPECT_DOUBLE_EQ(j["signals"]["psi_some_avg10_percent"].get<double>(), 1.25);
    EXPECT_EQ(j["signals"].size(), 4u);  // JSON carries every signal
    ASSERT_EQ(j["history"].size(), 2u);
    EXPECT_EQ(j["history"][0]["realtime_usec"], kMay1Noon);
    EXPECT_EQ(j["history"][0]["old"], 67584);
    EXPECT_EQ(j["history"][0]["new"], 101376);
    EXPECT_EQ(j["history"][1]["applied"], false);
    EXPECT_EQ(j["conflicts"][0]["file"], "/etc/sysctl.d/99-local.conf");
    EXPECT_EQ(j["conflicts"][0]["overrides_ours"], true);

    EXPECT_EQ(history_to_json({}).dump(), "[]");
    EXPECT_EQ(explain_to_json({{"swappiness", "text"}}).dump(), R"({"swappiness":"text"})");
}

TEST(CtlFormat, JsonSurvivesInvalidUtf8AndNonFiniteSignals) {
    StatusView st;
    st.summary = "bad \xff\xfe bytes";
    st.signals = {{"nan", std::numeric_limits<double>::quiet_NaN()}};
    auto j = nlohmann::json::parse(dump_json(to_json(st)));
    EXPECT_EQ(j["summary"], "bad \xef\xbf\xbd\xef\xbf\xbd bytes");  // U+FFFD each
    EXPECT_TRUE(j["signals"]["nan"].is_null());
    EXPECT_EQ(dump_json(to_json(st), 2).find("{\n  \""), 0u) << dump_json(to_json(st), 2);
    EXPECT_EQ(mode_event_json(kMay1Noon, "active").dump(),
              R"({"event":"ModeChanged","mode":"active","realtime_usec":1714564800000000})");
    auto a = alloc_failure_event_json(kMay1Noon, 2, "t\xc3\xa9st", true);
    EXPECT_EQ(a["task"], "t\xc3\xa9st");  // valid UTF-8 passes unchanged
}

TEST(CtlFormat, JsonSurvivesOverlongFormsAndSurrogates) {
    // Lead and continuation bytes look right but the sequences are not UTF-8: an overlong '/'
    // (C0 AF), an overlong NUL in three bytes (E0 80 80), a UTF-16 surrogate (ED A0 80) and a code
    // point above U+10FFFF (F4 90 80 80). nlohmann's dump() throws type_error 316 on each.
    for (std::string_view bad :
         {"a\xc0\xaf", "a\xe0\x80\x80", "a\xed\xa0\x80", "a\xf4\x90\x80\x80"}) {
        const std::string raw(bad);
        EXPECT_THROW((void)nlohmann::json(raw).dump(), nlohmann::json::type_error);
        std::string out;
        EXPECT_NO_THROW(out = dump_json(alloc_failure_event_json(kMay1Noon, 2, raw, true)))
            << "input " << raw.size() << " bytes";
        const auto a = nlohmann::json::parse(out, nullptr, false);
        ASSERT_FALSE(a.is_discarded()) << out;
        const std::string task = a["task"];
        EXPECT_EQ(task.front(), 'a');
        EXPECT_NE(task.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD in place of the bytes
        StatusView st;
        st.summary = raw;
        EXPECT_FALSE(nlohmann::json::parse(dump_json(to_json(st)), nullptr, false).is_discarded());
    }
}

TEST(CtlFormat, BusErrorsBecomeAdviceAndExitCodes) {
    auto r = describe_bus_error("org.freedesktop.DBus.Error.ServiceUnknown",
                                "The name org.fragtune1 was not provided by any .service files");
    EXPECT_EQ(r.exit_code, kExitNotRunning);
    EXPECT_EQ(r.message, "fragtuned is not running: systemctl start fragtuned");
    EXPECT_EQ(describe_bus_error("org.freedesktop.DBus.Error.NameHasNoOwner", "").exit_code,
              kExitNotRunning);

    for (auto name :
         {"org.freedesktop.DBus.Error.AccessDenied", "org.fragtune1.Error.AccessDenied"}) {
        r = describe_bus_error(name, "Rejected send message");
        EXPECT_EQ(r.exit_code, kExitFailure);
        EXPECT_EQ(r.message.rfind("permission denied: run as root", 0), 0u) << r.message;
    }

    r = describe_bus_error("org.fragtune1.Error.UnknownKnob",
                           "unknown knob \"x\"; valid knobs: a, b");
    EXPECT_EQ(r.exit_code, kExitUsage);
    EXPECT_EQ(r.message, "unknown knob \"x\"; valid knobs: a, b");

    r = describe_bus_error("org.fragtune1.Error.ConfigInvalid",
                           "fragtune.toml:3:1: unknown key\nfragtune.toml:9:5: not a number");
    EXPECT_EQ(r.exit_code, kExitFailure);
    EXPECT_EQ(r.message,
              "the configuration has errors; fragtuned keeps running the previous one:\n"
              "fragtune.toml:3:1: unknown key\nfragtune.toml:9:5: not a number");

    r = describe_bus_error("org.fragtune1.Error.Failed", "write vm.swappiness: Read-only\x1b[2J");
    EXPECT_EQ(r.message, "write vm.swappiness: Read-only?[2J");

    r = describe_bus_error("org.freedesktop.DBus.Error.NoReply", "timeout");
    EXPECT_NE(r.message.find("journalctl -u fragtuned"), std::string::npos);
    r = describe_bus_error("org.freedesktop.DBus.Error.UnknownMethod", "No such method 'Foo'");
    EXPECT_NE(r.message.find("same release"), std::string::npos);
    r = describe_bus_error("com.example.Weird", "odd");
    EXPECT_EQ(r.exit_code, kExitFailure);
    EXPECT_EQ(r.message, "D-Bus error com.example.Weird: odd");
}
