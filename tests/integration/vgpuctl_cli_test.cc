// build/bin/vgpuctl against a real vgpud on a private admin socket: every
// command in every output format, error cases (daemon not running, unknown
// tenant, bad unit, a request vgpud rejects) and a non-root caller refused by
// vgpud's SO_PEERCRED check.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <sstream>
#include <nlohmann/json.hpp>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using vgpu::test::bin_dir;
using vgpu::test::VgpudFixture;

const char* kTenants = "  - {name: base, token: base-tenant-token-1, memory: 1Gi, compute: {request: 20%}}\n";

struct Ctl {
  int code;
  std::string out, err;
};

Ctl vgpuctl(const std::string& socket, std::vector<std::string> args) {
  args.insert(args.begin(), bin_dir() + "/vgpuctl");
  args.push_back("--socket=" + socket);
  vgpu::test::Child c(args, {});
  int code = c.wait(60s);
  return {code, c.output(), c.errors()};
}

Ctl vgpuctl(const VgpudFixture& f, std::vector<std::string> args) { return vgpuctl(f.admin_socket(), args); }

json parse(const Ctl& r) {
  EXPECT_EQ(r.code, 0) << r.err;
  return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
}

class VgpuctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(f_.start(&why)) << why;
  }
  VgpudFixture f_{kTenants, {{"SIMGPU_DEVICES", "2"}, {"SIMGPU_MEMORY", "8Gi"}}};
};

