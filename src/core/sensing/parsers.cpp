// Pure parsers for /proc/buddyinfo, /proc/zoneinfo, /proc/vmstat, /proc/meminfo, PSI files,
// /dev/kmsg records and the kernel's allocation-failure reports. Text in, struct or Error out: no
// I/O, no logging, no exceptions (std::from_chars never throws; containers only throw on allocation
// failure).
//
// parse_sysctl_int, also declared in parsers.hpp, is defined in sysctl_io.cpp (the module that
// reads the knobs); it is tested with the other flat parsers in parsers_flat_test.cpp.
#include "fragtune/sensing/parsers.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "fragtune/util/text.hpp"

namespace fragtune {

namespace {

// Leading blanks of a line; zoneinfo uses indentation to tell per-CPU lines from zone lines.
size_t indent_of(std::string_view line) {
    size_t n = 0;
    while (n < line.size() && (line[n] == ' ' || line[n] == '\t')) ++n;
    return n;
}

// The next line of `rest` (without its '\n'; a last line without one still counts), consumed;
// false at the end. Callers trim each line on the right, which also removes the '\r' of CRLF text.
bool next_line(std::string_view& rest, std::string_view& line) {
    if (rest.empty()) return false;
    const size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) {
        line = rest;
        rest = {};
    } else {
        line = rest.substr(0, nl);
        rest.remove_prefix(nl + 1);
    }
    return true;
}

// The next whitespace-separated token of `s`, consumed; empty at the end.
std::string_view next_token(std::string_view& s) {
    size_t i = 0;
    while (i < s.size() && is_blank(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !is_blank(s[j])) ++j;
    const auto tok = s.substr(i, j - i);
    s.remove_prefix(j);
    return tok;
}

// Up to N tokens of `s` kept, and how many there are in all (without allocating).
template <size_t N>
struct Tokens {
    std::array<std::string_view, N> tok{};
    size_t count = 0;
    size_t size() const { return count; }
    std::string_view operator[](size_t i) const { return tok[i]; }
};
template <size_t N>
Tokens<N> tokens(std::string_view s) {
    Tokens<N> t;
    for (auto w = next_token(s); !w.empty(); w = next_token(s)) {
        if (t.count < N) t.tok[t.count] = w;
        ++t.count;
    }
    return t;
}

// The first two whitespace-separated tokens of `s` and how many tokens there are in all, without
// allocating: the shape of every "name value" line, parsed for each of ~400 lines per sample.
struct TwoTokens {
    std::string_view first, second;
    size_t count = 0;  // all tokens of the line, so callers can refuse extra fields
    size_t size() const { return count; }
    std::string_view operator[](size_t i) const { return i == 0 ? first : second; }
};
TwoTokens two_tokens(std::string_view s) {
    TwoTokens t;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_blank(s[i])) ++i;
        if (i >= s.size()) break;
        size_t j = i;
        while (j < s.size() && !is_blank(s[j])) ++j;
        if (t.count == 0) t.first = s.substr(i, j - i);
        if (t.count == 1) t.second = s.substr(i, j - i);
        ++t.count;
        i = j;
    }
    return t;
}

// Hostile input can be megabytes on one line: error messages quote at most this much of it.
std::string shown(std::string_view s) {
    constexpr size_t kMax = 40;
    if (s.size() <= kMax) return std::string(s);
    return std::string(s.substr(0, kMax)) + "...";
}

enum class NumFault { none, empty, sign, overflow, garbage };

// Unsigned decimal, the whole token: no sign, no blanks, no "0x", at most 2^64-1.
NumFault parse_u64(std::string_view s, uint64_t& out) {
    if (s.empty()) return NumFault::empty;
    if (s.front() == '-' || s.front() == '+') return NumFault::sign;
    const char* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, out);
    if (ec == std::errc::result_out_of_range) return NumFault::overflow;
    if (ec != std::errc() || p != end) return NumFault::garbage;
    return NumFault::none;
}

std::string describe(NumFault f, std::string_view token, std::string_view what) {
    switch (f) {
        case NumFault::empty:
            return fmt::format("{} is missing", what);
        case NumFault::sign:
            return fmt::format("{} '{}' has a sign, expected an unsigned decimal number", what,
                               shown(token));
        case NumFault::overflow:
            return fmt::format("{} '{}' is larger than 2^64-1", what, shown(token));
        case NumFault::garbage:
        case NumFault::none:
            break;
    }
    return fmt::format("{} '{}' is not a decimal number", what, shown(token));
}

Error at_line(std::string_view source, size_t line, std::string what) {
    return make_error(fmt::format("{} line {}: {}", source, line, what));
}

// "Normal", "DMA32", "Movable": what the kernel's zone_names[] hold.
bool valid_zone_name(std::string_view name) {
    if (name.empty() || name.size() > 32) return false;
    const auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
    if (!alpha(name.front())) return false;
    for (char c : name)
        if (!alpha(c) && !(c >= '0' && c <= '9') && c != '_') return false;
    return true;
}

// No kernel has more nodes than this (MAX_NUMNODES is 1 << CONFIG_NODES_SHIFT, at most 1 << 10).
constexpr uint64_t kMaxNode = 65535;

