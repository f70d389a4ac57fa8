// vm.compaction_proactiveness (5.9+): how hard kcompactd compacts in the background.
// Raised on fragmentation at the target orders (far enough for kcompactd to work), lowered when
// compaction is futile; kicks kcompactd when a raise is blocked; compact_memory before 5.9.
#include "fragtune/knobs/compaction_proactiveness.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "fragtune/configuration/key_rows.hpp"
#include "fragtune/deciding/anticipation_hook.hpp"
#include "fragtune/deciding/tick.hpp"
#include "fragtune/deciding/watermarks.hpp"
#include "fragtune/knobs/tunables.hpp"

namespace fragtune::knobs::compaction_proactiveness {

using namespace deciding;
using namespace key_rows;

namespace {
constexpr Knob kKnob = Knob::compaction_proactiveness;
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
            .max = kmax,
            .field = &field<&Config::compaction, &CompactionPolicy::raise_step>,
            .doc = "additive raise when high-order blocks run out"});
    policy({.key = "unusable_raise_permille",
            .kind = ValueKind::integer,
            .unit = "permille",
            .min = 0,
            .max = 1000,
            .field = &field<&Config::compaction, &CompactionPolicy::unusable_raise_permille>,
            .doc = "unusable free index at a target order above which to raise"});
    policy({.key = "unusable_relax_permille",
            .kind = ValueKind::integer,
            .unit = "permille",
            .min = 0,
            .max = 1000,
            .field = &field<&Config::compaction, &CompactionPolicy::unusable_relax_permille>,
            .doc = "unusable free index below which blocks count as plentiful"});
    policy({.key = "futile_fail_ratio",
            .kind = ValueKind::number,
            .min = 0,
            .max = 1000,
            .min_exclusive = true,
            .field = &field<&Config::compaction, &CompactionPolicy::futile_fail_ratio>,
            .doc = "compact_fail above ratio * compact_success: compaction is futile, lower"});
    policy({.key = "futile_min_fail",
            .kind = ValueKind::integer,
            .min = 1,
            .max = 1000000,
            .field = &field<&Config::compaction, &CompactionPolicy::futile_min_fail>,
            .doc = "compact_fail needed in one interval before compaction counts as futile"});
    policy({.key = "kick_interval",
            .kind = ValueKind::duration,
            .unit = "usec",
            .min = kUsecPerSec,
            .max = kUsecPerDay,
            .field = &field<&Config::compaction, &CompactionPolicy::kick_interval_usec>,
            .doc = "least time between two writes that wake kcompactd"});
    policy({.key = "decay_step",
            .kind = ValueKind::integer,
            .min = 1,
            .max = kmax,
            .field = &field<&Config::compaction, &CompactionPolicy::decay_step>,
            .doc = "additive step back towards the baseline"});
    policy({.key = "compact_memory_fallback",
            .kind = ValueKind::boolean,
            .field = &field<&Config::compaction, &CompactionPolicy::compact_memory_fallback>,
            .doc = "on kernels before 5.9, write /proc/sys/vm/compact_memory once instead"});
    policy({.key = "compact_memory_interval",
            .kind = ValueKind::duration,
            .unit = "usec",
            .min = kUsecPerMin,
            .max = kUsecPerDay,
            .field = &field<&Config::compaction, &CompactionPolicy::compact_memory_interval_usec>,
            .doc = "least time between two compact_memory writes (the fallback)"});
    policy({.key = "futile_backoff",
            .kind = ValueKind::duration,
            .unit = "usec",
            .min = 0,
            .max = kUsecPerDay,
            .field = &field<&Config::compaction, &CompactionPolicy::futile_backoff_usec>,
            .doc = "after futile compaction, no raise or kick for this long"});
    policy({.key = "predict",
            .kind = ValueKind::boolean,
            .field = &field<&Config::compaction, &CompactionPolicy::predict>,
            .doc = "raise when target-order free blocks trend to zero"});
    policy({.key = "predict_horizon",
            .kind = ValueKind::duration,
            .unit = "usec",
            .min = kUsecPerSec,
            .max = kUsecPerHour,
            .field = &field<&Config::compaction, &CompactionPolicy::predict_horizon_usec>,
            .doc = "raise when the blocks' trend reaches zero within this time"});
}
#pragma GCC diagnostic pop

