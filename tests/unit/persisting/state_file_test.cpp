#include "fragtune/persisting/state_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace fragtune;

namespace {

// May the daemon save over the loaded path? Not when that would destroy a file it could not
// understand (future_version) or could not read (unreadable); for corrupt, only after
// set_aside_state_file (Daemon::start decides the same from the status).
bool may_overwrite(const LoadedState& l) {
    return l.status == StateLoadStatus::loaded || l.status == StateLoadStatus::absent;
}

bool contains(const std::string& hay, std::string_view needle) {
    return hay.find(needle) != std::string::npos;
}

PersistedState sample_state() {
    PersistedState st;
    auto& mf = st.knob(Knob::min_free_kbytes);
    mf.original = 67584;
    mf.baseline = 67584;
    mf.last_written = 101376;
    auto& wsf = st.knob(Knob::watermark_scale_factor);
    wsf.original = 10;
    wsf.learned = 120;
    wsf.learned_age_usec = 1800000000;
    wsf.learned_why = "direct-reclaim episode of 6.0 s: ...";
    auto& sw = st.knob(Knob::swappiness);
    sw.original = 60;
    sw.baseline = 60;
    sw.last_written = 100;
    sw.status = KnobStatus::pinned;
    sw.status_reason = "value changed to 100 by someone else";
    auto& vfs = st.knob(Knob::vfs_cache_pressure);
    vfs.original = 100;
    vfs.status = KnobStatus::conflict;
    vfs.status_reason = "/etc/sysctl.d/99-local.conf:3 sets vm.vfs_cache_pressure = 50";
    st.history.push_back(HistoryEntry{1714564800000000, Knob::min_free_kbytes, Action::raise, 67584,
                                      101376, "atomic-failures",
                                      "3 atomic order-1 failures in 2.0 s", true});
    st.history.push_back(HistoryEntry{1714564830000000, Knob::swappiness, Action::pin, 40, 100,
                                      "external-write", "value changed to 100 by someone else",
                                      false});
    return st;
}

void expect_same(const PersistedState& a, const PersistedState& b) {
    EXPECT_EQ(a.format_version, b.format_version);
    for (const auto& t : kTunables) EXPECT_EQ(a.knob(t.knob), b.knob(t.knob)) << t.name;
    EXPECT_EQ(a.history, b.history);
}

TEST(StateFile, RoundTrip) {
    const PersistedState st = sample_state();
    const std::string text = render_state(st);
    auto back = parse_state(text, "state.toml");
    ASSERT_TRUE(back.ok()) << back.error().describe() << "\n" << text;
    expect_same(st, *back);
    EXPECT_TRUE(back->warnings.empty());
    EXPECT_EQ(back->history_dropped, 0u);
    // Rendering is deterministic: the same state renders the same text.
    EXPECT_EQ(render_state(*back), text);
}

TEST(StateFile, RenderedTextIsReadableTomlWithHeader) {
    const std::string text = render_state(sample_state());
    EXPECT_EQ(text.rfind("# fragtuned state.", 0), 0u) << text;
    EXPECT_TRUE(contains(text, "format_version = 1")) << text;
    EXPECT_TRUE(contains(text, "[knobs.min_free_kbytes]")) << text;
    EXPECT_TRUE(contains(text, "original = 67584")) << text;
    EXPECT_TRUE(contains(text, "[[history]]")) << text;
    EXPECT_TRUE(contains(text, "action = 'raise'") || contains(text, "action = \"raise\"")) << text;
}

TEST(StateFile, OnlyPinnedAndConflictStatusesPersist) {
    PersistedState st;
    st.knob(Knob::min_free_kbytes).status = KnobStatus::failed;
    st.knob(Knob::min_free_kbytes).status_reason = "EINVAL";
    st.knob(Knob::swappiness).status = KnobStatus::disabled;
    st.knob(Knob::watermark_scale_factor).status = KnobStatus::unsupported;
    auto back = parse_state(render_state(st), "s");
    ASSERT_TRUE(back.ok()) << back.error().describe();
    for (const auto& t : kTunables) {
        EXPECT_EQ(back->knob(t.knob).status, KnobStatus::tuning) << t.name;
        EXPECT_TRUE(back->knob(t.knob).status_reason.empty()) << t.name;
    }
    // A hand-written "failed" in the file also loads as tuning.
    auto hand = parse_state("format_version = 1\n[knobs.swappiness]\nstatus = \"failed\"\n", "s");
    ASSERT_TRUE(hand.ok());
    EXPECT_EQ(hand->knob(Knob::swappiness).status, KnobStatus::tuning);
}

TEST(StateFile, UnicodeAndHostileTextInReasonsSurvive) {
    PersistedState st;
    st.knob(Knob::swappiness).status = KnobStatus::pinned;
    st.knob(Knob::swappiness).status_reason = "épinglé par l'admin — «manuel» 🔒";
    st.history.push_back(HistoryEntry{1, Knob::swappiness, Action::decay, 1, 2, "règle",
                                      "quote \" backslash \\ newline\n tab\t ]] [[history]] "
                                      "# not a comment",
                                      true});
    auto back = parse_state(render_state(st), "s");
    ASSERT_TRUE(back.ok()) << back.error().describe();
    expect_same(st, *back);
}

TEST(StateFile, InvalidUtf8IsRepairedSoTheFileStillParses) {
    PersistedState st;
    st.history.push_back(HistoryEntry{1, Knob::swappiness, Action::raise, 1, 2, "r",
                                      std::string("bad \xC3( \xED\xA0\x80 \xF8 end"), true});
    auto back = parse_state(render_state(st), "s");
    ASSERT_TRUE(back.ok()) << back.error().describe();
    ASSERT_EQ(back->history.size(), 1u);
    EXPECT_EQ(back->history[0].reason,
              "bad \xEF\xBF\xBD( \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD end");
}

TEST(StateFile, FutureVersionIsRefused) {
    auto r =
        parse_state("format_version = 2\n[knobs.swappiness]\noriginal = 60\n", "/x/state.toml");
    ASSERT_FALSE(r.ok());
    const auto& m = r.error().message;
    EXPECT_TRUE(contains(m, "/x/state.toml:1:")) << m;
    EXPECT_TRUE(contains(m, "newer fragtuned")) << m;
    EXPECT_TRUE(contains(m, "left untouched")) << m;
}

TEST(StateFile, StructuralErrorsAreFatalWithLineAndColumn) {
    struct Case {
        std::string_view text;
        std::string_view expect;  // substring of the message: file:line:column of the value
    };
    const Case cases[] = {
        {"", "no format_version"},
        {"# only a comment\n", "no format_version"},
        {"format_version = \"1\"\n", "s:1:18: format_version must be an integer"},
        {"format_version = 0\n", "format_version 0 is invalid"},
        {"format_version = 1\nknobs = 5\n", "s:2:9: knobs must be a table"},
        {"format_version = 1\n[knobs]\nswappiness = 5\n",
         "s:3:14: knobs.swappiness must be a table"},
        {"format_version = 1\n[knobs.swappiness]\noriginal = \"sixty\"\n",
         "s:3:12: knobs.swappiness.original must be an integer, found a string"},
        {"format_version = 1\n[knobs.swappiness]\nlast_written = 1.5\n",
         "knobs.swappiness.last_written must be an integer, found a float"},
        {"format_version = 1\n[knobs.swappiness]\nstatus = 3\n",
         "knobs.swappiness.status must be a string"},
        // TOML syntax: reported by toml++ with line and column.
        {"format_version = 1\n[knobs.swappiness\noriginal = 60\n", "s:2:"},
        {"format_version = 1\nformat_version = 1\n", "s:2:"},
        {"format_version = \n", "s:1:"},
        {std::string_view("\x00\x01\x02garbage", 10), "s:1:"},
    };
    for (const auto& c : cases) {
        auto r = parse_state(c.text, "s");
        ASSERT_FALSE(r.ok()) << c.text;
        EXPECT_TRUE(contains(r.error().message, c.expect))
            << "input: " << c.text << "\nmessage: " << r.error().message;
    }
}

TEST(StateFile, TruncatedFileIsAnErrorAtEveryCut) {
    const std::string text = render_state(sample_state());
    int errors = 0, parsed = 0;
    for (size_t cut = 0; cut < text.size(); ++cut) {
        auto r = parse_state(std::string_view(text).substr(0, cut), "state.toml");
        if (r.ok()) {
            ++parsed;
            // A cut between records may parse; it must then never invent data.
            EXPECT_LE(r->history.size(), 2u);
        } else {
            ++errors;
            EXPECT_TRUE(contains(r.error().message, "state.toml")) << r.error().message;
        }
    }
    EXPECT_GT(errors, 0);
    EXPECT_GT(parsed, 0);
}

TEST(StateFile, MissingFieldsAreDefaultsOrSkippedRecords) {
    const std::string text = R"(format_version = 1
surprise = true

[knobs.min_free_kbytes]
original = 67584

[knobs.swappiness]
status = "pinned"
colour = "blue"

[knobs.vm_future_knob]
original = 1

[[history]]
realtime_usec = 10
knob = "swappiness"
action = "decay"
old = 60
new = 55

[[history]]
knob = "swappiness"
action = "raise"
old = 1
new = 2

[[history]]
realtime_usec = 11
knob = "nosuch"
action = "raise"
old = 1
new = 2

[[history]]
realtime_usec = 12
knob = "swappiness"
action = "explode"
old = 1
new = 2

[[history]]
realtime_usec = 13
knob = "swappiness"
action = "raise"
old = "1"
new = 2

[[history]]
realtime_usec = 14
knob = "vm.swappiness"
action = "raise"
old = 1
new = 2
applied = true
)";
    auto r = parse_state(text, "s");
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->knob(Knob::min_free_kbytes).original, 67584);
    EXPECT_FALSE(r->knob(Knob::min_free_kbytes).baseline);
    EXPECT_FALSE(r->knob(Knob::min_free_kbytes).last_written);
    EXPECT_EQ(r->knob(Knob::swappiness).status, KnobStatus::pinned);
    EXPECT_FALSE(r->knob(Knob::swappiness).original);
    ASSERT_EQ(r->history.size(), 2u);
    EXPECT_EQ(r->history[0].realtime_usec, 10u);
    EXPECT_EQ(r->history[0].action, Action::decay);
    EXPECT_TRUE(r->history[0].rule.empty());
    EXPECT_FALSE(r->history[0].applied);
    EXPECT_EQ(r->history[1].realtime_usec, 14u);
    EXPECT_TRUE(r->history[1].applied);

    std::string all;
    for (const auto& w : r->warnings) all += w + "\n";
    EXPECT_TRUE(contains(all, "s:2:12: unknown key 'surprise'")) << all;
    EXPECT_TRUE(contains(all, "knobs.swappiness.colour is unknown")) << all;
    EXPECT_TRUE(contains(all, "unknown knob 'vm_future_knob'")) << all;
    EXPECT_TRUE(contains(all, "history record skipped: no 'realtime_usec'")) << all;
    EXPECT_TRUE(contains(all, "unknown knob 'nosuch'")) << all;
    EXPECT_TRUE(contains(all, "unknown action 'explode'")) << all;
    EXPECT_TRUE(contains(all, "'old' must be an integer, found a string")) << all;
    EXPECT_EQ(r->warnings.size(), 7u) << all;
}

