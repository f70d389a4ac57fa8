// fragload: the workload, the sampler and the report of bench/fragbench.
//
//   fragload run    --scenario cheese|pipes --fill-mib N --gap-sec S --probe-mib P --out FILE.json
//   fragload sample --interval-ms 1000 --out FILE.tsv          (until SIGTERM/SIGINT)
//   fragload report --dir DIR --json OUT.json                  (table on stdout)
//
// It reads /proc on its own, with deliberately small parsers that share nothing with fragtune's
// core: the benchmark must not measure fragtune with fragtune's own eyes.
//
// `run` fragments memory the way long-running services do and then asks for huge pages:
//   cheese: touch N MiB of 4 KiB anonymous pages (MADV_NOHUGEPAGE), free 3 of every 4 with
//           MADV_DONTNEED and hold the rest, so free memory is scattered 4-12 KiB holes in movable
//           pageblocks (compaction can repair that by migrating the held pages).
//   pipes:  the same, but then pages are also pinned in pipe buffers (kernel memory, unmovable) as
//           the holes are refilled, and the anonymous pages are released: pageblocks are polluted
//           by pages compaction cannot move, so only reclaim and the reserve help.
// After a gap (the window a tuner has to react in) it faults a P MiB MADV_HUGEPAGE region, touching
// every 4 KiB page so a fallback to small pages allocates the same memory, and reports the kernel's
// counters as deltas over that probe. Wall time is reported but is not a score: on a VM the first
// touch of memory the host has taken back is slow whatever the kernel's tuning.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using json = nlohmann::json;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr int kHugeOrder = 9;  // 2 MiB on x86-64 with 4 KiB pages

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "fragload: %s\n", what.c_str());
    std::exit(1);
}

uint64_t mono_usec() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000u +
           static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) die("cannot read " + path + ": " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

int64_t read_int(const std::string& path) {
    const std::string text = read_file(path);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (errno != 0 || end == text.c_str()) die(path + ": not an integer: " + text);
    return v;
}

// ---- /proc readers ------------------------------------------------------------------------------

std::map<std::string, int64_t> read_vmstat() {
    std::map<std::string, int64_t> m;
    std::istringstream in(read_file("/proc/vmstat"));
    std::string key;
    int64_t value = 0;
    while (in >> key >> value) m[key] = value;
    if (m.empty()) die("/proc/vmstat: no counters");
    return m;
}

// "some avg10=0.00 avg60=0.00 avg300=0.00 total=123" -> total (microseconds) of the "some" line.
int64_t read_psi_some_usec() {
    std::istringstream in(read_file("/proc/pressure/memory"));
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("some ", 0) != 0) continue;
        const auto pos = line.find("total=");
        if (pos == std::string::npos) break;
        return std::strtoll(line.c_str() + pos + 6, nullptr, 10);
    }
    die("/proc/pressure/memory: no 'some ... total=' line");
}

struct Buddy {
    uint64_t free_pages = 0;        // all free pages, every zone
    uint64_t free_huge_pages = 0;   // free pages in blocks of order >= 9
    uint64_t free_huge_blocks = 0;  // free 2 MiB blocks (an order-10 block counts as two)
};

Buddy read_buddy() {
    Buddy b;
    std::istringstream in(read_file("/proc/buddyinfo"));
    std::string line;
    while (std::getline(in, line)) {
        const auto zpos = line.find("zone");
        if (zpos == std::string::npos) continue;
        std::istringstream fields(line.substr(zpos + 4));
        std::string zone;
        fields >> zone;
        uint64_t count = 0;
        for (int order = 0; fields >> count; ++order) {
            const uint64_t pages = count << order;
            b.free_pages += pages;
            if (order >= kHugeOrder) {
                b.free_huge_pages += pages;
                b.free_huge_blocks += count << (order - kHugeOrder);
            }
        }
    }
    return b;
}

// The kernel's unusable free space index for order 9 over all zones together (mm/vmstat.c
// unusable_free_index), in permille: the share of free memory not in blocks of order >= 9.
int64_t unusable_permille(const Buddy& b) {
    if (b.free_pages == 0) return 0;
    return static_cast<int64_t>((b.free_pages - b.free_huge_pages) * 1000 / b.free_pages);
}

// Sum over populated zones of (high - min) watermark pages, and of min, from /proc/zoneinfo.
struct Watermarks {
    uint64_t min_pages = 0;
    uint64_t gap_pages = 0;
};

