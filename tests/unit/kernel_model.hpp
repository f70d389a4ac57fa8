// A small, documented, deterministic model of the kernel's memory management, good enough to close
// the loop around decide(): it turns the six knob values and a workload into the next Sample.
//
// What is modelled (one node, zones DMA / DMA32 / Normal of a 16 GiB machine, pages of 4 KiB; every
// tick of 2 s is simulated in 20 sub-steps of 100 ms):
//  * Watermarks come from predict_watermarks(min_free_kbytes, watermark_scale_factor), summed over
//  the
//    zones; free memory is spread over the zones in proportion to managed pages.
//  * kswapd wakes when free < low and reclaims kKswapdPagesPerSec until free >= high. Being woken
//  again
//    within one sub-step (100 ms = HZ/10) after going to sleep counts kswapd_low_wmark_hit_quickly.
//  * An ordinary (blocking) allocation of n pages succeeds from free memory while free - n >= min;
//    otherwise the task enters direct reclaim (allocstall, pgscan_direct, a 50 ms PSI "some" stall)
//    and reclaims its own n pages, leaving free where it was.
//  * GFP_ATOMIC allocations may dig below min down to the atomic floor = 3/8 min: mm/page_alloc.c
//    __zone_watermark_ok gives __GFP_HIGH half of the min reserve and ALLOC_NON_BLOCK a further
//    quarter of the rest (min - min/2 - min/8 = 3/8 min on 6.x; "about min/2" on older kernels).
//    Requests that do not fit fail as order-1 allocation failures (2 pages each), reported in the
//    kernel log.
//  * Reclaim takes from page cache, reclaimable slab and (with swap) anonymous memory in proportion
//  to
//    cache x (200 - swappiness), anon x swappiness, slab x vfs_cache_pressure / 100 x 100 (the
//    shrinker scans slab in proportion to LRU scanning, scaled by vfs_cache_pressure). Anon reclaim
//    takes cold pages first; hot pages that were swapped out come back (pswpin) at 30 % per
//    sub-step.
//  * File reads of a working set larger than the page cache refault (workingset_refault_file) in
//    proportion to the missing share.
//  * Watermark boost (only with Workload::fallback_events_per_sec): each fallback adds a pageblock
//    (512 pages) to the boost, at most watermark_boost_factor / 10000 of the high watermark;
//    kswapd then reclaims up to high + boost; its pass ends, and the boost is cleared, once per
//    tick (at the start of the next one, so the sample sees it). What boosted reclaim takes
//    from page cache beyond the plain high watermark is working set in the share file_ws / cache,
//    and refaults within the sub-step (workingset_refault_file).
//  * Fragmentation: free memory is "in free 2 MiB blocks" (order 9) or not. Unmovable allocations
//  (and
//    slab growth) break kUnmovableBreaksPerPage blocks per page; allocations use non-block free
//    pages first; freed pages return half as whole blocks. kcompactd runs proactive compaction
//    every 500 ms when the fragmentation score (= order-9 unusable index, percent) exceeds 100 -
//    proactiveness + 10, down to 100 - proactiveness, building kCompactBlocksPerRun blocks per run
//    up to movable_share of free memory; a run without progress counts compact_fail and defers for
//    32 s (1 << 6 x 500 ms). A non-zero write of compaction_proactiveness on >= 5.15 clears the
//    deferral and runs at once (wakeup_kcompactd from the sysctl handler). THP faults need a free
//    block; without one they stall in direct compaction (compact_stall) and fall back
//    (thp_fault_fallback) when it fails.
// Everything is deterministic; noise comes from a seeded linear congruential generator.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>

#include "fragtune/deciding/controller.hpp"

