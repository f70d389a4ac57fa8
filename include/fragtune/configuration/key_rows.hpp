// Building blocks of the configuration key registry, shared by config_keys.cpp (the generic rows)
// and the knob modules (each module's policy rows, knobs/<name>.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "fragtune/configuration/config_file.hpp"

namespace fragtune::key_rows {

// ---- field accessors ----------------------------------------------------------------------------
// Each instantiation is a captureless function `T& (Config&)`, so a registry row names its field in
// one expression: &field<&Config::daemon, &DaemonConfig::tick_usec>.
template <auto Outer, auto Inner>
auto& field(Config& c) {
    return (c.*Outer).*Inner;
}
template <std::size_t I, auto Member>
auto& knob_field(Config& c) {
    return c.knobs[I].*Member;
}

// Units of the stored values, for ranges.
inline constexpr double kUsecPerMs = 1e3;
inline constexpr double kUsecPerSec = 1e6;
inline constexpr double kUsecPerMin = 60e6;
inline constexpr double kUsecPerHour = 3600e6;
inline constexpr double kUsecPerDay = 86400e6;
inline constexpr double kKibPerGib = 1024.0 * 1024.0;
inline constexpr double kKibPerTib = 1024.0 * 1024.0 * 1024.0;
inline constexpr int kMaxPageOrder = 15;  // the brief's bound; NR_PAGE_ORDERS is at most 16

// A policy key of [tunables.NAME]: documented under its own section in fragtune.toml(5).
inline void add_policy_row(std::vector<ConfigKey>& rows, const std::string& section, ConfigKey k) {
    k.section = section;
    k.doc_section = section;
    rows.push_back(std::move(k));
}

}  // namespace fragtune::key_rows
