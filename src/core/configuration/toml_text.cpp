#include "toml_text.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "fragtune/util/units.hpp"

namespace fragtune::config_detail {

// TOML basic-string escaping; non-ASCII UTF-8 passes through.
std::string toml_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (c < 0x20 || c == 0x7f)
                    out += fmt::format("\\u{:04X}", static_cast<unsigned>(c));
                else
                    out += ch;
        }
    }
    return out;
}
std::string quote(std::string_view s) {
    return "\"" + toml_escape(s) + "\"";
}

// A key as it is shown in a diagnostic's key part: bare when it is a TOML bare key, else quoted.
std::string key_text(std::string_view k) {
    bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
    return bare ? std::string(k) : quote(k);
}

std::string format_number(double v) {
    std::string s = fmt::format("{}", v);
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // keep it a TOML float
    return s;
}

// Largest binary unit that divides exactly: "64M", "1G", "4097K".
std::string format_size_kib(uint64_t kib) {
    if (kib != 0 && kib % (1024ull * 1024 * 1024) == 0) return fmt::format("{}T", kib >> 30);
    if (kib != 0 && kib % (1024ull * 1024) == 0) return fmt::format("{}G", kib >> 20);
    if (kib != 0 && kib % 1024 == 0) return fmt::format("{}M", kib >> 10);
    return fmt::format("{}K", kib);
}

std::string format_duration(uint64_t usec) {
    return usec == 0 ? std::string("0s") : format_duration_usec(usec);
}

// A value of the row's kind and unit, for range messages.
std::string format_in_unit(const ConfigKey& k, double v) {
    switch (k.kind) {
        case ValueKind::duration:
            return format_duration(static_cast<uint64_t>(v));
        case ValueKind::size:
        case ValueKind::size_or_percent:
            return k.allow_int_kib ? fmt::format("{}", static_cast<int64_t>(v))
                                   : format_size_kib(static_cast<uint64_t>(v));
        case ValueKind::integer:
            return fmt::format("{}", static_cast<int64_t>(v));
        default:
            return fmt::format("{}", v);
    }
}

}  // namespace fragtune::config_detail
