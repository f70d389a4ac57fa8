#include "fuzz_checks.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include <fmt/format.h>

#include "fragtune/configuration/config_file.hpp"
#include "fragtune/persisting/state_file.hpp"
#include "fragtune/persisting/sysctl_d.hpp"
#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/sensing/kmsg.hpp"
#include "fragtune/sensing/parsers.hpp"
#include "fragtune/util/units.hpp"

namespace fragtune::fuzz {

namespace {

// Largest page order any kernel has (MAX_ORDER 15 with 4 KiB pages on a 64-bit size): a parsed
// allocation failure outside 0..kMaxOrder would index past every per-order table downstream.
constexpr int kMaxOrder = 63;

// A '\n' inside one parsed field would let one input line become two lines of a log or a rendered
// file. (A lone '\r' is kept as data: /dev/kmsg escapes control bytes itself, and a value holding
// one is simply not an integer.)
bool contains_newline(std::string_view s) {
    return s.find('\n') != std::string_view::npos;
}

std::string check_buddyinfo(std::string_view in) {
    auto r = parse_buddyinfo(in);
    if (!r) return r.error().message.empty() ? "error without a message" : "";
    if (r->zones.empty()) return "accepted, but no zones";
    for (const auto& z : r->zones) {
        if (static_cast<int>(z.free_blocks.size()) != r->orders)
            return fmt::format("zone {} has {} orders, the file says {}", z.zone,
                               z.free_blocks.size(), r->orders);
        if (z.zone.empty()) return "accepted a zone without a name";
    }
    return "";
}

std::string check_zoneinfo(std::string_view in) {
    auto r = parse_zoneinfo(in);
    if (!r) return r.error().message.empty() ? "error without a message" : "";
    for (const auto& z : r->zones)
        if (z.zone.empty()) return "accepted a zone without a name";
    return "";
}

std::string check_counters(const CounterMap& m) {
    for (const auto& [k, v] : m) {
        (void)v;
        if (k.empty()) return "accepted an empty counter name";
        if (k.find_first_of(" \t\n") != std::string::npos)
            return fmt::format("counter name '{}' holds a blank", k);
    }
    return "";
}

std::string check_vmstat(std::string_view in) {
    auto r = parse_vmstat(in);
    if (!r) return r.error().message.empty() ? "error without a message" : "";
    for (const auto& [k, v] : r->counters)
        if (r->get(k) != v) return fmt::format("get({}) disagrees with the map", k);
    return check_counters(r->counters);
}

std::string check_meminfo(std::string_view in) {
    auto r = parse_meminfo(in);
    if (!r) return r.error().message.empty() ? "error without a message" : "";
    for (const auto& [k, v] : r->kib)
        if (r->get_kib(k) != v) return fmt::format("get_kib({}) disagrees with the map", k);
    return "";
}

std::string check_psi_line(const PsiLine& l, std::string_view which) {
    for (double v : {l.avg10, l.avg60, l.avg300})
        if (!std::isfinite(v) || v < 0)
            return fmt::format("{} line accepted with a non-finite or negative average {}", which,
                               v);
    return "";
}

std::string check_psi(std::string_view in) {
    auto r = parse_psi(in);
    if (!r) return r.error().message.empty() ? "error without a message" : "";
    if (auto e = check_psi_line(r->some, "some"); !e.empty()) return e;
    if (r->full) return check_psi_line(*r->full, "full");
    return "";
}

std::string check_sysctl_int(std::string_view in) {
    auto r = parse_sysctl_int(in, "/proc/sys/vm/fuzz");
    if (!r) return "";
    auto again = parse_sysctl_int(std::to_string(*r) + "\n", "/proc/sys/vm/fuzz");
    if (!again || *again != *r) return fmt::format("{} does not parse back to itself", *r);
    return "";
}

std::string check_alloc_failure(const AllocFailure& f) {
    if (f.order < 0 || f.order > kMaxOrder)
        return fmt::format("allocation failure with order {}", f.order);
    return "";
}

std::string check_kmsg(std::string_view in) {
    // The record parser, then the failure parser on its message (the daemon's path) and on the
    // raw input (any text a log line can hold).
    if (auto rec = parse_kmsg_record(in)) {
        const char* b = in.data();
        const char* m = rec->message.data();
        if (!rec->message.empty() && (m < b || m + rec->message.size() > b + in.size()))
            return "record message does not point into the input";
        // The " KEY=value" continuation lines after the first '\n' are not part of the message.
        if (contains_newline(rec->message)) return "record message runs past its line";
        if (auto f = parse_alloc_failure(rec->message)) {
            if (auto e = check_alloc_failure(*f); !e.empty()) return e;
            if (contains_newline(f->task)) return "task name holds a line break";
        }
    }
    // Any text at all, for the order bound (the daemon only passes single messages).
    for (uint64_t page : {4096u, 65536u}) {
        if (auto f = parse_alloc_failure(in, page)) {
            if (auto e = check_alloc_failure(*f); !e.empty()) return e;
        }
    }
    return "";
}

// The reader's line splitting, fragment joining and vmalloc folding over a whole stream, read
// from a file as the daemon reads a replay: the bounds it promises hold whatever the bytes.
std::string check_kmsg_stream(std::string_view in) {
    const std::string path = fmt::format("/tmp/fragtune-fuzz-kmsg-{}", ::getpid());
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(in.data(), static_cast<std::streamsize>(in.size()));
    }
    KmsgOptions o;
    o.path = path;
    o.from_start = true;
    o.max_failures_per_drain = 8;
    auto reader = KmsgReader::open(KernelFs("/"), o);
    if (!reader) {
        std::remove(path.c_str());
        return "cannot open the stream file: " + reader.error().describe();
    }
    std::string problem;
    for (int i = 0; i < 10000 && problem.empty(); ++i) {
        auto d = reader->drain(16);
        if (!d) {
            problem = "drain failed: " + d.error().describe();
            break;
        }
        if (d->failures.size() > o.max_failures_per_drain)
            problem = fmt::format("{} failures kept, bound {}", d->failures.size(),
                                  o.max_failures_per_drain);
        else if (d->failures_seen != d->failures.size() + d->failures_dropped)
            problem = fmt::format("seen {} != kept {} + dropped {}", d->failures_seen,
                                  d->failures.size(), d->failures_dropped);
        else if (d->records > 16)
            problem = fmt::format("{} records in a drain bounded to 16", d->records);
        for (const auto& f : d->failures) {
            if (problem.empty()) problem = check_alloc_failure(f);
            if (problem.empty() && contains_newline(f.task))
                problem = "task name holds a line break";
        }
        if (!d->limit_reached) break;
    }
    std::remove(path.c_str());
    return problem;
}

std::string check_config(std::string_view in) {
    const auto first = check_config_text(in, "fuzz.toml");
    if (!first.ok()) {
        for (const auto& d : first.diagnostics)
            if (d.message.empty()) return "diagnostic without a message";
        return "";
    }
    // Documented: loading the rendered effective configuration yields the same Config.
    const std::string rendered = render_effective_config(first.loaded);
    const auto second = check_config_text(rendered, "rendered.toml");
    if (!second.ok()) {
        std::string why;
        for (const auto& d : second.diagnostics) why += "\n  " + d.describe();
        return "the rendered effective configuration does not load:" + why + "\n" + rendered;
    }
    for (const auto& key : config_keys()) {
        auto a = get_field_text(key, first.loaded.config);
        auto b = get_field_text(key, second.loaded.config);
        if (a != b)
            return fmt::format("{} is {} but {} after a render and reload", key.full_name(),
                               a.value_or("unset"), b.value_or("unset"));
    }
    return "";
}

std::string check_sysctl_conf(std::string_view in) {
    const auto r = parse_sysctl_conf(in, "/etc/sysctl.d/fuzz.conf");
    size_t lines = 1;
    for (char c : in) lines += c == '\n';
    for (const auto* list : {&r.assignments, &r.exclusions}) {
        for (const auto& a : *list) {
            if (a.key.empty()) return fmt::format("line {}: empty key accepted", a.line);
            if (contains_newline(a.key) || contains_newline(a.value))
                return fmt::format("line {}: a line break inside a key or value", a.line);
            if (a.line < 1 || static_cast<size_t>(a.line) > lines)
                return fmt::format("line number {} outside 1..{}", a.line, lines);
            // Normalized (dotted form): no empty component. A '/' is data there (it stands for a
            // '.' inside a name, "eth0/100"), so only '.' is a separator.
            if (a.key.front() == '.' || a.key.back() == '.' ||
                a.key.find("..") != std::string::npos)
                return fmt::format("line {}: key '{}' has an empty component", a.line, a.key);
        }
    }
    return "";
}

std::string check_state(std::string_view in) {
    auto r = parse_state(in, "fuzz-state.toml", 8);
    if (!r) return r.error().message.empty() ? "error without a message" : "";
    if (r->history.size() > 8)
        return fmt::format("{} history records kept, bound 8", r->history.size());
    // No value outside every kernel's range is accepted (they are dropped on load).
    for (const auto& t : kTunables) {
        const auto& pk = r->knob(t.knob);
        const Range widest{t.kernel_min, t.kernel_max};
        for (const auto& v : {pk.original, pk.baseline, pk.last_written})
            if (v && !widest.contains(*v))
                return fmt::format("{} = {} accepted, outside {}..{}", t.name, *v, widest.min,
                                   widest.max);
    }
    // What was accepted must survive the daemon's own save and load unchanged, but for strings
    // cut to the documented length (state_text), and within the byte bound.
    const std::string rendered = render_state(*r);
    if (rendered.size() > kMaxStateFileBytes)
        return fmt::format("rendered state is {} bytes, bound {}", rendered.size(),
                           kMaxStateFileBytes);
    auto again = parse_state(rendered, "rendered-state.toml", 8);
    if (!again)
        return "the rendered state does not parse: " + again.error().describe() + "\n" + rendered;
    PersistedState expected = *r;
    for (auto& k : expected.knobs) k.status_reason = state_text(k.status_reason);
    for (auto& h : expected.history) {
        h.rule = state_text(h.rule);
        h.reason = state_text(h.reason);
    }
    if (again->knobs != expected.knobs) return "knobs differ after a render and parse\n" + rendered;
    if (again->history != expected.history)
        return "history differs after a render and parse\n" + rendered;
    return "";
}

std::string check_units(std::string_view in) {
    if (auto d = parse_duration_usec(in)) {
        const std::string text = format_duration_usec(*d);
        auto again = parse_duration_usec(text);
        if (!again || *again != *d)
            return fmt::format("duration {} us renders as '{}', which does not parse back", *d,
                               text);
    }
    (void)parse_size_kib(in);
    return "";
}

}  // namespace

const std::vector<FuzzTarget>& fuzz_targets() {
    static const std::vector<FuzzTarget> targets = {
        {"buddyinfo", &check_buddyinfo},
        {"zoneinfo", &check_zoneinfo},
        {"vmstat", &check_vmstat},
        {"meminfo", &check_meminfo},
        {"psi", &check_psi},
        {"sysctl_int", &check_sysctl_int},
        {"kmsg", &check_kmsg},
        {"kmsg_stream", &check_kmsg_stream},
        {"config", &check_config},
        {"sysctl_conf", &check_sysctl_conf},
        {"state", &check_state},
        {"units", &check_units},
    };
    return targets;
}

const FuzzTarget* find_fuzz_target(std::string_view name) {
    for (const auto& t : fuzz_targets())
        if (t.name == name) return &t;
    return nullptr;
}

}  // namespace fragtune::fuzz
