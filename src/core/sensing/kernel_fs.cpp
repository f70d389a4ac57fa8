#include "fragtune/sensing/kernel_fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include <fmt/format.h>

#include "fragtune/util/fd.hpp"

namespace fragtune {

namespace {

constexpr std::string_view kTempSuffix = ".fragtune-tmp";

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

namespace {

constexpr std::size_t kInitialReadBufferBytes = 32 * 1024;
constexpr std::size_t kInitialFileBufferBytes = 4 * 1024;

// The procfs read buffer of this thread (the daemon has one), reused so a tick allocates only the
// bytes actually read.
std::vector<char>& read_buffer() {
    thread_local std::vector<char> buffer;
    return buffer;
}

std::string_view file_type(mode_t m) {
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISDIR(m)) return "a directory";
    return "not a regular file";
}

std::string bytes_text(std::size_t n) {
    if (n >= (1u << 20) && n % (1u << 20) == 0) return fmt::format("{} MiB", n >> 20);
    if (n >= 1024 && n % 1024 == 0) return fmt::format("{} KiB", n >> 10);
    return fmt::format("{} bytes", n);
}

Error too_large(std::string_view path, std::string_view size, const ReadLimits& limits) {
    return make_error(fmt::format("{} is {}, over the {} limit for {}: refused", path, size,
                                  bytes_text(limits.max_bytes), limits.what),
                      EFBIG);
}

}  // namespace

std::size_t KernelFs::read_buffer_bytes() {
    return read_buffer().capacity();
}

Result<std::string> KernelFs::read(std::string_view path, const ReadLimits& limits) const {
    auto full = resolve(path);
    if (!full) return full.error();
    // O_NONBLOCK: opening a FIFO must not wait for a writer (nor a device for carrier); what was
    // opened is then refused below unless it is a regular file. Regular files and procfs ignore it.
    int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    if (limits.no_follow) flags |= O_NOFOLLOW;
    UniqueFd fd(::open(full->c_str(), flags));
    if (fd.get() < 0) {
        if (errno == ELOOP && limits.no_follow)
            return make_error(
                fmt::format("{} is a symbolic link: refused (fragtuned does not follow "
                            "links to the files it owns)",
                            path),
                ELOOP);
        return make_error(fmt::format("cannot open {}", path), errno);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return make_error(fmt::format("cannot stat {}", path), errno);
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) return std::string();  // /dev/null
    if (!S_ISREG(st.st_mode))
        return make_error(
            fmt::format("{} is {}, not a regular file: refused (it could block fragtuned)", path,
                        file_type(st.st_mode)));

    if (st.st_size > 0) {
        // A file that knows its size (any file system but procfs): read straight into the result,
        // one byte more than the limit so that growth past it is seen.
        const auto size = static_cast<std::size_t>(st.st_size);
        if (size > limits.max_bytes) return too_large(path, bytes_text(size), limits);
        std::string out(std::min(size + 1, limits.max_bytes + 1), '\0');
        std::size_t got = 0;
        for (;;) {
            if (got == out.size()) {
                if (got > limits.max_bytes)
                    return too_large(path, "more than " + bytes_text(limits.max_bytes), limits);
                out.resize(std::min(out.size() * 2, limits.max_bytes + 1));
            }
            ssize_t n =
                ::pread(fd.get(), out.data() + got, out.size() - got, static_cast<off_t>(got));
            if (n < 0) {
                if (errno == EINTR) continue;
                return make_error(fmt::format("cannot read {}", path), errno);
            }
            if (n == 0) break;
            got += static_cast<std::size_t>(n);
        }
        out.resize(got);
        return out;
    }

    // procfs and sysfs files report size 0: read to EOF into the per-thread buffer. A seq_file that
    // prints one record per read (zoneinfo per zone, /proc/kallsyms per page) returns a short
    // read long before its end, so a short read is not EOF; only a read of 0 bytes is. Files that
    // fit in one read (meminfo, vmstat, buddyinfo, PSI) are one consistent snapshot.
    std::vector<char>& buf = read_buffer();
    if (buf.size() < kInitialReadBufferBytes) buf.resize(kInitialReadBufferBytes);
    auto give_back = [&] {
        if (buf.capacity() > kKeptReadBufferBytes) std::vector<char>().swap(buf);
    };
    std::size_t got = 0;
    for (;;) {
        if (got == buf.size()) {
            if (got > limits.max_bytes) {
                give_back();
                return too_large(path, "more than " + bytes_text(limits.max_bytes), limits);
            }
            buf.resize(std::min(buf.size() * 4, limits.max_bytes + 1));
        }
        ssize_t n = ::read(fd.get(), buf.data() + got, buf.size() - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            give_back();
            return make_error(fmt::format("cannot read {}", path), errno);
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    std::string out(buf.data(), got);
    give_back();
    return out;
}

// ---- KernelFile ---------------------------------------------------------------------------------

namespace {

// Errors of an open file's read that mean "this file is gone, the path may name a new one".
bool file_gone(int err) {
    return err == ENOENT || err == ESTALE || err == ENODEV;
}

// The kernel's own file systems: their files are never replaced by a rename.
bool on_kernel_fs(int fd) {
    struct statfs sf {};
    if (::fstatfs(fd, &sf) != 0) return false;
    const auto t = static_cast<unsigned long>(sf.f_type);
    return t == PROC_SUPER_MAGIC || t == SYSFS_MAGIC || t == CGROUP2_SUPER_MAGIC ||
           t == CGROUP_SUPER_MAGIC;
}

}  // namespace

KernelFile::~KernelFile() {
    close_fd();
}

KernelFile::KernelFile(KernelFile&& o) noexcept
    : path_(std::move(o.path_)),
      full_(std::move(o.full_)),
      limits_(o.limits_),
      fd_(std::exchange(o.fd_, -1)),
      kernel_fs_(o.kernel_fs_),
      dev_(o.dev_),
      ino_(o.ino_),
      opens_(o.opens_),
      buf_(std::move(o.buf_)) {}

KernelFile& KernelFile::operator=(KernelFile&& o) noexcept {
    if (this != &o) {
        close_fd();
        path_ = std::move(o.path_);
        full_ = std::move(o.full_);
        limits_ = o.limits_;
        fd_ = std::exchange(o.fd_, -1);
        kernel_fs_ = o.kernel_fs_;
        dev_ = o.dev_;
        ino_ = o.ino_;
        opens_ = o.opens_;
        buf_ = std::move(o.buf_);
    }
    return *this;
}

void KernelFile::close_fd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Result<void> KernelFile::open() {
    close_fd();
    int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    if (limits_.no_follow) flags |= O_NOFOLLOW;
    UniqueFd fd(::open(full_.c_str(), flags));
    if (fd.get() < 0) return make_error(fmt::format("cannot open {}", path_), errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return make_error(fmt::format("cannot stat {}", path_), errno);
    const bool null_device = S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
    if (!S_ISREG(st.st_mode) && !null_device)
        return make_error(
            fmt::format("{} is {}, not a regular file: refused (it could block fragtuned)", path_,
                        file_type(st.st_mode)));
    kernel_fs_ = on_kernel_fs(fd.get());
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    fd_ = fd.release();
    ++opens_;
    return {};
}

bool KernelFile::absent() const {
    return fd_ < 0 && !full_.empty() && ::access(full_.c_str(), F_OK) != 0 && errno == ENOENT;
}

Result<std::string_view> KernelFile::read() {
    if (full_.empty()) return make_error("read of a KernelFile that names no file", EBADF);
    if (fd_ >= 0 && !kernel_fs_) {
        // A fixture or recording root: a file replaced by a rename is a new file.
        struct stat st {};
        if (::stat(full_.c_str(), &st) != 0 || static_cast<unsigned long>(st.st_dev) != dev_ ||
            static_cast<unsigned long>(st.st_ino) != ino_)
            close_fd();
    }
    for (int attempt = 0;; ++attempt) {
        if (fd_ < 0)
            if (auto r = open(); !r) return r.error();
        // Small at first (a knob is a few bytes); grown to what the file needs and kept.
        if (buf_.size() < kInitialFileBufferBytes) buf_.resize(kInitialFileBufferBytes);
        // One pread() of the whole buffer first: files that fit (meminfo, vmstat, buddyinfo, PSI)
        // are one consistent snapshot, as with KernelFs::read(). A short read is not EOF (seq_file
        // prints one record per read); only a read of 0 bytes is.
        std::size_t got = 0;
        int err = 0;
        for (;;) {
            if (got == buf_.size()) {
                if (got > limits_.max_bytes)
                    return too_large(path_, "more than " + bytes_text(limits_.max_bytes), limits_);
                buf_.resize(std::min(buf_.size() * 4, limits_.max_bytes + 1));
            }
            ssize_t n = ::pread(fd_, buf_.data() + got, buf_.size() - got, static_cast<off_t>(got));
            if (n < 0) {
                if (errno == EINTR) continue;
                err = errno;
                break;
            }
            if (n == 0) break;
            got += static_cast<std::size_t>(n);
        }
        if (err == 0) {
            if (got > limits_.max_bytes)
                return too_large(path_, "more than " + bytes_text(limits_.max_bytes), limits_);
            return std::string_view(buf_.data(), got);
        }
        close_fd();
        if (!file_gone(err) || attempt > 0)
            return make_error(fmt::format("cannot read {}", path_), err);
        // Gone (a cgroup removed and made again): once more by path.
    }
}

Result<KernelFile> KernelFs::open_file(std::string_view path, const ReadLimits& limits) const {
    auto full = resolve(path);
    if (!full) return full.error();
    KernelFile f;
    f.path_ = std::string(path);
    f.full_ = full->string();
    f.limits_ = limits;
    (void)f.open();  // a failure is reported (and the open retried) by the first read()
    return f;
}

Result<void> KernelFs::write_existing(std::string_view path, std::string_view data) const {
    auto full = resolve(path);
    if (!full) return full.error();
    // O_TRUNC is harmless on procfs (shells use it: echo 1 > /proc/sys/...) and keeps fixture files exact.
    UniqueFd fd(::open(full->c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    if (fd.get() < 0) return make_error(fmt::format("cannot open {} for writing", path), errno);
    // A sysctl takes exactly one write(); a short write would be a partially parsed value.
    ssize_t n;
    do {
        n = ::write(fd.get(), data.data(), data.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) return make_error(fmt::format("writing '{}' to {}", data, path), errno);
    if (static_cast<size_t>(n) != data.size())
        return make_error(fmt::format("short write to {} ({} of {} bytes)", path, n, data.size()),
                          EIO);
    return {};
}

Result<UniqueFd> KernelFs::open_trigger(std::string_view path, std::string_view text) const {
    auto full = resolve(path);
    if (!full) return full.error();
    UniqueFd fd(::open(full->c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd) return make_error(fmt::format("cannot open {} to arm a trigger", path), errno);
    // Only the kernel's own PSI files take triggers: a write into anything else (a fixture tree,
    // a recording, a file put in place of /proc) would change the file instead of arming a trigger.
    // EMEDIUMTYPE ("wrong medium type"): the kernel's own EOPNOTSUPP means PSI is disabled.
    if (!on_kernel_fs(fd.get()))
        return make_error(
            fmt::format(
                "{} is not a kernel PSI file (not on procfs or cgroupfs): no trigger written",
                path),
            EMEDIUMTYPE);
    ssize_t n;
    do {
        n = ::write(fd.get(), text.data(), text.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) return make_error(fmt::format("cannot arm a trigger on {}", path), errno);
    if (static_cast<size_t>(n) != text.size())
        return make_error(fmt::format("short write arming a trigger on {}", path), EIO);
    return fd;
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
    const std::filesystem::path tmp =
        dir / ("." + full->filename().string() + std::string(kTempSuffix));
    const std::string shown(path);

    UniqueFd fd(
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode & 07777));
    if (fd.get() < 0)
        return make_error(fmt::format("cannot create temp file for {}", shown), errno);
    auto fail = [&](Error e) -> Result<void> {
        ::unlink(tmp.c_str());
        return e;
    };
    atomic_write_step(AtomicWriteStep::temp_created, path);
    if (auto r = write_all(fd.get(), contents, "temp file for " + shown); !r)
        return fail(r.error());
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
    UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd.get() < 0 || ::fsync(dfd.get()) != 0)
        return make_error(fmt::format("fsync of the directory of {} (the file is written)", shown),
                          errno);
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
    // True only if `dir` itself was created here. An existing directory keeps its mode: the state
    // path may sit in /var/tmp (1777), which must not become 0700 and lose its sticky bit.
    const bool created = std::filesystem::create_directories(*full, ec);
    if (ec) return make_error(fmt::format("cannot create directory {}", dir), ec.value());
    if (created && ::chmod(full->c_str(), mode & 07777) != 0)
        return make_error(
            fmt::format("cannot set mode {:04o} on the new directory {}", mode & 07777, dir),
            errno);
    return {};
}

}  // namespace fragtune