TEST(StateFile, HugeHistoryIsBoundedOnLoadKeepingTheNewest) {
    PersistedState st = sample_state();
    st.history.clear();
    for (int i = 0; i < 5000; ++i)
        st.history.push_back(HistoryEntry{static_cast<uint64_t>(i), Knob::swappiness, Action::raise,
                                          i, i + 1, "r", "reason", true});
    const std::string text = render_state(st);
    auto r = parse_state(text, "s", 256);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    ASSERT_EQ(r->history.size(), 256u);
    EXPECT_EQ(r->history_dropped, 5000u - 256u);
    EXPECT_EQ(r->history.front().realtime_usec, 5000u - 256u);
    EXPECT_EQ(r->history.back().realtime_usec, 4999u);
    EXPECT_EQ(r->knob(Knob::min_free_kbytes).original, 67584);
    auto none = parse_state(text, "s", 0);
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->history.empty());
}

TEST(StateFile, TimesBeyondInt64AreClamped) {
    PersistedState st;
    st.history.push_back(
        HistoryEntry{UINT64_MAX, Knob::swappiness, Action::raise, 1, 2, "", "", true});
    auto r = parse_state(render_state(st), "s");
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->history[0].realtime_usec, static_cast<uint64_t>(INT64_MAX));
    auto neg = parse_state(
        "format_version = 1\n[[history]]\nrealtime_usec = -5\nknob = \"swappiness\"\n"
        "action = \"raise\"\nold = 1\nnew = 2\n",
        "s");
    ASSERT_TRUE(neg.ok());
    EXPECT_TRUE(neg->history.empty());
    ASSERT_EQ(neg->warnings.size(), 1u);
    EXPECT_TRUE(contains(neg->warnings[0], "negative")) << neg->warnings[0];
}

