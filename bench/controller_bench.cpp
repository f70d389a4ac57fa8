// The cost of fragtuned's per-tick work after sampling: the control law (decide()) on a realistic
// sample, and rendering the two files the daemon writes (the sysctl.d file and the state file).
//
// Samples come from the live-6.18-vm fixture through the real Sampler over a KernelFs rooted there,
// taken twice so counter and PSI deltas exist. "Calm" is the fixture as captured (an idle 24 GiB
// VM, nothing fires); "trouble" is the same machine two seconds later with free memory shattered
// into order-0 pages, 40 direct-reclaim stalls, 25 compaction stalls and 300 ms of PSI "some": the
// tick in which rules fire and decisions are built and explained.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "fragtune/configuration/config.hpp"
#include "fragtune/deciding/controller.hpp"
#include "fragtune/persisting/persist.hpp"
#include "fragtune/persisting/state_file.hpp"
#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/sensing/sample.hpp"

namespace fs = std::filesystem;
using namespace fragtune;

namespace {

constexpr uint64_t kTickUsec = 2'000'000;

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void spit(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::trunc);
    out << text;
}

// Adds `by` to the value of the vmstat counter `name` in `text`.
std::string bump(const std::string& text, const std::string& name, uint64_t by) {
    const std::regex re("(^|\n)" + name + " ([0-9]+)");
    std::smatch m;
    if (!std::regex_search(text, m, re)) return text;
    const uint64_t v = std::stoull(m[2].str()) + by;
    return m.prefix().str() + m[1].str() + name + " " + std::to_string(v) + m.suffix().str();
}

// A copy of the fixture tree in a temp dir, turned into the "trouble" state described above.
fs::path make_trouble_tree() {
    const fs::path src = fs::path(FRAGTUNE_FIXTURES_DIR) / "live-6.18-vm";
    char tmpl[] = "/tmp/controller-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    const fs::path dst = tmpl;
    fs::copy(src, dst, fs::copy_options::recursive);

    // Every zone's free pages, same total, all as order-0 blocks: nothing above order 0 is free.
    std::istringstream in(slurp(dst / "proc/buddyinfo"));
    std::ostringstream out;
    for (std::string line; std::getline(in, line);) {
        const auto zpos = line.find("zone");
        std::istringstream f(line.substr(zpos + 4));
        std::string zone;
        f >> zone;
        uint64_t pages = 0, count = 0;
        int orders = 0;
        for (; f >> count; ++orders) pages += count << orders;
        char head[64];
        std::snprintf(head, sizeof head, "%s%7s", line.substr(0, zpos + 5).c_str(), zone.c_str());
        out << head << ' ' << std::to_string(pages);
        for (int o = 1; o < orders; ++o) out << "      0";
        out << " \n";
    }
    spit(dst / "proc/buddyinfo", out.str());

    std::string vm = slurp(dst / "proc/vmstat");
    vm = bump(vm, "allocstall_normal", 40);
    vm = bump(vm, "pgscan_direct", 20000);
    vm = bump(vm, "pgsteal_direct", 18000);
    vm = bump(vm, "compact_stall", 25);
    vm = bump(vm, "compact_fail", 5);
    vm = bump(vm, "compact_success", 20);
    vm = bump(vm, "thp_fault_fallback", 12);
    spit(dst / "proc/vmstat", vm);

    spit(dst / "proc/pressure/memory",
         "some avg10=15.00 avg60=3.00 avg300=0.60 total=300000\n"
         "full avg10=5.00 avg60=1.00 avg300=0.20 total=100000\n");
    return dst;
}

struct Fixture {
    Config config;
    Sample calm, trouble;
    ControllerState state;

