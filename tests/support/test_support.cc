#include "test_support.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace vgpu::test {

std::string build_dir() { return VGPU_TEST_BUILD_DIR; }
std::string simgpu_dir() { return build_dir() + "/simgpu"; }
std::string bin_dir() { return build_dir() + "/bin"; }
std::string lib_dir() { return build_dir() + "/lib"; }

namespace {
std::atomic<int> g_counter{0};
}

SimNode::SimNode(std::map<std::string, std::string> settings) : settings_(std::move(settings)) {
  name_ = "test-" + std::to_string(getpid()) + "-" + std::to_string(g_counter++) + "-" +
          std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 100000);
  settings_["SIMGPU_STATE"] = name_;
  for (auto& [k, v] : settings_) setenv(k.c_str(), v.c_str(), 1);
}

SimNode::~SimNode() {
  std::string path = "/dev/shm/simgpu-" + name_;
  unlink(path.c_str());
}

std::map<std::string, std::string> SimNode::env() const {
  auto e = settings_;
  e["LD_LIBRARY_PATH"] = simgpu_dir();
  return e;
}

Child::Child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  static std::atomic<int> n{0};
  std::string base = "/tmp/vgpu-test-" + std::to_string(getpid()) + "-" + std::to_string(n++);
  out_path_ = base + ".out";
  err_path_ = base + ".err";
  pid_ = fork();
  if (pid_ == 0) {
    int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    for (auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
}

Child::~Child() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  }
  unlink(out_path_.c_str());
  unlink(err_path_.c_str());
}

int Child::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reaped_) {
    pid_t r = waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  return -WTERMSIG(status_);
}

void Child::kill(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

bool Child::running() { return !reaped_ && wait(std::chrono::milliseconds(0)) == -1; }

std::string Child::output() const { return read_file(out_path_); }
std::string Child::errors() const { return read_file(err_path_); }

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

ChildResult run_child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                      std::chrono::seconds timeout) {
  Child child(argv, env);
  int status = child.wait(timeout);
  return {status, child.output(), child.errors()};
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace vgpu::test