namespace {

// Writing compaction_proactiveness wakes proactive compaction at once since 5.15 (the sysctl
// handler calls wakeup_kcompactd for every node on a non-zero write); before that a rewrite does
// nothing.
constexpr KernelVersion kKickSince{5, 15};

// Only a non-zero write wakes proactive compaction, and only since 5.15.
bool kicks_supported(const Sample& sample, int64_t cur) {
    return sample.kernel && *sample.kernel >= kKickSince && cur > 0;
}

std::optional<Decision> kick(const Tick& t, int64_t cur, const std::string& frag_text,
                             std::string_view blocked_by) {
    const auto& p = t.config.compaction;
    if (!kicks_supported(t.sample, cur)) return std::nullopt;
    uint64_t last = t.state.last_compaction_kick_usec;
    if (last != 0 && t.now - last < p.kick_interval_usec) return std::nullopt;
    t.next.last_compaction_kick_usec = t.now;
    auto& ks = t.next.knob(Knob::compaction_proactiveness);
    Decision d{
        Knob::compaction_proactiveness,
        Action::kick,
        cur,
        cur,
        "compaction-kick",
        fmt::format("{} (>= {}/1000) and {}: rewriting {} wakes kcompactd now instead of after its "
                    "~30 s deferral (kernel >= 5.15)",
                    frag_text, p.unusable_raise_permille, blocked_by, cur),
        true};
    ks.last_rule = d.rule;
    ks.last_reason = d.reason;
    return d;
}

}  // namespace

namespace {
std::optional<Proposal> propose_reactive(const Tick& t, int64_t cur) {
    const auto& p = t.config.compaction;
    const Signals& s = t.sample.signals;
    const Knob k = Knob::compaction_proactiveness;

    auto frag = fragmentation(s, p);
    uint64_t stall = delta(s, "compact_stall");
    uint64_t fallback = delta(s, "thp_fault_fallback");
    uint64_t fail = delta(s, "compact_fail");
    uint64_t success = delta(s, "compact_success");
    uint32_t high_fail = high_order_failures(s, t.config.min_free.max_failure_order);

    // compact_stall/fail/success count direct compaction only; what proactiveness drives is
    // kcompactd, whose work shows in compact_daemon_* (4.6+; the scanned counters 4.17+). Where the
    // kernel prints them, kcompactd is futile when it scanned for futile_min_fail ticks in a row
    // and the fragmentation score did not fall; the direct-compaction ratio judges only kernels
    // without them.
    if (auto scanned = counter(s, "compact_daemon_migrate_scanned")) {
        const int prev_score = t.state.last_fragmentation_score;
        const bool worked = scanned->delta > 0;
        const bool improved = prev_score >= 0 && s.max_fragmentation_score < prev_score;
        t.next.kcompactd_futile_ticks =
            worked && !improved && prev_score >= 0 ? t.state.kcompactd_futile_ticks + 1 : 0;
        if (cur > 0 && t.next.kcompactd_futile_ticks >= std::max<uint32_t>(p.futile_min_fail, 1)) {
            mark_not_calm(t, k);
            t.next.last_compaction_futile_usec = t.now;
            const uint32_t ticks = t.next.kcompactd_futile_ticks;
            t.next.kcompactd_futile_ticks = 0;
            return Proposal{
                Action::lower, cur - p.raise_step, "compaction-futile",
                fmt::format("kcompactd scanned {} pages (compact_daemon_migrate_scanned) in {} and "
                            "{} ticks in a row without the fragmentation score falling (now {}): "
                            "compaction is futile, backing off",
                            scanned->delta, secs(s.interval_usec), ticks,
                            s.max_fragmentation_score)};
        }
    } else if (fail > 0 && fail >= p.futile_min_fail &&
               static_cast<double>(fail) > p.futile_fail_ratio * static_cast<double>(success)) {
        mark_not_calm(t, k);
        t.next.last_compaction_futile_usec = t.now;
        return Proposal{
            Action::lower, cur - p.raise_step, "compaction-futile",
            fmt::format("compact_fail {} vs compact_success {} in {} (> {:.1f}x): compaction is "
                        "futile, backing off",
                        fail, success, secs(s.interval_usec), p.futile_fail_ratio)};
    }
    bool raise = frag.high || stall > 0 || fallback > 0 || high_fail > 0;
    if (raise) {
        mark_not_calm(t, k);
        uint64_t futile_at = t.state.last_compaction_futile_usec;
        if (futile_at != 0 && t.now - futile_at < p.futile_backoff_usec) {
            t.next.knob(k).last_reason =
                fmt::format("fragmentation high but compaction was futile {} ago: holding for {}",
                            secs(t.now - futile_at), secs(p.futile_backoff_usec));
            return std::nullopt;
        }
        std::vector<std::string> why;
        if (frag.high)
            why.push_back(fmt::format("{} (>= {}/1000)", frag.text, p.unusable_raise_permille));
        if (stall > 0) why.push_back(fmt::format("compact_stall {}", stall));
        if (fallback > 0) why.push_back(fmt::format("thp_fault_fallback {}", fallback));
        if (high_fail > 0)
            why.push_back(fmt::format("{} allocation failure{} of order > {}", high_fail,
                                      high_fail == 1 ? "" : "s",
                                      t.config.min_free.max_failure_order));
        std::string reason;
        for (const auto& w : why) reason += (reason.empty() ? "" : ", ") + w;
        reason += fmt::format(" in {}", secs(s.interval_usec));
        // One step is often too little: kcompactd only starts when a node's fragmentation score
        // exceeds the high watermark of mm/compaction.c fragmentation_score_wmark ((100 -
        // proactiveness) + 10 up to 6.15; + min(10, low / 2) since, KernelProfile) and stops at
        // 100 - proactiveness. Measured on our VM, a +20 step from 20 left the score above
        // the new watermark and kcompactd idle for the whole burst. So go at least to the value at
        // which the kernel compacts the node that is fragmented now, with 10 points to spare.
        int64_t target = cur + p.raise_step;
        if (frag.high && s.max_fragmentation_score > 0) {
            const int64_t needed =
                std::min<int64_t>(
                    proactiveness_for_score(t.sample.profile, s.max_fragmentation_score), 100) +
                10;
            if (needed > target) {
                target = needed;
                reason += fmt::format("; {} so that kcompactd works on fragmentation score {}",
                                      target, s.max_fragmentation_score);
            }
        }
        return Proposal{Action::raise, target, "fragmentation", reason};
    }
    if (!frag.plentiful) {
        mark_not_calm(t, k);  // between the thresholds: hold
        return std::nullopt;
    }
    return decay_proposal(t, k, cur, p.decay_step,
                          fmt::format("{} < {}/1000", frag.text, p.unusable_relax_permille));
}
}  // namespace