namespace fragtune::model {

constexpr uint64_t kTickUsec = 2'000'000;
constexpr int kSubsteps = 20;
constexpr uint64_t kSubUsec = kTickUsec / kSubsteps;
constexpr double kSubSec = 0.1;
constexpr double kKswapdPagesPerSec = 60000;  // ~234 MiB/s of background reclaim
constexpr double kUnmovableBreaksPerPage = 1.0 / 32;
constexpr double kCompactBlocksPerRun = 100;  // 200 MiB per 500 ms run
constexpr uint64_t kCompactDeferUsec = 32'000'000;
constexpr double kPageKib = 4;

// What the workload does during one tick. Rates are per second, sizes in pages.
struct Workload {
    // Page cache fills free memory down to this level (readahead), at most refill_pages_per_sec.
    double target_free_pages = 262144;
    double refill_pages_per_sec = 1000000;
    // Streaming allocation through the ordinary path (may direct-reclaim), plus a burst in
    // sub-steps [burst_from, 20).
    double stream_pages_per_sec = 0;
    double burst_pages_per_sec = 0;
    int burst_from = 12;
    // An anonymous "wave": allocated over sub-steps [0, 10), freed over [10, 20).
    double wave_pages = 0;
    // Atomic (interrupt-context) allocations per sub-step in [atomic_from, atomic_to), each held
    // for atomic_hold sub-steps.
    double atomic_pages_per_substep = 0;
    int atomic_from = 4, atomic_to = 14, atomic_hold = 6;
    // Fragmentation.
    double unmovable_pages_per_sec = 0;
    double thp_faults_per_sec = 0;
    double movable_share = 0.95;  // share of free memory compaction can turn into blocks
    // Slab (dentries/inodes): growth through the allocation path; it also fragments.
    double slab_growth_pages_per_sec = 0;
    // File working set re-read at file_reads_pages_per_sec; cache below it refaults.
    double file_ws_pages = 0;
    double file_reads_pages_per_sec = 0;
    // Cold anonymous memory (resident or swapped out) that the application starts using again.
    double anon_warming_pages_per_sec = 0;
    // Pageblock fallbacks (an allocation stealing a block of another migrate type) per second:
    // each boosts the watermarks by a pageblock (boost_watermark). 0: the boost is never used.
    double fallback_events_per_sec = 0;
};

class Kernel {
  public:
    // 16 GiB: DMA 15 MiB, DMA32 3 GiB, Normal 13 GiB (managed pages). Knobs at the common defaults
    // of a THP-enabled x86-64 distribution (min_free_kbytes 67584 as set by khugepaged).
    Kernel() {
        add_zone("DMA", 3840);
        add_zone("DMA32", 772915);
        add_zone("Normal", 3407872);
        knobs_ = {67584, 10, 20, 100, 60, 15000};
        double total = total_managed();
        free_ = 262144;
        anon_cold_ = 1'000'000;
        anon_hot_ = 1'000'000;
        slab_ = 0.03 * total;
        slab_unrecl_ = 60000;
        cache_ = total - free_ - anon_cold_ - anon_hot_ - slab_ - slab_unrecl_;
        blocks9_ = 0.8 * free_ / 512;
    }

    KernelVersion kernel{6, 18};
    uint64_t swap_total_pages = 0;
    Workload w;

    int64_t knob(Knob k) const { return knobs_[index(k)]; }
    uint64_t writes() const { return writes_; }
    double free_pages() const { return free_; }
    double boost_pages() const { return boost_; }
    // Totals since start: what kswapd reclaimed only because of the boost (above the plain high
    // watermark), and the working-set pages of it that refaulted. Not in the Sample (the kernel
    // does not tell them apart): the scenarios' ground truth.
    double boost_reclaimed_pages() const { return boost_reclaimed_; }
    double boost_refaulted_pages() const { return boost_refaulted_; }
    double trough_free_pages() const {
        return trough_free_;
    }  // lowest free memory within the last tick
    double blocks9() const { return blocks9_; }
    double slab_pages() const { return slab_; }
    double cache_pages() const { return cache_; }
    double swap_used_pages() const { return swap_used_; }
    uint64_t now_usec() const { return now_; }

