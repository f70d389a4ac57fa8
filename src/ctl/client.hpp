// fragtunectl's side of the bus: calls org.fragtune1.Manager through the generated proxy and
// unpacks the wire types into format.hpp's plain rows. Every call throws sdbus::Error on failure;
// main() turns the error into a message and an exit code with describe_bus_error().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format.hpp"

namespace sdbus {
class IConnection;
}

namespace fragtune::ctl {

class ManagerProxy;  // the generated proxy, in client.cpp

// Connection to the system bus: `address` when not empty, else DBUS_SYSTEM_BUS_ADDRESS, else the
// default system bus socket. Throws sdbus::Error.
std::unique_ptr<sdbus::IConnection> connect_system_bus(const std::string& address);

class Client {
  public:
    // No I/O: the first call talks to the bus.
    explicit Client(sdbus::IConnection& connection);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    StatusView status();
    std::vector<HistoryRow> history(uint32_t max);  // 0: all the daemon keeps
    std::vector<TunableRow> tunables();
    std::string explain(const std::string& knob);
    void set_mode(const std::string& mode);
    void pin(const std::string& knob);
    void unpin(const std::string& knob);
    void restore();
    // Notes on changed keys that need a restart (empty: everything was applied).
    std::vector<std::string> reload();

  private:
    std::unique_ptr<ManagerProxy> proxy_;
};

// `fragtunectl monitor`: prints Adjusted, AllocationFailure and ModeChanged events as they arrive
// (one JSON object per line with `json`) until SIGINT/SIGTERM; notes on stderr when fragtuned stops
// or starts. Returns the exit code: 0 after a signal, 1 when the bus connection is lost. Throws
// sdbus::Error when the daemon is not reachable at the start.
int monitor(sdbus::IConnection& connection, bool json, const FormatOptions& options);

}  // namespace fragtune::ctl