TEST(StateFile, KeysAreStable) {
    for (KnobStatus s : {KnobStatus::tuning, KnobStatus::pinned, KnobStatus::conflict,
                         KnobStatus::failed, KnobStatus::unsupported, KnobStatus::disabled})
        EXPECT_EQ(status_from_key(status_key(s)), s);
    for (Action a : {Action::raise, Action::lower, Action::decay, Action::kick, Action::refuse,
                     Action::pin, Action::compact})
        EXPECT_EQ(action_from_key(action_key(a)), a);
    EXPECT_EQ(status_key(KnobStatus::conflict), "conflict");
    EXPECT_EQ(action_key(Action::compact), "compact");
    EXPECT_FALSE(status_from_key("Pinned"));
    EXPECT_FALSE(action_from_key(""));
}

// ---- files --------------------------------------------------------------------------------------

class StateFileIo : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/fragtune-state-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
    }
    void TearDown() override { fs::remove_all(root_); }
    void put(const std::string& rel, const std::string& text) {
        fs::create_directories((root_ / rel).parent_path());
        std::ofstream(root_ / rel, std::ios::binary) << text;
    }
    std::string get(const std::string& rel) {
        std::ifstream in(root_ / rel, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }
    unsigned mode(const std::string& rel) {
        struct stat st {};
        if (::stat((root_ / rel).c_str(), &st) != 0) return 0;
        return st.st_mode & 07777;
    }
    fs::path root_;
    static constexpr std::string_view kPath = "/var/lib/fragtune/state.toml";
};

