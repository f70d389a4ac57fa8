// /dev/kmsg record framing, and every allocation-failure format the kernel has printed, with the
// "could not sleep" (atomic) decision.
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "fixture_text.hpp"
#include "fragtune/sensing/parsers.hpp"

using namespace fragtune;

namespace {

using fragtune::test::fixture;

std::string test_name(std::string n) {
    for (auto& ch : n)
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return n;
}

// ---- records ------------------------------------------------------------------------------------

TEST(KmsgRecord, DocumentationExampleWithContinuationLines) {
    auto r = parse_kmsg_record(
        "7,160,424069,-;pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)\n"
        " SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n");
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->facility, 0);
    EXPECT_EQ(r->level, 7);
    EXPECT_EQ(r->seq, 160u);
    EXPECT_EQ(r->ts_usec, 424069u);
    EXPECT_EQ(r->flag, '-');
    EXPECT_EQ(r->message, "pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)");
}

TEST(KmsgRecord, UserFacilityExtraFieldsAndSemicolonsInText) {
    auto a = parse_kmsg_record("30,340,5690716,-;udevd[80]: starting version 181\n");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->facility, 3);  // LOG_DAEMON
    EXPECT_EQ(a->level, 6);
    auto b = parse_kmsg_record("6,339,5140900,-,caller=T1;NET: a;b;c");
    ASSERT_TRUE(b.ok()) << b.error().describe();
    EXPECT_EQ(b->message, "NET: a;b;c");
    auto c = parse_kmsg_record("4,1,2,c;");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->flag, 'c');
    EXPECT_TRUE(c->message.empty());
    auto d = parse_kmsg_record("4,18446744073709551615,0,-;x");
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->seq, UINT64_MAX);
}

TEST(KmsgRecord, EveryFixtureRecordParses) {
    const std::string text = fixture("kmsg/alloc-failures.kmsg");
    std::istringstream in(text);
    std::string line;
    int records = 0;
    while (std::getline(in, line)) {
        if (line.empty() || line.front() == ' ') continue;
        auto r = parse_kmsg_record(line);
        EXPECT_TRUE(r.ok()) << line;
        ++records;
    }
    EXPECT_EQ(records, 25);
}

struct BadRecord {
    const char* name;
    const char* text;
    const char* error_has;
};

class KmsgRecordHostile : public ::testing::TestWithParam<BadRecord> {};

TEST_P(KmsgRecordHostile, IsRefused) {
    auto r = parse_kmsg_record(GetParam().text);
    ASSERT_FALSE(r.ok()) << GetParam().name;
    EXPECT_NE(r.error().message.find("kmsg record"), std::string::npos);
    EXPECT_NE(r.error().message.find(GetParam().error_has), std::string::npos) << r.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, KmsgRecordHostile,
    ::testing::Values(
        BadRecord{"empty", "", "no ';'"},
        BadRecord{"plain dmesg", "[   12.3] cld: page allocation failure", "no ';'"},
        BadRecord{"three fields", "6,1,2;x", "found 3 fields"},
        BadRecord{"prio not a number", "x,1,2,-;y", "priority 'x' is not a decimal number"},
        BadRecord{"prio out of range", "99999,1,2,-;y", "priority 99999 is out of range"},
        BadRecord{"seq overflow", "6,18446744073709551616,2,-;y",
                  "sequence number '18446744073709551616' is larger than 2^64-1"},
        BadRecord{"negative ts", "6,1,-2,-;y", "timestamp '-2' has a sign"},
        BadRecord{"long flag", "6,1,2,--;y", "flag '--' is not one character"},
        BadRecord{"empty flag", "6,1,2,;y", "flag '' is not one character"},
        BadRecord{"semicolon on a continuation line", "6,1,2,-\n x;y", "no ';'"}),
    [](const auto& p) { return test_name(p.param.name); });

// ---- allocation failures ------------------------------------------------------------------------

