#include "fragtune/util/text.hpp"

#include <algorithm>

namespace fragtune {

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> out;
    out.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
    size_t start = 0;
    while (start < text.size()) {
        const size_t nl = text.find('\n', start);
        if (nl == std::string_view::npos) {
            out.push_back(text.substr(start));
            break;
        }
        out.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

std::vector<std::string_view> split_blank(std::string_view s) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_blank(s[i])) ++i;
        if (i >= s.size()) break;
        size_t j = i;
        while (j < s.size() && !is_blank(s[j])) ++j;
        out.push_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

std::string dir_of(std::string_view path) {
    const auto pos = path.rfind('/');
    return pos == 0 || pos == std::string_view::npos ? std::string("/")
                                                     : std::string(path.substr(0, pos));
}

}  // namespace fragtune