TEST_F(StateFileIo, AbsentFileIsAnEmptyStateNotAnError) {
    auto l = load_state(KernelFs(root_), kPath);
    EXPECT_EQ(l.status, StateLoadStatus::absent);
    EXPECT_FALSE(l.error);
    EXPECT_TRUE(may_overwrite(l));
    EXPECT_TRUE(l.state.history.empty());
    EXPECT_FALSE(l.state.knob(Knob::swappiness).original);
}

TEST_F(StateFileIo, SaveCreatesPrivateDirAndFileAndLoadsBack) {
    KernelFs kfs(root_);
    ASSERT_TRUE(save_state(kfs, kPath, sample_state()).ok());
    EXPECT_EQ(mode("var/lib/fragtune"), 0700u);  // created here
    EXPECT_EQ(mode("var/lib/fragtune/state.toml"), 0600u);
    put("var/lib/fragtune/.state.toml.fragtune-tmp", "half a file");  // a crash mid-save
    ASSERT_TRUE(save_state(kfs, kPath, sample_state()).ok());
    EXPECT_FALSE(fs::exists(root_ / "var/lib/fragtune/.state.toml.fragtune-tmp"));
    auto l = load_state(kfs, kPath);
    ASSERT_EQ(l.status, StateLoadStatus::loaded) << (l.error ? l.error->describe() : "");
    expect_same(sample_state(), l.state);
}

TEST_F(StateFileIo, SaveKeepsTheModeOfAnExistingDirectory) {
    // --state-path /var/tmp/state.toml: /var/tmp is shared (1777) and must stay so.
    KernelFs kfs(root_);
    fs::create_directories(root_ / "var/tmp");
    ASSERT_EQ(::chmod((root_ / "var/tmp").c_str(), 01777), 0);
    ASSERT_TRUE(save_state(kfs, "/var/tmp/state.toml", sample_state()).ok());
    EXPECT_EQ(mode("var/tmp"), 01777u);
    EXPECT_EQ(mode("var/tmp/state.toml"), 0600u);
}

TEST_F(StateFileIo, CorruptFileNamesFileLineColumnAndCanBeSetAside) {
    const std::string bad = "format_version = 1\n[knobs.swappiness]\noriginal = = 3\n";
    put("var/lib/fragtune/state.toml", bad);
    KernelFs kfs(root_);
    auto l = load_state(kfs, kPath);
    ASSERT_EQ(l.status, StateLoadStatus::corrupt);
    ASSERT_TRUE(l.error);
    EXPECT_TRUE(contains(l.error->message, "/var/lib/fragtune/state.toml:3:")) << l.error->message;
    EXPECT_FALSE(may_overwrite(l));
    EXPECT_EQ(get("var/lib/fragtune/state.toml"), bad);  // load never writes

    ASSERT_TRUE(set_aside_state_file(kfs, kPath).ok());
    EXPECT_EQ(get("var/lib/fragtune/state.toml.corrupt"), bad);
    EXPECT_EQ(mode("var/lib/fragtune/state.toml.corrupt"), 0600u);
}

TEST_F(StateFileIo, FutureVersionIsLeftUntouched) {
    const std::string future = "format_version = 9\nnew_stuff = [1, 2]\n";
    put("var/lib/fragtune/state.toml", future);
    auto l = load_state(KernelFs(root_), kPath);
    EXPECT_EQ(l.status, StateLoadStatus::future_version);
    ASSERT_TRUE(l.error);
    EXPECT_TRUE(contains(l.error->message, "format version 9")) << l.error->message;
    EXPECT_FALSE(may_overwrite(l));
    EXPECT_EQ(get("var/lib/fragtune/state.toml"), future);
    EXPECT_FALSE(fs::exists(root_ / "var/lib/fragtune/state.toml.corrupt"));
}

