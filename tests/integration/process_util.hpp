// Process helpers for integration tests that need a bus: run a command and capture its output (with
// a timeout, killing by pid), a private system-type dbus-daemon in a temp directory, and waiting
// for a bus name. Temp dirs, long-running children and wait_for() come from daemon_harness.hpp.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "daemon_harness.hpp"

namespace fragtune::testing {

struct CommandResult {
    int exit_code = -1;  // -1: killed (timeout) or died by a signal
    std::string out, err;
};

// Runs argv[0] (a path) with the environment plus `env` ("NAME=value"), stdin from /dev/null, and
// collects stdout and stderr. The child is killed by pid (SIGKILL) when `timeout` passes.
inline CommandResult run_command(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env = {},
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    CommandResult result;
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return result;
    pid_t pid = ::fork();
    if (pid == 0) {
        int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, 0);
        ::dup2(out_pipe[1], 1);
        ::dup2(err_pipe[1], 2);
        std::vector<std::string> envs = env;
        for (auto& e : envs) ::putenv(e.data());
        std::vector<std::string> args = argv;
        std::vector<char*> cargs;
        for (auto& a : args) cargs.push_back(a.data());
        cargs.push_back(nullptr);
        ::execv(cargs[0], cargs.data());
        ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&result.out, &result.err};
    int open_fds = 2;
    bool killed = false;
    while (open_fds > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            killed = true;
            break;
        }
        if (::poll(fds, 2, static_cast<int>(left.count())) < 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<size_t>(n));
            } else {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) ::close(f.fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!killed && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    return result;
}

// The same command as another user: setpriv drops to uid/gid 65534 (nobody) with no groups.
inline std::vector<std::string> as_nobody(std::vector<std::string> argv) {
    argv.insert(argv.begin(),
                {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    return argv;
}

// A private dbus-daemon configured like the system bus (type system, EXTERNAL auth, deny own/send
// by default, allow replies and receiving), listening on a unix socket in a temp directory that
// every user can reach. `extra_config` is inserted verbatim at the end (an <include> of a policy
// file, or a <policy> of the test's own).
class PrivateSystemBus {
  public:
    explicit PrivateSystemBus(const std::string& extra_config) : extra_(extra_config) { start(); }
    ~PrivateSystemBus() { stop(); }
    PrivateSystemBus(const PrivateSystemBus&) = delete;
    PrivateSystemBus& operator=(const PrivateSystemBus&) = delete;

    std::string address() const { return "unix:path=" + socket().string(); }
    std::string env() const { return "DBUS_SYSTEM_BUS_ADDRESS=" + address(); }
    fs::path socket() const { return dir_.path() / "system_bus_socket"; }
    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0; }

    // The bus going away, as when dbus is restarted: SIGTERM, then reaped.
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        if (!wait_for([&] { return ::waitpid(pid_, nullptr, WNOHANG) == pid_; },
                      std::chrono::seconds(5))) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        pid_ = -1;
    }

    // A new bus at the same address (the socket path is reused), as after `systemctl restart dbus`.
    void start() {
        ::chmod(dir_.path().c_str(), 0755);  // nobody must reach the socket
        std::error_code ec;
        fs::remove(socket(), ec);
        write_text(dir_.path() / "bus.conf", config());
        pid_ = ::fork();
        if (pid_ == 0) {
            int log =
                ::open((dir_.path() / "bus.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            ::dup2(log, 1);
            ::dup2(log, 2);
            std::string conf = "--config-file=" + (dir_.path() / "bus.conf").string();
            ::execl("/usr/bin/dbus-daemon", "dbus-daemon", "--nofork", "--nopidfile", conf.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        wait_for([&] { return fs::exists(socket()); }, std::chrono::seconds(5));
    }
    std::string log() const { return read_text(dir_.path() / "bus.log"); }

  private:
    std::string config() const {
        return R"(<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=)" +
               socket().string() + R"(</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
)" + extra_ + "\n</busconfig>\n";
    }

    std::string extra_;
    TempDir dir_;
    pid_t pid_ = -1;
};

// True when `name` has an owner on the bus at `address` (asked with dbus-send, as root).
inline bool name_has_owner(const std::string& address, const std::string& name) {
    auto r = run_command(
        {"/usr/bin/dbus-send", "--bus=" + address, "--print-reply", "--dest=org.freedesktop.DBus",
         "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:" + name},
        {}, std::chrono::seconds(5));
    return r.exit_code == 0 && r.out.find("boolean true") != std::string::npos;
}

inline bool wait_for_name(const std::string& address, const std::string& name,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return wait_for([&] { return name_has_owner(address, name); }, timeout);
}

}  // namespace fragtune::testing
