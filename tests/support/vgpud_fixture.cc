#include "vgpud_fixture.h"
#include <netinet/in.h>
#include <arpa/inet.h>

#include <gtest/gtest.h>

#include <cstdio>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace vgpu::test {

namespace {

bool socket_answers(const std::string& path, int type = SOCK_SEQPACKET) {
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

VgpudFixture::VgpudFixture(const std::string& tenants_yaml, std::map<std::string, std::string> sim_settings,
                           const std::string& extra_yaml) {
  char tmpl[] = "/tmp/vgpud-test-XXXXXX";
  dir_ = mkdtemp(tmpl);
  if (!sim_settings.count("SIMGPU_CONTEXT_OVERHEAD")) sim_settings["SIMGPU_CONTEXT_OVERHEAD"] = "0";
  node_ = std::make_unique<SimNode>(sim_settings);
  std::ofstream f(config_path());
  f << "socket: " << socket() << "\n"
    << (extra_yaml.find("admin_socket") == std::string::npos ? "admin_socket: " + dir_ + "/admin.sock\n" : "")
    << "state_dir: " << dir_ << "/state\n"
    << extra_yaml << "tenants:\n"
    << tenants_yaml
    // Many test vgpuds share simgpu's library file: eBPF probes on it would
    // see every test's processes. Tests of the probe turn it on themselves.
    << (extra_yaml.find("enforcement:") == std::string::npos ? "enforcement: {bpf: \"off\"}\n" : "");
}

VgpudFixture::~VgpudFixture() {
  // A failing test is easier to read with what vgpud said (enforcement actions too).
  if (::testing::Test::HasFailure()) std::fprintf(stderr, "--- vgpud log ---\n%s", daemon_log().c_str());
  daemon_.reset();
  std::string cmd = "rm -rf '" + dir_ + "'";
  if (std::system(cmd.c_str()) != 0) {
  }
}

bool VgpudFixture::start(std::string* why) {
  auto env = node_->env();
  daemon_ = std::make_unique<Child>(std::vector<std::string>{bin_dir() + "/vgpud", "--config", config_path()}, env);
  // Both sockets answer: the admin socket is bound after the hook socket, and
  // its file exists a moment before it listens (or is a killed vgpud's).
  bool up = wait_until([&] { return (socket_answers(socket()) && socket_answers(admin_socket(), SOCK_STREAM)) ||
                                    !daemon_->running(); },
                       std::chrono::seconds(20));
  if (up && daemon_->running()) return true;
  if (why) *why = daemon_->errors();
  return false;
}

void VgpudFixture::kill_daemon() {
  if (!daemon_) return;
  daemon_->kill(SIGKILL);
  daemon_->wait(std::chrono::seconds(10));
}

void VgpudFixture::stop_daemon() {
  if (!daemon_) return;
  daemon_->kill(SIGTERM);
  daemon_->wait(std::chrono::seconds(10));
}

bool VgpudFixture::daemon_running() { return daemon_ && daemon_->running(); }
pid_t VgpudFixture::daemon_pid() const { return daemon_ ? daemon_->pid() : -1; }
std::string VgpudFixture::daemon_log() const { return daemon_ ? daemon_->errors() : ""; }

bool VgpudFixture::daemon_logged(const std::string& text, std::chrono::milliseconds timeout) const {
  return wait_until([&] { return daemon_log().find(text) != std::string::npos; }, timeout);
}

std::map<std::string, std::string> VgpudFixture::tenant_env(const std::string& token) const {
  auto env = node_->env();
  env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
  env["VGPU_SOCKET"] = socket();
  if (!token.empty()) env["VGPU_TOKEN"] = token;
  return env;
}

std::unique_ptr<Child> VgpudFixture::run(const std::vector<std::string>& argv, const std::string& token) {
  return std::make_unique<Child>(argv, tenant_env(token));
}

double json_number(const std::string& json, const std::string& name) {
  std::string key = "\"" + name + "\":";
  size_t at = json.find(key);
  if (at == std::string::npos) return std::nan("");
  return std::strtod(json.c_str() + at + key.size(), nullptr);
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::string scrape_metrics(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return out;
}

}  // namespace vgpu::test
