// valid_utf8: valid text unchanged, every invalid byte one U+FFFD, the result always valid.
#include "fragtune/util/utf8.hpp"

#include <string>

#include <gtest/gtest.h>

using fragtune::valid_utf8;

TEST(Utf8, ValidTextIsUnchangedAndEachInvalidByteIsOneReplacement) {
    const std::string r = "\xEF\xBF\xBD";
    EXPECT_EQ(valid_utf8(""), "");
    EXPECT_EQ(valid_utf8("swapper/0"), "swapper/0");
    EXPECT_EQ(valid_utf8("t\xc3\xaf"
                         "ck \xe2\x82\xac \xf0\x9f\x98\x80"),
              "t\xc3\xaf"
              "ck \xe2\x82\xac \xf0\x9f\x98\x80");
    EXPECT_EQ(valid_utf8("w\xff\xfe"), "w" + r + r);
    EXPECT_EQ(valid_utf8("\xc3"), r);                          // truncated sequence
    EXPECT_EQ(valid_utf8("\xc0\xaf"), r + r);                  // overlong '/'
    EXPECT_EQ(valid_utf8("\xed\xa0\x80"), r + r + r);          // surrogate U+D800
    EXPECT_EQ(valid_utf8("\xf4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
    EXPECT_EQ(valid_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));
    // Idempotent: what it returns is valid.
    const std::string once = valid_utf8("99-loc\xe9l.conf\x80");
    EXPECT_EQ(valid_utf8(once), once);
    EXPECT_EQ(once, "99-loc" + r + "l.conf" + r);
}

TEST(Utf8, CodePointsDecodeWithTheSameRules) {
    using fragtune::utf8_code_points;
    EXPECT_EQ(utf8_code_points(""), U"");
    EXPECT_EQ(utf8_code_points("tick"), U"tick");
    EXPECT_EQ(utf8_code_points("t\xc3\xaf"
                               "ck"),
              U"t\u00efck");  // one code point, so "tïck" is one edit from "tick"
    EXPECT_EQ(utf8_code_points("\xe2\x82\xac\xf0\x9f\x98\x80"), U"\u20ac\U0001F600");
    EXPECT_EQ(utf8_code_points("w\xff"), U"w\uFFFD");
    EXPECT_EQ(utf8_code_points("\xc0\xaf"), U"\uFFFD\uFFFD");            // overlong '/'
    EXPECT_EQ(utf8_code_points("\xed\xa0\x80"), U"\uFFFD\uFFFD\uFFFD");  // surrogate
    EXPECT_EQ(utf8_code_points("a\xc3"), U"a\uFFFD");                    // truncated
}
