// One libFuzzer entry point for every target: FRAGTUNE_FUZZ_TARGET names the check
// (fuzz_checks.cpp) this binary runs. A broken property aborts, so libFuzzer keeps the input as a
// crash artifact.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const fragtune::fuzz::FuzzTarget* target =
        fragtune::fuzz::find_fuzz_target(FRAGTUNE_FUZZ_TARGET);
    if (target == nullptr) {
        std::fprintf(stderr, "no fuzz target named %s\n", FRAGTUNE_FUZZ_TARGET);
        std::abort();
    }
    const std::string problem =
        target->check(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!problem.empty()) {
        std::fprintf(stderr, "fuzz_%s: %s\n", FRAGTUNE_FUZZ_TARGET, problem.c_str());
        std::abort();
    }
    return 0;
}