    // A sysctl write by fragtune (or, with by_admin, by someone else). Writing
    // compaction_proactiveness non-zero on >= 5.15 wakes kcompactd at once.
    void write(Knob k, int64_t value, bool by_admin = false) {
        knobs_[index(k)] = value;
        if (!by_admin) ++writes_;
        if (k == Knob::compaction_proactiveness && value > 0 && kernel >= KernelVersion{5, 15}) {
            compact_deferred_until_ = 0;
            proactive_compact();
        }
    }
    void compact_memory() {  // /proc/sys/vm/compact_memory: one full pass
        ++writes_;
        compact_deferred_until_ = 0;
        for (int i = 0; i < 20; ++i) compact_run();
    }

    // Simulates one tick and returns the sample taken at its end (signals filled as the sampler
    // would).
    Sample tick() { return advance(kSubsteps); }

    // A tick of `substeps` x 100 ms (the adaptive cadence's uneven intervals); the workload's 2 s
    // pattern of sub-steps continues across ticks, so 20 sub-steps at a time is exactly tick().
    // With wake_on_failure the tick ends after the first sub-step with an allocation failure, as
    // the daemon's loop is woken by the kernel log.
    Sample advance(int substeps, bool wake_on_failure = false) {
        const auto before = vm_;
        const double psi_before = psi_some_usec_;
        failures_ = 0;
        boost_ = 0;
        trough_free_ = free_;
        int done = 0;
        while (done < substeps) {
            substep(phase_);
            phase_ = (phase_ + 1) % kSubsteps;
            trough_free_ = std::min(trough_free_, free_);
            ++done;
            if (wake_on_failure && failures_ > 0) break;
        }
        return sample(before, psi_before, static_cast<uint64_t>(done) * kSubUsec);
    }

    // Totals of the predicted watermarks over the zones, pages.
    struct Marks {
        double min = 0, low = 0, high = 0;
    };
    Marks marks() const {
        Marks m;
        for (const auto& z : predict_watermarks(zones_, knob(Knob::min_free_kbytes),
                                                knob(Knob::watermark_scale_factor))) {
            m.min += static_cast<double>(z.min);
            m.low += static_cast<double>(z.low);
            m.high += static_cast<double>(z.high);
        }
        return m;
    }
    double unusable9_permille() const {
        return free_ <= 0 ? 1000
                          : std::clamp(1000.0 * (free_ - blocks9_ * 512) / free_, 0.0, 1000.0);
    }
    const ZoneInfo& zones() const { return zones_; }

  private:
    void add_zone(const char* name, uint64_t managed) {
        ZoneInfoZone z;
        z.zone = name;
        z.managed = z.present = z.spanned = managed;
        zones_.zones.push_back(z);
    }
    double total_managed() const {
        double t = 0;
        for (const auto& z : zones_.zones) t += static_cast<double>(z.managed);
        return t;
    }
    void count(const char* name, double v) {
        vm_acc_[name] += v;
        vm_[name] = static_cast<uint64_t>(vm_acc_[name]);
    }

    // Frees `n` pages into the buddy allocator. Half of them merge into whole 2 MiB blocks when
    // nothing unmovable is around; slab and other unmovable pages pin pageblocks, so the share
    // falls to zero when they hold a quarter of memory.
    void give(double n) {
        free_ += n;
        blocks9_ += 0.5 * std::max(0.0, 1 - 4 * pinned_share()) * n / 512;
        clamp_blocks();
    }
    // Takes `n` pages from free memory, from non-block pages first.
    void take(double n, bool unmovable = false) {
        double nonblock = free_ - blocks9_ * 512;
        free_ -= n;
        if (n > nonblock) blocks9_ -= (n - nonblock) / 512;
        if (unmovable) blocks9_ -= n * kUnmovableBreaksPerPage;
        clamp_blocks();
    }
    void clamp_blocks() { blocks9_ = std::clamp(blocks9_, 0.0, std::max(free_, 0.0) / 512); }

