// kernel_check: runs inside a qemu guest booted from a real Debian kernel (tests/kernels/run) and
// compares fragtune's kernel model with that kernel. Each check prints one line
//   @@CHECK <name> PASS|FAIL|SKIP <detail>
// that the host counts. Every check uses the project's own code (KernelProfile, predict_watermarks,
// kernel_min_free_kbytes, Sampler, decide), so a model bug fails a check. The guest is throw-away,
// but every knob written is still restored.
//
// Usage: kernel_check FRAGTUNED [--hotplug]   (--hotplug: the host adds and removes a DIMM on cue)
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "fragtune/configuration/config.hpp"
#include "fragtune/deciding/controller.hpp"
#include "fragtune/sensing/kernel_profile.hpp"
#include "fragtune/sensing/sample.hpp"
#include "fragtune/sensing/sysctl_io.hpp"

using namespace fragtune;

namespace {

const KernelFs kFs("/");

void report(std::string_view name, std::string_view verdict, const std::string& detail) {
    std::printf("@@CHECK %.*s %.*s %s\n", static_cast<int>(name.size()), name.data(),
                static_cast<int>(verdict.size()), verdict.data(), detail.c_str());
    std::fflush(stdout);
}
void check(std::string_view name, bool ok, const std::string& detail) {
    report(name, ok ? "PASS" : "FAIL", detail);
}

std::string slurp(const char* path) {
    auto t = kFs.read(path);
    return t ? *t : std::string();
}

// Raw write to a sysctl: 0 or the errno.
int write_raw(const std::string& path, int64_t v) {
    int fd = ::open(path.c_str(), O_WRONLY);
    if (fd < 0) return errno;
    std::string s = std::to_string(v);
    int e = ::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size()) ? 0 : errno;
    ::close(fd);
    return e;
}
int64_t read_int(const std::string& path) {
    auto v = parse_sysctl_int(slurp(path.c_str()), path);
    return v ? *v : -1;
}

// Compares the model's watermarks with the kernel's zoneinfo (unboosted: printed - boost).
bool watermarks_match(const KernelProfile& profile, int64_t mfk, int64_t wsf, std::string& why) {
    auto zi = parse_zoneinfo(slurp("/proc/zoneinfo"));
    if (!zi) {
        why = zi.error().describe();
        return false;
    }
    auto wm = predict_watermarks(*zi, mfk, wsf, profile);
    for (size_t i = 0; i < zi->zones.size(); ++i) {
        const auto& z = zi->zones[i];
        if (z.managed == 0) continue;
        const uint64_t b = z.boost.value_or(0);
        if (z.min - b != wm[i].min || z.low - b != wm[i].low || z.high - b != wm[i].high) {
            why = fmt::format("mfk {} wsf {}: {} kernel {}/{}/{} model {}/{}/{}", mfk, wsf, z.zone,
                              z.min - b, z.low - b, z.high - b, wm[i].min, wm[i].low, wm[i].high);
            return false;
        }
    }
    return true;
}

std::string zones_summary() {
    auto zi = parse_zoneinfo(slurp("/proc/zoneinfo"));
    std::string out;
    if (!zi) return out;
    for (const auto& z : zi->zones)
        if (z.managed) out += fmt::format("{}={} ", z.zone, z.managed);
    return out;
}

