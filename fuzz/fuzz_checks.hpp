// What every fuzz target checks, as plain functions so that the same checks run in two places:
// the libFuzzer targets (fuzz/fuzz_target.cpp, built with clang and the sanitizers) and the unit
// test that replays tests/fixtures/fuzz-regressions/ and the seed corpora with the normal build
// (tests/unit/fuzz_regressions_test.cpp).
//
// A check feeds the input to one parser and returns "" when the parser behaved, or a description of
// the broken property. Beyond "does not crash, leak or hit undefined behaviour" (the sanitizers'
// part), each check asserts the parser's documented contract on what it accepted: counts agree,
// values are in range, and what can be rendered again parses back to the same value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fragtune::fuzz {

using CheckFn = std::string (*)(std::string_view input);

struct FuzzTarget {
    std::string_view name;  // "buddyinfo": fuzz_<name> binary, fuzz-regressions/<name>/ directory
    CheckFn check;
};

// Every target, in a fixed order.
const std::vector<FuzzTarget>& fuzz_targets();

// The target called `name`, or nullptr.
const FuzzTarget* find_fuzz_target(std::string_view name);

}  // namespace fragtune::fuzz
