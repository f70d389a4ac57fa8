// Checks that every decision names a rule its knob's module lists (KnobModule::rules) or a generic
// one (kGenericRules): the lists doc/policies.md is checked against (knob_docs_test.cpp), so a rule
// id written into a module but not into its list fails the tests that exercise it.
#pragma once

#include <algorithm>
#include <span>
#include <string_view>

#include <gtest/gtest.h>

#include "fragtune/deciding/controller.hpp"
#include "fragtune/knobs/registry.hpp"
#include "fragtune/knobs/tunables.hpp"

namespace fragtune::test {

inline bool rule_is_listed(const Decision& d) {
    auto in = [&](std::span<const std::string_view> list) {
        return std::find(list.begin(), list.end(), d.rule) != list.end();
    };
    return in(module(d.knob).rules) || in(kGenericRules);
}

// Every decision of one decide() step.
inline void expect_listed_rules(const Step& st) {
    for (const auto& d : st.decisions)
        EXPECT_TRUE(rule_is_listed(d)) << "rule \"" << d.rule << "\" of " << spec(d.knob).name
                                       << " is in neither its module's rules nor kGenericRules";
}

}  // namespace fragtune::test