// "Node 0, zone   Normal" as the first four tokens of a buddyinfo or zoneinfo line.
template <typename Toks>
Result<std::pair<int, std::string>> parse_zone_header(const Toks& tok, std::string_view source,
                                                      size_t ln) {
    if (tok.size() < 4 || tok[0] != "Node" || tok[2] != "zone" || tok[1].size() < 2 ||
        tok[1].back() != ',')
        return at_line(source, ln, "expected a line starting with 'Node <n>, zone <name>'");
    uint64_t node = 0;
    const std::string_view node_tok = tok[1].substr(0, tok[1].size() - 1);
    if (auto f = parse_u64(node_tok, node); f != NumFault::none)
        return at_line(source, ln, describe(f, node_tok, "node number"));
    if (node > kMaxNode)
        return at_line(source, ln, fmt::format("node number {} is larger than {}", node, kMaxNode));
    if (!valid_zone_name(tok[3]))
        return at_line(source, ln, fmt::format("'{}' is not a zone name", shown(tok[3])));
    return std::pair<int, std::string>{static_cast<int>(node), std::string(tok[3])};
}

// A key seen twice in one "name value" file or block is corruption (two reads spliced together),
// not something to resolve by taking either value.
Error duplicate_key(std::string_view source, size_t ln, std::string_view key, size_t first) {
    return at_line(source, ln,
                   fmt::format("'{}' is listed twice (first on line {})", shown(key), first));
}

// Where each key of one block was seen, in input order; the keys point into the text being parsed.
// Searched only to word the error of a duplicate, so appending is all the normal path pays.
using FirstLines = std::vector<std::pair<std::string_view, size_t>>;

// Shared by vmstat and the blocks of zoneinfo: inserts name -> value, refusing duplicates.
// `first_line` remembers where each key was first seen, for the error message. One tree descent
// per key (lower_bound, then an insert at the hint): this runs for every line of every sample.
Result<void> insert_counter(std::map<std::string, uint64_t, std::less<>>& map,
                            FirstLines& first_line, std::string_view source, size_t ln,
                            std::string_view key, uint64_t value) {
    auto it = map.lower_bound(key);
    if (it != map.end() && it->first == key) {
        size_t first = 0;
        for (const auto& [k, l] : first_line)
            if (k == key) {
                first = l;
                break;
            }
        return duplicate_key(source, ln, key, first);
    }
    map.emplace_hint(it, std::string(key), value);
    first_line.emplace_back(key, ln);
    return {};
}

}  // namespace

// ---- /proc/buddyinfo ----------------------------------------------------------------------------

Result<void> parse_buddyinfo_into(std::string_view text, BuddyInfo& out, std::string_view source) {
    // mm/vmstat.c frag_show_print(): "Node %d, zone %8s " then "%6lu " per order, for populated
    // zones only. The order count is MAX_ORDER (NR_PAGE_ORDERS since 6.4): 11 on x86-64, 14 on
    // arm64 with 64K pages. No kernel has more than 64 orders; a longer line is garbage.
    // Parsed line by line into `out`'s own zones, so a tick that sees the zones of the last one
    // writes numbers into storage it already has.
    constexpr size_t kMaxOrders = 64;
    size_t nz = 0;
    int info_orders = 0;
    std::string_view rest = text, raw;
    size_t ln = 0;
    while (next_line(rest, raw)) {
        ++ln;
        const auto line = trim(raw);
        if (line.empty()) continue;
        const auto tok = tokens<4>(line);
        auto header = parse_zone_header(tok, source, ln);
        if (!header) return header.error();
        auto& [node, zone] = *header;

        const size_t orders = tok.size() - 4;
        if (orders == 0)
            return at_line(source, ln,
                           fmt::format("zone {} of node {} has no free counts", zone, node));
        if (orders > kMaxOrders)
            return at_line(source, ln,
                           fmt::format("{} order columns is more than any kernel has ({})", orders,
                                       kMaxOrders));
        if (nz != 0 && orders != static_cast<size_t>(info_orders))
            return at_line(source, ln,
                           fmt::format("expected {} order columns like the lines before, found {}",
                                       info_orders, orders));
        for (size_t j = 0; j < nz; ++j) {
            if (out.zones[j].node != node || out.zones[j].zone != zone) continue;
            // The error path may be slow: find the line of the j-th zone again.
            std::string_view again = text, l;
            size_t first = 0, seen = 0;
            while (next_line(again, l)) {
                ++first;
                if (!trim(l).empty() && seen++ == j) break;
            }
            return at_line(source, ln,
                           fmt::format("zone {} of node {} is listed twice (first on line {})",
                                       zone, node, first));
        }

        if (nz == out.zones.size()) out.zones.emplace_back();
        BuddyZone& bz = out.zones[nz];
        bz.node = node;
        bz.zone = zone;
        bz.free_blocks.resize(orders);
        std::string_view values = line;
        for (int k = 0; k < 4; ++k) next_token(values);
        for (size_t k = 0; k < orders; ++k) {
            const auto t = next_token(values);
            if (auto f = parse_u64(t, bz.free_blocks[k]); f != NumFault::none)
                return at_line(source, ln,
                               describe(f, t, fmt::format("free count of order {}", k)));
        }
        if (nz == 0) info_orders = static_cast<int>(orders);
        ++nz;
    }
    out.zones.resize(nz);
    out.orders = info_orders;
    if (nz == 0) return make_error(fmt::format("{}: no zones (empty or blank text)", source));
    return {};
}

Result<BuddyInfo> parse_buddyinfo(std::string_view text, std::string_view source) {
    BuddyInfo info;
    if (auto r = parse_buddyinfo_into(text, info, source); !r) return r.error();
    return info;
}

// ---- /proc/zoneinfo -----------------------------------------------------------------------------

