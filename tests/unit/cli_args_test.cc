// vgpuctl's command line, run in process: --help everywhere, usage errors
// (exit 2, before vgpud is contacted), and the one-line explanations when
// vgpud cannot be reached (exit 1): not running, stale socket, or a
// connection closed by the daemon's peer check (permission denied).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include <poll.h>

#include "app.h"
#include "socket_probe.h"
#include "vgpu_version.h"

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

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vgpuctl-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

int bound_socket(const std::string& path, int type = SOCK_STREAM) {
  int fd = socket(AF_UNIX, type, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

// Accepts connections, counts them and closes each at once, as vgpud does
// for a caller that is neither root nor in its admin group.
class ClosingServer {
 public:
  explicit ClosingServer(const std::string& path) : fd_(bound_socket(path)) {
    listen(fd_, 16);
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0 || stop_) break;
        ++accepted_;
        close(c);
      }
    });
  }
  ~ClosingServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  int accepted() const { return accepted_; }

 private:
  int fd_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST(CliArgs, HelpOnEveryCommand) {
  for (auto cmd : std::vector<std::vector<std::string>>{{},
                                                        {"completion"},
                                                        {"man"},
                                                        {"status"},
                                                        {"tenant"},
                                                        {"tenant", "list"},
                                                        {"tenant", "get"},
                                                        {"tenant", "create"},
                                                        {"tenant", "update"},
                                                        {"tenant", "delete"},
                                                        {"ps"},
                                                        {"top"},
                                                        {"token"},
                                                        {"token", "rotate"},
                                                        {"events"}}) {
    std::string path = "vgpuctl";
    for (auto& c : cmd) path += " " + c;
    cmd.push_back("--help");
    Outcome r = vgpuctl(cmd);
    EXPECT_EQ(r.code, 0) << path << ": " << r.err;
    EXPECT_NE(r.out.find("Usage: " + path), std::string::npos) << r.out;
  }
}

TEST(CliArgs, BadUnitsAreUsageErrorsBeforeContactingVgpud) {
  TempDir dir;
  ClosingServer server(dir.path("admin.sock"));
  std::string sock = "--socket=" + dir.path("admin.sock");
  for (auto args : std::vector<std::vector<std::string>>{
           {"tenant", "create", "a", "--memory", "8Gx"},
           {"tenant", "create", "a", "--memory", "1Gi", "--request", "30x"},
           {"tenant", "update", "a", "--limit", "101%"},
           {"tenant", "update", "a", "--priority", "urgent"},
           {"tenant", "update", "a", "--memory", ""},
           {"top", "--interval", "fast"},
           {"tenant", "update", "a", "--enforcement", "lenient"},
           {"events", "--since", "soon"},
           {"events", "--limit", "-1"}}) {
    args.push_back(sock);
    Outcome r = vgpuctl(args);
    EXPECT_EQ(r.code, 2) << args[1] << " " << args[3] << ": " << r.err;
    EXPECT_NE(r.err.find("--help' for usage"), std::string::npos) << r.err;
  }
  Outcome r = vgpuctl({"tenant", "create", "a", "--memory", "8Gx", sock});
  EXPECT_EQ(r.err.rfind("vgpuctl: --memory: '8Gx' is not a size", 0), 0u) << r.err;
  EXPECT_EQ(server.accepted(), 0);
}

TEST(CliArgs, MalformedCommandLinesExitWithUsage) {
  for (auto args : std::vector<std::vector<std::string>>{{},
                                                         {"frobnicate"},
                                                         {"completion", "fish"},
                                                         {"tenant"},
                                                         {"tenant", "get"},
                                                         {"tenant", "create", "a"},  // --memory is required
                                                         {"tenant", "update", "a"},  // nothing to change
                                                         {"token", "rotate"},
                                                         {"status", "-o", "xml"},
                                                         {"ps", "--bogus"}}) {
    Outcome r = vgpuctl(args);
    EXPECT_EQ(r.code, 2) << (args.empty() ? "" : args[0]) << ": " << r.err;
    EXPECT_NE(r.err.find("vgpuctl: "), std::string::npos);
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST(CliArgs, DaemonNotRunning) {
  TempDir dir;
  Outcome r = vgpuctl({"status", "--socket", dir.path("admin.sock")});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "vgpuctl: vgpud is not running: no admin socket at " + dir.path("admin.sock") +
                       " (use --socket or VGPU_ADMIN_SOCKET)\n");
}

TEST(CliArgs, StaleSocketMeansNotRunning) {
  TempDir dir;
  int fd = bound_socket(dir.path("admin.sock"));  // bound, never listening
  Outcome r = vgpuctl({"tenant", "list", "--socket", dir.path("admin.sock")});
  close(fd);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("vgpud is not running: connection to"), std::string::npos) << r.err;
}

