// Daemon: vgpud assembled — configuration, GPUs, tenants (config file merged
// with the persisted state), the hook server, and the event loop — so that
// main() and tests build the same thing.
#pragma once

#include <memory>
#include <string>

#include "config.h"
#include "event_loop.h"
#include "hook_server.h"
#include "state_store.h"
#include "tenant_registry.h"

namespace vgpu::sched {

class Daemon {
 public:
  // Loads everything and binds the sockets. On failure returns an error
  // message for the operator; nothing is left half-started.
  static Result<std::unique_ptr<Daemon>> start(const Config& cfg);
  void run() { loop_.run(); }
  void stop() { loop_.stop(); }
  EventLoop& loop() { return loop_; }
  TenantRegistry& tenants() { return *tenants_; }
  HookServer& hooks() { return *hooks_; }
  // Persists the current tenants (after a runtime change).
  Result<bool> persist();

 private:
  Daemon() = default;
  Result<bool> load_tenants(const Config& cfg);

  Config cfg_;
  EventLoop loop_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<TenantRegistry> tenants_;
  std::unique_ptr<HookServer> hooks_;
  std::vector<std::string> api_tenants_;  // names created at run time
};

}  // namespace vgpu::sched
