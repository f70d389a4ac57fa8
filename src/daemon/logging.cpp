#include "logging.hpp"

#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>

namespace fragtune::logging {

namespace {
bool g_journal = false;
}

bool stderr_is_journal() {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (!js) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return st.st_dev == dev && st.st_ino == ino;
}

Result<void> set_level(std::string_view level) {
    auto lvl = spdlog::level::from_str(std::string(level));
    // from_str maps unknown names to "off"; only "off" itself may mean off.
    if (lvl == spdlog::level::off && level != "off")
        return make_error(
            fmt::format("unknown log level '{}' (trace, debug, info, warn, error)", level));
    spdlog::set_level(lvl);
    return {};
}

Result<void> setup(std::string_view level) {
    g_journal = stderr_is_journal();
    std::shared_ptr<spdlog::logger> logger;
    if (g_journal) {
        logger = std::make_shared<spdlog::logger>(
            "fragtuned", std::make_shared<spdlog::sinks::systemd_sink_st>("fragtuned"));
    } else {
        logger = std::make_shared<spdlog::logger>(
            "fragtuned", std::make_shared<spdlog::sinks::stderr_sink_st>());
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    }
    spdlog::set_default_logger(logger);
    return set_level(level);
}

void decision(const Decision& d, bool applied) {
    const std::string msg = format_decision(d) + (applied ? "" : " (not applied)");
    const auto lvl = d.action == Action::refuse || d.action == Action::pin ? spdlog::level::warn
                                                                           : spdlog::level::info;
    if (!spdlog::should_log(lvl)) return;
    if (!g_journal) {
        spdlog::log(lvl, "{}", msg);
        return;
    }
    const auto& t = spec(d.knob);
    sd_journal_send(
        "MESSAGE=%s", msg.c_str(), "PRIORITY=%d", lvl == spdlog::level::warn ? 4 : 6,
        "SYSLOG_IDENTIFIER=fragtuned", "FRAGTUNE_KNOB=%.*s", static_cast<int>(t.sysctl.size()),
        t.sysctl.data(), "FRAGTUNE_OLD=%lld", static_cast<long long>(d.old_value),
        "FRAGTUNE_NEW=%lld", static_cast<long long>(d.new_value), "FRAGTUNE_ACTION=%.*s",
        static_cast<int>(to_string(d.action).size()), to_string(d.action).data(),
        "FRAGTUNE_RULE=%s", d.rule.c_str(), "FRAGTUNE_APPLIED=%d", applied ? 1 : 0, nullptr);
}

}  // namespace fragtune::logging