// The reactive rules above, then anticipation (deciding/anticipation_hook.hpp) on top.
std::optional<Proposal> propose(const Tick& t, int64_t cur) {
    return anticipate(t, Knob::compaction_proactiveness, cur, propose_reactive(t, cur));
}

// Kernels without proactive compaction: optional one-shot compaction when high-order availability
// collapses.
std::optional<Decision> when_unsupported(const Tick& t) {
    const auto& config = t.config;
    if (!config.compaction.compact_memory_fallback) return std::nullopt;
    const Signals& s = t.sample.signals;
    auto frag = fragmentation(s, config.compaction);
    bool empty_target = std::any_of(s.targets.begin(), s.targets.end(),
                                    [](const OrderSignals& o) { return o.free_blocks == 0; });
    uint32_t high_fail = high_order_failures(s, config.min_free.max_failure_order);
    uint64_t last = t.state.last_compact_memory_usec;
    if (!(frag.high && (empty_target || high_fail > 0) &&
          (last == 0 || t.now - last >= config.compaction.compact_memory_interval_usec)))
        return std::nullopt;
    t.next.last_compact_memory_usec = t.now;
    return Decision{
        kKnob,
        Action::compact,
        0,
        0,
        "fragmentation",
        fmt::format("{} (>= {}/1000), {} allocation failures of order > {}; this kernel "
                    "has no compaction_proactiveness",
                    frag.text, config.compaction.unusable_raise_permille, high_fail,
                    config.min_free.max_failure_order),
        true};
}

// A fragmentation raise that cannot move the value (at the maximum, in the cooldown, at the hourly
// cap) rewrites the same value to wake kcompactd, at most once per kick interval. propose()'s only
// raise is the fragmentation rule, and it asks for a kick exactly when the target orders are
// fragmented (Fragmentation::high, recomputed here from the same signals).
Verdict when_blocked(const Tick& t, int64_t cur, const Proposal& p, const Range& b, Blocked why,
                     std::string_view blocked_by) {
    if (p.action != Action::raise) return Verdict::pass();
    const auto frag = fragmentation(t.sample.signals, t.config.compaction);
    if (!frag.high) return Verdict::pass();
    if (why == Blocked::at_bound) {
        if (!kicks_supported(t.sample, cur)) return Verdict::pass();
        // At the maximum under sustained fragmentation is the normal state: kick when the interval
        // allows, otherwise hold quietly instead of refusing every minute.
        if (auto d = kick(t, cur, frag.text,
                          fmt::format("proactiveness already at its maximum {}", b.max)))
            return Verdict::decide(std::move(d));
        auto& ks = t.next.knob(kKnob);
        ks.last_rule = p.rule;
        ks.last_reason =
            fmt::format("{}; at the maximum {}, waiting for the kick interval", p.reason, b.max);
        return Verdict::decide(std::nullopt);
    }
    if (auto d = kick(t, cur, frag.text, blocked_by)) return Verdict::decide(std::move(d));
    return Verdict::pass();
}

}  // namespace fragtune::knobs::compaction_proactiveness