namespace {

// The fields of mm/vmstat.c zoneinfo_show_print() that every kernel fragtune supports prints
// (3.10 onwards: "managed" appeared in 3.8). Each must appear exactly once per zone.
enum ZoneField : unsigned {
    kFree = 1u << 0,
    kMin = 1u << 1,
    kLow = 1u << 2,
    kHigh = 1u << 3,
    kSpanned = 1u << 4,
    kPresent = 1u << 5,
    kManaged = 1u << 6,
    kRequired = (1u << 7) - 1,
    kBoost = 1u << 7,
    kPromo = 1u << 8,
    kCma = 1u << 9,
    kProtection = 1u << 10,
};

constexpr std::pair<ZoneField, std::string_view> kFieldNames[] = {
    {kFree, "pages free"},
    {kMin, "min"},
    {kLow, "low"},
    {kHigh, "high"},
    {kSpanned, "spanned"},
    {kPresent, "present"},
    {kManaged, "managed"},
    {kBoost, "boost"},
    {kPromo, "promo"},
    {kCma, "cma"},
    {kProtection, "protection"},
};

class ZoneInfoParser {
  public:
    explicit ZoneInfoParser(std::string_view source) : source_(source) {}

    Result<ZoneInfo> run(std::string_view text) {
        // No vector of lines: on a 1024-CPU machine the file is megabytes, nearly all of it per-CPU
        // pageset lines, which are skipped by their indent before any other work.
        std::string_view rest = text, whole;
        size_t ln = 0;
        while (next_line(rest, whole)) {
            ++ln;
            if (state_ == State::pagesets && whole.starts_with("    ")) continue;
            const auto raw = trim_right(whole);
            const auto line = trim(raw);
            if (line.empty()) continue;  // unpopulated zones end with an extra '\n' on 4.x
            if (line.starts_with("Node ")) {
                if (auto r = start_zone(line, ln); !r) return r.error();
                continue;
            }
            if (state_ == State::none)
                return at_line(source_, ln, "expected a 'Node <n>, zone <name>' line first");
            if (auto r = zone_line(raw, line, ln); !r) return r.error();
        }
        if (auto r = finish_zone(); !r) return r.error();
        if (out_.zones.empty())
            return make_error(fmt::format("{}: no zones (empty or blank text)", source_));
        return std::move(out_);
    }

  private:
    // header: just after "Node n, zone z"; node_stats: inside "per-node stats" (kernel >= 4.8);
    // zone: watermarks, sizes, protection and zone counters; pagesets: per-CPU lists and the few
    // zone lines after them (node_unreclaimable, start_pfn, all_unreclaimable, inactive_ratio).
    enum class State { none, header, node_stats, zone, pagesets };

    Result<void> start_zone(std::string_view line, size_t ln) {
        if (auto r = finish_zone(); !r) return r.error();
        const auto tok = split_blank(line);
        auto header = parse_zone_header(tok, source_, ln);
        if (!header) return header.error();
        if (tok.size() != 4)
            return at_line(source_, ln,
                           fmt::format("unexpected '{}' after the zone name", shown(tok[4])));
        if (auto [it, inserted] = seen_zones_.emplace(*header, ln); !inserted)
            return at_line(source_, ln,
                           fmt::format("zone {} of node {} is listed twice (first on line {})",
                                       header->second, header->first, it->second));
        cur_ = ZoneInfoZone{};
        cur_.node = header->first;
        cur_.zone = header->second;
        cur_line_ = ln;
        fields_ = 0;
        field_line_.clear();
        stat_line_.clear();
        state_ = State::header;
        return {};
    }

    Result<void> finish_zone() {
        if (state_ == State::none) return {};
        state_ = State::none;
        if ((fields_ & kRequired) != kRequired) {
            for (const auto& [bit, name] : kFieldNames)
                if ((bit & kRequired) && !(fields_ & bit))
                    return at_line(source_, cur_line_,
                                   fmt::format("zone {} of node {} has no '{}' line", cur_.zone,
                                               cur_.node, name));
        }
        if (auto it = cur_.stats.find("nr_free_pages"); it != cur_.stats.end())
            cur_.nr_free_pages = it->second;
        out_.zones.push_back(std::move(cur_));
        return {};
    }

    Result<void> set_field(ZoneField bit, uint64_t value, size_t ln) {
        std::string_view name;
        for (const auto& [b, n] : kFieldNames)
            if (b == bit) name = n;
        if (fields_ & bit) return duplicate_key(source_, ln, name, field_line_[bit]);
        fields_ |= bit;
        field_line_[bit] = ln;
        switch (bit) {
            case kFree:
                cur_.free = value;
                break;
            case kMin:
                cur_.min = value;
                break;
            case kLow:
                cur_.low = value;
                break;
            case kHigh:
                cur_.high = value;
                break;
            case kSpanned:
                cur_.spanned = value;
                break;
            case kPresent:
                cur_.present = value;
                break;
            case kManaged:
                cur_.managed = value;
                break;
            case kBoost:
                cur_.boost = value;
                break;
            case kPromo:
                cur_.promo = value;
                break;
            case kCma:
                cur_.cma = value;
                break;
            default:
                break;
        }
        return {};
    }

    // "protection: (0, 3019, 4427, 4427, 4427)": lowmem_reserve[] in pages, printed with %ld.
    Result<void> protection(std::string_view rest, size_t ln) {
        rest = trim(rest);
        if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')')
            return at_line(source_, ln, "expected 'protection: (<n>, <n>, ...)'");
        if (fields_ & kProtection)
            return duplicate_key(source_, ln, "protection", field_line_[kProtection]);
        fields_ |= kProtection;
        field_line_[kProtection] = ln;
        rest = rest.substr(1, rest.size() - 2);
        size_t k = 0;
        while (true) {
            const size_t comma = rest.find(',');
            const auto item = trim(rest.substr(0, comma));
            uint64_t v = 0;
            if (auto f = parse_u64(item, v); f != NumFault::none)
                return at_line(source_, ln,
                               describe(f, item, fmt::format("protection entry {}", k)));
            cur_.protection.push_back(v);
            ++k;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
        return {};
    }