class FailingFs : public KernelFs {
  public:
    using KernelFs::KernelFs;
    int read_errno = 0, write_errno = 0;
    Result<std::string> read(std::string_view path,
                             const ReadLimits& limits = kKernelFileLimits) const override {
        if (read_errno) return make_error("injected", read_errno);
        return KernelFs::read(path, limits);
    }
    Result<void> write_atomic(std::string_view path, std::string_view contents,
                              unsigned mode) const override {
        if (write_errno) return make_error("injected", write_errno);
        return KernelFs::write_atomic(path, contents, mode);
    }
};

TEST_F(StateFileIo, UnreadableFileIsNotOverwritten) {
    FailingFs ffs(root_);
    ffs.read_errno = EACCES;
    auto l = load_state(ffs, kPath);
    EXPECT_EQ(l.status, StateLoadStatus::unreadable);
    ASSERT_TRUE(l.error);
    EXPECT_EQ(l.error->sys_errno, EACCES);
    EXPECT_TRUE(contains(l.error->message, std::string(kPath))) << l.error->message;
    EXPECT_FALSE(may_overwrite(l));
}

TEST_F(StateFileIo, SaveFailureNamesPathAndKeepsErrno) {
    FailingFs ffs(root_);
    ffs.write_errno = EROFS;
    auto r = save_state(ffs, kPath, sample_state());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().sys_errno, EROFS);
    EXPECT_TRUE(contains(r.error().message, std::string(kPath))) << r.error().message;
}

// ---- the byte bound -----------------------------------------------------------------------------

HistoryEntry typical_entry(uint64_t i) {
    // About the size of the daemon's records: a rule and a reason with signal values.
    return HistoryEntry{1714564800000000 + i * 2000000,
                        Knob::min_free_kbytes,
                        Action::raise,
                        67584,
                        101376,
                        "atomic-failures",
                        fmt::format("{} atomic order-1 failures in 2.0 s; free 61234 KiB vs min "
                                    "watermark 45056 KiB; psi some avg10 3.21",
                                    i % 97),
                        true};
}

// At the documented maximum history_size (65536) the file used to be ~15 MB. Now it stays within
// kMaxStateFileBytes, keeps the knobs and the newest records, and parses again.
TEST(StateFile, RenderingAtMaxHistoryStaysWithinTheByteBound) {
    PersistedState st = sample_state();
    st.history.clear();
    for (uint64_t i = 0; i < 65536; ++i) st.history.push_back(typical_entry(i));
    const std::string text = render_state(st);
    EXPECT_LE(text.size(), kMaxStateFileBytes);
    EXPECT_GT(text.size(), kMaxStateFileBytes - 4096);  // filled, not cut early
    auto back = parse_state(text, "s", 65536);
    ASSERT_TRUE(back.ok()) << back.error().describe();
    for (const auto& t : kTunables) EXPECT_EQ(back->knob(t.knob), st.knob(t.knob)) << t.name;
    ASSERT_GT(back->history.size(), 3000u);
    ASSERT_LT(back->history.size(), 65536u);
    // The newest records, in order, oldest dropped first.
    const std::size_t kept = back->history.size();
    for (std::size_t i = 0; i < kept; ++i)
        ASSERT_EQ(back->history[i], st.history[65536 - kept + i]) << i;
    std::printf("state file at history_size 65536: %zu bytes, %zu records kept\n", text.size(),
                kept);
}

// Hostile sizes: reasons of 100 KiB in the knobs and in every record still give a file within the
// bound, each string cut at a character boundary with an ellipsis.
TEST(StateFile, HugeStringsAreCutAndTheFileStaysWithinTheBound) {
    PersistedState st = sample_state();
    const std::string huge =
        std::string(100 * 1024 - 1, 'x') + "\u00e9";  // a 2-byte char at the end
    for (auto& k : st.knobs) {
        k.status = KnobStatus::conflict;
        k.status_reason = huge;
    }
    for (auto& h : st.history) h.reason = h.rule = huge;
    for (int i = 0; i < 300; ++i)
        st.history.push_back(HistoryEntry{static_cast<uint64_t>(i), Knob::swappiness, Action::raise,
                                          i, i + 1, huge, huge, true});
    const std::string text = render_state(st);
    EXPECT_LE(text.size(), kMaxStateFileBytes);
    auto back = parse_state(text, "s", 1000);
    ASSERT_TRUE(back.ok()) << back.error().describe();
    for (const auto& k : back->knobs) {
        EXPECT_LE(k.status_reason.size(), kMaxStateTextBytes);
        EXPECT_TRUE(k.status_reason.ends_with("\u2026"));
    }
    ASSERT_FALSE(back->history.empty());
    EXPECT_EQ(back->history.back().realtime_usec, 299u);
    EXPECT_EQ(back->history.back().reason, state_text(huge));
    // Cutting never splits a character.
    const std::string cut =
        state_text(std::string(kMaxStateTextBytes - 4, 'a') + "\u00e9\u00e9\u00e9");
    EXPECT_LE(cut.size(), kMaxStateTextBytes);
    EXPECT_EQ(cut, std::string(kMaxStateTextBytes - 4, 'a') + "\u2026");
    EXPECT_EQ(state_text("short \xff"), "short \uFFFD");
}

