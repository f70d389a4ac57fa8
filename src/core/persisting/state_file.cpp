#include "fragtune/persisting/state_file.hpp"

#include <algorithm>
#include <cerrno>
#include <exception>
#include <filesystem>
#include <iterator>
#include <limits>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "fragtune/util/enum_names.hpp"
#include "fragtune/util/utf8.hpp"

namespace fragtune {

namespace {

constexpr EnumName<StateLoadStatus> kLoadStatusNames[] = {
    {StateLoadStatus::loaded, "loaded"},
    {StateLoadStatus::absent, "absent"},
    {StateLoadStatus::corrupt, "corrupt"},
    {StateLoadStatus::future_version, "future_version"},
    {StateLoadStatus::unreadable, "unreadable"},
};
static_assert(enum_rows_in_order(kLoadStatusNames) &&
              std::size(kLoadStatusNames) ==
                  static_cast<std::size_t>(StateLoadStatus::unreadable) + 1);

bool persists(KnobStatus s) {
    return s == KnobStatus::pinned || s == KnobStatus::conflict;
}

int64_t to_toml_int(uint64_t v) {
    constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    return static_cast<int64_t>(std::min(v, kMax));
}

std::string where(std::string_view source, const toml::node& n) {
    const auto& b = n.source().begin;
    return fmt::format("{}:{}:{}", source, b.line, b.column);
}

std::string_view type_name(const toml::node& n) {
    switch (n.type()) {
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a float";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        default:
            return "nothing";
    }
}

// Why a knob field could not be used; empty when fine. Integer fields only.
Result<std::optional<int64_t>> knob_int(const toml::table& t, std::string_view key,
                                        std::string_view knob, std::string_view source) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::optional<int64_t>{};
    if (const auto* i = n->as_integer()) return std::optional<int64_t>{i->get()};
    return make_error(fmt::format("{}: knobs.{}.{} must be an integer, found {}", where(source, *n),
                                  knob, key, type_name(*n)));
}

Result<void> parse_knob(const toml::table& t, Knob knob, std::string_view source,
                        PersistedKnob& out, std::vector<std::string>& warnings) {
    const std::string_view name = spec(knob).name;
    // Values no kernel accepts (the widest range any supported kernel has) were not written by a
    // fragtuned: they are dropped with a warning rather than becoming absurd targets or restores.
    const Range widest{spec(knob).kernel_min, spec(knob).kernel_max};
    for (auto key : {"original", "baseline", "last_written", "learned"}) {
        auto v = knob_int(t, key, name, source);
        if (!v) return v.error();
        if (*v && !widest.contains(**v)) {
            warnings.push_back(fmt::format(
                "{}: knobs.{}.{} = {} is outside the kernel's range {}..{}: dropped{}",
                where(source, *t.get(key)), name, key, **v, widest.min, widest.max,
                std::string_view(key) == "original"
                    ? " (the live value at this start is recorded as the original instead)"
                    : ""));
            *v = std::nullopt;
        }
        if (std::string_view(key) == "original") out.original = *v;
        if (std::string_view(key) == "baseline") out.baseline = *v;
        if (std::string_view(key) == "last_written") out.last_written = *v;
        if (std::string_view(key) == "learned") out.learned = *v;
    }
    if (auto age = knob_int(t, "learned_age_usec", name, source); !age) {
        return age.error();
    } else if (*age) {
        if (**age < 0)
            warnings.push_back(fmt::format("{}: knobs.{}.learned_age_usec = {} is negative: 0 used",
                                           where(source, *t.get("learned_age_usec")), name, **age));
        out.learned_age_usec = static_cast<uint64_t>(std::max<int64_t>(**age, 0));
    }
    for (auto key : {"status", "status_reason", "learned_why"}) {
        const toml::node* n = t.get(key);
        if (n == nullptr) continue;
        const auto* s = n->as_string();
        if (s == nullptr)
            return make_error(fmt::format("{}: knobs.{}.{} must be a string, found {}",
                                          where(source, *n), name, key, type_name(*n)));
        if (std::string_view(key) == "status_reason") {
            out.status_reason = s->get();
            continue;
        }
        if (std::string_view(key) == "learned_why") {
            out.learned_why = s->get();
            continue;
        }
        auto st = status_from_key(s->get());
        if (!st)
            warnings.push_back(fmt::format("{}: knobs.{}.status '{}' is unknown: treated as tuning",
                                           where(source, *n), name, s->get()));
        out.status = st && persists(*st) ? *st : KnobStatus::tuning;
    }
    if (out.status == KnobStatus::tuning) out.status_reason.clear();
    for (const auto& [k, v] : t) {
        const std::string_view ks = k.str();
        if (ks != "original" && ks != "baseline" && ks != "last_written" && ks != "status" &&
            ks != "status_reason" && ks != "learned" && ks != "learned_age_usec" &&
            ks != "learned_why")
            warnings.push_back(
                fmt::format("{}: knobs.{}.{} is unknown: ignored", where(source, v), name, ks));
    }
    return {};
}

// One history record, or the reason it is skipped.
Result<HistoryEntry> parse_history_entry(const toml::table& t) {
    HistoryEntry h;
    auto integer = [&](std::string_view key) -> Result<int64_t> {
        const toml::node* n = t.get(key);
        if (n == nullptr) return make_error(fmt::format("no '{}'", key));
        if (const auto* i = n->as_integer()) return i->get();
        return make_error(fmt::format("'{}' must be an integer, found {}", key, type_name(*n)));
    };
    auto string = [&](std::string_view key, bool required) -> Result<std::string> {
        const toml::node* n = t.get(key);
        if (n == nullptr) {
            if (required) return make_error(fmt::format("no '{}'", key));
            return std::string();
        }
        if (const auto* s = n->as_string()) return s->get();
        return make_error(fmt::format("'{}' must be a string, found {}", key, type_name(*n)));
    };

    auto when = integer("realtime_usec");
    if (!when) return when.error();
    if (*when < 0) return make_error(fmt::format("'realtime_usec' is negative ({})", *when));
    h.realtime_usec = static_cast<uint64_t>(*when);

    auto knob = string("knob", true);
    if (!knob) return knob.error();
    auto k = knob_from_name(*knob);
    if (!k) return make_error(fmt::format("unknown knob '{}'", *knob));
    h.knob = *k;

    auto action = string("action", true);
    if (!action) return action.error();
    auto a = action_from_key(*action);
    if (!a) return make_error(fmt::format("unknown action '{}'", *action));
    h.action = *a;

    auto old_v = integer("old");
    if (!old_v) return old_v.error();
    h.old_value = *old_v;
    auto new_v = integer("new");
    if (!new_v) return new_v.error();
    h.new_value = *new_v;

    auto rule = string("rule", false);
    if (!rule) return rule.error();
    h.rule = std::move(*rule);
    auto reason = string("reason", false);
    if (!reason) return reason.error();
    h.reason = std::move(*reason);

    if (const toml::node* n = t.get("applied")) {
        const auto* b = n->as_boolean();
        if (b == nullptr)
            return make_error(fmt::format("'applied' must be a boolean, found {}", type_name(*n)));
        h.applied = b->get();
    }
    return h;
}

// parse_state with the future-version case told apart, for load_state.
Result<PersistedState> parse_impl(std::string_view text, std::string_view source,
                                  std::size_t max_history, bool& future) {
    future = false;
    toml::table doc;
#if TOML_EXCEPTIONS
    try {
        doc = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        const auto& b = e.source().begin;
        return make_error(fmt::format("{}:{}:{}: {}", source, b.line, b.column, e.description()));
    } catch (const std::exception& e) {
        return make_error(fmt::format("{}: {}", source, e.what()));
    }
#else
    toml::parse_result res = toml::parse(text, source);
    if (!res) {
        const auto& b = res.error().source().begin;
        return make_error(
            fmt::format("{}:{}:{}: {}", source, b.line, b.column, res.error().description()));
    }
    doc = std::move(res).table();
#endif

    PersistedState st;
    const toml::node* ver = doc.get("format_version");
    if (ver == nullptr)
        return make_error(
            fmt::format("{}: no format_version: not a fragtune state file (or truncated)", source));
    const auto* vi = ver->as_integer();
    if (vi == nullptr)
        return make_error(fmt::format("{}: format_version must be an integer, found {}",
                                      where(source, *ver), type_name(*ver)));
    if (vi->get() > kStateFormatVersion) {
        future = true;
        return make_error(fmt::format(
            "{}: format version {} was written by a newer fragtuned (this one understands up to "
            "{}): refusing to use it; the file is left untouched",
            where(source, *ver), vi->get(), kStateFormatVersion));
    }
    if (vi->get() < 1)
        return make_error(
            fmt::format("{}: format_version {} is invalid", where(source, *ver), vi->get()));
    st.format_version = vi->get();

    if (const toml::node* kn = doc.get("knobs")) {
        const auto* kt = kn->as_table();
        if (kt == nullptr)
            return make_error(fmt::format("{}: knobs must be a table, found {}", where(source, *kn),
                                          type_name(*kn)));
        for (const auto& [key, node] : *kt) {
            const std::string_view name = key.str();
            auto k = knob_from_name(name);
            if (!k) {
                st.warnings.push_back(
                    fmt::format("{}: unknown knob '{}': ignored", where(source, node), name));
                continue;
            }
            const auto* t = node.as_table();
            if (t == nullptr)
                return make_error(fmt::format("{}: knobs.{} must be a table, found {}",
                                              where(source, node), name, type_name(node)));
            if (auto r = parse_knob(*t, *k, source, st.knob(*k), st.warnings); !r) return r.error();
        }
    }

    if (const toml::node* hn = doc.get("history")) {
        const auto* arr = hn->as_array();
        if (arr == nullptr) {
            st.warnings.push_back(
                fmt::format("{}: history must be an array of tables: ignored", where(source, *hn)));
        } else {
            for (const auto& e : *arr) {
                const auto* t = e.as_table();
                if (t == nullptr) {
                    st.warnings.push_back(fmt::format("{}: history record skipped: {} not a table",
                                                      where(source, e), type_name(e)));
                    continue;
                }
                auto h = parse_history_entry(*t);
                if (!h) {
                    st.warnings.push_back(fmt::format("{}: history record skipped: {}",
                                                      where(source, e), h.error().message));
                    continue;
                }
                st.history.push_back(std::move(*h));
            }
        }
    }
    if (st.history.size() > max_history) {
        st.history_dropped = st.history.size() - max_history;
        st.history.erase(st.history.begin(),
                         st.history.begin() + static_cast<std::ptrdiff_t>(st.history_dropped));
    }

    for (const auto& [key, node] : doc) {
        const std::string_view k = key.str();
        if (k != "format_version" && k != "knobs" && k != "history")
            st.warnings.push_back(
                fmt::format("{}: unknown key '{}': ignored", where(source, node), k));
    }
    return st;
}

}  // namespace

