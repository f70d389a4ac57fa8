#include "fragtune/persisting/sysctl_d.hpp"

#include <fnmatch.h>

#include <cerrno>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "fragtune/util/text.hpp"
namespace fragtune {

namespace {

bool is_glob(std::string_view key) {
    return key.find_first_of("*?[") != std::string_view::npos;
}

std::string at(const SysctlAssignment& a) {
    return fmt::format("{}:{}", a.source, a.line);
}

// The file's directory and basename; ("", "") when `path` has no directory part.
std::pair<std::string, std::string> split(std::string_view path) {
    const std::filesystem::path p(path);
    return {p.parent_path().string(), p.filename().string()};
}

}  // namespace

std::string normalize_sysctl_key(std::string_view key) {
    std::string k(key);
    const auto first = k.find_first_of("./");
    if (first != std::string::npos && k[first] == '/') {
        for (char& c : k) {
            if (c == '/')
                c = '.';
            else if (c == '.')
                c = '/';
        }
    }
    // Drop leading separators and collapse repeated ones ("vm..swappiness", "/vm/swappiness").
    std::string out;
    for (char c : k) {
        if (c == '.' && (out.empty() || out.back() == '.')) continue;
        out += c;
    }
    while (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

ParsedSysctlConf parse_sysctl_conf(std::string_view text, std::string_view source) {
    ParsedSysctlConf out;
    int line_no = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view raw = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;

        const std::string_view line = trim(raw);  // also drops the '\r' of CRLF line ends
        if (line.empty() || line.front() == '#' || line.front() == ';') continue;

        auto issue = [&](std::string msg) {
            out.issues.push_back({std::string(source), line_no, std::move(msg)});
        };
        const auto eq = line.find('=');
        std::string_view key = trim(line.substr(0, eq));
        bool ignore_failure = false;
        if (!key.empty() && key.front() == '-') {
            ignore_failure = true;
            key = trim(key.substr(1));
        }
        if (eq == std::string_view::npos) {
            if (ignore_failure && !normalize_sysctl_key(key).empty()) {  // "-.." is no key
                const std::string norm = normalize_sysctl_key(key);
                out.exclusions.push_back(
                    {norm, "", std::string(source), line_no, true, is_glob(norm)});
                continue;
            }
            issue(fmt::format("'{}' is not an assignment (expected key = value)", line));
            continue;
        }
        if (key.empty()) {
            issue(fmt::format("'{}' has no key before '='", line));
            continue;
        }
        const std::string_view value = trim(line.substr(eq + 1));
        const std::string norm = normalize_sysctl_key(key);
        if (norm.empty()) {
            issue(fmt::format("'{}' has no key before '='", line));
            continue;
        }
        if (value.empty()) {
            issue(fmt::format("{} has an empty value", norm));
            continue;
        }
        out.assignments.push_back({norm, std::string(value), std::string(source), line_no,
                                   ignore_failure, is_glob(norm)});
    }
    return out;
}

const SysctlAssignment* KnobBootInfo::others_winner() const {
    if (!after_ours.empty()) return &after_ours.back();
    if (!before_ours.empty()) return &before_ours.back();
    return nullptr;
}

std::string KnobBootInfo::describe(std::string_view sysctl) const {
    if (const SysctlAssignment* w = others_winner(); w != nullptr) {
        if (conflict())
            return fmt::format(
                "{} = {} is set at boot by {}, after fragtune's file: that value wins "
                "at boot",
                sysctl, w->value, at(*w));
        return fmt::format("{} is also set in {} (= {}); fragtune's file is applied later and wins",
                           sysctl, at(*w), w->value);
    }
    if (!globs.empty())
        return fmt::format("{} may also be set by the glob {} in {} (globs are not evaluated)",
                           sysctl, globs.back().key, at(globs.back()));
    return {};
}

BootSysctlConfig effective_boot_values(const KernelFs& fs, std::string_view own_file) {
    BootSysctlConfig out;
    const auto [own_dir, own_base] = split(own_file);

    // basename -> directory it survives from (the first directory in precedence order that has it).
    std::map<std::string, std::string> surviving;
    for (std::string_view dir : kSysctlDirs) {
        auto names = fs.list_dir(dir);
        if (!names) {
            if (names.error().sys_errno != ENOENT && names.error().sys_errno != ENOTDIR)
                out.issues.push_back(
                    {std::string(dir), 0,
                     fmt::format("cannot list the directory: {}", names.error().describe())});
            continue;
        }
        for (const auto& n : *names) {
            if (n.size() <= 5 || !n.ends_with(".conf") || n.front() == '.') continue;
            surviving.emplace(n, std::string(dir));
        }
    }

    // Where our file stands: it must be in a sysctl.d directory and not masked by a same-named file
    // in a directory of higher precedence.
    int own_rank = -1;
    for (size_t i = 0; i < kSysctlDirs.size(); ++i)
        if (own_dir == kSysctlDirs[i]) own_rank = static_cast<int>(i);
    if (own_rank < 0) {
        out.own_file_masked = true;
        out.issues.push_back({std::string(own_file), 0,
                              "is not in a sysctl.d directory: systemd-sysctl never reads it, so "
                              "persisted values do not apply at boot"});
    } else if (auto it = surviving.find(own_base); it != surviving.end() && it->second != own_dir) {
        int their_rank = 0;
        for (size_t i = 0; i < kSysctlDirs.size(); ++i)
            if (it->second == kSysctlDirs[i]) their_rank = static_cast<int>(i);
        if (their_rank < own_rank) {
            out.own_file_masked = true;
            out.issues.push_back({std::string(own_file), 0,
                                  fmt::format("is masked by {}/{}: persisted values do not apply "
                                              "at boot",
                                              it->second, own_base)});
        } else {
            it->second = own_dir;  // ours masks theirs
        }
    }

    std::vector<SysctlAssignment> exclusions;
    auto record = [&](const ParsedSysctlConf& parsed, bool is_own, bool after) {
        for (const auto& i : parsed.issues) out.issues.push_back(i);
        exclusions.insert(exclusions.end(), parsed.exclusions.begin(), parsed.exclusions.end());
        for (const auto& t : kTunables) {
            KnobBootInfo& info = out.knobs[index(t.knob)];
            for (const auto& a : parsed.assignments) {
                if (a.glob) {
                    if (!is_own && ::fnmatch(a.key.c_str(), std::string(t.sysctl).c_str(), 0) == 0)
                        info.globs.push_back(a);
                    continue;
                }
                if (a.key != t.sysctl) continue;
                if (is_own)
                    info.own = a;
                else if (after)
                    info.after_ours.push_back(a);
                else
                    info.before_ours.push_back(a);
            }
        }
    };
    auto read_file = [&](const std::string& path) -> std::optional<ParsedSysctlConf> {
        auto text = fs.read(path, kConfigFileLimits);
        if (!text) {
            // Absent: our own file before its first write (it then masks a same-named file of
            // lower precedence), or no legacy /etc/sysctl.conf. Neither is worth reporting.
            const bool quiet =
                text.error().sys_errno == ENOENT && (path == kLegacySysctlConf || path == own_file);
            if (!quiet)
                out.issues.push_back(
                    {path, 0, fmt::format("cannot read: {}", text.error().describe())});
            return std::nullopt;
        }
        out.files.push_back(path);
        return parse_sysctl_conf(*text, path);
    };

    for (const auto& [base, dir] : surviving) {
        const std::string path = dir + "/" + base;
        const bool is_own = !out.own_file_masked && path == own_file;
        // With our file masked or outside sysctl.d, every other file's assignment stands at boot.
        const bool after = out.own_file_masked || base > own_base;
        if (auto parsed = read_file(path)) record(*parsed, is_own, after);
    }
    if (std::string_view(own_file) != kLegacySysctlConf) {
        if (auto parsed = read_file(std::string(kLegacySysctlConf))) record(*parsed, false, true);
    }

    // "-key" exclusions (from any file) keep globs off that key.
    for (const auto& t : kTunables) {
        auto& globs = out.knobs[index(t.knob)].globs;
        const std::string key(t.sysctl);
        for (const auto& ex : exclusions) {
            if (ex.key == key || (ex.glob && ::fnmatch(ex.key.c_str(), key.c_str(), 0) == 0)) {
                globs.clear();
                break;
            }
        }
    }
    return out;
}

}  // namespace fragtune
