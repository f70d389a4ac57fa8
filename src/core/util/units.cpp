#include "fragtune/util/units.hpp"

#include <array>
#include <cctype>
#include <limits>

#include <fmt/format.h>

namespace fragtune {

namespace {

__extension__ typedef unsigned __int128 u128;  // exact products of a number and its unit
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_blank(char c) {
    return c == ' ' || c == '\t';
}
char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

// "12.345" as 12345 / 10^3. The mantissa fits 64 bits, so the product with a unit stays within 128.
struct Decimal {
    uint64_t mantissa = 0;
    uint64_t scale = 1;  // 10^(digits after the point)
};

// Consumes a decimal number at the front of `s`; nullopt-like failure signalled by `ok == false`.
bool take_decimal(std::string_view& s, Decimal& out) {
    size_t i = 0, digits = 0;
    bool seen_point = false;
    Decimal d;
    for (; i < s.size(); ++i) {
        char c = s[i];
        if (c == '.' && !seen_point) {
            seen_point = true;
            continue;
        }
        if (!is_digit(c)) break;
        if (d.mantissa == 0 && c == '0' && !seen_point) {
            ++digits;  // leading zeros cost nothing
            continue;
        }
        // Up to the 20 digits of 2^64-1, as format_duration_usec may print them; anything that
        // does not fit 64 bits is refused rather than wrapped.
        const auto digit = static_cast<uint64_t>(c - '0');
        if (++digits > 20 || d.mantissa > (kU64Max - digit) / 10) return false;
        d.mantissa = d.mantissa * 10 + digit;
        if (seen_point) {
            if (d.scale > kU64Max / 10) return false;
            d.scale *= 10;
        }
    }
    // A number needs at least one digit; "." or "1." alone are not numbers.
    if (digits == 0 || (i > 0 && s[i - 1] == '.')) return false;
    s.remove_prefix(i);
    out = d;
    return true;
}

// mantissa * unit / scale when exact and within u64.
bool scale_exact(const Decimal& d, uint64_t unit, uint64_t& out) {
    u128 product = static_cast<u128>(d.mantissa) * unit;
    if (product % d.scale != 0) return false;
    u128 v = product / d.scale;
    if (v > kU64Max) return false;
    out = static_cast<uint64_t>(v);
    return true;
}

struct Unit {
    std::string_view name;
    uint64_t factor;
};

constexpr std::array<Unit, 12> kDurationUnits{{
    {"us", 1},
    {"usec", 1},
    {"ms", 1'000},
    {"msec", 1'000},
    {"s", 1'000'000},
    {"sec", 1'000'000},
    {"m", 60'000'000},
    {"min", 60'000'000},
    {"h", 3'600'000'000},
    {"hr", 3'600'000'000},
    {"d", 86'400'000'000},
    {"", 1'000'000},  // a lone number is seconds
}};

}  // namespace

Result<uint64_t> parse_duration_usec(std::string_view text) {
    const std::string shown(text);
    auto fail = [&](std::string_view why) {
        return make_error(fmt::format("invalid duration '{}': {}", shown, why));
    };
    std::string_view s = text;
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && (is_blank(s.back()) || s.back() == '\n')) s.remove_suffix(1);
    if (s.empty()) return fail("empty (expected e.g. 500ms, 2s, 1min)");

    uint64_t total = 0;
    bool bare_number = false;  // a part without a unit must be the only part
    int parts = 0;
    while (!s.empty()) {
        if (s.front() == '-' || s.front() == '+') return fail("a sign is not allowed");
        Decimal d;
        if (!take_decimal(s, d)) return fail("expected a number");
        while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
        size_t n = 0;
        while (n < s.size() && std::isalpha(static_cast<unsigned char>(s[n]))) ++n;
        std::string_view unit_name = s.substr(0, n);
        s.remove_prefix(n);
        while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
        const Unit* unit = nullptr;
        for (const auto& u : kDurationUnits)
            if (iequals(u.name, unit_name)) unit = &u;
        if (!unit)
            return fail(fmt::format("unknown unit '{}' (use us, ms, s, min, h or d)", unit_name));
        if (unit_name.empty()) bare_number = true;
        ++parts;
        if (bare_number && (parts > 1 || !s.empty()))
            return fail("a number without a unit must stand alone");
        uint64_t part = 0;
        if (!scale_exact(d, unit->factor, part))
            return fail(d.scale > 1 ? "not a whole number of microseconds, or too large"
                                    : "too large");
        if (part > kU64Max - total) return fail("too large");
        total += part;
    }
    return total;
}

Result<uint64_t> parse_size_kib(std::string_view text) {
    const std::string shown(text);
    auto fail = [&](std::string_view why) {
        return make_error(fmt::format("invalid size '{}': {}", shown, why));
    };
    std::string_view s = text;
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && (is_blank(s.back()) || s.back() == '\n')) s.remove_suffix(1);
    if (s.empty()) return fail("empty (expected e.g. 65536, 256M, 1G)");
    if (s.front() == '-' || s.front() == '+') return fail("a sign is not allowed");
    Decimal d;
    if (!take_decimal(s, d)) return fail("expected a number");
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);

    uint64_t factor = 1;
    if (!s.empty()) {
        switch (lower(s.front())) {
            case 'k':
                factor = 1;
                break;
            case 'm':
                factor = 1024;
                break;
            case 'g':
                factor = 1024ull * 1024;
                break;
            case 't':
                factor = 1024ull * 1024 * 1024;
                break;
            default:
                return fail(fmt::format("unknown unit '{}' (use K, M, G or T)", s));
        }
        std::string_view rest = s.substr(1);
        if (!rest.empty() && !iequals(rest, "ib") && !iequals(rest, "b"))
            return fail(fmt::format("unknown unit '{}' (use K, M, G or T)", s));
    }
    uint64_t kib = 0;
    if (!scale_exact(d, factor, kib))
        return fail(d.scale > 1 ? "not a whole number of KiB, or too large" : "too large");
    return kib;
}

std::string format_duration_usec(uint64_t usec) {
    if (usec == 0) return "0";
    struct {
        uint64_t factor;
        std::string_view name;
    } const units[] = {{86'400'000'000, "d"}, {3'600'000'000, "h"}, {60'000'000, "min"},
                       {1'000'000, "s"},      {1'000, "ms"},        {1, "us"}};
    for (const auto& u : units)
        if (usec % u.factor == 0) return fmt::format("{}{}", usec / u.factor, u.name);
    return fmt::format("{}us", usec);  // unreachable: factor 1 always divides
}

}  // namespace fragtune
