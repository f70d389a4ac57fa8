#include "fragtune/deciding/anticipation_hook.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "fragtune/deciding/anticipation.hpp"
#include "fragtune/deciding/controller.hpp"
#include "fragtune/sensing/kernel_profile.hpp"

namespace fragtune::deciding {

std::optional<Proposal> anticipate(const Tick& t, Knob k, int64_t cur, std::optional<Proposal> p) {
    const auto& a = t.next.anticipation;
    const int64_t baseline = t.next.knob(k).baseline;
    std::optional<Anticipation> ahead;
    if (k == Knob::watermark_scale_factor)
        ahead = anticipate_watermark(t.sample, a, t.config, cur, baseline);
    else if (k == Knob::min_free_kbytes)
        ahead = anticipate_min_free(t.sample, a, t.config, cur, baseline);
    else if (k == Knob::compaction_proactiveness) {
        const uint64_t futile_at = t.state.last_compaction_futile_usec;
        if (futile_at == 0 || t.now - futile_at >= t.config.compaction.futile_backoff_usec)
            ahead = anticipate_compaction(t.sample, a, t.config, cur);
        if (ahead && t.sample.signals.max_fragmentation_score > 0)  // as the fragmentation rule
            ahead->target = std::max(
                ahead->target,
                std::min<int64_t>(proactiveness_for_score(t.sample.profile,
                                                          t.sample.signals.max_fragmentation_score),
                                  100) +
                    10);
    }
    if (ahead) {  // a learnt value may exceed what the bounds allow now: ask for the bound only
        const int64_t max = effective_bounds(k, t.next.knob(k), t.config, t.sample).max;
        if (ahead->target > max) ahead->target = max;
    }
    const bool raising = p && p->action == Action::raise;
    if (ahead && ahead->target > cur && (!raising || ahead->target > p->target)) {
        if (k != Knob::compaction_proactiveness) mark_not_calm(t, k);
        return Proposal{Action::raise, ahead->target, ahead->rule, ahead->reason};
    }
    if (p && (p->action == Action::decay || p->action == Action::lower)) {
        if (auto floor = anticipation_floor(k, a, t.config, t.now, baseline)) {
            if (*floor >= cur) {
                t.next.knob(k).last_reason =
                    fmt::format("holding at {}: learnt ({})", cur,
                                k == Knob::min_free_kbytes ? a.min_free.why : a.watermark.why);
                return std::nullopt;
            }
            p->target = std::max(p->target, *floor);
        }
    }
    return p;
}

}  // namespace fragtune::deciding
