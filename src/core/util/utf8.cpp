#include "fragtune/util/utf8.hpp"

#include <cstdint>

namespace fragtune {

namespace {

// The one UTF-8 decoder (RFC 3629). The code point at s[i] and its length in bytes; length 0 when
// s[i] does not start a valid sequence (a stray continuation byte, a lead byte never used, a
// truncated sequence, an overlong form, a surrogate, or a code point above U+10FFFF).
struct Decoded {
    char32_t cp = 0;
    size_t len = 0;
};

Decoded decode_at(std::string_view s, size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) return {c, 1};
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07u;
    } else {
        return {};
    }
    if (i + len > s.size()) return {};
    for (size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0u) != 0x80u) return {};
        cp = (cp << 6) | (cc & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return {};
    return {static_cast<char32_t>(cp), len};
}

}  // namespace

std::string valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const Decoded d = decode_at(s, i);
        if (d.len == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(s.substr(i, d.len));
            i += d.len;
        }
    }
    return out;
}

std::u32string utf8_code_points(std::string_view s) {
    std::u32string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const Decoded d = decode_at(s, i);
        out += d.len == 0 ? U'\uFFFD' : d.cp;
        i += d.len == 0 ? 1 : d.len;
    }
    return out;
}

}  // namespace fragtune