struct FailureCase {
    const char* message;
    FailureKind kind;
    const char* task;
    int order;
    std::optional<uint64_t> mask;
    const char* flags;
    bool atomic;
    std::optional<uint64_t> size;
};

class AllocFailureFormats : public ::testing::TestWithParam<FailureCase> {};

TEST_P(AllocFailureFormats, ParsesEveryField) {
    const auto& c = GetParam();
    auto f = parse_alloc_failure(c.message);
    ASSERT_TRUE(f.has_value()) << c.message;
    EXPECT_EQ(f->kind, c.kind) << c.message;
    EXPECT_EQ(f->task, c.task) << c.message;
    EXPECT_EQ(f->order, c.order) << c.message;
    EXPECT_EQ(f->gfp_mask, c.mask) << c.message;
    EXPECT_EQ(f->gfp_flags, c.flags) << c.message;
    EXPECT_EQ(f->atomic, c.atomic) << c.message;
    EXPECT_EQ(f->size_bytes, c.size) << c.message;
}

constexpr auto P = FailureKind::page;
constexpr auto V = FailureKind::vmalloc;
constexpr std::optional<uint64_t> kNone = std::nullopt;

INSTANTIATE_TEST_SUITE_P(
    Seeds, AllocFailureFormats,
    ::testing::Values(
        // <= 3.x, dot: 0x20 is __GFP_HIGH alone, no __GFP_WAIT (0x10): could not sleep.
        FailureCase{"cld: page allocation failure. order:1, mode:0x20", P, "cld", 1, 0x20, "", true,
                    kNone},
        // 3.x colon, bare mask: GFP_KERNEL (0xd0) has __GFP_WAIT.
        FailureCase{"runc:[1:CHILD]: page allocation failure: order:6, mode:0x10c0d0", P,
                    "runc:[1:CHILD]", 6, 0x10c0d0, "", false, kNone},
        FailureCase{"mysqld: page allocation failure. order:4, mode:0x10c0d0", P, "mysqld", 4,
                    0x10c0d0, "", false, kNone},
        FailureCase{"kworker/u8:2: page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), "
                    "nodemask=(null),cpuset=/,mems_allowed=0",
                    P, "kworker/u8:2", 0, 0xa20, "GFP_ATOMIC", true, kNone},
        FailureCase{"iptables: vmalloc: allocation failure, allocated 0 of 4096 bytes", V,
                    "iptables", 0, kNone, "", false, 4096},
        FailureCase{"vmalloc error: size 8192, vm_struct allocation failed, "
                    "mode:0xdc0(GFP_KERNEL|__GFP_ZERO), nodemask=(null)",
                    V, "", 1, 0xdc0, "GFP_KERNEL|__GFP_ZERO", false, 8192}));