std::string_view status_key(KnobStatus s) {
    return to_string(s);
}

std::optional<KnobStatus> status_from_key(std::string_view key) {
    return knob_status_from_string(key);
}

std::string_view action_key(Action a) {
    return to_string(a);
}

std::optional<Action> action_from_key(std::string_view key) {
    return action_from_string(key);
}

std::string_view to_string(StateLoadStatus s) {
    return enum_name(kLoadStatusNames, s);
}

HistoryEntry make_history_entry(const Decision& d, uint64_t realtime_usec, bool applied) {
    return HistoryEntry{realtime_usec, d.knob, d.action, d.old_value,
                        d.new_value,   d.rule, d.reason, applied};
}

std::string state_text(std::string_view s) {
    std::string out = valid_utf8(s);
    if (out.size() <= kMaxStateTextBytes) return out;
    // Cut before a character that would not fit with the ellipsis (never inside a sequence).
    constexpr std::string_view kEllipsis = "\u2026";
    std::size_t cut = kMaxStateTextBytes - kEllipsis.size();
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0u) == 0x80u) --cut;
    out.resize(cut);
    out += kEllipsis;
    return out;
}

std::string render_state(const PersistedState& state, std::size_t max_bytes) {
    toml::table doc;
    doc.insert("format_version", state.format_version);

    toml::table knobs;
    for (const auto& t : kTunables) {
        const PersistedKnob& pk = state.knob(t.knob);
        toml::table kt;
        if (pk.original) kt.insert("original", *pk.original);
        if (pk.baseline) kt.insert("baseline", *pk.baseline);
        if (pk.last_written) kt.insert("last_written", *pk.last_written);
        const KnobStatus s = persists(pk.status) ? pk.status : KnobStatus::tuning;
        kt.insert("status", std::string(status_key(s)));
        if (persists(s) && !pk.status_reason.empty())
            kt.insert("status_reason", state_text(pk.status_reason));
        if (pk.learned) {
            kt.insert("learned", *pk.learned);
            kt.insert("learned_age_usec", to_toml_int(pk.learned_age_usec));
            if (!pk.learned_why.empty()) kt.insert("learned_why", state_text(pk.learned_why));
        }
        knobs.insert(std::string(t.name), std::move(kt));
    }
    doc.insert("knobs", std::move(knobs));

    std::ostringstream os;
    os << "# fragtuned state. \"original\" is each knob's value before fragtune first changed it: "
          "the\n"
          "# value restored on request and after uninstall. Written by fragtuned; edit only while "
          "it "
          "is\n"
          "# stopped.\n\n";
    os << toml::toml_formatter(doc) << '\n';
    std::string out = os.str();

    // History: each record is its own [[history]] table (consecutive ones append to one array), so
    // the newest records are rendered one by one, from the newest back, while they fit. The knobs
    // above are at most 5 * ~4.5 KiB with state_text(), far below any allowed bound.
    std::vector<std::string> blocks;
    std::size_t size = out.size();
    for (auto it = state.history.rbegin(); it != state.history.rend(); ++it) {
        const HistoryEntry& h = *it;
        toml::table one{{"history", toml::array{toml::table{
                                        {"realtime_usec", to_toml_int(h.realtime_usec)},
                                        {"knob", std::string(spec(h.knob).name)},
                                        {"action", std::string(action_key(h.action))},
                                        {"old", h.old_value},
                                        {"new", h.new_value},
                                        {"rule", state_text(h.rule)},
                                        {"reason", state_text(h.reason)},
                                        {"applied", h.applied},
                                    }}}};
        std::ostringstream b;
        b << '\n' << toml::toml_formatter(one) << '\n';
        std::string block = b.str();
        if (size + block.size() > max_bytes) break;
        size += block.size();
        blocks.push_back(std::move(block));
    }
    out.reserve(size);
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) out += *it;
    return out;
}

