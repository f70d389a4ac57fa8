// What one sample costs beyond the kernel's own work: a full Sampler::take (read + parse + derive +
// keeping the previous sample) against nothing but KernelFs::read of the same files, on the live
// /proc and on the fixture root. On the live kernel most of the time is the kernel formatting the
// files (zoneinfo walks every zone's per-cpu lists), so the ratio says how much fragtune adds to
// it.
//
// At the end the program prints "ratio <root>: full/raw = X.XXx" for each root (target on the live
// kernel: <= 1.25x).
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
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

// The files a calm tick reads (zoneinfo skipped) and a tick that reads everything, each by
// pread() on kept-open files: the cheapest way to read them, so a ratio against it is what
// fragtune adds to the kernel's own work.
std::vector<std::string> calm_files() {
    auto files = sampled_files();
    files.erase(files.begin() + 1);  // /proc/zoneinfo
    files.erase(std::find(files.begin(), files.end(), "/proc/sys/kernel/osrelease"));
    return files;
}

void raw_preads(benchmark::State& state, const std::string& root, bool with_zoneinfo) {
    KernelFs fs(root);
    std::vector<fragtune::KernelFile> files;
    for (const auto& f : with_zoneinfo ? sampled_files() : calm_files())
        if (f != "/proc/sys/kernel/osrelease") {
            auto h = fs.open_file(f);
            if (h) files.push_back(std::move(*h));
        }
    for (auto _ : state) {
        for (auto& f : files) {
            auto r = f.read();
            benchmark::DoNotOptimize(r);
        }
    }
}

void sample_next(benchmark::State& state, const std::string& root, uint32_t zoneinfo_every) {
    KernelFs fs(root);
    fragtune::SamplerOptions o;
    o.zoneinfo.every_ticks = zoneinfo_every;
    fragtune::Sampler sampler(fs, o);
    uint64_t mono = 1'000'000;
    for (int i = 0; i < 3; ++i) (void)sampler.next(mono += 1'000'000);
    for (auto _ : state) {
        auto s = sampler.next(mono += 1'000'000);
        if (!s) {
            state.SkipWithError(s.error().describe().c_str());
            break;
        }
        benchmark::DoNotOptimize(s);
    }
}

// ---- a generated 64-node x 1024-CPU machine ------------------------------------------------------
// /proc/zoneinfo of such a machine is megabytes (every zone prints every CPU's pageset); built
// here from the live-6.18-vm fixture's Normal zone (per-node stats from its DMA zone), one Normal
// zone per node, instead of committing a multi-MB file.
std::string slurp(const std::string& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Generated {
    std::string root, zoneinfo;
};

const Generated& generated_machine() {
    static const Generated g = [] {
        constexpr int kNodes = 64, kCpus = 1024;
        const std::string src = slurp(kFixtureRoot + "/proc/zoneinfo");
        const auto dma = src.find("Node 0, zone      DMA\n");
        const auto normal = src.find("Node 0, zone   Normal\n");
        const auto node_stats =
            src.substr(src.find("  per-node stats\n", dma),
                       src.find("  pages free", dma) - src.find("  per-node stats\n", dma));
        const auto body_start = src.find('\n', normal) + 1;
        const auto next_zone = src.find("Node ", body_start);
        const std::string body = src.substr(body_start, next_zone - body_start);
        const auto cpu0 = body.find("    cpu: 0\n");
        const auto cpu1 = body.find("    cpu: 1\n");
        const auto post = body.find("  node_unreclaimable");
        const std::string pre = body.substr(0, cpu0);
        const std::string cpu_block = body.substr(cpu0 + 11, cpu1 - cpu0 - 11);
        const std::string tail = body.substr(post);
        std::string z, b;
        for (int n = 0; n < kNodes; ++n) {
            z += "Node " + std::to_string(n) + ", zone   Normal\n" + node_stats + pre;
            for (int c = 0; c < kCpus; ++c) z += "    cpu: " + std::to_string(c) + "\n" + cpu_block;
            z += tail;
            b +=
                "Node " + std::to_string(n) +
                ", zone   Normal   5071    829    540    318     88     36     18     14      7    "
                "  5     26 \n";
        }
        char tmpl[] = "/tmp/fragtune-bench-XXXXXX";
        Generated out;
        out.root = ::mkdtemp(tmpl);
        std::filesystem::copy(kFixtureRoot, out.root, std::filesystem::copy_options::recursive);
        std::ofstream(out.root + "/proc/zoneinfo", std::ios::trunc) << z;
        std::ofstream(out.root + "/proc/buddyinfo", std::ios::trunc) << b;
        out.zoneinfo = std::move(z);
        return out;
    }();
    return g;
}

void zoneinfo_parse_generated(benchmark::State& state) {
    const auto& g = generated_machine();
    for (auto _ : state) {
        auto z = fragtune::parse_zoneinfo(g.zoneinfo);
        if (!z) {
            state.SkipWithError(z.error().describe().c_str());
            break;
        }
        benchmark::DoNotOptimize(z);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g.zoneinfo.size()));
    state.counters["MiB"] = static_cast<double>(g.zoneinfo.size()) / (1 << 20);
}

// A whole sample of the generated machine: every tick reading zoneinfo (the old behaviour, and
// what a troubled tick does), and the calm tick of the lazy path.
void sample_generated(benchmark::State& state, uint32_t zoneinfo_every) {
    sample_next(state, generated_machine().root, zoneinfo_every);
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

BENCHMARK_CAPTURE(raw_preads, calm_live, std::string("/"), false);
BENCHMARK_CAPTURE(sample_next, calm_live, std::string("/"), 1000u);
BENCHMARK_CAPTURE(raw_preads, zoneinfo_live, std::string("/"), true);
BENCHMARK_CAPTURE(sample_next, zoneinfo_live, std::string("/"), 1u);
BENCHMARK(zoneinfo_parse_generated)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(sample_generated, every_tick, 1u)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(sample_generated, calm, 1000u)->Unit(benchmark::kMillisecond);
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
        // The tick the daemon runs against pread()s of the same files: calm (zoneinfo skipped)
        // and with zoneinfo.
        for (const char* kind : {"calm_live", "zoneinfo_live"}) {
            const Times raw = time_of(std::string("raw_preads/") + kind);
            const Times full = time_of(std::string("sample_next/") + kind);
            if (raw.real > 0 && full.real > 0 && raw.cpu > 0)
                std::printf(
                    "ratio %s: next()/pread = %.2fx wall (%.1f / %.1f us), %.2fx cpu (%.1f / "
                    "%.1f us)\n",
                    kind, full.real / raw.real, full.real / 1e3, raw.real / 1e3, full.cpu / raw.cpu,
                    full.cpu / 1e3, raw.cpu / 1e3);
        }
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
