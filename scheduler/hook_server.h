// HookServer: the hook socket of vgpud and everything it drives — process
// registration (identity, tenant shared memory handed over with SCM_RIGHTS),
// the per-GPU execution leases, and cleanup when a process goes away.
//
// Leases. Per GPU one LeaseArbiter decides; HookServer carries out its
// decisions on the tenants' lease words (tenant_shm.h): a grant sets the
// granted bit with a new epoch and futex-wakes the tenant's waiting
// launches; a revoke clears the bit and sends Revoke to every process of the
// holder that launched during the lease, and the next tenant is granted
// shortly before the drain is expected to end (LeaseArbiter: overlapped
// handovers), so its launches queue behind the drain and the GPU does not idle
// on the handover; when all have drained (LeaseReturn or disconnect) the
// revoked holder is charged up to then and the next holder's lease counts
// from then. A holder that
// has not drained by the revoke deadline loses the lease by force and pays
// for the overrun when it answers (none by drain_timeout: an offence reported
// through on_overrun). While nobody else is due the lease is renewed in place
// (new epoch, no message); a lease nobody launched under for a whole quantum
// is taken back.
//
// Everything a process sends or writes in its tenant's ledger is checked
// against vgpud's own state (docs/security.md); connections are bounded by
// Admission before they register.
//
// Not thread-safe: runs on vgpud's event loop.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "admission.h"
#include "event_loop.h"
#include "identity.h"
#include "unix_listener.h"
#include "lease_arbiter.h"
#include "tenant_registry.h"
#include "vgpu/protocol.h"

namespace vgpu::sched {

struct ClientInfo {
  int fd = -1;
  Peer peer;
  int tenant = -1;  // -1 until registered
  int slot = -1;    // ProcRecord in the tenant shm
  int bound_tenant = -1;  // arrived on this tenant's own socket; -1: the node's socket
  bool waiting[kShmMaxDevices] = {};
};

struct GpuLeaseState {
  std::unique_ptr<LeaseArbiter> arbiter;
  int holder = -1;              // tenant id
  uint32_t grant_epoch = 0;     // epoch of the grant (renewals bump the word's epoch)
  uint64_t check_at = 0;        // next idle check of the holder
  // The revoked holder whose processes still drain (-1: none); the next
  // holder may already be granted meanwhile (overlapped handover).
  int draining_tenant = -1;
  uint32_t draining_epoch = 0;  // grant epoch of the lease being drained
  std::set<int> draining;       // client fds still draining
  std::map<int, uint32_t> idle; // fd -> lease epoch at which it reported idle
  uint64_t drain_deadline = 0;  // revoke + revoke_deadline: the lease is taken by force then
  // Processes still draining a lease taken by force: fd -> (tenant, forced at).
  // A late LeaseReturn pays the overrun; none by revoke + drain_timeout is an offence.
  std::map<int, std::pair<int, uint64_t>> overdue;
  uint64_t overdue_deadline = 0;
};

class HookServer {
 public:
  HookServer(EventLoop& loop, TenantRegistry& tenants, const SchedulerConfig& cfg,
             std::unique_ptr<IdentityResolver> identity, uint64_t revoke_deadline_ns = 100'000'000,
             const LimitsConfig& limits = LimitsConfig{});
  ~HookServer();
  // Binds and listens on `path` (refuses if another vgpud answers there).
  Result<bool> listen(const std::string& path);

  // A hook socket of tenant `tenant_id` alone, at `path` (mode 0666; its
  // directory must exist). A connection arriving there IS that tenant: no
  // token needed, and a Hello carrying another tenant's token is refused.
  // Connections are bounded by the same Admission as the node's socket.
  // Replaces a socket the tenant had. Fails if the path cannot be bound.
  Result<bool> listen_tenant(int tenant_id, const std::string& path);
  // Closes and unlinks the tenant's own socket (if any); its registered
  // processes stay registered.
  void close_tenant_socket(int tenant_id);
  bool tenant_listening(int tenant_id) const { return tenant_sockets_.count(tenant_id) > 0; }

  // Tenant changes from the admin side.
  void tenant_added(Tenant* t);
  void tenant_changed(Tenant* t);
  void tenant_removing(Tenant* t);  // disconnects its processes first, closes its own socket

