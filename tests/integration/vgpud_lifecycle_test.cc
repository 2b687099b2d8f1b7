// vgpud's life under a service manager: it tells systemd (Type=notify,
// NOTIFY_SOCKET) when it is ready and when it stops, is gone within a second of
// SIGTERM with its eBPF probes attached, and a vgpud started while the previous
// one is still stopping takes over its sockets instead of failing, without
// the old one deleting the new one's socket files.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include "test_support.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::Child;

class VgpudLifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vgpud-life-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // The driver probes stay on (bpf: auto) where this process may load BPF:
    // detaching them was most of vgpud's stop time.
    std::ofstream(dir_ + "/vgpud.yaml") << "socket: " << dir_ << "/vgpud.sock\n"
                                        << "admin_socket: " << dir_ << "/admin.sock\n"
                                        << "state_dir: " << dir_ << "/state\n"
                                        << "tenants:\n  - name: a\n    memory: 1Gi\n    compute: {request: 30%}\n";
    notify_fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = dir_ + "/notify.sock";
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    ASSERT_EQ(bind(notify_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  void TearDown() override {
    if (notify_fd_ >= 0) close(notify_fd_);
    std::string cmd = "rm -rf '" + dir_ + "'";
    if (std::system(cmd.c_str()) != 0) {
    }
  }

  std::unique_ptr<Child> start_vgpud() {
    auto env = node_.env();
    env["NOTIFY_SOCKET"] = dir_ + "/notify.sock";
    return std::make_unique<Child>(
        std::vector<std::string>{vgpu::test::bin_dir() + "/vgpud", "--config", dir_ + "/vgpud.yaml"}, env);
  }

  // The next notification containing `what` (e.g. "READY=1"), or "" after `timeout`.
  std::string await_notification(const std::string& what, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{notify_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[512];
      ssize_t n = recv(notify_fd_, buf, sizeof buf - 1, 0);
      if (n <= 0) continue;
      std::string msg(buf, static_cast<size_t>(n));
      if (msg.find(what) != std::string::npos) return msg;
    }
    return "";
  }

  std::string dir_;
  int notify_fd_ = -1;
  vgpu::test::SimNode node_;
};

TEST_F(VgpudLifecycle, NotifiesReadyAndStoppingAndIsGoneWithinASecondOfSigterm) {
  auto vgpud = start_vgpud();
  std::string ready = await_notification("READY=1", 30s);
  ASSERT_FALSE(ready.empty()) << "no READY=1 from vgpud; its log:\n" << vgpud->errors();
  EXPECT_NE(ready.find("MAINPID=" + std::to_string(vgpud->pid())), std::string::npos) << ready;
  // Ready means serving: both sockets exist when READY=1 arrives.
  struct stat st {};
  EXPECT_EQ(stat((dir_ + "/vgpud.sock").c_str(), &st), 0);
  EXPECT_EQ(stat((dir_ + "/admin.sock").c_str(), &st), 0);

  auto start = std::chrono::steady_clock::now();
  vgpud->kill(SIGTERM);
  int status = vgpud->wait(10s);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(status, 0) << vgpud->errors();
  EXPECT_LT(took, 1s) << "vgpud took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms to exit; its log:\n" << vgpud->errors();
  EXPECT_FALSE(await_notification("STOPPING=1", 2s).empty()) << "no STOPPING=1";
}

TEST_F(VgpudLifecycle, ARestartDuringTheStopTakesOverTheSockets) {
  auto first = start_vgpud();
  ASSERT_FALSE(await_notification("READY=1", 30s).empty()) << first->errors();
  first->kill(SIGTERM);
  auto second = start_vgpud();  // at once, while the first may still be stopping
  ASSERT_EQ(first->wait(10s), 0) << first->errors();
  std::string ready = await_notification("MAINPID=" + std::to_string(second->pid()), 30s);
  ASSERT_FALSE(ready.empty()) << "the second vgpud never became ready; its log:\n" << second->errors();
  EXPECT_TRUE(second->running()) << second->errors();
  // The first one, gone now, left the second one's sockets alone.
  EXPECT_TRUE(vgpu::test::wait_until([&] { return access((dir_ + "/vgpud.sock").c_str(), F_OK) == 0; }, 2s));
  EXPECT_EQ(access((dir_ + "/admin.sock").c_str(), F_OK), 0);
  second->kill(SIGTERM);
  EXPECT_EQ(second->wait(10s), 0) << second->errors();
}

}  // namespace