INSTANTIATE_TEST_SUITE_P(
    Eras, AllocFailureFormats,
    ::testing::Values(
        // 4.4/4.5: bare masks in the __GFP_DIRECT_RECLAIM (0x400000) layout, told by bit 0x2000000.
        FailureCase{"swapper/0: page allocation failure: order:0, mode:0x2080020", P, "swapper/0",
                    0, 0x2080020, "", true, kNone},
        FailureCase{"java: page allocation failure: order:2, mode:0x24040c0", P, "java", 2,
                    0x24040c0, "", false, kNone},
        FailureCase{"kworker/1:1: page allocation failure: order:0, mode:0x2000000", P,
                    "kworker/1:1", 0, 0x2000000, "", true, kNone},
        // 3.x colon with a 3.x high bit (0x400000 was __GFP_NO_KSWAPD then; 0x10 decides).
        FailureCase{"khugepaged: page allocation failure: order:9, mode:0x4742da", P, "khugepaged",
                    9, 0x4742da, "", false, kNone},
        // Names (4.6+): decided by name, whatever the layout of the bits.
        FailureCase{"ksoftirqd/3: page allocation failure: order:0, "
                    "mode:0x2280020(GFP_ATOMIC|__GFP_NOTRACK)",
                    P, "ksoftirqd/3", 0, 0x2280020, "GFP_ATOMIC|__GFP_NOTRACK", true, kNone},
        FailureCase{"qemu-kvm: page allocation failure: order:4, "
                    "mode:0x14040c0(GFP_KERNEL|__GFP_COMP), nodemask=(null)",
                    P, "qemu-kvm", 4, 0x14040c0, "GFP_KERNEL|__GFP_COMP", false, kNone},
        FailureCase{"kworker/0:1H: page allocation failure: order:0, mode:0x800(GFP_NOWAIT), "
                    "nodemask=(null)",
                    P, "kworker/0:1H", 0, 0x800, "GFP_NOWAIT", true, kNone},
        FailureCase{"khugepaged: page allocation failure: order:9, "
                    "mode:0x4742ca(GFP_TRANSHUGE|__GFP_THISNODE), nodemask=0",
                    P, "khugepaged", 9, 0x4742ca, "GFP_TRANSHUGE|__GFP_THISNODE", false, kNone},
        FailureCase{"bash: page allocation failure: order:9, "
                    "mode:0x1c20ca(GFP_TRANSHUGE_LIGHT|__GFP_THISNODE), nodemask=0",
                    P, "bash", 9, 0x1c20ca, "GFP_TRANSHUGE_LIGHT|__GFP_THISNODE", true, kNone},
        FailureCase{"postgres: page allocation failure: order:3, "
                    "mode:0x100cca(GFP_HIGHUSER_MOVABLE), nodemask=(null)",
                    P, "postgres", 3, 0x100cca, "GFP_HIGHUSER_MOVABLE", false, kNone},
        FailureCase{
            "xfsaild/sda: page allocation failure: order:2, mode:0x40c40(GFP_NOFS|__GFP_COMP)", P,
            "xfsaild/sda", 2, 0x40c40, "GFP_NOFS|__GFP_COMP", false, kNone},
        FailureCase{"kworker/2:0: page allocation failure: order:1, "
                    "mode:0x820(__GFP_HIGH|__GFP_KSWAPD_RECLAIM)",
                    P, "kworker/2:0", 1, 0x820, "__GFP_HIGH|__GFP_KSWAPD_RECLAIM", true, kNone},
        FailureCase{"fio: page allocation failure: order:5, mode:0x400(__GFP_DIRECT_RECLAIM)", P,
                    "fio", 5, 0x400, "__GFP_DIRECT_RECLAIM", false, kNone},
        FailureCase{"x: page allocation failure: order:0, mode:0x0()", P, "x", 0, 0x0, "", true,
                    kNone},
        // A task name with spaces and colons, a dmesg timestamp, no mode at all.
        FailureCase{"[ 1146.837984] Web Content: page allocation failure: order:2, "
                    "mode:0x40cc0(GFP_KERNEL|__GFP_COMP)",
                    P, "Web Content", 2, 0x40cc0, "GFP_KERNEL|__GFP_COMP", false, kNone},
        FailureCase{"page allocation failure: order:7", P, "", 7, kNone, "", false, kNone},
        // vmalloc formats.
        FailureCase{"kworker/u16:2: vmalloc: allocation failure: 0 bytes, "
                    "mode:0xdc0(GFP_KERNEL|__GFP_ZERO), nodemask=(null),cpuset=/,mems_allowed=0",
                    V, "kworker/u16:2", 0, 0xdc0, "GFP_KERNEL|__GFP_ZERO", false, 0},
        FailureCase{"emerge: vmalloc: allocation failure, allocated 8192 of 20480 bytes, "
                    "mode:0x7080c0(GFP_KERNEL_ACCOUNT|__GFP_ZERO), nodemask=(null)",
                    V, "emerge", 3, 0x7080c0, "GFP_KERNEL_ACCOUNT|__GFP_ZERO", false, 20480},
        FailureCase{"vmalloc: allocation failure, allocated 4097114112 of 17179934720 bytes", V, "",
                    23, kNone, "", false, 17179934720},
        FailureCase{"modprobe: vmalloc error: size 2101248, failed to map pages, "
                    "mode:0xcc0(GFP_KERNEL), nodemask=(null)",
                    V, "modprobe", 10, 0xcc0, "GFP_KERNEL", false, 2101248},
        FailureCase{
            "irq/12: vmalloc error: size 4096, vm_struct allocation failed, mode:0xa20(GFP_ATOMIC)",
            V, "irq/12", 0, 0xa20, "GFP_ATOMIC", true, 4096}));