    Fixture() {
        const KernelFs live(fs::path(FRAGTUNE_FIXTURES_DIR) / "live-6.18-vm");
        Sampler sampler(live, SamplerOptions{});
        auto first = sampler.take(0);
        auto second = sampler.take(kTickUsec);
        if (!first || !second) {
            std::fprintf(stderr, "controller_bench: cannot sample the fixture\n");
            std::abort();
        }
        calm = *second;

        // The troubled copy read alone (no previous sample of its own), then derived against the
        // calm first sample, so the deltas are exactly the bumps of make_trouble_tree().
        const fs::path tree = make_trouble_tree();
        const KernelFs troubled(tree);
        Sampler trouble_sampler(troubled, SamplerOptions{});
        auto t = trouble_sampler.take(kTickUsec);
        if (!t) {
            std::fprintf(stderr, "controller_bench: cannot sample the troubled copy: %s\n",
                         t.error().describe().c_str());
            std::abort();
        }
        trouble = *t;
        derive_signals(&*first, trouble, SignalOptions{});
        fs::remove_all(tree);

        state = initial_state(*first, config);
    }
};

const Fixture& fixture() {
    static const Fixture f;
    return f;
}

void BM_DecideCalm(benchmark::State& st) {
    const Fixture& f = fixture();
    for (auto _ : st) {
        Step step = decide(f.calm, f.state, f.config);
        benchmark::DoNotOptimize(step);
    }
}
BENCHMARK(BM_DecideCalm);

void BM_DecideTrouble(benchmark::State& st) {
    const Fixture& f = fixture();
    std::string rules;
    for (const Decision& d : decide(f.trouble, f.state, f.config).decisions)
        rules += (rules.empty() ? "" : ",") + std::string(spec(d.knob).name) + ":" + d.rule;
    for (auto _ : st) {
        Step step = decide(f.trouble, f.state, f.config);
        benchmark::DoNotOptimize(step);
    }
    st.SetLabel(rules);  // which rules fired: the benchmark is only meaningful if some did
}
BENCHMARK(BM_DecideTrouble);

// The state after one troubled tick whose decisions were all applied: what the files then hold.
ControllerState applied_state(std::vector<Decision>* out) {
    const Fixture& f = fixture();
    Step step = decide(f.trouble, f.state, f.config);
    for (const Decision& d : step.decisions)
        if (d.apply) record_applied(step.next, d.knob, d.new_value, f.trouble.mono_usec);
    if (out) *out = step.decisions;
    return step.next;
}

void BM_RenderSysctlConf(benchmark::State& st) {
    PersistInput in;
    in.generated_at = "2024-05-01T12:00:00Z";
    in.knobs = applied_state(nullptr).knobs;
    in.min_free_cap_kib = min_free_cap_kib(fixture().trouble.zoneinfo, fixture().config.safety);
    std::size_t bytes = 0;
    for (auto _ : st) {
        std::string text = render_sysctl_conf(in);
        bytes = text.size();
        benchmark::DoNotOptimize(text);
    }
    st.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_RenderSysctlConf);

// The state file at its largest: a full history (256 records, the default bound).
void BM_RenderState(benchmark::State& st) {
    std::vector<Decision> decisions;
    const ControllerState cs = applied_state(&decisions);
    std::vector<HistoryEntry> history;
    for (std::size_t i = 0; history.size() < kDefaultStateHistory; ++i) {
        const Decision& d = decisions.empty() ? Decision{} : decisions[i % decisions.size()];
        history.push_back(make_history_entry(d, 1'714'564'800'000'000 + i * kTickUsec, d.apply));
    }
    const PersistedState ps = snapshot_state(cs, history, PersistedState{});
    std::size_t bytes = 0;
    for (auto _ : st) {
        std::string text = render_state(ps);
        bytes = text.size();
        benchmark::DoNotOptimize(text);
    }
    st.counters["bytes"] = static_cast<double>(bytes);
    st.counters["history"] = static_cast<double>(ps.history.size());
}
BENCHMARK(BM_RenderState);

}  // namespace

BENCHMARK_MAIN();
