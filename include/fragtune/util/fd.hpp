// A file descriptor owned by one object and closed when it goes: the one RAII wrapper for fds in
// fragtune (the core's file door, the instance lock, the kernel-log reader, the daemon's loop).
#pragma once

#include <unistd.h>

#include <utility>

namespace fragtune {

class UniqueFd {
  public:
    UniqueFd() = default;
    // Takes ownership of `fd` (-1: owns nothing).
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    explicit operator bool() const { return valid(); }
    // Gives the fd up without closing it (the caller owns it, e.g. to check close()'s result).
    int release() { return std::exchange(fd_, -1); }
    // Closes the owned fd (close errors are ignored: nothing useful can be done with them here)
    // and owns `fd` instead.
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

  private:
    int fd_ = -1;
};

}  // namespace fragtune
