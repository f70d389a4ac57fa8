// The TOML configuration file: /etc/fragtune/fragtune.toml, then the drop-ins
// /etc/fragtune/fragtune.toml.d/*.toml in lexical (byte) order, later values winning key by key.
// The layout is made for configuration management: a role or a ConfigMap adds one drop-in instead
// of templating the main file, and `fragtuned --check-config --config FILE` validates a candidate
// before it is installed.
//
// Every key is one row of the key registry (config_keys()): its section, name, value kind, unit,
// range, the Config field it sets and one line of documentation. The loader, the effective-config
// renderer, the shipped config/fragtune.toml and man/fragtune.toml.5 are all checked against the
// registry by the unit tests, so a field added to config.hpp without a row fails the build's tests.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fragtune/configuration/config.hpp"
#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/util/result.hpp"

namespace fragtune {

inline constexpr std::string_view kDefaultConfigPath = "/etc/fragtune/fragtune.toml";

// How a value is written in the file. The kind decides which TOML types are accepted and how the
// value is converted to the field's unit.
enum class ValueKind {
    boolean,          // true / false
    integer,          // TOML integer
    number,           // TOML float or integer
    duration,         // string "100ms", "5s", "30min", "1h30min" -> microseconds (no bare integers)
    size,             // string "64M", "1G", "512K" -> KiB; a bare integer only where allow_int_kib
    size_or_percent,  // like size, or "5%" of managed lowmem (min_free_kbytes bounds)
    string,           // free text
    path,             // absolute path without ".." components (KernelFs refuses anything else)
    optional_path,    // like path, or "" for "off"
    choice,           // one of `choices`
    orders,           // array of page orders 0..15, not empty, no duplicates
    psi_source,       // "system" or an absolute cgroup v2 directory
};

// The Config field a key sets, as a typed accessor (captureless function). Reading a const Config
// goes through a copy; see get_field_text().
using FieldRef =
    std::variant<bool& (*)(Config&), int& (*)(Config&), uint32_t& (*)(Config&),
                 int64_t& (*)(Config&), uint64_t& (*)(Config&), double& (*)(Config&),
                 std::string& (*)(Config&), std::vector<int>& (*)(Config&),
                 std::optional<int64_t>& (*)(Config&), Mode& (*)(Config&), OnExit& (*)(Config&)>;

struct ConfigKey {
    std::string section;  // "daemon", "tunables.min_free_kbytes"
    std::string key;      // "tick"
    ValueKind kind = ValueKind::integer;
    std::string unit;  // unit of the stored value: "usec", "KiB", "percent", "" ...
    double min = 0,
           max = 0;  // documented range, inclusive, in the stored unit (not for text kinds)
    bool min_exclusive = false;  // the range is (min, max]
    bool allow_int_kib = false;  // size kinds: a bare integer is KiB (as in vm.min_free_kbytes)
    bool allow_zero = false;     // duration kinds: 0 is accepted besides the range ("adaptive")
    std::vector<std::string> choices;  // ValueKind::choice
    FieldRef field;
    // size_or_percent: the KnobConfig percent field that holds "N%"; exactly one of field / percent
    // is set after a value is applied.
    std::optional<double>& (*percent_field)(Config&) = nullptr;
    std::string doc;  // one line: what it does
    std::string
        range_note;  // why the range is what it is, when not obvious ("the kernel's range ...")
    std::string required_suffix;  // path kinds: the name must end so ("" for any)
    std::string suffix_reason;    // why (shown in the error)
    // Path kinds: fragtuned writes this file, so it may not be under /proc, /sys or /dev.
    bool written = false;
    // Where the man page documents it: the section, or "tunables.*" for keys every tunable has.
    std::string doc_section;

    std::string full_name() const { return section + "." + key; }  // "daemon.tick"
};

// Every key, in the order of the shipped file and of render_effective_config().
const std::vector<ConfigKey>& config_keys();
// The row for "section.key", or nullptr.
const ConfigKey* find_config_key(std::string_view full_name);

// Why `value` cannot be the value of the path key `full_name` ("daemon.persist_path"), or nullopt
// when it can: absolute, no ".." component, the key's required suffix, and for files fragtuned
// writes not under /proc, /sys or /dev. The configuration file's check, shared by the command-line
// overrides (--persist-path, --state-path). An unknown or non-path key is a programming error and
// is reported as such.
std::optional<std::string> path_value_problem(std::string_view full_name, std::string_view value);

// Where a value came from. `file` empty: the built-in default.
struct ValueOrigin {
    std::string file;
    uint32_t line = 0, column = 0;  // 1-based; columns count Unicode code points (toml++)
    int file_index = -1;            // position in LoadedConfig::files; later files win

    bool is_default() const { return file.empty(); }
    std::string describe() const;  // "FILE:LINE" or "default"
};

struct ConfigDiagnostic {
    enum class Severity { error, warning };
    Severity severity = Severity::error;
    std::string file;
    uint32_t line = 0, column = 0;  // 0 when the problem has no position (unreadable file)
    std::string key;                // "daemon.tick"; empty for syntax and I/O errors
    std::string message;

    // "file:line:col: key: message" ("warning: " before the message for warnings; parts without a
    // value are left out).
    std::string describe() const;
};

struct LoadedConfig {
    Config config;
    std::map<std::string, ValueOrigin, std::less<>>
        origins;                             // full key name -> origin (set keys only)
    std::vector<std::string> files;          // files read, in the order applied
    std::vector<ConfigDiagnostic> warnings;  // valid but suspicious settings

    // The origin of a key; a default origin for keys no file set.
    ValueOrigin origin(std::string_view full_name) const;
};

// The full outcome of reading the configuration: the merged result and every diagnostic, errors and
// warnings, sorted by file order, line and column.
struct ConfigReport {
    LoadedConfig loaded;
    std::vector<ConfigDiagnostic> diagnostics;

    bool ok() const;  // no error-severity diagnostic
};

// Reads `main_path` (absent: the built-in defaults) then `<main_path>.d/*.toml` (absent directory:
// none) through `kfs`, validates every value and the merged result, and never stops at the first
// problem. Never throws.
ConfigReport check_config(const KernelFs& kfs, std::string_view main_path = kDefaultConfigPath);

// check_config() as a Result: on failure the Error message holds every error diagnostic, one per
// line, in the describe() form.
Result<LoadedConfig> load_config(const KernelFs& kfs,
                                 std::string main_path = std::string(kDefaultConfigPath));

// The same checks on one document held in memory (`name` is used in diagnostics), for tests and for
// validating text received over D-Bus.
ConfigReport check_config_text(std::string_view toml_text, std::string_view name);

// The value of a key in `config` as it is written in TOML ("\"2s\"", "true", "[3, 9]"); nullopt for
// an unset optional (min/max/baseline left to the table default or the live value).
std::optional<std::string> get_field_text(const ConfigKey& key, const Config& config);

// The merged configuration as a TOML document, every key present, each followed by
// "# from FILE:LINE" or "# default". Unset optionals are written as comments. Loading the output
// yields the same Config.
std::string render_effective_config(const LoadedConfig& loaded);

}  // namespace fragtune
