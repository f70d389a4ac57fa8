// vm.vfs_cache_pressure: how eagerly dentry and inode caches are reclaimed.
// Raised while reclaimable slab crowds a fragmented node; back to the baseline when slab is small.
#include "fragtune/knobs/vfs_cache_pressure.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "fragtune/configuration/key_rows.hpp"
#include "fragtune/deciding/tick.hpp"
#include "fragtune/deciding/watermarks.hpp"
#include "fragtune/knobs/tunables.hpp"

namespace fragtune::knobs::vfs_cache_pressure {

using namespace deciding;
using namespace key_rows;

namespace {
constexpr Knob kKnob = Knob::vfs_cache_pressure;
}  // namespace

// Rows name only the members that differ from the defaults; GCC 12 warns about every member a
// designated initializer leaves out (GCC PR c++/96868, fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
void add_policy_keys(std::vector<ConfigKey>& rows, const std::string& section) {
    auto policy = [&](ConfigKey k) { add_policy_row(rows, section, std::move(k)); };
    [[maybe_unused]] const std::string unit(kModule.spec.unit);
    [[maybe_unused]] const auto kmax = static_cast<double>(kModule.spec.kernel_max);
    policy({.key = "raise_step",
            .kind = ValueKind::integer,
            .min = 1,
            .max = 10000,
            .field = &field<&Config::vfs_cache, &VfsCachePolicy::raise_step>,
            .doc = "additive raise when reclaimable slab crowds a fragmented node"});
    policy({.key = "slab_raise_share",
            .kind = ValueKind::number,
            .unit = "share",
            .min = 0,
            .max = 1,
            .field = &field<&Config::vfs_cache, &VfsCachePolicy::slab_raise_share>,
            .doc = "SReclaimable / MemTotal above which to raise (while fragmented)"});
    policy({.key = "slab_relax_share",
            .kind = ValueKind::number,
            .unit = "share",
            .min = 0,
            .max = 1,
            .field = &field<&Config::vfs_cache, &VfsCachePolicy::slab_relax_share>,
            .doc = "SReclaimable / MemTotal below which slab counts as small"});
    policy({.key = "fragmentation_score",
            .kind = ValueKind::integer,
            .min = 0,
            .max = 100,
            .field = &field<&Config::vfs_cache, &VfsCachePolicy::fragmentation_score>,
            .doc = "node fragmentation score counted as fragmented"});
    policy({.key = "decay_step",
            .kind = ValueKind::integer,
            .min = 1,
            .max = 10000,
            .field = &field<&Config::vfs_cache, &VfsCachePolicy::decay_step>,
            .doc = "additive step back towards the baseline"});
}
#pragma GCC diagnostic pop

// 6.18's vm.vfs_cache_pressure_denom divides the pressure: the effective pressure is
// vfs_cache_pressure / denom (100/100 the default). fragtune leaves the denominator to the
// administrator and says what a value means under it.
namespace {

std::string denom_note(const Sample& sample, int64_t value) {
    const auto denom = sample.vfs_cache_pressure_denom;
    if (!denom || *denom == 100) return "";
    return fmt::format(
        "; effective pressure {}/{} = {:.2f}x the default (vfs_cache_pressure_denom {})", value,
        *denom, static_cast<double>(value) / static_cast<double>(*denom), *denom);
}

}  // namespace

std::optional<Proposal> propose(const Tick& t, int64_t cur) {
    const auto& p = t.config.vfs_cache;
    const Signals& s = t.sample.signals;
    const Knob k = Knob::vfs_cache_pressure;
    if (!s.sreclaimable_kib || s.mem_total_kib == 0) {
        t.next.knob(k).last_reason = "no SReclaimable in /proc/meminfo: slab share unknown";
        return std::nullopt;
    }
    double share = static_cast<double>(*s.sreclaimable_kib) / static_cast<double>(s.mem_total_kib);
    auto frag = fragmentation(s, t.config.compaction);
    bool fragmented = s.max_fragmentation_score >= p.fragmentation_score || frag.high;

    if (share >= p.slab_raise_share && fragmented) {
        mark_not_calm(t, k);
        return Proposal{
            Action::raise, cur + p.raise_step, "slab-fragmentation",
            fmt::format("SReclaimable {} KiB = {:.1f}% of MemTotal (>= {:.1f}%) while fragmented: "
                        "fragmentation score {} (>= {}), {}{}",
                        *s.sreclaimable_kib, share * 100, p.slab_raise_share * 100,
                        s.max_fragmentation_score, p.fragmentation_score, frag.text,
                        denom_note(t.sample, cur + p.raise_step))};
    }
    if (share < p.slab_relax_share) {
        // Slab is small again: straight back to the baseline (one change instead of many small
        // ones).
        const auto& ks = t.next.knob(k);
        if (cur == ks.baseline) return std::nullopt;
        return Proposal{
            Action::decay, ks.baseline, "decay",
            fmt::format("SReclaimable {:.1f}% of MemTotal (< {:.1f}%): back to baseline",
                        share * 100, p.slab_relax_share * 100)};
    }
    if (fragmented) {
        mark_not_calm(t, k);  // slab share between the thresholds while fragmented: hold
        return std::nullopt;
    }
    return decay_proposal(t, k, cur, p.decay_step, "not fragmented");
}

}  // namespace fragtune::knobs::vfs_cache_pressure
