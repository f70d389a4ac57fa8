// Learned headroom and trend prediction (issue #13). See anticipation.hpp for the contracts and
// doc/policies.md for the rules (learned-headroom, predict-low, learned-reserve,
// predict-fragmentation), their signals, thresholds and defaults.
#include "fragtune/deciding/anticipation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "fragtune/deciding/controller.hpp"

namespace fragtune {

namespace {

constexpr double kMib = 1024.0 * 1024.0;
// At most this many points per trend buffer, whatever the window (a 250 ms tick over 20 s is 80).
constexpr std::size_t kMaxTrendPoints = 96;
// kswapd's best measured rate fades by this share per second, so that it follows the machine
// (an hour to fall to ~1/e) without forgetting it between bursts.
constexpr double kKswapdFadePerSec = 1.0 / 3600.0;

double counter_delta(const Signals& s, std::string_view name) {
    auto c = s.counter(name);
    return c ? static_cast<double>(c->delta) : 0.0;
}

uint64_t page_bytes(const Sample& s) {
    return std::max<uint64_t>(s.profile.page_size_bytes, 1024);
}

double mib(const Sample& s, double pages) {
    return pages * static_cast<double>(page_bytes(s)) / kMib;
}

void push_trimmed(std::vector<TrendPoint>& v, TrendPoint p, uint64_t window_usec) {
    if (!v.empty() && v.back().mono_usec >= p.mono_usec) v.clear();  // time went back: a replay
    v.push_back(p);
    const uint64_t oldest = p.mono_usec > window_usec ? p.mono_usec - window_usec : 0;
    std::erase_if(v, [&](const TrendPoint& q) { return q.mono_usec < oldest; });
    if (v.size() > kMaxTrendPoints)
        v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() - kMaxTrendPoints));
}

// The newest `n` points strictly falling: a fit through a sawtooth (kswapd cycling between low and
// high) is not a trend.
bool falling_tail(const std::vector<TrendPoint>& v, std::size_t n) {
    if (v.size() < n) return false;
    for (std::size_t i = v.size() - n + 1; i < v.size(); ++i)
        if (!(v[i].value < v[i - 1].value)) return false;
    return true;
}

struct Marks {
    double min = 0, low = 0, high = 0;
};
Marks marks_for(const Sample& s, int64_t min_free, int64_t wsf) {
    Marks m;
    for (const auto& z : predict_watermarks(s.zoneinfo, min_free, wsf, s.profile)) {
        m.min += static_cast<double>(z.min);
        m.low += static_cast<double>(z.low);
        m.high += static_cast<double>(z.high);
    }
    return m;
}

std::string secs(double sec) {
    if (sec >= 3600) return fmt::format("{:.1f} h", sec / 3600);
    if (sec >= 120) return fmt::format("{:.0f} min", sec / 60);
    return fmt::format("{:.1f} s", sec);
}

// The cost of a scale factor: what kswapd keeps free above min.
std::string wsf_cost(const Sample& s, int64_t min_free, int64_t wsf) {
    const Marks m = marks_for(s, min_free, wsf);
    return fmt::format(
        "cost: low..high gap {:.0f} MiB that kswapd reclaims before it sleeps, high "
        "watermark {:.0f} MiB kept free",
        mib(s, m.high - m.low), mib(s, m.high));
}

}  // namespace

std::optional<Trend> fit_trend(const std::vector<TrendPoint>& points) {
    if (points.size() < 2) return std::nullopt;
    // Times relative to the newest point, in seconds, so the intercept is the value "now" and the
    // sums stay small.
    const uint64_t t_last = points.back().mono_usec;
    double st = 0, sv = 0;
    for (const auto& p : points) {
        st += -static_cast<double>(t_last - std::min(p.mono_usec, t_last)) / 1e6;
        sv += p.value;
    }
    const double n = static_cast<double>(points.size());
    const double mt = st / n, mv = sv / n;
    double sxx = 0, sxy = 0;
    for (const auto& p : points) {
        const double x = -static_cast<double>(t_last - std::min(p.mono_usec, t_last)) / 1e6 - mt;
        sxx += x * x;
        sxy += x * (p.value - mv);
    }
    if (sxx <= 0) return std::nullopt;
    Trend t;
    t.slope_per_sec = sxy / sxx;
    t.at_last = mv + t.slope_per_sec * (0 - mt);
    t.points = points.size();
    t.span_sec = static_cast<double>(t_last - points.front().mono_usec) / 1e6;
    return t;
}

