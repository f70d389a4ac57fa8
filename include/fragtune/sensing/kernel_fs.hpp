// The one door to the kernel: every read of /proc and /sys, every sysctl write, and every file the daemon
// owns goes through KernelFs, rooted at a configurable directory ("/" in production, a fixture tree in
// tests and replays). Paths passed in are absolute in the *machine's* namespace ("/proc/buddyinfo") and
// are resolved under the root; paths with ".." components or not starting with "/" are refused, so no
// caller- or config-supplied name can reach outside the root.
//
// The methods are virtual so tests can substitute a fault-injecting subclass (EINVAL on write, vanishing
// files, short reads); production uses this class as is.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fragtune/util/fd.hpp"
#include "fragtune/util/result.hpp"

namespace fragtune {

// The steps of KernelFs::write_atomic, in order, as reported to KernelFs::atomic_write_step().
enum class AtomicWriteStep {
    temp_created,  // the temp file exists and is empty; the target is untouched
    temp_written,  // the temp file holds the new contents (not yet fsynced)
    temp_synced,   // the temp file is fsynced, mode set and closed: next comes the rename
    renamed,       // the target now has the new contents; the directory is not yet fsynced
    done,          // the directory is fsynced: the write is durable
};

// What KernelFs::read() accepts. Every read refuses what is not a regular file (a FIFO, a socket, a
// device: opening or reading one could block the daemon with its signals unread), except the null
// device, which reads as empty (systemd masks a sysctl.d file with a symlink to /dev/null).
struct ReadLimits {
    // A larger file is refused; the error names the file, its size and the limit.
    std::size_t max_bytes;
    // The kind of file, named in that error ("configuration files").
    std::string_view what;
    // Refuse a symbolic link as the last component (O_NOFOLLOW): for the files fragtuned owns.
    bool no_follow = false;
};

// /proc and /sys files and their copies in a --record recording. zoneinfo of a large NUMA machine
// is a few MiB; anything near this is not a kernel file we know.
inline constexpr ReadLimits kKernelFileLimits{64u << 20, "kernel files"};
// The configuration, its drop-ins and sysctl.d files: text that people write.
inline constexpr ReadLimits kConfigFileLimits{1u << 20, "configuration and sysctl.d files"};

class KernelFs;

// A kernel file opened once and read again every tick (KernelFs::open_file): the per-tick /proc
// files, PSI and the knobs. Each read() is a pread() from offset 0 into a buffer the handle keeps,
// so a steady-state read makes no path lookup, no open() and no heap allocation. The checks are
// KernelFs::read()'s: rooted path, only regular files (or /dev/null, as empty), at most
// limits.max_bytes, every error naming the path.
//
// Reopened by path, with those checks again, when the open file is gone: a read failing with
// ENOENT, ESTALE or ENODEV (a cgroup removed and recreated: kernfs answers ENODEV on the old fd).
// A handle whose open failed retries the open on the next read(). On a file system that is not
// the kernel's (a fixture or recording root, where a file may be replaced by a rename), the path
// is stat()ed on each read and a replaced file is reopened, so tests and replays see new contents.
// Move-only; not thread-safe.
class KernelFile {
  public:
    KernelFile() = default;
    ~KernelFile();
    KernelFile(KernelFile&& other) noexcept;
    KernelFile& operator=(KernelFile&& other) noexcept;
    KernelFile(const KernelFile&) = delete;
    KernelFile& operator=(const KernelFile&) = delete;

    // The whole file, valid until the next read() or the handle's end. ENOENT (sys_errno) when
    // the file is absent now.
    Result<std::string_view> read();

    const std::string& path() const { return path_; }
    bool is_open() const { return fd_ >= 0; }
    // Not open and the path does not exist now: the cheap test for an optional file this kernel
    // lacks (compaction_proactiveness before 5.9), without building read()'s error.
    bool absent() const;
    // How often the file was (re)opened: 1 after the first successful open (for tests).
    unsigned opens() const { return opens_; }

  private:
    friend class KernelFs;
    Result<void> open();
    void close_fd();