void check_sample(const char* fragtuned, const KernelProfile& profile) {
    const std::string cmd = fmt::format("{} --sample --json --count 1 2>&1", fragtuned);
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    if (p) ::pclose(p);
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded()) {
        check("sample-json", false,
              "fragtuned --sample --json did not print JSON: " + out.substr(0, 200));
        return;
    }
    std::vector<std::string> bad;
    const long page = ::sysconf(_SC_PAGESIZE);
    if (j["page_size_kib"] != page / 1024) bad.push_back("page_size_kib");
    if (j["profile"]["release"] != profile.release) bad.push_back("release");
    auto pmd = parse_sysctl_int(slurp("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"), "pmd");
    if (pmd && (uint64_t{1} << j["profile"]["hpage_pmd_order"].get<int>()) * page !=
                   static_cast<uint64_t>(*pmd))
        bad.push_back("hpage_pmd_order");
    auto zi = parse_zoneinfo(slurp("/proc/zoneinfo"));
    size_t populated = 0;
    if (zi) {
        for (const auto& z : zi->zones) {
            if (!z.managed) continue;
            bool found = false;
            for (const auto& jz : j["zones"])
                if (jz["zone"] == z.zone && jz["node"] == z.node) {
                    found = true;
                    if (jz["managed_pages"] != z.managed || jz["min_pages"] != z.min ||
                        jz["high_pages"] != z.high)
                        bad.push_back("zone " + z.zone);
                }
            if (!found) bad.push_back("missing zone " + z.zone);
            ++populated;
        }
    }
    if (j["zones"].size() != populated) bad.push_back("zone count");
    for (const auto& t : kTunables) {
        const auto live = kFs.read(t.proc_path);
        const auto& jv = j["knobs"][std::string(t.name)];
        if (live ? jv != read_int(std::string(t.proc_path)) : !jv.is_null())
            bad.push_back(std::string(t.name));
    }
    std::string detail =
        bad.empty() ? fmt::format("{} zones, knobs, page size, huge-page order agree", populated)
                    : "differs: ";
    for (const auto& b : bad) detail += b + " ";
    check("sample-vs-live-files", bad.empty(), detail);
}

void check_watermark_grid(const KernelProfile& profile) {
    const std::string mpath = "/proc/sys/vm/min_free_kbytes",
                      wpath = "/proc/sys/vm/watermark_scale_factor";
    const int64_t mfk0 = read_int(mpath), wsf0 = read_int(wpath);
    int tried = 0;
    std::string why;
    bool ok = true;
    for (int64_t mfk : {mfk0, int64_t{4096}, int64_t{16384}, int64_t{45056}, mfk0 * 2}) {
        for (int64_t wsf : {int64_t{10}, int64_t{150}, int64_t{1000}}) {
            if (write_raw(mpath, mfk) || write_raw(wpath, wsf)) continue;
            ++tried;
            if (!watermarks_match(profile, mfk, wsf, why)) ok = false;
            if (!ok) break;
        }
        if (!ok) break;
    }
    write_raw(wpath, wsf0);
    write_raw(mpath, mfk0);
    check(
        "watermark-model-grid", ok && tried > 0,
        ok ? fmt::format(
                 "{} writes of min_free_kbytes x watermark_scale_factor, every zone's min/low/high "
                 "exact ({})",
                 tried, zones_summary())
           : why);
}

void check_movable(const KernelProfile& profile) {
    auto zi = parse_zoneinfo(slurp("/proc/zoneinfo"));
    bool has_movable = false;
    if (zi)
        for (const auto& z : zi->zones) has_movable |= z.zone == "Movable" && z.managed > 0;
    if (!has_movable) {
        report("movable-zone-rule", "SKIP",
               "no populated Movable zone (movablecore= not honoured)");
        return;
    }
    const int64_t mfk = read_int("/proc/sys/vm/min_free_kbytes");
    const int64_t wsf = read_int("/proc/sys/vm/watermark_scale_factor");
    std::string why, why_other;
    const bool ok = watermarks_match(profile, mfk, wsf, why);
    KernelProfile other = profile;
    other.movable_in_lowmem = !profile.movable_in_lowmem;
    const bool other_ok = watermarks_match(other, mfk, wsf, why_other);
    check("movable-zone-rule", ok && !other_ok,
          ok ? fmt::format(
                   "Movable {} lowmem on this kernel, as the profile says; the other rule is off "
                   "({})",
                   profile.movable_in_lowmem ? "counted in" : "excluded from",
                   other_ok ? "but also matches" : why_other)
             : why);
}

