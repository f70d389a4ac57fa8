#include "fragtune/deciding/cadence.hpp"

#include <algorithm>
#include <cmath>

namespace fragtune {

CadenceStep next_cadence(const CadenceState& state, const CadenceInput& in,
                         const CadenceConfig& config) {
    CadenceStep out;
    out.next = state;
    CadenceState& n = out.next;

    // The drain rate is tracked in every mode, so switching to adaptive (a reload) starts informed.
    if (state.last_headroom_pages && in.mono_usec > state.last_mono_usec &&
        in.headroom_pages < *state.last_headroom_pages) {
        const double secs = static_cast<double>(in.mono_usec - state.last_mono_usec) / 1e6;
        const double drain =
            static_cast<double>(*state.last_headroom_pages - in.headroom_pages) / secs;
        n.max_drain_pages_per_sec = std::max(n.max_drain_pages_per_sec, drain);
    }
    n.last_headroom_pages = in.headroom_pages;
    n.last_mono_usec = in.mono_usec;

    if (config.fixed_usec != 0) {
        n.interval_usec = config.fixed_usec;
        n.calm_ticks = 0;
        out.interval_usec = config.fixed_usec;
        out.why = "fixed";
        return out;
    }

    const uint64_t lo = config.min_usec;
    const uint64_t hi = std::max(config.max_usec, lo);
    uint64_t interval = lo;
    if (in.woken || in.failures || in.decided || in.trouble) {
        n.calm_ticks = 0;
        out.why = "trouble";
    } else {
        n.calm_ticks = state.calm_ticks + 1;
        // Doubling from the previous interval (tick_min after trouble): 250 ms, 500 ms, 1 s, ...
        const uint64_t prev =
            state.interval_usec == 0 ? lo : std::clamp(state.interval_usec, lo, hi);
        interval = prev > hi / 2 ? hi : prev * 2;
        out.why = "calm";
    }
    if (n.max_drain_pages_per_sec > 0) {
        const double room = static_cast<double>(std::max<int64_t>(in.headroom_pages, 0));
        const double lasts_usec = room / n.max_drain_pages_per_sec * 1e6 / 2;
        if (lasts_usec < static_cast<double>(interval)) {
            interval = std::max(lo, static_cast<uint64_t>(lasts_usec));
            if (out.why == "calm") out.why = "headroom";
        }
    }
    n.interval_usec = interval;
    out.interval_usec = interval;
    return out;
}

}  // namespace fragtune
