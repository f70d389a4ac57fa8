// The D-Bus API end to end: a private system-type dbus-daemon whose policy includes our real
// dbus/org.fragtune1.conf, the real fragtuned on a fixture root, and clients: sdbus-c++ proxies in
// this process, fragtunectl, and dbus-send as root and as nobody (setpriv). Needs root (the policy
// gives the name to root; setpriv); skipped otherwise.
#include <sys/types.h>
#include <unistd.h>

#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <sdbus-c++/sdbus-c++.h>
#include <systemd/sd-bus.h>
#include <nlohmann/json.hpp>

#include "daemon_harness.hpp"
#include "fragtune/knobs/tunables.hpp"
#include "process_util.hpp"

using namespace fragtune::testing;
using namespace std::chrono_literals;

namespace {

constexpr const char* kName = "org.fragtune1";
constexpr const char* kPath = "/org/fragtune1";
constexpr const char* kIface = "org.fragtune1.Manager";
constexpr int64_t kOriginalMinFree = 67584;  // tests/fixtures/live-6.18-vm
const std::vector<std::string> kKnobs = {
    "min_free_kbytes", "watermark_scale_factor", "compaction_proactiveness", "vfs_cache_pressure",
    "swappiness",      "watermark_boost_factor"};
const std::vector<std::string> kMutating = {"SetMode", "Pin", "Unpin", "Restore", "Reload"};

// The real policy, as the system bus would include it from /usr/share/dbus-1/system.d.
std::string real_policy() {
    return "<include>" + std::string(FRAGTUNE_SOURCE_DIR) + "/dbus/org.fragtune1.conf</include>";
}
// A policy that lets anyone own and call everything: only the daemon's own uid check is left.
const char* kPermissivePolicy = R"(<policy context="default">
    <allow own="org.fragtune1"/>
    <allow send_destination="org.fragtune1"/>
  </policy>)";

using TunableWire = sdbus::Struct<std::string, int64_t, int64_t, int64_t, int64_t, int64_t,
                                  std::string, std::string>;
using HistoryWire = sdbus::Struct<uint64_t, std::string, std::string, int64_t, int64_t, std::string,
                                  std::string, bool>;
using ConflictWire = sdbus::Struct<std::string, std::string, int32_t, int64_t, bool>;

// fragtuned on the private bus, on a fixture machine.
class DaemonOnBus {
  public:
    DaemonOnBus(const FixtureMachine& m, const PrivateSystemBus& bus,
                std::vector<std::string> extra = {"--mode", "observe"}) {
        std::vector<std::string> argv = {
            FRAGTUNED_BIN, "--root", m.root().string(), "--tick", "200ms", "--log-level", "debug"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        proc = std::make_unique<Process>(argv, std::vector<std::string>{bus.env()},
                                         m.scratch() / "daemon.log");
    }
    std::unique_ptr<Process> proc;
};

// An sdbus-c++ client of the private bus with a generic proxy, and signal collection.
class BusClient {
  public:
    explicit BusClient(const std::string& address) {
        // sd-bus takes the system bus address from the environment only.
        ::setenv("DBUS_SYSTEM_BUS_ADDRESS", address.c_str(), 1);
        conn = sdbus::createSystemBusConnection();
        proxy = sdbus::createProxy(*conn, kName, kPath);
    }

    template <typename T>
    T get(const std::string& property) {
        return proxy->getProperty(property).onInterface(kIface).get<T>();
    }

    // Dispatches incoming messages (signals) until `pred` holds or `timeout` passes.
    bool pump_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (!pred()) {
            if (std::chrono::steady_clock::now() >= end) return false;
            while (conn->processPendingRequest()) {
            }
            if (pred()) return true;
            auto pd = conn->getEventLoopPollData();
            pollfd pfd{pd.fd, static_cast<short>(pd.events), 0};
            ::poll(&pfd, 1, 50);
        }
        return true;
    }

    // The D-Bus error name of a call, "" when it succeeded.
    template <typename... Args>
    std::string call_error(const std::string& method, Args&&... args) {
        try {
            proxy->callMethod(method).onInterface(kIface).withArguments(
                std::forward<Args>(args)...);
            return "";
        } catch (const sdbus::Error& e) {
            last_error_message = e.getMessage();
            return e.getName();
        }
    }

    std::string state_of(const std::string& knob) {
        for (const auto& t : get<std::vector<TunableWire>>("Tunables"))
            if (t.get<0>() == knob) return t.get<6>();
        return "?";
    }

    std::unique_ptr<sdbus::IConnection> conn;
    std::unique_ptr<sdbus::IProxy> proxy;
    std::string last_error_message;
};

CommandResult ctl(const PrivateSystemBus& bus, std::vector<std::string> args, bool nobody = false) {
    args.insert(args.begin(), FRAGTUNECTL_BIN);
    return run_command(nobody ? as_nobody(args) : args, {bus.env(), "NO_COLOR="});
}

// dbus-send's error line for a method call ("" on success).
std::string dbus_send_error(const PrivateSystemBus& bus, const std::string& method,
                            std::vector<std::string> args, bool nobody) {
    std::vector<std::string> argv = {"/usr/bin/dbus-send",
                                     "--bus=" + bus.address(),
                                     "--print-reply",
                                     std::string("--dest=") + kName,
                                     kPath,
                                     std::string(kIface) + "." + method};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_command(nobody ? as_nobody(argv) : argv);
    return r.exit_code == 0 ? "" : r.err;
}

std::vector<std::string> args_for(const std::string& method) {
    if (method == "SetMode") return {"string:active"};
    if (method == "Pin" || method == "Unpin") return {"string:swappiness"};
    return {};
}
std::vector<std::string> ctl_args_for(const std::string& method) {
    if (method == "SetMode") return {"mode", "active"};
    if (method == "Pin") return {"pin", "swappiness"};
    if (method == "Unpin") return {"unpin", "swappiness"};
    if (method == "Restore") return {"restore"};
    return {"reload"};
}

class DbusTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root: the policy gives org.fragtune1 to root";
        if (::access("/usr/bin/dbus-daemon", X_OK) != 0 || ::access("/usr/bin/setpriv", X_OK) != 0)
            GTEST_SKIP() << "needs dbus-daemon and setpriv";
        ASSERT_STRNE(FRAGTUNECTL_BIN, "") << "fragtunectl was not built";
    }
};

// Starts a bus with `policy` and the daemon; asserts the daemon owns the name.
#define START(policy, ...)                            \
    FixtureMachine m;                                 \
    PrivateSystemBus bus(policy);                     \
    DaemonOnBus d(m, bus __VA_OPT__(, ) __VA_ARGS__); \
    ASSERT_TRUE(wait_for_name(bus.address(), kName)) << d.proc->log() << bus.log();

}  // namespace

TEST_F(DbusTest, EveryPropertyRoundTrips) {
    FixtureMachine m;
    // An administrator's file that sets one of our knobs after our 90-fragtune.conf: a conflict.
    write_text(m.path("/etc/sysctl.d/99-local.conf"), "# local\nvm.swappiness = 10\n");
    m.set_knob("swappiness", 10);
    PrivateSystemBus bus(real_policy());
    DaemonOnBus d(m, bus);
    ASSERT_TRUE(wait_for_name(bus.address(), kName)) << d.proc->log() << bus.log();
    BusClient c(bus.address());

    EXPECT_EQ(c.get<std::string>("Mode"), "observe");
    EXPECT_EQ(c.get<std::string>("Version"), FRAGTUNE_VERSION);
    EXPECT_EQ(c.get<uint64_t>("TickUSec"), 200'000u);

    auto tunables = c.get<std::vector<TunableWire>>("Tunables");
    ASSERT_EQ(tunables.size(), kKnobs.size());
    for (size_t i = 0; i < kKnobs.size(); ++i) {
        EXPECT_EQ(tunables[i].get<0>(), kKnobs[i]);
        EXPECT_EQ(tunables[i].get<1>(), m.knob(kKnobs[i])) << kKnobs[i];     // current = live value
        EXPECT_LE(tunables[i].get<4>(), tunables[i].get<5>()) << kKnobs[i];  // min <= max
    }
    EXPECT_EQ(tunables[0].get<1>(), kOriginalMinFree);
    EXPECT_EQ(tunables[0].get<3>(), kOriginalMinFree);  // original
    EXPECT_EQ(tunables[4].get<6>(), "conflict");

    auto signals = c.get<std::map<std::string, double>>("Signals");
    ASSERT_TRUE(signals.count("fragmentation_score")) << signals.size();
    EXPECT_GE(signals["fragmentation_score"], 0.0);
    EXPECT_LE(signals["fragmentation_score"], 100.0);

    auto conflicts = c.get<std::vector<ConflictWire>>("Conflicts");
    ASSERT_EQ(conflicts.size(), 1u);
    EXPECT_EQ(conflicts[0].get<0>(), "swappiness");
    EXPECT_EQ(conflicts[0].get<1>(), "/etc/sysctl.d/99-local.conf");
    EXPECT_EQ(conflicts[0].get<2>(), 2);
    EXPECT_EQ(conflicts[0].get<3>(), 10);
    EXPECT_TRUE(conflicts[0].get<4>());

    // Properties are read-only: Set is refused for root too.
    auto set = run_command({"/usr/bin/busctl", "--address=" + bus.address(), "set-property", kName,
                            kPath, kIface, "Mode", "s", "active"});
    EXPECT_NE(set.exit_code, 0) << set.out;
    EXPECT_EQ(c.get<std::string>("Mode"), "observe");
}

TEST_F(DbusTest, MethodsRoundTripAndReportErrorsByName) {
    START(real_policy());
    BusClient c(bus.address());
    bool mode_changed_signal = false;
    std::vector<std::string> changed_properties;
    c.proxy->uponSignal("ModeChanged").onInterface(kIface).call([&](const std::string& mode) {
        mode_changed_signal = mode_changed_signal || mode == "paused";
    });
    c.proxy->uponSignal("PropertiesChanged")
        .onInterface("org.freedesktop.DBus.Properties")
        .call([&](const std::string& iface, const std::map<std::string, sdbus::Variant>& changed,
                  const std::vector<std::string>&) {
            if (iface != kIface) return;
            for (const auto& [name, value] : changed) {
                changed_properties.push_back(name);
                if (name == "Mode") {
                    EXPECT_EQ(value.get<std::string>(), "paused");
                }
            }
        });
    c.proxy->finishRegistration();

    // GetStatus agrees with the properties.
    std::string version, mode, summary;
    uint64_t tick_usec = 0;
    std::vector<TunableWire> tunables;
    std::map<std::string, double> signals;
    std::vector<HistoryWire> history;
    std::vector<ConflictWire> conflicts;
    c.proxy->callMethod("GetStatus")
        .onInterface(kIface)
        .storeResultsTo(version, mode, tick_usec, summary, tunables, signals, history, conflicts);
    EXPECT_EQ(version, FRAGTUNE_VERSION);
    EXPECT_EQ(mode, "observe");
    EXPECT_EQ(tick_usec, 200'000u);
    EXPECT_NE(summary.find("observe"), std::string::npos) << summary;
    EXPECT_EQ(tunables.size(), kKnobs.size());
    EXPECT_FALSE(signals.empty());
    EXPECT_TRUE(history.empty());
    EXPECT_TRUE(conflicts.empty());

    // SetMode: the property, ModeChanged and PropertiesChanged(Mode).
    EXPECT_EQ(c.call_error("SetMode", std::string("paused")), "");
    EXPECT_EQ(c.get<std::string>("Mode"), "paused");
    EXPECT_TRUE(c.pump_until([&] {
        return mode_changed_signal &&
               std::find(changed_properties.begin(), changed_properties.end(), "Mode") !=
                   changed_properties.end();
    })) << "ModeChanged or PropertiesChanged(Mode) not received";
    EXPECT_EQ(c.call_error("SetMode", std::string("turbo")), "org.fragtune1.Error.InvalidArgument");
    EXPECT_NE(c.last_error_message.find("active, observe, paused"), std::string::npos);

    // Pin/Unpin take table and sysctl names; anything else is UnknownKnob with the valid names.
    EXPECT_EQ(c.call_error("Pin", std::string("vm.swappiness")), "");
    EXPECT_EQ(c.state_of("swappiness"), "pinned");
    EXPECT_EQ(c.call_error("Unpin", std::string("swappiness")), "");
    EXPECT_EQ(c.state_of("swappiness"), "tuning");
    EXPECT_EQ(c.call_error("Pin", std::string("drop_caches")), "org.fragtune1.Error.UnknownKnob");
    EXPECT_NE(c.last_error_message.find("min_free_kbytes"), std::string::npos);
    EXPECT_EQ(c.call_error("Pin", std::string("../../kernel/panic")),
              "org.fragtune1.Error.UnknownKnob");
    EXPECT_EQ(c.call_error("Unpin", std::string(1000, 'x')), "org.fragtune1.Error.InvalidArgument");
    EXPECT_NE(c.last_error_message.find("at most 64"), std::string::npos);

    // Explain.
    std::string text;
    c.proxy->callMethod("Explain")
        .onInterface(kIface)
        .withArguments(std::string("min_free_kbytes"))
        .storeResultsTo(text);
    EXPECT_NE(text.find("min_free_kbytes"), std::string::npos) << text;
    EXPECT_EQ(c.call_error("Explain", std::string("nope")), "org.fragtune1.Error.UnknownKnob");

    // GetHistory with nothing changed yet.
    std::vector<HistoryWire> entries;
    c.proxy->callMethod("GetHistory")
        .onInterface(kIface)
        .withArguments(uint32_t{0})
        .storeResultsTo(entries);
    EXPECT_TRUE(entries.empty());

    // Reload: a broken file is ConfigInvalid and names the file; the old configuration stays.
    m.config("[daemon]\ntick = \"not a duration\"\n");
    EXPECT_EQ(c.call_error("Reload"), "org.fragtune1.Error.ConfigInvalid");
    EXPECT_NE(c.last_error_message.find("fragtune.toml"), std::string::npos)
        << c.last_error_message;
    EXPECT_EQ(c.get<uint64_t>("TickUSec"), 200'000u);
    m.config("[daemon]\ntick = \"1s\"\n");
    EXPECT_EQ(c.call_error("Reload"), "") << c.last_error_message;

    // Restore: observe mode.
    EXPECT_EQ(c.call_error("Restore"), "") << c.last_error_message;
    EXPECT_EQ(c.get<std::string>("Mode"), "observe");
    EXPECT_TRUE(d.proc->running()) << d.proc->log();
}

TEST_F(DbusTest, AdjustedAndAllocationFailureSignalsMatchTheHistory) {
    START(real_policy(), {"--mode", "active"});
    BusClient c(bus.address());
    struct Adjusted {
        std::string knob, rule, reason;
        int64_t old_value, new_value;
    };
    std::vector<Adjusted> adjusted;
    std::vector<std::tuple<int32_t, std::string, bool>> failures;
    bool tunables_changed = false;
    c.proxy->uponSignal("Adjusted")
        .onInterface(kIface)
        .call([&](const std::string& knob, int64_t old_value, int64_t new_value,
                  const std::string& rule, const std::string& reason) {
            adjusted.push_back({knob, rule, reason, old_value, new_value});
        });
    c.proxy->uponSignal("AllocationFailure")
        .onInterface(kIface)
        .call([&](int32_t order, const std::string& task, bool atomic) {
            failures.emplace_back(order, task, atomic);
        });
    c.proxy->uponSignal("PropertiesChanged")
        .onInterface("org.freedesktop.DBus.Properties")
        .call([&](const std::string&, const std::map<std::string, sdbus::Variant>& changed,
                  const std::vector<std::string>&) {
            if (auto it = changed.find("Tunables"); it != changed.end()) {
                for (const auto& t : it->second.get<std::vector<TunableWire>>())
                    if (t.get<0>() == "min_free_kbytes" && t.get<1>() > kOriginalMinFree)
                        tunables_changed = true;
            }
        });
    c.proxy->finishRegistration();

    int seq = 1;
    ASSERT_TRUE(c.pump_until(
        [&] {
            if (!adjusted.empty()) return true;
            m.kernel_log_atomic_failure(seq++);
            return false;
        },
        15s))
        << d.proc->log();
    ASSERT_TRUE(c.pump_until([&] { return !failures.empty() && tunables_changed; }));

    EXPECT_EQ(std::get<0>(failures[0]), 1);
    EXPECT_EQ(std::get<1>(failures[0]), "swapper/0");
    EXPECT_TRUE(std::get<2>(failures[0]));

    auto it = std::find_if(adjusted.begin(), adjusted.end(),
                           [](const Adjusted& x) { return x.knob == "min_free_kbytes"; });
    ASSERT_NE(it, adjusted.end());
    const Adjusted& a = *it;
    EXPECT_EQ(a.old_value, kOriginalMinFree);
    EXPECT_GT(a.new_value, kOriginalMinFree);
    EXPECT_EQ(a.rule, "atomic-failures");
    EXPECT_NE(a.reason.find("atomic"), std::string::npos) << a.reason;

    // The same change, in GetHistory (all entries, oldest first; max 1 gives the newest only).
    std::vector<HistoryWire> entries;
    c.proxy->callMethod("GetHistory")
        .onInterface(kIface)
        .withArguments(uint32_t{0})
        .storeResultsTo(entries);
    auto h = std::find_if(entries.begin(), entries.end(), [&](const HistoryWire& e) {
        return e.get<1>() == a.knob && e.get<3>() == a.old_value && e.get<4>() == a.new_value;
    });
    ASSERT_NE(h, entries.end()) << entries.size();
    EXPECT_EQ(h->get<2>(), "raise");
    EXPECT_EQ(h->get<5>(), a.rule);
    EXPECT_EQ(h->get<6>(), a.reason);
    EXPECT_TRUE(h->get<7>());
    EXPECT_GT(h->get<0>(), 1'600'000'000'000'000u);  // realtime, microseconds
    std::vector<HistoryWire> newest;
    c.proxy->callMethod("GetHistory")
        .onInterface(kIface)
        .withArguments(uint32_t{1})
        .storeResultsTo(newest);
    ASSERT_EQ(newest.size(), 1u);
    EXPECT_EQ(newest[0], entries.back());

    // Someone else writes the knob: fragtuned pins it and records that (applied = false), but
    // Adjusted stays reserved for values fragtuned wrote.
    const size_t seen = adjusted.size();
    m.set_knob("min_free_kbytes", a.new_value + 4096);
    ASSERT_TRUE(c.pump_until([&] { return c.state_of("min_free_kbytes") == "pinned"; }))
        << d.proc->log();
    c.pump_until([] { return false; }, 500ms);
    for (size_t i = seen; i < adjusted.size(); ++i)
        EXPECT_NE(adjusted[i].knob, "min_free_kbytes") << adjusted[i].rule;
    c.proxy->callMethod("GetHistory")
        .onInterface(kIface)
        .withArguments(uint32_t{0})
        .storeResultsTo(entries);
    EXPECT_TRUE(std::any_of(entries.begin(), entries.end(), [](const HistoryWire& e) {
        return e.get<1>() == "min_free_kbytes" && e.get<2>() == "pin" && !e.get<7>();
    })) << entries.size();
}

TEST_F(DbusTest, NonRootReadsButCannotChange) {
    START(real_policy());
    for (const auto& read : std::vector<std::vector<std::string>>{{"status"},
                                                                  {"status", "--json"},
                                                                  {"history"},
                                                                  {"explain"},
                                                                  {"explain", "swappiness"}}) {
        auto r = ctl(bus, read, /*nobody=*/true);
        EXPECT_EQ(r.exit_code, 0) << read[0] << ": " << r.err;
    }
    auto status = ctl(bus, {"status"}, true);
    EXPECT_NE(status.out.find("min_free_kbytes"), std::string::npos) << status.out;
    // Properties too (Get, GetAll), and introspection.
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"/usr/bin/busctl", "--address=" + bus.address(), "get-property", kName, kPath, kIface,
              "Mode"},
             {"/usr/bin/dbus-send", "--bus=" + bus.address(), "--print-reply",
              std::string("--dest=") + kName, kPath, "org.freedesktop.DBus.Properties.GetAll",
              std::string("string:") + kIface},
             {"/usr/bin/busctl", "--address=" + bus.address(), "introspect", kName, kPath}}) {
        auto r = run_command(as_nobody(argv));
        EXPECT_EQ(r.exit_code, 0) << argv[1] << " " << argv[2] << ": " << r.err;
    }

    // Every mutating method: the bus policy refuses it before it reaches the daemon, and
    // fragtunectl says what to do.
    for (const auto& method : kMutating) {
        auto e = dbus_send_error(bus, method, args_for(method), /*nobody=*/true);
        EXPECT_NE(e.find("org.freedesktop.DBus.Error.AccessDenied"), std::string::npos)
            << method << ": " << e;
        auto r = ctl(bus, ctl_args_for(method), true);
        EXPECT_EQ(r.exit_code, 1) << method;
        EXPECT_NE(r.err.find("permission denied: run as root"), std::string::npos) << r.err;
    }
    BusClient c(bus.address());
    EXPECT_EQ(c.get<std::string>("Mode"), "observe");
    EXPECT_EQ(c.state_of("swappiness"), "tuning");
}

TEST_F(DbusTest, TheDaemonRefusesNonRootEvenWhenThePolicyAllowsIt) {
    START(kPermissivePolicy);
    for (const auto& method : kMutating) {
        auto e = dbus_send_error(bus, method, args_for(method), /*nobody=*/true);
        EXPECT_NE(e.find("org.fragtune1.Error.AccessDenied"), std::string::npos)
            << method << ": " << e;
        EXPECT_NE(e.find("uid 65534"), std::string::npos) << e;
        auto r = ctl(bus, ctl_args_for(method), true);
        EXPECT_EQ(r.exit_code, 1) << method;
        EXPECT_NE(r.err.find("permission denied: run as root"), std::string::npos) << r.err;
    }
    // Root is let through by the same check.
    EXPECT_EQ(dbus_send_error(bus, "Pin", {"string:swappiness"}, false), "");
    BusClient c(bus.address());
    EXPECT_EQ(c.state_of("swappiness"), "pinned");
    EXPECT_EQ(c.get<std::string>("Mode"), "observe");
    EXPECT_NE(d.proc->log().find("uid 65534) refused"), std::string::npos) << d.proc->log();
}

TEST_F(DbusTest, FragtunectlOutputOnTheRunningDaemon) {
    START(real_policy());
    auto r = ctl(bus, {});  // no command: status
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind(
                  std::string("fragtuned ") + FRAGTUNE_VERSION + ", mode observe, tick 200ms\n", 0),
              0u)
        << r.out;
    EXPECT_EQ(r.out.find("\x1b["), std::string::npos);  // not a terminal: no colour
    EXPECT_NE(r.out.find("KNOB"), std::string::npos);
    EXPECT_NE(r.out.find("\nmin_free_kbytes           67584     67584     67584  67584.."),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("Recent changes\n  none yet\n"), std::string::npos) << r.out;

    r = ctl(bus, {"status", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["mode"], "observe");
    EXPECT_EQ(j["tick_usec"], 200000);
    ASSERT_EQ(j["tunables"].size(), kKnobs.size());
    EXPECT_EQ(j["tunables"][0]["name"], "min_free_kbytes");
    EXPECT_EQ(j["tunables"][0]["current"], kOriginalMinFree);
    EXPECT_TRUE(j["signals"].contains("fragmentation_score"));
    EXPECT_EQ(nlohmann::json::parse(ctl(bus, {"--json"}).out)["mode"], "observe");

    r = ctl(bus, {"explain"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const auto& k : kKnobs)
        EXPECT_NE(r.out.find(k + " (vm." + k + ")\n"), std::string::npos) << k;
    r = ctl(bus, {"explain", "vm.swappiness", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 1u) << r.out;
    EXPECT_NE(j["swappiness"].get<std::string>().find("swappiness"), std::string::npos) << r.out;

    // Changes through fragtunectl show up in status and history.
    ASSERT_EQ(ctl(bus, {"mode", "active"}).exit_code, 0);
    ASSERT_EQ(ctl(bus, {"pin", "swappiness"}).exit_code, 0);
    r = ctl(bus, {"status"});
    EXPECT_NE(r.out.find("mode active"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("pinned"), std::string::npos) << r.out;
    int seq = 1;
    ASSERT_TRUE(wait_for([&] {
        m.kernel_log_atomic_failure(seq++);
        return m.knob("min_free_kbytes") > kOriginalMinFree;
    })) << d.proc->log();
    ASSERT_TRUE(wait_for([&] {
        r = ctl(bus, {"history", "--json"});
        return r.exit_code == 0 && !nlohmann::json::parse(r.out).empty();
    }));
    j = nlohmann::json::parse(r.out);
    EXPECT_TRUE(std::any_of(j.begin(), j.end(), [](const nlohmann::json& e) {
        return e["knob"] == "min_free_kbytes" && e["old"] == kOriginalMinFree &&
               e["applied"] == true;
    })) << r.out;
    r = ctl(bus, {"history", "-n", "1", "--utc"});
    EXPECT_NE(r.out.find(" vm.min_free_kbytes 67584 -> "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("[raise: atomic-failures]"), std::string::npos) << r.out;

    // Usage errors are 2 and reach no daemon; --address works without the environment variable.
    EXPECT_EQ(ctl(bus, {"pin", "drop_caches"}).exit_code, 2);
    EXPECT_EQ(ctl(bus, {"mode", "turbo"}).exit_code, 2);
    EXPECT_EQ(ctl(bus, {"frobnicate"}).exit_code, 2);
    auto addr = run_command({FRAGTUNECTL_BIN, "--address", bus.address(), "status", "--json"},
                            {"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent"});
    EXPECT_EQ(addr.exit_code, 0) << addr.err;
}

TEST_F(DbusTest, MonitorPrintsEventsUntilInterrupted) {
    START(real_policy(), {"--mode", "active"});
    Process mon({FRAGTUNECTL_BIN, "monitor", "--json"}, {bus.env()}, m.scratch() / "monitor.log");
    // The monitor is subscribed once it has asked for the Version property; give it that moment.
    ASSERT_TRUE(wait_for([&] { return mon.running(); }));
    std::this_thread::sleep_for(300ms);
    ASSERT_EQ(ctl(bus, {"mode", "observe"}).exit_code, 0);
    ASSERT_EQ(ctl(bus, {"mode", "active"}).exit_code, 0);
    int seq = 1;
    ASSERT_TRUE(wait_for([&] {
        m.kernel_log_atomic_failure(seq++);
        return mon.log().find("\"Adjusted\"") != std::string::npos;
    })) << mon.log()
        << d.proc->log();

    // A restarted daemon is followed: a note on stderr, and its events keep coming.
    d.proc->signal(SIGTERM);
    ASSERT_EQ(d.proc->wait(), 0) << d.proc->log();
    DaemonOnBus again(m, bus, {"--mode", "active"});
    ASSERT_TRUE(wait_for_name(bus.address(), kName)) << again.proc->log();
    ASSERT_EQ(ctl(bus, {"mode", "paused"}).exit_code, 0);
    ASSERT_TRUE(wait_for([&] { return mon.log().find("\"paused\"") != std::string::npos; }))
        << mon.log();

    mon.signal(SIGINT);
    EXPECT_EQ(mon.wait(), 0) << mon.log();

    // The log holds stdout and stderr: the notes are on stderr, prefixed; the rest is the event
    // stream.
    const std::string log = mon.log();
    EXPECT_NE(log.find("fragtunectl: fragtuned stopped"), std::string::npos) << log;
    EXPECT_NE(log.find("fragtunectl: fragtuned started"), std::string::npos) << log;
    std::vector<std::string> events;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("fragtunectl: ", 0) == 0) continue;
        auto j = nlohmann::json::parse(line);  // every line is one JSON object
        events.push_back(j["event"]);
        if (j["event"] == "AllocationFailure") {
            EXPECT_EQ(j["order"], 1);
            EXPECT_EQ(j["atomic"], true);
        }
    }
    ASSERT_GE(events.size(), 4u) << mon.log();
    EXPECT_EQ(events[0], "ModeChanged");
    EXPECT_EQ(events[1], "ModeChanged");
    EXPECT_NE(std::find(events.begin(), events.end(), "AllocationFailure"), events.end());
    EXPECT_NE(std::find(events.begin(), events.end(), "Adjusted"), events.end());
    EXPECT_EQ(events.back(), "ModeChanged");  // from the restarted daemon
}

// fragtuned.service's ExecReload: `systemctl reload` is only as truthful as this exit status. The
// call returns after the daemon has read the file; a rejected file is exit 1 with file:line, and
// the previous configuration keeps running.
TEST_F(DbusTest, FragtunectlReloadWaitsForTheAnswerAndFailsOnARejectedFile) {
    START(real_policy());
    m.config("[daemon]\ntick = \"1s\"\n");
    auto r = ctl(bus, {"reload"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    // Answered after the reload: the daemon has logged it by the time fragtunectl returns.
    EXPECT_NE(d.proc->log().find("configuration reloaded from "), std::string::npos)
        << d.proc->log();

    m.config("[daemon]\ntick = \"1s\"\nhistory_size = \"many\"\n");
    r = ctl(bus, {"reload"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("the configuration has errors"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("fragtune.toml:3:"), std::string::npos) << r.err;
    EXPECT_TRUE(d.proc->running()) << d.proc->log();
    // The next valid file is taken again.
    m.config("[daemon]\ntick = \"2s\"\n");
    EXPECT_EQ(ctl(bus, {"reload"}).exit_code, 0);
}

TEST_F(DbusTest, NotRunningIsExitCode3) {
    PrivateSystemBus bus(real_policy());
    auto r = ctl(bus, {"status"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.err, "fragtunectl: fragtuned is not running: systemctl start fragtuned\n");
    EXPECT_EQ(ctl(bus, {"monitor"}).exit_code, 3);
    EXPECT_EQ(ctl(bus, {"pin", "swappiness"}).exit_code, 3);
    // No bus at all is a failure that says so.
    r = run_command({FRAGTUNECTL_BIN, "--address", "unix:path=/nonexistent/bus", "status"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("cannot connect to the D-Bus system bus"), std::string::npos) << r.err;
}

TEST_F(DbusTest, ASecondDaemonCannotTakeTheName) {
    START(real_policy());
    FixtureMachine m2;
    DaemonOnBus d2(m2, bus, {"--mode", "observe", "--on-exit", "restore"});
    EXPECT_EQ(d2.proc->wait(), 1) << d2.proc->log();
    EXPECT_NE(d2.proc->log().find("cannot own the name org.fragtune1"), std::string::npos)
        << d2.proc->log();
    EXPECT_TRUE(d.proc->running());
    // It tuned nothing, so it runs no shutdown: no on_exit restore, no persisted file.
    EXPECT_FALSE(fs::exists(m2.path("/etc/sysctl.d/90-fragtune.conf")));
    EXPECT_EQ(d2.proc->log().find("fragtuned stopped"), std::string::npos) << d2.proc->log();
}

// The same machine (same state file) a second time: the instance lock refuses it before the bus,
// so it never runs a shutdown (on_exit restore) under the running daemon and changes nothing.
TEST_F(DbusTest, ASecondDaemonOnTheSameMachineFailsAtTheLockAndChangesNothing) {
    START(real_policy(), {"--mode", "active"});
    int seq = 1;
    ASSERT_TRUE(wait_for([&] {
        m.kernel_log_atomic_failure(seq++);
        std::this_thread::sleep_for(80ms);
        return m.knob("min_free_kbytes") > kOriginalMinFree;
    })) << d.proc->log();
    ASSERT_TRUE(wait_for([&] {
        return read_text(m.path("/var/lib/fragtune/state.toml")).find("atomic") !=
               std::string::npos;
    }));
    const auto before = machine_files(m);
    Process second({FRAGTUNED_BIN, "--root", m.root().string(), "--tick", "200ms", "--mode",
                    "active", "--on-exit", "restore"},
                   {bus.env()}, m.scratch() / "second.log");
    EXPECT_EQ(second.wait(), 1) << second.log();
    EXPECT_NE(second.log().find("another fragtuned (pid " + std::to_string(d.proc->pid()) +
                                ") holds /var/lib/fragtune/state.toml.lock"),
              std::string::npos)
        << second.log();
    EXPECT_EQ(second.log().find("cannot own the name"), std::string::npos) << second.log();
    EXPECT_EQ(machine_files(m), before);
    EXPECT_TRUE(d.proc->running());
    EXPECT_TRUE(name_has_owner(bus.address(), kName));
}

// Bytes that are not UTF-8 reach the daemon as a task name from the kernel log: the signal is
// sent with each bad byte as U+FFFD, the daemon keeps running and answers.
TEST_F(DbusTest, ATaskNameThatIsNotUtf8ArrivesSanitized) {
    START(real_policy());
    BusClient c(bus.address());
    std::vector<std::string> tasks;
    c.proxy->uponSignal("AllocationFailure")
        .onInterface(kIface)
        .call([&](int32_t, const std::string& task, bool) { tasks.push_back(task); });
    c.proxy->finishRegistration();
    append_text(m.path("/dev/kmsg"),
                "4,1,1000000,-;w\xff\xfe"
                "rk\xc3: page allocation failure: order:1, "
                "mode:0xa20(GFP_ATOMIC), nodemask=(null),cpuset=/,mems_allowed=0\n");
    ASSERT_TRUE(c.pump_until([&] { return !tasks.empty(); })) << d.proc->log();
    EXPECT_EQ(tasks[0], "w\xEF\xBF\xBD\xEF\xBF\xBDrk\xEF\xBF\xBD");
    // Still there, still answering (the next ticks' signals and calls).
    c.pump_until([] { return false; }, 600ms);
    EXPECT_TRUE(d.proc->running()) << d.proc->log();
    EXPECT_EQ(c.call_error("GetStatus"), "") << c.last_error_message;
    // Nothing was lost on the way: the count of signals that could not be sent stays 0.
    auto signals = c.get<std::map<std::string, double>>("Signals");
    ASSERT_TRUE(signals.count("dbus_signals_not_sent"));
    EXPECT_EQ(signals["dbus_signals_not_sent"], 0.0);
    auto r = ctl(bus, {"status"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(d.proc->log().find("lost the bus"), std::string::npos) << d.proc->log();
}

// A sysctl.d file whose name is not UTF-8 sets one of our knobs: the Conflicts property, the
// status reason in Tunables and GetStatus all answer, with the name sanitized.
TEST_F(DbusTest, ASysctlFileNameThatIsNotUtf8IsSanitizedInEveryReply) {
    FixtureMachine m;
    write_text(m.path("/etc/sysctl.d/99-loc\xe9l.conf"), "vm.swappiness = 10\n");
    m.set_knob("swappiness", 10);
    PrivateSystemBus bus(real_policy());
    DaemonOnBus d(m, bus);
    ASSERT_TRUE(wait_for_name(bus.address(), kName)) << d.proc->log() << bus.log();
    BusClient c(bus.address());
    const std::string sanitized = "/etc/sysctl.d/99-loc\xEF\xBF\xBDl.conf";
    auto conflicts = c.get<std::vector<ConflictWire>>("Conflicts");
    ASSERT_EQ(conflicts.size(), 1u);
    EXPECT_EQ(conflicts[0].get<1>(), sanitized);
    bool reason_named = false;
    for (const auto& t : c.get<std::vector<TunableWire>>("Tunables"))
        if (t.get<0>() == "swappiness")
            reason_named = t.get<7>().find(sanitized) != std::string::npos;
    EXPECT_TRUE(reason_named);
    EXPECT_EQ(c.call_error("GetStatus"), "") << c.last_error_message;
    std::string text;
    c.proxy->callMethod("Explain")
        .onInterface(kIface)
        .withArguments(std::string("swappiness"))
        .storeResultsTo(text);
    EXPECT_NE(text.find(sanitized), std::string::npos) << text;
    auto r = ctl(bus, {"--json", "status"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(d.proc->running());
}

// A drop-in whose file name is not UTF-8 and whose content is wrong: the ConfigInvalid reply is
// built (the name sanitized) and the caller is answered.
TEST_F(DbusTest, AReloadErrorNamingANonUtf8DropInIsAnswered) {
    START(real_policy());
    write_text(m.path("/etc/fragtune/fragtune.toml.d/50-\xff.toml"), "[daemon]\ntick = 7\n");
    BusClient c(bus.address());
    EXPECT_EQ(c.call_error("Reload"), "org.fragtune1.Error.ConfigInvalid") << c.last_error_message;
    EXPECT_NE(c.last_error_message.find("50-\xEF\xBF\xBD.toml"), std::string::npos)
        << c.last_error_message;
    auto r = ctl(bus, {"reload"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("50-\xEF\xBF\xBD.toml"), std::string::npos) << r.out << r.err;
    EXPECT_TRUE(d.proc->running());
}

// Reload's reply lists the changed keys that need a restart; fragtunectl prints them.
TEST_F(DbusTest, ReloadRepliesWithTheKeysThatNeedARestart) {
    START(real_policy());
    m.config("[signals]\nkernel_log = false\n");
    auto r = ctl(bus, {"reload"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("reload: signals.kernel_log changed from true to false: needs a restart"),
              std::string::npos)
        << r.out << r.err;
    m.config("[signals]\nkernel_log = false\nkmsg_path = \"/run/other-kmsg\"\n");
    BusClient c(bus.address());
    std::vector<std::string> notes;
    c.proxy->callMethod("Reload").onInterface(kIface).storeResultsTo(notes);
    ASSERT_EQ(notes.size(), 2u);
    EXPECT_EQ(notes[1],
              "signals.kmsg_path changed from \"/dev/kmsg\" to \"/run/other-kmsg\": needs a "
              "restart (systemctl restart fragtuned); \"/dev/kmsg\" stays in force until then");
    m.config("");
    std::vector<std::string> none;
    c.proxy->callMethod("Reload").onInterface(kIface).storeResultsTo(none);
    EXPECT_TRUE(none.empty()) << none.size();
}

TEST_F(DbusTest, NonRootCannotOwnTheName) {
    FixtureMachine m;
    PrivateSystemBus bus(real_policy());
    // The fixture machine belongs to nobody, so the daemon gets as far as the bus.
    ::lchown(m.scratch().c_str(), 65534, 65534);
    for (const auto& e : fs::recursive_directory_iterator(m.scratch()))
        ::lchown(e.path().c_str(), 65534, 65534);
    auto r =
        run_command(as_nobody({FRAGTUNED_BIN, "--root", m.root().string(), "--mode", "observe"}),
                    {bus.env()}, 10s);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE((r.out + r.err).find("cannot own the name org.fragtune1"), std::string::npos)
        << r.out << r.err;
    EXPECT_FALSE(name_has_owner(bus.address(), kName));
}

// A client that keeps the daemon's queue full must not stop its ticks (and so its watchdog): the
// bus is dispatched a bounded number of messages at a time, below the tick's priority. Four
// connections keep 64 GetStatus calls each in flight (under dbus-daemon's 128 pending replies per
// connection), answering every reply with a new call, until the daemon has ticked 3 more times.
// Through a real dbus-daemon on this 2-core VM the daemon caught up between messages even without
// the bound (also with 16 connections), so this guards the property, ticks under a flood, rather
// than reproducing the starvation the bound prevents.
TEST_F(DbusTest, AFloodOfCallsDoesNotStopTheTicks) {
    START(real_policy());
    auto ticks = [&] {
        const std::string log = d.proc->log();
        size_t n = 0;
        for (size_t p = log.find("tick at "); p != std::string::npos;
             p = log.find("tick at ", p + 1))
            ++n;
        return n;
    };
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> replies{0}, errors{0};
    std::vector<std::thread> flooders;
    for (int c = 0; c < 4; ++c) {
        flooders.emplace_back([&] {
            sd_bus* b = nullptr;
            if (sd_bus_new(&b) < 0 || sd_bus_set_address(b, bus.address().c_str()) < 0 ||
                sd_bus_set_bus_client(b, 1) < 0 || sd_bus_start(b) < 0) {
                ++errors;
                sd_bus_unref(b);
                return;
            }
            struct Window {
                int in_flight = 0;
                std::atomic<uint64_t>* replies;
                std::atomic<uint64_t>* errors;
            } w{0, &replies, &errors};
            auto on_reply = [](sd_bus_message* reply, void* ud, sd_bus_error*) -> int {
                auto* win = static_cast<Window*>(ud);
                --win->in_flight;
                if (sd_bus_message_is_method_error(reply, nullptr))
                    ++*win->errors;
                else
                    ++*win->replies;
                return 0;
            };
            while (!stop) {
                while (w.in_flight < 64) {
                    if (sd_bus_call_method_async(b, nullptr, kName, kPath, kIface, "GetStatus",
                                                 on_reply, &w, "") < 0) {
                        ++errors;
                        stop = true;
                        break;
                    }
                    ++w.in_flight;
                }
                int r = sd_bus_process(b, nullptr);
                if (r < 0) {
                    ++errors;
                    break;
                }
                if (r == 0) (void)sd_bus_wait(b, 50'000);
            }
            sd_bus_flush_close_unref(b);
        });
    }
    // The flood is on before the ticks are counted.
    for (int i = 0; i < 1200 && replies == 0 && errors == 0; ++i) std::this_thread::sleep_for(50ms);
    const size_t before = ticks();
    size_t after = before;
    // Backstop only (a failure, never the expected path): the 200 ms tick must go on meanwhile.
    for (int i = 0; i < 600 && after < before + 3 && errors == 0; ++i) {
        std::this_thread::sleep_for(200ms);
        after = ticks();
    }
    const bool flooding = !stop;
    stop = true;
    for (auto& t : flooders) t.join();
    EXPECT_TRUE(flooding);
    EXPECT_EQ(errors.load(), 0u) << d.proc->log().substr(0, 4000);
    EXPECT_GT(replies.load(), 0u);
    EXPECT_GE(after, before + 3) << replies.load() << " replies; the ticks stopped under the flood";
}

TEST_F(DbusTest, LosingTheBusStopsTheDaemonNonZero) {
    START(real_policy());
    bus.stop();
    const int rc = d.proc->wait(10s);
    EXPECT_NE(rc, 0) << d.proc->log();
    EXPECT_NE(rc, -1) << "still running (or killed) without its bus name\n" << d.proc->log();
    EXPECT_NE(d.proc->log().find("lost the bus"), std::string::npos) << d.proc->log();
    // A new bus at the same address: nobody owns the name (systemd would restart fragtuned).
    bus.start();
    EXPECT_FALSE(name_has_owner(bus.address(), kName));
}

// fragtunectl(1) and the bash completion stay true to `fragtunectl --help`: every command and every
// option of every command is documented and completed, and the completion offers exactly the knobs.
namespace {

std::string plain_roff(std::string text) {
    text = std::regex_replace(text, std::regex("\\\\-"), "-");
    return std::regex_replace(text, std::regex("\\\\f[BIRP]"), "");
}

std::set<std::string> matches(const std::string& text, const std::string& pattern, int group = 0) {
    std::set<std::string> out;
    std::regex re(pattern);
    for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it)
        out.insert((*it)[group].str());
    return out;
}

// What the completion function offers for the words (the last one being completed).
std::set<std::string> complete(const std::vector<std::string>& words) {
    std::string script =
        "source " + std::string(FRAGTUNE_SOURCE_DIR) + "/completion/fragtunectl.bash\nCOMP_WORDS=(";
    for (const auto& w : words) script += "'" + w + "' ";
    script += ")\nCOMP_CWORD=" + std::to_string(words.size() - 1) +
              "\n_fragtunectl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n";
    auto r = run_command({"/bin/bash", "--norc", "-c", script});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return matches(r.out, "[^\\n]+");
}

}  // namespace

TEST(FragtunectlDocs, ManPageAndCompletionCoverEveryCommandAndOption) {
    ASSERT_STRNE(FRAGTUNECTL_BIN, "");
    auto help = run_command({FRAGTUNECTL_BIN, "--help"});
    ASSERT_EQ(help.exit_code, 0);
    const auto subcommands_text = help.out.substr(help.out.find("Subcommands:"));
    const auto commands = matches(subcommands_text, "\\n  ([a-z]+) ", 1);
    ASSERT_EQ(commands.size(), 9u) << help.out;

    std::ifstream in(std::string(FRAGTUNE_SOURCE_DIR) + "/man/fragtunectl.1");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string page = plain_roff(ss.str());
    const std::string man_commands = page.substr(
        page.find(".SH COMMANDS"), page.find(".SH OPTIONS") - page.find(".SH COMMANDS"));

    EXPECT_EQ(complete({"fragtunectl", ""}), commands);
    auto global_options = matches(help.out, "--[a-z][a-z-]*");
    for (const auto& o : global_options) {
        EXPECT_TRUE(std::regex_search(page, std::regex("\\n\\.(B|BI|BR)[^\\n]*" + o + "\\b")))
            << o << " is in --help but not an option entry in fragtunectl.1";
        EXPECT_TRUE(complete({"fragtunectl", "--"}).count(o)) << o;
    }
    for (const auto& c : commands) {
        EXPECT_TRUE(
            std::regex_search(man_commands, std::regex("\\n\\.(B|BI|BR)[^\\n]*\\b" + c + "\\b")))
            << c << " has no entry under COMMANDS in fragtunectl.1";
        auto sub = run_command({FRAGTUNECTL_BIN, c, "--help"});
        ASSERT_EQ(sub.exit_code, 0) << c;
        const auto offered = complete({"fragtunectl", c, "-"});
        for (const auto& o : matches(sub.out, "(^|[ ,])(-[a-z]|--[a-z][a-z-]*)", 2)) {
            if (o == "-h" || o == "--help") continue;
            EXPECT_TRUE(std::regex_search(page, std::regex("\\n\\.(B|BI|BR)[^\\n]*" + o + "\\b")))
                << c << " " << o << " is not an option entry in fragtunectl.1";
            EXPECT_TRUE(offered.count(o)) << "completion of `" << c << " -` lacks " << o;
        }
    }
    std::set<std::string> knobs;
    for (const auto& t : fragtune::kTunables) knobs.insert(std::string(t.name));
    for (const std::string c : {"pin", "unpin", "explain"})
        EXPECT_EQ(complete({"fragtunectl", c, ""}), knobs) << c;
    EXPECT_EQ(complete({"fragtunectl", "mode", ""}),
              (std::set<std::string>{"active", "observe", "paused"}));
    // Exit codes in the page are the ones the program uses.
    for (const char* code : {"\n.B 0\n", "\n.B 1\n", "\n.B 2\n", "\n.B 3\n"})
        EXPECT_NE(page.find(code), std::string::npos) << code;
}
