#include "fragtune/knobs/tunables.hpp"

#include <set>

#include <gtest/gtest.h>

using namespace fragtune;

TEST(Tunables, TableIsIndexedByKnobAndNamesAreUnique) {
    std::set<std::string_view> names;
    for (size_t i = 0; i < kTunables.size(); ++i) {
        EXPECT_EQ(index(kTunables[i].knob), i);
        EXPECT_TRUE(names.insert(kTunables[i].name).second);
        EXPECT_EQ(kTunables[i].sysctl, "vm." + std::string(kTunables[i].name));
        EXPECT_EQ(kTunables[i].proc_path, "/proc/sys/vm/" + std::string(kTunables[i].name));
        EXPECT_LE(kTunables[i].kernel_min, kTunables[i].default_min);
        EXPECT_LE(kTunables[i].default_min, kTunables[i].default_max);
        EXPECT_LE(kTunables[i].default_max, kTunables[i].kernel_max);
    }
}

TEST(Tunables, KnobFromNameAcceptsOnlyTableNames) {
    EXPECT_EQ(knob_from_name("min_free_kbytes"), Knob::min_free_kbytes);
    EXPECT_EQ(knob_from_name("vm.swappiness"), Knob::swappiness);
    EXPECT_FALSE(knob_from_name("drop_caches").has_value());
    EXPECT_FALSE(knob_from_name("../../kernel/panic").has_value());
    EXPECT_FALSE(knob_from_name("").has_value());
    EXPECT_FALSE(knob_from_name("vm.swappiness ").has_value());
}

TEST(Tunables, ParsesKernelVersions) {
    auto v = parse_kernel_version("6.18.44-fc-v669");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->major, 6);
    EXPECT_EQ(v->minor, 18);
    EXPECT_EQ(parse_kernel_version("4.19.0-26-amd64\n")->minor, 19);
    EXPECT_FALSE(parse_kernel_version("").has_value());
    EXPECT_FALSE(parse_kernel_version("linux").has_value());
    EXPECT_FALSE(parse_kernel_version("6").has_value());
}

TEST(Tunables, KernelRangesFollowVersions) {
    EXPECT_EQ(kernel_range(Knob::swappiness, KernelVersion{5, 4}).max, 100);
    EXPECT_EQ(kernel_range(Knob::swappiness, KernelVersion{5, 8}).max, 200);
    EXPECT_EQ(kernel_range(Knob::swappiness, std::nullopt).max, 100);
    EXPECT_EQ(kernel_range(Knob::watermark_scale_factor, KernelVersion{5, 10}).max, 1000);
    EXPECT_EQ(kernel_range(Knob::watermark_scale_factor, KernelVersion{6, 1}).max, 3000);
    EXPECT_EQ(kernel_range(Knob::watermark_scale_factor, KernelVersion{6, 1}).min, 1);
    EXPECT_EQ(kernel_range(Knob::compaction_proactiveness, KernelVersion{6, 1}).max, 100);
}

TEST(Registry, EveryModuleHasItsProposeAndConfigKeyHooks) {
    for (const auto& m : fragtune::kKnobModules) {
        EXPECT_TRUE(m.propose != nullptr) << m.spec.name;
        EXPECT_TRUE(m.add_policy_keys != nullptr) << m.spec.name;
    }
}
