// sd_notify for the service manager. All calls are no-ops when NOTIFY_SOCKET is unset (started by hand).
#pragma once

#include <cstdint>
#include <string_view>

namespace fragtune::notify {

void ready(std::string_view status);
void status(std::string_view status);
// RELOADING=1 with MONOTONIC_USEC (systemd >= 253 wants it for Type=notify-reload; older ignore it).
void reloading(uint64_t mono_usec);
void stopping();
void watchdog();
// Half the watchdog period systemd asked for (WATCHDOG_USEC for this pid), or 0 when disabled.
uint64_t watchdog_interval_usec();

}  // namespace fragtune::notify
