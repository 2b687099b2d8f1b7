// Shell completion and man pages generated from vgpuctl's command tree:
// every command appears, bash really completes with the script, roff is
// well formed; and the unknown-command suggestions (edit distance).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "app.h"
#include "manpage.h"
#include "suggest.h"

namespace {

struct Outcome {
  int code;
  std::string out, err;
};

Outcome vgpuctl(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int code = vgpu::cli::run_vgpuctl(args, out, err);
  return {code, out.str(), err.str()};
}

// The subcommands `vgpuctl [group] --help` lists (the "Subcommands:" block).
std::vector<std::string> listed_commands(const std::vector<std::string>& group) {
  std::vector<std::string> args = group;
  args.push_back("--help");
  std::istringstream help(vgpuctl(args).out);
  std::vector<std::string> names;
  bool in = false;
  for (std::string line; std::getline(help, line);) {
    if (line == "Subcommands:") in = true;
    else if (in && line.rfind("  ", 0) == 0 && line.size() > 2 && line[2] != ' ') names.push_back(line.substr(2, line.find(' ', 2) - 2));
    else if (in && line.empty()) in = false;
  }
  return names;
}

std::string run_shell(const std::string& script, const std::string& shell = "bash --norc --noprofile") {
  char path[] = "/tmp/vgpuctl-completion-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, script.data(), script.size()), static_cast<ssize_t>(script.size()));
  close(fd);
  std::string out;
  FILE* p = popen((shell + " " + std::string(path) + " 2>&1").c_str(), "r");
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  pclose(p);
  unlink(path);
  return out;
}

TEST(CliCompletion, ScriptsNameEveryCommand) {
  std::vector<std::string> top = listed_commands({});
  ASSERT_GE(top.size(), 8u);
  std::vector<std::string> tenant = listed_commands({"tenant"});
  ASSERT_GE(tenant.size(), 5u);
  for (const char* shell : {"bash", "zsh"}) {
    Outcome r = vgpuctl({"completion", shell});
    ASSERT_EQ(r.code, 0) << r.err;
    std::string root_line = "    \"\") echo '";
    size_t at = r.out.find(root_line);
    ASSERT_NE(at, std::string::npos) << r.out;
    std::string offered = r.out.substr(at, r.out.find('\n', at) - at) + " ";
    std::replace(offered.begin(), offered.end(), '\'', ' ');
    for (const auto& c : top) EXPECT_NE(offered.find(" " + c + " "), std::string::npos) << shell << ": " << c;
    for (const auto& c : tenant) EXPECT_NE(r.out.find("\"tenant " + c + "\")"), std::string::npos) << shell << ": " << c;
    EXPECT_NE(r.out.find("-o|--output) echo 'table wide json yaml'"), std::string::npos) << r.out;
  }
}

// Sources the bash script and asks it what to complete, as bash would.
TEST(CliCompletion, BashCompletesCommandsOptionsAndValues) {
  if (system("bash --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "bash is not installed";
  std::string script = vgpuctl({"completion", "bash"}).out;
  ASSERT_EQ(run_shell(script + "echo syntax-ok\n"), "syntax-ok\n");
  auto complete = [&](const std::string& words, int cword) {
    return run_shell(script + "COMP_WORDS=(" + words + "); COMP_CWORD=" + std::to_string(cword) +
                     "; _vgpuctl; echo \"${COMPREPLY[*]}\"\n");
  };
  EXPECT_EQ(complete("vgpuctl sta", 1), "status\n");
  EXPECT_EQ(complete("vgpuctl tenant cr", 2), "create\n");
  EXPECT_EQ(complete("vgpuctl -o json tenant l", 4), "list\n");
  EXPECT_EQ(complete("vgpuctl tenant create x --prio", 4), "--priority\n");
  EXPECT_EQ(complete("vgpuctl tenant update x --priority ''", 5), "high normal low\n");
  EXPECT_EQ(complete("vgpuctl status -o y", 3), "yaml\n");
  EXPECT_EQ(complete("vgpuctl top --o", 2), "--once --output\n");
}

// zsh's completion builtins exist only inside a completion widget: compadd
// and _files are stubbed to print what the script offers.
TEST(CliCompletion, ZshCompletesCommandsOptionsAndValues) {
  if (system("zsh --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "zsh is not installed";
  std::string script = "compadd() { shift; print -r -- \"$*\"; }\n_files() { print -r -- FILES; }\n"
                       "compdef() { print -r -- \"compdef $*\"; }\n" +
                       vgpuctl({"completion", "zsh"}).out;
  EXPECT_EQ(run_shell(script, "zsh -f"), "compdef _vgpuctl vgpuctl\n");
  auto complete = [&](const std::string& words, int current) {
    std::string out = run_shell(script + "words=(" + words + "); CURRENT=" + std::to_string(current) + "; _vgpuctl\n",
                                "zsh -f");
    return out.substr(out.find('\n') + 1);  // after the compdef line
  };
  std::string root = complete("vgpuctl ''", 2);
  EXPECT_EQ(root.rfind("status tenant ps top token events completion man ", 0), 0u) << root;
  std::string tenant = complete("vgpuctl -o json tenant ''", 5);
  EXPECT_EQ(tenant.rfind("list get create update delete ", 0), 0u) << tenant;
  EXPECT_EQ(tenant.find("status"), std::string::npos) << tenant;
  EXPECT_EQ(complete("vgpuctl tenant update x --priority ''", 6), "high normal low\n");
  EXPECT_EQ(complete("vgpuctl --socket ''", 3), "FILES\n");
}

TEST(CliCompletion, ManPageHasEveryCommandAndIsValidRoff) {
  Outcome r = vgpuctl({"man"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find(".TH VGPUCTL 1"), r.out.find('\n') + 1) << r.out.substr(0, 200);
  for (const char* cmd : {"status", "tenant list", "tenant create", "ps", "top", "token rotate", "events", "completion"})
    EXPECT_NE(r.out.find(".SS \\fBvgpuctl " + vgpu::cli::roff_escape(cmd) + "\\fR"), std::string::npos) << cmd;
  // Option help comes from the commands themselves.
  EXPECT_NE(r.out.find("VRAM quota per GPU, e.g. 512Mi, 8Gi"), std::string::npos);
  EXPECT_NE(r.out.find("\\fB\\-\\-no\\-headers\\fR"), std::string::npos);
  if (system("groff --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "groff is not installed";
  char dir[] = "/tmp/vgpuctl-man-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  Outcome written = vgpuctl({"man", "--dir", dir});
  ASSERT_EQ(written.code, 0) << written.err;
  struct stat st {};
  EXPECT_EQ(stat((std::string(dir) + "/vgpuctl-tenant-create.1").c_str(), &st), 0);
  std::string cmd = "groff -man -Tutf8 -ww -z " + std::string(dir) + "/vgpuctl.1 " + dir + "/vgpuctl-tenant-create.1 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string warnings;
  char buf[1024];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) warnings.append(buf, n);
  pclose(p);
  EXPECT_EQ(warnings, "");
  std::system(("rm -rf '" + std::string(dir) + "'").c_str());
}

TEST(CliCompletion, RoffEscaping) {
  EXPECT_EQ(vgpu::cli::roff_escape("--memory"), "\\-\\-memory");
  EXPECT_EQ(vgpu::cli::roff_escape(".hidden"), "\\&.hidden");
  EXPECT_EQ(vgpu::cli::roff_escape("a\\b"), "a\\eb");
}

TEST(CliSuggest, EditDistanceAndSuggestions) {
  EXPECT_EQ(vgpu::cli::edit_distance("stauts", "status"), 1u);  // a swap counts once
  EXPECT_EQ(vgpu::cli::edit_distance("", "ps"), 2u);
  EXPECT_EQ(vgpu::cli::edit_distance("tenant", "tenant"), 0u);
  std::vector<std::string> names{"status", "tenant", "ps", "top", "token", "events"};
  EXPECT_EQ(vgpu::cli::suggestions("stauts", names), std::vector<std::string>{"status"});
  EXPECT_EQ(vgpu::cli::suggestions("tp", names), (std::vector<std::string>{"top", "ps"}));
  EXPECT_EQ(vgpu::cli::suggestions("tok", names), (std::vector<std::string>{"token", "top"}));
  EXPECT_TRUE(vgpu::cli::suggestions("frobnicate", names).empty());
  vgpu::cli::UnknownCommand u{"vgpuctl", "tp", {"ps", "top"}};
  EXPECT_EQ(u.message(), "unknown command 'tp' for 'vgpuctl' (did you mean 'ps' or 'top'?)");
}

}  // namespace