Result<PersistedState> parse_state(std::string_view text, std::string_view source,
                                   std::size_t max_history) {
    bool future = false;
    return parse_impl(text, source, max_history, future);
}

LoadedState load_state(const KernelFs& fs, std::string_view path, std::size_t max_history) {
    LoadedState out;
    auto text = fs.read(path, kStateFileLimits);
    if (!text) {
        if (text.error().sys_errno == ENOENT) return out;  // absent: first start
        // Too large, not a regular file, a symlink, EACCES...: the message names the path and why.
        out.status = StateLoadStatus::unreadable;
        out.error =
            make_error(fmt::format("cannot read state file {}: {}", path, text.error().message),
                       text.error().sys_errno);
        return out;
    }
    bool future = false;
    auto parsed = parse_impl(*text, path, max_history, future);
    if (!parsed) {
        out.status = future ? StateLoadStatus::future_version : StateLoadStatus::corrupt;
        out.error = parsed.error();
        return out;
    }
    out.status = StateLoadStatus::loaded;
    out.state = std::move(*parsed);
    return out;
}

Result<void> set_aside_state_file(const KernelFs& fs, std::string_view path) {
    auto text = fs.read(path, kStateFileLimits);
    if (!text)
        return make_error(fmt::format("cannot read state file {} to set it aside: {}", path,
                                      text.error().message),
                          text.error().sys_errno);
    const std::string target = std::string(path) + ".corrupt";
    if (auto r = fs.write_atomic(target, *text, 0600); !r)
        return make_error(
            fmt::format("cannot keep corrupt state file as {}: {}", target, r.error().message),
            r.error().sys_errno);
    return {};
}