    // "name value" (two tokens) or "name: value"; the name without its colon. A lone number is a
    // counter the kernel hides by giving it an empty name: 4.19's vmstat_text[] has "" for
    // nr_indirectly_reclaimable, which vmstat_show() skips but zoneinfo prints as "%-12s %lu",
    // i.e. blanks and a value. It comes back with an empty name, and callers skip it.
    Result<std::pair<std::string_view, uint64_t>> name_value(std::string_view line, size_t ln) {
        const auto tok = two_tokens(line);
        if (tok.size() == 1 && !tok[0].empty() &&
            tok[0].find_first_not_of("0123456789") == std::string_view::npos)
            return std::pair<std::string_view, uint64_t>{};  // see hidden_counter()
        if (tok.size() != 2)
            return at_line(source_, ln,
                           fmt::format("expected '<name> <value>', found '{}'", shown(line)));
        std::string_view name = tok[0];
        if (name.size() > 1 && name.back() == ':') name.remove_suffix(1);
        uint64_t v = 0;
        if (auto f = parse_u64(tok[1], v); f != NumFault::none)
            return at_line(source_, ln, describe(f, tok[1], fmt::format("value of '{}'", name)));
        return std::pair<std::string_view, uint64_t>{name, v};
    }

    Result<void> zone_line(std::string_view raw, std::string_view line, size_t ln) {
        if (line == "per-node stats") {
            if (state_ != State::header)
                return at_line(source_, ln, "'per-node stats' must follow the zone header");
            for (const auto& n : out_.nodes)
                if (n.node == cur_.node)
                    return at_line(source_, ln,
                                   fmt::format("node {} prints 'per-node stats' twice", cur_.node));
            out_.nodes.push_back(ZoneInfoNode{cur_.node, {}});
            node_stat_line_.clear();
            state_ = State::node_stats;
            return {};
        }
        if (line.starts_with("pages free") || line.starts_with("pages ")) {
            const auto tok = split_blank(line);
            if (tok.size() != 3 || tok[1] != "free")
                return at_line(source_, ln, "expected 'pages free <n>'");
            uint64_t v = 0;
            if (auto f = parse_u64(tok[2], v); f != NumFault::none)
                return at_line(source_, ln, describe(f, tok[2], "'pages free'"));
            state_ = State::zone;
            return set_field(kFree, v, ln);
        }
        switch (state_) {
            case State::header:
                return at_line(source_, ln,
                               "expected 'per-node stats' or 'pages free' after the zone header");
            case State::node_stats: {
                auto nv = name_value(line, ln);
                if (!nv) return nv.error();
                if (nv->first.empty()) return {};
                return insert_counter(out_.nodes.back().stats, node_stat_line_, source_, ln,
                                      nv->first, nv->second);
            }
            case State::zone: {
                if (line.starts_with("protection:"))
                    return protection(line.substr(std::string_view("protection:").size()), ln);
                if (line == "pagesets") {
                    state_ = State::pagesets;
                    return {};
                }
                auto nv = name_value(line, ln);
                if (!nv) return nv.error();
                if (nv->first.empty()) return {};
                for (const auto& [bit, name] : kFieldNames)
                    if (name == nv->first && bit != kFree && bit != kProtection)
                        return set_field(bit, nv->second, ln);
                return insert_counter(cur_.stats, stat_line_, source_, ln, nv->first, nv->second);
            }
            case State::pagesets: {
                // Per-CPU lines ("    cpu: 0", "              count: 12", "  vm stats threshold:
                // 24") repeat for every CPU; the zone lines after them are indented by two.
                // Indentation, not a list of names, decides, so new per-CPU fields do not break
                // the parser.
                if (indent_of(raw) >= 4 || line.starts_with("vm stats threshold")) return {};
                auto nv = name_value(line, ln);
                if (!nv) return nv.error();
                if (nv->first.empty()) return {};
                return insert_counter(cur_.stats, stat_line_, source_, ln, nv->first, nv->second);
            }
            case State::none:
                break;
        }
        return at_line(source_, ln, "unexpected line");
    }

    std::string_view source_;
    ZoneInfo out_;
    State state_ = State::none;
    ZoneInfoZone cur_;
    size_t cur_line_ = 0;
    unsigned fields_ = 0;
    std::map<unsigned, size_t> field_line_;
    FirstLines stat_line_, node_stat_line_;
    std::map<std::pair<int, std::string>, size_t> seen_zones_;
};

}  // namespace

Result<ZoneInfo> parse_zoneinfo(std::string_view text, std::string_view source) {
    return ZoneInfoParser(source).run(text);
}

// ---- interned counter tables ---------------------------------------------------------------------

CounterNames::CounterNames(std::vector<std::string> names) : names_(std::move(names)) {
    sorted_.resize(names_.size());
    for (size_t i = 0; i < names_.size(); ++i) sorted_[i] = static_cast<uint32_t>(i);
    std::sort(sorted_.begin(), sorted_.end(),
              [&](uint32_t a, uint32_t b) { return names_[a] < names_[b]; });
}

std::optional<size_t> CounterNames::find(std::string_view name) const {
    auto it = std::lower_bound(sorted_.begin(), sorted_.end(), name,
                               [&](uint32_t i, std::string_view n) { return names_[i] < n; });
    if (it == sorted_.end() || names_[*it] != name) return std::nullopt;
    return *it;
}

CounterSet::CounterSet(std::initializer_list<std::pair<std::string_view, uint64_t>> items) {
    std::vector<std::string> names;
    std::vector<uint64_t> values;
    for (const auto& [n, v] : items) {
        if (std::find(names.begin(), names.end(), n) != names.end()) continue;
        names.emplace_back(n);
        values.push_back(v);
    }
    assign(std::make_shared<const CounterNames>(std::move(names)), std::move(values));
}

