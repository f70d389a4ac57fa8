// The Sampler: one pass over the kernel's memory files through KernelFs, parsed and derived into a
// Sample; and the two renderings of a Sample (`fragtuned --sample` text and the JSON of
// doc/sample-json.md).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <iterator>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "fragtune/sensing/sample.hpp"

namespace fragtune {

namespace {

constexpr std::string_view kBuddyinfo = "/proc/buddyinfo";
constexpr std::string_view kZoneinfo = "/proc/zoneinfo";
constexpr std::string_view kVmstat = "/proc/vmstat";
constexpr std::string_view kMeminfo = "/proc/meminfo";
constexpr std::string_view kVfsDenom = kVfsCachePressureDenomPath;

// A handle for `path`; a path the KernelFs refuses (never one of ours) leaves an empty handle,
// whose read() says so.
KernelFile open_or_empty(const KernelFs& fs, std::string_view path) {
    auto f = fs.open_file(path);
    return f ? std::move(*f) : KernelFile();
}

bool is_trouble(ZoneinfoReason r) {
    switch (r) {
        case ZoneinfoReason::forced:
        case ZoneinfoReason::near_watermark:
        case ZoneinfoReason::failures:
        case ZoneinfoReason::stalls:
        case ZoneinfoReason::psi:
            return true;
        default:
            return false;
    }
}

}  // namespace

std::string psi_path_for(std::string_view psi_source) {
    return psi_source == "system" ? std::string("/proc/pressure/memory")
                                  : std::string(psi_source) + "/memory.pressure";
}

Sampler::Sampler(const KernelFs& fs, SamplerOptions options)
    : fs_(fs), options_(std::move(options)), profile_(resolve_kernel_profile(fs)) {
    open_files();
}

void Sampler::open_files() {
    buddyinfo_ = open_or_empty(fs_, kBuddyinfo);
    zoneinfo_ = open_or_empty(fs_, kZoneinfo);
    vmstat_ = open_or_empty(fs_, kVmstat);
    meminfo_ = open_or_empty(fs_, kMeminfo);
    psi_ = open_or_empty(fs_, options_.psi_path);
    vfs_denom_ = open_or_empty(fs_, kVfsDenom);
    for (const auto& t : kTunables) knob_files_[index(t.knob)] = open_or_empty(fs_, t.proc_path);
}

void Sampler::set_options(SamplerOptions options) {
    const bool psi_moved = options.psi_path != options_.psi_path;
    options_ = std::move(options);
    if (psi_moved) psi_ = open_or_empty(fs_, options_.psi_path);
}

Result<Sample> Sampler::take(uint64_t mono_usec, std::vector<AllocFailure> failures,
                             uint64_t kmsg_lost) {
    auto s = next(mono_usec, std::move(failures), kmsg_lost);
    if (!s) return s.error();
    return **s;
}

Result<const Sample*> Sampler::next(uint64_t mono_usec, std::vector<AllocFailure> failures,
                                    uint64_t kmsg_lost, bool force_zoneinfo) {
    Sample& s = buf_[cur_];
    Sample* prev = have_prev_ ? &buf_[cur_ ^ 1] : nullptr;
    s.mono_usec = mono_usec;

    // Mandatory files: an error names the file (KernelFile and the parsers put the path in their
    // messages).
    auto buddy = buddyinfo_.read();
    if (!buddy) return buddy.error();
    if (auto r = parse_buddyinfo_into(*buddy, s.buddy, kBuddyinfo); !r) return r.error();

    // vmstat and meminfo are parsed against the table the previous sample interned.
    auto vm = vmstat_.read();
    if (!vm) return vm.error();
    if (prev) s.vmstat.counters.share_names(prev->vmstat.counters);
    if (auto r = parse_vmstat_into(*vm, s.vmstat, kVmstat); !r) return r.error();

    auto mem = meminfo_.read();
    if (!mem) return mem.error();
    if (prev) s.meminfo.kib.share_names(prev->meminfo.kib);
    if (auto r = parse_meminfo_into(*mem, s.meminfo, kMeminfo); !r) return r.error();

    // PSI is optional: absent without CONFIG_PSI, with psi=0 (the file is missing or reads fail
    // with EOPNOTSUPP), or when the configured cgroup is gone. A file that exists but does not
    // parse is treated the same way: tuning without PSI is degraded, tuning not at all would be
    // worse. Either way the sample says why (psi_error), so that it is never silent.
    s.psi.reset();
    s.psi_error.clear();
    if (auto text = psi_.read()) {
        if (auto psi = parse_psi(*text, options_.psi_path))
            s.psi = *psi;
        else
            s.psi_error = fmt::format("PSI file does not parse: {}", psi.error().describe());
    } else if (text.error().sys_errno == ENOENT) {
        s.psi_error = fmt::format(
            "no PSI: {} does not exist (kernel without CONFIG_PSI, booted with psi=0, or the "
            "cgroup is gone)",
            options_.psi_path);
    } else {
        s.psi_error = fmt::format("PSI unreadable: {}", text.error().describe());
    }

    s.profile = profile_;
    s.kernel = profile_.version;
    s.vfs_cache_pressure_denom.reset();
    if (!vfs_denom_.absent()) {  // 6.18+ only
        if (auto text = vfs_denom_.read()) {
            if (auto v = parse_sysctl_int(*text, kVfsDenom); v && *v > 0)
                s.vfs_cache_pressure_denom = *v;
        }
    }

    // A knob this kernel lacks (compaction_proactiveness before 5.9) is absent, as is one whose
    // file cannot be read or parsed: the controller leaves an absent knob alone.
    for (const auto& t : kTunables) {
        auto& v = s.knobs[index(t.knob)];
        v.reset();
        KernelFile& f = knob_files_[index(t.knob)];
        if (f.absent()) continue;
        if (auto text = f.read()) {
            if (auto n = parse_sysctl_int(*text, t.proc_path)) v = *n;
        }
    }

    s.failures = std::move(failures);
    s.kmsg_lost = kmsg_lost;

    // zoneinfo last, when the cheap files say the decision needs it.
    const ZoneinfoReason why =
        zoneinfo_reason(s, prev, zi_state_, options_.zoneinfo, force_zoneinfo);
    if (why != ZoneinfoReason::none) {
        auto text = zoneinfo_.read();
        if (!text) return text.error();
        auto zones = parse_zoneinfo(*text, kZoneinfo);
        if (!zones) return zones.error();
        s.zoneinfo = std::move(*zones);
        s.zoneinfo_fresh = true;
        s.zoneinfo_mono_usec = mono_usec;
    } else {
        // The last read moves here (prev is not read again: after this call it is the scratch).
        std::swap(s.zoneinfo, prev->zoneinfo);
        s.zoneinfo_fresh = false;
        s.zoneinfo_mono_usec = prev->zoneinfo_mono_usec;
    }

    derive_signals(prev, s, options_.signals);

    // Only a good sample moves the policy's state.
    if (why != ZoneinfoReason::none) {
        zi_state_.have = true;
        zi_state_.ticks_since_read = 0;
        zi_state_.min_free_kbytes = s.knob(Knob::min_free_kbytes);
        zi_state_.watermark_scale_factor = s.knob(Knob::watermark_scale_factor);
    } else if (zi_state_.ticks_since_read < UINT32_MAX) {
        ++zi_state_.ticks_since_read;
    }
    if (is_trouble(why))
        zi_state_.ticks_since_trouble = 0;
    else if (zi_state_.ticks_since_trouble < UINT32_MAX)
        ++zi_state_.ticks_since_trouble;
    zi_reason_ = why;

    have_prev_ = true;
    cur_ ^= 1;
    return &buf_[cur_ ^ 1];
}

// ---- rendering ----------------------------------------------------------------------------------

namespace {

// Samples carry pages; MiB figures are for people, in the sampled kernel's page size.
double pages_mib(int64_t pages, uint64_t page_size_bytes) {
    return static_cast<double>(pages) * static_cast<double>(page_size_bytes) / (1024.0 * 1024.0);
}

std::string kib_human(uint64_t kib) {
    if (kib >= 1024ull * 1024)
        return fmt::format("{:.1f} GiB", static_cast<double>(kib) / 1048576.0);
    if (kib >= 1024) return fmt::format("{:.1f} MiB", static_cast<double>(kib) / 1024.0);
    return fmt::format("{} KiB", kib);
}

std::string opt_kib(const std::optional<uint64_t>& v) {
    return v ? kib_human(*v) : "n/a";
}

// 0..1000 as 0.000..1.000, the way debugfs prints the indices.
std::string permille(int v) {
    return fmt::format("{}{}.{:03d}", v < 0 ? "-" : "", std::abs(v) / 1000, std::abs(v) % 1000);
}

// The counters `--sample` shows as rates: the ones the controller's rules read.
constexpr std::string_view kKeyCounters[] = {"allocstall",
                                             "pgscan_direct",
                                             "pgsteal_direct",
                                             "compact_stall",
                                             "compact_fail",
                                             "compact_success",
                                             "kswapd_low_wmark_hit_quickly",
                                             "thp_fault_fallback",
                                             "workingset_refault_file",
                                             "pswpin",
                                             "pswpout"};

}  // namespace

std::string format_sample_text(const Sample& s) {
    const Signals& g = s.signals;
    const uint64_t ps = s.profile.page_size_bytes;
    std::string out;
    auto it = std::back_inserter(out);

    fmt::format_to(it, "sample at {:.3f} s (monotonic)", static_cast<double>(s.mono_usec) / 1e6);
    if (g.interval_usec)
        fmt::format_to(it, ", interval {:.3f} s", static_cast<double>(g.interval_usec) / 1e6);
    if (s.kernel) fmt::format_to(it, ", kernel {}.{}", s.kernel->major, s.kernel->minor);
    out += '\n';
    fmt::format_to(it, "kernel profile: {}\n", s.profile.describe());

    fmt::format_to(
        it, "memory: total {}, free {}, available {}, slab reclaimable {}, unreclaimable {}",
        kib_human(g.mem_total_kib), kib_human(g.mem_free_kib), opt_kib(g.mem_available_kib),
        opt_kib(g.sreclaimable_kib), opt_kib(g.sunreclaim_kib));
    if (g.swap_total_kib)
        fmt::format_to(it, ", swap {} of {} free", kib_human(g.swap_free_kib),
                       kib_human(g.swap_total_kib));
    else
        out += ", no swap";
    out += '\n';

    // Which orders get an index column: the configured targets this kernel has.
    std::vector<int> orders;
    for (const auto& t : g.targets) orders.push_back(t.order);

    fmt::format_to(it, "zones (free blocks per order 0..{}; headroom = free - watermark):\n",
                   s.buddy.orders > 0 ? s.buddy.orders - 1 : 0);
    for (const auto& z : g.zones) {
        const auto free = static_cast<int64_t>(z.free_pages);
        fmt::format_to(it,
                       "  node {} {:<8} free {:>9.1f} MiB  headroom min {:+.1f} low {:+.1f} high "
                       "{:+.1f} MiB\n",
                       z.node, z.zone, pages_mib(free, ps),
                       pages_mib(free - static_cast<int64_t>(z.min_pages), ps),
                       pages_mib(free - static_cast<int64_t>(z.low_pages), ps),
                       pages_mib(free - static_cast<int64_t>(z.high_pages), ps));
        if (!z.free_blocks.empty())
            fmt::format_to(it, "    blocks  {}\n", fmt::join(z.free_blocks, " "));
        if (!orders.empty() && !z.unusable_permille.empty()) {
            out += "    unusable";
            for (int o : orders)
                if (static_cast<size_t>(o) < z.unusable_permille.size())
                    fmt::format_to(it, "  order {}: {}", o, permille(z.unusable_permille[o]));
            out += '\n';
        }
    }

    fmt::format_to(it, "fragmentation score (order {}):", g.compaction_order);
    for (const auto& n : g.nodes) fmt::format_to(it, " node {} {}", n.node, n.fragmentation_score);
    if (g.nodes.empty()) out += " n/a";
    out += '\n';

    for (const auto& t : g.targets)
        fmt::format_to(it, "order {}: {} blocks free, unusable {} (worst zone {})\n", t.order,
                       t.free_blocks, permille(t.unusable_permille),
                       permille(t.worst_zone_unusable_permille));

    fmt::format_to(
        it,
        "watermarks: {} zone(s) at/below min, {} below low, {} below high; least headroom "
        "above low {:+.1f} MiB\n",
        g.zones_at_or_below_min, g.zones_below_low, g.zones_below_high,
        pages_mib(g.min_headroom_pages, ps));

    if (!g.psi_some_avg10) {
        out += s.psi_error.empty() ? "psi: not available\n"
                                   : "psi: not available: " + s.psi_error + "\n";
    } else {
        fmt::format_to(it, "psi: some avg10 {:.2f}%", *g.psi_some_avg10);
        if (g.psi_full_avg10) fmt::format_to(it, ", full avg10 {:.2f}%", *g.psi_full_avg10);
        if (g.psi_some_percent)
            fmt::format_to(it, "; this interval some {:.2f}% ({} us stalled)", *g.psi_some_percent,
                           *g.psi_some_stall_usec);
        if (g.psi_full_stall_usec) fmt::format_to(it, ", full {} us", *g.psi_full_stall_usec);
        out += '\n';
    }

    if (!g.interval_usec) {
        out += "rates: need a second sample\n";
    } else {
        out += "rates (/s):";
        bool first = true;
        for (auto name : kKeyCounters) {
            auto c = g.counter(name);
            if (!c) continue;  // this kernel does not count it
            fmt::format_to(it, "{} {} {:.1f}{}", first ? "" : ",", name, c->per_sec,
                           c->reset ? " (reset)" : "");
            first = false;
        }
        out += '\n';
    }

    if (g.failures_by_order.empty() && !g.vmalloc_failures) {
        out += "allocation failures: none";
    } else {
        out += "allocation failures:";
        for (const auto& [order, n] : g.failures_by_order) {
            auto a = g.atomic_failures_by_order.find(order);
            fmt::format_to(it, " order {}: {} ({} atomic);", order, n,
                           a == g.atomic_failures_by_order.end() ? 0u : a->second);
        }
        if (g.vmalloc_failures) fmt::format_to(it, " vmalloc: {}", g.vmalloc_failures);
    }
    if (g.kmsg_lost) fmt::format_to(it, " ({} kernel log records lost)", g.kmsg_lost);
    out += '\n';

    out += "knobs:";
    for (const auto& t : kTunables) {
        auto v = s.knob(t.knob);
        if (v)
            fmt::format_to(it, " {} {}", t.name, *v);
        else
            fmt::format_to(it, " {} n/a", t.name);
    }
    out += '\n';
    return out;
}

namespace {

// Keys in insertion order, so the printed object reads in the order doc/sample-json.md documents
// it.
using Json = nlohmann::ordered_json;

template <typename T>
Json opt(const std::optional<T>& v) {
    return v ? Json(*v) : Json(nullptr);
}

}  // namespace

std::string format_sample_json(const Sample& s) {
    using json = Json;
    const Signals& g = s.signals;
    json j;
    j["schema_version"] = 1;
    j["mono_usec"] = s.mono_usec;
    j["interval_usec"] = g.interval_usec;
    j["kernel"] =
        s.kernel ? json(fmt::format("{}.{}", s.kernel->major, s.kernel->minor)) : json(nullptr);
    j["page_size_kib"] = s.profile.page_size_bytes / 1024;
    j["profile"] = {
        {"release", s.profile.release},
        {"page_size_source", s.profile.page_size_source},
        {"hpage_pmd_order", s.profile.hpage_pmd_order},
        {"movable_in_lowmem", s.profile.movable_in_lowmem},
        {"score_wmark_leeway", s.profile.score_wmark_leeway},
        {"pgscan_direct_has_khugepaged", s.profile.pgscan_direct_has_khugepaged},
        {"pgscan_direct_has_proactive", s.profile.pgscan_direct_has_proactive},
        {"vfs_cache_pressure_denom", opt(s.vfs_cache_pressure_denom)},
        {"watermark_scale_factor_max", s.profile.range(Knob::watermark_scale_factor).max}};

    j["memory"] = {{"total_kib", g.mem_total_kib},
                   {"free_kib", g.mem_free_kib},
                   {"available_kib", opt(g.mem_available_kib)},
                   {"sreclaimable_kib", opt(g.sreclaimable_kib)},
                   {"sunreclaim_kib", opt(g.sunreclaim_kib)},
                   {"swap_total_kib", g.swap_total_kib},
                   {"swap_free_kib", g.swap_free_kib}};

    json zones = json::array();
    for (const auto& z : g.zones) {
        const auto free = static_cast<int64_t>(z.free_pages);
        zones.push_back({{"node", z.node},
                         {"zone", z.zone},
                         {"managed_pages", z.managed_pages},
                         {"present_pages", z.present_pages},
                         {"free_pages", z.free_pages},
                         {"min_pages", z.min_pages},
                         {"low_pages", z.low_pages},
                         {"high_pages", z.high_pages},
                         {"headroom_min_pages", free - static_cast<int64_t>(z.min_pages)},
                         {"headroom_low_pages", free - static_cast<int64_t>(z.low_pages)},
                         {"headroom_high_pages", free - static_cast<int64_t>(z.high_pages)},
                         {"boost_pages", z.boost_pages},
                         {"reserve_pages", z.reserve_pages},
                         {"free_blocks", z.free_blocks},
                         {"unusable_permille", z.unusable_permille},
                         {"extfrag_permille", z.extfrag_permille}});
    }
    j["zones"] = std::move(zones);

    json nodes = json::array();
    for (const auto& n : g.nodes)
        nodes.push_back({{"node", n.node}, {"fragmentation_score", n.fragmentation_score}});
    j["nodes"] = std::move(nodes);
    j["compaction_order"] = g.compaction_order;
    j["max_fragmentation_score"] = g.max_fragmentation_score;

    json targets = json::array();
    for (const auto& t : g.targets)
        targets.push_back({{"order", t.order},
                           {"free_blocks", t.free_blocks},
                           {"unusable_permille", t.unusable_permille},
                           {"worst_zone_unusable_permille", t.worst_zone_unusable_permille}});
    j["targets"] = std::move(targets);

    j["watermarks"] = {{"zones_at_or_below_min", g.zones_at_or_below_min},
                       {"zones_below_low", g.zones_below_low},
                       {"zones_below_high", g.zones_below_high},
                       {"min_headroom_pages", g.min_headroom_pages},
                       {"free_pages", g.free_pages},
                       {"min_pages", g.min_pages},
                       {"low_pages", g.low_pages},
                       {"high_pages", g.high_pages}};

    if (g.psi_some_avg10) {
        j["psi"] = {{"some_avg10_percent", *g.psi_some_avg10},
                    {"full_avg10_percent", opt(g.psi_full_avg10)},
                    {"some_stall_usec", opt(g.psi_some_stall_usec)},
                    {"full_stall_usec", opt(g.psi_full_stall_usec)},
                    {"some_percent", opt(g.psi_some_percent)}};
    } else {
        j["psi"] = nullptr;
    }
    j["psi_error"] = s.psi_error.empty() ? json(nullptr) : json(s.psi_error);

    json counters = json::object();
    for (const auto& [name, c] : g.counters)
        counters[name] = {{"delta", c.delta}, {"per_sec", c.per_sec}, {"reset", c.reset}};
    j["counters"] = std::move(counters);

    json by_order = json::object(), atomic = json::object();
    for (const auto& [order, n] : g.failures_by_order) by_order[std::to_string(order)] = n;
    for (const auto& [order, n] : g.atomic_failures_by_order) atomic[std::to_string(order)] = n;
    j["failures"] = {{"by_order", std::move(by_order)},
                     {"atomic_by_order", std::move(atomic)},
                     {"vmalloc", g.vmalloc_failures},
                     {"kmsg_lost", g.kmsg_lost}};

    json knobs = json::object();
    for (const auto& t : kTunables) knobs[std::string(t.name)] = opt(s.knob(t.knob));
    j["knobs"] = std::move(knobs);

    // One line per sample (JSON Lines), so a stream of samples is trivially split; non-finite
    // doubles cannot occur (rates divide by a non-zero interval) but would be written as null by
    // dump().
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace fragtune