Result<void> save_state(const KernelFs& fs, std::string_view path, const PersistedState& state) {
    const std::string dir = std::filesystem::path(path).parent_path().string();
    if (auto r = fs.make_dirs(dir, 0700); !r)
        return make_error(
            fmt::format("cannot save state to {}: creating {}: {}", path, dir, r.error().message),
            r.error().sys_errno);
    if (auto r = fs.remove_stale_temps(dir); !r)
        return make_error(fmt::format("cannot save state to {}: {}", path, r.error().message),
                          r.error().sys_errno);
    if (auto r = fs.write_atomic(path, render_state(state), 0600); !r)
        return make_error(fmt::format("cannot save state to {}: {}", path, r.error().message),
                          r.error().sys_errno);
    return {};
}

PersistedState snapshot_state(const ControllerState& state,
                              const std::vector<HistoryEntry>& history,
                              const PersistedState& previous, std::size_t max_history) {
    PersistedState out;
    for (const auto& t : kTunables) {
        const KnobState& ks = state.knob(t.knob);
        const PersistedKnob& prev = previous.knob(t.knob);
        PersistedKnob& pk = out.knob(t.knob);
        pk.original = prev.original ? prev.original : ks.original;
        pk.baseline = ks.baseline;
        pk.last_written = ks.last_written;
        if (persists(ks.status)) {
            pk.status = ks.status;
            pk.status_reason = ks.status_reason;
        }
        const LearnedValue* lv = t.knob == Knob::watermark_scale_factor
                                     ? &state.anticipation.watermark
                                 : t.knob == Knob::min_free_kbytes ? &state.anticipation.min_free
                                                                   : nullptr;
        if (lv && lv->value > 0) {
            pk.learned = lv->value;
            const uint64_t now = state.anticipation.now_usec;
            pk.learned_age_usec = now > lv->at_usec ? now - lv->at_usec : 0;
            pk.learned_why = lv->why;
        }
    }
    const std::size_t skip = history.size() > max_history ? history.size() - max_history : 0;
    out.history.assign(history.begin() + static_cast<std::ptrdiff_t>(skip), history.end());
    return out;
}

