// Helpers shared by the configuration tests.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "fragtune/configuration/config_file.hpp"

namespace fragtune::test {

// Every diagnostic in its describe() form, for exact comparisons.
inline std::vector<std::string> describe_all(const ConfigReport& r) {
    std::vector<std::string> out;
    for (const auto& d : r.diagnostics) out.push_back(d.describe());
    return out;
}

// Every field's value as text, through the registry: two configs with equal fingerprints are equal
// in every field the registry covers, which config_keys_test.cpp's member-count test proves is
// every field.
inline std::map<std::string, std::string> fingerprint(const Config& c) {
    std::map<std::string, std::string> out;
    for (const auto& k : config_keys())
        out[k.full_name()] = get_field_text(k, c).value_or("<unset>");
    return out;
}

}  // namespace fragtune::test
