// fragtuned entry point: parses arguments and wires objects; no logic lives here.
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include "fragtune/config_file.hpp"
#include "fragtune/kernel_fs.hpp"

namespace {

// ---- fragtuned --config / --check-config / --dump-config -------------------------------------------
//
// Validation for configuration management (Ansible's `validate: fragtuned --check-config --config %s`)
// and the merged view. Exit status: 0 valid, 1 invalid (every diagnostic on stderr).
struct ConfigArgs {
    std::string path = std::string(fragtune::kDefaultConfigPath);
    bool check = false;
    bool dump = false;
};

void add_config_options(CLI::App& app, ConfigArgs& a) {
    app.add_option("--config", a.path, "configuration file; drop-ins are read from FILE.d/*.toml")
        ->capture_default_str();
    app.add_flag("--check-config", a.check,
                 "validate the configuration, print every error, exit 0 (valid) or 1 (invalid)");
    app.add_flag("--dump-config", a.dump,
                 "print the merged configuration, each value with the file:line it came from");
}

// KernelFs takes absolute paths only; a relative --config is relative to the working directory.
std::string absolute_config_path(const std::string& path) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    return ec ? path : abs.lexically_normal().string();
}

int run_config_command(const ConfigArgs& a, const std::string& root) {
    const fragtune::KernelFs fs(root);
    const auto report = fragtune::check_config(fs, absolute_config_path(a.path));
    std::size_t errors = 0;
    for (const auto& d : report.diagnostics) {
        std::fprintf(stderr, "%s\n", d.describe().c_str());
        if (d.severity == fragtune::ConfigDiagnostic::Severity::error) ++errors;
    }
    if (errors > 0) {
        std::fprintf(stderr, "fragtuned: configuration invalid: %zu error%s\n", errors,
                     errors == 1 ? "" : "s");
        return 1;
    }
    if (a.dump) {
        std::fputs(fragtune::render_effective_config(report.loaded).c_str(), stdout);
        return 0;
    }
    const auto& files = report.loaded.files;
    std::string read = files.empty() ? "no file found, built-in defaults" : "";
    for (std::size_t i = 0; i < files.size(); ++i) read += (i ? ", " : "") + files[i];
    std::printf("configuration valid: %s\n", read.c_str());
    return 0;
}

}  // namespace


int main(int argc, char** argv) {
    CLI::App app{"fragtuned - keeps Linux out of page allocation failures by tuning vm sysctls"};
    app.set_version_flag("--version", std::string("fragtuned ") + FRAGTUNE_VERSION);
    ConfigArgs config_args;
    add_config_options(app, config_args);

    CLI11_PARSE(app, argc, argv);
    if (config_args.check || config_args.dump) return run_config_command(config_args, "/");
    return 0;
}
