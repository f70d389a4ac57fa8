#include "notify.hpp"

#include <systemd/sd-daemon.h>

#include <string>

#include <fmt/format.h>

namespace fragtune::notify {

namespace {
void send(const std::string& s) {
    sd_notify(0, s.c_str());
}
}  // namespace

void ready(std::string_view st) {
    send(fmt::format("READY=1\nSTATUS={}", st));
}
void status(std::string_view st) {
    send(fmt::format("STATUS={}", st));
}
void reloading(uint64_t mono_usec) {
    send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}", mono_usec));
}
void stopping() {
    send("STOPPING=1\nSTATUS=stopping");
}
void watchdog() {
    send("WATCHDOG=1");
}

uint64_t watchdog_interval_usec() {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0) return 0;
    return usec / 2;
}

}  // namespace fragtune::notify
