#include "fragtune/configuration/suggest.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "fragtune/util/utf8.hpp"

namespace fragtune {

namespace {

// Optimal string alignment distance (Levenshtein plus adjacent transpositions), on code points.
std::size_t edit_distance(std::u32string_view a, std::u32string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

}  // namespace

std::optional<std::string> suggest(std::string_view typed,
                                   const std::vector<std::string>& candidates) {
    const std::string lt = lower_ascii(typed);
    for (const auto& c : candidates)
        if (lt == c) return c;
    // The longest such prefix: "tick_min_usec" means tick_min, not tick.
    const std::string* with_suffix = nullptr;
    for (const auto& c : candidates)
        if (lt.size() > c.size() + 1 && lt.compare(0, c.size(), c) == 0 && lt[c.size()] == '_' &&
            (with_suffix == nullptr || c.size() > with_suffix->size()))
            with_suffix = &c;
    if (with_suffix) return *with_suffix;
    std::optional<std::string> best;
    std::size_t best_d = 0;
    for (const auto& c : candidates) {
        std::size_t d = edit_distance(utf8_code_points(lt), utf8_code_points(c));
        std::size_t limit = std::max<std::size_t>(1, std::min<std::size_t>(3, c.size() / 3));
        if (d <= limit && (!best || d < best_d)) best = c, best_d = d;
    }
    return best;
}

}  // namespace fragtune