std::optional<double> seconds_until_below(const Trend& trend, double level) {
    if (trend.slope_per_sec >= 0 || trend.at_last <= level) return std::nullopt;
    return (trend.at_last - level) / -trend.slope_per_sec;
}

std::optional<int64_t> learned_floor(const LearnedValue& v, uint64_t now_usec, uint64_t hold_usec,
                                     int64_t step, uint64_t interval_usec, int64_t baseline) {
    if (v.value <= baseline || hold_usec == 0) return std::nullopt;
    const uint64_t age = now_usec > v.at_usec ? now_usec - v.at_usec : 0;
    if (age < hold_usec) return v.value;
    const uint64_t steps = interval_usec == 0 ? std::numeric_limits<uint32_t>::max()
                                              : (age - hold_usec) / interval_usec + 1;
    const double down =
        static_cast<double>(std::max<int64_t>(step, 1)) * static_cast<double>(steps);
    if (down >= static_cast<double>(v.value - baseline)) return std::nullopt;
    return v.value - static_cast<int64_t>(down);
}

int64_t wsf_for_gap(const Sample& sample, int64_t min_free_kbytes, double gap_pages) {
    const Range r = sample.profile.range(Knob::watermark_scale_factor);
    auto gap = [&](int64_t wsf) {
        const Marks m = marks_for(sample, min_free_kbytes, wsf);
        return m.low - m.min;
    };
    int64_t lo = std::max<int64_t>(r.min, 1), hi = std::max(r.max, lo);
    if (gap(hi) < gap_pages) return hi;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (gap(mid) >= gap_pages)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

AnticipationState update_anticipation(const Sample& sample, const AnticipationState& state,
                                      const Config& config) {
    AnticipationState n = state;
    const Signals& s = sample.signals;
    const auto& wp = config.watermark;
    const uint64_t now = sample.mono_usec;
    n.now_usec = now;

    const double prev_free = state.free_pages.empty() ? static_cast<double>(s.free_pages)
                                                      : state.free_pages.back().value;
    push_trimmed(n.free_pages, {now, static_cast<double>(s.free_pages)}, wp.predict_window_usec);
    if (!s.targets.empty()) {
        const auto& o = s.targets.back();
        if (o.order != n.target_order) n.target_blocks.clear();
        n.target_order = o.order;
        push_trimmed(n.target_blocks, {now, static_cast<double>(o.free_blocks)},
                     wp.predict_window_usec);
    }
    if (s.interval_usec == 0) return n;  // no rates yet
    const double dt = static_cast<double>(s.interval_usec) / 1e6;

    const double steal_kswapd = counter_delta(s, "pgsteal_kswapd");
    n.kswapd_pages_per_sec = std::max(
        steal_kswapd / dt, state.kswapd_pages_per_sec * std::max(0.0, 1 - dt * kKswapdFadePerSec));

    const double allocstall = counter_delta(s, "allocstall");
    const double scan_direct = counter_delta(s, "pgscan_direct");
    double direct = counter_delta(s, "pgsteal_direct");
    if (direct == 0) direct = scan_direct;
    const bool direct_reclaim = allocstall > 0 || scan_direct > 0;
    const bool psi_high = s.psi_some_percent && *s.psi_some_percent >= wp.psi_some_raise_percent;
    const bool dip = s.zones_at_or_below_min > 0;
    uint32_t atomic_pages = 0;
    for (const auto& [order, count] : s.atomic_failures_by_order)
        if (order <= config.min_free.max_failure_order && order >= 0 && order < 31)
            atomic_pages += count << order;
    const bool trouble = direct_reclaim || psi_high || dip || atomic_pages > 0;

    Episode& ep = n.episode;
    const int64_t live_wsf = sample.knob(Knob::watermark_scale_factor).value_or(10);
    const int64_t live_min_free = sample.knob(Knob::min_free_kbytes).value_or(0);
    if (!trouble) {
        if (ep.open) {
            // The values in force when the trouble ended answered it: remember them too (a reactive
            // raise during the episode counts as learnt).
            if (ep.atomic_failed_pages > 0 && live_min_free > n.min_free.value &&
                config.min_free.learned_hold_usec > 0)
                n.min_free = {live_min_free, now,
                              fmt::format("the reserve in force when atomic failures of {} "
                                          "pages ({} episode of {}) ended",
                                          ep.atomic_failed_pages, ep.cause,
                                          secs(static_cast<double>(now - ep.start_usec) / 1e6))};
            ep = Episode{};
        }
        return n;
    }
    if (!ep.open) {
        ep = Episode{};
        ep.open = true;
        ep.start_usec = now - std::min(now, s.interval_usec);
        ep.cause = direct_reclaim ? "direct-reclaim"
                   : psi_high     ? "PSI"
                   : dip          ? "min-watermark-dip"
                                  : "atomic-failure";
    }
    const double low = static_cast<double>(s.low_pages), min = static_cast<double>(s.min_pages);
    const double free_now = static_cast<double>(s.free_pages);
    if (direct_reclaim || dip) ep.below_low_pages = std::max(ep.below_low_pages, low - min);
    ep.below_low_pages = std::max(ep.below_low_pages, low - free_now);
    ep.direct_pages += direct;
    const double alloc = std::max(0.0, prev_free - free_now) + steal_kswapd + direct;
    ep.alloc_pages_per_sec = std::max(ep.alloc_pages_per_sec, alloc / dt);
    // Free memory above high is surplus, not headroom the gap could have provided: only the fall
    // below high counts, against kswapd's best rate (this tick's included).
    const double high = static_cast<double>(s.high_pages);
    const double fall_below_high = std::max(0.0, std::min(prev_free, high) - free_now);
    const double uncovered =
        std::max(0.0, fall_below_high + steal_kswapd + direct - n.kswapd_pages_per_sec * dt);
    ep.uncovered_pages += uncovered;
    ep.atomic_failed_pages += atomic_pages;
    // The worst single tick, not the sum: under sustained trouble a sum grows without bound, while
    // successive episodes ratchet the gap up from the one in force until the trouble stops.
    double tick_below_low = std::max(0.0, low - free_now);
    if (direct_reclaim || dip) tick_below_low = std::max(tick_below_low, low - min);
    ep.need_pages = std::max({ep.need_pages, tick_below_low + direct, uncovered});

    // Pure atomic starvation (every zone below low is at or below min, with atomic failures) is the
    // reserve's job: a wider gap would only make kswapd work harder.
    const bool pure_atomic = atomic_pages > 0 && s.zones_below_low == s.zones_at_or_below_min;
    if (wp.learned_hold_usec > 0 && !pure_atomic && (direct_reclaim || psi_high || dip)) {
        const double needed = wp.learned_margin * ep.need_pages;
        const int64_t wsf = wsf_for_gap(sample, live_min_free, needed);
        const bool held = n.watermark.value > 0 &&
                          now - std::min(now, n.watermark.at_usec) < wp.learned_hold_usec;
        const int64_t value = std::max({wsf, live_wsf, held ? n.watermark.value : int64_t{0}});
        n.watermark = {
            value, now,
            fmt::format("{} episode of {}: free fell {:.0f} MiB into the low..min band, {:.0f} MiB "
                        "reclaimed directly, allocation up to {:.0f} MiB/s against kswapd's {:.0f} "
                        "MiB/s; a low..min gap of {:.0f} MiB (x{:.2f}) covers it",
                        ep.cause, secs(static_cast<double>(now - ep.start_usec) / 1e6),
                        mib(sample, ep.below_low_pages), mib(sample, ep.direct_pages),
                        mib(sample, ep.alloc_pages_per_sec), mib(sample, n.kswapd_pages_per_sec),
                        mib(sample, needed), wp.learned_margin)};
    }
    if (atomic_pages > 0 && config.min_free.learned_hold_usec > 0) {
        // An atomic allocation may dig 5/8 of min (mm/page_alloc.c: __GFP_HIGH half, then
        // ALLOC_NON_BLOCK a quarter of the rest): covering `failed` pages needs 8/5 of them more.
        const double kib = static_cast<double>(ep.atomic_failed_pages) *
                           static_cast<double>(page_bytes(sample)) / 1024.0 * 8.0 / 5.0 *
                           wp.learned_margin;
        const int64_t want = std::max<int64_t>(
            live_min_free + static_cast<int64_t>(std::ceil(kib)),
            static_cast<int64_t>(std::ceil(static_cast<double>(live_min_free) *
                                           std::max(config.min_free.raise_factor, 1.0))));
        if (want > n.min_free.value ||
            now - std::min(now, n.min_free.at_usec) >= config.min_free.learned_hold_usec)
            n.min_free = {
                std::max(want, live_min_free), now,
                fmt::format("{} pages of atomic allocations failed in a {} episode "
                            "(5/8 of min is theirs to dig: {:.0f} MiB more reserve, "
                            "x{:.2f})",
                            ep.atomic_failed_pages, ep.cause, kib / 1024, wp.learned_margin)};
        else
            n.min_free.at_usec = now;  // a new episode refreshes the hold
    }
    return n;
}

std::optional<Anticipation> anticipate_watermark(const Sample& sample, const AnticipationState& a,
                                                 const Config& config, int64_t cur,
                                                 int64_t baseline) {
    const auto& wp = config.watermark;
    const Signals& s = sample.signals;
    const int64_t min_free = sample.knob(Knob::min_free_kbytes).value_or(0);
    const uint64_t now = sample.mono_usec;
    if (auto floor = anticipation_floor(Knob::watermark_scale_factor, a, config, now, baseline);
        floor && *floor > cur) {
        const uint64_t age = now - std::min(now, a.watermark.at_usec);
        const std::string left =
            age < wp.learned_hold_usec
                ? fmt::format("held {} more",
                              secs(static_cast<double>(wp.learned_hold_usec - age) / 1e6))
                : std::string("decaying");
        return Anticipation{
            *floor, "learned-headroom",
            fmt::format("{}; {}; {}", a.watermark.why, left, wsf_cost(sample, min_free, *floor))};
    }
    if (!wp.predict || !falling_tail(a.free_pages, 3) || a.kswapd_pages_per_sec <= 0)
        return std::nullopt;
    const auto trend = fit_trend(a.free_pages);
    if (!trend) return std::nullopt;
    const double low = static_cast<double>(s.low_pages), high = static_cast<double>(s.high_pages);
    const auto t_low = seconds_until_below(*trend, low);
    if (!t_low) return std::nullopt;  // not falling, or already below low (reactive rules act)
    const double fall = -trend->slope_per_sec, kswapd = a.kswapd_pages_per_sec;
    const double gap = std::max(high - low, 1.0);
    // kswapd wakes at low and refills the gap at its rate minus the fall still going on.
    const double t_kswapd =
        kswapd > fall ? gap / (kswapd - fall) : std::numeric_limits<double>::infinity();
    if (*t_low >= t_kswapd) return std::nullopt;
    // Headroom for a fall lasting as long again as the one seen: what kswapd cannot cover of it.
    const double needed =
        wp.learned_margin * (gap + std::max(0.0, fall - kswapd) * std::max(trend->span_sec, 1.0));
    const int64_t target = wsf_for_gap(sample, min_free, needed);
    if (target <= cur) return std::nullopt;
    return Anticipation{
        target, "predict-low",
        fmt::format(
            "free memory {:.0f} MiB falling {:.0f} MiB/s (least squares over {} samples, "
            "{}) reaches low ({:.0f} MiB) in {}, sooner than kswapd at {:.0f} MiB/s refills "
            "the {:.0f} MiB gap ({}); a gap of {:.0f} MiB covers it; {}",
            mib(sample, trend->at_last), mib(sample, fall), trend->points, secs(trend->span_sec),
            mib(sample, low), secs(*t_low), mib(sample, kswapd), mib(sample, gap),
            std::isinf(t_kswapd) ? std::string("never, at this fall") : secs(t_kswapd),
            mib(sample, needed), wsf_cost(sample, min_free, target))};
}

std::optional<Anticipation> anticipate_min_free(const Sample& sample, const AnticipationState& a,
                                                const Config& config, int64_t cur,
                                                int64_t baseline) {
    const uint64_t now = sample.mono_usec;
    auto floor = anticipation_floor(Knob::min_free_kbytes, a, config, now, baseline);
    if (!floor || *floor <= cur) return std::nullopt;
    const uint64_t age = now - std::min(now, a.min_free.at_usec);
    const uint64_t hold = config.min_free.learned_hold_usec;
    return Anticipation{
        *floor, "learned-reserve",
        fmt::format(
            "{}; {}; cost: {:.0f} MiB more kept free for atomic allocations", a.min_free.why,
            age < hold ? fmt::format("held {} more", secs(static_cast<double>(hold - age) / 1e6))
                       : std::string("decaying"),
            static_cast<double>(*floor - cur) / 1024.0)};
}

std::optional<Anticipation> anticipate_compaction(const Sample& sample, const AnticipationState& a,
                                                  const Config& config, int64_t cur) {
    const auto& cp = config.compaction;
    if (!cp.predict || !falling_tail(a.target_blocks, 3)) return std::nullopt;
    const auto trend = fit_trend(a.target_blocks);
    if (!trend || a.target_blocks.back().value < 1) return std::nullopt;  // none left: reactive
    const auto t_zero = seconds_until_below(*trend, 0.5);
    const double horizon = static_cast<double>(cp.predict_horizon_usec) / 1e6;
    if (!t_zero || *t_zero >= horizon) return std::nullopt;
    const int64_t target = cur + cp.raise_step;
    const Signals& s = sample.signals;
    const auto scanned = s.counter("compact_daemon_migrate_scanned");
    return Anticipation{
        target, "predict-fragmentation",
        fmt::format("order-{} free blocks {:.0f} falling {:.1f}/s (least squares over {} samples, "
                    "{}): none left in {} (< {}); cost: kcompactd migrates movable pages{}",
                    a.target_order, a.target_blocks.back().value, -trend->slope_per_sec,
                    trend->points, secs(trend->span_sec), secs(*t_zero), secs(horizon),
                    scanned ? fmt::format(" (compact_daemon_migrate_scanned {} in the last "
                                          "interval)",
                                          scanned->delta)
                            : std::string())};
}

std::optional<int64_t> anticipation_floor(Knob k, const AnticipationState& a, const Config& config,
                                          uint64_t now_usec, int64_t baseline) {
    switch (k) {
        case Knob::watermark_scale_factor:
            return learned_floor(a.watermark, now_usec, config.watermark.learned_hold_usec,
                                 config.watermark.decay_step, config.knob(k).decay_interval_usec,
                                 baseline);
        case Knob::min_free_kbytes:
            return learned_floor(a.min_free, now_usec, config.min_free.learned_hold_usec,
                                 config.min_free.decay_step_kib, config.knob(k).decay_interval_usec,
                                 baseline);
        default:
            return std::nullopt;
    }
}

}  // namespace fragtune
