// The metrics file as a real Prometheus parser reads it: rendered from a sample of the captured
// /proc tree, parsed by prometheus_client's text parser (Debian: python3-prometheus-client), every
// sample accounted for. A broken line must make the same check fail, so the check can fail.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "fragtune/configuration/config.hpp"
#include "fragtune/deciding/controller.hpp"
#include "fragtune/reporting/metrics.hpp"
#include "fragtune/sensing/sample.hpp"
#include "ship_util.hpp"

namespace fs = std::filesystem;
using namespace fragtune;
using namespace fragtune::test;

namespace {

// Parses the file and prints "families N samples M", one "TYPE name type" line per family; exits
// non-zero on a parse error. Counter families are reported under their sample name (_total).
constexpr const char* kParser = R"PY(
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
families = list(text_string_to_metric_families(text))
samples = sum(len(f.samples) for f in families)
for f in families:
    if not f.documentation:
        sys.exit("family %s has no HELP" % f.name)
    if f.type not in ("gauge", "counter"):
        sys.exit("family %s has type %s" % (f.name, f.type))
    for s in f.samples:
        if s.timestamp is not None:
            sys.exit("sample %s has a timestamp (node_exporter rejects them)" % s.name)
print("families %d samples %d" % (len(families), samples))
)PY";

bool have_parser() {
    return run_command("/usr/bin/python3 -c 'import prometheus_client.parser'").exit_code == 0;
}

CommandResult parse_file(const fs::path& dir, const std::string& text) {
    std::ofstream(dir / "parser.py") << kParser;
    std::ofstream(dir / "fragtune.prom") << text;
    return run_command("/usr/bin/python3 " + shell_quote((dir / "parser.py").string()) + " " +
                       shell_quote((dir / "fragtune.prom").string()));
}

size_t sample_lines(const std::string& text) {
    std::istringstream in(text);
    size_t n = 0;
    for (std::string line; std::getline(in, line);)
        if (!line.empty() && line[0] != '#') ++n;
    return n;
}

size_t family_count(const std::string& text) {
    std::istringstream in(text);
    size_t n = 0;
    for (std::string line; std::getline(in, line);)
        if (line.rfind("# TYPE ", 0) == 0) ++n;
    return n;
}

std::string render_from_fixture() {
    KernelFs fs(std::string(FRAGTUNE_FIXTURES_DIR) + "/live-6.18-vm");
    Sampler sampler(fs, SamplerOptions{});
    auto first = sampler.take(1'000'000);
    EXPECT_TRUE(first.ok()) << (first.ok() ? "" : first.error().describe());
    auto second = sampler.take(3'000'000);  // rates and PSI deltas need a previous sample
    EXPECT_TRUE(second.ok());
    if (!second.ok()) return {};
    Config config;
    ControllerState state = initial_state(*second, config);
    state.knob(Knob::swappiness).status = KnobStatus::pinned;
    MetricsCounters counters;
    counters.count_decision(
        Decision{Knob::min_free_kbytes, Action::raise, 67584, 101376, "atomic-failures", "x"},
        true);
    Signals failures;
    failures.failures_by_order = {{2, 3}};
    failures.atomic_failures_by_order = {{2, 1}};
    counters.count_failures(failures);
    return render_metrics(
        make_metrics_snapshot(*second, state, config, Mode::active, 1'714'564'800'000'000),
        counters);
}

TEST(MetricsFormat, PrometheusParserReadsEverySample) {
    if (!have_parser()) GTEST_SKIP() << "python3-prometheus-client is not installed";
    const std::string text = render_from_fixture();
    ASSERT_FALSE(text.empty());
    // The fixture has PSI, zones and all five knobs: the signal families are present.
    for (const char* family :
         {"fragtune_knob_value{knob=\"swappiness\"}", "fragtune_psi_memory_avg10_ratio",
          "fragtune_fragmentation_score_ratio", "fragtune_unusable_free_index_ratio",
          "fragtune_knob_state{knob=\"swappiness\",state=\"pinned\"} 1"})
        EXPECT_NE(text.find(family), std::string::npos) << family << "\n" << text;

    TempDir dir;
    auto r = parse_file(dir.path(), text);
    ASSERT_EQ(r.exit_code, 0) << r.output << "\n" << text;
    EXPECT_EQ(r.output, "families " + std::to_string(family_count(text)) + " samples " +
                            std::to_string(sample_lines(text)) + "\n")
        << text;
}

TEST(MetricsFormat, TheParserCheckRejectsBrokenText) {
    if (!have_parser()) GTEST_SKIP() << "python3-prometheus-client is not installed";
    TempDir dir;
    // Each of these is what a renderer bug would produce.
    for (const char* bad : {
             "# HELP x_total a\n# TYPE x_total counter\nx_total{knob=\"a} 1\n",  // unterminated
                                                                                 // label
             "# HELP x a\n# TYPE x gauge\nx 1 2 3\n",            // garbage after timestamp
             "# HELP x a\n# TYPE x gauge\nx one\n",              // not a number
             "# HELP x a\n# TYPE x gauge\nx 1 1714564800000\n",  // a timestamp
             "# TYPE x gauge\nx 1\n",                            // no HELP
         }) {
        auto r = parse_file(dir.path(), bad);
        EXPECT_NE(r.exit_code, 0) << "accepted:\n" << bad << r.output;
    }
}

}  // namespace