Watermarks read_watermarks() {
    Watermarks w;
    std::istringstream in(read_file("/proc/zoneinfo"));
    std::string line;
    uint64_t min = 0;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string key;
        f >> key;
        uint64_t v = 0;
        if (key == "min" && (f >> v)) {
            min = v;
        } else if (key == "high" && (f >> v)) {
            w.min_pages += min;
            w.gap_pages += v - std::min(v, min);
        }
    }
    return w;
}

// utime + stime (clock ticks) of every kcompactd thread.
int64_t kcompactd_ticks() {
    int64_t ticks = 0;
    DIR* d = ::opendir("/proc");
    if (!d) die("cannot list /proc");
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        const std::string base = std::string("/proc/") + e->d_name;
        std::ifstream comm_in(base + "/comm");
        std::string comm;
        if (!std::getline(comm_in, comm) || comm.rfind("kcompactd", 0) != 0) continue;
        std::ifstream stat_in(base + "/stat");
        std::string stat;
        if (!std::getline(stat_in, stat)) continue;
        // Fields after the ")" that closes comm: state is field 3, utime 14, stime 15.
        const auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream f(stat.substr(close + 2));
        std::string field;
        int64_t utime = 0, stime = 0;
        for (int i = 3; i <= 15 && (f >> field); ++i) {
            if (i == 14) utime = std::strtoll(field.c_str(), nullptr, 10);
            if (i == 15) stime = std::strtoll(field.c_str(), nullptr, 10);
        }
        ticks += utime + stime;
    }
    ::closedir(d);
    return ticks;
}

int64_t allocstall(const std::map<std::string, int64_t>& vm) {
    int64_t sum = 0;
    for (const auto& [k, v] : vm)
        if (k.rfind("allocstall_", 0) == 0) sum += v;
    return sum;
}

int64_t get(const std::map<std::string, int64_t>& vm, const std::string& key) {
    const auto it = vm.find(key);
    return it == vm.end() ? 0 : it->second;
}

// Counters reported as deltas; allocstall is the sum of allocstall_*.
const std::vector<std::string> kCounters = {"compact_stall",
                                            "compact_fail",
                                            "compact_success",
                                            "compact_migrate_scanned",
                                            "compact_free_scanned",
                                            "compact_daemon_wake",
                                            "compact_daemon_migrate_scanned",
                                            "pgmigrate_success",
                                            "pgscan_direct",
                                            "pgscan_kswapd",
                                            "pgsteal_direct",
                                            "thp_fault_alloc",
                                            "thp_fault_fallback",
                                            "kswapd_low_wmark_hit_quickly",
                                            "workingset_refault_file",
                                            "workingset_refault_anon"};

json counter_deltas(const std::map<std::string, int64_t>& before,
                    const std::map<std::string, int64_t>& after) {
    json j;
    for (const auto& k : kCounters) j[k] = get(after, k) - get(before, k);
    j["allocstall"] = allocstall(after) - allocstall(before);
    return j;
}

// ---- run ----------------------------------------------------------------------------------------

struct RunArgs {
    std::string scenario = "cheese";
    uint64_t fill_mib = 0;
    uint64_t keep_every = 4;
    double gap_sec = 10;
    uint64_t probe_mib = 0;
    uint64_t pipe_mib = 0;  // pipes scenario: unmovable memory held in pipe buffers
    std::string out;
    // Created once the memory is fragmented (before the gap): fragbench's bursts scenario runs the
    // kernel's own high-order probe (nr_hugepages) in that gap.
    std::string mark;
};

char* map_region(uint64_t bytes, int advice) {
    // 2 MiB extra so the region can be aligned: a THP needs an aligned 2 MiB virtual range.
    void* p = ::mmap(nullptr, bytes + 2 * kMiB, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) die(std::string("mmap: ") + std::strerror(errno));
    const auto addr = reinterpret_cast<uintptr_t>(p);
    char* aligned = reinterpret_cast<char*>((addr + 2 * kMiB - 1) & ~(2 * kMiB - 1));
    if (::madvise(aligned, bytes, advice) != 0)
        die(std::string("madvise: ") + std::strerror(errno));
    return aligned;
}

void touch(char* base, uint64_t bytes) {
    for (uint64_t off = 0; off < bytes; off += kPage) base[off] = 1;
}

