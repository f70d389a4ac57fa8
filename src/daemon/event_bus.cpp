#include "event_bus.hpp"

#include <poll.h>
#include <sys/epoll.h>

#include <cstring>

#include <fmt/format.h>

#include <sdbus-c++/sdbus-c++.h>

namespace fragtune {

namespace {

// poll(2) events from sd-bus to epoll events for sd-event (the low bits agree, but say so).
uint32_t epoll_events(short poll_events) {
    uint32_t e = 0;
    if (poll_events & POLLIN) e |= EPOLLIN;
    if (poll_events & POLLOUT) e |= EPOLLOUT;
    if (poll_events & POLLPRI) e |= EPOLLPRI;
    return e;
}

std::string sd_error(const char* call, int r) {
    return fmt::format("{}: {}", call, std::strerror(-r));
}

}  // namespace

std::unique_ptr<EventBus> EventBus::attach(sd_event* event, sdbus::IConnection& connection,
                                           LostFn on_lost, std::string& error) {
    std::unique_ptr<EventBus> self(new EventBus(connection, std::move(on_lost)));
    sdbus::IConnection::PollData pd{};
    try {
        pd = connection.getEventLoopPollData();
    } catch (const sdbus::Error& e) {
        error = "the bus connection has no poll data: " + e.getMessage();
        return nullptr;
    }
    self->fd_ = pd.fd;
    int r = sd_event_add_io(event, &self->io_, pd.fd, epoll_events(pd.events), &EventBus::on_io,
                            self.get());
    if (r < 0) {
        error = sd_error("sd_event_add_io (bus)", r);
        return nullptr;
    }
    r = sd_event_source_set_prepare(self->io_, &EventBus::on_prepare);
    if (r < 0) {
        error = sd_error("sd_event_source_set_prepare (bus)", r);
        return nullptr;
    }
    // Accuracy 1 us: sd-bus's own method-call timeouts should not be coalesced late.
    r = sd_event_add_time(event, &self->time_, CLOCK_MONOTONIC, UINT64_MAX, 1, &EventBus::on_time,
                          self.get());
    if (r < 0) {
        error = sd_error("sd_event_add_time (bus)", r);
        return nullptr;
    }
    (void)sd_event_source_set_enabled(self->time_, SD_EVENT_OFF);
    // Below the owner's timers and signals (priority 0): a busy bus waits for a due tick.
    for (sd_event_source* s : {self->io_, self->time_}) {
        r = sd_event_source_set_priority(s, kPriority);
        if (r < 0) {
            error = sd_error("sd_event_source_set_priority (bus)", r);
            return nullptr;
        }
    }
    (void)sd_event_source_set_description(self->io_, "bus-io");
    (void)sd_event_source_set_description(self->time_, "bus-timeout");
    return self;
}

EventBus::~EventBus() {
    sd_event_source_disable_unref(io_);
    sd_event_source_disable_unref(time_);
}

void EventBus::lost(const std::string& why) {
    if (lost_) return;
    lost_ = true;
    (void)sd_event_source_set_enabled(io_, SD_EVENT_OFF);
    (void)sd_event_source_set_enabled(time_, SD_EVENT_OFF);
    if (on_lost_) on_lost_(why);
}

bool EventBus::dispatch() {
    if (lost_) return false;
    try {
        // At most kMaxMessagesPerDispatch at a time: a client that keeps the queue full must not
        // keep the loop from its tick (and the tick from petting the watchdog). What is left makes
        // the fd readable or sd-bus's timeout 0 (refresh()), so the loop comes back to it after
        // the sources of higher priority that are due.
        for (int n = 0; n < kMaxMessagesPerDispatch && connection_.processPendingRequest(); ++n) {
        }
    } catch (const sdbus::Error& e) {
        lost("lost the D-Bus connection: " + e.getMessage());
        return false;
    }
    return true;
}

bool EventBus::refresh() {
    if (lost_) return false;
    sdbus::IConnection::PollData pd{};
    try {
        pd = connection_.getEventLoopPollData();
    } catch (const sdbus::Error& e) {
        lost("lost the D-Bus connection: " + e.getMessage());
        return false;
    }
    int r = 0;
    if (pd.fd != fd_) {
        r = sd_event_source_set_io_fd(io_, pd.fd);
        if (r < 0) {
            lost(sd_error("sd_event_source_set_io_fd (bus)", r));
            return false;
        }
        fd_ = pd.fd;
    }
    r = sd_event_source_set_io_events(io_, epoll_events(pd.events));
    if (r < 0) {
        lost(sd_error("sd_event_source_set_io_events (bus)", r));
        return false;
    }
    if (pd.timeout_usec == UINT64_MAX) {
        r = sd_event_source_set_enabled(time_, SD_EVENT_OFF);
    } else {
        r = sd_event_source_set_time(time_, pd.timeout_usec);
        if (r >= 0) r = sd_event_source_set_enabled(time_, SD_EVENT_ONESHOT);
    }
    if (r < 0) {
        lost(sd_error("bus timeout source", r));
        return false;
    }
    return true;
}

// Before every poll: nothing may wait in sd-bus's queues (a message already read into memory
// would not make the fd readable again), and the events and timeout must be sd-bus's current ones.
int EventBus::on_prepare(sd_event_source*, void* self) {
    auto* b = static_cast<EventBus*>(self);
    if (b->dispatch()) (void)b->refresh();
    return 0;
}

int EventBus::on_io(sd_event_source*, int, uint32_t, void* self) {
    (void)static_cast<EventBus*>(self)->dispatch();
    return 0;
}

int EventBus::on_time(sd_event_source*, uint64_t, void* self) {
    (void)static_cast<EventBus*>(self)->dispatch();
    return 0;
}

}  // namespace fragtune
