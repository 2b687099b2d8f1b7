// VgpudFixture: a real vgpud on a private socket and state directory, on an
// isolated simulated node, for integration tests and benchmarks. Processes
// started through it run under LD_PRELOAD=libvgpu.so with the tenant's token.
// Everything it starts is ended by pid; its temp directory is removed.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "test_support.h"

namespace vgpu::test {

class VgpudFixture {
 public:
  // `tenants_yaml` is the `tenants:` list (YAML text, indented by two spaces);
  // `extra_yaml` more top-level keys (e.g. "scheduler: {quantum: 5ms}\n").
  VgpudFixture(const std::string& tenants_yaml, std::map<std::string, std::string> sim_settings = {},
               const std::string& extra_yaml = "");
  ~VgpudFixture();

  // Starts vgpud and waits (up to 20 s) until its socket accepts connections.
  // Returns false with vgpud's stderr in *why on failure.
  bool start(std::string* why = nullptr);
  // SIGKILLs vgpud (crash) or SIGTERMs it (clean stop) and waits for it.
  void kill_daemon();
  void stop_daemon();
  bool daemon_running();
  pid_t daemon_pid() const;
  std::string daemon_log() const;
  // Waits (up to `timeout`) until vgpud's log contains `text`: a line that
  // follows an action (a kill, a removal) is written after it.
  bool daemon_logged(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  const std::string& dir() const { return dir_; }
  std::string socket() const { return dir_ + "/vgpud.sock"; }
  std::string config_path() const { return dir_ + "/vgpud.yaml"; }
  // The admin API socket (unless extra_yaml named another).
  std::string admin_socket() const { return dir_ + "/admin.sock"; }
  SimNode& node() { return *node_; }

  // Environment for a process of tenant `token` (empty: no token) under the hook.
  std::map<std::string, std::string> tenant_env(const std::string& token) const;
  // Starts `argv` as a process of that tenant.
  std::unique_ptr<Child> run(const std::vector<std::string>& argv, const std::string& token);

 private:
  std::string dir_;
  std::unique_ptr<SimNode> node_;
  std::unique_ptr<Child> daemon_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (for vgpud's metrics).
int free_port();
// GET /metrics from 127.0.0.1:`port` (5 s timeout); the whole HTTP response.
std::string scrape_metrics(int port);

// Extracts a numeric field `"name":<number>` from a JSON text; NaN if absent.
double json_number(const std::string& json, const std::string& name);

}  // namespace vgpu::test
