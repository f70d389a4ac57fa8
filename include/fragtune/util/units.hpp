// Pure parsers for the human-written quantities of the command line and the configuration file:
// durations ("500ms", "2min", "1h30min") and sizes ("256M", "1G", "4096K"). Text in, value or Error
// out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "fragtune/util/result.hpp"

namespace fragtune {

// A duration in microseconds. One or more "<number><unit>" parts, optionally separated by blanks,
// are added up ("1min 30s", "1h30min"). Units: us/usec, ms/msec, s/sec, m/min, h/hr, d. A number
// may have a decimal fraction ("1.5s") as long as the result is a whole number of microseconds. A
// lone number without a unit is seconds (systemd's convention, so "tick = 2" reads as two seconds).
// Errors: empty text, a negative or non-numeric value, an unknown unit, a fraction finer than 1 us,
// a total above 2^64-1 us.
Result<uint64_t> parse_duration_usec(std::string_view text);

// A size in KiB. "<number>[unit]" with unit K, M, G or T (case-insensitive, optionally followed by
// "iB" or "B": "256MiB", "1gb"), all binary: K = 1 KiB, M = 1024 KiB, G = 1024^2 KiB, T = 1024^3
// KiB. A lone number is KiB (the unit of vm.min_free_kbytes). A decimal fraction ("1.5G") is
// allowed when the result is a whole number of KiB. Errors: empty text, a sign, non-numeric text,
// an unknown unit, overflow.
Result<uint64_t> parse_size_kib(std::string_view text);

// "2s", "500ms", "1min", "1h" or "1500us": the largest unit that divides the value exactly; "0" for
// 0. Round-trips through parse_duration_usec.
std::string format_duration_usec(uint64_t usec);

}  // namespace fragtune
