// Errors as values: every fallible core function returns Result<T>. Library exceptions are caught at the
// edge that calls the library and translated into an Error; nothing in the core throws on bad input.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace fragtune {

// What went wrong, said so that a person can act on it: the message names the file (or key, or knob),
// the line where there is one, and what was expected. `sys_errno` is the errno behind an I/O failure
// (0 when the failure is not a system call's), so callers can branch on EROFS/EACCES/ENOENT...
struct Error {
    std::string message;
    int sys_errno = 0;

    // message, plus ": <strerror>" when sys_errno is set.
    [[nodiscard]] std::string describe() const;
};

// Builds an Error; `sys_errno` defaults to "not a system error".
inline Error make_error(std::string message, int sys_errno = 0) {
    return Error{std::move(message), sys_errno};
}

// Value or Error. Deliberately small: ok(), value(), error(), and pointer-like access.
template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design, like std::expected
    Result(Error error) : v_(std::move(error)) {}  // NOLINT

    [[nodiscard]] bool ok() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<T>(v_); }
    const T& value() const& { return std::get<T>(v_); }
    T&& value() && { return std::get<T>(std::move(v_)); }
    const Error& error() const { return std::get<Error>(v_); }

    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

  private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

    [[nodiscard]] bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const { return error_; }

  private:
    Error error_;
    bool ok_ = true;
};

}  // namespace fragtune
