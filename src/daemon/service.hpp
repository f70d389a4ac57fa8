// The service: one thread, one sd-event loop (libsystemd) over TERM/INT (stop) and HUP (reload)
// signals, a CLOCK_MONOTONIC time source for the tick, the kernel log (/dev/kmsg), the PSI trigger
// fd (EPOLLPRI) and the bus (event_bus.hpp). Talks to systemd with sd_notify (READY, STATUS,
// WATCHDOG, RELOADING, STOPPING).
//
// The tick's interval follows deciding/cadence.hpp (adaptive between daemon.tick_min and
// daemon.tick_max, or a fixed daemon.tick); a PSI trigger or an allocation failure in the kernel
// log runs a tick at once. STATUS= is sent every tick.
//
// The watchdog: WATCHDOG=1 is sent from the tick only (not by sd_event_set_watchdog(), which pets
// whenever the loop turns, even with the tick timer gone), and the interval is capped at half the
// watchdog period, so a tick that stalls or stops is noticed by systemd. A time or io source that
// cannot be set up (at start, reload or re-arming) stops the daemon with exit status 1.
#pragma once

#include "daemon.hpp"

namespace fragtune {

struct ServiceOptions {
    DaemonOptions daemon;
    bool bus = true;  // own org.fragtune1 on the system bus (DBUS_SYSTEM_BUS_ADDRESS honoured)
    std::string log_level;  // overrides daemon.log_level when set
};

// Runs until SIGTERM/SIGINT. Returns the process exit status: 0 after a clean stop, 1 when start-up
// failed (bad configuration, unreadable /proc), a loop source could not be set up, or the bus
// connection was lost (systemd restarts us).
int run_service(const ServiceOptions& options);

}  // namespace fragtune
