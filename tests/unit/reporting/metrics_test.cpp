#include "fragtune/reporting/metrics.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace fragtune;

namespace {

// A literal snapshot: two knobs with a live value, one the kernel lacks, one pinned.
MetricsSnapshot literal_snapshot() {
    MetricsSnapshot s;
    s.mode = Mode::observe;
    s.realtime_usec = 1'714'564'800'250'000;  // 2024-05-01T12:00:00.25Z
    s.page_size_bytes = 4096;
    s.knobs = {
        {Knob::min_free_kbytes, 101376, 67584, 67584, {67584, 262144}, KnobStatus::tuning},
        {Knob::compaction_proactiveness,
         std::nullopt,
         20,
         std::nullopt,
         {0, 90},
         KnobStatus::unsupported},
        {Knob::swappiness, 30, 60, 60, {0, 200}, KnobStatus::pinned},
    };
    Signals& g = s.signals;
    g.psi_some_avg10 = 12.5;
    g.psi_full_avg10 = 0.25;
    g.nodes = {{0, 37}, {1, 100}};
    g.targets = {{3, 1200, 125, 300}, {9, 0, 1000, 1000}};
    ZoneSignals z;
    z.zone = "Normal";
    g.zones = {z};
    g.zones_at_or_below_min = 0;
    g.zones_below_low = 1;
    g.zones_below_high = 1;
    g.min_headroom_pages = -16;
    g.mem_available_kib = 2'000'000;
    return s;
}

MetricsCounters literal_counters() {
    MetricsCounters c;
    c.count_decision(
        Decision{Knob::min_free_kbytes, Action::raise, 67584, 101376, "atomic-failures", "x"},
        true);
    c.count_decision(
        Decision{Knob::min_free_kbytes, Action::raise, 101376, 152064, "atomic-failures", "x"},
        false);
    c.count_decision(Decision{Knob::swappiness, Action::pin, 60, 30, "override", "x", false},
                     false);
    Signals failures;
    failures.failures_by_order = {{0, 2}, {3, 5}};
    failures.atomic_failures_by_order = {{3, 4}};
    failures.vmalloc_failures = 1;
    failures.kmsg_lost = 7;
    c.count_failures(failures);
    return c;
}

TEST(MetricsRender, LiteralInputGivesExactText) {
    const std::string expected =
        std::string(
            "# HELP fragtune_info fragtuned build information (always 1).\n"
            "# TYPE fragtune_info gauge\n"
            "fragtune_info{version=\"") +
        FRAGTUNE_VERSION +
        "\"} 1\n"
        "# HELP fragtune_mode 1 for the daemon's current mode, 0 for the others.\n"
        "# TYPE fragtune_mode gauge\n"
        "fragtune_mode{mode=\"active\"} 0\n"
        "fragtune_mode{mode=\"observe\"} 1\n"
        "fragtune_mode{mode=\"paused\"} 0\n"
        "# HELP fragtune_last_update_timestamp_seconds Wall-clock time of the sample these "
        "metrics describe.\n"
        "# TYPE fragtune_last_update_timestamp_seconds gauge\n"
        "fragtune_last_update_timestamp_seconds 1714564800.25\n"
        "# HELP fragtune_knob_value Live value of the vm sysctl (unit as in /proc/sys/vm; "
        "absent when the kernel lacks it).\n"
        "# TYPE fragtune_knob_value gauge\n"
        "fragtune_knob_value{knob=\"min_free_kbytes\"} 101376\n"
        "fragtune_knob_value{knob=\"swappiness\"} 30\n"
        "# HELP fragtune_knob_baseline Value the knob decays back to once memory is calm.\n"
        "# TYPE fragtune_knob_baseline gauge\n"
        "fragtune_knob_baseline{knob=\"min_free_kbytes\"} 67584\n"
        "fragtune_knob_baseline{knob=\"compaction_proactiveness\"} 20\n"
        "fragtune_knob_baseline{knob=\"swappiness\"} 60\n"
        "# HELP fragtune_knob_original Value found at first start, written back by restore.\n"
        "# TYPE fragtune_knob_original gauge\n"
        "fragtune_knob_original{knob=\"min_free_kbytes\"} 67584\n"
        "fragtune_knob_original{knob=\"swappiness\"} 60\n"
        "# HELP fragtune_knob_min Effective lower bound of the knob.\n"
        "# TYPE fragtune_knob_min gauge\n"
        "fragtune_knob_min{knob=\"min_free_kbytes\"} 67584\n"
        "fragtune_knob_min{knob=\"compaction_proactiveness\"} 0\n"
        "fragtune_knob_min{knob=\"swappiness\"} 0\n"
        "# HELP fragtune_knob_max Effective upper bound of the knob (safety caps included).\n"
        "# TYPE fragtune_knob_max gauge\n"
        "fragtune_knob_max{knob=\"min_free_kbytes\"} 262144\n"
        "fragtune_knob_max{knob=\"compaction_proactiveness\"} 90\n"
        "fragtune_knob_max{knob=\"swappiness\"} 200\n"
        "# HELP fragtune_knob_state 1 for the knob's current state, 0 for the others.\n"
        "# TYPE fragtune_knob_state gauge\n"
        "fragtune_knob_state{knob=\"min_free_kbytes\",state=\"tuning\"} 1\n"
        "fragtune_knob_state{knob=\"min_free_kbytes\",state=\"pinned\"} 0\n"
        "fragtune_knob_state{knob=\"min_free_kbytes\",state=\"conflict\"} 0\n"
        "fragtune_knob_state{knob=\"min_free_kbytes\",state=\"failed\"} 0\n"
        "fragtune_knob_state{knob=\"min_free_kbytes\",state=\"unsupported\"} 0\n"
        "fragtune_knob_state{knob=\"min_free_kbytes\",state=\"disabled\"} 0\n"
        "fragtune_knob_state{knob=\"compaction_proactiveness\",state=\"tuning\"} 0\n"
        "fragtune_knob_state{knob=\"compaction_proactiveness\",state=\"pinned\"} 0\n"
        "fragtune_knob_state{knob=\"compaction_proactiveness\",state=\"conflict\"} 0\n"
        "fragtune_knob_state{knob=\"compaction_proactiveness\",state=\"failed\"} 0\n"
        "fragtune_knob_state{knob=\"compaction_proactiveness\",state=\"unsupported\"} 1\n"
        "fragtune_knob_state{knob=\"compaction_proactiveness\",state=\"disabled\"} 0\n"
        "fragtune_knob_state{knob=\"swappiness\",state=\"tuning\"} 0\n"
        "fragtune_knob_state{knob=\"swappiness\",state=\"pinned\"} 1\n"
        "fragtune_knob_state{knob=\"swappiness\",state=\"conflict\"} 0\n"
        "fragtune_knob_state{knob=\"swappiness\",state=\"failed\"} 0\n"
        "fragtune_knob_state{knob=\"swappiness\",state=\"unsupported\"} 0\n"
        "fragtune_knob_state{knob=\"swappiness\",state=\"disabled\"} 0\n"
        "# HELP fragtune_decisions_total Controller decisions by knob and action, applied or "
        "not (refusals, observe mode).\n"
        "# TYPE fragtune_decisions_total counter\n"
        "fragtune_decisions_total{knob=\"min_free_kbytes\",action=\"raise\"} 2\n"
        "fragtune_decisions_total{knob=\"swappiness\",action=\"pin\"} 1\n"
        "# HELP fragtune_changes_total Values written to the kernel and read back, by knob "
        "and action.\n"
        "# TYPE fragtune_changes_total counter\n"
        "fragtune_changes_total{knob=\"min_free_kbytes\",action=\"raise\"} 1\n"
        "# HELP fragtune_allocation_failures_total Page allocation failures reported in the "
        "kernel log, by order and whether the caller could not sleep.\n"
        "# TYPE fragtune_allocation_failures_total counter\n"
        "fragtune_allocation_failures_total{order=\"0\",atomic=\"false\"} 2\n"
        "fragtune_allocation_failures_total{order=\"3\",atomic=\"false\"} 1\n"
        "fragtune_allocation_failures_total{order=\"3\",atomic=\"true\"} 4\n"
        "# HELP fragtune_vmalloc_failures_total vmalloc allocation failures reported in the "
        "kernel log.\n"
        "# TYPE fragtune_vmalloc_failures_total counter\n"
        "fragtune_vmalloc_failures_total 1\n"
        "# HELP fragtune_kernel_log_lost_total Kernel log records overwritten before "
        "fragtuned read them (failures may be missing).\n"
        "# TYPE fragtune_kernel_log_lost_total counter\n"
        "fragtune_kernel_log_lost_total 7\n"
        "# HELP fragtune_psi_memory_avg10_ratio Share of the last 10 s in which tasks "
        "stalled on memory (kernel PSI avg10 / 100).\n"
        "# TYPE fragtune_psi_memory_avg10_ratio gauge\n"
        "fragtune_psi_memory_avg10_ratio{kind=\"some\"} 0.125\n"
        "fragtune_psi_memory_avg10_ratio{kind=\"full\"} 0.0025\n"
        "# HELP fragtune_fragmentation_score_ratio kcompactd's fragmentation score of the "
        "node at the compaction order, 0..1.\n"
        "# TYPE fragtune_fragmentation_score_ratio gauge\n"
        "fragtune_fragmentation_score_ratio{node=\"0\"} 0.37\n"
        "fragtune_fragmentation_score_ratio{node=\"1\"} 1\n"
        "# HELP fragtune_unusable_free_index_ratio Share of free memory unusable for an "
        "allocation of this order, all zones together, 0..1.\n"
        "# TYPE fragtune_unusable_free_index_ratio gauge\n"
        "fragtune_unusable_free_index_ratio{order=\"3\"} 0.125\n"
        "fragtune_unusable_free_index_ratio{order=\"9\"} 1\n"
        "# HELP fragtune_free_blocks Blocks of 2^order pages obtainable from the free "
        "lists, all zones together.\n"
        "# TYPE fragtune_free_blocks gauge\n"
        "fragtune_free_blocks{order=\"3\"} 1200\n"
        "fragtune_free_blocks{order=\"9\"} 0\n"
        "# HELP fragtune_zones_below_watermark Populated zones with free pages at or below "
        "min, below low, below high.\n"
        "# TYPE fragtune_zones_below_watermark gauge\n"
        "fragtune_zones_below_watermark{watermark=\"min\"} 0\n"
        "fragtune_zones_below_watermark{watermark=\"low\"} 1\n"
        "fragtune_zones_below_watermark{watermark=\"high\"} 1\n"
        "# HELP fragtune_watermark_headroom_bytes Smallest free minus low watermark over "
        "populated zones; negative below low.\n"
        "# TYPE fragtune_watermark_headroom_bytes gauge\n"
        "fragtune_watermark_headroom_bytes -65536\n"
        "# HELP fragtune_memory_available_bytes MemAvailable from /proc/meminfo.\n"
        "# TYPE fragtune_memory_available_bytes gauge\n"
        "fragtune_memory_available_bytes 2048000000\n";
    EXPECT_EQ(render_metrics(literal_snapshot(), literal_counters()), expected);
}

TEST(MetricsRender, FamiliesWithoutSamplesAreLeftOut) {
    MetricsSnapshot s;  // no knobs, no PSI, no zones, no timestamp
    const std::string text = render_metrics(s, MetricsCounters{});
    EXPECT_EQ(text.find("fragtune_psi"), std::string::npos);
    EXPECT_EQ(text.find("fragtune_knob_value"), std::string::npos);
    EXPECT_EQ(text.find("fragtune_changes_total"), std::string::npos);
    EXPECT_EQ(text.find("fragtune_last_update"), std::string::npos);
    EXPECT_EQ(text.find("fragtune_zones_below"), std::string::npos);
    // Always-present counters start at zero rather than being absent, so rate() has a first point.
    EXPECT_NE(text.find("fragtune_kernel_log_lost_total 0\n"), std::string::npos);
    EXPECT_NE(text.find("fragtune_mode{mode=\"active\"} 1\n"), std::string::npos);
}

TEST(MetricsRender, EveryFamilyHasOneHelpAndOneTypeBeforeItsSamples) {
    const std::string text = render_metrics(literal_snapshot(), literal_counters());
    std::istringstream in(text);
    std::string line, current;
    std::map<std::string, int> types;
    while (std::getline(in, line)) {
        ASSERT_FALSE(line.empty());
        if (line.rfind("# HELP ", 0) == 0) continue;
        if (line.rfind("# TYPE ", 0) == 0) {
            current = line.substr(7, line.find(' ', 7) - 7);
            ++types[current];
            continue;
        }
        const std::string name = line.substr(0, line.find_first_of("{ "));
        EXPECT_EQ(name, current) << "sample outside its family: " << line;
    }
    for (const auto& [name, n] : types) EXPECT_EQ(n, 1) << name;
    EXPECT_EQ(text.back(), '\n');
}

TEST(MetricsRender, NonFiniteAndHugeValuesUseParsableSpellings) {
    MetricsSnapshot s;
    s.signals.psi_some_avg10 = std::numeric_limits<double>::quiet_NaN();
    s.signals.psi_full_avg10 = std::numeric_limits<double>::infinity();
    s.knobs = {{Knob::vfs_cache_pressure,
                std::numeric_limits<int64_t>::max(),
                100,
                100,
                {0, 2147483647},
                KnobStatus::tuning}};
    const std::string text = render_metrics(s, MetricsCounters{});
    EXPECT_NE(text.find("fragtune_psi_memory_avg10_ratio{kind=\"some\"} NaN\n"), std::string::npos);
    EXPECT_NE(text.find("fragtune_psi_memory_avg10_ratio{kind=\"full\"} +Inf\n"),
              std::string::npos);
    EXPECT_NE(text.find("fragtune_knob_value{knob=\"vfs_cache_pressure\"} 9223372036854775807\n"),
              std::string::npos);
}

struct EscapeCase {
    const char* in;
    const char* out;
};
TEST(MetricsRender, LabelValuesAreEscaped) {
    const EscapeCase cases[] = {
        {"plain", "plain"},
        {"a\"b", "a\\\"b"},
        {"back\\slash", "back\\\\slash"},
        {"two\nlines", "two\\nlines"},
        {"", ""},
        {"\\\"\n", "\\\\\\\"\\n"},
    };
    for (const auto& c : cases) EXPECT_EQ(escape_label_value(c.in), c.out) << c.in;
}

TEST(MetricsCounters, AtomicFailuresAreASubsetOfTheTotal) {
    MetricsCounters c;
    Signals s;
    s.failures_by_order = {{1, 3}, {2, 1}};
    s.atomic_failures_by_order = {{1, 3},
                                  {2, 5}};  // more atomic than total: never a negative count
    c.count_failures(s);
    c.count_failures(s);
    EXPECT_EQ((c.failures[{1, true}]), 6u);
    EXPECT_EQ(c.failures.count({1, false}), 0u);
    EXPECT_EQ((c.failures[{2, true}]), 10u);
    EXPECT_EQ(c.failures.count({2, false}), 0u);
}

TEST(MetricsCounters, DecisionsCountAllAndChangesOnlyApplied) {
    MetricsCounters c;
    const Decision d{Knob::watermark_scale_factor, Action::decay, 30, 20, "decay", "calm"};
    c.count_decision(d, true);
    c.count_decision(d, false);
    c.count_decision(d, true);
    EXPECT_EQ((c.decisions[{Knob::watermark_scale_factor, Action::decay}]), 3u);
    EXPECT_EQ((c.changes[{Knob::watermark_scale_factor, Action::decay}]), 2u);
}

class MetricsTextfileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/fragtune-metrics-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
        fs::create_directories(root_ / "textfile");
    }
    void TearDown() override { fs::remove_all(root_); }
    fs::path root_;
};

