// fragtuned entry point: parses arguments and wires objects; no logic lives here.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
    CLI::App app{"fragtuned - keeps Linux out of page allocation failures by tuning vm sysctls"};
    app.set_version_flag("--version", std::string("fragtuned ") + FRAGTUNE_VERSION);
    CLI11_PARSE(app, argc, argv);
    return 0;
}