  // New scheduler settings and revoke deadline (a reload), from now on, no
  // lease in flight broken: each GPU's arbiter takes the new quantum and
  // window (LeaseArbiter::set_timing); idle checks and revokes after this use
  // the new idle_check, revoke_deadline and drain_timeout (a drain already
  // running keeps its deadline); processes registering from now on are told
  // the new quantum and inflight_cap in their Welcome, processes already
  // registered keep the inflight_cap they were given until they reconnect.
  void set_scheduler(const SchedulerConfig& cfg, uint64_t revoke_deadline_ns);
  // New hook-socket limits (a reload); see Admission::set_limits.
  void set_limits(const LimitsConfig& limits);
  const SchedulerConfig& scheduler() const { return cfg_; }
  uint64_t revoke_deadline_ns() const { return revoke_deadline_ns_; }
  const LimitsConfig& limits() const { return admission_.limits(); }

  const std::map<int, std::unique_ptr<ClientInfo>>& clients() const { return clients_; }
  const GpuLeaseState& gpu(int i) const { return gpus_[static_cast<size_t>(i)]; }
  double share(int tenant, int gpu, uint64_t now) const;
  // Lease time `tenant` held on `gpu` up to `now`, cumulative.
  uint64_t held_ns(int tenant, int gpu, uint64_t now) const;
  // Charges `ns` of GPU time the tenant used without its lease (not granted
  // again until paid back over the sliding window).
  void charge_penalty(int tenant, int gpu, uint64_t ns, uint64_t now);
  // pid (vgpud's namespace) -> tenant id, of every registered process.
  std::map<int32_t, int> registered() const;
  // Called when a revoked holder's process has not returned the lease by
  // revoke + drain_timeout (pid, tenant, gpu, overrun so far).
  void on_overrun(std::function<void(int32_t, int, int, uint64_t)> fn) { on_overrun_ = std::move(fn); }

 private:
  // Accepts on `listen_fd`; `bound` is the tenant whose own socket it is, or -1.
  void accept_clients(int listen_fd, int bound);
  void on_client(int fd, uint32_t events);
  void drop(int fd, const std::string& why);
  void dispatch(ClientInfo& c, const char* buf, size_t n);
  void refuse(ClientInfo& c, const std::string& reason);
  void on_hello(ClientInfo& c, const proto::Hello& m);
  void on_lease_request(ClientInfo& c, const proto::LeaseRequest& m);
  bool note_request(ClientInfo& c, uint32_t device);
  void keep_blocked_request(int gpu, Tenant* t);
  void on_lease_return(ClientInfo& c, const proto::LeaseReturn& m);

  void run_gpu(int gpu, uint64_t now);
  void grant(int gpu, Tenant* t, uint64_t now);
  void revoke(int gpu, Tenant* t, uint64_t now);
  void finish_drain(int gpu, uint64_t now);
  bool holder_active(int gpu, Tenant* t) const;
  // True if every process of the holder that launched under this lease has
  // since reported that it has nothing queued.
  bool holder_all_idle(int gpu, Tenant* t) const;
  uint64_t idle_check_interval(int gpu) const;
  bool contention(int gpu) const;
  // Mirrors "someone else waits" into the holder's lease word (bit 1).
  void update_contention(int gpu, uint64_t now);
  void on_timer();
  void arm_timer();
  uint64_t next_deadline(const GpuLeaseState& g) const;

  EventLoop& loop_;
  TenantRegistry& tenants_;
  SchedulerConfig cfg_;
  std::unique_ptr<IdentityResolver> identity_;
  int listen_fd_ = -1;
  std::string path_;
  SocketIdentity path_id_;  // the socket file this vgpud bound
  std::map<int, std::unique_ptr<ClientInfo>> clients_;
  struct TenantSocket {
    int fd = -1;
    std::string path;
    SocketIdentity id;  // the file this vgpud bound (a successor's is left alone)
  };
  std::map<int, TenantSocket> tenant_sockets_;  // tenant id -> its own listening socket
  std::vector<GpuLeaseState> gpus_;
  std::function<void(int32_t, int, int, uint64_t)> on_overrun_;
  uint64_t revoke_deadline_ns_;
  Admission admission_;

  void force_end(int gpu, uint64_t now);
  void check_overdue(int gpu, uint64_t now);
};

}  // namespace vgpu::sched
