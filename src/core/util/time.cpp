#include "fragtune/util/time.hpp"

#include <time.h>

namespace fragtune {

namespace {

uint64_t clock_usec(clockid_t clock) {
    timespec ts{};
    ::clock_gettime(clock, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000u +
           static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

uint64_t monotonic_usec() {
    return clock_usec(CLOCK_MONOTONIC);
}

uint64_t realtime_usec() {
    return clock_usec(CLOCK_REALTIME);
}

}  // namespace fragtune
