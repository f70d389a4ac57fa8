// Helpers for the shipping tests (install tree, package, unit, man pages, metrics format): run a
// shell command and capture its output, find a program, make a temporary directory.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fragtune::test {

struct CommandResult {
    int exit_code = -1;  // -1: did not exit normally
    std::string output;  // stdout and stderr together
};

// Runs `command` with /bin/sh; stderr is merged into the captured output.
inline CommandResult run_command(const std::string& command) {
    CommandResult r;
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    const int status = ::pclose(p);
    if (status != -1 && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    return r;
}

// Single-quoted for /bin/sh.
inline std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

inline bool have_program(const std::string& name) {
    return run_command("command -v " + shell_quote(name) + " >/dev/null").exit_code == 0;
}

inline std::string read_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

// A directory under /tmp removed with everything in it when the object goes.
class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/fragtune-ship-XXXXXX";
        if (::mkdtemp(tmpl)) path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        if (!path_.empty()) std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

// `cmake --install` of this build tree into `destdir` with `prefix`, the way a distribution or
// dh_auto_install stages it.
inline CommandResult install_into(const std::filesystem::path& destdir, const std::string& prefix) {
    return run_command("DESTDIR=" + shell_quote(destdir.string()) + " cmake --install " +
                       shell_quote(FRAGTUNE_BINARY_DIR) + " --prefix " + shell_quote(prefix));
}

}  // namespace fragtune::test
