// The Sampler over a temporary copy of the live-6.18-vm fixture root (its renderings:
// tests/unit/reporting/sample_render_test.cpp).
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/sensing/sample.hpp"

namespace fs = std::filesystem;
using namespace fragtune;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void spit(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::trunc) << text;
}

// Replaces the value of one "name value" line of a flat file.
void set_counter(const fs::path& p, const std::string& name, uint64_t value) {
    std::string text = slurp(p);
    std::regex line("(^|\n)" + name + " [0-9]+\n");
    ASSERT_TRUE(std::regex_search(text, line)) << name << " not in " << p;
    text = std::regex_replace(text, line, "$1" + name + " " + std::to_string(value) + "\n");
    spit(p, text);
}

class SamplerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/fragtune-sampler-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
        fs::copy(fs::path(FRAGTUNE_FIXTURES_DIR) / "live-6.18-vm", root_,
                 fs::copy_options::recursive);
        ASSERT_TRUE(fs::exists(root_ / "proc/buddyinfo"));
    }
    void TearDown() override { fs::remove_all(root_); }
    fs::path proc() const { return root_ / "proc"; }
    fs::path root_;
};

}  // namespace

TEST_F(SamplerTest, TwoSamplesGiveDeltasRatesAndPsiStall) {
    KernelFs kfs(root_);
    Sampler sampler(kfs, SamplerOptions{});
    auto first = sampler.take(1'000'000);
    ASSERT_TRUE(first.ok()) << first.error().describe();
    EXPECT_EQ(first->signals.interval_usec, 0u);
    EXPECT_TRUE(first->signals.counters.empty());
    ASSERT_EQ(first->signals.zones.size(), 3u);  // Movable and Device have managed 0
    EXPECT_EQ(first->signals.zones[2].zone, "Normal");
    EXPECT_EQ(first->knob(Knob::min_free_kbytes), 67584);
    EXPECT_EQ(first->knob(Knob::watermark_scale_factor), 10);
    EXPECT_EQ(first->knob(Knob::compaction_proactiveness), 20);
    EXPECT_EQ(first->knob(Knob::vfs_cache_pressure), 100);
    EXPECT_EQ(first->knob(Knob::swappiness), 60);
    EXPECT_FALSE(first->kernel.has_value());  // the fixture has no osrelease
    ASSERT_TRUE(first->psi.has_value());

    // Between the samples: 6 compaction stalls, 3 + 1 direct-reclaim stalls, 2.5 s of "some" stall.
    set_counter(proc() / "vmstat", "compact_stall", 6);
    set_counter(proc() / "vmstat", "allocstall_normal", 3);
    set_counter(proc() / "vmstat", "allocstall_dma32", 1);
    spit(proc() / "pressure/memory",
         "some avg10=12.50 avg60=3.00 avg300=1.00 total=2500000\n"
         "full avg10=4.00 avg60=1.00 avg300=0.20 total=1000000\n");
    std::filesystem::create_directories(proc() / "sys/kernel");
    spit(proc() / "sys/kernel/osrelease", "6.18.44-fc-v669\n");

    auto second = sampler.take(6'000'000);  // 5 s later
    ASSERT_TRUE(second.ok()) << second.error().describe();
    const Signals& g = second->signals;
    EXPECT_EQ(g.interval_usec, 5'000'000u);
    ASSERT_TRUE(g.counter("compact_stall"));
    EXPECT_EQ(g.counter("compact_stall")->delta, 6u);
    EXPECT_DOUBLE_EQ(g.counter("compact_stall")->per_sec, 1.2);  // 6 / 5 s
    EXPECT_EQ(g.counter("allocstall")->delta, 4u);               // summed over zones
    EXPECT_EQ(g.counter("pgscan_direct")->delta, 0u);
    EXPECT_EQ(*g.psi_some_stall_usec, 2'500'000u);
    EXPECT_DOUBLE_EQ(*g.psi_some_percent, 50.0);  // 2.5 s of 5 s
    EXPECT_EQ(*g.psi_full_stall_usec, 1'000'000u);
    EXPECT_DOUBLE_EQ(*g.psi_some_avg10, 12.5);
    // The kernel profile is resolved once, when the sampler starts: the release that appeared
    // later is seen by a new sampler only.
    EXPECT_FALSE(second->kernel.has_value());
    EXPECT_EQ(second->profile.release, "");
    Sampler fresh(kfs, SamplerOptions{});
    EXPECT_EQ(fresh.profile().release, "6.18.44-fc-v669");
    ASSERT_TRUE(fresh.profile().version);
    EXPECT_EQ(fresh.profile().version->minor, 18);
    ASSERT_TRUE(sampler.previous());
    EXPECT_EQ(sampler.previous()->mono_usec, 6'000'000u);
}

