// The docs checked against the one knob table (kKnobModules): every knob and every rule id a
// decision can carry is documented where an operator looks for it.
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "fragtune/knobs/registry.hpp"

using namespace fragtune;

namespace {

std::string read_source_file(const std::string& rel) {
    std::ifstream in(std::string(FRAGTUNE_SOURCE_DIR) + "/" + rel);
    EXPECT_TRUE(in.good()) << "missing " << rel;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The rule ids of doc/policies.md: the first cell of each table row, "| `rule-id` ...".
std::set<std::string, std::less<>> documented_rules(const std::string& policies) {
    std::set<std::string, std::less<>> out;
    std::istringstream in(policies);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("| `", 0) != 0) continue;
        const auto end = line.find('`', 3);
        if (end != std::string::npos) out.insert(line.substr(3, end - 3));
    }
    return out;
}

TEST(KnobDocs, EveryRuleIdIsARowOfPolicies) {
    const auto documented = documented_rules(read_source_file("doc/policies.md"));
    ASSERT_FALSE(documented.empty());
    for (const auto& m : kKnobModules) {
        EXPECT_FALSE(m.rules.empty()) << m.spec.name << " lists no rules";
        for (std::string_view r : m.rules)
            EXPECT_TRUE(documented.contains(r)) << m.spec.name << ": rule " << r;
    }
    for (std::string_view r : kGenericRules) EXPECT_TRUE(documented.contains(r)) << "rule " << r;
}

TEST(KnobDocs, RuleIdsAreUniqueAcrossModules) {
    // A rule id names one policy; only the generic ones are shared. (compaction's compact_memory
    // fallback reuses "fragmentation" inside its own module.)
    std::set<std::string_view> seen(std::begin(kGenericRules), std::end(kGenericRules));
    for (const auto& m : kKnobModules)
        for (std::string_view r : m.rules) EXPECT_TRUE(seen.insert(r).second) << r;
}

TEST(KnobDocs, EveryKnobIsInTheManPageTheSampleJsonDocAndTheShippedConfig) {
    const std::string man = read_source_file("man/fragtuned.8");
    const std::string json = read_source_file("doc/sample-json.md");
    const std::string toml = read_source_file("config/fragtune.toml");
    for (const auto& m : kKnobModules) {
        const std::string name(m.spec.name);
        EXPECT_NE(man.find(name), std::string::npos) << "man/fragtuned.8 lacks " << name;
        EXPECT_NE(json.find("\"" + name + "\""), std::string::npos)
            << "doc/sample-json.md lacks \"" << name << "\"";
        EXPECT_NE(toml.find("\n[tunables." + name + "]\n"), std::string::npos)
            << "config/fragtune.toml lacks [tunables." << name << "]";
    }
}

}  // namespace
