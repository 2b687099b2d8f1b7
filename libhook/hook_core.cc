#include "hook_core.h"

#include <pthread.h>
#include <unistd.h>

#include <cstdlib>

#include "daemon_client.h"
#include "launch_gate.h"
#include "log.h"
#include "real_driver.h"
#include "vgpu/units.h"

namespace vgpu::hook {
namespace {

using CuCtxGetDevice = int (*)(int*);
using CuCtxGetCurrent = int (*)(void**);

HookConfig load_config() {
  HookConfig cfg = parse_config([](const char* name) { return std::getenv(name); });
  set_log_level(cfg.log_level);
  for (const std::string& p : cfg.problems) VGPU_LOG(LogLevel::kError, "%s", p.c_str());
  return cfg;
}

}  // namespace

HookCore::HookCore() : config_(load_config()), ledger_(config_.memory_limit) {
  active_.store(&ledger_);
  pthread_atfork(nullptr, nullptr, &HookCore::atfork_child);
  // Daemon mode: a token or a socket was given, or vgpud's socket exists.
  daemon_mode_ = !config_.token.empty() || config_.socket_set || access(config_.socket.c_str(), F_OK) == 0;
  if (daemon_mode_) {
    if (const char* v = std::getenv("VGPU_CONTEXT_OVERHEAD"); v && *v)
      VGPU_LOG(LogLevel::kWarn, "VGPU_CONTEXT_OVERHEAD is ignored under vgpud: the floor of each context's "
                                "charge is vgpud's enforcement.context_overhead");
    g_gate.active.store(true, std::memory_order_relaxed);
    start_daemon();
  }
}

uint64_t HookCore::context_floor() {
  if (!daemon_mode_) return config_.context_overhead;
  ensure_daemon();
  uint64_t bytes = 0;
  if (DaemonClient::get().context_overhead_floor(&bytes)) daemon_floor_.store(bytes, std::memory_order_relaxed);
  return daemon_floor_.load(std::memory_order_relaxed);
}

void HookCore::start_daemon() {
  std::lock_guard<std::mutex> g(daemon_mu_);
  daemon_pending_.store(false);
  DaemonClient::State st = DaemonClient::get().start(config_, devices_, shm_ledger_, [this](bool attached) {
    // vgpud came up after this process started: what it holds moves into the
    // tenant's ledger, and from then on vgpud's quota and leases apply.
    if (!attached) {
      for (int i = 0; i < kMaxDevices; ++i) shm_ledger_.seed(i, ledger_.used(i));
      return;
    }
    active_.store(&shm_ledger_, std::memory_order_release);
    g_gate.active.store(true, std::memory_order_relaxed);
  });
  bool enforce = st == DaemonClient::State::kRegistered || st == DaemonClient::State::kRefused ||
                 (st == DaemonClient::State::kUnreachable && config_.fail_closed);
  active_.store(enforce ? static_cast<MemoryLedger*>(&shm_ledger_) : &ledger_, std::memory_order_release);
  g_gate.active.store(enforce, std::memory_order_relaxed);
}

void HookCore::ensure_daemon() {
  if (daemon_pending_.load(std::memory_order_relaxed)) start_daemon();
}

HookCore& HookCore::get() {
  static HookCore* core = new HookCore();
  return *core;
}

void HookCore::atfork_child() { get().after_fork_child(); }

void HookCore::after_fork_child() {
  ledger_.reset();
  shm_ledger_.reset_after_fork();
  if (daemon_mode_) {
    // The child is a process of its own: it registers itself on first use.
    DaemonClient::get().reset_after_fork();
    new (&daemon_mu_) std::mutex();
    daemon_pending_.store(true);
  }
  gate_reset_after_fork();
  devices_.reset();
  pointers_.clear();
  vmm_.clear();
  arrays_.clear();
  contexts_.clear();
  modules_.clear();
  limits_.clear();
  pools_.clear();
}

int HookCore::current_slot() {
  static auto get_device = reinterpret_cast<CuCtxGetDevice>(real_cuda_symbol("cuCtxGetDevice"));
  int dev = -1;
  if (!get_device || get_device(&dev) != 0) return -1;
  return devices_.slot_of_ordinal(dev);
}

uint64_t HookCore::current_context() {
  static auto get_current = reinterpret_cast<CuCtxGetCurrent>(real_cuda_symbol("cuCtxGetCurrent"));
  void* ctx = nullptr;
  if (!get_current || get_current(&ctx) != 0) return 0;
  return reinterpret_cast<uint64_t>(ctx);
}

void HookCore::release_context(uint64_t ctx) {
  std::vector<Charge> owned;
  pointers_.take_owned_by(ctx, &owned);
  arrays_.take_owned_by(ctx, &owned);
  modules_.take_owned_by(ctx, &owned);  // the driver unloads the context's modules with it
  limits_.take_owned_by(ctx, &owned);
  uint64_t total = 0;
  for (const Charge& c : owned) {
    uncharge(c.slot, c.bytes);
    total += c.bytes;
  }
  // The driver frees the memory of the context's device pools with it (or
  // destroys them); only it knows how much, so each pool is asked again.
  pools_.settle_all(-1, ledger());
  if (!owned.empty())
    VGPU_LOG(LogLevel::kDebug, "context %#llx torn down: %zu allocations, %llu bytes returned",
             static_cast<unsigned long long>(ctx), owned.size(), static_cast<unsigned long long>(total));
}

bool HookCore::charge(int slot, uint64_t bytes, const char* api) {
  ensure_daemon();
  if (daemon_mode_ && slot >= 0 && config_.fail_closed) {
    DaemonClient& c = DaemonClient::get();
    if (c.state() == DaemonClient::State::kUnreachable) c.await_registration();
  }
  MemoryLedger& l = ledger();
  if (slot < 0 || l.reserve(slot, bytes)) return true;
  // Memory the process's own pools keep idle counts against the quota: give
  // it back to the device rather than refuse.
  if (pools_.trim_and_settle(slot, l) && l.reserve(slot, bytes)) return true;
  VGPU_WARN_CAPPED("%s: %s refused on GPU %d: %s in use of a %s quota", api, format_bytes(bytes).c_str(), slot,
                   format_bytes(l.used(slot)).c_str(), format_bytes(l.limit(slot)).c_str());
  return false;
}

uint64_t HookCore::own_charge(int slot) {
  if (slot < 0 || slot >= kMaxDevices) return 0;
  return &ledger() == &shm_ledger_ ? shm_ledger_.mine(slot) : ledger_.used(slot);
}

void HookCore::uncharge(int slot, uint64_t bytes) {
  if (slot >= 0 && bytes > 0) ledger().release(slot, bytes);
}

void HookCore::uncharge_record(AllocationRegistry& reg, uint64_t key) {
  Charge c;
  if (reg.take(key, &c)) uncharge(c.slot, c.bytes);
}

}  // namespace vgpu::hook