std::optional<uint64_t> CounterSet::get(std::string_view name) const {
    if (!names_) return std::nullopt;
    if (auto i = names_->find(name)) return values_[*i];
    return std::nullopt;
}

bool operator==(const CounterSet& a, const CounterSet& b) {
    if (a.size() != b.size()) return false;
    for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j)
        if (*i != *j) return false;
    return true;
}

void CounterSet::share_names(const CounterSet& other) {
    if (!other.names_ || names_ == other.names_) return;
    names_ = other.names_;
    values_.resize(names_->size());
}

void CounterSet::assign(std::shared_ptr<const CounterNames> names, std::vector<uint64_t> values) {
    names_ = std::move(names);
    values_ = std::move(values);
}

namespace {

// One line of a flat file -> its name and value ("" for a blank line), or the line's error.
using FlatLine = std::optional<Error> (*)(std::string_view raw, std::string_view source, size_t ln,
                                          std::string_view& name, uint64_t& value);

// The shared body of parse_vmstat_into and parse_meminfo_into. Fast path: `out` has a table and
// the text prints exactly its names in its order; then only values are written. Otherwise (first
// read, a kernel that printed something new, hostile text) the slow path builds a table, refusing
// duplicates, and `check` vets it (required names).
template <typename Check>
Result<void> parse_flat_into(std::string_view text, std::string_view source, CounterSet& out,
                             FlatLine line_of, Check check) {
    if (const CounterNames* known = out.names().get(); known && out.size() == known->size()) {
        auto& values = out.mutable_values();
        std::string_view rest = text, raw, name;
        size_t ln = 0, i = 0;
        bool same = true;
        while (next_line(rest, raw)) {
            uint64_t v = 0;
            if (auto e = line_of(raw, source, ++ln, name, v)) return std::move(*e);
            if (name.empty()) continue;
            if (i >= known->size() || known->name(i) != name) {
                same = false;
                break;
            }
            values[i++] = v;
        }
        if (same && i == known->size()) return {};
    }
    std::vector<std::string> names;
    std::vector<uint64_t> values;
    std::map<std::string_view, size_t, std::less<>> first_line;
    std::string_view rest = text, raw, name;
    size_t ln = 0;
    while (next_line(rest, raw)) {
        uint64_t v = 0;
        if (auto e = line_of(raw, source, ++ln, name, v)) return std::move(*e);
        if (name.empty()) continue;
        if (auto [it, inserted] = first_line.emplace(name, ln); !inserted)
            return duplicate_key(source, ln, name, it->second);
        names.emplace_back(name);
        values.push_back(v);
    }
    if (auto r = check(first_line); !r) return r.error();
    out.assign(std::make_shared<const CounterNames>(std::move(names)), std::move(values));
    return {};
}

// mm/vmstat.c vmstat_show(): "%s %lu\n" per counter.
std::optional<Error> vmstat_line(std::string_view raw, std::string_view source, size_t ln,
                                 std::string_view& name, uint64_t& value) {
    name = {};
    const auto line = trim(raw);
    if (line.empty()) return std::nullopt;
    const auto tok = two_tokens(line);
    if (tok.size() != 2)
        return at_line(source, ln,
                       fmt::format("expected '<counter> <value>', found {} fields", tok.size()));
    if (auto f = parse_u64(tok[1], value); f != NumFault::none)
        return at_line(source, ln, describe(f, tok[1], fmt::format("value of '{}'", tok[0])));
    name = tok[0];
    return std::nullopt;
}

// fs/proc/meminfo.c: "%-15s %8lu kB" via show_val_kb(), and "HugePages_Total: %5lu" etc.
// without a unit (counts of huge pages, kept as they are).
std::optional<Error> meminfo_line(std::string_view raw, std::string_view source, size_t ln,
                                  std::string_view& name, uint64_t& value) {
    name = {};
    const auto line = trim(raw);
    if (line.empty()) return std::nullopt;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
        return at_line(source, ln, "expected '<Name>: <value> [kB]'");
    const auto key = line.substr(0, colon);
    if (key.find_first_of(kBlank) != std::string_view::npos)
        return at_line(source, ln, fmt::format("'{}' is not a meminfo key", shown(key)));
    const auto tok = two_tokens(line.substr(colon + 1));
    if (tok.size() == 0 || tok.size() > 2)
        return at_line(source, ln,
                       fmt::format("expected '{}: <value> [kB]', found {} fields after the "
                                   "colon",
                                   key, tok.size()));
    if (tok.size() == 2 && tok[1] != "kB")
        return at_line(source, ln,
                       fmt::format("unit of '{}' is '{}', expected 'kB'", key, shown(tok[1])));
    if (auto f = parse_u64(tok[0], value); f != NumFault::none)
        return at_line(source, ln, describe(f, tok[0], fmt::format("value of '{}'", key)));
    name = key;
    return std::nullopt;
}

using SeenNames = std::map<std::string_view, size_t, std::less<>>;

}  // namespace

// ---- /proc/vmstat -------------------------------------------------------------------------------

std::optional<uint64_t> VmStat::get(std::string_view name) const {
    return counters.get(name);
}

Result<void> parse_vmstat_into(std::string_view text, VmStat& out, std::string_view source) {
    return parse_flat_into(
        text, source, out.counters, vmstat_line, [&](const SeenNames& names) -> Result<void> {
            if (names.empty())
                return make_error(fmt::format("{}: no counters (empty or blank text)", source));
            // Every kernel prints nr_free_pages first; without it this is
            // not a vmstat file.
            if (!names.contains("nr_free_pages"))
                return make_error(fmt::format("{}: no 'nr_free_pages' counter", source));
            return {};
        });
}