// Keeps 1 of every `keep_every` pages of [base, base+bytes) and frees the rest.
void punch(char* base, uint64_t bytes, uint64_t keep_every) {
    const uint64_t group = keep_every * kPage;
    for (uint64_t off = 0; off + group <= bytes; off += group)
        if (::madvise(base + off + kPage, group - kPage, MADV_DONTNEED) != 0)
            die(std::string("madvise(DONTNEED): ") + std::strerror(errno));
}

struct Pipe {
    int rd = -1, wr = -1;
};

// Fills pipes with `mib` MiB in page-sized writes, each pipe resized to hold 1 MiB (pipe buffers
// are kernel pages without __GFP_MOVABLE: compaction cannot move them).
std::vector<Pipe> fill_pipes(uint64_t mib) {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    const rlim_t need = 2 * mib + 64;
    if (lim.rlim_cur < need) {
        lim.rlim_cur = need;
        if (lim.rlim_max < need) lim.rlim_max = need;
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0)
            die("setrlimit(NOFILE): " + std::string(std::strerror(errno)));
    }
    std::vector<Pipe> pipes;
    std::vector<char> page(kPage, 'x');
    for (uint64_t i = 0; i < mib; ++i) {
        int fds[2];
        if (::pipe2(fds, O_NONBLOCK) != 0) die(std::string("pipe2: ") + std::strerror(errno));
        if (::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(kMiB)) < 0)
            die(std::string("F_SETPIPE_SZ: ") + std::strerror(errno));
        for (uint64_t off = 0; off < kMiB; off += kPage)
            if (::write(fds[1], page.data(), kPage) != static_cast<ssize_t>(kPage))
                die(std::string("pipe write: ") + std::strerror(errno));
        pipes.push_back({fds[0], fds[1]});
    }
    return pipes;
}

json snapshot() {
    const Buddy b = read_buddy();
    const Watermarks w = read_watermarks();
    return {{"free_kib", b.free_pages * 4},
            {"free_2m_blocks", b.free_huge_blocks},
            {"unusable_order9_permille", unusable_permille(b)},
            {"min_free_kbytes", read_int("/proc/sys/vm/min_free_kbytes")},
            {"watermark_gap_kib", w.gap_pages * 4}};
}

