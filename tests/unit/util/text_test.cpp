// The shared string helpers: trim (every blank of the "C" locale, CRLF), lines, tokens, dir_of.
#include "fragtune/util/text.hpp"

#include <string>

#include <gtest/gtest.h>

using namespace fragtune;

TEST(Text, TrimDropsEveryBlankOnEitherSide) {
    EXPECT_EQ(trim(""), "");
    EXPECT_EQ(trim(" \t\r\n\v\f"), "");
    EXPECT_EQ(trim("  vm.swappiness = 10\r\n"), "vm.swappiness = 10");
    EXPECT_EQ(trim("6.18.44-fc-v669\n"), "6.18.44-fc-v669");
    EXPECT_EQ(trim("a b"), "a b");  // inner blanks stay
    EXPECT_EQ(trim_right(" x \r"), " x");
    EXPECT_EQ(trim_left("\t x "), "x ");
    EXPECT_EQ(trim_right("\n\n"), "");
    EXPECT_EQ(trim_left("   "), "");
    for (char c : kBlank) EXPECT_TRUE(is_blank(c)) << int(c);
    EXPECT_FALSE(is_blank('x'));
    EXPECT_FALSE(is_blank('\0'));
}

TEST(Text, SplitLinesKeepsALastLineWithoutNewline) {
    EXPECT_TRUE(split_lines("").empty());
    EXPECT_EQ(split_lines("a\nb"), (std::vector<std::string_view>{"a", "b"}));
    EXPECT_EQ(split_lines("a\n\nb\n"), (std::vector<std::string_view>{"a", "", "b"}));
    EXPECT_EQ(split_lines("\n"), (std::vector<std::string_view>{""}));
    EXPECT_EQ(split_lines("x\r\n"), (std::vector<std::string_view>{"x\r"}));  // callers trim
}

TEST(Text, SplitBlankSkipsRunsOfBlanks) {
    EXPECT_TRUE(split_blank("").empty());
    EXPECT_TRUE(split_blank(" \t ").empty());
    EXPECT_EQ(split_blank("Node 0, zone   Normal\t 5071  829\n"),
              (std::vector<std::string_view>{"Node", "0,", "zone", "Normal", "5071", "829"}));
}

TEST(Text, DirOfAPath) {
    EXPECT_EQ(dir_of("/var/lib/fragtune/state.toml"), "/var/lib/fragtune");
    EXPECT_EQ(dir_of("/state.toml"), "/");
    EXPECT_EQ(dir_of("state.toml"), "/");
    EXPECT_EQ(dir_of("/etc/sysctl.d/"), "/etc/sysctl.d");
}