TEST(CliArgs, ConnectionClosedByTheDaemonMeansPermissionDenied) {
  TempDir dir;
  ClosingServer server(dir.path("admin.sock"));
  for (auto args : std::vector<std::vector<std::string>>{{"status"}, {"top", "--iterations", "1"}}) {
    args.push_back("--socket=" + dir.path("admin.sock"));
    Outcome r = vgpuctl(args);
    EXPECT_EQ(r.code, 1) << args[0];
    EXPECT_EQ(r.err.rfind("vgpuctl: permission denied: vgpud accepts root and its admin group", 0), 0u) << r.err;
  }
  EXPECT_GT(server.accepted(), 0);
}

TEST(CliArgs, SocketFromEnvironmentAndFlagWins) {
  TempDir dir;
  setenv("VGPU_ADMIN_SOCKET", dir.path("env.sock").c_str(), 1);
  Outcome from_env = vgpuctl({"ps"});
  Outcome from_flag = vgpuctl({"ps", "--socket", dir.path("flag.sock")});
  unsetenv("VGPU_ADMIN_SOCKET");
  EXPECT_NE(from_env.err.find(dir.path("env.sock")), std::string::npos) << from_env.err;
  EXPECT_NE(from_flag.err.find(dir.path("flag.sock")), std::string::npos) << from_flag.err;
  if (access("/run/vgpu/vgpud-admin.sock", F_OK) == 0) return;  // a real vgpud here would answer
  Outcome by_default = vgpuctl({"ps", "-o", "json"});
  EXPECT_NE(by_default.err.find("/run/vgpu/vgpud-admin.sock"), std::string::npos) << by_default.err;
}

TEST(CliArgs, VersionPrintsVersionAndRevision) {
  for (auto args : std::vector<std::vector<std::string>>{{"--version"}, {"--version", "status"}}) {
    Outcome r = vgpuctl(args);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, std::string("vgpuctl ") + VGPU_VERSION_STRING + " (revision " + VGPU_REVISION_STRING + ")\n");
    EXPECT_TRUE(r.err.empty()) << r.err;
  }
}

TEST(CliArgs, UnknownCommandSuggestsTheClosest) {
  TempDir dir;
  ClosingServer server(dir.path("admin.sock"));
  std::string sock = dir.path("admin.sock");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"stauts"}, "vgpuctl: unknown command 'stauts' for 'vgpuctl' (did you mean 'status'?)\n"
                   "Run 'vgpuctl --help' for usage.\n"},
      {{"--socket", sock, "-o", "json", "tenat", "list"},
       "vgpuctl: unknown command 'tenat' for 'vgpuctl' (did you mean 'tenant'?)\nRun 'vgpuctl --help' for usage.\n"},
      {{"tenant", "lsit", "--socket=" + sock},
       "vgpuctl: unknown command 'lsit' for 'vgpuctl tenant' (did you mean 'list'?)\n"
       "Run 'vgpuctl tenant --help' for usage.\n"},
      {{"-v", "frobnicate"}, "vgpuctl: unknown command 'frobnicate' for 'vgpuctl'\nRun 'vgpuctl --help' for usage.\n"},
  };
  for (const auto& c : cases) {
    Outcome r = vgpuctl(c.args);
    EXPECT_EQ(r.code, 2) << c.args[0];
    EXPECT_EQ(r.err, c.message);
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  // A positional argument of a leaf command is not a command.
  Outcome get = vgpuctl({"tenant", "get", "stauts", "--socket", dir.path("none.sock")});
  EXPECT_EQ(get.code, 1) << get.err;
  EXPECT_EQ(server.accepted(), 0);
}