TEST_F(MetricsTextfileTest, WritesWithMode0644AndReportsFailuresOnce) {
    KernelFs kfs(root_);
    MetricsTextfile w;
    const ::mode_t old_umask = ::umask(077);  // as under the unit's UMask=0077
    EXPECT_FALSE(w.write(kfs, "/textfile/fragtune.prom", "fragtune_info 1\n").has_value());
    ::umask(old_umask);
    std::ifstream in(root_ / "textfile/fragtune.prom");
    std::stringstream buf;
    buf << in.rdbuf();
    EXPECT_EQ(buf.str(), "fragtune_info 1\n");
    struct stat st {};
    ASSERT_EQ(::stat((root_ / "textfile/fragtune.prom").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);

    // A missing directory fails; the same failure is reported only the first time.
    auto first = w.write(kfs, "/missing/fragtune.prom", "x 1\n");
    ASSERT_TRUE(first.has_value());
    EXPECT_FALSE(first->ok);
    EXPECT_NE(first->message.find("/missing/fragtune.prom"), std::string::npos) << first->message;
    EXPECT_FALSE(w.write(kfs, "/missing/fragtune.prom", "x 1\n").has_value());
    // A relative path is refused by KernelFs: a different failure, reported.
    auto other = w.write(kfs, "relative.prom", "x 1\n");
    ASSERT_TRUE(other.has_value());
    EXPECT_FALSE(other->ok);
    // Success after failures is reported as a recovery, then silence again.
    auto back = w.write(kfs, "/textfile/fragtune.prom", "x 2\n");
    ASSERT_TRUE(back.has_value());
    EXPECT_TRUE(back->ok);
    EXPECT_FALSE(w.write(kfs, "/textfile/fragtune.prom", "x 3\n").has_value());
}

}  // namespace
