// Rendering the configuration as TOML: get_field_text() and --dump-config's effective
// configuration.
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

#include "fragtune/configuration/config_file.hpp"
#include "fragtune/knobs/tunables.hpp"
#include "toml_text.hpp"

namespace fragtune {

using namespace config_detail;

std::optional<std::string> get_field_text(const ConfigKey& k, const Config& config) {
    Config c = config;  // accessors take a mutable Config; a copy keeps the caller's const promise
    if (k.percent_field && k.percent_field(c))
        return quote(fmt::format("{}%", *k.percent_field(c)));
    return std::visit(
        [&](auto* ref) -> std::optional<std::string> {
            const auto& f = ref(c);
            using F = std::remove_cvref_t<decltype(f)>;
            if constexpr (std::is_same_v<F, bool>) {
                return f ? "true" : "false";
            } else if constexpr (std::is_same_v<F, Mode> || std::is_same_v<F, OnExit>) {
                return quote(to_string(f));
            } else if constexpr (std::is_same_v<F, std::string>) {
                return quote(f);
            } else if constexpr (std::is_same_v<F, std::vector<int>>) {
                return fmt::format("[{}]", fmt::join(f, ", "));
            } else if constexpr (std::is_same_v<F, double>) {
                return format_number(f);
            } else if constexpr (std::is_same_v<F, std::optional<int64_t>>) {
                if (!f) return std::nullopt;
                return k.kind == ValueKind::integer
                           ? fmt::format("{}", *f)
                           : quote(format_size_kib(static_cast<uint64_t>(*f)));
            } else {
                static_assert(std::is_integral_v<F>);
                if (k.kind == ValueKind::duration) return quote(format_duration(f));
                if (k.kind == ValueKind::size) {
                    if (f == 0 && k.allow_int_kib) return std::string("0");
                    return quote(format_size_kib(static_cast<uint64_t>(f)));
                }
                return fmt::format("{}", f);
            }
        },
        k.field);
}

namespace {
// What an unset optional bound means, for the rendered configuration.
std::string unset_meaning(const ConfigKey& k) {
    auto knob =
        knob_from_name(std::string_view(k.section).substr(std::string_view("tunables.").size()));
    if (!knob || k.key == "baseline") return "the value found at first start";
    const TunableSpec& t = spec(*knob);
    if (k.key == "min")
        return *knob == Knob::min_free_kbytes ? "the baseline"
                                              : fmt::format("the default {}", t.default_min);
    return fmt::format("the default {}", t.default_max);
}
}  // namespace

std::string render_effective_config(const LoadedConfig& loaded) {
    std::string out =
        "# fragtune effective configuration: built-in defaults, then the files below in order.\n";
    if (loaded.files.empty())
        out += "# No configuration file was read.\n";
    else
        for (const auto& f : loaded.files) out += "#   " + f + "\n";
    std::string section;
    for (const auto& k : config_keys()) {
        if (k.section != section) {
            section = k.section;
            out += "\n[" + section + "]\n";
        }
        const std::string origin = loaded.origin(k.full_name()).describe();
        const std::string from = origin == "default" ? "# default" : "# from " + origin;
        if (auto v = get_field_text(k, loaded.config)) {
            std::string line = k.key + " = " + *v;
            out += fmt::format("{:<44} {}\n", line, from);
        } else {
            out += fmt::format("{:<44} {}\n", "# " + k.key + " unset: " + unset_meaning(k), from);
        }
    }
    return out;
}

}  // namespace fragtune
