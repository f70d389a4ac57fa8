#include "fragtune/sensing/kmsg.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace fragtune {

namespace {

// One /dev/kmsg record is at most CONSOLE_EXT_LOG_MAX (8 KiB) on older kernels and far less on
// current ones (PRINTK_MESSAGE_MAX, 2 KiB). A read() with a smaller buffer fails with EINVAL and
// does not advance, so the buffer must hold the largest record: twice the old maximum.
constexpr size_t kDeviceReadBytes = 16 * 1024;
// Stream sources: bytes per read(), and the longest line accepted as a record.
constexpr size_t kStreamReadBytes = 64 * 1024;
constexpr size_t kMaxLineBytes = 16 * 1024;
// A line split over fragment records is at most LOG_LINE_MAX (about 1 KiB); more is kept no
// further, so a stream of 'c' records cannot grow memory.
constexpr size_t kMaxChainBytes = 8 * 1024;

}  // namespace

KmsgReader::KmsgReader(UniqueFd fd, bool device, KmsgOptions options)
    : fd_(std::move(fd)), device_(device), options_(std::move(options)) {}

Result<KmsgReader> KmsgReader::open(const KernelFs& fs, KmsgOptions options) {
    auto full = fs.resolve(options.path);
    if (!full) return full.error();
    UniqueFd owned(::open(full->c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    const int fd = owned.get();
    if (fd < 0) return make_error(fmt::format("cannot open {}", options.path), errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;  // before fmt::format can allocate
        return make_error(fmt::format("cannot stat {}", options.path), e);
    }
    KmsgReader reader(std::move(owned), S_ISCHR(st.st_mode),
                      std::move(options));  // owns fd from here on
    const std::string& path = reader.options_.path;
    if (reader.device_) {
        // A fresh open of /dev/kmsg starts at the oldest record; failures already in the buffer
        // happened before we started and must not be counted as new.
        if (!reader.options_.from_start && ::lseek(fd, 0, SEEK_END) < 0)
            return make_error(fmt::format("cannot seek to the end of {}", path), errno);
    } else if (S_ISREG(st.st_mode)) {
        if (!reader.options_.from_start) {
            const off_t end = ::lseek(fd, 0, SEEK_END);
            if (end < 0)
                return make_error(fmt::format("cannot seek to the end of {}", path), errno);
            // A writer may be in the middle of a line: its rest is not a record of ours.
            char last = '\n';
            if (end > 0 && ::pread(fd, &last, 1, end - 1) == 1 && last != '\n')
                reader.skip_to_newline_ = true;
        }
    } else if (!S_ISFIFO(st.st_mode)) {
        return make_error(
            fmt::format("{} is not a character device, a FIFO or a regular file", path), EINVAL);
    }
    return Result<KmsgReader>(std::move(reader));
}

Result<KmsgDrain> KmsgReader::drain(size_t max_records) {
    KmsgDrain out;
    fold_index_.reset();  // indexes into the previous drain's list
    if (!fd_) return make_error(fmt::format("{} is not open", options_.path), EBADF);

    if (device_) {
        std::string buf(kDeviceReadBytes, '\0');
        while (out.records < max_records) {
            const ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) return out;
                if (errno == EPIPE) {
                    // Records were overwritten; the position moved to the oldest one left. The
                    // sequence gap at the next record says how many.
                    epipe_unaccounted_ = true;
                    continue;
                }
                return make_error(fmt::format("reading {}", options_.path), errno);
            }
            if (n == 0) return out;
            handle_record(std::string_view(buf.data(), static_cast<size_t>(n)), out);
        }
        out.limit_reached = true;
        return out;
    }

    // File or FIFO: lines. `budget` counts every line (continuation lines too), so a huge file of
    // anything is read in bounded steps.
    size_t budget = max_records;
    std::string buf(kStreamReadBytes, '\0');
    for (;;) {
        size_t consumed = 0;
        while (budget > 0) {
            const size_t nl = pending_.find('\n', consumed);
            if (nl == std::string::npos) break;
            handle_line(std::string_view(pending_).substr(consumed, nl - consumed), out);
            consumed = nl + 1;
            --budget;
        }
        pending_.erase(0, consumed);
        if (budget == 0) {
            out.limit_reached = true;
            return out;
        }
        if (pending_.size() > kMaxLineBytes) {
            // No record is this long: drop it, and the rest of it when it arrives.
            ++out.malformed;
            pending_.clear();
            skip_to_newline_ = true;
        }
        const ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return out;
            return make_error(fmt::format("reading {}", options_.path), errno);
        }
        if (n == 0) return out;  // end of file, or a FIFO without writer
        std::string_view data(buf.data(), static_cast<size_t>(n));
        if (skip_to_newline_) {
            const size_t nl = data.find('\n');
            if (nl == std::string_view::npos) continue;
            data.remove_prefix(nl + 1);
            skip_to_newline_ = false;
        }
        pending_.append(data);
    }
}

