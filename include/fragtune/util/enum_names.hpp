// The one style for enum <-> string: a constexpr table of {value, name} rows next to the enum's
// to_string()/..._from_string(), which are one-line calls to these. Lookup is linear: the tables
// have a handful of rows.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace fragtune {

template <typename E>
struct EnumName {
    E value;
    std::string_view name;
};

// The name of `v` in `table`; `fallback` for a value without a row (a table missing a row is a
// bug that the enum's round-trip test catches).
template <typename E, std::size_t N>
constexpr std::string_view enum_name(const EnumName<E> (&table)[N], E v,
                                     std::string_view fallback = "?") {
    for (const auto& row : table)
        if (row.value == v) return row.name;
    return fallback;
}

// The value named `name` in `table` (exact, case-sensitive); none for an unknown name.
template <typename E, std::size_t N>
constexpr std::optional<E> enum_from_name(const EnumName<E> (&table)[N], std::string_view name) {
    for (const auto& row : table)
        if (row.name == name) return row.value;
    return std::nullopt;
}

// True when row i names enumerator i (0, 1, 2, ... without gaps or repeats): every table is
// static_assert'ed with it, and with its size against the last enumerator, so that a table cannot
// silently miss a value (what -Wswitch does for a switch).
template <typename E, std::size_t N>
constexpr bool enum_rows_in_order(const EnumName<E> (&table)[N]) {
    for (std::size_t i = 0; i < N; ++i)
        if (static_cast<std::size_t>(table[i].value) != i) return false;
    return true;
}

}  // namespace fragtune