TEST_F(SamplerTest, MissingOrMalformedMandatoryFileIsAnErrorNamingIt) {
    for (const char* name : {"buddyinfo", "zoneinfo", "vmstat", "meminfo"}) {
        const fs::path p = proc() / name;
        const std::string saved = slurp(p);
        fs::remove(p);
        KernelFs kfs(root_);
        Sampler sampler(kfs, SamplerOptions{});
        auto r = sampler.take(1);
        ASSERT_FALSE(r.ok()) << name;
        EXPECT_NE(r.error().describe().find(std::string("/proc/") + name), std::string::npos)
            << r.error().describe();
        EXPECT_EQ(r.error().sys_errno, ENOENT);
        spit(p, "this is not a " + std::string(name) + " file\n");
        auto bad = sampler.take(2);
        ASSERT_FALSE(bad.ok()) << name;
        EXPECT_NE(bad.error().describe().find(std::string("/proc/") + name), std::string::npos)
            << bad.error().describe();
        spit(p, saved);
        EXPECT_TRUE(sampler.take(3).ok()) << name;
    }
}

TEST_F(SamplerTest, FailedSampleKeepsThePreviousForTheNextDelta) {
    KernelFs kfs(root_);
    SamplerOptions o;
    o.zoneinfo.every_ticks = 1;  // zoneinfo read every tick, so its absence fails the sample
    Sampler sampler(kfs, o);
    ASSERT_TRUE(sampler.take(1'000'000).ok());
    const std::string zoneinfo = slurp(proc() / "zoneinfo");
    fs::remove(proc() / "zoneinfo");
    ASSERT_FALSE(sampler.take(2'000'000).ok());
    EXPECT_EQ(sampler.previous()->mono_usec, 1'000'000u);
    spit(proc() / "zoneinfo", zoneinfo);
    set_counter(proc() / "vmstat", "compact_fail", 9);
    auto r = sampler.take(4'000'000);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->signals.interval_usec, 3'000'000u);
    EXPECT_DOUBLE_EQ(r->signals.counter("compact_fail")->per_sec, 3.0);
}

TEST_F(SamplerTest, MissingPsiAndKnobsAreAbsentNotErrors) {
    fs::remove(proc() / "pressure/memory");
    fs::remove(proc() / "sys/vm/compaction_proactiveness");  // a 5.8 kernel
    spit(proc() / "sys/vm/swappiness", "sixty\n");           // unreadable value: absent, not 0
    KernelFs kfs(root_);
    Sampler sampler(kfs, SamplerOptions{});
    auto r = sampler.take(1);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_FALSE(r->psi.has_value());
    EXPECT_FALSE(r->signals.psi_some_avg10.has_value());
    EXPECT_FALSE(r->knob(Knob::compaction_proactiveness).has_value());
    EXPECT_FALSE(r->knob(Knob::swappiness).has_value());
    EXPECT_EQ(r->knob(Knob::min_free_kbytes), 67584);
}

TEST_F(SamplerTest, PsiPathIsConfigurable) {
    fs::create_directories(root_ / "sys/fs/cgroup/work.slice");
    spit(root_ / "sys/fs/cgroup/work.slice/memory.pressure",
         "some avg10=7.25 avg60=0.00 avg300=0.00 total=10\nfull avg10=0.00 avg60=0.00 avg300=0.00 "
         "total=5\n");
    KernelFs kfs(root_);
    SamplerOptions opts;
    opts.psi_path = "/sys/fs/cgroup/work.slice/memory.pressure";
    Sampler sampler(kfs, opts);
    auto r = sampler.take(1);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->signals.psi_some_avg10);
    EXPECT_DOUBLE_EQ(*r->signals.psi_some_avg10, 7.25);
}

