// fragtuned on D-Bus: owns the bus connection, exports /org/fragtune1 (org.fragtune1.Manager,
// generated from dbus/org.fragtune1.Manager.xml) and requests the name org.fragtune1. The adaptor
// behind it is thin: each method becomes one Daemon call, each DaemonListener event one signal.
//
// No threads: the service's sd-event loop dispatches the connection (event_bus.hpp), so method
// handlers run on the loop's thread, like every other Daemon call.
//
// Losing the connection (the bus daemon restarted or died) is not recovered here: the dispatch
// reports it, the service exits non-zero and systemd restarts fragtuned (Restart=on-failure), which
// then owns the name on the new bus. A daemon that lived on without its name would be unreachable,
// so that is never an option.
#pragma once

#include <memory>
#include <string>

#include "daemon.hpp"
#include "fragtune/util/result.hpp"

namespace sdbus {
class IConnection;
}

namespace fragtune {

inline constexpr const char* kBusName = "org.fragtune1";
inline constexpr const char* kBusObjectPath = "/org/fragtune1";
inline constexpr const char* kBusInterface = "org.fragtune1.Manager";

// D-Bus error names returned by the adaptor (documented in the interface XML).
inline constexpr const char* kBusErrorInvalidArgument = "org.fragtune1.Error.InvalidArgument";
inline constexpr const char* kBusErrorUnknownKnob = "org.fragtune1.Error.UnknownKnob";
inline constexpr const char* kBusErrorAccessDenied = "org.fragtune1.Error.AccessDenied";
inline constexpr const char* kBusErrorFailed = "org.fragtune1.Error.Failed";
inline constexpr const char* kBusErrorConfigInvalid = "org.fragtune1.Error.ConfigInvalid";

// Longest string argument accepted from a caller (knob and mode names are far shorter).
inline constexpr size_t kBusMaxArgBytes = 64;

class ManagerAdaptor;

class BusService {
  public:
    // Connects to the system bus (sd-bus honours DBUS_SYSTEM_BUS_ADDRESS), exports the object,
    // makes itself the daemon's listener, then requests the name, so that no call can arrive before
    // the object exists. Errors say whether the bus was unreachable or the name was refused
    // (already owned by another fragtuned, or the bus policy org.fragtune1.conf is missing / we are
    // not root).
    static Result<std::unique_ptr<BusService>> open(Daemon& daemon);

    ~BusService();  // detaches from the daemon, unexports the object, closes the connection
    BusService(const BusService&) = delete;
    BusService& operator=(const BusService&) = delete;

    // The connection, for the service's sd-event loop (event_bus.hpp attaches it); method calls
    // run inside its dispatch, on the loop's thread.
    sdbus::IConnection& connection() { return *connection_; }

  private:
    BusService() = default;
    std::unique_ptr<sdbus::IConnection> connection_;
    std::unique_ptr<ManagerAdaptor> adaptor_;
};

}  // namespace fragtune
