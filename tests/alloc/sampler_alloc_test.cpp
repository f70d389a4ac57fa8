// No heap allocation per tick in steady state: global operator new/delete replaced by counting
// versions (which is why this is an executable of its own, not part of fragtune_unit_tests), and
// Sampler::next() (read + parse + derive) run for many ticks on a fixture root after warm-up.
// An allocation count is not a timing: the same code allocates the same on any machine.
#include <cstdlib>
#include <filesystem>
#include <new>

#include <gtest/gtest.h>

#include "fragtune/sensing/kernel_fs.hpp"
#include "fragtune/sensing/sample.hpp"

namespace {

// Counted only while a test has armed it, so gtest's own allocations stay out.
thread_local bool g_counting = false;
thread_local unsigned long g_allocations = 0;

void* counted_alloc(std::size_t n) {
    if (g_counting) ++g_allocations;
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t n) {
    return counted_alloc(n);
}
void* operator new[](std::size_t n) {
    return counted_alloc(n);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {

namespace fs = std::filesystem;
using namespace fragtune;

class SamplerAlloc : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/fragtune-alloc-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = tmpl;
        fs::copy(fs::path(FRAGTUNE_FIXTURES_DIR) / "live-6.18-vm", root_,
                 fs::copy_options::recursive);
    }
    void TearDown() override { fs::remove_all(root_); }

    // Allocations made by `n` calls of `f` after arming the counter.
    template <typename F>
    unsigned long count(int n, F f) {
        g_allocations = 0;
        g_counting = true;
        for (int i = 0; i < n; ++i) f(i);
        g_counting = false;
        return g_allocations;
    }

    fs::path root_;
};

// The counter itself works: a test that could not fail would prove nothing.
TEST_F(SamplerAlloc, TheCounterSeesAnAllocation) {
    EXPECT_EQ(count(3, [](int) { delete new int(1); }), 3u);
}

TEST_F(SamplerAlloc, SteadyTicksThatSkipZoneinfoAllocateNothing) {
    KernelFs kfs(root_);
    SamplerOptions o;
    o.zoneinfo.every_ticks = 1000;  // calm: zoneinfo stays the last read
    Sampler sampler(kfs, o);
    uint64_t mono = 1'000'000;
    // Warm-up: the first read interns the names, the next ones size both Samples' storage.
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(sampler.next(mono += 1'000'000).ok());
    bool all_ok = true;
    const auto n = count(200, [&](int) {
        auto s = sampler.next(mono += 1'000'000);
        all_ok = all_ok && s.ok() && !(*s)->zoneinfo_fresh && !(*s)->signals.zones.empty() &&
                 (*s)->signals.counter("compact_stall").has_value();
    });
    EXPECT_TRUE(all_ok);
    EXPECT_EQ(sampler.last_zoneinfo_reason(), ZoneinfoReason::none);
    EXPECT_EQ(n, 0u) << "allocations in 200 steady ticks";
}

// derive_signals alone, on fresh zoneinfo too: the signals are rebuilt in the storage they had.
TEST_F(SamplerAlloc, DeriveSignalsAllocatesNothingInSteadyState) {
    KernelFs kfs(root_);
    SamplerOptions o;
    o.zoneinfo.every_ticks = 1;  // every tick fresh
    Sampler sampler(kfs, o);
    Sample a = *sampler.take(1'000'000);
    Sample b = *sampler.take(2'000'000);
    // Warm-up: each Sample derived once against the other (times increasing, so with deltas).
    a.mono_usec = 3'000'000;
    derive_signals(&b, a, o.signals);
    b.mono_usec = 4'000'000;
    derive_signals(&a, b, o.signals);
    uint64_t mono = 4'000'000;
    const auto n = count(100, [&](int i) {
        Sample& cur = i % 2 ? b : a;
        Sample& prev = i % 2 ? a : b;
        cur.mono_usec = mono += 1'000'000;
        derive_signals(&prev, cur, o.signals);
    });
    EXPECT_EQ(n, 0u);
    EXPECT_FALSE(a.signals.counters.empty());
}

// What a tick that does read zoneinfo costs, bounded so that it cannot creep up unseen (the
// zoneinfo parser builds its per-zone counter maps afresh; the lazy path is what keeps this off
// the calm tick).
TEST_F(SamplerAlloc, ATickThatReadsZoneinfoStaysBounded) {
    KernelFs kfs(root_);
    SamplerOptions o;
    o.zoneinfo.every_ticks = 1;
    Sampler sampler(kfs, o);
    uint64_t mono = 1'000'000;
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(sampler.next(mono += 1'000'000).ok());
    const auto n = count(10, [&](int) { (void)sampler.next(mono += 1'000'000); });
    EXPECT_GT(n, 0u);  // the counter is live here
    RecordProperty("allocations_per_zoneinfo_tick", std::to_string(n / 10));
    EXPECT_LE(n / 10, 2000u);
}

}  // namespace
