#include "fragtune/configuration/config_file.hpp"

#include <string>

#include <gtest/gtest.h>

#include "config_test_util.hpp"

using namespace fragtune;
using fragtune::test::describe_all;
using fragtune::test::fingerprint;

namespace {

// ---- rendering ----------------------------------------------------------------------------------

TEST(ConfigRender, DefaultsRenderWithDefaultComments) {
    LoadedConfig l;
    std::string out = render_effective_config(l);
    EXPECT_NE(out.find("\n[daemon]\ntick = \"0s\""), std::string::npos) << out;
    EXPECT_NE(out.find("\ntick_min = \"250ms\""), std::string::npos);
    EXPECT_NE(out.find("\npsi_trigger_window = \"1s\""), std::string::npos);
    EXPECT_NE(out.find("# min unset: the baseline"), std::string::npos);
    EXPECT_NE(out.find("# max unset: the default 200"), std::string::npos);
    EXPECT_NE(out.find("margin = \"64M\""), std::string::npos);
    EXPECT_EQ(out.find("# from"), std::string::npos);
    for (const auto& k : config_keys())
        EXPECT_NE(out.find("[" + k.section + "]"), std::string::npos) << k.section;
}

TEST(ConfigRender, OriginsAndRoundTrip) {
    const std::string text = R"([daemon]
tick = "1min 30s"
state_path = "/var/lib/fragtune/st\"ate\\ü.toml"
[signals]
target_orders = [1, 2, 10]
[tunables.min_free_kbytes]
max = "5%"
min = 100001
baseline = "128M"
raise_factor = 2.25
[tunables.swappiness]
enabled = false
[safety]
margin = "1536K"
)";
    auto r = check_config_text(text, "/etc/fragtune/fragtune.toml");
    ASSERT_TRUE(r.ok()) << testing::PrintToString(describe_all(r));
    std::string out = render_effective_config(r.loaded);
    EXPECT_NE(out.find("tick = \"90s\"                                 # from "
                       "/etc/fragtune/fragtune.toml:2"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("max = \"5%\""), std::string::npos) << out;
    EXPECT_NE(out.find("min = \"100001K\""), std::string::npos) << out;
    EXPECT_NE(out.find("margin = \"1536K\""), std::string::npos) << out;
    EXPECT_NE(out.find("mode = \"active\"                              # default"),
              std::string::npos)
        << out;
    auto again = check_config_text(out, "dump.toml");
    ASSERT_TRUE(again.ok()) << testing::PrintToString(describe_all(again));
    EXPECT_EQ(fingerprint(again.loaded.config), fingerprint(r.loaded.config));
    EXPECT_EQ(again.loaded.config.daemon.state_path, "/var/lib/fragtune/st\"ate\\ü.toml");
}

}  // namespace