Result<VmStat> parse_vmstat(std::string_view text, std::string_view source) {
    VmStat out;
    if (auto r = parse_vmstat_into(text, out, source); !r) return r.error();
    return out;
}

// ---- /proc/meminfo ------------------------------------------------------------------------------

std::optional<uint64_t> MemInfo::get_kib(std::string_view name) const {
    return kib.get(name);
}

Result<void> parse_meminfo_into(std::string_view text, MemInfo& out, std::string_view source) {
    return parse_flat_into(
        text, source, out.kib, meminfo_line, [&](const SeenNames& names) -> Result<void> {
            if (names.empty())
                return make_error(fmt::format("{}: no fields (empty or blank text)", source));
            for (std::string_view must : {"MemTotal", "MemFree"})
                if (!names.contains(must))
                    return make_error(fmt::format("{}: no '{}' line", source, must));
            return {};
        });
}

Result<MemInfo> parse_meminfo(std::string_view text, std::string_view source) {
    MemInfo out;
    if (auto r = parse_meminfo_into(text, out, source); !r) return r.error();
    return out;
}

// ---- PSI ----------------------------------------------------------------------------------------

Result<Psi> parse_psi(std::string_view text, std::string_view source) {
    // kernel/sched/psi.c psi_show(): "%s avg10=%lu.%02lu avg60=%lu.%02lu avg300=%lu.%02lu
    // total=%llu\n" for "some" and then "full". Averages are percentages (0.00..100.00), total is
    // the cumulative stall time in microseconds.
    Psi out;
    std::optional<size_t> some_line, full_line;
    std::string_view rest = text, raw;
    size_t ln = 0;
    while (next_line(rest, raw)) {
        ++ln;
        const auto line = trim(raw);
        if (line.empty()) continue;
        const auto tok = tokens<5>(line);
        PsiLine pl;
        std::optional<size_t>* seen = nullptr;
        if (tok[0] == "some")
            seen = &some_line;
        else if (tok[0] == "full")
            seen = &full_line;
        else
            return at_line(
                source, ln,
                fmt::format("expected a 'some' or 'full' line, found '{}'", shown(tok[0])));
        if (seen->has_value())
            return at_line(source, ln,
                           fmt::format("'{}' is listed twice (first on line {})", tok[0], **seen));
        if (tok.size() != 5)
            return at_line(source, ln,
                           fmt::format("expected '{} avg10=.. avg60=.. avg300=.. total=..', "
                                       "found {} fields",
                                       tok[0], tok.size()));
        constexpr std::string_view kKeys[] = {"avg10", "avg60", "avg300", "total"};
        for (size_t k = 0; k < 4; ++k) {
            const auto item = tok[k + 1];
            const size_t eq = item.find('=');
            if (eq == std::string_view::npos || item.substr(0, eq) != kKeys[k])
                return at_line(source, ln,
                               fmt::format("field {} is '{}', expected '{}=<value>'", k + 2,
                                           shown(item), kKeys[k]));
            const auto value = item.substr(eq + 1);
            if (k == 3) {
                if (auto f = parse_u64(value, pl.total_usec); f != NumFault::none)
                    return at_line(source, ln, describe(f, value, "total"));
                continue;
            }
            double d = 0;
            const char* end = value.data() + value.size();
            auto [p, ec] = value.empty() || value.front() == '+' || value.front() == '-'
                               ? std::from_chars_result{value.data(), std::errc::invalid_argument}
                               : std::from_chars(value.data(), end, d, std::chars_format::fixed);
            if (ec != std::errc() || p != end || !std::isfinite(d) || d > 100.0)
                return at_line(source, ln,
                               fmt::format("{} '{}' is not a percentage between 0 and 100",
                                           kKeys[k], shown(value)));
            (k == 0 ? pl.avg10 : k == 1 ? pl.avg60 : pl.avg300) = d;
        }
        *seen = ln;
        if (seen == &some_line)
            out.some = pl;
        else
            out.full = pl;
    }
    if (!some_line) return make_error(fmt::format("{}: no 'some' line", source));
    return out;
}

// ---- /dev/kmsg records --------------------------------------------------------------------------

