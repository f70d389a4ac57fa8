// fragtunectl entry point: parses arguments, calls fragtuned over D-Bus (client.hpp) and prints
// with the pure functions of format.hpp. Exit codes: 0 ok, 1 failure, 2 usage, 3 fragtuned not
// running.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <sdbus-c++/Error.h>
#include <sdbus-c++/IConnection.h>
#include <CLI/CLI.hpp>

#include "client.hpp"
#include "format.hpp"
#include "fragtune/knobs/tunables.hpp"

using namespace fragtune;
using namespace fragtune::ctl;

namespace {

void out(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
}

void err(const std::string& text) {
    std::fputs("fragtunectl: ", stderr);
    std::fputs(text.c_str(), stderr);
    std::fputc('\n', stderr);
}

std::string knob_list() {
    std::string s;
    for (const auto& t : kTunables) s += (s.empty() ? "" : ", ") + std::string(t.name);
    return s;
}

// CLI11 validator: a knob name fragtune knows (table or sysctl name), checked before any bus
// traffic.
CLI::Validator knob_validator() {
    return CLI::Validator(
        [](std::string& value) -> std::string {
            if (knob_from_name(value)) return {};
            return "unknown knob \"" + value + "\"; valid knobs: " + knob_list();
        },
        "KNOB");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "fragtunectl - query and control fragtuned, the memory fragmentation tuning daemon"};
    app.set_version_flag("--version", std::string("fragtunectl ") + FRAGTUNE_VERSION);
    app.footer(
        "Exit status: 0 success, 1 failure, 2 usage error, 3 fragtuned not running.\n"
        "Without a command, fragtunectl shows the status. See fragtunectl(1).");

    std::string address;
    app.add_option("--address", address,
                   "D-Bus address of the system bus (default: $DBUS_SYSTEM_BUS_ADDRESS, else "
                   "unix:path=/run/dbus/system_bus_socket)");
    bool json = false;
    bool utc = false;
    bool all_signals = false;
    app.add_flag("--json", json, "Print JSON (status without a command)");
    app.add_flag("--utc", utc, "Show times in UTC instead of the local time zone");
    app.require_subcommand(0, 1);
    app.fallthrough();  // --address, --utc and --json also after the command

    auto* status = app.add_subcommand("status", "Show knobs, key signals and the latest changes");
    status->add_flag("--json", json, "Print JSON");
    status->add_flag("-a,--all-signals", all_signals, "Show every signal, not only the key ones");

    uint32_t history_max = 20;
    auto* history = app.add_subcommand("history", "Show the latest changes, oldest first");
    history->add_option("-n,--lines", history_max, "Number of changes to show (0: all kept)")
        ->capture_default_str();
    history->add_flag("--json", json, "Print JSON");

    std::string explain_knob;
    auto* explain =
        app.add_subcommand("explain", "Explain one knob (all knobs when none is given)");
    explain->add_option("knob", explain_knob, "Knob name, e.g. min_free_kbytes or vm.swappiness")
        ->check(knob_validator());
    explain->add_flag("--json", json, "Print JSON");

    auto* monitor_cmd =
        app.add_subcommand("monitor", "Print adjustments and allocation failures as they happen");
    monitor_cmd->add_flag("--json", json, "Print one JSON object per event and line");

    std::string mode;
    auto* mode_cmd = app.add_subcommand("mode", "Switch mode (root only)");
    mode_cmd->add_option("mode", mode, "active, observe or paused")
        ->required()
        ->check(CLI::IsMember({"active", "observe", "paused"}));

    std::string pin_knob;
    auto* pin = app.add_subcommand("pin", "Stop tuning a knob until unpinned (root only)");
    pin->add_option("knob", pin_knob, "Knob name")->required()->check(knob_validator());

    std::string unpin_knob;
    auto* unpin = app.add_subcommand("unpin", "Hand a pinned knob back to fragtuned (root only)");
    unpin->add_option("knob", unpin_knob, "Knob name")->required()->check(knob_validator());

    auto* restore = app.add_subcommand(
        "restore", "Write the original values back and switch to observe mode (root only)");
    auto* reload = app.add_subcommand("reload", "Re-read the configuration file (root only)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);  // prints help/version (rc 0) or the error and a hint
        return rc == 0 ? kExitOk : kExitUsage;
    }

    FormatOptions options;
    options.color = !json && want_color(isatty(STDOUT_FILENO) == 1, std::getenv("NO_COLOR"));
    options.utc = utc;
    options.all_signals = all_signals;

    std::unique_ptr<sdbus::IConnection> connection;
    try {
        connection = connect_system_bus(address);
    } catch (const sdbus::Error& e) {
        const char* env = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
        err("cannot connect to the D-Bus system bus" +
            (env ? std::string(" at ") + env : std::string()) + ": " + e.getMessage() +
            " (is dbus running?)");
        return kExitFailure;
    }

    try {
        Client client(*connection);
        if (*history) {
            auto rows = client.history(history_max);
            out(json ? dump_json(history_to_json(rows), 2) + "\n" : format_history(rows, options));
        } else if (*explain) {
            std::vector<std::pair<std::string, std::string>> texts;
            if (!explain_knob.empty()) {
                // Keyed by the table name whichever spelling was given (the validator checked it).
                std::string name(spec(*knob_from_name(explain_knob)).name);
                texts.emplace_back(name, client.explain(name));
            } else {
                for (const auto& t : client.tunables())
                    texts.emplace_back(t.name, client.explain(t.name));
            }
            out(json ? dump_json(explain_to_json(texts), 2) + "\n"
                     : format_explain(texts, options));
        } else if (*monitor_cmd) {
            return monitor(*connection, json, options);
        } else if (*mode_cmd) {
            client.set_mode(mode);
        } else if (*pin) {
            client.pin(pin_knob);
        } else if (*unpin) {
            client.unpin(unpin_knob);
        } else if (*restore) {
            client.restore();
            out("Original values restored; fragtuned is now in observe mode.\n");
        } else if (*reload) {
            const auto notes = client.reload();
            for (const auto& n : notes) out("reload: " + n + "\n");
        } else {  // status, also the default
            auto st = client.status();
            out(json ? dump_json(to_json(st), 2) + "\n" : format_status(st, options));
        }
    } catch (const sdbus::Error& e) {
        auto report = describe_bus_error(e.getName(), e.getMessage());
        err(report.message);
        return report.exit_code;
    }
    if (std::fflush(stdout) != 0) {
        err("cannot write the output");
        return kExitFailure;
    }
    return kExitOk;
}