TEST_F(StateFileIo, AFileOverTheByteBoundIsRefusedAndLeftUntouched) {
    PersistedState st = sample_state();
    std::string text = render_state(st);
    text += "# padding\n" + std::string(kMaxStateFileBytes, '#') + "\n";  // still valid TOML
    put("var/lib/fragtune/state.toml", text);
    auto l = load_state(KernelFs(root_), kPath);
    EXPECT_EQ(l.status, StateLoadStatus::unreadable);
    ASSERT_TRUE(l.error);
    EXPECT_TRUE(contains(l.error->message, std::string(kPath) + " is " +
                                               std::to_string(text.size()) +
                                               " bytes, over the 1 MiB limit for state files"))
        << l.error->message;
    EXPECT_FALSE(may_overwrite(l));
    EXPECT_EQ(get("var/lib/fragtune/state.toml"), text);
}

TEST_F(StateFileIo, AFifoOrASymlinkAsTheStateFileIsRefused) {
    fs::create_directories(root_ / "var/lib/fragtune");
    ASSERT_EQ(::mkfifo((root_ / "var/lib/fragtune/state.toml").c_str(), 0600), 0);
    auto l = load_state(KernelFs(root_), kPath);
    EXPECT_EQ(l.status, StateLoadStatus::unreadable);
    ASSERT_TRUE(l.error);
    EXPECT_TRUE(contains(l.error->message, "is a FIFO, not a regular file")) << l.error->message;
    EXPECT_FALSE(may_overwrite(l));

    fs::remove(root_ / "var/lib/fragtune/state.toml");
    put("elsewhere.toml", render_state(sample_state()));
    fs::create_symlink(root_ / "elsewhere.toml", root_ / "var/lib/fragtune/state.toml");
    auto s = load_state(KernelFs(root_), kPath);
    EXPECT_EQ(s.status, StateLoadStatus::unreadable);
    ASSERT_TRUE(s.error);
    EXPECT_TRUE(contains(s.error->message, "is a symbolic link")) << s.error->message;
}

// ---- bridging -----------------------------------------------------------------------------------

TEST(StateFileBridge, OriginalsAreNeverOverwrittenByALaterStart) {
    // First start: the live values are the originals.
    ControllerState first;
    first.knob(Knob::swappiness).original = 60;
    first.knob(Knob::swappiness).baseline = 60;
    first.knob(Knob::swappiness).last_written = 40;
    PersistedState saved = snapshot_state(first, {}, PersistedState{});
    EXPECT_EQ(saved.knob(Knob::swappiness).original, 60);

    // Crash; the next start finds fragtune's own 40 live and would call it "original".
    ControllerState second;
    second.knob(Knob::swappiness).original = 40;
    second.knob(Knob::swappiness).baseline = 40;
    Config config;
    adopt_persisted(second, saved);
    EXPECT_EQ(second.knob(Knob::swappiness).original, 60);
    // (the baseline that follows from it: state_at_start, tests/unit/deciding/transitions_test.cpp)
    EXPECT_EQ(second.knob(Knob::swappiness).last_written, 40);

    // Even if a caller skipped adopt_persisted, snapshot keeps the recorded original.
    ControllerState wrong;
    wrong.knob(Knob::swappiness).original = 40;
    EXPECT_EQ(snapshot_state(wrong, {}, saved).knob(Knob::swappiness).original, 60);
    // A knob seen for the first time gets its original recorded.
    wrong.knob(Knob::vfs_cache_pressure).original = 100;
    EXPECT_EQ(snapshot_state(wrong, {}, saved).knob(Knob::vfs_cache_pressure).original, 100);
}

