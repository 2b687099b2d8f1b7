// DaemonClient: this process's registration with vgpud (protocol.h).
//
// start() connects to the hook socket, sends Hello with VGPU_TOKEN, and on
// Welcome maps the tenant's shared memory and points the ShmLedger at it. A
// background thread then receives Revoke messages (drain, answer LeaseReturn)
// and, if vgpud goes away, reconnects with backoff (50 ms doubling to 2 s),
// re-registering this process's live charges in the new vgpud's memory.
//
// Thread-safety: all methods are thread-safe. After fork() the child is not
// registered: reset_after_fork() forgets the parent's connection, and the
// child registers itself on its next start().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "device_map.h"
#include "options.h"
#include "shm_ledger.h"
#include "vgpu/tenant_shm.h"

namespace vgpu::hook {

class DaemonClient {
 public:
  enum class State { kIdle, kRegistered, kRefused, kUnreachable };

  static DaemonClient& get();
  // Registers (once; later calls return the current state). If vgpud cannot
  // be reached, keeps trying in the background; on a late registration
  // `on_late(false)` runs before the ledger is attached (to seed it with what
  // the process already holds) and `on_late(true)` after.
  State start(const HookConfig& cfg, DeviceMap& devices, ShmLedger& ledger, std::function<void(bool attached)> on_late);
  State state() const { return state_.load(); }
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  bool fail_closed() const { return fail_closed_; }
  // Closed fail mode with vgpud unreachable: waits for the registration until
  // VGPU_REGISTER_TIMEOUT has passed since vgpud was first found unreachable
  // (later calls then return at once). True if registered.
  bool await_registration();
  const std::string& refusal() const { return refusal_; }
  // The tenant's control block (read-only mapping), nullptr unless registered.
  // Like lease_word(): a reconnect may swap it for the new vgpud's, and the
  // old mapping stays valid, so a reader never sees freed memory.
  const TenantControl* control() const {
    return state_.load() == State::kRegistered ? shm_.ctl : nullptr;
  }

  // This process's pid as vgpud recorded it (vgpud's pid namespace, which is
  // NVML's when vgpud runs in the host's); 0 unless registered.
  int32_t registered_pid() const;
  // The floor of each context's charge vgpud set for the tenant
  // (enforcement.context_overhead); false unless registered.
  bool context_overhead_floor(uint64_t* bytes) const;

  // The lease word of hook slot `slot` (nullptr: not a GPU of vgpud, or not registered).
  LeaseWord* lease_word(int slot);
  int shm_device(int slot) const;
  // Wait statistics of that lease (in the tenant-written ledger).
  LeaseStats* lease_stats(int slot);
  std::atomic<uint32_t>* touched_word(int slot);
  // Asks vgpud for the lease of `slot`'s GPU; `seen` is the lease word the
  // launch found not granted. The first ask of a wait is sent at once, unless
  // the lease was revoked from this process (it launched under the epoch the
  // word still shows): vgpud's Revoke is then on its way, and the drain's
  // LeaseReturn carries the ask (kReturnWants). `repeat`: a reminder while
  // still waiting, at most every 200 ms per GPU — a safety net only, since
  // vgpud keeps a request until it grants (a reconnect asks again at once).
  void request_lease(int slot, bool repeat, uint32_t seen);
  void reset_after_fork();
  // Tells vgpud this process has nothing queued on shm device `dev` under the
  // lease epoch `epoch` (a contended lease it may take back early).
  void report_idle(int dev, uint32_t epoch);

 private:
  DaemonClient() = default;
  bool connect_and_register(bool reconnect, std::string* why);
  // Both return false when vgpud ended the registration for good (Refused).
  bool receive_loop();
  bool reconnect();
  void lose_registration(const std::string& why);
  void wake_waiters();
  void map_devices(DeviceMap& devices);
  void finish_registration();
  void retry_until_registered(std::function<void(bool attached)> on_late);

  std::mutex mu_;
  std::mutex wait_mu_;                 // with wait_cv_: registration waits
  std::condition_variable wait_cv_;
  uint64_t unreachable_since_ns_ = 0;
  uint64_t register_timeout_ns_ = 0;
  std::atomic<State> state_{State::kIdle};
  std::atomic<bool> connected_{false};
  bool fail_closed_ = false;
  std::string socket_, token_, refusal_;
  int fd_ = -1;
  TenantShm shm_;
  std::atomic<int> proc_{-1};
  int dev_of_slot_[kMaxDevices];
  ShmLedger* ledger_ = nullptr;
  DeviceMap* devices_ = nullptr;
  std::atomic<uint64_t> last_request_ns_[kShmMaxDevices] = {};
  // Per shm device: (revoked lease epoch << 2) | kDrainWants | kDrainReturned.
  // Launches set kDrainWants to fold their ask into the drain's return; the
  // receive thread sets kDrainReturned when it sends that return.
  static constexpr uint64_t kDrainWants = 1, kDrainReturned = 2;
  std::atomic<uint64_t> drain_[kShmMaxDevices] = {};
  bool fold_into_return(int dev, uint32_t seen);
};

}  // namespace vgpu::hook