void adopt_persisted(ControllerState& state, const PersistedState& persisted) {
    for (const auto& t : kTunables) {
        KnobState& ks = state.knob(t.knob);
        const PersistedKnob& pk = persisted.knob(t.knob);
        // The baseline that follows from this original is resolve_baseline()'s to say
        // (state_at_start() calls both).
        if (pk.original) ks.original = pk.original;
        if (pk.last_written) {
            ks.last_written = pk.last_written;
            // Saved from real writes only (real_state()): what the kernel still holds as its
            // user_min_free_kbytes from our last run, so a hotplug recalculation right after a
            // restart is judged against it.
            if (t.knob == Knob::min_free_kbytes) state.user_min_free_kbytes = pk.last_written;
        }
        if (persists(pk.status) &&
            (ks.status == KnobStatus::tuning || ks.status == KnobStatus::failed)) {
            ks.status = pk.status;
            ks.status_reason = pk.status_reason;
        }
        // What anticipation learnt, with the rest of its hold: learnt `age` before this start (at
        // most since boot: the monotonic clock starts there).
        LearnedValue* lv = t.knob == Knob::watermark_scale_factor ? &state.anticipation.watermark
                           : t.knob == Knob::min_free_kbytes      ? &state.anticipation.min_free
                                                                  : nullptr;
        if (lv && pk.learned && *pk.learned > 0) {
            const uint64_t start = state.start_usec;
            *lv = LearnedValue{*pk.learned,
                               start > pk.learned_age_usec ? start - pk.learned_age_usec : 0,
                               pk.learned_why};
        }
    }
}

}  // namespace fragtune