int cmd_run(const RunArgs& a) {
    if (a.fill_mib == 0 || a.probe_mib == 0 || a.out.empty())
        die("run needs --fill-mib, --probe-mib and --out");
    if (a.scenario != "cheese" && a.scenario != "pipes") die("--scenario: cheese or pipes");
    if (a.keep_every < 2) die("--keep-every must be >= 2");
    const long clk_tck = ::sysconf(_SC_CLK_TCK);

    json r;
    r["scenario"] = a.scenario;
    r["fill_mib"] = a.fill_mib;
    r["probe_mib"] = a.probe_mib;
    r["gap_sec"] = a.gap_sec;
    r["pipe_mib"] = a.scenario == "pipes" ? a.pipe_mib : 0;

    const auto vm_start = read_vmstat();
    const int64_t kc_start = kcompactd_ticks();
    const uint64_t t0 = mono_usec();
    r["start"] = snapshot();

    const uint64_t fill_bytes = a.fill_mib * kMiB;
    char* fill = map_region(fill_bytes, MADV_NOHUGEPAGE);
    touch(fill, fill_bytes);
    const uint64_t t_filled = mono_usec();
    punch(fill, fill_bytes, a.keep_every);
    std::vector<Pipe> pipes;
    if (a.scenario == "pipes") {
        // Unmovable allocations now come from the holes just punched (the free lists hold little
        // else), then the anonymous pages are released: what stays are unmovable pages strewn over
        // many pageblocks.
        pipes = fill_pipes(a.pipe_mib);
        if (::madvise(fill, fill_bytes, MADV_DONTNEED) != 0)
            die(std::string("madvise(DONTNEED): ") + std::strerror(errno));
    }
    const uint64_t t_fragmented = mono_usec();
    r["fill_sec"] = static_cast<double>(t_filled - t0) / 1e6;
    r["fragment_sec"] = static_cast<double>(t_fragmented - t_filled) / 1e6;
    r["after_fragment"] = snapshot();
    if (!a.mark.empty()) std::ofstream(a.mark) << "fragmented\n";

    // The gap: nothing of ours runs; a tuner (or nothing) reacts. Kept well under the ~30 s after
    // which idle-memory reclaim (DAMON) on some VMs starts paging out what we hold.
    const auto gap = static_cast<uint64_t>(a.gap_sec * 1e6);
    const timespec ts{static_cast<time_t>(gap / 1'000'000),
                      static_cast<long>(gap % 1'000'000) * 1000};
    while (::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr) == EINTR) {
    }
    r["end_of_gap"] = snapshot();

    // The probe.
    const auto vm_before = read_vmstat();
    const int64_t psi_before = read_psi_some_usec();
    const uint64_t t_probe = mono_usec();
    const uint64_t probe_bytes = a.probe_mib * kMiB;
    char* probe = map_region(probe_bytes, MADV_HUGEPAGE);
    touch(probe, probe_bytes);
    const uint64_t t_probed = mono_usec();
    const int64_t psi_after = read_psi_some_usec();
    const auto vm_after = read_vmstat();

    json p = counter_deltas(vm_before, vm_after);
    p["psi_some_usec"] = psi_after - psi_before;
    p["wall_sec"] = static_cast<double>(t_probed - t_probe) / 1e6;
    const int64_t thp = p["thp_fault_alloc"].get<int64_t>();
    p["thp_share_permille"] =
        std::min<int64_t>(1000, thp * 1000 / static_cast<int64_t>(probe_bytes / (2 * kMiB)));
    r["probe"] = p;
    r["end"] = snapshot();

    // Whole-trial cost side: what compaction and kcompactd did from start to end.
    r["trial"] = counter_deltas(vm_start, vm_after);
    r["trial"]["kcompactd_cpu_ms"] = (kcompactd_ticks() - kc_start) * 1000 / clk_tck;
    r["trial"]["wall_sec"] = static_cast<double>(t_probed - t0) / 1e6;

    for (const Pipe& pp : pipes) {
        ::close(pp.rd);
        ::close(pp.wr);
    }
    std::ofstream out(a.out);
    out << r.dump(2) << '\n';
    if (!out) die("cannot write " + a.out);
    // For the script: phase lengths (the plot's markers) and a one-line summary, so that it needs
    // no JSON tool of its own.
    std::printf("phases %.3f %.3f %.3f %.3f\n", r["fill_sec"].get<double>(),
                r["fragment_sec"].get<double>(), a.gap_sec, p["wall_sec"].get<double>());
    std::printf(
        "summary psi_some=%" PRId64 " ms compact_stall=%" PRId64 " allocstall=%" PRId64
        " pgscan_direct=%" PRId64 " thp_fallback=%" PRId64 " free_2m_blocks_gap_end=%" PRId64 "\n",
        p["psi_some_usec"].get<int64_t>() / 1000, p["compact_stall"].get<int64_t>(),
        p["allocstall"].get<int64_t>(), p["pgscan_direct"].get<int64_t>(),
        p["thp_fault_fallback"].get<int64_t>(), r["end_of_gap"]["free_2m_blocks"].get<int64_t>());
    return 0;
}

// ---- hold --------------------------------------------------------------------------------------

volatile sig_atomic_t g_stop = 0;
void on_stop(int) {
    g_stop = 1;
}

// Ballast: N MiB of touched 4 KiB anonymous pages held until SIGTERM/SIGINT, standing for the
// services that occupy a real machine. With no swap it cannot be reclaimed, so it is touched once
// and costs nothing per trial, and every trial starts with the same memory in use.
int cmd_hold(uint64_t mib) {
    if (mib == 0) die("hold needs --mib");
    struct sigaction sa {};
    sa.sa_handler = on_stop;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    const uint64_t bytes = mib * kMiB;
    touch(map_region(bytes, MADV_NOHUGEPAGE), bytes);
    std::printf("held %" PRIu64 " MiB\n", mib);
    std::fflush(stdout);
    while (!g_stop) ::pause();
    return 0;
}

// ---- sample -------------------------------------------------------------------------------------

const char* const kKnobs[] = {"min_free_kbytes", "watermark_scale_factor",
                              "compaction_proactiveness", "vfs_cache_pressure", "swappiness"};

