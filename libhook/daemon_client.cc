#include "daemon_client.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "launch_gate.h"
#include "log.h"
#include "vgpu/fd_passing.h"
#include "vgpu/protocol.h"

namespace vgpu::hook {
namespace {

uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

int connect_socket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return -1;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{5, 0};  // a vgpud that accepts but never answers must not hang us
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Maps a memfd of vgpud's of at least sizeof(T) bytes; nullptr otherwise.
template <class T>
T* map_shared(int fd, int prot) {
  struct stat st;
  if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < sizeof(T)) return nullptr;
  void* p = mmap(nullptr, sizeof(T), prot, MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? nullptr : static_cast<T*>(p);
}

}  // namespace

DaemonClient& DaemonClient::get() {
  static DaemonClient* c = new DaemonClient();
  return *c;
}

void DaemonClient::map_devices(DeviceMap& devices) {
  for (int i = 0; i < kMaxDevices; ++i) {
    dev_of_slot_[i] = -1;
    unsigned char uuid[16];
    if (!devices.uuid_of_slot(i, uuid)) continue;
    for (uint32_t d = 0; d < shm_.ctl->device_count && d < kShmMaxDevices; ++d)
      if (std::memcmp(shm_.ctl->devices[d].uuid, uuid, 16) == 0) dev_of_slot_[i] = static_cast<int>(d);
  }
}

bool DaemonClient::connect_and_register(bool reconnect, std::string* why) {
  int fd = connect_socket(socket_);
  if (fd < 0) {
    *why = "cannot connect to vgpud at " + socket_ + ": " + std::strerror(errno);
    return false;
  }
  auto hello = proto::make<proto::Hello>();
  hello.pid = getpid();
  hello.reconnect = reconnect ? 1 : 0;
  std::snprintf(hello.token, sizeof hello.token, "%s", token_.c_str());
  char buf[proto::kMaxMessage];
  int passed[2] = {-1, -1}, npassed = 0;
  ssize_t n = -1;
  if (send(fd, &hello, sizeof hello, MSG_NOSIGNAL) == sizeof hello)
    n = recv_with_fds(fd, buf, sizeof buf, passed, 2, &npassed);
  auto close_passed = [&] {
    for (int i = 0; i < npassed; ++i) close(passed[i]);
  };
  auto* h = reinterpret_cast<const proto::Header*>(buf);
  if (n > 0 && proto::check(buf, static_cast<size_t>(n)) == proto::Check::kOk &&
      h->type == static_cast<uint16_t>(proto::Type::kRefused)) {
    const auto* r = reinterpret_cast<const proto::Refused*>(buf);
    *why = "vgpud refused this process: " + std::string(r->reason, strnlen(r->reason, sizeof r->reason));
    refusal_ = *why;
    close_passed();
    close(fd);
    return false;
  }
  if (n != sizeof(proto::Welcome) || proto::check(buf, static_cast<size_t>(n)) != proto::Check::kOk ||
      h->type != static_cast<uint16_t>(proto::Type::kWelcome) || npassed != 2) {
    *why = "vgpud sent no valid answer to Hello";
    close_passed();
    close(fd);
    return false;
  }
  const auto* w = reinterpret_cast<const proto::Welcome*>(buf);
  // The control block is vgpud's alone: read-only here (and sealed so).
  TenantShm shm{map_shared<TenantControl>(passed[0], PROT_READ),
                map_shared<TenantLedger>(passed[1], PROT_READ | PROT_WRITE)};
  close_passed();
  if (!shm.ctl || !shm.led || shm.ctl->magic != kTenantControlMagic || shm.ctl->layout != kTenantShmLayout ||
      shm.led->magic != kTenantLedgerMagic || w->slot >= kShmMaxProcs) {
    *why = "vgpud's tenant memory has an unknown layout";
    if (shm.ctl) munmap(shm.ctl, sizeof(TenantControl));
    if (shm.led) munmap(shm.led, sizeof(TenantLedger));
    close(fd);
    return false;
  }
  timeval none{0, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  // The old memory stays mapped: a thread may still be reading a lease word in it.
  shm_ = shm;
  proc_ = static_cast<int>(w->slot);
  gate_set_inflight_cap(w->inflight_cap);
  fd_ = fd;
  VGPU_LOG(LogLevel::kInfo, "registered with vgpud as tenant '%s'%s", w->tenant, reconnect ? " (reconnected)" : "");
  return true;
}

DaemonClient::State DaemonClient::start(const HookConfig& cfg, DeviceMap& devices, ShmLedger& ledger,
                                        std::function<void(bool attached)> on_late) {
  std::lock_guard<std::mutex> g(mu_);
  if (state_.load() != State::kIdle) return state_.load();
  socket_ = cfg.socket;
  token_ = cfg.token;
  fail_closed_ = cfg.fail_closed;
  register_timeout_ns_ = cfg.register_timeout_ns;
  ledger_ = &ledger;
  devices_ = &devices;
  std::string why;
  if (!connect_and_register(false, &why)) {
    bool refused = !refusal_.empty();
    VGPU_LOG(LogLevel::kError, "%s%s", why.c_str(),
             refused ? "; no memory and no GPU time for this process"
                     : (fail_closed_ ? "; VGPU_FAIL_MODE=closed: no device memory and no GPU time until this "
                                       "process registers (calls wait up to VGPU_REGISTER_TIMEOUT, then fail)"
                                     : "; VGPU_FAIL_MODE=open: running with the standalone limits"));
    unreachable_since_ns_ = mono_ns();
    state_.store(refused ? State::kRefused : State::kUnreachable);
    if (!refused) std::thread([this, on_late] { retry_until_registered(on_late); }).detach();
    return state_.load();
  }
  finish_registration();
  return State::kRegistered;
}

// Registered: ledger, gate and the receiving thread. Called with mu_ held.
void DaemonClient::finish_registration() {
  map_devices(*devices_);
  ledger_->attach(shm_, proc_, dev_of_slot_);
  connected_.store(true, std::memory_order_release);
  state_.store(State::kRegistered);
  gate_refresh();
  std::thread([this] {
    RelaxedCaptureMode relaxed;  // drains sync from here: never invalidate an application's capture
    while (receive_loop() && reconnect()) {
    }
  }).detach();
}

// A process started while vgpud was away registers as soon as it is back.
void DaemonClient::retry_until_registered(std::function<void(bool attached)> on_late) {
  for (uint64_t backoff_ms = 50;; backoff_ms = backoff_ms * 2 > 2000 ? 2000 : backoff_ms * 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    std::lock_guard<std::mutex> g(mu_);
    if (state_.load() != State::kUnreachable) return;  // forked child or refused meanwhile
    std::string why;
    if (!connect_and_register(false, &why)) {
      if (!refusal_.empty()) {
        VGPU_LOG(LogLevel::kError, "%s; no memory and no GPU time for this process", why.c_str());
        state_.store(State::kRefused);
        wake_waiters();
        return;
      }
      continue;
    }
    if (on_late) on_late(false);  // this process's charges go into the ledger too
    finish_registration();
    if (on_late) on_late(true);
    wake_waiters();
    VGPU_LOG(LogLevel::kInfo, "vgpud is back: quota and GPU time are now enforced by vgpud");
    return;
  }
}

void DaemonClient::wake_waiters() {
  std::lock_guard<std::mutex> l(wait_mu_);
  wait_cv_.notify_all();
}

bool DaemonClient::await_registration() {
  std::unique_lock<std::mutex> l(wait_mu_);
  uint64_t deadline = unreachable_since_ns_ + register_timeout_ns_;
  for (uint64_t now = mono_ns(); state_.load() == State::kUnreachable && now < deadline; now = mono_ns())
    wait_cv_.wait_for(l, std::chrono::nanoseconds(deadline - now));
  return state_.load() == State::kRegistered;
}

int32_t DaemonClient::registered_pid() const {
  const TenantControl* c = control();
  int proc = proc_;
  return c && proc >= 0 && proc < kShmMaxProcs ? c->pids[proc].load(std::memory_order_acquire) : 0;
}

bool DaemonClient::context_overhead_floor(uint64_t* bytes) const {
  const TenantControl* c = control();
  if (!c) return false;
  *bytes = c->context_overhead.load(std::memory_order_acquire);
  return true;
}

LeaseWord* DaemonClient::lease_word(int slot) {
  int d = shm_device(slot);
  return d >= 0 && shm_.ctl ? &shm_.ctl->leases[d] : nullptr;
}

LeaseStats* DaemonClient::lease_stats(int slot) {
  int d = shm_device(slot);
  return d >= 0 && shm_.led ? &shm_.led->lease_stats[d] : nullptr;
}

int DaemonClient::shm_device(int slot) const {
  if (state_.load() != State::kRegistered || slot < 0 || slot >= kMaxDevices) return -1;
  return dev_of_slot_[slot];
}

std::atomic<uint32_t>* DaemonClient::touched_word(int slot) {
  int d = shm_device(slot);
  return d >= 0 && shm_.led ? &shm_.led->procs[proc_].touched[d] : nullptr;
}

void DaemonClient::request_lease(int slot, bool repeat, uint32_t seen) {
  int d = shm_device(slot);
  if (d < 0 || !connected()) return;
  uint64_t now = mono_ns(), last = last_request_ns_[d].load(std::memory_order_relaxed);
  if (repeat && now - last < 200'000'000) return;
  last_request_ns_[d].store(now, std::memory_order_relaxed);
  if (!repeat && fold_into_return(d, seen)) return;
  auto m = proto::make<proto::LeaseRequest>();
  m.device = static_cast<uint32_t>(d);
  send(fd_, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

// True when the ask rides on the LeaseReturn of the revoke that took `seen`'s
// epoch from this process. vgpud sends Revoke to every process that launched
// under the lease; this one did under its last epoch (its touched word shows
// it), so a Revoke for that epoch comes unless the return already went.
bool DaemonClient::fold_into_return(int dev, uint32_t seen) {
  if (lease_granted(seen) || !shm_.led || proc_ < 0) return false;
  uint32_t epoch = lease_epoch(seen);
  // The touched word holds the granted state a launch last saw.
  uint32_t touched = shm_.led->procs[proc_].touched[dev].load(std::memory_order_relaxed);
  if (!lease_granted(touched) || lease_epoch(touched) != epoch) return false;
  uint64_t v = drain_[dev].load(std::memory_order_acquire);
  for (;;) {
    if ((v >> 2) == epoch && (v & kDrainReturned)) return false;  // too late: ask apart
    if (drain_[dev].compare_exchange_weak(v, (static_cast<uint64_t>(epoch) << 2) | kDrainWants,
                                          std::memory_order_acq_rel))
      return true;
  }
}

void DaemonClient::report_idle(int dev, uint32_t epoch) {
  if (!connected() || dev < 0) return;
  auto m = proto::make<proto::LeaseReturn>();
  m.device = static_cast<uint32_t>(dev);
  m.flags = proto::kReturnIdle;
  m.epoch = epoch;
  send(fd_, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

bool DaemonClient::receive_loop() {
  for (;;) {
    char buf[proto::kMaxMessage];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return true;
    }
    if (proto::check(buf, static_cast<size_t>(n)) != proto::Check::kOk) continue;
    auto* h = reinterpret_cast<const proto::Header*>(buf);
    if (h->type == static_cast<uint16_t>(proto::Type::kRefused)) {
      const auto* r = reinterpret_cast<const proto::Refused*>(buf);
      lose_registration("vgpud ended this process's registration: " +
                        std::string(r->reason, strnlen(r->reason, sizeof r->reason)));
      return false;
    }
    if (h->type != static_cast<uint16_t>(proto::Type::kRevoke)) continue;
    const auto* r = reinterpret_cast<const proto::Revoke*>(buf);
    uint64_t t0 = mono_ns();
    gate_drain(static_cast<int>(r->device));
    auto ret = proto::make<proto::LeaseReturn>();
    ret.device = r->device;
    ret.epoch = r->epoch;
    ret.busy_ns = mono_ns() - t0;
    if (r->device < kShmMaxDevices) {
      // Marks this epoch returned and takes a folded ask for it. An ask for a
      // later epoch (this drain outlasted revoke_deadline and the lease came
      // and went again meanwhile) is left for that epoch's return.
      uint64_t epoch = static_cast<uint32_t>(r->epoch);
      std::atomic<uint64_t>& d = drain_[r->device];
      uint64_t v = d.load(std::memory_order_acquire);
      // Epochs are 30 bits and wrap: "later" is within half the range ahead.
      auto later = [epoch](uint64_t other) { return other != epoch && ((other - epoch) & 0x3fffffffu) < 0x20000000u; };
      while (!later(v >> 2) && !d.compare_exchange_weak(v, (epoch << 2) | kDrainReturned, std::memory_order_acq_rel)) {
      }
      if ((v >> 2) == epoch && (v & kDrainWants)) ret.flags = proto::kReturnWants;
    }
    send(fd_, &ret, sizeof ret, MSG_NOSIGNAL);
  }
}

void DaemonClient::lose_registration(const std::string& why) {
  std::lock_guard<std::mutex> g(mu_);
  refusal_ = why;
  connected_.store(false, std::memory_order_release);
  state_.store(State::kRefused);
  close(fd_);
  fd_ = -1;
  if (ledger_) ledger_->reset();  // no quota any more: every allocation is refused
  gate_refresh();
  VGPU_LOG(LogLevel::kError, "%s; allocations and launches are refused from now on", why.c_str());
}

bool DaemonClient::reconnect() {
  connected_.store(false, std::memory_order_release);
  gate_refresh();  // closed fail mode: launches now wait for vgpud
  close(fd_);
  VGPU_LOG(LogLevel::kWarn, "the connection to vgpud closed (vgpud stopped or restarts); %s and reconnecting",
           fail_closed_ ? "launches wait" : "keeping the last quota");
  for (uint64_t backoff_ms = 50;; backoff_ms = backoff_ms * 2 > 2000 ? 2000 : backoff_ms * 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    std::string why;
    std::unique_lock<std::mutex> g(mu_);
    if (!connect_and_register(true, &why)) {
      if (refusal_.empty()) continue;
      g.unlock();
      lose_registration(why);  // e.g. its tenant was deleted while vgpud was away
      return false;
    }
    map_devices(*devices_);
    // Re-registers this process's live charges: the new ledger is exact again.
    ledger_->attach(shm_, proc_, dev_of_slot_);
    for (auto& r : last_request_ns_) r.store(0);
    for (auto& d : drain_) d.store(0);  // the old vgpud's revokes are void
    connected_.store(true, std::memory_order_release);
    gate_refresh();
    return true;
  }
}

void DaemonClient::reset_after_fork() {
  // The connection and the record belong to the parent.
  state_.store(State::kIdle);
  connected_.store(false);
  new (&mu_) std::mutex();
  if (fd_ >= 0) close(fd_);  // the child's copy only; the parent keeps its connection
  fd_ = -1;
  shm_ = TenantShm{};
  proc_ = -1;
  refusal_.clear();
  for (auto& d : drain_) d.store(0);
  for (auto& r : last_request_ns_) r.store(0);
}

}  // namespace vgpu::hook