    // Reclaims up to n pages; returns what it got. Sources in proportion to the kernel's scan
    // balance.
    double reclaim(double n) {
        const double sw = static_cast<double>(knob(Knob::swappiness));
        const double vfs = static_cast<double>(knob(Knob::vfs_cache_pressure));
        const bool swap_room = static_cast<double>(swap_total_pages) - swap_used_ > n;
        double w_file = std::max(cache_, 0.0) * (200 - sw);
        double w_anon = swap_room ? (anon_cold_ + anon_hot_) * sw : 0;
        double w_slab = std::max(slab_, 0.0) * vfs;  // x vfs/100, on the scale of (200 - sw) ~ 100
        double sum = w_file + w_anon + w_slab;
        if (sum <= 0) return 0;
        double from_file = std::min(cache_, n * w_file / sum);
        double from_slab = std::min(slab_, n * w_slab / sum);
        double from_anon = n * w_anon / sum;
        cache_ -= from_file;
        slab_ -= from_slab;
        double cold = std::min(anon_cold_, from_anon);
        double hot = std::min(anon_hot_, from_anon - cold);
        anon_cold_ -= cold;
        anon_hot_ -= hot;
        swapped_cold_ += cold;
        swapped_hot_ += hot;
        swap_used_ += cold + hot;
        if (cold + hot > 0) count("pswpout", cold + hot);
        double got = from_file + from_slab + cold + hot;
        give(got);
        return got;
    }

    // An ordinary blocking allocation of n pages (many small requests): served from free memory
    // down to min; the rest is reclaimed directly by the allocating task.
    void alloc(double n, bool unmovable = false) {
        if (n <= 0) return;
        double from_free = std::clamp(free_ - marks_.min, 0.0, n);
        take(from_free, unmovable);
        double rest = n - from_free;
        if (rest <= 0) return;
        direct_this_substep_ = true;
        count("pgscan_direct", 1.5 * rest);
        double got = reclaim(rest);
        count("pgsteal_direct", got);
        take(std::min(rest, std::max(free_, 0.0)), unmovable);
    }

    // kcompactd's proactive pass (mm/compaction.c kcompactd): when the score exceeds the high mark,
    // one compaction run; if the score did not improve since the last pass, defer for 32 s.
    void proactive_compact() {
        const int64_t pro = knob(Knob::compaction_proactiveness);
        if (pro <= 0 || now_ < compact_deferred_until_) return;
        const double wmark_low = 100.0 - static_cast<double>(pro);
        const double wmark_high = std::min(wmark_low + 10, 100.0);
        const double score = unusable9_permille() / 10;
        if (score <= wmark_high && !(compacting_ && score > wmark_low)) {
            compacting_ = false;
            last_score_ = score;
            return;
        }
        compacting_ = true;
        compact_run();
        const double after = unusable9_permille() / 10;
        if (after >= last_score_ && after > wmark_low)
            compact_deferred_until_ = now_ + kCompactDeferUsec;
        last_score_ = after;
    }
    // Pageblocks holding slab or other unmovable pages cannot be emptied by migration.
    double pinned_share() const { return (std::max(slab_, 0.0) + slab_unrecl_) / total_managed(); }
    bool compact_run() {
        double reachable = w.movable_share * std::max(0.0, 1 - 3 * pinned_share()) * free_ / 512;
        if (blocks9_ + 1 > reachable) {
            count("compact_fail", 1);
            compact_deferred_until_ = now_ + kCompactDeferUsec;
            return false;
        }
        blocks9_ = std::min(blocks9_ + kCompactBlocksPerRun, reachable);
        count("compact_success", 1);
        return true;
    }

