// Pure parsers for the kernel's memory files. No file access, no logging, no exit: text in, struct or
// Error out. The `source` argument only names the file in error messages ("/proc/buddyinfo line 3: ...").
//
// Parse, never guess: a counter the kernel did not print (older kernel, config option off) is absent
// (std::nullopt), never zero. Unknown keys and unknown zones are kept, not rejected, so newer kernels work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fragtune/util/result.hpp"

namespace fragtune {

// ---- /proc/buddyinfo ------------------------------------------------------------------------------
// "Node 0, zone   Normal   4912    807 ..." : free blocks per order, per node and zone.
struct BuddyZone {
    int node = 0;
    std::string zone;  // "DMA", "DMA32", "Normal", "Movable", "Device", ...
    // free_blocks[order] = number of free blocks of 2^order pages
    std::vector<uint64_t> free_blocks;
};
struct BuddyInfo {
    std::vector<BuddyZone> zones;  // in file order
    int orders = 0;                // columns per line; identical on every line (11 on x86-64)
};
// Errors: empty text, a line not of the form above, non-numeric or > 2^64-1 counts, lines with differing
// order counts, a node/zone pair listed twice.
Result<BuddyInfo> parse_buddyinfo(std::string_view text,
                                  std::string_view source = "/proc/buddyinfo");
// Parses into `out`, reusing its zones' storage (no allocation when the zones are those of the
// last parse). On error `out` is unspecified.
Result<void> parse_buddyinfo_into(std::string_view text, BuddyInfo& out,
                                  std::string_view source = "/proc/buddyinfo");

// ---- /proc/zoneinfo -------------------------------------------------------------------------------
struct ZoneInfoZone {
    int node = 0;
    std::string zone;
    // All in pages. `free` is "pages free"; watermarks as printed.
    uint64_t free = 0, min = 0, low = 0, high = 0;
    std::optional<uint64_t> boost, promo;  // boost since 5.0, promo since 6.1
    uint64_t spanned = 0, present = 0, managed = 0;
    std::optional<uint64_t> cma;
    std::vector<uint64_t> protection;                    // lowmem_reserve per higher zone, in pages
    std::optional<uint64_t> nr_free_pages;               // from the zone's vm stats
    std::map<std::string, uint64_t, std::less<>> stats;  // every "name value" counter of the zone
    // A zone with present == 0 is printed by the kernel with only a few lines; it is still listed here.
};
struct ZoneInfoNode {
    int node = 0;
    // the "per-node stats" block (kernel >= 4.8)
    std::map<std::string, uint64_t, std::less<>> stats;
};
struct ZoneInfo {
    std::vector<ZoneInfoZone> zones;  // in file order
    std::vector<ZoneInfoNode> nodes;  // nodes that printed a per-node stats block
};
Result<ZoneInfo> parse_zoneinfo(std::string_view text, std::string_view source = "/proc/zoneinfo");

// ---- flat "name value" files: /proc/vmstat, and the kB-valued /proc/meminfo -------------------------
// The names of a flat counter file in file order, with a sorted index for lookups. A running kernel
// prints the same names in the same order on every read, so the names are interned once (from the
// first read) and shared by every later sample; only the values are parsed per tick.
class CounterNames {
  public:
    // `names` in file order, unique (the parsers check that before building a table).
    explicit CounterNames(std::vector<std::string> names);
    std::size_t size() const { return names_.size(); }
    std::string_view name(std::size_t file_index) const { return names_[file_index]; }
    // The file index of `name`, by binary search; nullopt when the kernel does not print it.
    std::optional<std::size_t> find(std::string_view name) const;
    // The file index of the i-th name in name order.
    std::size_t by_name(std::size_t i) const { return sorted_[i]; }

  private:
    std::vector<std::string> names_;
    std::vector<uint32_t> sorted_;
};

// Counter values indexed by an interned name table: what parse_vmstat/parse_meminfo produce. Reads
// by name (get, contains) and iteration in name order ({name, value} pairs), like the sorted map it
// replaces; re-parsing into a set whose table matches the text only overwrites values (no heap).
class CounterSet {
  public:
    CounterSet() = default;
    // For tests and tools: a set with its own table. Later duplicates of a name are dropped.
    CounterSet(std::initializer_list<std::pair<std::string_view, uint64_t>> items);

    std::optional<uint64_t> get(std::string_view name) const;
    bool contains(std::string_view name) const { return get(name).has_value(); }
    std::size_t size() const { return values_.size(); }
    bool empty() const { return values_.empty(); }

    // Iteration in name order, yielding std::pair<std::string_view, uint64_t> by value.
    class const_iterator {
      public:
        using value_type = std::pair<std::string_view, uint64_t>;
        using difference_type = std::ptrdiff_t;
        const_iterator() = default;
        const_iterator(const CounterSet* set, std::size_t i) : set_(set), i_(i) {}
        value_type operator*() const {
            const std::size_t f = set_->names_->by_name(i_);
            return {set_->names_->name(f), set_->values_[f]};
        }
        const_iterator& operator++() {
            ++i_;
            return *this;
        }
        const_iterator operator++(int) {
            auto t = *this;
            ++i_;
            return t;
        }
        bool operator==(const const_iterator& o) const { return i_ == o.i_; }