TEST(StateFileBridge, ARestartKeepsTheKernelsUserMinFreeKbytes) {
    // min_free_kbytes 50000 written by the last run: the kernel still holds it as
    // user_min_free_kbytes, and the restarted controller must know (check_owner() after hotplug).
    ControllerState before;
    before.knob(Knob::min_free_kbytes).original = 40000;
    before.knob(Knob::min_free_kbytes).last_written = 50000;
    before.user_min_free_kbytes = 50000;
    PersistedState saved = snapshot_state(before, {}, PersistedState{});
    auto reloaded = parse_state(render_state(saved), "state.toml");
    ASSERT_TRUE(reloaded) << reloaded.error().describe();

    ControllerState after;
    after.knob(Knob::min_free_kbytes).original = 50000;
    Config config;
    adopt_persisted(after, *reloaded);
    EXPECT_EQ(after.user_min_free_kbytes, 50000);

    // Never written (no last_written saved): stays unset.
    ControllerState fresh;
    adopt_persisted(fresh, PersistedState{});
    EXPECT_FALSE(fresh.user_min_free_kbytes);
}

TEST(StateFileBridge, ARestartKeepsWhatAnticipationLearntAndTheRestOfItsHold) {
    // Learnt 30 min before the save, at mono 10000 s.
    ControllerState before;
    before.anticipation.now_usec = 10000000000;
    before.anticipation.watermark = {140, 8200000000, "direct-reclaim episode"};
    before.anticipation.min_free = {101376, 9000000000, "atomic failures"};
    PersistedState saved = snapshot_state(before, {}, PersistedState{});
    EXPECT_EQ(saved.knob(Knob::watermark_scale_factor).learned, 140);
    EXPECT_EQ(saved.knob(Knob::watermark_scale_factor).learned_age_usec, 1800000000u);
    EXPECT_FALSE(saved.knob(Knob::swappiness).learned);
    auto reloaded = parse_state(render_state(saved), "state.toml");
    ASSERT_TRUE(reloaded) << reloaded.error().describe();

    // Restarted 1 h after boot: learnt 30 min before this start, held for the remaining 5.5 h.
    ControllerState after;
    after.start_usec = 3600000000;
    Config config;
    adopt_persisted(after, *reloaded);
    EXPECT_EQ(after.anticipation.watermark.value, 140);
    EXPECT_EQ(after.anticipation.watermark.at_usec, 1800000000u);
    EXPECT_EQ(after.anticipation.watermark.why, "direct-reclaim episode");
    EXPECT_EQ(after.anticipation.min_free.value, 101376);
    EXPECT_EQ(after.anticipation.min_free.at_usec, 2600000000u);
    EXPECT_EQ(anticipation_floor(Knob::watermark_scale_factor, after.anticipation, config,
                                 after.start_usec, 10),
              140);
    // Restarted 10 s after boot: the age is cut at the boot (the clock starts there).
    ControllerState early;
    early.start_usec = 10000000;
    adopt_persisted(early, *reloaded);
    EXPECT_EQ(early.anticipation.watermark.at_usec, 0u);
}

TEST(StateFile, AFileWithoutLearntValuesStillLoads) {
    // As written before issue #13.
    auto st = parse_state(
        "format_version = 1\n[knobs.watermark_scale_factor]\noriginal = 10\nstatus = \"tuning\"\n",
        "state.toml");
    ASSERT_TRUE(st) << st.error().describe();
    EXPECT_FALSE(st->knob(Knob::watermark_scale_factor).learned);
    EXPECT_TRUE(st->warnings.empty());
    auto bad = parse_state("format_version = 1\n[knobs.watermark_scale_factor]\nlearned = 99999\n",
                           "state.toml");
    ASSERT_TRUE(bad);
    EXPECT_FALSE(bad->knob(Knob::watermark_scale_factor).learned) << "outside the kernel's range";
    EXPECT_EQ(bad->warnings.size(), 1u);
}

TEST(StateFileBridge, ConfiguredBaselineWinsAndStatusesComeBackUnlessNowDisabled) {
    PersistedState saved;
    saved.knob(Knob::swappiness).original = 60;
    saved.knob(Knob::swappiness).status = KnobStatus::pinned;
    saved.knob(Knob::swappiness).status_reason = "operator pin";
    saved.knob(Knob::vfs_cache_pressure).status = KnobStatus::conflict;
    saved.knob(Knob::vfs_cache_pressure).status_reason = "99-local.conf";

    ControllerState st;
    st.knob(Knob::swappiness).original = 10;
    st.knob(Knob::swappiness).baseline = 30;  // from the configuration
    st.knob(Knob::vfs_cache_pressure).status = KnobStatus::disabled;
    Config config;
    config.knob(Knob::swappiness).baseline = 30;
    adopt_persisted(st, saved);
    EXPECT_EQ(st.knob(Knob::swappiness).original, 60);
    EXPECT_EQ(st.knob(Knob::swappiness).baseline, 30);
    EXPECT_EQ(st.knob(Knob::swappiness).status, KnobStatus::pinned);
    EXPECT_EQ(st.knob(Knob::swappiness).status_reason, "operator pin");
    EXPECT_EQ(st.knob(Knob::vfs_cache_pressure).status, KnobStatus::disabled);
}