TEST(PsiPath, SystemOrCgroupDirectory) {
    EXPECT_EQ(fragtune::psi_path_for("system"), "/proc/pressure/memory");
    EXPECT_EQ(fragtune::psi_path_for("/sys/fs/cgroup/work.slice"),
              "/sys/fs/cgroup/work.slice/memory.pressure");
}

// A PSI that is missing, unreadable or unparsable is never silent: the sample says which and why
// (psi_error); a good PSI has no error.
TEST_F(SamplerTest, AbsentPsiSaysWhyInTheSampleTextAndJson) {
    KernelFs kfs(root_);
    {
        Sampler sampler(kfs, SamplerOptions{});
        auto r = sampler.take(1);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->psi_error, "");
    }
    fs::remove(proc() / "pressure/memory");
    {
        Sampler sampler(kfs, SamplerOptions{});
        auto r = sampler.take(1);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->psi_error,
                  "no PSI: /proc/pressure/memory does not exist (kernel without CONFIG_PSI, booted "
                  "with psi=0, or the cgroup is gone)");
    }
    spit(proc() / "pressure/memory", "some avg10=banana\n");
    {
        Sampler sampler(kfs, SamplerOptions{});
        auto r = sampler.take(1);
        ASSERT_TRUE(r.ok());
        EXPECT_FALSE(r->psi);
        EXPECT_EQ(r->psi_error.rfind("PSI file does not parse: /proc/pressure/memory line 1", 0),
                  0u)
            << r->psi_error;
    }
    // A directory where the file should be: read() fails (EISDIR), reported with the reason.
    fs::remove(proc() / "pressure/memory");
    fs::create_directories(proc() / "pressure/memory");
    {
        Sampler sampler(kfs, SamplerOptions{});
        auto r = sampler.take(1);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r->psi_error.rfind("PSI unreadable: ", 0), 0u) << r->psi_error;
        EXPECT_NE(r->psi_error.find("/proc/pressure/memory"), std::string::npos) << r->psi_error;
    }
}

// zoneinfo is read on the first tick, on trouble, while settling after it, when the watermark
// knobs move, and every N calm ticks; otherwise the sample carries the last read, marked stale,
// with the zones' free pages from this tick's buddyinfo.
TEST_F(SamplerTest, ZoneinfoIsReadOnlyWhenTheDecisionNeedsIt) {
    KernelFs kfs(root_);
    SamplerOptions o;
    o.zoneinfo.every_ticks = 5;
    o.zoneinfo.settle_ticks = 2;
    Sampler sampler(kfs, o);
    uint64_t t = 1'000'000;
    auto tick = [&](std::vector<AllocFailure> f = {}) {
        auto s = sampler.next(t += 1'000'000, std::move(f));
        EXPECT_TRUE(s.ok()) << s.error().describe();
        return *s;
    };
    const Sample* first = tick();
    EXPECT_TRUE(first->zoneinfo_fresh);
    EXPECT_EQ(sampler.last_zoneinfo_reason(), ZoneinfoReason::first);
    const auto zones = first->signals.zones.size();
    const Sample* calm = tick();
    EXPECT_FALSE(calm->zoneinfo_fresh);
    EXPECT_EQ(sampler.last_zoneinfo_reason(), ZoneinfoReason::none);
    EXPECT_EQ(calm->zoneinfo_mono_usec, 2'000'000u);
    ASSERT_EQ(calm->signals.zones.size(), zones);  // the last read's zones and watermarks
    // Free pages from buddyinfo: zoneinfo's own count is of the earlier tick.
    for (const auto& z : calm->signals.zones)
        EXPECT_EQ(z.free_pages, fill_contig_page_info(z.free_blocks, 0).free_pages) << z.zone;

    set_counter(proc() / "vmstat", "compact_stall", 1'000'000);
    EXPECT_TRUE(tick()->zoneinfo_fresh);
    EXPECT_EQ(sampler.last_zoneinfo_reason(), ZoneinfoReason::stalls);
    EXPECT_TRUE(tick()->zoneinfo_fresh);  // settling
    EXPECT_EQ(sampler.last_zoneinfo_reason(), ZoneinfoReason::settling);
    EXPECT_TRUE(tick()->zoneinfo_fresh);
    EXPECT_FALSE(tick()->zoneinfo_fresh);  // settled
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(tick()->zoneinfo_fresh) << i;
    EXPECT_TRUE(tick()->zoneinfo_fresh);  // the 5th tick after the last read
    EXPECT_EQ(sampler.last_zoneinfo_reason(), ZoneinfoReason::periodic);

    EXPECT_FALSE(tick()->zoneinfo_fresh);
    spit(proc() / "sys/vm/min_free_kbytes", "90000\n");
    EXPECT_TRUE(tick()->zoneinfo_fresh);
    EXPECT_EQ(sampler.last_zoneinfo_reason(), ZoneinfoReason::knobs_changed);

    AllocFailure f;
    f.order = 1;
    f.atomic = true;
    const Sample* troubled = tick({f});
    EXPECT_TRUE(troubled->zoneinfo_fresh);
    EXPECT_EQ(sampler.last_zoneinfo_reason(), ZoneinfoReason::failures);
    EXPECT_EQ(troubled->zoneinfo_mono_usec, troubled->mono_usec);
    EXPECT_TRUE(sampler.next(t += 1'000'000, {}, 0, /*force_zoneinfo=*/true).ok());
    EXPECT_EQ(sampler.last_zoneinfo_reason(), ZoneinfoReason::forced);
}

