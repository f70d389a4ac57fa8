// A fixture machine for end-to-end tests of the fragtuned binary: a temp root holding a copy of a
// captured /proc (tests/fixtures/live-6.18-vm), a fake /dev/kmsg the test appends to, the daemon's
// config, sysctl.d and state directories; the daemon process started by pid with NOTIFY_SOCKET pointed
// at a datagram socket the test reads.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace fragtune::testing {

namespace fs = std::filesystem;

inline std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void write_text(const fs::path& p, const std::string& s) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::trunc) << s;
}

inline void append_text(const fs::path& p, const std::string& s) {
    std::ofstream(p, std::ios::app) << s;
}

// Polls `pred` every 20 ms until it holds or `timeout` passes.
inline bool wait_for(const std::function<bool()>& pred,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
}

// How often `needle` occurs in `hay` (non-overlapping).
inline size_t count_of(const std::string& hay, const std::string& needle) {
    size_t n = 0;
    for (size_t pos = hay.find(needle); pos != std::string::npos;
         pos = hay.find(needle, pos + needle.size()))
        ++n;
    return n;
}

// A "Name:   1234 kB" field of /proc/PID/status (VmRSS, VmHWM) in KiB; -1 when the process is gone.
inline long proc_status_kib(pid_t pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
    return -1;
}

// Open file descriptors of a process (entries of /proc/PID/fd); -1 when the process is gone.
inline int open_fds(pid_t pid) {
    std::error_code ec;
    int n = 0;
    for (fs::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
         !ec && it != end; it.increment(ec))
        ++n;
    return ec ? -1 : n;
}

// A temp directory removed at scope exit.
class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/fragtune-it-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) std::abort();
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

// The sd_notify receiving end: a datagram socket; messages() returns everything received so far.
class NotifySocket {
  public:
    explicit NotifySocket(const fs::path& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
        ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    }
    ~NotifySocket() { ::close(fd_); }
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;
    const fs::path& path() const { return path_; }

    const std::string& messages() {
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd_, buf, sizeof buf, 0)) > 0)
            received_.append(buf, static_cast<size_t>(n)).append("\n");
        return received_;
    }
    bool saw(const std::string& needle) { return messages().find(needle) != std::string::npos; }

  private:
    fs::path path_;
    int fd_ = -1;
    std::string received_;
};

// A child process started by pid, stderr+stdout captured to a file, killed at scope exit.
class Process {
  public:
    Process(std::vector<std::string> argv, std::vector<std::string> env, const fs::path& log)
        : log_(log) {
        pid_ = ::fork();
        if (pid_ == 0) {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            for (auto& e : env) ::putenv(e.data());
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(a.data());
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
    }
    ~Process() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    void signal(int sig) const { ::kill(pid_, sig); }
    std::string log() const { return read_text(log_); }
    bool running() {
        if (exited_) return false;
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) == pid_) {
            exited_ = true;
            status_ = st;
        }
        return !exited_;
    }
    // Exit status, or -1 on timeout / death by signal.
    int wait(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        wait_for([&] { return !running(); }, timeout);
        if (!exited_) return -1;
        return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
    }

  private:
    pid_t pid_ = -1;
    fs::path log_;
    bool exited_ = false;
    int status_ = 0;
};

// The captured machine under a temp root.
class FixtureMachine {
  public:
    explicit FixtureMachine(const std::string& fixture = "live-6.18-vm") {
        fs::copy(fs::path(FRAGTUNE_FIXTURES_DIR) / fixture, root(), fs::copy_options::recursive);
        write_text(root() / "proc/sys/kernel/osrelease", "6.18.44\n");
        write_text(root() / "dev/kmsg", "");
        fs::create_directories(root() / "etc/sysctl.d");
        fs::create_directories(root() / "var/lib/fragtune");
    }
    fs::path root() const { return dir_.path() / "root"; }
    fs::path path(const std::string& abs) const { return root() / abs.substr(1); }

    // The fake sysctl's value. The daemon rewrites the file with O_TRUNC + write(), so a read can
    // land in between and see it empty: retry briefly instead of failing on a partial read.
    int64_t knob(const std::string& name) const {
        for (int attempt = 0;; ++attempt) {
            const std::string text = read_text(path("/proc/sys/vm/" + name));
            if (text.find_first_of("0123456789") != std::string::npos || attempt >= 100)
                return std::stoll(text);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    void set_knob(const std::string& name, int64_t v) const {
        write_text(path("/proc/sys/vm/" + name), std::to_string(v) + "\n");
    }
    void config(const std::string& toml) const {
        write_text(path("/etc/fragtune/fragtune.toml"), toml);
    }
    // An atomic order-1 failure as /dev/kmsg prints it (kernel facility, level 4).
    void kernel_log_atomic_failure(int seq) const {
        append_text(path("/dev/kmsg"),
                    "4," + std::to_string(seq) +
                        ",1000000,-;swapper/0: page allocation failure: order:1, "
                        "mode:0xa20(GFP_ATOMIC), nodemask=(null),cpuset=/,mems_allowed=0\n");
    }
    fs::path scratch() const { return dir_.path(); }

  private:
    TempDir dir_;
};

// Bytes and mtime (ns) of every regular file under `dir`, by path.
inline std::map<std::string, std::pair<std::string, int64_t>> files_under(const fs::path& dir) {
    std::map<std::string, std::pair<std::string, int64_t>> out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file()) continue;
        struct stat st {};
        ::stat(e.path().c_str(), &st);
        out[e.path().string()] = {
            read_text(e.path()),
            static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
    }
    return out;
}

// What a second instance must not change: the daemon's files and the fixture's sysctls.
inline std::map<std::string, std::pair<std::string, int64_t>> machine_files(
    const FixtureMachine& m) {
    auto out = files_under(m.path("/etc/sysctl.d"));
    out.merge(files_under(m.path("/var/lib/fragtune")));
    out.merge(files_under(m.path("/proc/sys/vm")));
    return out;
}

}  // namespace fragtune::testing