int cmd_sample(uint64_t interval_ms, const std::string& out_path) {
    if (out_path.empty()) die("sample needs --out");
    struct sigaction sa {};
    sa.sa_handler = on_stop;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    FILE* out = std::fopen(out_path.c_str(), "w");
    if (!out) die("cannot write " + out_path);
    const long clk_tck = ::sysconf(_SC_CLK_TCK);
    std::fprintf(out,
                 "t_sec\tmin_free_kbytes\twatermark_scale_factor\tcompaction_proactiveness\t"
                 "vfs_cache_pressure\tswappiness\twatermark_gap_kib\tfree_kib\tfree_2m_blocks\t"
                 "unusable_order9_permille\tcompact_stall\tallocstall\tpgscan_direct\t"
                 "pgmigrate_success\tcompact_daemon_wake\tpsi_some_usec\tkcompactd_cpu_ms\n");
    const uint64_t t0 = mono_usec();
    uint64_t next = t0;
    while (!g_stop) {
        const auto vm = read_vmstat();
        const Buddy b = read_buddy();
        const Watermarks w = read_watermarks();
        std::fprintf(out, "%.2f", static_cast<double>(mono_usec() - t0) / 1e6);
        for (const char* k : kKnobs)
            std::fprintf(out, "\t%" PRId64, read_int(std::string("/proc/sys/vm/") + k));
        std::fprintf(out,
                     "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64
                     "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\n",
                     w.gap_pages * 4, b.free_pages * 4, b.free_huge_blocks, unusable_permille(b),
                     get(vm, "compact_stall"), allocstall(vm), get(vm, "pgscan_direct"),
                     get(vm, "pgmigrate_success"), get(vm, "compact_daemon_wake"),
                     read_psi_some_usec(), kcompactd_ticks() * 1000 / clk_tck);
        std::fflush(out);
        next += interval_ms * 1000;
        const uint64_t now = mono_usec();
        if (next <= now) next = now + interval_ms * 1000;
        const uint64_t wait = next - now;
        const timespec ts{static_cast<time_t>(wait / 1'000'000),
                          static_cast<long>(wait % 1'000'000) * 1000};
        ::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);  // EINTR: the loop checks g_stop
    }
    std::fclose(out);
    return 0;
}

// ---- report -------------------------------------------------------------------------------------

// Mean of a column of a sampler TSV (the value held during the trial).
std::optional<double> tsv_mean(const std::string& path, const std::string& column) {
    std::ifstream in(path);
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    std::vector<std::string> header;
    {
        std::istringstream h(line);
        for (std::string c; std::getline(h, c, '\t');) header.push_back(c);
    }
    const auto it = std::find(header.begin(), header.end(), column);
    if (it == header.end()) return std::nullopt;
    const auto col = static_cast<std::size_t>(it - header.begin());
    double sum = 0;
    std::size_t n = 0;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string cell;
        for (std::size_t i = 0; i <= col && std::getline(f, cell, '\t'); ++i) {
        }
        if (cell.empty()) continue;
        sum += std::strtod(cell.c_str(), nullptr);
        ++n;
    }
    if (n == 0) return std::nullopt;
    return sum / static_cast<double>(n);
}

struct Metric {
    const char* key;    // in the per-trial record
    const char* label;  // table row
    bool cost;          // cost side (lower is cheaper) vs. trouble side (lower is better)
};

const std::vector<Metric> kMetrics = {
    {"free_at_start_mib", "free memory when the workload starts (MiB)", false},
    {"psi_some_ms", "PSI memory some during probe (ms)", false},
    {"compact_stall", "compact_stall during probe", false},
    {"allocstall", "allocstall (direct reclaim entries)", false},
    {"pgscan_direct", "pgscan_direct (pages)", false},
    {"thp_fault_fallback", "thp_fault_fallback", false},
    {"thp_share_pct", "probe backed by THP (%)", false},
    {"free_2m_blocks_gap_end", "free 2 MiB blocks at end of gap", false},
    {"unusable_order9_permille", "order-9 unusable index at end of gap (permille)", false},
    {"mean_min_free_kbytes", "mean min_free_kbytes held (KiB)", true},
    {"mean_watermark_gap_kib", "mean watermark gap high-min (KiB)", true},
    {"compact_migrate_scanned", "compact_migrate_scanned (trial)", true},
    {"pgmigrate_success", "pgmigrate_success (trial)", true},
    {"kcompactd_cpu_ms", "kcompactd CPU (ms, trial)", true},
    {"probe_wall_sec", "probe wall time (s, not scored)", true},
};

