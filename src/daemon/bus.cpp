#include "bus.hpp"

#include <poll.h>

#include <exception>
#include <limits>
#include <map>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sdbus-c++/sdbus-c++.h>

#include "fragtune/knobs/tunables.hpp"
#include "fragtune/util/utf8.hpp"
#include "fragtune1_manager_adaptor.hpp"  // generated from dbus/org.fragtune1.Manager.xml

namespace fragtune {
namespace {

// Wire types, as declared in the interface XML.
using TunableWire =
    sdbus::Struct<std::string, int64_t, int64_t, int64_t, int64_t, int64_t, std::string,
                  std::string>;  // a(sxxxxxss)
using HistoryWire = sdbus::Struct<uint64_t, std::string, std::string, int64_t, int64_t, std::string,
                                  std::string, bool>;  // a(tssxxssb)
using ConflictWire = sdbus::Struct<std::string, std::string, int32_t, int64_t, bool>;  // a(ssixb)
using SignalsWire = std::map<std::string, double>;

// How many changes GetStatus carries: enough for status's "recent changes", small enough to stay
// cheap.
constexpr size_t kStatusHistory = 10;

// Every string the daemon puts on the bus goes through here. D-Bus requires valid UTF-8 and sd-bus
// refuses to build a message with anything else (the signal is not sent, the caller not answered),
// but task names from the kernel log and file names in /etc/sysctl.d are arbitrary bytes: each
// invalid byte becomes U+FFFD (valid_utf8, the same repair the state file uses).
std::string bus_string(std::string_view s) {
    return valid_utf8(s);
}

std::string name_of(Knob k) {
    return std::string(spec(k).name);
}
std::string name_of(Action a) {
    return std::string(to_string(a));
}

std::vector<TunableWire> tunables_wire(const Daemon& d) {
    std::vector<TunableWire> out;
    for (const auto& t : d.tunables())
        out.emplace_back(bus_string(t.name), t.current.value_or(-1), t.baseline,
                         t.original.value_or(-1), t.min, t.max, bus_string(t.state),
                         bus_string(t.reason));
    return out;
}

std::vector<HistoryWire> history_wire(const Daemon& d, size_t max) {
    std::vector<HistoryWire> out;
    for (const auto& h : d.history(max))
        out.emplace_back(h.realtime_usec, name_of(h.knob), name_of(h.action), h.old_value,
                         h.new_value, bus_string(h.rule), bus_string(h.reason), h.applied);
    return out;
}

std::vector<ConflictWire> conflicts_wire(const Daemon& d) {
    std::vector<ConflictWire> out;
    for (const auto& c : d.conflicts())
        out.emplace_back(bus_string(c.knob), bus_string(c.file), c.line, c.value, c.overrides_ours);
    return out;
}

// `signals_not_sent`: D-Bus signals that could not be emitted so far (see ManagerAdaptor::emit).
SignalsWire signals_wire(const Daemon& d, uint64_t signals_not_sent) {
    SignalsWire out;
    out["dbus_signals_not_sent"] = static_cast<double>(signals_not_sent);
    for (const auto& [name, value] : d.signals()) out[bus_string(name)] = value;
    return out;
}

std::string valid_knob_names() {
    std::string out;
    for (const auto& t : kTunables) out += (out.empty() ? "" : ", ") + std::string(t.name);
    return out;
}

// Caller-supplied strings: bounded, then turned into a knob only through knob_from_name().
void check_length(std::string_view what, const std::string& value) {
    if (value.size() > kBusMaxArgBytes)
        throw sdbus::Error(kBusErrorInvalidArgument,
                           fmt::format("{} is {} bytes long; at most {} are accepted", what,
                                       value.size(), kBusMaxArgBytes));
}

Knob parse_knob(const std::string& name) {
    check_length("knob name", name);
    auto k = knob_from_name(name);
    if (!k)
        throw sdbus::Error(kBusErrorUnknownKnob, fmt::format("unknown knob \"{}\"; valid knobs: {}",
                                                             name, valid_knob_names()));
    return *k;
}

// A Daemon error as a D-Bus error reply.
[[noreturn]] void fail(const char* name, const Error& e) {
    throw sdbus::Error(name, bus_string(e.describe()));
}

}  // namespace

// The org.fragtune1.Manager object: D-Bus calls in, Daemon calls out; Daemon events in, signals
// out.
class ManagerAdaptor final : public sdbus::AdaptorInterfaces<org::fragtune1::Manager_adaptor>,
                             public DaemonListener {
  public:
    ManagerAdaptor(sdbus::IConnection& connection, Daemon& daemon)
        : AdaptorInterfaces(connection, kBusObjectPath), daemon_(daemon) {
        registerAdaptor();
        remember_properties();
        daemon_.set_listener(this);
    }
    ~ManagerAdaptor() override {
        daemon_.set_listener(nullptr);
        unregisterAdaptor();
    }
    ManagerAdaptor(const ManagerAdaptor&) = delete;
    ManagerAdaptor& operator=(const ManagerAdaptor&) = delete;

    // ---- DaemonListener: events to signals. Never throws into the daemon. ----------------------
    // Only written values: "Adjusted" must mean the knob changed. Refused and report-only decisions
    // (refuse, pin, failed writes) are in GetHistory with applied = false.
    void on_adjusted(const HistoryEntry& e) override {
        if (!e.applied) return;
        emit("Adjusted", [&] {
            emitAdjusted(name_of(e.knob), e.old_value, e.new_value, bus_string(e.rule),
                         bus_string(e.reason));
        });
    }
    void on_allocation_failure(const AllocFailure& f) override {
        emit("AllocationFailure",
             [&] { emitAllocationFailure(f.order, bus_string(f.task), f.atomic); });
    }
    void on_mode_changed(fragtune::Mode mode) override {
        emit("ModeChanged", [&] { emitModeChanged(std::string(to_string(mode))); });
        on_state_changed();
    }
    // PropertiesChanged for exactly the properties whose value differs from the last one announced,
    // so a quiet daemon is quiet on the bus (Signals changes most ticks; the rest rarely).
    void on_state_changed() override {
        emit("PropertiesChanged", [&] {
            std::vector<std::string> changed;
            auto update = [&changed](auto& last, auto now, const char* name) {
                if (last != now) {
                    last = std::move(now);
                    changed.emplace_back(name);
                }
            };
            update(last_mode_, std::string(to_string(daemon_.mode())), "Mode");
            update(last_tick_usec_, daemon_.tick_usec(), "TickUSec");
            update(last_tunables_, tunables_wire(daemon_), "Tunables");
            update(last_signals_, signals_wire(daemon_, signals_not_sent_), "Signals");
            update(last_conflicts_, conflicts_wire(daemon_), "Conflicts");
            if (!changed.empty()) getObject().emitPropertiesChangedSignal(INTERFACE_NAME, changed);
        });
    }

  private:
    // ---- properties ----------------------------------------------------------------------------
    std::string Mode() override { return std::string(to_string(daemon_.mode())); }
    std::string Version() override { return FRAGTUNE_VERSION; }
    uint64_t TickUSec() override { return daemon_.tick_usec(); }
    std::vector<TunableWire> Tunables() override { return tunables_wire(daemon_); }
    SignalsWire Signals() override { return signals_wire(daemon_, signals_not_sent_); }
    std::vector<ConflictWire> Conflicts() override { return conflicts_wire(daemon_); }

    // ---- read-only methods (open to every user) -------------------------------------------------
    std::tuple<std::string, std::string, uint64_t, std::string, std::vector<TunableWire>,
               SignalsWire, std::vector<HistoryWire>, std::vector<ConflictWire>>
    GetStatus() override {
        return guarded([&] {
            return std::make_tuple(std::string(FRAGTUNE_VERSION),
                                   std::string(to_string(daemon_.mode())), daemon_.tick_usec(),
                                   bus_string(daemon_.summary()), tunables_wire(daemon_),
                                   signals_wire(daemon_, signals_not_sent_),
                                   history_wire(daemon_, kStatusHistory), conflicts_wire(daemon_));
        });
    }
    std::vector<HistoryWire> GetHistory(const uint32_t& max) override {
        return guarded([&] {
            return history_wire(daemon_, max == 0 ? std::numeric_limits<size_t>::max() : max);
        });
    }
    std::string Explain(const std::string& knob) override {
        Knob k = parse_knob(knob);
        return guarded([&] {
            auto text = daemon_.explain(spec(k).name);
            if (!text) fail(kBusErrorFailed, text.error());
            return bus_string(*text);
        });
    }

    // ---- mutating methods (root only) -----------------------------------------------------------
    void SetMode(const std::string& mode) override {
        require_root("SetMode");
        check_length("mode", mode);
        auto m = mode_from_string(mode);
        if (!m)
            throw sdbus::Error(
                kBusErrorInvalidArgument,
                fmt::format("unknown mode \"{}\"; valid modes: active, observe, paused", mode));
        guarded([&] {
            if (auto r = daemon_.set_mode(*m); !r) fail(kBusErrorFailed, r.error());
        });
    }
    void Pin(const std::string& knob) override {
        require_root("Pin");
        Knob k = parse_knob(knob);
        guarded([&] {
            if (auto r = daemon_.pin(spec(k).name); !r) fail(kBusErrorFailed, r.error());
        });
    }
    void Unpin(const std::string& knob) override {
        require_root("Unpin");
        Knob k = parse_knob(knob);
        guarded([&] {
            if (auto r = daemon_.unpin(spec(k).name); !r) fail(kBusErrorFailed, r.error());
        });
    }
    void Restore() override {
        require_root("Restore");
        guarded([&] {
            if (auto r = daemon_.restore(); !r) fail(kBusErrorFailed, r.error());
        });
    }
    std::vector<std::string> Reload() override {
        require_root("Reload");
        return guarded([&] {
            auto r = daemon_.reload();
            if (!r) fail(kBusErrorConfigInvalid, r.error());
            std::vector<std::string> notes;
            for (const auto& n : *r) notes.push_back(bus_string(n));
            return notes;
        });
    }

    // Defence in depth behind the bus policy: the caller's uid as the bus daemon saw it at connect
    // time (SO_PEERCRED via GetConnectionCredentials), never anything the caller sent.
    void require_root(std::string_view method) {
        const sdbus::Message* call = getObject().getCurrentlyProcessedMessage();
        uid_t uid = static_cast<uid_t>(-1);
        std::string sender;
        try {
            sender = call->getSender();
            uid = call->getCredsUid();
        } catch (const sdbus::Error& e) {
            spdlog::warn("D-Bus {} from {} refused: cannot determine the caller's uid: {}", method,
                         sender, e.getMessage());
            throw sdbus::Error(
                kBusErrorAccessDenied,
                fmt::format("{} refused: cannot determine the caller's uid", method));
        }
        if (uid != 0) {
            spdlog::warn("D-Bus {} from {} (uid {}) refused: not root", method, sender, uid);
            throw sdbus::Error(kBusErrorAccessDenied,
                               fmt::format("{} changes fragtuned and needs root (caller uid {}): "
                                           "run fragtunectl as root",
                                           method, uid));
        }
        spdlog::info("D-Bus {} from {} (uid 0)", method, sender);
    }

    // sdbus-c++ turns only sdbus::Error into an error reply; anything else must not unwind through
    // sd-bus's C callbacks.
    template <typename F>
    auto guarded(F&& f) -> decltype(f()) {
        try {
            return f();
        } catch (const sdbus::Error&) {
            throw;
        } catch (const std::exception& e) {
            throw sdbus::Error(kBusErrorFailed,
                               bus_string(fmt::format("internal error: {}", e.what())));
        }
    }

    // A signal that cannot be sent (sd-bus refused to build it, the output queue is full) is lost
    // alone: logged and counted in the Signals property (dbus_signals_not_sent), never taken as a
    // lost connection, which only processing the bus can tell. Logged at the 1st, 2nd, 4th, 8th...
    // failure, so a persistent cause cannot flood the journal.
    template <typename F>
    void emit(const char* what, F&& f) noexcept {
        try {
            f();
        } catch (const std::exception& e) {
            ++signals_not_sent_;
            if ((signals_not_sent_ & (signals_not_sent_ - 1)) == 0)
                spdlog::warn("cannot emit the D-Bus signal {}: {} ({} signal(s) not sent so far)",
                             what, e.what(), signals_not_sent_);
        }
    }

    void remember_properties() {
        last_mode_ = std::string(to_string(daemon_.mode()));
        last_tick_usec_ = daemon_.tick_usec();
        last_tunables_ = tunables_wire(daemon_);
        last_signals_ = signals_wire(daemon_, signals_not_sent_);
        last_conflicts_ = conflicts_wire(daemon_);
    }

    Daemon& daemon_;
    uint64_t signals_not_sent_ = 0;
    // Last announced property values (see on_state_changed).
    std::string last_mode_;
    uint64_t last_tick_usec_ = 0;
    std::vector<TunableWire> last_tunables_;
    SignalsWire last_signals_;
    std::vector<ConflictWire> last_conflicts_;
};

Result<std::unique_ptr<BusService>> BusService::open(Daemon& daemon) {
    std::unique_ptr<BusService> service(new BusService());
    const char* address = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
    std::string where = address ? fmt::format("the system bus at {}", address) : "the system bus";
    try {
        service->connection_ = sdbus::createSystemBusConnection();
    } catch (const sdbus::Error& e) {
        return make_error(
            fmt::format("cannot connect to {}: {} (is dbus running?)", where, e.getMessage()));
    }
    try {
        service->adaptor_ = std::make_unique<ManagerAdaptor>(*service->connection_, daemon);
    } catch (const sdbus::Error& e) {
        return make_error(
            fmt::format("cannot export {} on {}: {}", kBusObjectPath, where, e.getMessage()));
    }
    try {
        service->connection_->requestName(kBusName);
    } catch (const sdbus::Error& e) {
        return make_error(fmt::format(
            "cannot own the name {} on {}: {}; is another fragtuned running, and is the bus policy "
            "org.fragtune1.conf installed in /usr/share/dbus-1/system.d (root owns the name)?",
            kBusName, where, e.getMessage()));
    }
    return service;
}

BusService::~BusService() {
    // The adaptor first: it detaches from the daemon and unexports the object while the connection
    // still exists.
    adaptor_.reset();
    connection_.reset();
}

}  // namespace fragtune