Result<KmsgRecord> parse_kmsg_record(std::string_view record) {
    // Documentation/ABI/testing/dev-kmsg: "<prio>,<seq>,<ts_usec>,<flag>[,<more fields>];<text>\n"
    // then optional " KEY=value\n" continuation lines. Later kernels may add comma-separated
    // fields before the ';' (e.g. "caller=T123"); they are ignored as the ABI asks.
    const size_t nl = record.find('\n');
    const auto first = record.substr(0, nl);
    const size_t semi = first.find(';');
    if (semi == std::string_view::npos)
        return make_error(fmt::format("kmsg record '{}': no ';' after the prefix", shown(first)));
    const auto prefix = first.substr(0, semi);
    std::vector<std::string_view> fields;
    size_t start = 0;
    while (true) {
        const size_t comma = prefix.find(',', start);
        fields.push_back(prefix.substr(start, comma - start));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    if (fields.size() < 4)
        return make_error(
            fmt::format("kmsg record '{}': expected '<prio>,<seq>,<timestamp>,<flag>;' before the "
                        "text, found {} "
                        "fields",
                        shown(prefix), fields.size()));
    KmsgRecord r;
    uint64_t prio = 0;
    if (auto f = parse_u64(fields[0], prio); f != NumFault::none)
        return make_error(
            fmt::format("kmsg record '{}': {}", shown(prefix), describe(f, fields[0], "priority")));
    // prio = facility << 3 | level, facility being 8 bits (the ABI's description).
    if (prio >= (256u << 3))
        return make_error(
            fmt::format("kmsg record '{}': priority {} is out of range", shown(prefix), prio));
    r.facility = static_cast<int>(prio >> 3);
    r.level = static_cast<int>(prio & 7);
    if (auto f = parse_u64(fields[1], r.seq); f != NumFault::none)
        return make_error(fmt::format("kmsg record '{}': {}", shown(prefix),
                                      describe(f, fields[1], "sequence number")));
    if (auto f = parse_u64(fields[2], r.ts_usec); f != NumFault::none)
        return make_error(fmt::format("kmsg record '{}': {}", shown(prefix),
                                      describe(f, fields[2], "timestamp")));
    if (fields[3].size() != 1)
        return make_error(fmt::format("kmsg record '{}': flag '{}' is not one character",
                                      shown(prefix), shown(fields[3])));
    r.flag = fields[3].front();
    r.message = first.substr(semi + 1);
    return r;
}

// ---- allocation-failure reports -----------------------------------------------------------------

namespace {

// Whether a GFP mask could not sleep, i.e. lacked __GFP_DIRECT_RECLAIM (__GFP_WAIT before 4.4).
//
// From the names (kernel >= 4.6 prints "mode:%#x(%pGg)", decoded with the composites first:
// "GFP_KERNEL", "GFP_ATOMIC", "GFP_NOWAIT|__GFP_NOWARN"...): any name that includes direct reclaim
// means the request could sleep. GFP_TRANSHUGE includes it; GFP_TRANSHUGE_LIGHT does not.
// GFP_TEMPORARY (4.6-4.13) included it. Anything else (GFP_ATOMIC, GFP_NOWAIT, bare __GFP_HIGH, an
// empty list) could not.
bool atomic_from_names(std::string_view names) {
    constexpr std::string_view kSleepers[] = {
        "GFP_KERNEL",    "GFP_KERNEL_ACCOUNT", "GFP_USER",      "GFP_NOFS",
        "GFP_NOIO",      "GFP_TEMPORARY",      "GFP_TRANSHUGE", "__GFP_DIRECT_RECLAIM",
        "__GFP_RECLAIM", "__GFP_WAIT",
    };
    while (!names.empty()) {
        const size_t bar = names.find('|');
        const auto name = trim(names.substr(0, bar));
        if (name.starts_with("GFP_HIGHUSER")) return false;  // GFP_HIGHUSER, GFP_HIGHUSER_MOVABLE
        for (auto s : kSleepers)
            if (name == s) return false;
        if (bar == std::string_view::npos) break;
        names.remove_prefix(bar + 1);
    }
    return true;
}

// From the bits, when no names were printed. Two layouts printed bare masks:
//  * kernels < 4.4: __GFP_WAIT = 0x10. Both the "page allocation failure. order:" (dot, <= 3.x)
//    and the "page allocation failure: order:" (colon, 3.x..4.3) formats. Their highest flag was
//    ___GFP_WRITE = 0x1000000 (__GFP_BITS_SHIFT 25), so their masks are below 0x2000000.
//  * kernels 4.4 and 4.5 (colon format, names came in 4.6): ___GFP_DIRECT_RECLAIM = 0x400000 and
//    ___GFP_KSWAPD_RECLAIM = 0x2000000, the latter part of GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT and
//    GFP_NOIO alike. 0x400000 was ___GFP_NO_KSWAPD before 4.4, so the bit alone cannot tell.
// Heuristic: a colon-format mask with a bit at or above 0x2000000 is of the 4.4 layout; any other
// bare mask is of the __GFP_WAIT layout. Misjudged are only 4.4/4.5 masks without
// __GFP_KSWAPD_RECLAIM (e.g. GFP_TRANSHUGE), which carry __GFP_NOWARN and so are never reported.
constexpr uint64_t kGfpWaitPre44 = 0x10;
constexpr uint64_t kGfpDirectReclaim44 = 0x400000;
constexpr uint64_t kGfpKswapdReclaim44 = 0x2000000;

bool atomic_from_bits(uint64_t mask, bool dot_format) {
    if (!dot_format && mask >= kGfpKswapdReclaim44) return (mask & kGfpDirectReclaim44) == 0;
    return (mask & kGfpWaitPre44) == 0;
}

// Removes a dmesg-style "[  123.456789] " timestamp, so lines copied from dmesg(1) parse too.
std::string_view strip_dmesg_time(std::string_view m) {
    if (m.empty() || m.front() != '[') return m;
    const size_t close = m.find("] ");
    if (close == std::string_view::npos) return m;
    const auto inside = trim(m.substr(1, close - 1));
    if (inside.empty() || inside.find_first_not_of("0123456789.") != std::string_view::npos)
        return m;
    return m.substr(close + 2);
}

// The task in front of `pos`: "" when the report starts there, the text before ": " otherwise.
// nullopt when something else precedes the phrase (the phrase is quoted inside another message).
std::optional<std::string> task_before(std::string_view m, size_t pos) {
    if (pos == 0) return std::string();
    const auto prefix = m.substr(0, pos);
    if (prefix.size() < 3 || !prefix.ends_with(": ")) return std::nullopt;
    return std::string(prefix.substr(0, prefix.size() - 2));
}

// Decimal digits at the front of `s`, consumed. nullopt when there are none or they overflow.
std::optional<uint64_t> take_u64(std::string_view& s) {
    size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
    uint64_t v = 0;
    if (n == 0 || parse_u64(s.substr(0, n), v) != NumFault::none) return std::nullopt;
    s.remove_prefix(n);
    return v;
}

bool take(std::string_view& s, std::string_view literal) {
    if (!s.starts_with(literal)) return false;
    s.remove_prefix(literal.size());
    return true;
}

// "mode:0x10c0d0" or "mode:0xa20(GFP_ATOMIC)" found anywhere in `rest`. false when a mode is
// present but malformed; true (and nothing set) when there is no mode at all.
bool read_mode(std::string_view rest, AllocFailure& f, bool& have_names) {
    have_names = false;
    const size_t at = rest.find("mode:");
    if (at == std::string_view::npos) return true;
    rest.remove_prefix(at + 5);
    size_t n = 0;
    // The kernel prints "%#x" (and "0x%x" before 4.6): "0x" then lowercase hex; "%#x" of 0 is "0".
    if (rest.starts_with("0x") || rest.starts_with("0X")) rest.remove_prefix(2);
    while (n < rest.size() && std::isxdigit(static_cast<unsigned char>(rest[n]))) ++n;
    if (n == 0) return false;
    uint64_t mask = 0;
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + n, mask, 16);
    if (ec != std::errc() || p != rest.data() + n) return false;
    f.gfp_mask = mask;
    rest.remove_prefix(n);
    if (rest.starts_with('(')) {
        const size_t close = rest.find(')');
        if (close != std::string_view::npos) {
            f.gfp_flags = std::string(rest.substr(1, close - 1));
            have_names = true;
        }
    }
    return true;
}

void decide_atomic(AllocFailure& f, bool have_names, bool dot_format) {
    if (have_names)
        f.atomic = atomic_from_names(f.gfp_flags);
    else if (f.gfp_mask)
        f.atomic = atomic_from_bits(*f.gfp_mask, dot_format);
    else
        f.atomic = false;  // not printed: unknown, and "could sleep" is the common case
}

std::optional<AllocFailure> parse_page_failure(std::string_view m) {
    constexpr std::string_view kPhrase = "page allocation failure";
    const size_t pos = m.find(kPhrase);
    if (pos == std::string_view::npos) return std::nullopt;
    auto task = task_before(m, pos);
    if (!task) return std::nullopt;
    std::string_view rest = m.substr(pos + kPhrase.size());
    bool dot_format = false;
    if (take(rest, ". "))
        dot_format = true;
    else if (!take(rest, ": "))
        return std::nullopt;
    if (!take(rest, "order:")) return std::nullopt;
    const auto order = take_u64(rest);
    // No kernel has an order near 64 (MAX_PAGE_ORDER is at most ~20); larger is not a report.
    if (!order || *order >= 64) return std::nullopt;
    AllocFailure f;
    f.kind = FailureKind::page;
    f.task = std::move(*task);
    f.order = static_cast<int>(*order);
    bool have_names = false;
    if (!read_mode(rest, f, have_names)) return std::nullopt;
    decide_atomic(f, have_names, dot_format);
    return f;
}

std::optional<AllocFailure> parse_vmalloc_failure(std::string_view m, uint64_t page_size_bytes) {
    // mm/vmalloc.c over the years (all through warn_alloc(), which adds "<comm>: " and
    // ", mode:...", since 4.10; before that the comm was printed only by the 2.6 printk):
    //   "vmalloc: allocation failure, allocated %ld of %ld bytes"   (2.6 .. 5.x)
    //   "vmalloc: allocation failure: %lu bytes"                     (4.x .. 5.x)
    //   "vmalloc error: size %lu, <reason>"                          (5.14+; several reasons)
    std::optional<uint64_t> size, allocated;
    size_t pos = std::string_view::npos;
    std::string_view rest;
    if (const size_t a = m.find("vmalloc: allocation failure"); a != std::string_view::npos) {
        pos = a;
        rest = m.substr(a + std::string_view("vmalloc: allocation failure").size());
        if (take(rest, ", allocated ")) {
            if (!take_u64(rest) || !take(rest, " of ")) return std::nullopt;
            size = take_u64(rest);
        } else if (take(rest, ": ")) {
            size = take_u64(rest);
        }
        if (!size || !take(rest, " bytes")) return std::nullopt;
    } else if (const size_t b = m.find("vmalloc error: size "); b != std::string_view::npos) {
        pos = b;
        rest = m.substr(b + std::string_view("vmalloc error: size ").size());
        size = take_u64(rest);
        if (!size) return std::nullopt;
        // "vmalloc error: size %lu, [page order %u, ]failed to allocate pages" prints
        // area->nr_pages * PAGE_SIZE: what was allocated before the failure, not the request
        // (mm/vmalloc.c __vmalloc_area_node). The request is unknown then.
        if (rest.find("failed to allocate pages") != std::string_view::npos) {
            allocated = size;
            size.reset();
        }
    } else {
        return std::nullopt;
    }
    auto task = task_before(m, pos);
    if (!task) return std::nullopt;
    AllocFailure f;
    f.kind = FailureKind::vmalloc;
    f.task = std::move(*task);
    f.size_bytes = size;
    f.allocated_bytes = allocated;
    // The order of the size: pages rounded up, then the power of two rounded up (4096 B -> 0,
    // 8192 B -> 1, 20480 B -> 3 with 4 KiB pages). Unknown request: 0.
    const uint64_t page = page_size_bytes == 0 ? 4096 : page_size_bytes;
    const uint64_t bytes = size.value_or(0);
    const uint64_t pages = bytes / page + (bytes % page != 0 ? 1 : 0);
    f.order = pages <= 1 ? 0 : static_cast<int>(std::bit_width(pages - 1));
    bool have_names = false;
    if (!read_mode(rest, f, have_names)) return std::nullopt;
    decide_atomic(f, have_names, false);
    return f;
}

}  // namespace

std::optional<AllocFailure> parse_alloc_failure(std::string_view message,
                                                uint64_t page_size_bytes) {
    const auto m = strip_dmesg_time(trim(message));
    if (auto f = parse_page_failure(m)) return f;
    return parse_vmalloc_failure(m, page_size_bytes);
}

}  // namespace fragtune
