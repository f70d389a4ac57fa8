// Logging set-up for fragtuned, the one place that knows where log records go: the systemd journal when
// stderr is connected to it (JOURNAL_STREAM names stderr's device:inode), stderr otherwise. The core
// library never logs; the daemon logs once, at the edge, what the core returned.
#pragma once

#include <string>
#include <string_view>

#include "fragtune/deciding/controller.hpp"
#include "fragtune/util/result.hpp"

namespace fragtune::logging {

// True when stderr is the journal stream systemd set up for this service.
bool stderr_is_journal();

// Installs the default spdlog logger. `level` is trace|debug|info|warn|error; an unknown level is an
// error naming it (the previous level stays).
Result<void> setup(std::string_view level);
Result<void> set_level(std::string_view level);

// One record per change with structured fields KNOB=, OLD=, NEW=, ACTION=, RULE= (journal) so that
// `journalctl -o json` consumers can use them; the MESSAGE is format_decision(d).
void decision(const Decision& d, bool applied);

}  // namespace fragtune::logging
