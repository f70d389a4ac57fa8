// What the sysctl.d configuration will set at the next boot, so fragtune can tell whether its own
// persisted file wins or another file overrides it (a *conflict*: the administrator wins, fragtune
// pins the knob).
//
// The model is systemd-sysctl's (sysctl.d(5); systemd src/sysctl/sysctl.c, conf-files.c), extended
// to cover procps `sysctl --system`:
//  * Directories, highest precedence first: /etc/sysctl.d, /run/sysctl.d, /usr/local/lib/sysctl.d,
//    /usr/lib/sysctl.d, /lib/sysctl.d. Only "*.conf" files count (hidden files are ignored).
//  * A file masks every same-named file in later directories; a symlink to /dev/null or an empty
//  file
//    masks too (it simply contributes nothing).
//  * The surviving files are applied in the order of their basenames, whatever their directory, and
//  a
//    later assignment of the same key overrides an earlier one: the last one wins.
//  * /etc/sysctl.conf: systemd-sysctl stopped reading it directly in v207; it reaches it only
//  through
//    the /etc/sysctl.d/99-sysctl.conf -> ../sysctl.conf symlink that systemd installs (on Debian 12
//    the systemd package owns it), so it applies at the position of "99-sysctl.conf". procps
//    `sysctl --system` (also run by administrators and non-systemd inits) reads it once more after
//    all .d files. fragtune models the union: /etc/sysctl.conf is also applied last. That is
//    conservative: anything it sets counts as set after fragtune's file, which can only turn "ours
//    wins" into a conflict (fragtune steps aside), never the other way round.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fragtune/knobs/tunables.hpp"
#include "fragtune/sensing/kernel_fs.hpp"

namespace fragtune {

// The directories searched, highest precedence first, and the legacy file applied last.
inline constexpr std::array<std::string_view, 5> kSysctlDirs = {
    "/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d",
    "/lib/sysctl.d"};
inline constexpr std::string_view kLegacySysctlConf = "/etc/sysctl.conf";

struct SysctlAssignment {
    std::string key;              // normalized, dot-separated: "vm/swappiness" -> "vm.swappiness"
    std::string value;            // as written, surrounding whitespace removed
    std::string source;           // the file ("/etc/sysctl.d/99-local.conf")
    int line = 0;                 // 1-based
    bool ignore_failure = false;  // the key had a leading '-': a failed write is not an error
    bool glob = false;            // the key holds a glob pattern (*, ?, [): never expanded here
};

// A line that is not understood, reported and skipped (systemd skips it too): never fatal.
struct SysctlConfIssue {
    std::string source;
    int line = 0;  // 0: about the file as a whole (unreadable, masked...)
    std::string message;
};

struct ParsedSysctlConf {
    std::vector<SysctlAssignment> assignments;  // in file order
    // "-key" lines without '=': the key is excluded from glob assignments (sysctl.d(5)); value
    // empty.
    std::vector<SysctlAssignment> exclusions;
    std::vector<SysctlConfIssue> issues;
};

// Pure. "vm/swappiness" -> "vm.swappiness": when the first separator is '/', '/' and '.' swap (as
// systemd's sysctl_normalize does, so "net/ipv4/conf/eth0.100/rp_filter" keeps its dotted interface
// name); leading separators are dropped and repeated ones collapsed.
std::string normalize_sysctl_key(std::string_view key);

// Pure: the assignments of one sysctl.d file. Lines are "key = value" or "key=value"; blank lines
// and lines whose first non-blank character is '#' or ';' are comments (there are no trailing
// comments: the rest of the line is the value). CRLF line ends are accepted. A leading '-' on the
// key marks ignore_failure; "-key" alone is a glob exclusion. Lines without '=' (other than
// exclusions), with an empty key or an empty value are issues with file:line.
ParsedSysctlConf parse_sysctl_conf(std::string_view text, std::string_view source);

// What the boot configuration does to one knob.
struct KnobBootInfo {
    // Every assignment of the knob's key in files other than ours, in application order.
    // applied before our file: ours wins ("also set in")
    std::vector<SysctlAssignment> before_ours;
    std::vector<SysctlAssignment> after_ours;  // applied after our file: theirs wins (a conflict)
    std::optional<SysctlAssignment> own;       // the last assignment in our own file, if any
    // Glob assignments elsewhere whose pattern matches the key and that no "-key" line excludes:
    // reported, not judged (systemd lets an explicit assignment of a key override every glob,
    // procps expands globs differently, and a glob only applies where no explicit key exists).
    std::vector<SysctlAssignment> globs;

    // The assignment that would win at boot among the OTHER files (what the system sets without
    // fragtune): the last of before_ours + after_ours.
    const SysctlAssignment* others_winner() const;
    bool conflict() const { return !after_ours.empty(); }
    // One line for logs and status: "vm.swappiness = 10 is set at boot by
    // /etc/sysctl.d/99-x.conf:3, after fragtune's file" / "also set in
    // /usr/lib/sysctl.d/50-x.conf:2 (fragtune's file wins)" /
    // "" when no other file sets it.
    std::string describe(std::string_view sysctl) const;
};

struct BootSysctlConfig {
    std::array<KnobBootInfo, kKnobCount> knobs{};
    std::vector<std::string> files;  // the files applied, in order (our own included, if it exists)
    std::vector<SysctlConfIssue> issues;  // malformed lines, unreadable files, a masked own file
    // Our file is masked by a same-named file in a directory of higher precedence (or is not in a
    // sysctl.d directory at all): nothing we persist applies at boot.
    bool own_file_masked = false;

    const KnobBootInfo& knob(Knob k) const { return knobs[index(k)]; }
};

// Reads the sysctl.d configuration through `fs` and reports, for each of the five knobs, who sets
// it at boot relative to `own_file` (fragtune's persist path, e.g.
// "/etc/sysctl.d/90-fragtune.conf", which need not exist yet: its position follows from its name).
// Missing directories are normal; unreadable files and malformed lines become issues. Never fails
// as a whole.
BootSysctlConfig effective_boot_values(const KernelFs& fs, std::string_view own_file);

}  // namespace fragtune