TEST(StateFileBridge, SnapshotBoundsHistoryAndStoresOnlyLastingStatuses) {
    ControllerState st;
    st.knob(Knob::min_free_kbytes).status = KnobStatus::failed;
    st.knob(Knob::min_free_kbytes).status_reason = "EINVAL";
    st.knob(Knob::swappiness).status = KnobStatus::pinned;
    st.knob(Knob::swappiness).status_reason = "someone else";
    std::vector<HistoryEntry> h;
    for (int i = 0; i < 10; ++i)
        h.push_back(HistoryEntry{static_cast<uint64_t>(i), Knob::swappiness, Action::raise, 0, 1,
                                 "", "", true});
    auto snap = snapshot_state(st, h, PersistedState{}, 3);
    EXPECT_EQ(snap.knob(Knob::min_free_kbytes).status, KnobStatus::tuning);
    EXPECT_TRUE(snap.knob(Knob::min_free_kbytes).status_reason.empty());
    EXPECT_EQ(snap.knob(Knob::swappiness).status, KnobStatus::pinned);
    ASSERT_EQ(snap.history.size(), 3u);
    EXPECT_EQ(snap.history.front().realtime_usec, 7u);
}

TEST(StateFileBridge, HistoryEntryFromDecision) {
    Decision d{
        Knob::compaction_proactiveness, Action::kick, 20, 20, "kick", "order-9 scarce", true};
    auto h = make_history_entry(d, 42, true);
    EXPECT_EQ(h, (HistoryEntry{42, Knob::compaction_proactiveness, Action::kick, 20, 20, "kick",
                               "order-9 scarce", true}));
}

}  // namespace

// Values out of every kernel's range were not written by fragtuned: each is dropped with a warning
// naming the file, line, key and range; the rest of the file is used. An original that is dropped
// is recorded afresh from the live value at start (adopt_persisted keeps the live one).
TEST(StateFile, ValuesOutsideTheKernelRangeAreDroppedWithAWarning) {
    const std::string text = R"(format_version = 1

[knobs.min_free_kbytes]
original = -5
last_written = 101376

[knobs.swappiness]
original = 60
baseline = 900
last_written = 100

[knobs.compaction_proactiveness]
original = 20
last_written = 101
)";
    auto st = parse_state(text, "/var/lib/fragtune/state.toml");
    ASSERT_TRUE(st) << st.error().describe();
    EXPECT_FALSE(st->knob(Knob::min_free_kbytes).original);
    EXPECT_EQ(st->knob(Knob::min_free_kbytes).last_written, 101376);
    EXPECT_EQ(st->knob(Knob::swappiness).original, 60);
    EXPECT_FALSE(st->knob(Knob::swappiness).baseline);
    EXPECT_EQ(st->knob(Knob::swappiness).last_written, 100);
    EXPECT_EQ(st->knob(Knob::compaction_proactiveness).original, 20);
    EXPECT_FALSE(st->knob(Knob::compaction_proactiveness).last_written);
    ASSERT_EQ(st->warnings.size(), 3u);
    std::string all;
    for (const auto& w : st->warnings) all += w + "\n";
    EXPECT_TRUE(contains(all,
                         "/var/lib/fragtune/state.toml:4:12: knobs.min_free_kbytes.original = "
                         "-5 is outside the kernel's range 0..2147483647: dropped (the live "
                         "value at this start is recorded as the original instead)\n"))
        << all;
    EXPECT_TRUE(contains(all,
                         "knobs.swappiness.baseline = 900 is outside the kernel's range "
                         "0..200: dropped\n"))
        << all;
    EXPECT_TRUE(contains(all,
                         "/var/lib/fragtune/state.toml:14:16: "
                         "knobs.compaction_proactiveness.last_written = 101 is outside"))
        << all;

    // Through the bridge: the live value stays the original, the baseline follows it.
    Sample first;
    first.knobs = {67584, 10, 20, 100, 60};
    Config c;
    ControllerState cs = initial_state(first, c);
    adopt_persisted(cs, *st);
    EXPECT_EQ(cs.knob(Knob::min_free_kbytes).original, 67584);
    EXPECT_EQ(cs.knob(Knob::min_free_kbytes).baseline, 67584);
    EXPECT_EQ(cs.knob(Knob::swappiness).baseline, 60);
}
