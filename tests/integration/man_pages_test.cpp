// Every manual page in man/ is lint-clean for mandoc at warning level, and fragtuned(8) documents
// every long option `fragtuned --help` prints.
#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ship_util.hpp"

namespace fs = std::filesystem;
using namespace fragtune::test;

namespace {

const fs::path kManDir = fs::path(FRAGTUNE_SOURCE_DIR) / "man";

std::vector<fs::path> man_pages() {
    std::vector<fs::path> out;
    static const std::regex section("\\.[1-8]$");
    for (const auto& e : fs::directory_iterator(kManDir))
        if (std::regex_search(e.path().filename().string(), section)) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

TEST(ManPages, MandocLintIsCleanAtWarningLevel) {
    if (!have_program("mandoc")) GTEST_SKIP() << "mandoc is not installed";
    const auto pages = man_pages();
    ASSERT_FALSE(pages.empty());
    for (const auto& p : pages) {
        auto r = run_command("mandoc -Tlint -W warning " + shell_quote(p.string()));
        EXPECT_EQ(r.exit_code, 0) << p.filename() << ":\n" << r.output;
        EXPECT_EQ(r.output, "") << p.filename();
    }
}

// roff source to the text a reader searches: "\-\-tick" -> "--tick", font escapes dropped.
std::string plain_roff(std::string text) {
    text = std::regex_replace(text, std::regex("\\\\-"), "-");
    text = std::regex_replace(text, std::regex("\\\\f[BIRP]"), "");
    return text;
}

TEST(ManPages, FragtunedDocumentsEveryOptionOfHelp) {
    auto help = run_command(shell_quote(FRAGTUNED_BIN) + " --help");
    ASSERT_EQ(help.exit_code, 0) << help.output;
    std::set<std::string> options;
    static const std::regex long_option("--[a-z][a-z0-9-]*");
    for (std::sregex_iterator it(help.output.begin(), help.output.end(), long_option), end;
         it != end; ++it)
        options.insert(it->str());
    // The daemon has far more than a handful; fewer means the help output was not parsed.
    ASSERT_GE(options.size(), 10u) << help.output;

    const std::string page = plain_roff(read_text(kManDir / "fragtuned.8"));
    for (const auto& o : options) {
        // As an option entry (".B --x" / ".BI --x"), not only mentioned in passing.
        const std::regex entry("\\n\\.(B|BI|BR|IP|TP)[^\\n]*" + o + "\\b");
        EXPECT_TRUE(std::regex_search(page, entry))
            << o << " is in --help but not documented in fragtuned.8";
    }
}

}  // namespace
