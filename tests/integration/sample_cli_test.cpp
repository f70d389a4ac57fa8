// `fragtuned --sample` as a process: argument handling, output, timing, exit codes and signals.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

const std::string kFixtureRoot = std::string(FRAGTUNE_FIXTURES_DIR) + "/live-6.18-vm";

struct ProcessRun {
    int exit_code = -1;  // -1: killed by a signal
    std::string out, err;
    double seconds = 0;
};

// Starts fragtuned with `args`; calls `on_output` whenever stdout grows (it may send a signal to
// the child and returns whether it did); reaps it. A 20 s watchdog kills a hung child so the test
// fails instead of hanging.
template <typename OnOutput>
ProcessRun run_fragtuned(const std::vector<std::string>& args, OnOutput on_output) {
    int out_pipe[2], err_pipe[2];
    EXPECT_EQ(::pipe2(out_pipe, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(err_pipe, O_CLOEXEC), 0);
    const auto start = std::chrono::steady_clock::now();
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(out_pipe[1], 1);
        ::dup2(err_pipe[1], 2);
        std::vector<char*> argv;
        std::string bin = FRAGTUNED_BIN;
        argv.push_back(bin.data());
        std::vector<std::string> copy = args;
        for (auto& a : copy) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(bin.c_str(), argv.data());
        ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    ProcessRun run;
    bool out_open = true, err_open = true, signalled = false;
    while (out_open || err_open) {
        pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
        int n = ::poll(fds, 2, 500);
        if (std::chrono::steady_clock::now() - start > std::chrono::seconds(20)) {
            ::kill(pid, SIGKILL);
            ADD_FAILURE() << "fragtuned did not finish within 20 s";
            break;
        }
        if (n <= 0) continue;
        char buf[4096];
        for (int i = 0; i < 2; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
            ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
            if (r <= 0) {
                (i == 0 ? out_open : err_open) = false;
                continue;
            }
            (i == 0 ? run.out : run.err).append(buf, static_cast<size_t>(r));
            if (i == 0 && !signalled) signalled = on_output(pid, run.out);
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
}

ProcessRun run_fragtuned(const std::vector<std::string>& args) {
    return run_fragtuned(args, [](pid_t, const std::string&) { return false; });
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

}  // namespace

TEST(SampleCli, TwoJsonSamplesFromTheFixtureRoot) {
    ProcessRun r = run_fragtuned(
        {"--sample", "--root", kFixtureRoot, "--count", "2", "--interval", "100ms", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.err.empty()) << r.err;
    auto ls = lines(r.out);
    ASSERT_EQ(ls.size(), 2u) << r.out;
    auto first = nlohmann::json::parse(ls[0]);
    auto second = nlohmann::json::parse(ls[1]);
    EXPECT_EQ(first["schema_version"], 1);
    EXPECT_EQ(first["interval_usec"], 0);
    EXPECT_TRUE(first["counters"].empty());
    // The second sample is ~100 ms after the first (the absolute deadline, not 100 ms after
    // printing).
    const auto interval = second["interval_usec"].get<uint64_t>();
    EXPECT_GE(interval, 95'000u);
    EXPECT_LT(interval, 2'000'000u);  // generous: CI machines are busy
    EXPECT_EQ(second["mono_usec"].get<uint64_t>() - first["mono_usec"].get<uint64_t>(), interval);
    // Same files twice: every counter is there with a zero delta.
    ASSERT_TRUE(second["counters"].contains("compact_stall"));
    EXPECT_EQ(second["counters"]["compact_stall"]["delta"], 0);
    EXPECT_EQ(second["zones"].size(), 3u);
    EXPECT_EQ(second["zones"][2]["zone"], "Normal");
    EXPECT_EQ(second["nodes"][0]["fragmentation_score"], 34);
    EXPECT_EQ(second["knobs"]["min_free_kbytes"], 67584);
    EXPECT_EQ(second["memory"]["total_kib"], 24731700);
}

TEST(SampleCli, TextOutputByDefault) {
    ProcessRun r = run_fragtuned({"--sample", "--root", kFixtureRoot, "--count", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("node 0 Normal"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("fragmentation score (order 9): node 0 34"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("rates: need a second sample"), std::string::npos) << r.out;
}

TEST(SampleCli, MissingFileFailsNamingIt) {
    char tmpl[] = "/tmp/fragtune-cli-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    ProcessRun r = run_fragtuned({"--sample", "--root", tmpl, "--count", "1"});
    ::rmdir(tmpl);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(r.out.empty());
    EXPECT_NE(r.err.find("/proc/buddyinfo"), std::string::npos) << r.err;
}

TEST(SampleCli, BadIntervalIsRefused) {
    ProcessRun r = run_fragtuned({"--sample", "--root", kFixtureRoot, "--interval", "soon"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("soon"), std::string::npos) << r.err;
    ProcessRun tiny = run_fragtuned({"--sample", "--root", kFixtureRoot, "--interval", "1us"});
    EXPECT_EQ(tiny.exit_code, 2);
}

TEST(SampleCli, IntervalOptionsNeedSampleMode) {
    ProcessRun r = run_fragtuned({"--count", "2"});
    EXPECT_NE(r.exit_code, 0);
}

TEST(SampleCli, SigtermAndSigintEndTheStreamCleanly) {
    for (int sig : {SIGTERM, SIGINT}) {
        // A 5 s interval: the signal must cut the sleep short, not wait it out.
        ProcessRun r =
            run_fragtuned({"--sample", "--root", kFixtureRoot, "--interval", "5s", "--json"},
                          [sig](pid_t pid, const std::string& out) {
                              if (out.find('\n') == std::string::npos) return false;
                              ::kill(pid, sig);
                              return true;
                          });
        EXPECT_EQ(r.exit_code, 0) << "signal " << sig << ": " << r.err;
        EXPECT_EQ(lines(r.out).size(), 1u);
        EXPECT_LT(r.seconds, 4.0) << "signal " << sig << " did not interrupt the wait";
    }
}