TEST(CliArgs, NoCommandPrintsUsage) {
  Outcome bare = vgpuctl({});
  EXPECT_EQ(bare.code, 2);
  EXPECT_NE(bare.err.find("Usage: vgpuctl"), std::string::npos) << bare.err;
  EXPECT_NE(bare.err.find("status"), std::string::npos) << bare.err;
  EXPECT_EQ(bare.err.find("A subcommand is required"), std::string::npos) << bare.err;
  Outcome group = vgpuctl({"tenant"});
  EXPECT_EQ(group.code, 2);
  EXPECT_NE(group.err.find("Usage: vgpuctl tenant"), std::string::npos) << group.err;
  EXPECT_NE(group.err.find("create"), std::string::npos) << group.err;
}

// The hook socket (SOCK_SEQPACKET) given where the admin socket belongs.
TEST(CliArgs, HookSocketIsNamedAsSuch) {
  TempDir dir;
  int fd = bound_socket(dir.path("vgpud.sock"), SOCK_SEQPACKET);
  ASSERT_EQ(listen(fd, 4), 0);
  Outcome r = vgpuctl({"status", "--socket", dir.path("vgpud.sock")});
  close(fd);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("vgpuctl: " + dir.path("vgpud.sock") +
                            " is vgpud's hook socket, not its admin socket; use --socket ADMIN_SOCKET",
                        0),
            0u)
      << r.err;
}

// vgpud closing its listening socket with our connection still in its
// backlog (it is stopping) is not a refusal by its peer check.
TEST(CliArgs, ListenerClosedBeforeAcceptingMeansStopping) {
  TempDir dir;
  std::string path = dir.path("admin.sock");
  int fd = bound_socket(path);
  ASSERT_EQ(listen(fd, 4), 0);
  std::atomic<int> state{-1};
  std::thread probe([&] { state = static_cast<int>(vgpu::cli::probe_socket(path, std::chrono::seconds(20))); });
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 20'000), 1);  // the probe's connection waits in the backlog
  close(fd);
  probe.join();
  EXPECT_EQ(state.load(), static_cast<int>(vgpu::cli::SocketState::kStopping));
  EXPECT_EQ(vgpu::cli::explain_socket(vgpu::cli::SocketState::kStopping, path, ""),
            "vgpud is not running: it is stopping (" + path + " closed)");
}

// A daemon that accepts once, closes, and is gone by the second look (it
// was stopping): not "permission denied".
TEST(CliArgs, ClosedThenGoneMeansStopping) {
  TempDir dir;
  std::string path = dir.path("admin.sock");
  int fd = bound_socket(path);
  ASSERT_EQ(listen(fd, 4), 0);
  std::thread server([&] {
    int c = accept(fd, nullptr, nullptr);
    unlink(path.c_str());  // gone before the client sees its connection closed
    close(fd);
    close(c);
  });
  auto state = vgpu::cli::probe_socket(path, std::chrono::seconds(20));
  server.join();
  EXPECT_EQ(state, vgpu::cli::SocketState::kStopping);
}

TEST(CliArgs, VerboseLogsTheCallOnStderrOnly) {
  TempDir dir;
  Outcome quiet = vgpuctl({"status", "--socket", dir.path("admin.sock")});
  Outcome verbose = vgpuctl({"status", "-v", "--socket", dir.path("admin.sock")});
  EXPECT_EQ(quiet.code, verbose.code);
  EXPECT_EQ(quiet.out, verbose.out);
  EXPECT_EQ(quiet.err.find("debug"), std::string::npos) << quiet.err;
  EXPECT_NE(verbose.err.find("vgpuctl debug: GetStatus on " + dir.path("admin.sock")), std::string::npos)
      << verbose.err;
  EXPECT_NE(verbose.err.find("GetStatus failed after "), std::string::npos) << verbose.err;
  // The error line itself is unchanged, and last.
  EXPECT_NE(verbose.err.find(quiet.err), std::string::npos) << verbose.err;
}

}  // namespace