      private:
        const CounterSet* set_ = nullptr;
        std::size_t i_ = 0;
    };
    const_iterator begin() const { return {this, 0}; }
    const_iterator end() const { return {this, values_.size()}; }

    // The interned table (null for an empty set) and the values in file order.
    const std::shared_ptr<const CounterNames>& names() const { return names_; }
    const std::vector<uint64_t>& values() const { return values_; }
    // Adopts `other`'s table (values are left for the next parse to fill): lets a parse into this
    // set take the fast path against the table another sample already built.
    void share_names(const CounterSet& other);
    // Replaces table and values (the parsers' slow path).
    void assign(std::shared_ptr<const CounterNames> names, std::vector<uint64_t> values);
    std::vector<uint64_t>& mutable_values() { return values_; }

    // The same names with the same values (tables and file order aside).
    friend bool operator==(const CounterSet& a, const CounterSet& b);

  private:
    std::shared_ptr<const CounterNames> names_;
    std::vector<uint64_t> values_;
};
// The name the parsed maps had; kept so code that names the type still reads.
using CounterMap = CounterSet;

struct VmStat {
    CounterSet counters;
    std::optional<uint64_t> get(std::string_view name) const;
};
Result<VmStat> parse_vmstat(std::string_view text, std::string_view source = "/proc/vmstat");
// Parses into `out`, reusing its table when the text prints the same names in the same order
// (values only: no allocation), else building a new table. On error `out` is unspecified.
Result<void> parse_vmstat_into(std::string_view text, VmStat& out,
                               std::string_view source = "/proc/vmstat");

struct MemInfo {
    // "MemTotal: 24576000 kB" -> kib["MemTotal"] = 24576000; page counts (HugePages_*) as is
    CounterSet kib;
    std::optional<uint64_t> get_kib(std::string_view name) const;
};
Result<MemInfo> parse_meminfo(std::string_view text, std::string_view source = "/proc/meminfo");
// As parse_vmstat_into.
Result<void> parse_meminfo_into(std::string_view text, MemInfo& out,
                                std::string_view source = "/proc/meminfo");

// ---- PSI: /proc/pressure/memory and cgroup v2 memory.pressure --------------------------------------
struct PsiLine {
    double avg10 = 0, avg60 = 0, avg300 = 0;  // percent
    uint64_t total_usec = 0;                  // cumulative stall time
};
struct Psi {
    PsiLine some;
    std::optional<PsiLine> full;  // absent on kernels that print only "some" (and for the CPU file)
};
Result<Psi> parse_psi(std::string_view text, std::string_view source = "/proc/pressure/memory");

// ---- one sysctl value ------------------------------------------------------------------------------
// "67584\n" -> 67584. Rejects empty text, signs where not allowed, trailing garbage, overflow.
Result<int64_t> parse_sysctl_int(std::string_view text, std::string_view source);

// ---- kernel log ------------------------------------------------------------------------------------
// One /dev/kmsg record: "6,1234,5678901,-;message\n KEY=value\n..." (see
// Documentation/ABI/testing/dev-kmsg). Continuation lines (" KEY=value") are ignored.
struct KmsgRecord {
    int facility = 0, level = 0;  // from the priority field (prio = facility*8 + level)
    uint64_t seq = 0;
    uint64_t ts_usec = 0;      // since boot
    char flag = '-';           // '-' (normal) or 'c' (continuation of the previous record)
    std::string_view message;  // points into the input text
};
Result<KmsgRecord> parse_kmsg_record(std::string_view record);

enum class FailureKind { page, vmalloc };

// A kernel allocation-failure report, from any of the formats the kernel has printed:
//   "cld: page allocation failure. order:1, mode:0x20"                     (<= 3.x)
//   "runc:[1:CHILD]: page allocation failure: order:6, mode:0x10c0d0"      (3.x-4.x)
//   "swapper/0: page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), nodemask=(null),..." (>= 4.10)
//   "iptables: vmalloc: allocation failure, allocated 0 of 4096 bytes"    (vmalloc, <= 4.x)
//   "vmalloc error: size 8192, vm_struct allocation failed, mode:0xdc0(GFP_KERNEL|__GFP_ZERO), ..." (>= 5.x)
// `atomic` means the request could not sleep: no __GFP_DIRECT_RECLAIM. Decided from the flag names in
// parentheses when printed, else from the bit values of the era the format belongs to.
struct AllocFailure {
    FailureKind kind = FailureKind::page;
    std::string task;  // "cld", "runc:[1:CHILD]", "" when not printed
    int order = 0;     // vmalloc failures report the order of their size (pages rounded up)
    std::optional<uint64_t> gfp_mask;  // the mode:0x... value
    std::string gfp_flags;             // "GFP_ATOMIC" etc. when printed, else ""
    bool atomic = false;
    std::optional<uint64_t> size_bytes;  // vmalloc only: the request, when the line prints it
    // vmalloc "failed to allocate pages" lines print what was allocated before the failure, not the
    // request: that figure is here, and size_bytes is absent.
    std::optional<uint64_t> allocated_bytes;
};
// nullopt when the message is not an allocation-failure report. `page_size_bytes` (the machine's
// page size) turns a vmalloc size into its order.
std::optional<AllocFailure> parse_alloc_failure(std::string_view message,
                                                uint64_t page_size_bytes = 4096);

}  // namespace fragtune
