// Follows the kernel log for allocation-failure reports. The reader owns one non-blocking fd that
// the caller adds to its poll loop; drain() reads what is available and never blocks.
//
// Sources (chosen by what the path is, not by its name):
//  * a character device (/dev/kmsg): every read() returns exactly one record
//    ("prio,seq,ts,flag;text\n KEY=value\n..."; Documentation/ABI/testing/dev-kmsg). Opened at the
//    end of the buffer, so failures logged before the daemon started are not counted as new.
//  * a regular file or a FIFO holding the same records one per line (tests, replays): lines that
//    begin with a space are the records' KEY=value continuation lines and are skipped. A regular
//    file is opened at its end unless `from_start` is set; a FIFO delivers what is written to it.
//    A FIFO whose writer has gone reads as end-of-file (and polls as POLLHUP) until one reopens it.
//
// Only records of the kernel facility (0) are considered: user space can write to /dev/kmsg, but
// never with facility 0, so an injected "page allocation failure" line cannot fake a failure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/sensing/parsers.hpp"
#include "fragtune/util/fd.hpp"
#include "fragtune/util/result.hpp"

namespace fragtune {

struct KmsgOptions {
    std::string path = "/dev/kmsg";  // resolved through KernelFs::resolve
    bool from_start = false;  // read what is already there (replays); default: only new records
    size_t max_failures_per_drain = 1024;  // bound on KmsgDrain::failures; the rest is counted
    uint64_t page_size_bytes = 4096;       // turns vmalloc sizes into orders
};

// What one drain() found.
struct KmsgDrain {
    std::vector<AllocFailure> failures;  // in log order, at most max_failures_per_drain
    uint64_t records = 0;                // records read (continuation lines are not records)
    uint64_t failures_seen = 0;          // allocation failures found, including dropped ones
    uint64_t failures_dropped = 0;       // found but not kept: more than the bound in one drain
    uint64_t lost = 0;           // records the kernel overwrote before we read them (sequence gaps)
    uint64_t malformed = 0;      // records that are not "prio,seq,ts,flag;text", or overlong lines
    bool limit_reached = false;  // stopped at max_records; more may be waiting
};

class KmsgReader {
  public:
    // Opens options.path O_RDONLY|O_NONBLOCK|O_CLOEXEC. Errors name the path and keep the errno
    // (EACCES/EPERM: /dev/kmsg needs CAP_SYSLOG when kernel.dmesg_restrict=1; ENOENT: absent).
    static Result<KmsgReader> open(const KernelFs& fs, KmsgOptions options = {});

    KmsgReader(KmsgReader&& other) noexcept = default;
    KmsgReader& operator=(KmsgReader&& other) noexcept = default;

    // For the caller's poll loop (POLLIN). Owned by the reader.
    int fd() const { return fd_.get(); }
    bool is_device() const { return device_; }
    const std::string& path() const { return options_.path; }

    // Reads up to `max_records` records that are available now, and returns the failures among
    // them. Stops at EAGAIN or end of file. EINTR is retried. EPIPE (/dev/kmsg: records were
    // overwritten) is counted into `lost` and reading goes on from the oldest record still there.
    // Any other read error is returned as an Error naming the path.
    Result<KmsgDrain> drain(size_t max_records = 4096);

  private:
    KmsgReader(UniqueFd fd, bool device, KmsgOptions options);
    void handle_record(std::string_view text, KmsgDrain& out);
    void handle_line(std::string_view line, KmsgDrain& out);
    bool keep_failure(AllocFailure f, KmsgDrain& out);  // false: dropped by the bound

    UniqueFd fd_;
    bool device_ = false;
    KmsgOptions options_;

    // Stream sources: bytes read but not yet consumed (at most one read plus one partial line).
    std::string pending_;
    bool skip_to_newline_ = false;  // inside a line we must not parse (partial or overlong)

    // Sequence tracking for `lost`.
    std::optional<uint64_t> last_seq_;
    bool epipe_unaccounted_ = false;

    // Fragment joining: a record with flag 'c' is continued by the next record (kernels that
    // split a line across records); a record with flag '+' continues the one before (3.x).
    std::string chain_;
    int chain_facility_ = 0;
    char prev_flag_ = '-';
    bool chain_counted_ = false;

    // 3.x-4.9 vmalloc failures print "vmalloc: allocation failure, ..." without a mode, then
    // warn_alloc_failed() prints "<comm>: page allocation failure: order:0, mode:0x..." for the
    // same failure. That page line fills in the vmalloc failure instead of counting twice.
    bool fold_next_page_failure_ = false;
    std::optional<size_t> fold_index_;  // into the current drain's failures, when kept
};

}  // namespace fragtune