json trial_metrics(const json& r, const std::string& tsv) {
    const json& p = r.at("probe");
    json m;
    m["free_at_start_mib"] = r.at("start").at("free_kib").get<double>() / 1024.0;
    m["psi_some_ms"] = p.at("psi_some_usec").get<double>() / 1000.0;
    for (const char* k : {"compact_stall", "allocstall", "pgscan_direct", "thp_fault_fallback"})
        m[k] = p.at(k).get<double>();
    m["thp_share_pct"] = p.at("thp_share_permille").get<double>() / 10.0;
    m["free_2m_blocks_gap_end"] = r.at("end_of_gap").at("free_2m_blocks").get<double>();
    m["unusable_order9_permille"] = r.at("end_of_gap").at("unusable_order9_permille").get<double>();
    const auto mf = tsv_mean(tsv, "min_free_kbytes");
    const auto gap = tsv_mean(tsv, "watermark_gap_kib");
    // Without samples, the values at start, end of gap and end stand in.
    auto fallback = [&](const char* key) {
        return (r.at("start").at(key).get<double>() + r.at("end_of_gap").at(key).get<double>() +
                r.at("end").at(key).get<double>()) /
               3.0;
    };
    m["mean_min_free_kbytes"] = mf ? *mf : fallback("min_free_kbytes");
    m["mean_watermark_gap_kib"] = gap ? *gap : fallback("watermark_gap_kib");
    m["compact_migrate_scanned"] = r.at("trial").at("compact_migrate_scanned").get<double>();
    m["pgmigrate_success"] = r.at("trial").at("pgmigrate_success").get<double>();
    m["kcompactd_cpu_ms"] = r.at("trial").at("kcompactd_cpu_ms").get<double>();
    m["probe_wall_sec"] = p.at("wall_sec").get<double>();
    return m;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

std::string fmt_num(double v) {
    char buf[64];
    if (std::fabs(v) >= 1000 || v == std::floor(v))
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

// Trials are DIR/trial-NN-ARM.json (+ .tsv); ARM is a, b or c. Arm names come from DIR/arms.json
// when present ({"a": "kernel defaults", ...}).
int cmd_report(const std::string& dir, const std::string& json_out) {
    std::vector<std::string> files;
    DIR* d = ::opendir(dir.c_str());
    if (!d) die("cannot list " + dir);
    while (const dirent* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n.rfind("trial-", 0) == 0 && n.size() > 5 && n.substr(n.size() - 5) == ".json")
            files.push_back(n);
    }
    ::closedir(d);
    std::sort(files.begin(), files.end());
    if (files.empty()) die("no trial-*.json in " + dir);

    json meta = json::object();
    {
        std::ifstream in(dir + "/arms.json");
        if (in) meta = json::parse(in);
    }
    std::map<std::string, std::vector<json>> by_arm;  // arm letter -> trial metrics
    json trials = json::array();
    for (const auto& f : files) {
        const std::string stem = f.substr(0, f.size() - 5);
        const std::string arm = stem.substr(stem.rfind('-') + 1);
        std::ifstream in(dir + "/" + f);
        const json r = json::parse(in);
        json m = trial_metrics(r, dir + "/" + stem + ".tsv");
        by_arm[arm].push_back(m);
        trials.push_back({{"file", f}, {"arm", arm}, {"metrics", m}, {"raw", r}});
    }

    json summary;
    for (const auto& [arm, ms] : by_arm) {
        for (const auto& metric : kMetrics) {
            std::vector<double> v;
            for (const auto& m : ms) v.push_back(m.at(metric.key).get<double>());
            summary[arm][metric.key] = {{"median", median(v)},
                                        {"min", *std::min_element(v.begin(), v.end())},
                                        {"max", *std::max_element(v.begin(), v.end())},
                                        {"n", v.size()}};
        }
    }

    // Table: one row per metric, one column per arm, "median [min-max]".
    std::vector<std::string> arms;
    for (const auto& [arm, ms] : by_arm) arms.push_back(arm);
    std::printf("| metric |");
    for (const auto& arm : arms) {
        const std::string name = meta.contains(arm) ? meta[arm].get<std::string>() : arm;
        std::printf(" (%s) %s, n=%zu |", arm.c_str(), name.c_str(), by_arm[arm].size());
    }
    std::printf("\n|---|");
    for (std::size_t i = 0; i < arms.size(); ++i) std::printf("---|");
    std::printf("\n");
    for (const auto& metric : kMetrics) {
        std::printf("| %s |", metric.label);
        for (const auto& arm : arms) {
            const json& s = summary[arm][metric.key];
            std::printf(" %s [%s-%s] |", fmt_num(s["median"].get<double>()).c_str(),
                        fmt_num(s["min"].get<double>()).c_str(),
                        fmt_num(s["max"].get<double>()).c_str());
        }
        std::printf("\n");
    }

    // The targets: (c) removes >= 90% of the stalls and direct reclaim (a) shows, matches (b), and
    // holds <= 50% of (b)'s mean reserve. Reductions are of medians.
    json verdict;
    if (by_arm.count("a") && by_arm.count("c")) {
        std::printf("\n");
        for (const char* k : {"psi_some_ms", "compact_stall", "allocstall", "pgscan_direct"}) {
            const double base = summary["a"][k]["median"].get<double>();
            const double c = summary["c"][k]["median"].get<double>();
            const double red = base > 0 ? 100.0 * (base - c) / base : 0.0;
            verdict[std::string(k) + "_reduction_pct"] = red;
            std::string line = std::string(k) + ": fragtuned removes " + fmt_num(red) +
                               "% of the defaults' median";
            if (by_arm.count("b")) {
                const double b = summary["b"][k]["median"].get<double>();
                const double redb = base > 0 ? 100.0 * (base - b) / base : 0.0;
                verdict[std::string(k) + "_reduction_pct_static"] = redb;
                line += " (static advice: " + fmt_num(redb) + "%)";
            }
            std::printf("%s%s\n", line.c_str(), base > 0 ? "" : " [defaults show none]");
        }
        if (by_arm.count("b")) {
            const double rb = summary["b"]["mean_min_free_kbytes"]["median"].get<double>();
            const double rc = summary["c"]["mean_min_free_kbytes"]["median"].get<double>();
            verdict["reserve_ratio_c_over_b_pct"] = rb > 0 ? 100.0 * rc / rb : 0.0;
            std::printf(
                "reserve: fragtuned holds %s%% of the static advice's mean min_free_kbytes\n",
                fmt_num(rb > 0 ? 100.0 * rc / rb : 0.0).c_str());
        }
    }

    if (!json_out.empty()) {
        std::ofstream out(json_out);
        out << json{{"arms", meta}, {"summary", summary}, {"verdict", verdict}, {"trials", trials}}
                   .dump(2)
            << '\n';
        if (!out) die("cannot write " + json_out);
    }
    return 0;
}

uint64_t to_u64(const char* flag, const char* v) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long x = std::strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0') die(std::string(flag) + ": not a number: " + v);
    return x;
}