    void substep(int sub) {
        now_ += kSubUsec;
        marks_ = marks();
        direct_this_substep_ = false;

        // boost_watermark(): fallbacks boost the watermarks and wake kswapd.
        const double factor = static_cast<double>(knob(Knob::watermark_boost_factor));
        if (w.fallback_events_per_sec > 0 && factor > 0) {
            const double max_boost = std::max(marks_.high * factor / 10000, 512.0);
            boost_ = std::min(boost_ + 512 * w.fallback_events_per_sec * kSubSec, max_boost);
        }
        // kswapd
        if (free_ < marks_.low || boost_ > 0) {
            if (!kswapd_awake_ && now_ - kswapd_slept_usec_ <= kSubUsec && kswapd_slept_usec_ != 0)
                count("kswapd_low_wmark_hit_quickly", 1);
            kswapd_awake_ = true;
        }
        if (kswapd_awake_) {
            const double free_before = free_;
            const double cache_before = cache_;
            double got = reclaim(std::max(
                0.0, std::min(kKswapdPagesPerSec * kSubSec, marks_.high + boost_ - free_ + 1)));
            count("pgscan_kswapd", 1.2 * got);
            count("pgsteal_kswapd", got);
            const double beyond_high =
                boost_ > 0 ? std::max(0.0, free_ - std::max(free_before, marks_.high)) : 0.0;
            boost_reclaimed_ += beyond_high;
            if (beyond_high > 0 && w.file_ws_pages > 0 && cache_before > 0) {
                const double evicted = std::min(beyond_high, cache_before - cache_) *
                                       std::min(1.0, w.file_ws_pages / cache_before);
                if (evicted > 0) {
                    boost_refaulted_ += evicted;
                    count("workingset_refault_file", evicted);
                    alloc(evicted);
                    cache_ += evicted;
                }
            }
            if (free_ >= marks_.high + boost_ || got <= 0) {
                kswapd_awake_ = false;
                kswapd_slept_usec_ = now_;
            }
        }

        // Atomic allocations (interrupt context) arrive first within the sub-step.
        if (sub >= w.atomic_from && sub < w.atomic_to && w.atomic_pages_per_substep > 0) {
            double floor = marks_.min * 3 / 8;
            double fits = std::clamp(free_ - floor, 0.0, w.atomic_pages_per_substep);
            take(fits);
            atomic_in_flight_.emplace_back(now_ + static_cast<uint64_t>(w.atomic_hold) * kSubUsec,
                                           fits);
            failures_ += static_cast<uint32_t>(std::ceil((w.atomic_pages_per_substep - fits) / 2));
        }

        // Ordinary allocations.
        alloc(w.stream_pages_per_sec * kSubSec);
        if (sub >= w.burst_from) alloc(w.burst_pages_per_sec * kSubSec);
        if (w.wave_pages > 0) {
            if (sub < kSubsteps / 2) {
                alloc(w.wave_pages / (kSubsteps / 2));
                wave_held_ += w.wave_pages / (kSubsteps / 2);
            } else {
                double back = std::min(wave_held_, w.wave_pages / (kSubsteps / 2));
                wave_held_ -= back;
                give(back);
            }
        }
        // Streamed pages become page cache.
        cache_ += w.stream_pages_per_sec * kSubSec +
                  (sub >= w.burst_from ? w.burst_pages_per_sec * kSubSec : 0);
        if (w.slab_growth_pages_per_sec > 0) {
            alloc(w.slab_growth_pages_per_sec * kSubSec, true);
            slab_ += w.slab_growth_pages_per_sec * kSubSec;
        }
        if (w.unmovable_pages_per_sec > 0) {
            // Short-lived unmovable allocations (network buffers, page tables): placed and freed
            // again, leaving broken blocks behind.
            blocks9_ -= w.unmovable_pages_per_sec * kSubSec * kUnmovableBreaksPerPage;
            clamp_blocks();
        }
        // File re-reads of a working set larger than the cache refault.
        if (w.file_ws_pages > 0 && w.file_reads_pages_per_sec > 0) {
            double miss = std::clamp((w.file_ws_pages - cache_) / w.file_ws_pages, 0.0, 1.0);
            double refault = w.file_reads_pages_per_sec * kSubSec * miss;
            if (refault > 0) {
                count("workingset_refault_file", refault);
                alloc(refault);
                cache_ += refault;
            }
        }
        if (w.anon_warming_pages_per_sec > 0) {
            double warm = w.anon_warming_pages_per_sec * kSubSec;
            double from_swap = std::min(swapped_cold_, warm);
            swapped_cold_ -= from_swap;
            swapped_hot_ += from_swap;
            double resident = std::min(anon_cold_, warm - from_swap);
            anon_cold_ -= resident;
            anon_hot_ += resident;
        }
        // Hot anonymous pages that were swapped out fault back in.
        if (swapped_hot_ > 1) {
            double in = swapped_hot_ * 0.3;
            swapped_hot_ -= in;
            swap_used_ -= in;
            count("pswpin", in);
            psi_some_usec_ += 20'000;
            alloc(in);
            anon_hot_ += in;
        }
        // Readahead fills free memory above the workload's target level with page cache.
        if (free_ > w.target_free_pages && w.target_free_pages > 0) {
            double fill = std::min(free_ - w.target_free_pages, w.refill_pages_per_sec * kSubSec);
            take(fill);
            cache_ += fill;
        }
        // Atomic buffers released.
        while (!atomic_in_flight_.empty() && atomic_in_flight_.front().first <= now_) {
            give(atomic_in_flight_.front().second);
            atomic_in_flight_.pop_front();
        }
        // THP faults take a free 2 MiB block each (a growing THP-backed heap); without one they
        // stall in direct compaction and fall back to small pages when it fails.
        if (w.thp_faults_per_sec > 0) {
            thp_acc_ += w.thp_faults_per_sec * kSubSec;
            while (thp_acc_ >= 1) {
                thp_acc_ -= 1;
                if (blocks9_ < 1) {
                    count("compact_stall", 1);
                    if (!compact_run()) {
                        count("thp_fault_fallback", 1);
                        alloc(512);
                        anon_hot_ += 512;
                        continue;
                    }
                }
                take(512);
                anon_hot_ += 512;
            }
        }
        if (sub % 5 == 4) proactive_compact();  // every 500 ms
        if (direct_this_substep_) {
            count("allocstall", 1);
            psi_some_usec_ += 50'000;
        }
    }

