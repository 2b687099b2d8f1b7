// Helpers shared by the test suites: isolated simulated nodes, child processes
// with deadlines, and condition waits. Tests never sleep-and-hope: they wait
// for a condition with a deadline (wait_until).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace vgpu::test {

// Directory of the build tree (build/), known at compile time.
std::string build_dir();
std::string simgpu_dir();   // build/simgpu
std::string bin_dir();      // build/bin
std::string lib_dir();      // build/lib

// An isolated simulated node: a unique SIMGPU_STATE name, exported into this
// process's environment (so in-process cuInit uses it) and removed at the end.
class SimNode {
 public:
  explicit SimNode(std::map<std::string, std::string> settings = {});
  ~SimNode();
  const std::string& name() const { return name_; }
  // Environment for a child process on this node (SIMGPU_* plus LD_LIBRARY_PATH).
  std::map<std::string, std::string> env() const;

 private:
  std::string name_;
  std::map<std::string, std::string> settings_;
};

// A child process started with fork/exec, output captured to a temp file.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env);
  ~Child();  // kills (SIGKILL) and reaps the child if still running
  pid_t pid() const { return pid_; }
  // Waits up to `timeout` for exit; returns the exit status (>= 0), or -1 on
  // timeout, or -signal if killed by a signal.
  int wait(std::chrono::milliseconds timeout);
  void kill(int sig);
  bool running();
  std::string output() const;  // stdout so far
  std::string errors() const;  // stderr so far

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
  std::string out_path_, err_path_;
};

// Polls `pred` every few ms until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

std::string read_file(const std::string& path);

// Runs `argv` to the end (at most `timeout`; status -1 when it did not end)
// and returns its exit status and output.
struct ChildResult {
  int status;
  std::string out, err;
};
ChildResult run_child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                      std::chrono::seconds timeout);
// The lines of `text`, without their newlines.
std::vector<std::string> split_lines(const std::string& text);

}  // namespace vgpu::test

namespace vgpu::test {
// build/tests/programs/<name>: a driver-API program from tests/programs/.
inline std::string program(const std::string& name) { return build_dir() + "/tests/programs/" + name; }
}  // namespace vgpu::test
