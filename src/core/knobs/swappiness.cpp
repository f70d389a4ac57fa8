// vm.swappiness: the relative cost of swapping anonymous memory versus dropping page cache.
// Only with swap: file refaults raise it, swap-ins lower it.
#include "fragtune/knobs/swappiness.hpp"

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

namespace fragtune::knobs::swappiness {

using namespace deciding;
using namespace key_rows;

namespace {
constexpr Knob kKnob = Knob::swappiness;
}  // namespace

// Rows name only the members that differ from the defaults; GCC 12 warns about every member a
// designated initializer leaves out (GCC PR c++/96868, fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
void add_policy_keys(std::vector<ConfigKey>& rows, const std::string& section) {
    auto policy = [&](ConfigKey k) { add_policy_row(rows, section, std::move(k)); };
    [[maybe_unused]] const std::string unit(kModule.spec.unit);
    [[maybe_unused]] const auto kmax = static_cast<double>(kModule.spec.kernel_max);
    policy({.key = "step",
            .kind = ValueKind::integer,
            .min = 1,
            .max = kmax,
            .field = &field<&Config::swappiness, &SwappinessPolicy::step>,
            .doc = "additive change per decision, up or down"});
    policy({.key = "refault_file_raise_per_sec",
            .kind = ValueKind::number,
            .unit = "1/s",
            .min = 0,
            .max = 1e9,
            .field = &field<&Config::swappiness, &SwappinessPolicy::refault_file_raise_per_sec>,
            .doc = "file refaults per second that favour swapping cold anonymous memory"});
    policy({.key = "swapin_lower_per_sec",
            .kind = ValueKind::number,
            .unit = "1/s",
            .min = 0,
            .max = 1e9,
            .field = &field<&Config::swappiness, &SwappinessPolicy::swapin_lower_per_sec>,
            .doc = "swap-ins per second that favour keeping anonymous memory"});
    policy({.key = "swapin_low_per_sec",
            .kind = ValueKind::number,
            .unit = "1/s",
            .min = 0,
            .max = 1e9,
            .field = &field<&Config::swappiness, &SwappinessPolicy::swapin_low_per_sec>,
            .doc = "refaults raise swappiness only while swap-ins per second stay below this"});
    policy({.key = "refault_file_relax_per_sec",
            .kind = ValueKind::number,
            .unit = "1/s",
            .min = 0,
            .max = 1e9,
            .field = &field<&Config::swappiness, &SwappinessPolicy::refault_file_relax_per_sec>,
            .doc = "file refaults per second below which (swap-ins low) the knob is calm"});
    policy({.key = "decay_step",
            .kind = ValueKind::integer,
            .min = 1,
            .max = kmax,
            .field = &field<&Config::swappiness, &SwappinessPolicy::decay_step>,
            .doc = "additive step back towards the baseline"});
}
#pragma GCC diagnostic pop

std::optional<Proposal> propose(const Tick& t, int64_t cur) {
    const auto& p = t.config.swappiness;
    const Signals& s = t.sample.signals;
    const Knob k = Knob::swappiness;
    if (s.swap_total_kib == 0) {
        t.next.knob(k).last_reason = "no swap: swappiness has no effect";
        return std::nullopt;
    }
    if (s.interval_usec == 0) return std::nullopt;  // no rates yet
    double refault = rate(s, "workingset_refault_file");
    double swapin = rate(s, "pswpin");
    if (swapin >= p.swapin_lower_per_sec) {
        mark_not_calm(t, k);
        return Proposal{Action::lower, cur - p.step, "swap-ins",
                        fmt::format("{:.0f} swap-ins/s (>= {:.0f}/s): keep anonymous memory in RAM",
                                    swapin, p.swapin_lower_per_sec)};
    }
    if (refault >= p.refault_file_raise_per_sec && swapin < p.swapin_low_per_sec) {
        mark_not_calm(t, k);
        return Proposal{
            Action::raise, cur + p.step, "refaults",
            fmt::format("{:.0f} file refaults/s (>= {:.0f}/s) with {:.0f} swap-ins/s (< {:.0f}/s): "
                        "favour swapping cold anonymous memory",
                        refault, p.refault_file_raise_per_sec, swapin, p.swapin_low_per_sec)};
    }
    if (refault >= p.refault_file_relax_per_sec || swapin >= p.swapin_low_per_sec) {
        mark_not_calm(t, k);
        return std::nullopt;
    }
    return decay_proposal(t, k, cur, p.decay_step, "refaults and swap-ins low");
}

Range kernel_range(std::optional<KernelVersion> version) {
    Range r{kModule.spec.kernel_min, kModule.spec.kernel_max};
    // 5.8 (commit c843966c556d, "mm: allow swappiness that prefers reclaiming anon over file")
    if (!version || *version < KernelVersion{5, 8}) r.max = 100;
    return r;
}

}  // namespace fragtune::knobs::swappiness
