// Making text valid UTF-8 where it leaves the process in a format that demands it: the state file
// (toml++ refuses invalid UTF-8 on parse) and every string sent on D-Bus (sd-bus refuses to append
// one, which fails the whole message). Kernel-log task names and file names are bytes, not text.
#pragma once

#include <string>
#include <string_view>

namespace fragtune {

// Pure. Valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF) is copied
// unchanged; each byte that does not start a valid sequence becomes U+FFFD (EF BF BD), so the
// result is always valid and "\xff" and "\xfe" are both shown as the replacement character. An
// embedded NUL is valid UTF-8 and kept (sd-bus takes C strings: on D-Bus the text ends there).
std::string valid_utf8(std::string_view s);

// Pure. The code points of `s`, decoded with the same rules; each invalid byte is one U+FFFD.
// (For comparing text by characters, e.g. the configuration's spelling suggestions.)
std::u32string utf8_code_points(std::string_view s);

}  // namespace fragtune
