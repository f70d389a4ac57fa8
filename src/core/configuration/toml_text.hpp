// Text helpers shared by the configuration's loader (messages) and renderer (--dump-config): TOML
// quoting and the human forms of sizes and durations. Internal to src/core/configuration.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "fragtune/configuration/config_file.hpp"

namespace fragtune::config_detail {

// min_free_kbytes as a share of lowmem: safety.max_min_free_lowmem_percent can be at most 50, so a
// bound above that could never be honoured.
inline constexpr double kMaxLowmemPercent = 50.0;

// TOML basic-string escaping; non-ASCII UTF-8 passes through.
std::string toml_escape(std::string_view s);
// `s` as a TOML basic string, quotes included.
std::string quote(std::string_view s);
// A key as it is shown in a diagnostic's key part: bare when it is a TOML bare key, else quoted.
std::string key_text(std::string_view k);
// A double as a TOML float ("2.0", not "2").
std::string format_number(double v);
// Largest binary unit that divides exactly: "64M", "1G", "4097K".
std::string format_size_kib(uint64_t kib);
// format_duration_usec(), with "0s" for 0.
std::string format_duration(uint64_t usec);
// A value of the row's kind and unit, for range messages.
std::string format_in_unit(const ConfigKey& k, double v);

}  // namespace fragtune::config_detail
