#include "fragtune/configuration/config_file.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "fragtune/configuration/key_rows.hpp"
#include "fragtune/configuration/suggest.hpp"
#include "fragtune/knobs/registry.hpp"
#include "fragtune/knobs/tunables.hpp"
#include "fragtune/util/units.hpp"
#include "toml_text.hpp"

namespace fragtune {

namespace {

using namespace key_rows;
using namespace config_detail;

const std::vector<std::string> kTopSections = {"daemon", "signals", "tunables", "safety",
                                               "metrics"};

// What a node is, for "got ..." in type errors.
std::string describe_node(const toml::node& n) {
    if (auto* s = n.as_string()) {
        std::string v = s->get();
        if (v.size() > 60) v = v.substr(0, 57) + "...";
        return "string " + quote(v);
    }
    if (auto* i = n.as_integer()) return fmt::format("integer {}", i->get());
    if (auto* f = n.as_floating_point()) return fmt::format("floating-point {}", f->get());
    if (auto* b = n.as_boolean()) return fmt::format("boolean {}", b->get() ? "true" : "false");
    if (n.is_table()) return "a table";
    if (n.is_array()) return "an array";
    if (n.is_date()) return "a date";
    if (n.is_time()) return "a time";
    if (n.is_date_time()) return "a date-time";
    return "a value of unknown type";
}

bool is_clean_absolute_path(std::string_view p) {
    if (p.empty() || p.front() != '/' || p.find('\0') != std::string_view::npos) return false;
    std::size_t pos = 0;
    while (pos <= p.size()) {
        std::size_t next = p.find('/', pos);
        if (next == std::string_view::npos) next = p.size();
        if (p.substr(pos, next - pos) == "..") return false;
        pos = next + 1;
    }
    return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The first component of an absolute path, ignoring empty and "." components ("//proc/./x": proc).
std::string_view first_component(std::string_view p) {
    std::size_t pos = 0;
    while (pos < p.size()) {
        std::size_t next = p.find('/', pos);
        if (next == std::string_view::npos) next = p.size();
        std::string_view part = p.substr(pos, next - pos);
        if (!part.empty() && part != ".") return part;
        pos = next + 1;
    }
    return {};
}

// "N%" with N a plain non-negative decimal; nullopt when the text is not of that form.
std::optional<double> parse_percent(std::string_view s) {
    if (s.size() < 2 || s.back() != '%') return std::nullopt;
    s.remove_suffix(1);
    if (s.front() == '-' || s.front() == '+') return std::nullopt;
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::fixed);
    if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

// ---- applying values ----------------------------------------------------------------------------

struct Problem {
    std::string message;
    const toml::node* at = nullptr;  // position override (an array element); else the value
};

std::string range_text(const ConfigKey& k) {
    std::string lo = format_in_unit(k, k.min), hi = format_in_unit(k, k.max);
    std::string unit = k.allow_int_kib ? " KiB" : "";
    if (k.min_exclusive) return fmt::format("above {} and at most {}{}", lo, hi, unit);
    return fmt::format("{}..{}{}", lo, hi, unit);
}

// nullopt when `v` is within the row's range, else the message.
std::optional<std::string> check_range(const ConfigKey& k, double v, std::string shown) {
    bool below = k.min_exclusive ? !(v > k.min) : !(v >= k.min);
    if (!below && v <= k.max) return std::nullopt;
    std::string msg = fmt::format("{} is out of range: {}", shown, range_text(k));
    if (!k.range_note.empty()) msg += " (" + k.range_note + ")";
    return msg;
}

// Stores an integral value into whatever integral field the row names (range already checked).
void store_integral(const ConfigKey& k, Config& c, int64_t v) {
    std::visit(
        [&](auto* ref) {
            auto& f = ref(c);
            using F = std::remove_reference_t<decltype(f)>;
            if constexpr (std::is_same_v<F, std::optional<int64_t>>)
                f = v;
            else if constexpr (std::is_integral_v<F> && !std::is_same_v<F, bool>)
                f = static_cast<F>(v);
        },
        k.field);
    if (k.percent_field) k.percent_field(c).reset();
}

template <typename T>
T* field_ptr(const ConfigKey& k, Config& c) {
    if (auto* ref = std::get_if<T& (*)(Config&)>(&k.field)) return &(*ref)(c);
    return nullptr;
}

// The checks of a path value (not "" of an optional path): see path_value_problem().
std::optional<std::string> path_problem(const ConfigKey& k, std::string_view v) {
    Config defaults;
    const std::string example = k.kind == ValueKind::path
                                    ? *field_ptr<std::string>(k, defaults)
                                    : "/var/lib/prometheus/node-exporter/fragtune.prom";
    if (!is_clean_absolute_path(v))
        return fmt::format("expected an absolute path like {} without \"..\", got {}",
                           quote(example), quote(v));
    if (!k.required_suffix.empty() && !ends_with(v, k.required_suffix))
        return fmt::format("{} must end in \"{}\": {}", quote(v), k.required_suffix,
                           k.suffix_reason);
    if (k.written) {
        const std::string_view top = first_component(v);
        if (top == "proc" || top == "sys" || top == "dev")
            return fmt::format(
                "{} is under /{}: fragtuned writes this file, and /proc, /sys and "
                "/dev hold kernel interfaces, not files",
                quote(v), top);
    }
    return std::nullopt;
}

std::optional<Problem> apply_value(const ConfigKey& k, const toml::node& n, Config& c) {
    auto type_error = [&](std::string_view expected) {
        return Problem{fmt::format("expected {}, got {}", expected, describe_node(n))};
    };
    switch (k.kind) {
        case ValueKind::boolean: {
            auto* b = n.as_boolean();
            if (!b) return type_error("true or false");
            *field_ptr<bool>(k, c) = b->get();
            return std::nullopt;
        }
        case ValueKind::integer: {
            auto* i = n.as_integer();
            if (!i) return type_error("an integer");
            int64_t v = i->get();
            if (auto m = check_range(k, static_cast<double>(v), fmt::format("{}", v)))
                return Problem{*m};
            store_integral(k, c, v);
            return std::nullopt;
        }
        case ValueKind::number: {
            double v = 0;
            if (auto* f = n.as_floating_point())
                v = f->get();
            else if (auto* i = n.as_integer())
                v = static_cast<double>(i->get());
            else
                return type_error("a number");
            if (!std::isfinite(v))
                return Problem{fmt::format("expected a finite number, got {}", v)};
            if (auto m = check_range(k, v, fmt::format("{}", v))) return Problem{*m};
            *field_ptr<double>(k, c) = v;
            return std::nullopt;
        }
        case ValueKind::duration: {
            auto* s = n.as_string();
            if (!s) return type_error("a duration like \"5s\" or \"30min\"");
            auto d = parse_duration_usec(s->get());
            if (!d) return Problem{d.error().message};
            if (auto m = check_range(k, static_cast<double>(*d), format_duration(*d));
                m && !(k.allow_zero && *d == 0))
                return Problem{*m};
            *field_ptr<uint64_t>(k, c) = *d;
            return std::nullopt;
        }
        case ValueKind::size:
        case ValueKind::size_or_percent: {
            const bool pct_ok = k.kind == ValueKind::size_or_percent;
            const char* like = pct_ok ? "a size like \"256M\", \"1G\", \"5%\" or an integer in KiB"
                               : k.allow_int_kib
                                   ? "a size like \"64M\" or \"1G\", or an integer in KiB"
                                   : "a size like \"64M\" or \"1G\"";
            if (auto* i = n.as_integer()) {
                if (!k.allow_int_kib) return type_error(like);
                int64_t v = i->get();
                if (auto m = check_range(k, static_cast<double>(v), fmt::format("{}", v)))
                    return Problem{*m};
                store_integral(k, c, v);
                return std::nullopt;
            }
            auto* s = n.as_string();
            if (!s) return type_error(like);
            std::string_view text = s->get();
            if (!text.empty() && text.back() == '%') {
                if (!pct_ok)
                    return Problem{
                        fmt::format("a percentage is accepted only for min, max and baseline of "
                                    "[tunables.min_free_kbytes], got {}",
                                    quote(text))};
                auto p = parse_percent(text);
                if (!p)
                    return Problem{fmt::format(
                        "invalid percentage {}: expected a number from 0 to {} followed by %",
                        quote(text), kMaxLowmemPercent)};
                if (*p > kMaxLowmemPercent)
                    return Problem{fmt::format("{}% is out of range: 0%..{}% of managed lowmem", *p,
                                               kMaxLowmemPercent)};
                k.percent_field(c) = *p;
                if (auto* o = field_ptr<std::optional<int64_t>>(k, c)) o->reset();
                return std::nullopt;
            }
            auto kib = parse_size_kib(text);
            if (!kib) return Problem{kib.error().message};
            // 2^63 KiB and above cannot be stored; the range check below rejects far less anyway.
            if (*kib > static_cast<uint64_t>(INT64_MAX))
                return Problem{fmt::format("{} is out of range: {}", quote(text), range_text(k))};
            if (auto m = check_range(k, static_cast<double>(*kib),
                                     k.allow_int_kib ? fmt::format("{} ({} KiB)", quote(text), *kib)
                                                     : format_size_kib(*kib)))
                return Problem{*m};
            store_integral(k, c, static_cast<int64_t>(*kib));
            return std::nullopt;
        }
        case ValueKind::string: {
            auto* s = n.as_string();
            if (!s) return type_error("a string");
            *field_ptr<std::string>(k, c) = s->get();
            return std::nullopt;
        }
        case ValueKind::path:
        case ValueKind::optional_path: {
            Config defaults;
            const std::string example = k.kind == ValueKind::path
                                            ? *field_ptr<std::string>(k, defaults)
                                            : "/var/lib/prometheus/node-exporter/fragtune.prom";
            const std::string like = fmt::format("an absolute path like {}", quote(example));
            auto* s = n.as_string();
            if (!s)
                return type_error(like + (k.kind == ValueKind::optional_path ? " or \"\"" : ""));
            const std::string& v = s->get();
            if (!(k.kind == ValueKind::optional_path && v.empty())) {
                if (auto p = path_problem(k, v)) return Problem{std::move(*p)};
            }
            *field_ptr<std::string>(k, c) = v;
            return std::nullopt;
        }
        case ValueKind::choice: {
            std::string expected = "one of ";
            for (std::size_t i = 0; i < k.choices.size(); ++i)
                expected += (i ? ", " : "") + quote(k.choices[i]);
            auto* s = n.as_string();
            if (!s) return type_error(expected);
            const std::string& v = s->get();
            if (std::find(k.choices.begin(), k.choices.end(), v) == k.choices.end()) {
                std::string msg = fmt::format("expected {}, got {}", expected, describe_node(n));
                if (auto sug = suggest(v, k.choices))
                    msg += fmt::format("; did you mean {}?", quote(*sug));
                return Problem{msg};
            }
            if (auto* m = field_ptr<Mode>(k, c))
                *m = *mode_from_string(v);
            else if (auto* e = field_ptr<OnExit>(k, c))
                *e = v == "keep" ? OnExit::keep : OnExit::restore;
            else
                *field_ptr<std::string>(k, c) = v;
            return std::nullopt;
        }
        case ValueKind::orders: {
            auto* a = n.as_array();
            if (!a) return type_error("an array of page orders like [3, 9]");
            if (a->empty())
                return Problem{"expected at least one page order (0..15), got an empty array"};
            std::vector<int> orders;
            for (const auto& el : *a) {
                auto* i = el.as_integer();
                if (!i)
                    return Problem{
                        fmt::format("expected page orders as integers, got {}", describe_node(el)),
                        &el};
                int64_t o = i->get();
                if (o < 0 || o > kMaxPageOrder)
                    return Problem{
                        fmt::format("page order {} is out of range: 0..{}", o, kMaxPageOrder), &el};
                if (std::find(orders.begin(), orders.end(), o) != orders.end())
                    return Problem{fmt::format("page order {} is listed twice", o), &el};
                orders.push_back(static_cast<int>(o));
            }
            *field_ptr<std::vector<int>>(k, c) = std::move(orders);
            return std::nullopt;
        }
        case ValueKind::psi_source: {
            const char* like =
                "\"system\" or an absolute cgroup v2 directory like "
                "\"/sys/fs/cgroup/system.slice/app.service\"";
            auto* s = n.as_string();
            if (!s) return type_error(like);
            const std::string& v = s->get();
            if (v != "system" && (!is_clean_absolute_path(v) || v == "/"))
                return Problem{fmt::format("expected {}, got {}", like, describe_node(n))};
            *field_ptr<std::string>(k, c) = v;
            return std::nullopt;
        }
    }
    return Problem{"internal error: unhandled value kind"};
}

// ---- walking documents --------------------------------------------------------------------------

struct Loader {
    LoadedConfig loaded;
    std::vector<ConfigDiagnostic> diags;
    std::vector<int> diag_file_index;  // parallel to diags, for ordering

    void add(int file_index, ConfigDiagnostic d) {
        diags.push_back(std::move(d));
        diag_file_index.push_back(file_index);
    }
    void at(int file_index, const std::string& file, const toml::source_region& where,
            std::string key, std::string message) {
        add(file_index, {ConfigDiagnostic::Severity::error, file, where.begin.line,
                         where.begin.column, std::move(key), std::move(message)});
    }

    // Sections (not keys) that contain `key`, e.g. "tick" -> {"daemon"}.
    static std::vector<std::string> sections_with_key(std::string_view key) {
        std::vector<std::string> out;
        for (const auto& r : config_keys())
            if (r.key == key && std::find(out.begin(), out.end(), r.doc_section) == out.end())
                out.push_back(r.doc_section);
        return out;
    }

    static std::string belongs_in(const std::vector<std::string>& sections) {
        std::string s;
        for (std::size_t i = 0; i < sections.size(); ++i) {
            if (i) s += i + 1 == sections.size() ? " or " : ", ";
            s += sections[i] == "tunables.*" ? "a [tunables.NAME] table" : "[" + sections[i] + "]";
        }
        return "it belongs in " + s;
    }

    void walk_section(const toml::table& t, const std::string& section, const std::string& file,
                      int file_index) {
        std::vector<std::string> names;
        for (const auto& r : config_keys())
            if (r.section == section) names.push_back(r.key);
        for (auto&& [k, v] : t) {
            const std::string name(k.str());
            const std::string full = section + "." + key_text(name);
            const ConfigKey* row = find_config_key(section + "." + name);
            if (!row) {
                std::string msg = fmt::format("unknown key {} in [{}]", quote(name), section);
                auto others = sections_with_key(name);
                if (auto sug = suggest(name, names))
                    msg += fmt::format("; did you mean {}?", quote(*sug));
                else if (!others.empty())
                    msg += "; " + belongs_in(others);
                at(file_index, file, k.source(), full, msg);
                continue;
            }
            if (auto p = apply_value(*row, v, loaded.config)) {
                at(file_index, file, p->at ? p->at->source() : v.source(), full, p->message);
                continue;
            }
            loaded.origins[row->full_name()] =
                ValueOrigin{file, v.source().begin.line, v.source().begin.column, file_index};
        }
    }

    void walk_document(const toml::table& root, const std::string& file, int file_index) {
        for (auto&& [k, v] : root) {
            const std::string name(k.str());
            if (std::find(kTopSections.begin(), kTopSections.end(), name) == kTopSections.end()) {
                std::string msg = fmt::format("unknown section [{}]", key_text(name));
                auto others = sections_with_key(name);
                if (auto sug = suggest(name, kTopSections))
                    msg += fmt::format("; did you mean [{}]?", *sug);
                else if (!others.empty())
                    msg += fmt::format("; {} is a key: ", quote(name)) + belongs_in(others);
                at(file_index, file, k.source(), key_text(name), msg);
                continue;
            }
            auto* table = v.as_table();
            if (!table) {
                at(file_index, file, v.source(), name,
                   fmt::format("expected a table [{}], got {}", name, describe_node(v)));
                continue;
            }
            if (name != "tunables") {
                walk_section(*table, name, file, file_index);
                continue;
            }
            std::vector<std::string> knob_names;
            for (const auto& s : kTunables) knob_names.emplace_back(s.name);
            for (auto&& [kk, kv] : *table) {
                const std::string knob(kk.str());
                const std::string full = "tunables." + key_text(knob);
                auto found = std::find(knob_names.begin(), knob_names.end(), knob);
                if (found == knob_names.end()) {
                    std::string msg = fmt::format("unknown tunable [{}]", full);
                    std::optional<std::string> sug;
                    if (auto kn = knob_from_name(knob))
                        sug = std::string(spec(*kn).name);
                    else
                        sug = suggest(knob, knob_names);
                    if (sug)
                        msg += fmt::format("; did you mean [tunables.{}]?", *sug);
                    else
                        msg += fmt::format("; fragtune tunes {}", fmt::join(knob_names, ", "));
                    at(file_index, file, kk.source(), full, msg);
                    continue;
                }
                auto* kt = kv.as_table();
                if (!kt) {
                    at(file_index, file, kv.source(), full,
                       fmt::format("expected a table [{}], got {}", full, describe_node(kv)));
                    continue;
                }
                walk_section(*kt, full, file, file_index);
            }
        }
    }

    void apply_text(std::string_view text, const std::string& file, int file_index) {
        toml::table root;
        try {
            root = toml::parse(text, std::string_view(file));
        } catch (const toml::parse_error& e) {
            at(file_index, file, e.source(), "", "invalid TOML: " + std::string(e.description()));
            return;
        } catch (const std::exception& e) {
            add(file_index, {ConfigDiagnostic::Severity::error, file, 0, 0, "",
                             std::string("cannot parse: ") + e.what()});
            return;
        }
        walk_document(root, file, file_index);
    }

    // ---- checks on the merged configuration -----------------------------------------------------

    // A diagnostic about a relation between keys, placed at the one set last (the one that made the
    // contradiction); `keys` are full names, at least one of them set by a file.
    void relation(std::initializer_list<std::string> keys, std::string message,
                  ConfigDiagnostic::Severity sev = ConfigDiagnostic::Severity::error) {
        std::string best_key;
        ValueOrigin best;
        for (const auto& key : keys) {
            ValueOrigin o = loaded.origin(key);
            if (o.is_default()) continue;
            if (best.is_default() || std::tie(o.file_index, o.line, o.column) >
                                         std::tie(best.file_index, best.line, best.column))
                best = o, best_key = key;
        }
        if (best.is_default()) {
            // Only defaults involved: the built-in defaults contradict themselves (a bug, caught by
            // the unit tests); still reported rather than hidden.
            add(-1, {sev, "(built-in defaults)", 0, 0, *keys.begin(), std::move(message)});
            return;
        }
        add(best.file_index,
            {sev, best.file, best.line, best.column, best_key, std::move(message)});
    }

    static std::string origin_note(const ValueOrigin& o) {
        return o.is_default() ? "default" : "set at " + o.describe();
    }

    void check_knob(const TunableSpec& t) {
        const KnobConfig& kc = loaded.config.knob(t.knob);
        const std::string sec = "tunables." + std::string(t.name);
        const std::string kmin = sec + ".min", kmax = sec + ".max", kbase = sec + ".baseline";
        const bool is_min_free = t.knob == Knob::min_free_kbytes;
        const auto show = [&](int64_t v) {
            return is_min_free ? fmt::format("{} KiB", v) : fmt::format("{}", v);
        };

        // Absolute bounds; an unset bound falls back to the table default (min_free_kbytes' min to
        // the baseline, which is only known at run time).
        const std::optional<int64_t> lo =
            kc.min ? kc.min
                   : (kc.min_lowmem_percent || is_min_free ? std::nullopt
                                                           : std::optional<int64_t>(t.default_min));
        const std::optional<int64_t> hi =
            kc.max ? kc.max
                   : (kc.max_lowmem_percent ? std::nullopt : std::optional<int64_t>(t.default_max));
        auto lo_text = [&] {
            return kc.min ? show(*lo) : fmt::format("{} (the default min; set min too)", show(*lo));
        };
        auto hi_text = [&] {
            return kc.max ? show(*hi) : fmt::format("{} (the default max; set max too)", show(*hi));
        };
        if (lo && hi && *lo > *hi && (kc.min || kc.max))
            relation({kmin, kmax}, fmt::format("min {} is above max {}", lo_text(), hi_text()));
        if (kc.min_lowmem_percent && kc.max_lowmem_percent &&
            *kc.min_lowmem_percent > *kc.max_lowmem_percent)
            relation({kmin, kmax}, fmt::format("min {}% is above max {}% of managed lowmem",
                                               *kc.min_lowmem_percent, *kc.max_lowmem_percent));
        if (kc.baseline) {
            if (lo && *kc.baseline < *lo)
                relation({kbase, kmin},
                         fmt::format("baseline {} is below min {}", show(*kc.baseline), lo_text()));
            if (hi && *kc.baseline > *hi)
                relation({kbase, kmax},
                         fmt::format("baseline {} is above max {}", show(*kc.baseline), hi_text()));
        }
        if (kc.baseline_lowmem_percent) {
            if (kc.min_lowmem_percent && *kc.baseline_lowmem_percent < *kc.min_lowmem_percent)
                relation({kbase, kmin},
                         fmt::format("baseline {}% is below min {}% of managed lowmem",
                                     *kc.baseline_lowmem_percent, *kc.min_lowmem_percent));
            if (kc.max_lowmem_percent && *kc.baseline_lowmem_percent > *kc.max_lowmem_percent)
                relation({kbase, kmax},
                         fmt::format("baseline {}% is above max {}% of managed lowmem",
                                     *kc.baseline_lowmem_percent, *kc.max_lowmem_percent));
        }
        if (is_min_free) {
            // The safety cap is absolute law: a lower bound above it can never be honoured.
            const double cap = loaded.config.safety.max_min_free_lowmem_percent;
            const std::string kcap = "safety.max_min_free_lowmem_percent";
            if (kc.min_lowmem_percent && *kc.min_lowmem_percent > cap)
                relation(
                    {kmin, kcap},
                    fmt::format("min {}% of managed lowmem is above "
                                "safety.max_min_free_lowmem_percent {}%: it can never be honoured",
                                *kc.min_lowmem_percent, cap));
            if (kc.baseline_lowmem_percent && *kc.baseline_lowmem_percent > cap)
                relation(
                    {kbase, kcap},
                    fmt::format("baseline {}% of managed lowmem is above "
                                "safety.max_min_free_lowmem_percent {}%: it can never be reached",
                                *kc.baseline_lowmem_percent, cap));
            if (kc.max_lowmem_percent && *kc.max_lowmem_percent > cap)
                relation({kmax, kcap},
                         fmt::format("max {}% of managed lowmem is above "
                                     "safety.max_min_free_lowmem_percent {}%: the safety cap wins",
                                     *kc.max_lowmem_percent, cap),
                         ConfigDiagnostic::Severity::warning);
        }

        // Intervals shorter than the tick cannot be honoured at that resolution: harmless, so
        // warnings.
        if (!kc.enabled) return;
        const uint64_t tick = loaded.config.daemon.tick_usec;
        auto shorter_than_tick = [&](std::string_view key, uint64_t usec, std::string_view what) {
            if (usec == 0 || usec >= tick) return;
            relation({sec + "." + std::string(key), "daemon.tick"},
                     fmt::format("{} {} is shorter than daemon.tick {}: {}", key,
                                 format_duration(usec), format_duration(tick), what),
                     ConfigDiagnostic::Severity::warning);
        };
        shorter_than_tick("cooldown", kc.cooldown_usec,
                          "the knob can change at most once per tick anyway");
        shorter_than_tick("decay_interval", kc.decay_interval_usec,
                          "decay steps happen at most once per tick");
    }

    void check_hysteresis(const std::string& sec, std::string_view raise_key, double raise,
                          std::string_view relax_key, double relax) {
        if (relax < raise) return;
        relation(
            {sec + "." + std::string(relax_key), sec + "." + std::string(raise_key)},
            fmt::format("{} {} must be below {} {}: the gap between them is the hysteresis that "
                        "stops the knob from flapping",
                        relax_key, relax, raise_key, raise));
    }

    void check_merged() {
        for (const auto& t : kTunables) check_knob(t);
        const Config& c = loaded.config;
        check_hysteresis("tunables.watermark_scale_factor", "psi_some_raise_percent",
                         c.watermark.psi_some_raise_percent, "psi_some_relax_percent",
                         c.watermark.psi_some_relax_percent);
        check_hysteresis("tunables.compaction_proactiveness", "unusable_raise_permille",
                         c.compaction.unusable_raise_permille, "unusable_relax_permille",
                         c.compaction.unusable_relax_permille);
        check_hysteresis("tunables.vfs_cache_pressure", "slab_raise_share",
                         c.vfs_cache.slab_raise_share, "slab_relax_share",
                         c.vfs_cache.slab_relax_share);
        check_hysteresis("tunables.swappiness", "refault_file_raise_per_sec",
                         c.swappiness.refault_file_raise_per_sec, "refault_file_relax_per_sec",
                         c.swappiness.refault_file_relax_per_sec);
        // A swap-in rate between the two would both allow a refault raise and ask for a lowering.
        check_hysteresis("tunables.swappiness", "swapin_lower_per_sec",
                         c.swappiness.swapin_lower_per_sec, "swapin_low_per_sec",
                         c.swappiness.swapin_low_per_sec);
        if (c.knob(Knob::compaction_proactiveness).enabled &&
            c.compaction.kick_interval_usec < c.daemon.tick_usec)
            relation(
                {"tunables.compaction_proactiveness.kick_interval", "daemon.tick"},
                fmt::format("kick_interval {} is shorter than daemon.tick {}: kcompactd is woken "
                            "at most once per tick anyway",
                            format_duration(c.compaction.kick_interval_usec),
                            format_duration(c.daemon.tick_usec)),
                ConfigDiagnostic::Severity::warning);
    }

    // The loop's cadence and the PSI trigger (checked after merging: the keys come as a group).
    void check_cadence() {
        const Config& c = loaded.config;
        if (c.daemon.tick_min_usec > c.daemon.tick_max_usec)
            relation({"daemon.tick_min", "daemon.tick_max"},
                     fmt::format("tick_min {} is above tick_max {}",
                                 format_duration(c.daemon.tick_min_usec),
                                 format_duration(c.daemon.tick_max_usec)));
        if (c.signals.psi_trigger &&
            c.signals.psi_trigger_stall_usec > c.signals.psi_trigger_window_usec)
            relation({"signals.psi_trigger_stall", "signals.psi_trigger_window"},
                     fmt::format("psi_trigger_stall {} is longer than psi_trigger_window {}",
                                 format_duration(c.signals.psi_trigger_stall_usec),
                                 format_duration(c.signals.psi_trigger_window_usec)));
    }

    ConfigReport finish() {
        check_merged();
        check_cadence();
        std::vector<std::size_t> order(diags.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return std::tie(diag_file_index[a], diags[a].line, diags[a].column) <
                   std::tie(diag_file_index[b], diags[b].line, diags[b].column);
        });
        ConfigReport r;
        for (std::size_t i : order) {
            if (diags[i].severity == ConfigDiagnostic::Severity::warning)
                loaded.warnings.push_back(diags[i]);
            r.diagnostics.push_back(std::move(diags[i]));
        }
        r.loaded = std::move(loaded);
        return r;
    }
};

}  // namespace

// ---- public API ---------------------------------------------------------------------------------

std::string ValueOrigin::describe() const {
    return is_default() ? std::string("default") : fmt::format("{}:{}", file, line);
}

std::string ConfigDiagnostic::describe() const {
    std::string s = file;
    if (line) s += fmt::format(":{}:{}", line, column);
    s += ": ";
    if (!key.empty()) s += key + ": ";
    if (severity == Severity::warning) s += "warning: ";
    return s + message;
}

ValueOrigin LoadedConfig::origin(std::string_view full_name) const {
    auto it = origins.find(full_name);
    return it == origins.end() ? ValueOrigin{} : it->second;
}

bool ConfigReport::ok() const {
    return std::none_of(diagnostics.begin(), diagnostics.end(), [](const ConfigDiagnostic& d) {
        return d.severity == ConfigDiagnostic::Severity::error;
    });
}

std::optional<std::string> path_value_problem(std::string_view full_name, std::string_view value) {
    const ConfigKey* k = find_config_key(full_name);
    if (k == nullptr || (k->kind != ValueKind::path && k->kind != ValueKind::optional_path))
        return fmt::format("{} is not a path key", full_name);
    return path_problem(*k, value);
}

ConfigReport check_config(const KernelFs& kfs, std::string_view main_path) {
    Loader l;
    const std::string main(main_path);
    auto read_and_apply = [&](const std::string& path, bool missing_ok) {
        auto text = kfs.read(path, kConfigFileLimits);
        if (!text) {
            if (missing_ok && text.error().sys_errno == ENOENT) return;
            l.add(static_cast<int>(l.loaded.files.size()),
                  {ConfigDiagnostic::Severity::error, path, 0, 0, "",
                   "cannot read the configuration: " + text.error().describe()});
            return;
        }
        l.loaded.files.push_back(path);
        l.apply_text(*text, path, static_cast<int>(l.loaded.files.size()) - 1);
    };
    read_and_apply(main, true);

    const std::string dropin_dir = main + ".d";
    auto names = kfs.list_dir(dropin_dir);
    if (!names) {
        if (names.error().sys_errno != ENOENT)
            l.add(static_cast<int>(l.loaded.files.size()),
                  {ConfigDiagnostic::Severity::error, dropin_dir, 0, 0, "",
                   "cannot list the drop-in directory: " + names.error().describe()});
    } else {
        std::vector<std::string> sorted = *names;
        std::sort(sorted.begin(),
                  sorted.end());  // byte order: "10-a.toml" < "20-b.toml" < "a.toml"
        for (const auto& n : sorted) {
            // Hidden files are editor and package-manager leftovers (.foo.toml.swp, .#x.toml).
            if (n.empty() || n.front() == '.' || !ends_with(n, ".toml")) continue;
            read_and_apply(dropin_dir + "/" + n, false);
        }
    }
    return l.finish();
}

ConfigReport check_config_text(std::string_view toml_text, std::string_view name) {
    Loader l;
    l.loaded.files.emplace_back(name);
    l.apply_text(toml_text, std::string(name), 0);
    return l.finish();
}

Result<LoadedConfig> load_config(const KernelFs& kfs, std::string main_path) {
    ConfigReport r = check_config(kfs, main_path);
    if (r.ok()) return std::move(r.loaded);
    std::string msg;
    for (const auto& d : r.diagnostics) {
        if (d.severity != ConfigDiagnostic::Severity::error) continue;
        if (!msg.empty()) msg += '\n';
        msg += d.describe();
    }
    return make_error(std::move(msg));
}

}  // namespace fragtune