void usage() {
    std::fprintf(stderr,
                 "usage: fragload run --scenario cheese|pipes --fill-mib N --probe-mib P "
                 "[--gap-sec S] [--keep-every K] [--pipe-mib M] [--mark FILE] --out FILE\n"
                 "       fragload hold --mib N\n"
                 "       fragload sample [--interval-ms MS] --out FILE\n"
                 "       fragload report --dir DIR [--json FILE]\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage();
        return 2;
    }
    const std::string_view cmd = argv[1];
    RunArgs run;
    uint64_t interval_ms = 1000;
    std::string out, dir, json_out;
    for (int i = 2; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const char* v = argv[++i];
        if (flag == "--scenario")
            run.scenario = v;
        else if (flag == "--fill-mib" || flag == "--mib")
            run.fill_mib = to_u64(argv[i - 1], v);
        else if (flag == "--keep-every")
            run.keep_every = to_u64(argv[i - 1], v);
        else if (flag == "--gap-sec")
            run.gap_sec = std::strtod(v, nullptr);
        else if (flag == "--probe-mib")
            run.probe_mib = to_u64(argv[i - 1], v);
        else if (flag == "--pipe-mib")
            run.pipe_mib = to_u64(argv[i - 1], v);
        else if (flag == "--interval-ms")
            interval_ms = to_u64(argv[i - 1], v);
        else if (flag == "--out")
            out = v;
        else if (flag == "--mark")
            run.mark = v;
        else if (flag == "--dir")
            dir = v;
        else if (flag == "--json")
            json_out = v;
        else {
            usage();
            return 2;
        }
    }
    if (cmd == "run") {
        run.out = out;
        return cmd_run(run);
    }
    if (cmd == "hold") return cmd_hold(run.fill_mib);
    if (cmd == "sample") return cmd_sample(interval_ms == 0 ? 1000 : interval_ms, out);
    if (cmd == "report") return cmd_report(dir, json_out);
    usage();
    return 2;
}
