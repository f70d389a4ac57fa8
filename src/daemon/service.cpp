#include "service.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bus.hpp"
#include "fragtune/sensing/kmsg.hpp"
#include "fragtune/util/fd.hpp"
#include "fragtune/util/time.hpp"
#include "logging.hpp"
#include "notify.hpp"

namespace fragtune {

namespace {

// A periodic CLOCK_MONOTONIC timer: wall-clock jumps never shorten or stretch a tick.
int make_timer(uint64_t period_usec) {
    int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) return -1;
    itimerspec its{};
    its.it_interval.tv_sec = static_cast<time_t>(period_usec / 1'000'000u);
    its.it_interval.tv_nsec = static_cast<long>((period_usec % 1'000'000u) * 1000u);
    its.it_value = its.it_interval;
    if (::timerfd_settime(fd, 0, &its, nullptr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void drain_timer(int fd) {
    uint64_t expirations = 0;
    while (::read(fd, &expirations, sizeof expirations) > 0) {
    }
}

// Kernel-log failures gathered between ticks; bounded so a flood cannot grow memory.
constexpr size_t kMaxPendingFailures = 1024;
constexpr size_t kMaxRecordsPerDrain = 4096;

}  // namespace

int run_service(const ServiceOptions& options) {
    if (auto r = logging::setup(options.log_level.empty() ? "info" : options.log_level); !r) {
        fmt::print(stderr, "fragtuned: {}\n", r.error().describe());
        return 2;
    }

    // Signals arrive through a signalfd, handled in the loop like any other event.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);
    UniqueFd sfd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
    if (sfd.get() < 0) {
        spdlog::critical("signalfd: {}", std::strerror(errno));
        return 1;
    }

    Daemon daemon(options.daemon);
    if (auto r = daemon.start(monotonic_usec()); !r) {
        spdlog::critical("cannot start: {}", r.error().describe());
        notify::status("failed: " + r.error().describe());
        return 1;
    }
    if (!options.log_level.empty()) (void)logging::set_level(options.log_level);

    std::optional<KmsgReader> kmsg;
    if (daemon.config().signals.kernel_log) {
        KmsgOptions ko;
        ko.path = daemon.config().signals.kmsg_path;
        ko.max_failures_per_drain = kMaxPendingFailures;
        ko.page_size_bytes = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
        auto k = KmsgReader::open(daemon.fs(), ko);
        if (k) {
            kmsg.emplace(std::move(*k));
        } else {
            spdlog::warn("not following the kernel log: {}", k.error().describe());
        }
    }

    std::unique_ptr<BusService> bus;
    if (options.bus) {
        auto b = BusService::open(daemon);
        if (!b) {
            spdlog::critical("cannot own org.fragtune1 on the system bus: {}",
                             b.error().describe());
            // No daemon.stop(): this instance has tuned nothing, and its on_exit restore would
            // write sysctls under the fragtuned that owns the name (with another state file).
            return 1;
        }
        bus = std::move(*b);
    }

    uint64_t tick_usec = daemon.tick_usec();
    UniqueFd tick_fd(make_timer(tick_usec));
    const uint64_t wd_usec = notify::watchdog_interval_usec();
    UniqueFd wd_fd(wd_usec ? make_timer(wd_usec) : -1);
    if (tick_fd.get() < 0 || (wd_usec && wd_fd.get() < 0)) {
        spdlog::critical("timerfd: {}", std::strerror(errno));
        return 1;
    }

    notify::ready(daemon.summary());
    if (wd_usec) notify::watchdog();

    std::vector<AllocFailure> pending;
    uint64_t pending_lost = 0;     // kernel-log records overwritten before we read them
    uint64_t pending_dropped = 0;  // failures seen but not kept (bound on memory under a flood)
    // Returns true when the batch stopped at its bound and more records may be waiting.
    auto drain_kmsg = [&]() -> bool {
        if (!kmsg) return false;
        auto batch = kmsg->drain(kMaxRecordsPerDrain);
        if (!batch) {
            spdlog::error("kernel log: {}; no longer following it", batch.error().describe());
            kmsg.reset();
            return false;
        }
        pending_lost += batch->lost;
        pending_dropped += batch->failures_dropped;
        for (auto& f : batch->failures) {
            if (pending.size() < kMaxPendingFailures)
                pending.push_back(std::move(f));
            else
                ++pending_dropped;
        }
        return batch->limit_reached;
    };

    int exit_code = 0;
    for (bool running = true; running;) {
        enum { kSignal, kTick, kWatchdog, kKmsg, kBus, kCount };
        pollfd fds[kCount] = {
            {sfd.get(), POLLIN, 0},
            {tick_fd.get(), POLLIN, 0},
            {wd_fd.get(), POLLIN, 0},
            // Only /dev/kmsg is polled: a regular file or a FIFO without a writer always polls
            // ready (POLLIN/POLLHUP) and would spin the loop; those are drained once per tick.
            {kmsg && kmsg->is_device() ? kmsg->fd() : -1, POLLIN, 0},
            {bus ? bus->fd() : -1, static_cast<short>(bus ? bus->events() : 0), 0},
        };
        const int timeout = bus ? bus->timeout_msec() : -1;
        if (::poll(fds, kCount, timeout) < 0) {
            if (errno == EINTR) continue;
            spdlog::critical("poll: {}", std::strerror(errno));
            exit_code = 1;
            break;
        }
        if (fds[kSignal].revents & POLLIN) {
            signalfd_siginfo si{};
            while (::read(sfd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
                if (si.ssi_signo == SIGHUP) {
                    notify::reloading(monotonic_usec());
                    // Notes on keys that need a restart are logged by reload() itself.
                    if (auto r = daemon.reload(); !r) spdlog::error("{}", r.error().describe());
                    if (daemon.tick_usec() != tick_usec) {
                        tick_usec = daemon.tick_usec();
                        tick_fd.reset(make_timer(tick_usec));
                    }
                    notify::ready(daemon.summary());
                } else {
                    spdlog::info("signal {} received, stopping",
                                 strsignal(static_cast<int>(si.ssi_signo)));
                    running = false;
                }
            }
        }
        if (!running) break;
        if (fds[kWatchdog].revents & POLLIN) {
            drain_timer(wd_fd.get());
            notify::watchdog();
        }
        if (fds[kKmsg].revents & (POLLIN | POLLERR)) (void)drain_kmsg();
        if (fds[kTick].revents & POLLIN) {
            drain_timer(tick_fd.get());
            // Files and FIFOs are not polled (see above): read all that is there now, in bounded
            // batches; what is over the bound is counted, not kept.
            for (int batch = 0; batch < 256 && kmsg && drain_kmsg(); ++batch) {
            }
            daemon.tick(monotonic_usec(), std::move(pending), pending_lost, pending_dropped);
            pending.clear();
            pending_lost = 0;
            pending_dropped = 0;
            notify::status(daemon.summary());
        }
        if (bus) {
            if (auto r = bus->process(); !r) {
                // Never live on without our name: exit non-zero and let systemd restart us.
                spdlog::critical(
                    "lost the bus: {}; exiting so the service manager restarts fragtuned",
                    r.error().describe());
                exit_code = 1;
                break;
            }
        }
    }
    notify::stopping();
    daemon.stop();
    return exit_code;
}

}  // namespace fragtune
