// What one sample costs beyond the kernel's own work: a full Sampler::take (read + parse + derive +
// keeping the previous sample) against nothing but KernelFs::read of the same files, on the live
// /proc and on the fixture root. On the live kernel most of the time is the kernel formatting the
// files (zoneinfo walks every zone's per-cpu lists), so the ratio says how much fragtune adds to
// it.
//
// At the end the program prints "ratio <root>: full/raw = X.XXx" for each root (target on the live
// kernel: <= 1.25x).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "fragtune/knobs/tunables.hpp"
#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/sensing/sample.hpp"

namespace {

using fragtune::KernelFs;

const std::string kFixtureRoot = std::string(FRAGTUNE_FIXTURES_DIR) + "/live-6.18-vm";

// The files Sampler::take reads, in the same order.
std::vector<std::string> sampled_files() {
    std::vector<std::string> files = {"/proc/buddyinfo",       "/proc/zoneinfo",
                                      "/proc/vmstat",          "/proc/meminfo",
                                      "/proc/pressure/memory", "/proc/sys/kernel/osrelease"};
    for (const auto& t : fragtune::kTunables) files.emplace_back(t.proc_path);
    return files;
}

void raw_reads(benchmark::State& state, const std::string& root) {
    KernelFs fs(root);
    const auto files = sampled_files();
    for (auto _ : state) {
        for (const auto& f : files) {
            auto r = fs.read(f);
            benchmark::DoNotOptimize(r);
        }
    }
}

void full_sample(benchmark::State& state, const std::string& root) {
    KernelFs fs(root);
    fragtune::Sampler sampler(fs, fragtune::SamplerOptions{});
    uint64_t mono = 1'000'000;
    for (auto _ : state) {
        auto s = sampler.take(mono += 1'000'000);  // every take derives against the previous one
        if (!s) {
            state.SkipWithError(s.error().describe().c_str());
            break;
        }
        benchmark::DoNotOptimize(s);
    }
}

void parse_and_derive_only(benchmark::State& state, const std::string& root) {
    // The part fragtune owns, without the reads: parse the already-read texts and derive.
    KernelFs fs(root);
    auto buddy = fs.read("/proc/buddyinfo"), zone = fs.read("/proc/zoneinfo"),
         vm = fs.read("/proc/vmstat"), mem = fs.read("/proc/meminfo");
    if (!buddy || !zone || !vm || !mem) {
        state.SkipWithError("cannot read the files");
        return;
    }
    fragtune::Sample prev;
    for (auto _ : state) {
        fragtune::Sample s;
        s.mono_usec = prev.mono_usec + 1'000'000;
        s.buddy = std::move(*fragtune::parse_buddyinfo(*buddy));
        s.zoneinfo = std::move(*fragtune::parse_zoneinfo(*zone));
        s.vmstat = std::move(*fragtune::parse_vmstat(*vm));
        s.meminfo = std::move(*fragtune::parse_meminfo(*mem));
        fragtune::derive_signals(&prev, s, {});
        benchmark::DoNotOptimize(s);
        prev = std::move(s);
    }
}

BENCHMARK_CAPTURE(raw_reads, live, std::string("/"));
BENCHMARK_CAPTURE(full_sample, live, std::string("/"));
BENCHMARK_CAPTURE(parse_and_derive_only, live, std::string("/"));
BENCHMARK_CAPTURE(raw_reads, fixture, kFixtureRoot);
BENCHMARK_CAPTURE(full_sample, fixture, kFixtureRoot);
BENCHMARK_CAPTURE(parse_and_derive_only, fixture, kFixtureRoot);

// Console output as usual, plus the full/raw ratio per root once all runs are in.
class RatioReporter : public benchmark::ConsoleReporter {
  public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const auto& r : runs) {
            if (r.error_occurred) continue;
            // With --benchmark_repetitions, prefer the median aggregate over single repetitions.
            const bool aggregate = r.run_type == Run::RT_Aggregate;
            if (aggregate && r.aggregate_name != "median") continue;
            const std::string name = r.run_name.str();  // "full_sample/live", no aggregate suffix
            if (!aggregate && medians_.count(name)) continue;
            (aggregate ? medians_ : singles_)[name] = {r.GetAdjustedRealTime(),
                                                       r.GetAdjustedCPUTime()};
        }
    }
    void Finalize() override {
        ConsoleReporter::Finalize();
        // Wall time is what a tick costs; CPU time is steadier when other processes compete for the
        // cores, so both ratios are printed.
        for (const char* root : {"live", "fixture"}) {
            const Times raw = time_of(std::string("raw_reads/") + root);
            const Times full = time_of(std::string("full_sample/") + root);
            if (raw.real > 0 && full.real > 0 && raw.cpu > 0)
                std::printf(
                    "ratio %s: full/raw = %.2fx wall (%.1f / %.1f us), %.2fx cpu (%.1f / %.1f "
                    "us)\n",
                    root, full.real / raw.real, full.real / 1e3, raw.real / 1e3, full.cpu / raw.cpu,
                    full.cpu / 1e3, raw.cpu / 1e3);
        }
    }

  private:
    struct Times {
        double real = 0, cpu = 0;  // adjusted to the runs' unit (ns)
    };
    Times time_of(const std::string& name) const {
        if (auto it = medians_.find(name); it != medians_.end()) return it->second;
        if (auto it = singles_.find(name); it != singles_.end()) return it->second;
        return {};
    }
    std::map<std::string, Times> medians_, singles_;
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