// The pure policy: near a watermark (free from buddyinfo against the last known watermarks) and
// PSI above the threshold both ask for a read.
TEST_F(SamplerTest, ZoneinfoReasonSeesWatermarksAndPsi) {
    KernelFs kfs(root_);
    Sampler sampler(kfs, SamplerOptions{});
    const Sample prev = *sampler.take(1'000'000);
    Sample cur = *sampler.take(2'000'000);
    ZoneinfoState st;
    st.have = true;
    st.min_free_kbytes = cur.knob(Knob::min_free_kbytes);
    st.watermark_scale_factor = cur.knob(Knob::watermark_scale_factor);
    const ZoneinfoPolicy pol;
    ASSERT_EQ(zoneinfo_reason(cur, &prev, st, pol), ZoneinfoReason::none);
    EXPECT_EQ(zoneinfo_reason(cur, nullptr, st, pol), ZoneinfoReason::first);
    EXPECT_EQ(zoneinfo_reason(cur, &prev, ZoneinfoState{}, pol), ZoneinfoReason::first);
    EXPECT_EQ(zoneinfo_reason(cur, &prev, st, pol, true), ZoneinfoReason::forced);

    // One zone's free lists down to its last known min: near.
    Sample low = cur;
    const ZoneInfoZone* normal = nullptr;
    for (const auto& z : prev.zoneinfo.zones)
        if (z.zone == "Normal") normal = &z;
    ASSERT_NE(normal, nullptr);
    for (auto& bz : low.buddy.zones)
        if (bz.zone == "Normal") {
            std::fill(bz.free_blocks.begin(), bz.free_blocks.end(), 0);
            bz.free_blocks[0] = normal->min;
        }
    EXPECT_EQ(zoneinfo_reason(low, &prev, st, pol), ZoneinfoReason::near_watermark);
    // Just above high + (high - min): not near.
    for (auto& bz : low.buddy.zones)
        if (bz.zone == "Normal") bz.free_blocks[0] = normal->high + (normal->high - normal->min);
    EXPECT_EQ(zoneinfo_reason(low, &prev, st, pol), ZoneinfoReason::none);

    ASSERT_TRUE(cur.psi);
    Sample psi = cur;
    psi.psi->some.avg10 = pol.psi_some_percent;
    EXPECT_EQ(zoneinfo_reason(psi, &prev, st, pol), ZoneinfoReason::psi);
    psi = cur;  // 5 % of the 1 s interval stalled
    psi.psi->some.total_usec = prev.psi->some.total_usec + 50'000;
    EXPECT_EQ(zoneinfo_reason(psi, &prev, st, pol), ZoneinfoReason::psi);

    ZoneinfoState settling = st;
    settling.ticks_since_trouble = 3;
    EXPECT_EQ(zoneinfo_reason(cur, &prev, settling, pol), ZoneinfoReason::settling);
    ZoneinfoState due = st;
    due.ticks_since_read = pol.every_ticks - 1;
    EXPECT_EQ(zoneinfo_reason(cur, &prev, due, pol), ZoneinfoReason::periodic);
    EXPECT_EQ(to_string(ZoneinfoReason::near_watermark), "near-watermark");
}
