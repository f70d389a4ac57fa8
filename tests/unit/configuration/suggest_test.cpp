// The spelling suggester alone (its messages in context are in config_load_test.cpp).
#include "fragtune/configuration/suggest.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace fragtune {
namespace {

const std::vector<std::string> kDaemonKeys = {"tick", "tick_min", "tick_max", "mode", "log_level"};

TEST(Suggest, SameNameInAnotherCase) {
    EXPECT_EQ(suggest("TICK", kDaemonKeys), "tick");
    EXPECT_EQ(suggest("Log_Level", kDaemonKeys), "log_level");
}

TEST(Suggest, NameWithAUnitSuffix) {
    EXPECT_EQ(suggest("tick_usec", kDaemonKeys), "tick");
    // The longest name that is a prefix, wherever it stands among the candidates.
    EXPECT_EQ(suggest("tick_max_usec", kDaemonKeys), "tick_max");
    EXPECT_EQ(suggest("tick_min_usec", {"tick_min", "tick"}), "tick_min");
    // "tick_" alone is one edit from "tick", not a unit suffix.
    EXPECT_EQ(suggest("tick_", kDaemonKeys), "tick");
}

TEST(Suggest, NearestWithinAThirdOfTheLength) {
    EXPECT_EQ(suggest("tik", kDaemonKeys), "tick");   // one deletion
    EXPECT_EQ(suggest("mdoe", kDaemonKeys), "mode");  // one transposition
    EXPECT_EQ(suggest("log_levle", kDaemonKeys), "log_level");
    EXPECT_EQ(suggest("lg_lvel", kDaemonKeys), "log_level");  // 2 edits, 9 / 3 = 3 allowed
    EXPECT_EQ(suggest("xyz", kDaemonKeys), std::nullopt);
    EXPECT_EQ(suggest("", kDaemonKeys), std::nullopt);
    EXPECT_EQ(suggest("tick", {}), std::nullopt);
}

TEST(Suggest, CountsCodePointsNotBytes) {
    // "ï" is two bytes but one edit.
    EXPECT_EQ(suggest("t\xc3\xaf"
                      "ck",
                      kDaemonKeys),
              "tick");
    EXPECT_EQ(suggest("m\xc3\xb6"
                      "de",
                      kDaemonKeys),
              "mode");
    // Two non-ASCII letters are two edits, too many for a four-letter name.
    EXPECT_EQ(suggest("m\xc3\xb6"
                      "d\xc3\xa9",
                      kDaemonKeys),
              std::nullopt);
}

TEST(Suggest, TheFirstOfEqualDistancesWins) {
    EXPECT_EQ(suggest("abd", {"abc", "abe"}), "abc");
    EXPECT_EQ(suggest("abd", {"abe", "abc"}), "abe");
}

}  // namespace
}  // namespace fragtune
