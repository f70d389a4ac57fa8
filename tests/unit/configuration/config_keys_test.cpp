#include "fragtune/configuration/config_file.hpp"

#include <cstddef>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "config_test_util.hpp"

using namespace fragtune;
using fragtune::test::describe_all;
using fragtune::test::fingerprint;

namespace {

// ---- the registry covers every field ------------------------------------------------------------

// Number of members of an aggregate, by trying ever longer brace initializers (the Boost.PFR
// trick).
struct AnyField {
    template <typename T>
    operator T() const;  // NOLINT: declared only, used in unevaluated context
};
template <typename T, typename... A>
constexpr std::size_t member_count() {
    if constexpr (requires { T{A{}..., AnyField{}}; })
        return member_count<T, A..., AnyField>();
    else
        return sizeof...(A);
}

// Distinct fields the registry rows reach inside the object [base, base + size).
std::size_t fields_reached(Config& c, const void* base, std::size_t size) {
    std::set<const void*> seen;
    auto inside = [&](const void* p) {
        auto b = static_cast<const char*>(base);
        auto q = static_cast<const char*>(p);
        return q >= b && q < b + size;
    };
    for (const auto& k : config_keys()) {
        const void* p = std::visit([&](auto* ref) -> const void* { return &ref(c); }, k.field);
        if (inside(p)) seen.insert(p);
        if (k.percent_field && inside(&k.percent_field(c))) seen.insert(&k.percent_field(c));
    }
    return seen.size();
}

TEST(ConfigRegistry, EveryConfigFieldHasARow) {
    Config c;
    EXPECT_EQ(fields_reached(c, &c.daemon, sizeof c.daemon), member_count<DaemonConfig>());
    EXPECT_EQ(fields_reached(c, &c.signals, sizeof c.signals), member_count<SignalsConfig>());
    // The three *_lowmem_percent fields are reached only through min_free_kbytes' size rows.
    for (std::size_t i = 0; i < kKnobCount; ++i)
        EXPECT_EQ(fields_reached(c, &c.knobs[i], sizeof c.knobs[i]),
                  member_count<KnobConfig>() - (i == index(Knob::min_free_kbytes) ? 0 : 3))
            << kTunables[i].name;
    EXPECT_EQ(fields_reached(c, &c.min_free, sizeof c.min_free), member_count<MinFreePolicy>());
    EXPECT_EQ(fields_reached(c, &c.watermark, sizeof c.watermark), member_count<WatermarkPolicy>());
    EXPECT_EQ(fields_reached(c, &c.compaction, sizeof c.compaction),
              member_count<CompactionPolicy>());
    EXPECT_EQ(fields_reached(c, &c.vfs_cache, sizeof c.vfs_cache), member_count<VfsCachePolicy>());
    EXPECT_EQ(fields_reached(c, &c.swappiness, sizeof c.swappiness),
              member_count<SwappinessPolicy>());
    EXPECT_EQ(fields_reached(c, &c.watermark_boost, sizeof c.watermark_boost),
              member_count<WatermarkBoostPolicy>());
    EXPECT_EQ(fields_reached(c, &c.safety, sizeof c.safety), member_count<SafetyConfig>());
    EXPECT_EQ(fields_reached(c, &c.metrics, sizeof c.metrics), member_count<MetricsConfig>());
    // Config itself: the eleven members above and nothing else.
    EXPECT_EQ(member_count<Config>(), 11u);
}

TEST(ConfigRegistry, NamesAreUniqueAndFindable) {
    std::set<std::string> names;
    for (const auto& k : config_keys()) {
        EXPECT_TRUE(names.insert(k.full_name()).second) << k.full_name();
        EXPECT_EQ(find_config_key(k.full_name()), &k);
        EXPECT_FALSE(k.doc.empty()) << k.full_name();
    }
    EXPECT_EQ(find_config_key("daemon.tick_usec"), nullptr);
}

TEST(ConfigRegistry, BuiltInDefaultsAreValidAndRenderThemselves) {
    auto r = check_config_text("", "empty.toml");
    EXPECT_TRUE(describe_all(r).empty());
    EXPECT_EQ(fingerprint(r.loaded.config), fingerprint(Config{}));
    // Every default is inside its documented range: render each one alone and load it back.
    for (const auto& k : config_keys()) {
        auto text = get_field_text(k, Config{});
        if (!text) continue;
        auto one =
            check_config_text("[" + k.section + "]\n" + k.key + " = " + *text + "\n", "one.toml");
        EXPECT_TRUE(describe_all(one).empty()) << k.full_name() << " = " << *text;
        EXPECT_EQ(one.loaded.origin(k.full_name()).describe(), "one.toml:2");
    }
}

// ---- the shipped file and the man page follow the registry --------------------------------------

std::string read_source_file(const std::string& rel) {
    std::ifstream in(std::string(FRAGTUNE_SOURCE_DIR) + "/" + rel);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(ConfigShipped, LoadsToExactlyTheBuiltInDefaults) {
    const std::string text = read_source_file("config/fragtune.toml");
    ASSERT_FALSE(text.empty());
    auto r = check_config_text(text, "config/fragtune.toml");
    EXPECT_TRUE(r.diagnostics.empty()) << testing::PrintToString(describe_all(r));
    EXPECT_EQ(fingerprint(r.loaded.config), fingerprint(Config{}));
}

TEST(ConfigShipped, EveryKeyAppearsInItsSection) {
    // Keys may be commented out ("# baseline = ..." for values with no static default) but must be
    // there, under their own [section] header.
    std::istringstream in(read_source_file("config/fragtune.toml"));
    std::set<std::string> seen;
    std::string line, section;
    while (std::getline(in, line)) {
        if (line.rfind("[", 0) == 0) {
            section = line.substr(1, line.find(']') - 1);
            continue;
        }
        std::string s = line;
        if (s.rfind("# ", 0) == 0) s = s.substr(2);
        auto eq = s.find(" = ");
        if (eq == std::string::npos || s.empty() || s[0] == ' ') continue;
        seen.insert(section + "." + s.substr(0, eq));
    }
    for (const auto& k : config_keys()) EXPECT_TRUE(seen.count(k.full_name())) << k.full_name();
}

TEST(ConfigManPage, DocumentsEveryKeyInItsSection) {
    const std::string man = read_source_file("man/fragtune.toml.5");
    ASSERT_FALSE(man.empty());
    // Sections are ".SS [name]" subsections; keys are ".TP" items whose tag line is ".B key".
    std::map<std::string, std::string> chunks;
    std::size_t pos = 0;
    while ((pos = man.find("\n.SS [", pos)) != std::string::npos) {
        std::size_t name_end = man.find(']', pos);
        std::size_t next = man.find("\n.S", pos + 1);
        chunks[man.substr(pos + 6, name_end - pos - 6)] = man.substr(pos, next - pos);
        pos = name_end;
    }
    for (const auto& k : config_keys()) {
        auto it = chunks.find(k.doc_section);
        ASSERT_NE(it, chunks.end()) << "no .SS [" << k.doc_section << "] in the man page";
        EXPECT_NE(it->second.find("\n.B " + k.key + "\n"), std::string::npos)
            << k.full_name() << " is not documented under [" << k.doc_section << "]";
    }
}

}  // namespace