// The renderings of a Sample: pure functions, no I/O.
#pragma once

#include <string>

#include "fragtune/sensing/sample.hpp"

namespace fragtune {

// Human-readable rendering for `fragtuned --sample` (per zone free by order, indices, headroom, rates,
// PSI, failures), several lines each ending in '\n'.
std::string format_sample_text(const Sample& s);
// The documented JSON shape (doc/sample-json.md, man/fragtuned.8 "SAMPLE JSON") on one line, no
// trailing newline; invalid UTF-8 in strings becomes U+FFFD.
std::string format_sample_json(const Sample& s);

}  // namespace fragtune