void KmsgReader::handle_line(std::string_view line, KmsgDrain& out) {
    // Only a CR goes: a fragment record may end in a blank that the next fragment continues.
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return;
    if (line.front() == ' ' || line.front() == '\t') return;  // " KEY=value" of the record before
    handle_record(line, out);
}

void KmsgReader::handle_record(std::string_view text, KmsgDrain& out) {
    ++out.records;
    auto rec = parse_kmsg_record(text);
    if (!rec) {
        ++out.malformed;
        chain_.clear();
        prev_flag_ = '-';
        fold_next_page_failure_ = false;
        return;
    }

    // Sequence numbers are consecutive; a gap is records overwritten before we read them. A
    // number going backwards is a replay or a new boot in a file: start counting afresh.
    if (last_seq_ && rec->seq > *last_seq_ + 1)
        out.lost += rec->seq - *last_seq_ - 1;
    else if (!last_seq_ && epipe_unaccounted_)
        out.lost += 1;  // EPIPE before the first record we saw: at least one was lost
    epipe_unaccounted_ = false;
    last_seq_ = rec->seq;

    const bool joins = !chain_.empty() && (prev_flag_ == 'c' || rec->flag == '+');
    if (!joins) {
        chain_.clear();
        chain_counted_ = false;
        chain_facility_ = rec->facility;
    }
    if (chain_.size() + rec->message.size() <= kMaxChainBytes) chain_.append(rec->message);
    prev_flag_ = rec->flag;
    if (rec->flag == 'c') return;  // the line goes on in the next record

    const bool fold = fold_next_page_failure_;
    fold_next_page_failure_ = false;
    if (chain_facility_ != 0 || chain_counted_) return;
    auto f = parse_alloc_failure(chain_, options_.page_size_bytes);
    if (!f) return;
    chain_counted_ = true;

    if (fold && f->kind == FailureKind::page) {
        if (fold_index_) {
            AllocFailure& v = out.failures[*fold_index_];
            if (v.task.empty() || v.task == f->task) {
                v.task = f->task;
                v.gfp_mask = f->gfp_mask;
                v.gfp_flags = f->gfp_flags;
                v.atomic = f->atomic;
                fold_index_.reset();
                return;
            }
        } else {
            return;  // the vmalloc failure was dropped by the bound; so is its second line
        }
    }
    fold_index_.reset();
    const bool foldable = f->kind == FailureKind::vmalloc && !f->gfp_mask;
    const bool kept = keep_failure(std::move(*f), out);
    fold_next_page_failure_ = foldable;
    if (foldable && kept) fold_index_ = out.failures.size() - 1;
}

bool KmsgReader::keep_failure(AllocFailure f, KmsgDrain& out) {
    ++out.failures_seen;
    if (out.failures.size() >= options_.max_failures_per_drain) {
        ++out.failures_dropped;
        return false;
    }
    out.failures.push_back(std::move(f));
    return true;
}

}  // namespace fragtune
