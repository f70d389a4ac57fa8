#include "client.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>

#include <fmt/format.h>

#include <sdbus-c++/sdbus-c++.h>
#include <systemd/sd-event.h>

#include "event_bus.hpp"  // src/daemon: the sd-event glue shared with fragtuned

#include "fragtune/util/fd.hpp"
#include "fragtune/util/time.hpp"
#include "fragtune1_manager_proxy.hpp"  // generated from dbus/org.fragtune1.Manager.xml

namespace fragtune::ctl {
namespace {

constexpr const char* kBusName = "org.fragtune1";
constexpr const char* kObjectPath = "/org/fragtune1";

template <typename Wire>
TunableRow tunable_row(const Wire& w) {
    TunableRow r;
    r.name = w.template get<0>();
    if (w.template get<1>() >= 0) r.current = w.template get<1>();
    r.baseline = w.template get<2>();
    if (w.template get<3>() >= 0) r.original = w.template get<3>();
    r.min = w.template get<4>();
    r.max = w.template get<5>();
    r.state = w.template get<6>();
    r.reason = w.template get<7>();
    return r;
}

template <typename Wire>
HistoryRow history_row(const Wire& w) {
    return HistoryRow{w.template get<0>(), w.template get<1>(), w.template get<2>(),
                      w.template get<3>(), w.template get<4>(), w.template get<5>(),
                      w.template get<6>(), w.template get<7>()};
}

template <typename Wire>
ConflictRow conflict_row(const Wire& w) {
    return ConflictRow{w.template get<0>(), w.template get<1>(), w.template get<2>(),
                       w.template get<3>(), w.template get<4>()};
}

}  // namespace

// The generated proxy with its signal handlers forwarded to std::functions (set only by monitor).
class ManagerProxy final : public sdbus::ProxyInterfaces<org::fragtune1::Manager_proxy> {
  public:
    explicit ManagerProxy(sdbus::IConnection& connection)
        : ProxyInterfaces(connection, kBusName, kObjectPath) {}
    ~ManagerProxy() { unregisterProxy(); }
    ManagerProxy(const ManagerProxy&) = delete;
    ManagerProxy& operator=(const ManagerProxy&) = delete;

    void listen() { registerProxy(); }

    std::function<void(const std::string&, int64_t, int64_t, const std::string&,
                       const std::string&)>
        adjusted;
    std::function<void(int32_t, const std::string&, bool)> alloc_failure;
    std::function<void(const std::string&)> mode_changed;

