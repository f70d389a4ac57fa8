// The service: one thread, one poll() loop over a signalfd (TERM/INT stop, HUP reloads), a monotonic
// timerfd for the tick, a timerfd for the systemd watchdog, the kernel log and the bus. Talks to systemd
// with sd_notify (READY, STATUS, WATCHDOG, RELOADING, STOPPING).
#pragma once

#include "daemon.hpp"

namespace fragtune {

struct ServiceOptions {
    DaemonOptions daemon;
    bool bus = true;  // own org.fragtune1 on the system bus (DBUS_SYSTEM_BUS_ADDRESS honoured)
    std::string log_level;  // overrides daemon.log_level when set
};

// Runs until SIGTERM/SIGINT. Returns the process exit status: 0 after a clean stop, 1 when start-up
// failed (bad configuration, unreadable /proc) or the bus connection was lost (systemd restarts us).
int run_service(const ServiceOptions& options);

}  // namespace fragtune
