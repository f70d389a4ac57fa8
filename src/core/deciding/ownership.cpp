#include "fragtune/deciding/ownership.hpp"

#include <fmt/format.h>

namespace fragtune::deciding {

std::optional<Decision> check_owner(const Tick& t, const KnobModule& m, int64_t live,
                                    uint64_t managed_now) {
    const Knob k = m.spec.knob;
    auto& ks = t.next.knob(k);
    std::optional<int64_t> expected = ks.last_written ? ks.last_written : ks.original;
    if (!expected || live == *expected) return std::nullopt;
    if (m.adopt_foreign)
        if (auto d = m.adopt_foreign(t, *expected, live, managed_now)) return d;
    ks.status = KnobStatus::pinned;
    ks.status_reason =
        ks.last_written
            ? fmt::format("changed to {} by someone else (we wrote {})", live, *expected)
            : fmt::format("changed to {} by someone else (it was {} at start)", live, *expected);
    ks.last_rule = "admin-override";
    ks.last_reason = ks.status_reason;
    return Decision{k, Action::pin, *expected, live, "admin-override", ks.status_reason, false};
}

}  // namespace fragtune::deciding