  private:
    void onAdjusted(const std::string& knob, const int64_t& old, const int64_t& new_,
                    const std::string& rule, const std::string& reason) override {
        if (adjusted) adjusted(knob, old, new_, rule, reason);
    }
    void onAllocationFailure(const int32_t& order, const std::string& task,
                             const bool& atomic) override {
        if (alloc_failure) alloc_failure(order, task, atomic);
    }
    void onModeChanged(const std::string& mode) override {
        if (mode_changed) mode_changed(mode);
    }
};

std::unique_ptr<sdbus::IConnection> connect_system_bus(const std::string& address) {
    // sd-bus reads the system bus address from the environment, so --address is exactly
    // DBUS_SYSTEM_BUS_ADDRESS for this process (set before any thread exists).
    if (!address.empty()) setenv("DBUS_SYSTEM_BUS_ADDRESS", address.c_str(), 1);
    return sdbus::createSystemBusConnection();
}

Client::Client(sdbus::IConnection& connection)
    : proxy_(std::make_unique<ManagerProxy>(connection)) {}
Client::~Client() = default;

StatusView Client::status() {
    auto [version, mode, tick_usec, summary, tunables, signals, history, conflicts] =
        proxy_->GetStatus();
    StatusView st;
    st.version = std::move(version);
    st.mode = std::move(mode);
    st.tick_usec = tick_usec;
    st.summary = std::move(summary);
    for (const auto& t : tunables) st.tunables.push_back(tunable_row(t));
    st.signals = std::move(signals);
    for (const auto& h : history) st.history.push_back(history_row(h));
    for (const auto& c : conflicts) st.conflicts.push_back(conflict_row(c));
    return st;
}

std::vector<HistoryRow> Client::history(uint32_t max) {
    std::vector<HistoryRow> out;
    for (const auto& h : proxy_->GetHistory(max)) out.push_back(history_row(h));
    return out;
}

std::vector<TunableRow> Client::tunables() {
    std::vector<TunableRow> out;
    for (const auto& t : proxy_->Tunables()) out.push_back(tunable_row(t));
    return out;
}

std::string Client::explain(const std::string& knob) {
    return proxy_->Explain(knob);
}
void Client::set_mode(const std::string& mode) {
    proxy_->SetMode(mode);
}
void Client::pin(const std::string& knob) {
    proxy_->Pin(knob);
}
void Client::unpin(const std::string& knob) {
    proxy_->Unpin(knob);
}
void Client::restore() {
    proxy_->Restore();
}
std::vector<std::string> Client::reload() {
    return proxy_->Reload();
}

int monitor(sdbus::IConnection& connection, bool json, const FormatOptions& options) {
    auto print = [](const std::string& line) {
        std::fputs(line.c_str(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);  // live, also through a pipe
    };

    ManagerProxy proxy(connection);
    proxy.adjusted = [&](const std::string& knob, int64_t old_value, int64_t new_value,
                         const std::string& rule, const std::string& reason) {
        auto now = realtime_usec();
        print(json ? dump_json(adjusted_event_json(now, knob, old_value, new_value, rule, reason))
                   : format_adjusted_event(now, knob, old_value, new_value, rule, reason, options));
    };
    proxy.alloc_failure = [&](int32_t order, const std::string& task, bool atomic) {
        auto now = realtime_usec();
        print(json ? dump_json(alloc_failure_event_json(now, order, task, atomic))
                   : format_alloc_failure_event(now, order, task, atomic, options));
    };
    proxy.mode_changed = [&](const std::string& mode) {
        auto now = realtime_usec();
        print(json ? dump_json(mode_event_json(now, mode)) : format_mode_event(now, mode, options));
    };
    // Subscribe first, then check the daemon is there, so no event falls between the two.
    proxy.listen();
    // The bus delivers signals sent by whoever owns org.fragtune1, so a restarted daemon is
    // followed without re-subscribing; say so on stderr, which stays out of the event stream.
    auto owner_slot = connection.addMatch(
        fmt::format("type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                    "member='NameOwnerChanged',arg0='{}'",
                    kBusName),
        [](sdbus::Message& msg) {
            std::string name, old_owner, new_owner;
            msg >> name >> old_owner >> new_owner;
            if (new_owner.empty())
                std::fputs("fragtunectl: fragtuned stopped; waiting for it to come back\n", stderr);
            else
                std::fputs("fragtunectl: fragtuned started\n", stderr);
        });
    (void)proxy.Version();  // throws ServiceUnknown when fragtuned is not running

    // One sd-event loop: the bus through the same glue as fragtuned's (event_bus.hpp), and
    // SIGINT/SIGTERM as signal sources (blocked first, as sd_event_add_signal() requires).
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    sd_event* event = nullptr;
    int r = sd_event_new(&event);
    if (r < 0) {
        std::fprintf(stderr, "fragtunectl: sd_event_new: %s\n", std::strerror(-r));
        return 1;
    }
    int rc = 0;
    auto stop = [](sd_event_source* s, const signalfd_siginfo*, void*) -> int {
        return sd_event_exit(sd_event_source_get_event(s), 0);  // Ctrl-C or SIGTERM: a normal end
    };
    for (int sig : {SIGINT, SIGTERM}) {
        r = sd_event_add_signal(event, nullptr, sig, stop, nullptr);
        if (r < 0) {
            std::fprintf(stderr, "fragtunectl: sd_event_add_signal: %s\n", std::strerror(-r));
            sd_event_unref(event);
            return 1;
        }
    }
    std::string error;
    auto glue = EventBus::attach(
        event, connection,
        [&](const std::string& why) {
            std::fprintf(stderr, "fragtunectl: %s\n", why.c_str());
            rc = 1;
            (void)sd_event_exit(event, 1);
        },
        error);
    if (!glue) {
        std::fprintf(stderr, "fragtunectl: %s\n", error.c_str());
        sd_event_unref(event);
        return 1;
    }
    if (!json) std::fputs("Watching fragtuned; Ctrl-C to stop.\n", stderr);
    r = sd_event_loop(event);
    if (r < 0 && rc == 0) {
        std::fprintf(stderr, "fragtunectl: sd_event_loop: %s\n", std::strerror(-r));
        rc = 1;
    }
    glue.reset();
    sd_event_unref(event);
    return rc;
}

}  // namespace fragtune::ctl
