// Reading files of tests/fixtures for the table tests (FRAGTUNE_FIXTURES_DIR is set by CMake).
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace fragtune::test {

// The whole fixture file `rel` (relative to tests/fixtures); a missing file fails the test.
inline std::string fixture(const std::string& rel) {
    std::ifstream in(std::string(FRAGTUNE_FIXTURES_DIR) + "/" + rel, std::ios::binary);
    EXPECT_TRUE(in.good()) << "missing fixture " << rel;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace fragtune::test