TEST(AllocFailure, NotFailures) {
    for (const char* m : {
             "",
             "Out of memory: Killed process 2817 (java)",
             "java: page allocation stalls for 10104ms, order:0, "
             "mode:0x24201ca(GFP_HIGHUSER_MOVABLE|__GFP_COLD)",
             "SLUB: Unable to allocate memory on node -1, gfp=0x20",
             "note: a page allocation failure happened earlier",   // phrase quoted
             "cld: page allocation failure. order:x, mode:0x20",   // no order digits
             "cld: page allocation failure order:1, mode:0x20",    // neither ". " nor ": "
             "cld: page allocation failure: order:64, mode:0x20",  // no such order
             "cld: page allocation failure: order:99999999999999999999999, mode:0x20",
             "cld: page allocation failure: order:1, mode:0xzz",                 // malformed mode
             "cld: page allocation failure: order:1, mode:0x10000000000000000",  // mask overflow
             "vmalloc: allocation failure, allocated 0 of lots bytes",
             "vmalloc error: size , vm_struct allocation failed",
         })
        EXPECT_FALSE(parse_alloc_failure(m).has_value()) << m;
}

TEST(AllocFailure, VmallocOrderUsesThePageSize) {
    // 64 KiB pages: 20480 bytes is one page (order 0); 200000 bytes are 4 pages (order 2).
    auto a = parse_alloc_failure("x: vmalloc: allocation failure: 20480 bytes", 65536);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->order, 0);
    auto b = parse_alloc_failure("x: vmalloc: allocation failure: 200000 bytes", 65536);
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->order, 2);
    auto c = parse_alloc_failure("x: vmalloc: allocation failure: 18446744073709551615 bytes");
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->order, 52);  // 2^52 pages of 4 KiB
}

TEST(AllocFailure, VmallocFailedToAllocatePagesPrintsWhatWasAllocated) {
    // mm/vmalloc.c __vmalloc_area_node: "size" there is area->nr_pages * PAGE_SIZE, the pages it
    // got before failing, not the request (which is unknown): not a size, not an order.
    auto f = parse_alloc_failure(
        "qemu-kvm: vmalloc error: size 12288, failed to allocate pages, "
        "mode:0xdc0(GFP_KERNEL|__GFP_ZERO), "
        "nodemask=(null)");
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->kind, FailureKind::vmalloc);
    EXPECT_FALSE(f->size_bytes.has_value());
    EXPECT_EQ(f->allocated_bytes, 12288u);
    EXPECT_EQ(f->order, 0);
    EXPECT_FALSE(f->atomic);
    auto g = parse_alloc_failure(
        "x: vmalloc error: size 0, page order 9, failed to allocate pages, "
        "mode:0xcc2(GFP_KERNEL|__GFP_HIGHMEM)");
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->allocated_bytes, 0u);
    EXPECT_FALSE(g->size_bytes.has_value());
}

TEST(AllocFailure, TruncatedNamesFallBackToTheBits) {
    // "(GFP_KERN" cut off by a record limit: no names, so the bits decide (0xd0 has __GFP_WAIT).
    auto f = parse_alloc_failure("x: page allocation failure: order:1, mode:0x10c0d0(GFP_KERN");
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->gfp_flags, "");
    EXPECT_FALSE(f->atomic);
}

}  // namespace
