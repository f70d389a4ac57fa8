// The two renderings of a Sample (--sample text and JSON), over samples the Sampler takes from a
// temporary copy of the live-6.18-vm fixture root.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fragtune/reporting/sample_render.hpp"
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

class SampleRenderTest : public ::testing::Test {
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

TEST_F(SampleRenderTest, JsonParsesAndHasTheDocumentedFields) {
    KernelFs kfs(root_);
    Sampler sampler(kfs, SamplerOptions{});
    ASSERT_TRUE(sampler.take(1'000'000).ok());
    set_counter(proc() / "vmstat", "thp_fault_fallback", 4);
    auto s = sampler.take(3'000'000);
    ASSERT_TRUE(s.ok());
    const std::string text = format_sample_json(*s);
    EXPECT_EQ(text.find('\n'), std::string::npos);  // one line per sample
    auto j = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << text;

    EXPECT_EQ(j["schema_version"], 1);
    EXPECT_EQ(j["mono_usec"], 3'000'000);
    EXPECT_EQ(j["interval_usec"], 2'000'000);
    EXPECT_TRUE(j["kernel"].is_null());
    EXPECT_GT(j["page_size_kib"].get<int>(), 0);
    EXPECT_EQ(j["memory"]["total_kib"], 24731700);
    EXPECT_EQ(j["memory"]["available_kib"], 24408644);
    EXPECT_EQ(j["memory"]["swap_total_kib"], 0);

    ASSERT_EQ(j["zones"].size(), 3u);
    const auto& normal = j["zones"][2];
    EXPECT_EQ(normal["node"], 0);
    EXPECT_EQ(normal["zone"], "Normal");
    EXPECT_EQ(normal["managed_pages"], 360448);
    EXPECT_EQ(normal["present_pages"], 5505024);
    EXPECT_EQ(normal["free_pages"], 47913);
    EXPECT_EQ(normal["min_pages"], 5355);
    EXPECT_EQ(normal["headroom_low_pages"], 47913 - 6693);
    EXPECT_EQ(normal["free_blocks"].size(), 11u);
    EXPECT_EQ(normal["free_blocks"][0], 5071);
    EXPECT_EQ(normal["unusable_permille"][3], 185);  // see signals_test for the arithmetic
    EXPECT_EQ(normal["unusable_permille"][9], 390);
    EXPECT_EQ(normal["extfrag_permille"][9], -1000);
    for (const char* k : {"headroom_min_pages", "headroom_high_pages", "low_pages", "high_pages"})
        EXPECT_TRUE(normal.contains(k)) << k;

    EXPECT_EQ(j["compaction_order"], 9);
    EXPECT_EQ(j["nodes"][0]["fragmentation_score"], 34);
    EXPECT_EQ(j["max_fragmentation_score"], 34);
    ASSERT_EQ(j["targets"].size(), 2u);
    EXPECT_EQ(j["targets"][0]["order"], 3);
    EXPECT_TRUE(j["targets"][0].contains("free_blocks"));
    EXPECT_TRUE(j["targets"][0].contains("unusable_permille"));
    EXPECT_TRUE(j["targets"][0].contains("worst_zone_unusable_permille"));

    EXPECT_EQ(j["watermarks"]["zones_at_or_below_min"], 0);
    EXPECT_EQ(j["watermarks"]["min_headroom_pages"], 3840 - 71);
    EXPECT_EQ(j["watermarks"]["free_pages"], 3840 + 772915 + 47913);

    ASSERT_TRUE(j["psi"].is_object());
    EXPECT_EQ(j["psi"]["some_stall_usec"], 0);
    EXPECT_TRUE(j["psi"]["some_percent"].is_number());
    EXPECT_TRUE(j["psi"]["full_avg10_percent"].is_number());

    EXPECT_EQ(j["counters"]["thp_fault_fallback"]["delta"], 4);
    EXPECT_DOUBLE_EQ(j["counters"]["thp_fault_fallback"]["per_sec"].get<double>(), 2.0);
    EXPECT_EQ(j["counters"]["thp_fault_fallback"]["reset"], false);
    EXPECT_TRUE(j["counters"].contains("allocstall"));
    EXPECT_FALSE(j["counters"].contains("workingset_refault"));  // not printed by 6.18

    EXPECT_TRUE(j["failures"]["by_order"].is_object());
    EXPECT_EQ(j["failures"]["vmalloc"], 0);
    EXPECT_EQ(j["knobs"]["min_free_kbytes"], 67584);
    EXPECT_EQ(j["knobs"]["swappiness"], 60);
}

TEST_F(SampleRenderTest, JsonWritesAbsentValuesAsNull) {
    fs::remove(proc() / "pressure/memory");
    fs::remove(proc() / "sys/vm/compaction_proactiveness");
    KernelFs kfs(root_);
    Sampler sampler(kfs, SamplerOptions{});
    Result<Sample> s = sampler.take(1);
    ASSERT_TRUE(s.ok());
    AllocFailure f;
    f.order = 2;
    f.atomic = true;
    s->failures = {f};
    derive_signals(nullptr, *s, SignalOptions{});
    auto j = nlohmann::json::parse(format_sample_json(*s));
    EXPECT_TRUE(j["psi"].is_null());
    EXPECT_TRUE(j["knobs"]["compaction_proactiveness"].is_null());
    EXPECT_TRUE(j["counters"].empty());
    EXPECT_EQ(j["failures"]["by_order"]["2"], 1);
    EXPECT_EQ(j["failures"]["atomic_by_order"]["2"], 1);
}

TEST_F(SampleRenderTest, TextNamesZonesAndShowsTheValues) {
    KernelFs kfs(root_);
    Sampler sampler(kfs, SamplerOptions{});
    ASSERT_TRUE(sampler.take(1'000'000).ok());
    set_counter(proc() / "vmstat", "compact_stall", 3);
    auto s = sampler.take(2'000'000);
    ASSERT_TRUE(s.ok());
    const std::string text = format_sample_text(*s);
    for (const char* needle :
         {"node 0 DMA ", "node 0 DMA32", "node 0 Normal",
          "5071 829 540 318 88 36 18 14 7 5 26",  // Normal's free lists
          "order 3: 0.185", "order 9: 0.390",     // Normal's unusable index
          "fragmentation score (order 9): node 0 34", "compact_stall 3.0", "allocstall 0.0",
          "kswapd_low_wmark_hit_quickly 0.0", "thp_fault_fallback 0.0", "psi: some avg10 0.00%",
          "allocation failures: none", "min_free_kbytes 67584", "swappiness 60",
          "interval 1.000 s"})
        EXPECT_NE(text.find(needle), std::string::npos) << "missing '" << needle << "' in\n"
                                                        << text;
    EXPECT_EQ(text.find("node 0 Movable"), std::string::npos);  // managed 0: not populated
    EXPECT_NE(text.find("kernel profile: "), std::string::npos);

    // The first sample says why there are no rates yet.
    Sampler fresh(kfs, SamplerOptions{});
    auto f = fresh.take(5);
    ASSERT_TRUE(f.ok());
    EXPECT_NE(format_sample_text(*f).find("rates: need a second sample"), std::string::npos);
}

// A PSI the sampler could not read is never silent: both renderings carry psi_error.
TEST_F(SampleRenderTest, AbsentPsiSaysWhyInTheTextAndJson) {
    KernelFs kfs(root_);
    {
        Sampler sampler(kfs, SamplerOptions{});
        auto r = sampler.take(1);
        ASSERT_TRUE(r.ok());
        EXPECT_TRUE(nlohmann::json::parse(format_sample_json(*r))["psi_error"].is_null());
    }
    fs::remove(proc() / "pressure/memory");
    Sampler sampler(kfs, SamplerOptions{});
    auto r = sampler.take(1);
    ASSERT_TRUE(r.ok());
    EXPECT_NE(format_sample_text(*r).find("psi: not available: no PSI: /proc/pressure/memory"),
              std::string::npos)
        << format_sample_text(*r);
    EXPECT_EQ(nlohmann::json::parse(format_sample_json(*r))["psi_error"], r->psi_error);
}

// Invalid UTF-8 in a string field (the PSI error quotes a path) still gives valid JSON, with U+FFFD.
TEST_F(SampleRenderTest, JsonReplacesInvalidUtf8) {
    KernelFs kfs(root_);
    Sampler sampler(kfs, SamplerOptions{});
    auto r = sampler.take(1);
    ASSERT_TRUE(r.ok());
    r->psi_error = "bad \xff byte";
    auto j = nlohmann::json::parse(format_sample_json(*r), nullptr, false);
    ASSERT_FALSE(j.is_discarded());
    EXPECT_EQ(j["psi_error"], "bad \xef\xbf\xbd byte");
}