    Sample sample(const std::map<std::string, uint64_t>& before, double psi_before,
                  uint64_t interval_usec) {
        Sample s;
        s.mono_usec = now_;
        s.kernel = kernel;
        s.profile = make_kernel_profile(
            std::to_string(kernel.major) + "." + std::to_string(kernel.minor) + ".0", 4096);
        for (const auto& t : kTunables) s.knobs[index(t.knob)] = knob(t.knob);
        if (kernel < KernelVersion{5, 9}) s.knobs[index(Knob::compaction_proactiveness)].reset();

        const double total = total_managed();
        const auto wm = predict_watermarks(zones_, knob(Knob::min_free_kbytes),
                                           knob(Knob::watermark_scale_factor));
        s.zoneinfo = zones_;
        auto& g = s.signals;
        g.interval_usec = interval_usec;
        const double interval_sec = static_cast<double>(interval_usec) / 1e6;
        for (size_t i = 0; i < s.zoneinfo.zones.size(); ++i) {
            auto& z = s.zoneinfo.zones[i];
            z.free = static_cast<uint64_t>(std::max(free_, 0.0) * static_cast<double>(z.managed) /
                                           total);
            z.min = wm[i].min;
            z.low = wm[i].low;
            z.high = wm[i].high;
            ZoneSignals zs;
            zs.zone = z.zone;
            zs.managed_pages = zs.present_pages = z.managed;
            zs.free_pages = z.free;
            zs.min_pages = z.min;
            zs.low_pages = z.low;
            zs.high_pages = z.high;
            // The boost sits on the largest zone (where fallbacks happen in this model).
            if (z.zone == "Normal") zs.boost_pages = z.boost.emplace(static_cast<uint64_t>(boost_));
            g.zones.push_back(zs);
            if (z.free <= z.min) ++g.zones_at_or_below_min;
            if (z.free < z.low) ++g.zones_below_low;
            if (z.free < z.high) ++g.zones_below_high;
            g.free_pages += z.free;
            g.min_pages += z.min;
            g.low_pages += z.low;
            g.high_pages += z.high;
        }
        const double free = std::max(free_, 1.0);
        const double in_blocks = blocks9_ * 512;
        OrderSignals o3, o9;
        o3.order = 3;
        o3.free_blocks = static_cast<uint64_t>((in_blocks + 0.7 * (free - in_blocks)) / 8);
        o3.unusable_permille = o3.worst_zone_unusable_permille =
            static_cast<int>(std::lround(1000 * 0.3 * (free - in_blocks) / free));
        o9.order = 9;
        o9.free_blocks = static_cast<uint64_t>(blocks9_);
        o9.unusable_permille = o9.worst_zone_unusable_permille =
            static_cast<int>(std::lround(unusable9_permille()));
        g.targets = {o3, o9};
        g.max_fragmentation_score = o9.unusable_permille / 10;
        g.nodes.push_back(NodeSignals{0, g.max_fragmentation_score});

        for (const auto& [name, value] : vm_) {
            auto it = before.find(name);
            uint64_t d = value - (it == before.end() ? 0 : it->second);
            g.counters[name] = CounterDelta{d, static_cast<double>(d) / interval_sec, false};
        }
        for (const char* c : {"allocstall", "pgscan_direct", "pgscan_kswapd", "compact_stall",
                              "compact_fail", "compact_success", "thp_fault_fallback",
                              "kswapd_low_wmark_hit_quickly", "workingset_refault_file", "pswpin"})
            g.counters.try_emplace(c);
        double stall = psi_some_usec_ - psi_before;
        g.psi_some_stall_usec = static_cast<uint64_t>(stall);
        g.psi_some_percent = 100.0 * stall / static_cast<double>(interval_usec);

        g.mem_total_kib = static_cast<uint64_t>(total * kPageKib);
        g.mem_free_kib = static_cast<uint64_t>(free * kPageKib);
        g.sreclaimable_kib = static_cast<uint64_t>(std::max(slab_, 0.0) * kPageKib);
        g.sunreclaim_kib = static_cast<uint64_t>(slab_unrecl_ * kPageKib);
        g.swap_total_kib = static_cast<uint64_t>(static_cast<double>(swap_total_pages) * kPageKib);
        g.swap_free_kib =
            static_cast<uint64_t>((static_cast<double>(swap_total_pages) - swap_used_) * kPageKib);
        if (failures_ > 0) {
            g.failures_by_order[1] = failures_;
            g.atomic_failures_by_order[1] = failures_;
        }
        return s;
    }

