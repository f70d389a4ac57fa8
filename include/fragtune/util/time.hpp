// The clocks, read in one place. Every interval in fragtune is measured on CLOCK_MONOTONIC
// (monotonic_usec); CLOCK_REALTIME (realtime_usec) only stamps what people read (history, metrics,
// file headers). Pure code never calls these: time enters as a field of the sample.
#pragma once

#include <cstdint>

namespace fragtune {

// CLOCK_MONOTONIC in microseconds.
uint64_t monotonic_usec();
// CLOCK_REALTIME in microseconds since the epoch.
uint64_t realtime_usec();

}  // namespace fragtune
