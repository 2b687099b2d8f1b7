// `vgpuctl completion bash|zsh` and `vgpuctl man [--dir DIR]`: shell
// completion and man pages generated from vgpuctl's own command tree, so
// they always match the binary that prints them (docs/cli.md: installing).
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "command_tree.h"
#include "commands.h"
#include "completion.h"
#include "manpage.h"
#include "suggest.h"
#include "vgpu_version.h"

namespace vgpu::cli {

namespace {

// Writes vgpuctl.1 and one page per command into `dir` (created if missing).
int write_man_pages(const CLI::App& root, const Context& ctx, const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return ctx.fail("cannot create " + dir + ": " + std::strerror(errno));
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream f(dir + "/" + name);
    f << text;
    f.close();
    return static_cast<bool>(f);
  };
  int pages = 0;
  if (!write("vgpuctl.1", man_page(root, VGPU_VERSION_STRING))) return ctx.fail("cannot write " + dir + "/vgpuctl.1");
  ++pages;
  for (const auto& path : command_paths(root)) {
    if (!subcommands_of(*command_at(root, path)).empty()) continue;
    std::string name = man_file_name(path);
    if (!write(name, command_man_page(root, path, VGPU_VERSION_STRING))) return ctx.fail("cannot write " + dir + "/" + name);
    ++pages;
  }
  *ctx.out << "wrote " << pages << " man pages to " << dir << "\n";
  return kExitOk;
}

}  // namespace

void add_help_commands(CLI::App& app, Context& ctx) {
  CLI::App* completion = app.add_subcommand("completion", "Print a shell completion script: bash or zsh");
  auto shell = std::make_shared<std::string>();
  completion->add_option("SHELL", *shell, "bash or zsh")->required()->check(CLI::IsMember({"bash", "zsh"}));
  completion->callback([&app, &ctx, shell] {
    ctx.action = [&app, &ctx, shell] {
      *ctx.out << (*shell == "bash" ? bash_completion(app) : zsh_completion(app));
      return kExitOk;
    };
  });

  CLI::App* man = app.add_subcommand("man", "Print vgpuctl's man page (roff), or write every page into a directory");
  auto dir = std::make_shared<std::string>();
  man->add_option("--dir", *dir, "write vgpuctl.1 and one page per command here instead")->type_name("DIR");
  man->callback([&app, &ctx, dir] {
    ctx.action = [&app, &ctx, dir] {
      if (!dir->empty()) return write_man_pages(app, ctx, *dir);
      *ctx.out << man_page(app, VGPU_VERSION_STRING);
      return kExitOk;
    };
  });
}

}  // namespace vgpu::cli