    ZoneInfo zones_;
    std::array<int64_t, kKnobCount> knobs_{};
    uint64_t writes_ = 0;
    uint64_t now_ = 0;
    int phase_ = 0;     // the next sub-step's place in the workload's 2 s pattern
    double boost_ = 0;  // pages over the watermarks (boost_watermark), cleared when kswapd is done
    double boost_reclaimed_ = 0, boost_refaulted_ = 0;
    Marks marks_;
    double free_ = 0, cache_ = 0, anon_cold_ = 0, anon_hot_ = 0, slab_ = 0, slab_unrecl_ = 0;
    double swap_used_ = 0, swapped_cold_ = 0, swapped_hot_ = 0;
    double blocks9_ = 0;
    double wave_held_ = 0;
    double thp_acc_ = 0;
    bool kswapd_awake_ = false;
    uint64_t kswapd_slept_usec_ = 0;
    bool direct_this_substep_ = false;
    uint64_t compact_deferred_until_ = 0;
    bool compacting_ = false;
    double last_score_ = 100;
    uint32_t failures_ = 0;
    double trough_free_ = 0;
    double psi_some_usec_ = 0;
    std::deque<std::pair<uint64_t, double>> atomic_in_flight_;
    std::map<std::string, double> vm_acc_;
    std::map<std::string, uint64_t> vm_;
};

// Deterministic noise in [0, 1).
class Lcg {
  public:
    explicit Lcg(uint64_t seed) : s_(seed) {}
    double next() {
        s_ = s_ * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<double>(s_ >> 11) / 9007199254740992.0;
    }

  private:
    uint64_t s_;
};

}  // namespace fragtune::model