void check_ranges(const KernelProfile& initial) {
    KernelProfile profile = initial;
    std::string detail;
    bool ok = true;
    for (Knob k :
         {Knob::watermark_scale_factor, Knob::swappiness, Knob::compaction_proactiveness}) {
        const auto& t = spec(k);
        const std::string path(t.proc_path);
        const int64_t orig = read_int(path);
        if (orig < 0) continue;
        Range r = profile.range(k);
        int e = write_raw(path, r.max);
        std::string learnt;
        if (e == EINVAL) {
            // The profile was wider than this kernel: the refusal must narrow it to what it
            // accepts.
            narrow_range(profile, k, r.max, orig);
            learnt = fmt::format(" (refused {}: narrowed)", r.max);
            r = profile.range(k);
            e = write_raw(path, r.max);
        }
        const int e_over = write_raw(path, r.max + 1);
        const int e_under = write_raw(path, r.min - 1);
        const int e_min = write_raw(path, r.min);
        write_raw(path, orig);
        const bool k_ok = e == 0 && e_over == EINVAL && e_under == EINVAL && e_min == 0;
        ok &= k_ok;
        detail += fmt::format(
            "{} {}..{}{}{}; ", t.name, r.min, r.max, learnt,
            k_ok ? ""
                 : fmt::format(" [max:{} max+1:{} min-1:{} min:{}]", e, e_over, e_under, e_min));
    }
    check("kernel-range", ok, detail);
}

void check_psi_trigger() {
    int fd = ::open("/proc/pressure/memory", O_RDWR | O_NONBLOCK);
    if (fd < 0) {
        report("psi-trigger", "SKIP",
               fmt::format("/proc/pressure/memory: {}", std::strerror(errno)));
        return;
    }
    const char trig[] = "some 150000 2000000";
    const bool wrote = ::write(fd, trig, std::strlen(trig) + 1) > 0;
    const int e = errno;
    pollfd p{fd, POLLPRI, 0};
    const int pr = ::poll(&p, 1, 0);
    ::close(fd);
    check("psi-trigger", wrote && pr >= 0,
          wrote ? "trigger 'some 150000 2000000' accepted and pollable"
                : std::string("write: ") + std::strerror(e));
}

// Memory blocks online, for waiting on the host's DIMM add/remove.
size_t online_blocks() {
    auto l = kFs.list_dir("/sys/devices/system/memory");
    if (!l) return 0;
    size_t n = 0;
    for (const auto& name : *l)
        if (name.rfind("memory", 0) == 0 &&
            slurp(("/sys/devices/system/memory/" + name + "/state").c_str()).rfind("online", 0) ==
                0)
            ++n;
    return n;
}

Sample take(Sampler& s, uint64_t t) {
    auto r = s.take(t);
    if (!r) {
        std::fprintf(stderr, "sample: %s\n", r.error().describe().c_str());
        std::exit(1);
    }
    return *r;
}

