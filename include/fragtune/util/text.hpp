// Small string helpers over string_view shared by the parsers (kernel files, sysctl.d, config):
// no allocation except where a vector is returned, no locale.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fragtune {

// The blanks of C isspace() in the "C" locale: space, \t, \n, \v, \f, \r.
inline constexpr std::string_view kBlank = " \t\n\v\f\r";

// One of kBlank, without a memchr() call per character (the parsers' hot loop).
constexpr bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Inline: the parsers trim every line of every sample (bench/sample_bench.cpp).
// `s` without trailing blanks (also the '\r' of CRLF line ends).
inline std::string_view trim_right(std::string_view s) {
    const auto e = s.find_last_not_of(kBlank);
    return e == std::string_view::npos ? std::string_view{} : s.substr(0, e + 1);
}
// `s` without leading blanks.
inline std::string_view trim_left(std::string_view s) {
    const auto b = s.find_first_not_of(kBlank);
    return b == std::string_view::npos ? std::string_view{} : s.substr(b);
}
// `s` without leading and trailing blanks; "" when it is all blanks.
inline std::string_view trim(std::string_view s) {
    return trim_right(trim_left(s));
}

// The lines of `text`, without their '\n'; a last line without '\n' still counts, an empty text
// has no lines. The views point into `text`.
std::vector<std::string_view> split_lines(std::string_view text);
// The blank-separated tokens of `s` (runs of blanks separate; none are empty).
std::vector<std::string_view> split_blank(std::string_view s);

// The directory part of a '/'-separated path: "/var/lib/fragtune/state.toml" -> "/var/lib/fragtune";
// "/" for a file in the root directory and for a path without '/'.
std::string dir_of(std::string_view path);

}  // namespace fragtune
