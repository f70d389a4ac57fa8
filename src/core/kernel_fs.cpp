#include "fragtune/kernel_fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include <fmt/format.h>

namespace fragtune {

namespace {

constexpr std::string_view kTempSuffix = ".fragtune-tmp";

// Closes an fd on scope exit; the core has no other RAII need for fds.
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};

Result<void> write_all(int fd, std::string_view data, const std::string& what) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(fmt::format("writing {}", what), errno);
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

}  // namespace

KernelFs::KernelFs(std::filesystem::path root) : root_(std::move(root)) {}

Result<std::filesystem::path> KernelFs::resolve(std::string_view path) const {
    if (path.empty() || path.front() != '/')
        return make_error(fmt::format("path '{}' is not absolute", path), EINVAL);
    std::filesystem::path rel(path.substr(1));
    for (const auto& part : rel)
        if (part == "..") return make_error(fmt::format("path '{}' contains '..'", path), EINVAL);
    if (root_ == "/") return std::filesystem::path(path);
    return root_ / rel;
}

Result<std::string> KernelFs::read(std::string_view path) const {
    auto full = resolve(path);
    if (!full) return full.error();
    Fd fd(::open(full->c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return make_error(fmt::format("cannot open {}", path), errno);
    // procfs seq_files produce a consistent snapshot per read() call: read the whole file at once,
    // growing the buffer and starting over from offset 0 if it did not fit. The scratch buffer is
    // reused across calls (one per thread), so a tick allocates only the bytes actually read.
    thread_local std::vector<char> scratch(32 * 1024);
    for (;;) {
        ssize_t n = ::pread(fd.get(), scratch.data(), scratch.size(), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(fmt::format("cannot read {}", path), errno);
        }
        if (static_cast<size_t>(n) < scratch.size()) {
            // Regular files (fixtures) may return short reads only at EOF; procfs returns the snapshot.
            return std::string(scratch.data(), static_cast<size_t>(n));
        }
        if (scratch.size() >= 64u * 1024 * 1024)
            return make_error(fmt::format("{} is larger than 64 MiB", path), EFBIG);
        scratch.resize(scratch.size() * 4);
    }
}

Result<void> KernelFs::write_existing(std::string_view path, std::string_view data) const {
    auto full = resolve(path);
    if (!full) return full.error();
    // O_TRUNC is harmless on procfs (shells use it: echo 1 > /proc/sys/...) and keeps fixture files exact.
    Fd fd(::open(full->c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    if (fd.get() < 0) return make_error(fmt::format("cannot open {} for writing", path), errno);
    // A sysctl takes exactly one write(); a short write would be a partially parsed value.
    ssize_t n;
    do {
        n = ::write(fd.get(), data.data(), data.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) return make_error(fmt::format("writing '{}' to {}", data, path), errno);
    if (static_cast<size_t>(n) != data.size())
        return make_error(fmt::format("short write to {} ({} of {} bytes)", path, n, data.size()), EIO);
    return {};
}

bool KernelFs::exists(std::string_view path) const {
    auto full = resolve(path);
    if (!full) return false;
    return ::access(full->c_str(), F_OK) == 0;
}

Result<std::vector<std::string>> KernelFs::list_dir(std::string_view path) const {
    auto full = resolve(path);
    if (!full) return full.error();
    DIR* d = ::opendir(full->c_str());
    if (!d) return make_error(fmt::format("cannot list {}", path), errno);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n == "." || n == "..") continue;
        names.emplace_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

Result<void> KernelFs::write_atomic(std::string_view path, std::string_view contents,
                                    unsigned mode) const {
    auto full = resolve(path);
    if (!full) return full.error();
    const std::filesystem::path dir = full->parent_path();
    const std::filesystem::path tmp = dir / ("." + full->filename().string() + std::string(kTempSuffix));
    const std::string shown(path);

    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode & 07777));
    if (fd.get() < 0) return make_error(fmt::format("cannot create temp file for {}", shown), errno);
    auto fail = [&](Error e) -> Result<void> {
        ::unlink(tmp.c_str());
        return e;
    };
    atomic_write_step(AtomicWriteStep::temp_created, path);
    if (auto r = write_all(fd.get(), contents, "temp file for " + shown); !r) return fail(r.error());
    atomic_write_step(AtomicWriteStep::temp_written, path);
    if (::fchmod(fd.get(), mode & 07777) != 0)
        return fail(make_error(fmt::format("cannot set mode of temp file for {}", shown), errno));
    if (::fsync(fd.get()) != 0)
        return fail(make_error(fmt::format("fsync of temp file for {}", shown), errno));
    if (::close(fd.release()) != 0)
        return fail(make_error(fmt::format("close of temp file for {}", shown), errno));
    atomic_write_step(AtomicWriteStep::temp_synced, path);
    if (::rename(tmp.c_str(), full->c_str()) != 0)
        return fail(make_error(fmt::format("cannot rename temp file over {}", shown), errno));
    atomic_write_step(AtomicWriteStep::renamed, path);
    Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd.get() < 0 || ::fsync(dfd.get()) != 0)
        return make_error(fmt::format("fsync of the directory of {} (the file is written)", shown), errno);
    atomic_write_step(AtomicWriteStep::done, path);
    return {};
}

Result<int> KernelFs::remove_stale_temps(std::string_view dir) const {
    auto names = list_dir(dir);
    if (!names) return names.error();
    auto full = resolve(dir);
    int removed = 0;
    for (const auto& n : *names) {
        if (n.size() > kTempSuffix.size() + 1 && n.front() == '.' && n.ends_with(kTempSuffix)) {
            if (::unlink((*full / n).c_str()) == 0) ++removed;
        }
    }
    return removed;
}

Result<void> KernelFs::make_dirs(std::string_view dir, unsigned mode) const {
    auto full = resolve(dir);
    if (!full) return full.error();
    std::error_code ec;
    std::filesystem::create_directories(*full, ec);
    if (ec) return make_error(fmt::format("cannot create directory {}", dir), ec.value());
    if (mode != 0755) ::chmod(full->c_str(), mode & 07777);
    return {};
}

}  // namespace fragtune
