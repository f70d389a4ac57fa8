// Reading and writing the five knobs through the one door (KernelFs). Every write is validated
// before it is made and verified after: the value fragtune believes it wrote is the value the
// kernel reports.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "fragtune/knobs/tunables.hpp"
#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/util/result.hpp"

namespace fragtune {

// Pure: the integer a /proc/sys file holds ("60\n" -> 60). Surrounding whitespace is allowed;
// anything else (empty, a second number, trailing text, out of int64 range) is an error naming
// `what`.
Result<int64_t> parse_sysctl_int(std::string_view text, std::string_view what);

// The knob's live value. nullopt when its /proc/sys file does not exist (the kernel lacks the
// knob); any other failure (EACCES, unparsable contents) is an error naming the knob and its path.
Result<std::optional<int64_t>> read_knob(const KernelFs& fs, Knob knob);

// Writes `value` to the knob and returns the value read back.
//  1. `value` outside `bounds` is refused without any write (error names knob, value and range).
//  2. One write() of the decimal value. A failure keeps the errno in Error::sys_errno (EINVAL: the
//  kernel
//     rejected the value; EACCES/EPERM: not privileged or blocked by a security policy; EROFS:
//     /proc/sys is read-only, as in most containers; ENOENT: the kernel lacks the knob) and says
//     what to do.
//  3. Read back: a different value is an error "vm.X: wrote N but kernel reports M".
Result<int64_t> apply_knob(const KernelFs& fs, Knob knob, int64_t value, Range bounds);

// One-shot full compaction: writes "1" to /proc/sys/vm/compact_memory (write-only, nothing to read
// back). Same errno contract as apply_knob.
Result<void> write_compact_memory(const KernelFs& fs);

}  // namespace fragtune