// The host adds a DIMM after "@@HOTPLUG add-kernel" (onlined to Normal: the kernel's
// min_free_kbytes moves), another after "add-movable" (onlined to Movable) and removes that one
// after "remove". On each, the kernel's new min_free_kbytes must be the model's
// (kernel_min_free_kbytes, with the watermarks of the previous sample and this checker's last write
// as user_min_free_kbytes), and the controller must adopt a change as the kernel's, never pin it.
void check_hotplug() {
    Config config;
    Sampler sampler(kFs, SamplerOptions{});
    uint64_t t = 1'000'000;
    Sample prev = take(sampler, t);
    ControllerState st = initial_state(prev, config);
    // check_watermark_grid/check_ranges wrote the original back last: that is user_min_free_kbytes.
    const int64_t user_min = *prev.knob(Knob::min_free_kbytes);
    st.knob(Knob::min_free_kbytes).last_written = user_min;
    st.user_min_free_kbytes = user_min;
    for (const char* phase : {"add-kernel", "add-movable", "remove"}) {
        const std::string name = fmt::format("hotplug-{}", phase);
        const size_t before = online_blocks();
        const int64_t mfk_before = read_int("/proc/sys/vm/min_free_kbytes");
        std::printf("@@HOTPLUG %s\n", phase);
        std::fflush(stdout);
        const char* how = std::string(phase) == "add-kernel" ? "online_kernel" : "online_movable";
        bool changed = false;
        for (int i = 0; i < 600 && !changed; ++i) {
            // Online what the kernel left offline (memhp_default_state is offline on Debian).
            if (std::string(phase) != "remove")
                if (auto l = kFs.list_dir("/sys/devices/system/memory"))
                    for (const auto& n : *l)
                        if (slurp(("/sys/devices/system/memory/" + n + "/state").c_str())
                                .rfind("offline", 0) == 0)
                            (void)kFs.write_existing("/sys/devices/system/memory/" + n + "/state",
                                                     how);
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            changed = online_blocks() != before;
        }
        if (!changed) {
            report(name, "SKIP",
                   fmt::format("memory blocks stayed at {} (no hotplug here)", before));
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(800));
        Sample s = take(sampler, t += 2'000'000);
        const int64_t live = *s.knob(Knob::min_free_kbytes);
        const int64_t wsf = s.knob(Knob::watermark_scale_factor).value_or(10);
        const int64_t high_delta = static_cast<int64_t>(user_zone_high_pages(prev.zoneinfo)) -
                                   static_cast<int64_t>(user_zone_high_pages(s.zoneinfo));
        const auto c =
            kernel_min_free_kbytes(s.zoneinfo, s.profile, wsf, user_min, mfk_before, high_delta);
        // Unchanged is right only when the kernel's value is the old one; a change must be the
        // model's.
        const bool model_ok = c.matches(live);
        Step step = decide(s, st, config);
        bool adopted = false, pinned = false;
        for (const auto& d : step.decisions) {
            adopted |= d.knob == Knob::min_free_kbytes && d.rule == "kernel-recalculated";
            pinned |= d.knob == Knob::min_free_kbytes && d.action == Action::pin;
        }
        const bool same = live == mfk_before;
        check(name, model_ok && (same ? !pinned : adopted),
              fmt::format(
                  "{} -> {} online blocks ({}), min_free_kbytes {} -> {}, model {} (sqrt rule {}, "
                  "THP {}..{} with/without boost); controller {}",
                  before, online_blocks(), zones_summary(), mfk_before, live, c.with_thp(),
                  c.sqrt_rule, std::max(c.no_thp, c.thp_boosted), c.thp,
                  adopted  ? "adopted it"
                  : pinned ? "PINNED it"
                           : "saw no change"));
        st = std::move(step.next);
        prev = std::move(s);
    }
}

