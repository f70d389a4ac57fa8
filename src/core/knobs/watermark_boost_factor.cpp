// vm.watermark_boost_factor: see the header for what the boost does and why this policy lowers it.
#include "fragtune/knobs/watermark_boost_factor.hpp"

#include <fmt/format.h>

#include "fragtune/configuration/key_rows.hpp"
#include "fragtune/deciding/tick.hpp"
#include "fragtune/knobs/tunables.hpp"

namespace fragtune::knobs::watermark_boost_factor {

using namespace deciding;
using namespace key_rows;

namespace {
constexpr Knob kKnob = Knob::watermark_boost_factor;
}  // namespace

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
void add_policy_keys(std::vector<ConfigKey>& rows, const std::string& section) {
    auto policy = [&](ConfigKey k) { add_policy_row(rows, section, std::move(k)); };
    const std::string unit(kModule.spec.unit);
    const auto kmax = static_cast<double>(kModule.spec.kernel_max);
    policy({.key = "lower_step",
            .kind = ValueKind::integer,
            .unit = unit,
            .min = 1,
            .max = kmax,
            .field = &field<&Config::watermark_boost, &WatermarkBoostPolicy::lower_step>,
            .doc = "additive lowering when boost-driven reclaim makes the file working set "
                   "refault"});
    policy({.key = "refault_lower_per_sec",
            .kind = ValueKind::number,
            .unit = "1/s",
            .min = 0,
            .max = 1e9,
            .field = &field<&Config::watermark_boost, &WatermarkBoostPolicy::refault_lower_per_sec>,
            .doc = "file refaults per second, while a zone is boosted and kswapd scans, that "
                   "lower the factor"});
    policy({.key = "refault_relax_per_sec",
            .kind = ValueKind::number,
            .unit = "1/s",
            .min = 0,
            .max = 1e9,
            .field = &field<&Config::watermark_boost, &WatermarkBoostPolicy::refault_relax_per_sec>,
            .doc = "file refaults per second below which the boost counts as harmless (calm)"});
    policy({.key = "decay_step",
            .kind = ValueKind::integer,
            .unit = unit,
            .min = 1,
            .max = kmax,
            .field = &field<&Config::watermark_boost, &WatermarkBoostPolicy::decay_step>,
            .doc = "additive step back towards the baseline"});
}
#pragma GCC diagnostic pop

std::optional<Proposal> propose(const Tick& t, int64_t cur) {
    const auto& p = t.config.watermark_boost;
    const Signals& s = t.sample.signals;
    if (s.interval_usec == 0) return std::nullopt;  // no rates yet
    // The boost is read from zoneinfo, which calm ticks skip; kswapd clears a boost within one
    // balancing pass, so a boost from an earlier read must not decide (nor hold) anything.
    if (!t.sample.zoneinfo_fresh) return std::nullopt;

    uint64_t boost_pages = 0;
    size_t boosted = 0;
    for (const auto& z : s.zones) {
        boost_pages += z.boost_pages;
        if (z.boost_pages > 0) ++boosted;
    }
    const double refault = rate(s, "workingset_refault_file");
    const uint64_t scan_kswapd = delta(s, "pgscan_kswapd");
    // The boost exists to get high-order blocks back: when the target orders are fragmented it is
    // doing its job, whatever it costs, and compaction_proactiveness answers that.
    const auto frag = fragmentation(s, t.config.compaction);

    if (boosted > 0 && refault >= p.refault_relax_per_sec) mark_not_calm(t, kKnob);
    if (boosted > 0 && scan_kswapd > 0 && refault >= p.refault_lower_per_sec && !frag.high) {
        return Proposal{
            Action::lower, cur - p.lower_step, "boost-reclaim",
            fmt::format("{} of {} zones boosted ({} pages over their watermarks), kswapd scanned "
                        "{} pages in {} while file refaults ran at {:.0f}/s (>= {:.0f}/s); "
                        "high-order blocks are not short ({}): the boost's extra reclaim costs "
                        "more than it saves",
                        boosted, s.zones.size(), boost_pages, scan_kswapd, secs(s.interval_usec),
                        refault, p.refault_lower_per_sec,
                        frag.text.empty() ? std::string("no target orders") : frag.text)};
    }
    if (boosted > 0 && frag.high) {
        mark_not_calm(t, kKnob);  // the boost is serving fragmentation: hold
        return std::nullopt;
    }
    return decay_proposal(t, kKnob, cur, p.decay_step,
                          fmt::format("file refaults {:.0f}/s under boost below {:.0f}/s", refault,
                                      p.refault_relax_per_sec));
}

}  // namespace fragtune::knobs::watermark_boost_factor
