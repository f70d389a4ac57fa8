// One fragtuned per state file: an exclusive flock(2) on a lock file beside the state file
// ("<state_path>.lock", inside the unit's StateDirectory), taken before the daemon reads or writes
// anything else and held for the process's lifetime. The kernel drops it when the process dies, so
// a crash never leaves a stale lock behind; the file itself stays and is reused.
#pragma once

#include <string>
#include <string_view>

#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/util/fd.hpp"
#include "fragtune/util/result.hpp"

namespace fragtune {

// "/var/lib/fragtune/state.toml" -> "/var/lib/fragtune/state.toml.lock".
std::string lock_path_for(std::string_view state_path);

class InstanceLock {
  public:
    // Creates the lock file's directory (mode 0700) and the file (mode 0600) if missing, takes the
    // lock without waiting and writes this process's pid into the file. Errors: another process
    // holds the lock ("another fragtuned (pid N) holds PATH"), the path is not a regular file, or
    // an I/O error naming the path.
    static Result<InstanceLock> acquire(const KernelFs& fs, std::string_view lock_path);

    // Closing the last descriptor (the destructor) drops the flock.
    InstanceLock(InstanceLock&& other) noexcept = default;
    InstanceLock& operator=(InstanceLock&& other) noexcept = default;

    const std::string& path() const { return path_; }

  private:
    InstanceLock(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
    UniqueFd fd_;
    std::string path_;
};

}  // namespace fragtune
