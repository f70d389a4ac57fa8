#include "fragtune/reporting/replay.hpp"

#include <charconv>

#include <fmt/format.h>

#include "fragtune/sensing/kernel_profile.hpp"
#include "fragtune/sensing/sample.hpp"

namespace fragtune {

namespace {

constexpr std::string_view kTickFile = "/tick";
constexpr std::string_view kKmsgFile = "/kmsg";

std::string tick_dir_name(uint64_t seq) {
    return fmt::format("{:08}", seq);
}

bool is_tick_dir_name(std::string_view n) {
    return n.size() == 8 && n.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

const std::vector<std::string>& recorded_files() {
    static const std::vector<std::string> files = [] {
        std::vector<std::string> f = {"/proc/buddyinfo",
                                      "/proc/zoneinfo",
                                      "/proc/vmstat",
                                      "/proc/meminfo",
                                      "/proc/sys/kernel/osrelease",
                                      std::string(kHpagePmdSizePath),
                                      std::string(kVfsCachePressureDenomPath)};
        for (const auto& t : kTunables) f.emplace_back(t.proc_path);
        return f;
    }();
    return files;
}

std::string format_alloc_failure_line(const AllocFailure& f) {
    // Flag names in parentheses are what modern kernels print; they carry `atomic` unambiguously.
    const std::string flags =
        !f.gfp_flags.empty() ? f.gfp_flags : (f.atomic ? "GFP_ATOMIC" : "GFP_KERNEL");
    const uint64_t mask = f.gfp_mask.value_or(f.atomic ? 0xa20 : 0xcc0);
    const std::string task = f.task.empty() ? "unknown" : f.task;
    if (f.kind == FailureKind::vmalloc) {
        if (!f.size_bytes && f.allocated_bytes)
            return fmt::format(
                "{}: vmalloc error: size {}, failed to allocate pages, mode:{:#x}({}), "
                "nodemask=(null)",
                task, *f.allocated_bytes, mask, flags);
        return fmt::format(
            "{}: vmalloc error: size {}, vm_struct allocation failed, mode:{:#x}({}), "
            "nodemask=(null)",
            task, f.size_bytes.value_or(4096ull << f.order), mask, flags);
    }
    return fmt::format("{}: page allocation failure: order:{}, mode:{:#x}({}), nodemask=(null)",
                       task, f.order, mask, flags);
}

Result<void> record_tick(const KernelFs& live, const std::filesystem::path& dir, uint64_t seq,
                         uint64_t mono_usec, const std::vector<AllocFailure>& failures,
                         const std::string& psi_path) {
    const KernelFs out("/");
    const std::string base = (dir / tick_dir_name(seq)).string();
    std::vector<std::string> files = recorded_files();
    files.push_back(psi_path);
    for (const auto& f : files) {
        auto text = live.read(f);
        if (!text) {
            // absent on this kernel: absent in replay
            if (text.error().sys_errno == ENOENT) continue;
            return text.error();
        }
        const std::string target = base + f;
        if (auto r = out.make_dirs(target.substr(0, target.rfind('/'))); !r) return r;
        if (auto r = out.write_atomic(target, *text, 0644); !r) return r;
    }
    std::string kmsg;
    uint64_t seqno = 0;
    for (const auto& f : failures)
        kmsg += fmt::format("4,{},{},-;{}\n", ++seqno, mono_usec, format_alloc_failure_line(f));
    if (auto r = out.write_atomic(base + std::string(kKmsgFile), kmsg, 0644); !r) return r;
    return out.write_atomic(base + std::string(kTickFile), fmt::format("{}\n", mono_usec), 0644);
}

Result<ReplayResult> replay_recording(const std::filesystem::path& dir, const Config& config) {
    const KernelFs top("/");
    auto names = top.list_dir(dir.string());
    if (!names) return names.error();
    std::vector<std::string> ticks;
    for (const auto& n : *names)
        if (is_tick_dir_name(n)) ticks.push_back(n);
    if (ticks.empty())
        return make_error(
            fmt::format("{}: no recorded ticks (NNNNNNNN directories)", dir.string()));

    SamplerOptions so;
    so.psi_path = psi_path_for(config.signals.psi_source);
    so.signals.target_orders = config.signals.target_orders;

    ReplayResult result;
    std::optional<Sample> prev;
    std::optional<ControllerState> state;
    uint64_t first_usec = 0;
    for (const auto& name : ticks) {
        const KernelFs fs(dir / name);
        auto tick_text = fs.read(kTickFile);
        uint64_t mono = 0;
        if (!tick_text) {
            result.skipped.push_back(fmt::format("{}: {}", name, tick_text.error().describe()));
            continue;
        }
        if (std::from_chars(tick_text->data(), tick_text->data() + tick_text->size(), mono).ec !=
            std::errc()) {
            result.skipped.push_back(fmt::format("{}: the 'tick' file holds no time", name));
            continue;
        }
        std::vector<AllocFailure> failures;
        if (auto k = fs.read(kKmsgFile)) {
            std::string_view rest = *k;
            while (!rest.empty()) {
                auto nl = rest.find('\n');
                auto line = rest.substr(0, nl);
                rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
                if (auto rec = parse_kmsg_record(line); rec.ok())
                    if (auto f = parse_alloc_failure(rec->message))
                        failures.push_back(std::move(*f));
            }
        }
        // A Sampler per tick, since each tick is its own root; deltas are derived against the
        // previous tick here instead of inside the Sampler.
        Sampler sampler(fs, so);
        auto s = sampler.take(mono, std::move(failures));
        if (!s) {
            result.skipped.push_back(fmt::format("{}: {}", name, s.error().describe()));
            continue;
        }
        derive_signals(prev ? &*prev : nullptr, *s, so.signals);
        if (!state) {
            state = initial_state(*s, config);
            first_usec = mono;
        } else {
            Step step = decide(*s, *state, config);
            state = std::move(step.next);
            for (auto& d : step.decisions)
                result.decisions.push_back({mono - first_usec, std::move(d)});
        }
        ++result.ticks;
        prev = std::move(*s);
    }
    return result;
}

std::string format_replay(const ReplayResult& r) {
    std::string out;
    for (const auto& d : r.decisions)
        out += fmt::format("+{:.1f}s {}\n", static_cast<double>(d.offset_usec) / 1e6,
                           format_decision(d.decision));
    for (const auto& s : r.skipped) out += fmt::format("skipped {}\n", s);
    out +=
        fmt::format("{} ticks replayed, {} decisions, {} skipped (observe only: nothing written)\n",
                    r.ticks, r.decisions.size(), r.skipped.size());
    return out;
}

}  // namespace fragtune
