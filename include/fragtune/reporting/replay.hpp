// Record and replay: `fragtuned --record DIR` saves the /proc files a tick read (and the kernel-log
// failures it saw) as DIR/NNNNNNNN/..., a tree KernelFs can be rooted at; `fragtuned --replay DIR` runs
// the controller over such a recording in observe mode and lists the decisions it would have made, so
// operators can try a policy on their own machines' history and tests can use real recordings.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fragtune/configuration/config.hpp"
#include "fragtune/deciding/controller.hpp"
#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/sensing/parsers.hpp"
#include "fragtune/util/result.hpp"

namespace fragtune {

// The files one tick reads (absolute, machine namespace), PSI path aside.
const std::vector<std::string>& recorded_files();

// Pure: a kernel-log line that parse_alloc_failure() reads back as the same failure (task, order,
// kind, atomic, mode, vmalloc size).
std::string format_alloc_failure_line(const AllocFailure& f);

// Copies the tick's files from `live` into `dir`/NNNNNNNN (NNNNNNNN = `seq`, zero-padded) with a
// `tick` file holding mono_usec, and the failures as kernel-log lines in `kmsg`. The PSI file is
// stored at its configured path. Missing optional files are skipped, as the Sampler skips them.
Result<void> record_tick(const KernelFs& live, const std::filesystem::path& dir, uint64_t seq,
                         uint64_t mono_usec, const std::vector<AllocFailure>& failures,
                         const std::string& psi_path);

struct ReplayedDecision {
    uint64_t offset_usec = 0;  // since the first recorded tick
    Decision decision;
};

struct ReplayResult {
    size_t ticks = 0;
    std::vector<ReplayedDecision> decisions;
    std::vector<std::string> skipped;  // ticks that could not be sampled, with the reason
};

// Runs sampling and decide() over every tick directory of `dir` in order, as if the recorded values
// were live: observe mode, nothing written. Errors: `dir` unreadable or holding no tick.
Result<ReplayResult> replay_recording(const std::filesystem::path& dir, const Config& config);

// "+12.0s vm.min_free_kbytes 67584 -> 101376 [raise: atomic-failures] ..." one line per decision,
// then a summary line.
std::string format_replay(const ReplayResult& r);

}  // namespace fragtune
