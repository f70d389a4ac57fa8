#include "fragtune/persisting/instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <utility>

#include <fmt/format.h>

#include "fragtune/util/text.hpp"

namespace fragtune {

std::string lock_path_for(std::string_view state_path) {
    return std::string(state_path) + ".lock";
}

namespace {

// The pid the holder wrote, 0 when the file holds none (yet).
long holder_pid(int fd) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    long pid = 0;
    auto [end, ec] = std::from_chars(buf, buf + n, pid);
    return ec == std::errc() && pid > 0 && (end == buf + n || *end == '\n') ? pid : 0;
}

}  // namespace

Result<InstanceLock> InstanceLock::acquire(const KernelFs& fs, std::string_view lock_path) {
    auto full = fs.resolve(lock_path);
    if (!full) return full.error();
    if (auto r = fs.make_dirs(dir_of(lock_path), 0700); !r) return r.error();
    // O_NONBLOCK: a FIFO planted at the path must not block the open; it is refused below.
    UniqueFd owned(
        ::open(full->c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600));
    const int fd = owned.get();
    if (fd < 0) {
        const int e = errno;
        return make_error(fmt::format("cannot open the lock file {}", lock_path), e);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        return make_error(fmt::format("the lock file {} is not a regular file", lock_path));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int e = errno;
        if (e == EWOULDBLOCK) {
            const long pid = holder_pid(fd);
            return make_error(
                fmt::format("another fragtuned {}holds {}: one instance per state file; nothing "
                            "was changed (use fragtunectl to talk to the running one)",
                            pid ? fmt::format("(pid {}) ", pid) : std::string(), lock_path));
        }
        return make_error(fmt::format("cannot lock {}", lock_path), e);
    }
    const std::string pid = fmt::format("{}\n", ::getpid());
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        const int e = errno;
        return make_error(fmt::format("cannot write the pid to {}", lock_path), e);
    }
    return InstanceLock(std::move(owned), std::string(lock_path));
}

}  // namespace fragtune
