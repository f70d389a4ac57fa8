// sdbus-c++ on an sd-event loop. sdbus-c++ 1.2 (Debian 12) has no sd-event hook, so this attaches
// a connection the way sd_bus_attach_event() does inside libsystemd: an io source on
// getEventLoopPollData().fd, a CLOCK_MONOTONIC time source at the poll data's timeout, and a prepare
// callback (run before every poll) that dispatches what is pending with processPendingRequest()
// (at most kMaxMessagesPerDispatch messages per call, at a priority below the owner's timers and
// signals, so a flooding client cannot starve the tick), then refreshes the io events (POLLOUT while messages wait to be written)
// and the timeout. Method handlers and signal callbacks therefore run on the loop's thread.
//
// Used by fragtuned (src/daemon/service.cpp) and `fragtunectl monitor` (src/ctl/client.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <systemd/sd-event.h>

namespace sdbus {
class IConnection;
}

namespace fragtune {

class EventBus {
  public:
    // Called once when the connection is lost or cannot be dispatched, with the reason; the owner
    // decides how to stop (fragtuned: exit 1, systemd restarts it). After it the sources are off.
    using LostFn = std::function<void(const std::string& why)>;

    // Attaches `connection` to `event`. Returns nullptr and sets `error` (the sd-event call and its
    // strerror) when a source cannot be created.
    static std::unique_ptr<EventBus> attach(sd_event* event, sdbus::IConnection& connection,
                                            LostFn on_lost, std::string& error);
    ~EventBus();  // removes the sources; the connection is left to its owner
    EventBus(const EventBus&) = delete;
    EventBus& operator=(const EventBus&) = delete;

    // Messages handled per dispatch; the rest wait for the next loop iteration.
    static constexpr int kMaxMessagesPerDispatch = 64;
    // sd-event priority of the bus sources: after SD_EVENT_PRIORITY_NORMAL (0) sources that are due.
    static constexpr int64_t kPriority = SD_EVENT_PRIORITY_NORMAL + 10;

  private:
    EventBus(sdbus::IConnection& connection, LostFn on_lost)
        : connection_(connection), on_lost_(std::move(on_lost)) {}
    static int on_io(sd_event_source* s, int fd, uint32_t revents, void* self);
    static int on_time(sd_event_source* s, uint64_t usec, void* self);
    static int on_prepare(sd_event_source* s, void* self);
    // Dispatches what is pending (bounded); false (after on_lost) when the connection is gone.
    bool dispatch();
    // Re-reads the poll data into the io and time sources; false (after on_lost) on failure.
    bool refresh();
    void lost(const std::string& why);

    sdbus::IConnection& connection_;
    LostFn on_lost_;
    sd_event_source* io_ = nullptr;
    sd_event_source* time_ = nullptr;
    int fd_ = -1;
    bool lost_ = false;
};

}  // namespace fragtune