TEST_F(VgpuctlTest, StatusInEveryFormat) {
  json s = parse(vgpuctl(f_, {"status", "-o", "json"}));
  ASSERT_EQ(s["gpus"].size(), 2u) << s;
  EXPECT_EQ(s["gpus"][1]["index"], 1);
  EXPECT_EQ(s["gpus"][0]["memory_total_bytes"].get<uint64_t>(), 8ull << 30);
  EXPECT_EQ(s["tenants"], 1);
  EXPECT_TRUE(s["uptime_ns"].is_number_unsigned());
  EXPECT_FALSE(s["version"].get<std::string>().empty());

  Ctl table = vgpuctl(f_, {"status"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("vgpud", 0), 0u) << table.out;
  EXPECT_NE(table.out.find(s["version"].get<std::string>() + "  up "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("GPU  NAME"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("8Gi"), std::string::npos) << table.out;

  Ctl yaml = vgpuctl(f_, {"status", "-o", "yaml"});
  ASSERT_EQ(yaml.code, 0) << yaml.err;
  EXPECT_NE(yaml.out.find("tenants: 1\n"), std::string::npos) << yaml.out;
  EXPECT_NE(yaml.out.find("gpus:\n  - index: 0\n"), std::string::npos) << yaml.out;
  EXPECT_NE(yaml.out.find("    memory_total_bytes: 8589934592\n"), std::string::npos) << yaml.out;
}

TEST_F(VgpuctlTest, TenantLifecycleInEveryFormat) {
  json list = parse(vgpuctl(f_, {"tenant", "list", "-o", "json"}));
  ASSERT_EQ(list["tenants"].size(), 1u) << list;
  EXPECT_EQ(list["tenants"][0]["name"], "base");
  EXPECT_EQ(list["tenants"][0]["source"], "config");
  EXPECT_DOUBLE_EQ(list["tenants"][0]["compute_request"].get<double>(), 0.2);

  json created = parse(vgpuctl(f_, {"tenant", "create", "infer", "--memory", "512Mi", "--request", "30%", "--limit",
                                    "80%", "--priority", "high", "--devices", "0", "-o", "json"}));
  EXPECT_EQ(created["token"].get<std::string>().size(), 32u) << created;
  const json& t = created["tenant"];
  EXPECT_EQ(t["name"], "infer");
  EXPECT_EQ(t["memory_bytes"].get<uint64_t>(), 512ull << 20);
  EXPECT_DOUBLE_EQ(t["compute_request"].get<double>(), 0.3);
  EXPECT_DOUBLE_EQ(t["compute_limit"].get<double>(), 0.8);
  EXPECT_EQ(t["priority"], "high");
  EXPECT_EQ(t["devices"], json::array({"0"}));
  EXPECT_EQ(t["source"], "api");

  // Only the given flags change.
  json updated = parse(vgpuctl(f_, {"tenant", "update", "infer", "--memory", "2Gi", "-o", "json"}));
  EXPECT_EQ(updated["memory_bytes"].get<uint64_t>(), 2ull << 30);
  EXPECT_DOUBLE_EQ(updated["compute_request"].get<double>(), 0.3);
  EXPECT_EQ(updated["priority"], "high");
  EXPECT_EQ(updated["devices"], json::array({"0"}));
  updated = parse(vgpuctl(f_, {"tenant", "update", "infer", "--priority", "low", "--devices", "all", "-o", "json"}));
  EXPECT_EQ(updated["priority"], "low");
  EXPECT_EQ(updated["devices"], json::array());
  EXPECT_EQ(updated["memory_bytes"].get<uint64_t>(), 2ull << 30);

  Ctl get = vgpuctl(f_, {"tenant", "get", "infer"});
  ASSERT_EQ(get.code, 0) << get.err;
  EXPECT_NE(get.out.find("Memory:       2Gi per GPU"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("Request:      30.0%"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("TENANT  GPU  USED"), std::string::npos) << get.out;
  Ctl yaml = vgpuctl(f_, {"tenant", "get", "infer", "-o", "yaml"});
  ASSERT_EQ(yaml.code, 0) << yaml.err;
  EXPECT_EQ(yaml.out.rfind("name: infer\npriority: low\nmemory_bytes: 2147483648\ncompute_request: 0.3\n", 0), 0u)
      << yaml.out;

  Ctl table = vgpuctl(f_, {"tenant", "list"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("NAME   PRIORITY  MEMORY  USED  REQUEST  LIMIT"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("infer  low       2Gi     0     30.0%    80.0%   all"), std::string::npos) << table.out;

  Ctl del = vgpuctl(f_, {"tenant", "delete", "infer"});
  EXPECT_EQ(del.code, 0) << del.err;
  EXPECT_EQ(del.out, "tenant 'infer' deleted\n");
  list = parse(vgpuctl(f_, {"tenant", "list", "-o", "json"}));
  EXPECT_EQ(list["tenants"].size(), 1u) << list;
  Ctl del_yaml = vgpuctl(f_, {"tenant", "delete", "base", "-o", "yaml"});
  EXPECT_EQ(del_yaml.code, 0) << del_yaml.err;
  EXPECT_EQ(del_yaml.out, "deleted: base\n");
}

TEST_F(VgpuctlTest, CreateShowsTheTokenAndTokenRotateReplacesIt) {
  Ctl created = vgpuctl(f_, {"tenant", "create", "nb", "--memory", "256Mi", "--token", "first-tenant-token-1"});
  ASSERT_EQ(created.code, 0) << created.err;
  EXPECT_NE(created.out.find("\nToken: first-tenant-token-1\n"), std::string::npos) << created.out;
  json rotated = parse(vgpuctl(f_, {"token", "rotate", "nb", "--token", "second-tenant-token-2", "-o", "json"}));
  EXPECT_EQ(rotated["token"], "second-tenant-token-2");
  EXPECT_EQ(rotated["tenant"]["name"], "nb");
  Ctl generated = vgpuctl(f_, {"token", "rotate", "nb", "-o", "yaml"});
  ASSERT_EQ(generated.code, 0) << generated.err;
  EXPECT_NE(generated.out.find("\ntoken: "), std::string::npos) << generated.out;
  EXPECT_EQ(generated.out.find("second-tenant-token-2"), std::string::npos) << generated.out;
  Ctl table = vgpuctl(f_, {"token", "rotate", "nb", "--token", "third-tenant-token-3"});
  EXPECT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("Token: third-tenant-token-3"), std::string::npos) << table.out;
}

TEST_F(VgpuctlTest, PsShowsARunningProcessInEveryFormat) {
  auto holder = f_.run({vgpu::test::program("sim_mem_holder"), "hold", std::to_string(256ull << 20)}, "base-tenant-token-1");
  ASSERT_TRUE(vgpu::test::wait_until([&] { return holder->output().find("ready") != std::string::npos; }, 60s))
      << holder->errors();
  json ps = parse(vgpuctl(f_, {"ps", "-o", "json"}));
  ASSERT_EQ(ps["processes"].size(), 1u) << ps;
  const json& p = ps["processes"][0];
  EXPECT_EQ(p["pid"], holder->pid());
  EXPECT_EQ(p["tenant"], "base");
  ASSERT_GE(p["gpus"].size(), 1u) << p;
  EXPECT_EQ(p["gpus"][0]["index"], 0);
  EXPECT_EQ(p["gpus"][0]["memory_bytes"].get<uint64_t>(), 256ull << 20);
  for (size_t i = 1; i < p["gpus"].size(); ++i) EXPECT_EQ(p["gpus"][i]["memory_bytes"], 0) << p;

  Ctl table = vgpuctl(f_, {"ps", "--tenant", "base"});
  ASSERT_EQ(table.code, 0) << table.err;
  std::string pid = std::to_string(holder->pid());
  EXPECT_NE(table.out.find(pid + "  base    0    256Mi"), std::string::npos) << table.out;
  Ctl yaml = vgpuctl(f_, {"ps", "-o", "yaml"});
  ASSERT_EQ(yaml.code, 0) << yaml.err;
  EXPECT_NE(yaml.out.find("processes:\n  - pid: " + pid + "\n    tenant: base\n"), std::string::npos) << yaml.out;

  // The tenant's memory shows in tenant list/get too.
  json t = parse(vgpuctl(f_, {"tenant", "get", "base", "-o", "json"}));
  EXPECT_EQ(t["processes"], 1);
  EXPECT_EQ(t["gpus"][0]["memory_used_bytes"].get<uint64_t>(), 256ull << 20) << t;
}

TEST_F(VgpuctlTest, TopRefreshesInEveryFormat) {
  Ctl lines = vgpuctl(f_, {"top", "--iterations", "3", "--interval", "50ms", "-o", "json"});
  ASSERT_EQ(lines.code, 0) << lines.err;
  std::istringstream in(lines.out);
  int snapshots = 0;
  for (std::string line; std::getline(in, line); ++snapshots) {
    json snap = json::parse(line, nullptr, false);
    ASSERT_FALSE(snap.is_discarded()) << line;
    EXPECT_EQ(snap["status"]["gpus"].size(), 2u);
    EXPECT_EQ(snap["tenants"][0]["name"], "base");
    EXPECT_TRUE(snap["processes"].is_array());
  }
  EXPECT_EQ(snapshots, 3);

  // Into a pipe: plain frames, no screen escapes, separated by a blank line.
  Ctl table = vgpuctl(f_, {"top", "--iterations", "2", "--interval", "50ms"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_EQ(table.out.find('\033'), std::string::npos) << table.out;
  EXPECT_EQ(table.out.rfind("vgpud", 0), 0u) << table.out;
  size_t second = table.out.find("\n\nvgpud");
  EXPECT_NE(second, std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("\n\nvgpud", second + 1), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("TENANT  GPU"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("PID  TENANT"), std::string::npos) << table.out;
  Ctl once = vgpuctl(f_, {"top", "--once"});
  ASSERT_EQ(once.code, 0) << once.err;
  EXPECT_EQ(once.out.find("\n\nvgpud"), std::string::npos) << once.out;
  EXPECT_NE(once.out.find("PID  TENANT"), std::string::npos) << once.out;

  Ctl yaml = vgpuctl(f_, {"top", "--iterations", "2", "--interval", "50ms", "-o", "yaml"});
  ASSERT_EQ(yaml.code, 0) << yaml.err;
  EXPECT_EQ(yaml.out.rfind("---\nstatus:\n", 0), 0u) << yaml.out;
  EXPECT_NE(yaml.out.find("\n---\nstatus:\n"), std::string::npos) << yaml.out;
}

TEST_F(VgpuctlTest, TopEndsOnSigint) {
  vgpu::test::Child top({bin_dir() + "/vgpuctl", "top", "--interval", "50ms", "-o", "json",
                         "--socket=" + f_.admin_socket()},
                        {});
  ASSERT_TRUE(vgpu::test::wait_until([&] { return top.output().find('\n') != std::string::npos; }, 30s))
      << top.errors();
  top.kill(SIGINT);
  EXPECT_EQ(top.wait(30s), 0) << top.errors();
}

// `vgpuctl top` on a terminal (a pseudo-terminal here) quits on the q key.
TEST_F(VgpuctlTest, TopOnATerminalQuitsOnQ) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  std::string slave = ptsname(master);
  winsize ws{};
  ws.ws_col = 70;  // narrower than the tables: vgpuctl must cut, not wrap
  ws.ws_row = 40;
  ASSERT_EQ(ioctl(master, TIOCSWINSZ, &ws), 0);
  std::string bin = bin_dir() + "/vgpuctl", sock = "--socket=" + f_.admin_socket();
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    int fd = open(slave.c_str(), O_RDWR);
    dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
    execl(bin.c_str(), bin.c_str(), "top", "--interval", "50ms", sock.c_str(), static_cast<char*>(nullptr));
    _exit(98);
  }
  std::string screen;
  auto read_some = [&] {
    pollfd p{master, POLLIN, 0};
    char buf[4096];
    ssize_t n = poll(&p, 1, 50) > 0 ? read(master, buf, sizeof buf) : 0;
    if (n > 0) screen.append(buf, n);
    return screen.find("PID  TENANT") != std::string::npos;
  };
  EXPECT_TRUE(vgpu::test::wait_until(read_some, 30s)) << screen;
  ASSERT_EQ(write(master, "q", 1), 1);
  int status = -1;
  bool exited = vgpu::test::wait_until(
      [&] {
        read_some();  // keep the terminal drained so vgpuctl never blocks writing
        return waitpid(pid, &status, WNOHANG) == pid;
      },
      30s);
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  close(master);
  EXPECT_TRUE(exited) << screen;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // On a terminal the screen is redrawn, and no line is wider than it.
  EXPECT_NE(screen.find("\033[H\033[2J"), std::string::npos) << screen;
  std::string plain;
  for (size_t i = 0; i < screen.size(); ++i) {
    if (screen[i] == '\033') {
      while (i < screen.size() && !std::isalpha(static_cast<unsigned char>(screen[i])) ) ++i;
      continue;
    }
    if (screen[i] != '\r') plain += screen[i];
  }
  std::istringstream lines(plain);
  for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 70u) << line;
}

TEST_F(VgpuctlTest, UnknownTenant) {
  for (auto args : std::vector<std::vector<std::string>>{{"tenant", "get", "ghost"},
                                                         {"tenant", "update", "ghost", "--memory", "1Gi"},
                                                         {"tenant", "delete", "ghost"},
                                                         {"token", "rotate", "ghost"},
                                                         {"ps", "--tenant", "ghost"}}) {
    Ctl r = vgpuctl(f_, args);
    EXPECT_EQ(r.code, 1) << args[0] << " " << args[1];
    EXPECT_EQ(r.err, "vgpuctl: unknown tenant 'ghost'\n");
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  Ctl dup = vgpuctl(f_, {"tenant", "create", "base", "--memory", "1Gi"});
  EXPECT_EQ(dup.code, 1);
  EXPECT_EQ(dup.err, "vgpuctl: tenant 'base' already exists\n");
}

TEST_F(VgpuctlTest, BadUnitIsAUsageErrorAndChangesNothing) {
  Ctl r = vgpuctl(f_, {"tenant", "update", "base", "--memory", "8Gx"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("vgpuctl: --memory: '8Gx' is not a size", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("Run 'vgpuctl tenant update --help' for usage."), std::string::npos) << r.err;
  json t = parse(vgpuctl(f_, {"tenant", "get", "base", "-o", "json"}));
  EXPECT_EQ(t["memory_bytes"].get<uint64_t>(), 1ull << 30);
}

TEST_F(VgpuctlTest, RequestsVgpudRejectsShowItsReason) {
  // base holds 20%: a second guarantee of 90% would exceed the GPU.
  Ctl over = vgpuctl(f_, {"tenant", "create", "greedy", "--memory", "1Gi", "--request", "90%"});
  EXPECT_EQ(over.code, 1);
  EXPECT_EQ(over.err.rfind("vgpuctl: rejected by vgpud: ", 0), 0u) << over.err;
  EXPECT_NE(over.err.find("100%"), std::string::npos) << over.err;
  EXPECT_EQ(std::count(over.err.begin(), over.err.end(), '\n'), 1) << over.err;
  Ctl raise = vgpuctl(f_, {"tenant", "update", "base", "--request", "60%", "--limit", "50%"});
  EXPECT_EQ(raise.code, 1);
  EXPECT_EQ(raise.err.rfind("vgpuctl: rejected by vgpud: ", 0), 0u) << raise.err;
  json list = parse(vgpuctl(f_, {"tenant", "list", "-o", "json"}));
  EXPECT_EQ(list["tenants"].size(), 1u);
  EXPECT_DOUBLE_EQ(list["tenants"][0]["compute_request"].get<double>(), 0.2);
}

TEST_F(VgpuctlTest, DaemonNotRunning) {
  f_.stop_daemon();
  Ctl stopped = vgpuctl(f_, {"status"});
  EXPECT_EQ(stopped.code, 1);
  EXPECT_EQ(stopped.err.rfind("vgpuctl: vgpud is not running", 0), 0u) << stopped.err;

  std::string why;
  ASSERT_TRUE(f_.start(&why)) << why;
  f_.kill_daemon();  // SIGKILL leaves the socket file behind
  for (auto args : std::vector<std::vector<std::string>>{{"tenant", "list"}, {"top", "--iterations", "1"}}) {
    Ctl crashed = vgpuctl(f_, args);
    EXPECT_EQ(crashed.code, 1) << args[0];
    EXPECT_EQ(crashed.err.rfind("vgpuctl: vgpud is not running", 0), 0u) << crashed.err;
  }
}

// Runs vgpuctl as nobody (uid/gid 65534, no supplementary groups); returns
// its exit status and stderr.
Ctl vgpuctl_as_nobody(const std::string& socket) {
  int pipefd[2];
  EXPECT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(99);
    std::string bin = bin_dir() + "/vgpuctl", arg = "--socket=" + socket;
    execl(bin.c_str(), bin.c_str(), "status", arg.c_str(), static_cast<char*>(nullptr));
    _exit(98);
  }
  close(pipefd[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = read(pipefd[0], buf, sizeof buf)) > 0;) err.append(buf, n);  // EOF when it exits
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, "", err};
}

TEST_F(VgpuctlTest, NonRootCallerIsRefusedByTheDaemon) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to nobody";
  // World-connectable socket and directory: any refusal must come from
  // vgpud's SO_PEERCRED check, not from file modes.
  ASSERT_EQ(chmod(f_.dir().c_str(), 0755), 0);
  ASSERT_EQ(chmod(f_.admin_socket().c_str(), 0666), 0);
  Ctl r = vgpuctl_as_nobody(f_.admin_socket());
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.err, "vgpuctl: permission denied: vgpud accepts root and its admin group (connection to " +
                       f_.admin_socket() + " closed)\n");
  // Root still gets in.
  EXPECT_EQ(vgpuctl(f_, {"status"}).code, 0);
}

// vgpud stopping under a running `vgpuctl top`: "not running", never
// "permission denied" (the daemon had let vgpuctl in).
TEST_F(VgpuctlTest, TopSaysVgpudStoppedWhenItStops) {
  vgpu::test::Child top({bin_dir() + "/vgpuctl", "top", "--interval", "50ms", "--socket=" + f_.admin_socket()}, {});
  ASSERT_TRUE(vgpu::test::wait_until([&] { return top.output().find("PID  TENANT") != std::string::npos; }, 30s))
      << top.errors();
  f_.stop_daemon();
  EXPECT_EQ(top.wait(30s), 1) << top.errors();
  EXPECT_EQ(top.errors().rfind("vgpuctl: vgpud is not running", 0), 0u) << top.errors();
  EXPECT_EQ(top.errors().find("permission denied"), std::string::npos) << top.errors();
}

TEST_F(VgpuctlTest, HookSocketInsteadOfTheAdminSocket) {
  Ctl r = vgpuctl(f_.socket(), {"status"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "vgpuctl: " + f_.socket() +
                       " is vgpud's hook socket, not its admin socket; use --socket ADMIN_SOCKET (default "
                       "/run/vgpu/vgpud-admin.sock, vgpud's admin_socket:)\n");
}

TEST_F(VgpuctlTest, WideColumnsNoHeadersAndShortUuids) {
  json s = parse(vgpuctl(f_, {"status", "-o", "json"}));
  std::string uuid = s["gpus"][0]["uuid"];
  ASSERT_GT(uuid.size(), 12u) << uuid;
  Ctl table = vgpuctl(f_, {"status"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find(uuid.substr(0, 12) + "  "), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find(uuid), std::string::npos) << table.out;
  Ctl wide = vgpuctl(f_, {"status", "-o", "wide"});
  ASSERT_EQ(wide.code, 0) << wide.err;
  EXPECT_NE(wide.out.find(uuid), std::string::npos) << wide.out;

  Ctl bare = vgpuctl(f_, {"tenant", "list", "--no-headers"});
  ASSERT_EQ(bare.code, 0) << bare.err;
  EXPECT_EQ(bare.out.rfind("base  normal  1Gi", 0), 0u) << bare.out;
  EXPECT_EQ(std::count(bare.out.begin(), bare.out.end(), '\n'), 1) << bare.out;
  Ctl tenants_wide = vgpuctl(f_, {"tenant", "list", "-o", "wide"});
  EXPECT_NE(tenants_wide.out.find("SOURCE  ENFORCEMENT"), std::string::npos) << tenants_wide.out;
  EXPECT_NE(tenants_wide.out.find("config  default (node)  0\n"), std::string::npos) << tenants_wide.out;
  Ctl get_wide = vgpuctl(f_, {"tenant", "get", "base", "-o", "wide"});
  EXPECT_NE(get_wide.out.find("UUID"), std::string::npos) << get_wide.out;
  EXPECT_NE(get_wide.out.find(uuid), std::string::npos) << get_wide.out;
  Ctl status_bare = vgpuctl(f_, {"status", "--no-headers"});
  EXPECT_EQ(status_bare.out.rfind("0  ", 0), 0u) << status_bare.out;
  EXPECT_EQ(std::count(status_bare.out.begin(), status_bare.out.end(), '\n'), 2) << status_bare.out;
  // -o wide and --no-headers change tables only: JSON is the same document.
  json j = parse(vgpuctl(f_, {"tenant", "list", "-o", "json", "--no-headers"}));
  EXPECT_EQ(j["tenants"][0]["name"], "base");
}

TEST_F(VgpuctlTest, OvercommitAndOverQuotaAreMarked) {
  // 1Gi + 7.5Gi of quotas on 8Gi GPUs.
  ASSERT_EQ(vgpuctl(f_, {"tenant", "create", "big", "--memory", "7.5Gi"}).code, 0);
  Ctl status = vgpuctl(f_, {"status"});
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_NE(status.out.find("8.5Gi (overcommit)"), std::string::npos) << status.out;
  ASSERT_EQ(vgpuctl(f_, {"tenant", "delete", "big"}).code, 0);
  EXPECT_EQ(vgpuctl(f_, {"status"}).out.find("overcommit"), std::string::npos);

  auto holder = f_.run({vgpu::test::program("sim_mem_holder"), "hold", std::to_string(256ull << 20)}, "base-tenant-token-1");
  ASSERT_TRUE(vgpu::test::wait_until([&] { return holder->output().find("ready") != std::string::npos; }, 60s))
      << holder->errors();
  EXPECT_EQ(vgpuctl(f_, {"tenant", "list"}).out.find("over quota"), std::string::npos);
  ASSERT_EQ(vgpuctl(f_, {"tenant", "update", "base", "--memory", "128Mi"}).code, 0);
  Ctl list = vgpuctl(f_, {"tenant", "list"});
  EXPECT_NE(list.out.find("256Mi (over quota)"), std::string::npos) << list.out;
  Ctl get = vgpuctl(f_, {"tenant", "get", "base"});
  EXPECT_NE(get.out.find("256Mi (over quota)  128Mi"), std::string::npos) << get.out;
  Ctl wide = vgpuctl(f_, {"tenant", "get", "base", "-o", "wide"});
  EXPECT_NE(wide.out.find("  " + std::to_string(holder->pid()) + "\n"), std::string::npos) << wide.out;
}

TEST_F(VgpuctlTest, VerboseShowsCallsOnStderr) {
  Ctl r = vgpuctl(f_, {"-v", "tenant", "list", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["tenants"][0]["name"], "base");
  EXPECT_NE(r.err.find("vgpuctl debug: ListTenants on " + f_.admin_socket()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("vgpuctl debug: ListTenants OK in "), std::string::npos) << r.err;
  EXPECT_TRUE(vgpuctl(f_, {"tenant", "list", "-o", "json"}).err.empty());
}

}  // namespace