    std::string path_;  // as the caller named it ("/proc/vmstat"), for messages
    std::string full_;  // under the root, for open() and stat()
    ReadLimits limits_{kKernelFileLimits};
    int fd_ = -1;
    bool kernel_fs_ = false;  // procfs, sysfs, cgroupfs: never replaced, no stat() per read
    unsigned long dev_ = 0, ino_ = 0;
    unsigned opens_ = 0;
    std::vector<char> buf_;
};

class KernelFs {
  public:
    explicit KernelFs(std::filesystem::path root = "/");
    virtual ~KernelFs() = default;
    KernelFs(const KernelFs&) = default;
    KernelFs& operator=(const KernelFs&) = default;

    const std::filesystem::path& root() const { return root_; }

    // root_ + path, or an error when `path` is not absolute or contains "..".
    Result<std::filesystem::path> resolve(std::string_view path) const;

    // Whole file contents. Opened O_NONBLOCK (a FIFO never blocks the open), then fstat()ed: only
    // regular files are read (and /dev/null, as empty), at most `limits.max_bytes`. procfs files
    // (size 0 in stat) are read to EOF into a per-thread buffer (one read() for the small ones, so
    // their text is one consistent snapshot); the buffer is given back after a read that needed
    // more than kKeptReadBufferBytes. Regular files of known size are read straight into the
    // result. ENOENT is reported with sys_errno == ENOENT so callers can tell "absent on this
    // kernel" from other failures; every error names the path.
    virtual Result<std::string> read(std::string_view path,
                                     const ReadLimits& limits = kKernelFileLimits) const;

    // A handle for reading `path` again and again (see KernelFile). Resolves the path now (an
    // absolute path without "..", or an error) and opens the file; a file that cannot be opened
    // now still gives a handle, whose read() reports why and retries the open.
    virtual Result<KernelFile> open_file(std::string_view path,
                                         const ReadLimits& limits = kKernelFileLimits) const;

    // The bytes this thread's procfs read buffer holds now (for tests and benchmarks).
    static std::size_t read_buffer_bytes();
    // The buffer is kept between reads up to this size: what the per-tick /proc files need.
    static constexpr std::size_t kKeptReadBufferBytes = 1u << 20;

    // One write() of `data` to an existing file (O_WRONLY, no O_CREAT, no O_TRUNC semantics beyond what
    // the file has): the way sysctls are written. A short write is an error.
    virtual Result<void> write_existing(std::string_view path, std::string_view data) const;

    // Opens an existing file read-write, non-blocking, and writes `text` to it in one write(), keeping
    // the fd open: the way a PSI trigger is armed ("some 100000 1000000\0" to
    // /proc/pressure/memory), after which the fd polls POLLPRI when the trigger fires and POLLERR
    // when the file goes away. Errors keep the errno of the failing open() or write() (ENOENT,
    // EPERM, EINVAL, EOPNOTSUPP tell why triggers cannot be had) and name the path. A file that is
    // not on procfs or cgroupfs gets nothing written and EMEDIUMTYPE.
    virtual Result<UniqueFd> open_trigger(std::string_view path, std::string_view text) const;

    // Does the path exist under the root?
    virtual bool exists(std::string_view path) const;

    // Names of the entries of a directory (not "." or ".."), sorted. ENOENT when absent.
    virtual Result<std::vector<std::string>> list_dir(std::string_view path) const;

    // Replaces `path` atomically: writes `contents` to a temp file in the same directory whose name is
    // "." + basename + ".fragtune-tmp" (never ending in ".conf", so systemd-sysctl ignores it), fsyncs it,
    // sets `mode`, renames it over `path`, and fsyncs the directory. On any failure the temp file is
    // removed and `path` is untouched: readers see the old file or the new one, never a partial one.
    virtual Result<void> write_atomic(std::string_view path, std::string_view contents,
                                      unsigned mode = 0644) const;

    // Removes stale temp files left by write_atomic() in `dir` (after a crash mid-write); returns the
    // number removed.
    virtual Result<int> remove_stale_temps(std::string_view dir) const;

    // Creates `dir` (and parents) if missing and gives the new `dir` exactly `mode` (umask aside);
    // an existing `dir` is left as it is, mode included.
    virtual Result<void> make_dirs(std::string_view dir, unsigned mode = 0755) const;

  protected:
    // Called by write_atomic() after each step it completed, with the path it was given. Does
    // nothing; a test subclass overrides it to report progress and to stop or kill the writer at a
    // chosen step, so crash-consistency is proven at every step instead of at random moments.
    virtual void atomic_write_step(AtomicWriteStep /*step*/, std::string_view /*path*/) const {}

  private:
    std::filesystem::path root_;
};

}  // namespace fragtune