// A fragmenting workload (fill, free 3 of 4 pages, fault THP) under fragtuned --mode active.
void check_active_run(const char* fragtuned) {
    ::mkdir("/run/ft", 0755);
    const pid_t pid = ::fork();
    if (pid == 0) {
        int fd = ::open("/run/ft/log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::execl(fragtuned, fragtuned, "--no-bus", "--mode", "active", "--on-exit", "restore",
                "--tick", "500ms", "--persist-path", "/run/ft/90-fragtune.conf", "--state-path",
                "/run/ft/state.toml", "--config", "/etc/fragtune.toml",
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    const int64_t mfk0 = read_int("/proc/sys/vm/min_free_kbytes");
    const int64_t cp0 = read_int("/proc/sys/vm/compaction_proactiveness");
    // Under TCG a tick can take seconds: wait for events in the daemon's log, never for fixed times.
    // `backstop` only bounds a run that goes wrong (a daemon that never starts or never raises).
    using Clock = std::chrono::steady_clock;
    bool daemon_reaped = false;
    int status = 0;
    auto wait_for = [&](std::string_view needle, std::chrono::seconds backstop) {
        const auto until = Clock::now() + backstop;
        while (Clock::now() < until) {
            if (slurp("/run/ft/log").find(needle) != std::string::npos) return true;
            if (::waitpid(pid, &status, WNOHANG) == pid) {  // the daemon exited
                daemon_reaped = true;
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        return false;
    };
    const bool started = wait_for(" started: ", std::chrono::seconds(120));
    // The workload runs in a child, in rounds until the checker has seen a raise (or the backstop):
    // whatever happens to it, the checker reports.
    const pid_t load = ::fork();
    if (load == 0) {
        long avail_kib = 0;
        if (auto mi = parse_meminfo(slurp("/proc/meminfo")))
            avail_kib = static_cast<long>(mi->get_kib("MemAvailable").value_or(0));
        // 80% of what is available in 4 KiB pages, 3 of every 4 pages freed again: free memory is
        // now mostly single pages between used ones, and the order-9 unusable index is high. Held
        // a while, then a THP fault probe over part of it.
        const size_t fill = (static_cast<size_t>(avail_kib) * 1024 / 10 * 8) & ~size_t{0xfffff};
        const long page = ::sysconf(_SC_PAGESIZE);
        for (;;) {
            char* m = static_cast<char*>(
                ::mmap(nullptr, fill, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
            if (m == MAP_FAILED) ::_exit(1);
            ::madvise(m, fill, MADV_NOHUGEPAGE);
            for (size_t o = 0; o < fill; o += page) m[o] = 1;
            for (size_t o = 0; o + 4 * page <= fill; o += 4 * page)
                ::madvise(m + o + page, 3 * page, MADV_DONTNEED);
            std::this_thread::sleep_for(std::chrono::seconds(3));
            const size_t thp = fill / 4;
            char* h = static_cast<char*>(
                ::mmap(nullptr, thp, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
            if (h != MAP_FAILED) {
                ::madvise(h, thp, MADV_HUGEPAGE);
                for (size_t o = 0; o < thp; o += page) h[o] = 1;
            }
            std::this_thread::sleep_for(std::chrono::seconds(2));
            if (h != MAP_FAILED) ::munmap(h, thp);
            ::munmap(m, fill);
        }
    }
    const bool raised = started && wait_for("[raise: ", std::chrono::seconds(150));
    ::kill(load, SIGKILL);
    int load_status = 0;
    ::waitpid(load, &load_status, 0);
    const bool load_ok = WIFSIGNALED(load_status) && WTERMSIG(load_status) == SIGKILL;
    // A raise seen: let the daemon finish the tick that wrote it before it is stopped.
    if (raised) std::this_thread::sleep_for(std::chrono::seconds(1));
    if (!daemon_reaped) {
        ::kill(pid, SIGTERM);
        ::waitpid(pid, &status, 0);
    }
    const std::string log = slurp("/run/ft/log");
    size_t raises = 0;
    for (size_t p = log.find("[raise: "); p != std::string::npos; p = log.find("[raise: ", p + 1))
        ++raises;
    const bool restored = read_int("/proc/sys/vm/min_free_kbytes") == mfk0 &&
                          read_int("/proc/sys/vm/compaction_proactiveness") == cp0;
    const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const bool errors = log.find("[error]") != std::string::npos;
    check("active-run", started && raises > 0 && restored && clean && !errors,
          fmt::format("{}{} raise decisions under the fragmenting workload (workload {}), exit {}, "
                      "originals {}{}",
                      started ? "" : "daemon never logged its start; ", raises,
                      load_ok ? "ran until stopped" : "failed",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                      restored ? "restored" : "NOT restored", errors ? ", errors logged" : ""));
    std::fwrite(log.data(), 1, std::min<size_t>(log.size(), 6000), stderr);
    std::fflush(stderr);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: kernel_check FRAGTUNED [--hotplug]\n");
        return 2;
    }
    const char* fragtuned = argv[1];
    const bool hotplug = argc > 2 && std::string(argv[2]) == "--hotplug";
    const KernelProfile profile = resolve_kernel_profile(kFs);
    std::printf("@@PROFILE %s\n", profile.describe().c_str());
    check_sample(fragtuned, profile);
    check_watermark_grid(profile);
    check_movable(profile);
    check_ranges(profile);
    check_psi_trigger();
    if (hotplug) check_hotplug();
    check_active_run(fragtuned);
    std::printf("@@DONE\n");
    std::fflush(stdout);
    return 0;
}
