#include "daemon_client.h"

#include <sys/mman.h>
#include <sys/socket.h>
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
    for (uint32_t d = 0; d < shm_->device_count && d < kShmMaxDevices; ++d)
      if (std::memcmp(shm_->devices[d].uuid, uuid, 16) == 0) dev_of_slot_[i] = static_cast<int>(d);
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
  int passed = -1;
  ssize_t n = -1;
  if (send(fd, &hello, sizeof hello, MSG_NOSIGNAL) == sizeof hello) n = recv_with_fd(fd, buf, sizeof buf, &passed);
  auto* h = reinterpret_cast<const proto::Header*>(buf);
  if (n > 0 && proto::check(buf, static_cast<size_t>(n)) == proto::Check::kOk &&
      h->type == static_cast<uint16_t>(proto::Type::kRefused)) {
    const auto* r = reinterpret_cast<const proto::Refused*>(buf);
    *why = "vgpud refused this process: " + std::string(r->reason, strnlen(r->reason, sizeof r->reason));
    refusal_ = *why;
    close(fd);
    return false;
  }
  if (n != sizeof(proto::Welcome) || proto::check(buf, static_cast<size_t>(n)) != proto::Check::kOk ||
      h->type != static_cast<uint16_t>(proto::Type::kWelcome) || passed < 0) {
    *why = "vgpud sent no valid answer to Hello";
    if (passed >= 0) close(passed);
    close(fd);
    return false;
  }
  const auto* w = reinterpret_cast<const proto::Welcome*>(buf);
  void* p = mmap(nullptr, sizeof(TenantShm), PROT_READ | PROT_WRITE, MAP_SHARED, passed, 0);
  close(passed);
  auto* shm = static_cast<TenantShm*>(p);
  if (p == MAP_FAILED || shm->magic != kTenantShmMagic || shm->layout != kTenantShmLayout) {
    *why = "vgpud's tenant memory has an unknown layout";
    if (p != MAP_FAILED) munmap(p, sizeof(TenantShm));
    close(fd);
    return false;
  }
  timeval none{0, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  TenantShm* old = shm_;
  shm_ = shm;
  proc_ = static_cast<int>(w->slot);
  gate_set_inflight_cap(w->inflight_cap);
  fd_ = fd;
  VGPU_LOG(LogLevel::kInfo, "registered with vgpud as tenant '%s'%s", w->tenant, reconnect ? " (reconnected)" : "");
  (void)old;  // the old memory stays mapped: a thread may still be reading a lease word in it
  return true;
}

DaemonClient::State DaemonClient::start(const HookConfig& cfg, DeviceMap& devices, ShmLedger& ledger,
                                        std::function<void(bool attached)> on_late) {
  std::lock_guard<std::mutex> g(mu_);
  if (state_.load() != State::kIdle) return state_.load();
  socket_ = cfg.socket;
  token_ = cfg.token;
  fail_closed_ = cfg.fail_closed;
  ledger_ = &ledger;
  devices_ = &devices;
  std::string why;
  if (!connect_and_register(false, &why)) {
    bool refused = !refusal_.empty();
    VGPU_LOG(LogLevel::kError, "%s%s", why.c_str(),
             refused ? "; no memory and no GPU time for this process"
                     : (fail_closed_ ? "; VGPU_FAIL_MODE=closed: refusing allocations and launches"
                                     : "; VGPU_FAIL_MODE=open: running with the standalone limits"));
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
    for (;;) {
      receive_loop();
      reconnect();
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
        state_.store(State::kRefused);
        return;
      }
      continue;
    }
    if (on_late) on_late(false);  // this process's charges go into the ledger too
    finish_registration();
    if (on_late) on_late(true);
    VGPU_LOG(LogLevel::kInfo, "vgpud is back: quota and GPU time are now enforced by vgpud");
    return;
  }
}

LeaseWord* DaemonClient::lease_word(int slot) {
  int d = shm_device(slot);
  return d >= 0 && shm_ ? &shm_->leases[d] : nullptr;
}

int DaemonClient::shm_device(int slot) const {
  if (state_.load() != State::kRegistered || slot < 0 || slot >= kMaxDevices) return -1;
  return dev_of_slot_[slot];
}

std::atomic<uint32_t>* DaemonClient::touched_word(int slot) {
  int d = shm_device(slot);
  return d >= 0 ? &shm_->procs[proc_].touched[d] : nullptr;
}

void DaemonClient::request_lease(int slot, bool repeat) {
  int d = shm_device(slot);
  if (d < 0 || !connected()) return;
  uint64_t now = mono_ns(), last = last_request_ns_[d].load(std::memory_order_relaxed);
  if (repeat && now - last < 20'000'000) return;
  last_request_ns_[d].store(now, std::memory_order_relaxed);
  auto m = proto::make<proto::LeaseRequest>();
  m.device = static_cast<uint32_t>(d);
  send(fd_, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void DaemonClient::report_idle(int dev, uint32_t epoch) {
  if (!connected() || dev < 0) return;
  auto m = proto::make<proto::LeaseReturn>();
  m.device = static_cast<uint32_t>(dev);
  m.idle = 1;
  m.epoch = epoch;
  send(fd_, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void DaemonClient::receive_loop() {
  for (;;) {
    char buf[proto::kMaxMessage];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    if (proto::check(buf, static_cast<size_t>(n)) != proto::Check::kOk) continue;
    auto* h = reinterpret_cast<const proto::Header*>(buf);
    if (h->type != static_cast<uint16_t>(proto::Type::kRevoke)) continue;
    const auto* r = reinterpret_cast<const proto::Revoke*>(buf);
    uint64_t t0 = mono_ns();
    gate_drain(static_cast<int>(r->device));
    auto ret = proto::make<proto::LeaseReturn>();
    ret.device = r->device;
    ret.epoch = r->epoch;
    ret.busy_ns = mono_ns() - t0;
    send(fd_, &ret, sizeof ret, MSG_NOSIGNAL);
  }
}

void DaemonClient::reconnect() {
  connected_.store(false, std::memory_order_release);
  gate_refresh();  // closed fail mode: launches now wait for vgpud
  close(fd_);
  VGPU_LOG(LogLevel::kWarn, "lost vgpud; keeping the last quota and reconnecting");
  for (uint64_t backoff_ms = 50;; backoff_ms = backoff_ms * 2 > 2000 ? 2000 : backoff_ms * 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    std::string why;
    std::lock_guard<std::mutex> g(mu_);
    if (!connect_and_register(true, &why)) continue;
    map_devices(*devices_);
    // Re-registers this process's live charges: the new ledger is exact again.
    ledger_->attach(shm_, proc_, dev_of_slot_);
    for (auto& r : last_request_ns_) r.store(0);
    connected_.store(true, std::memory_order_release);
    gate_refresh();
    return;
  }
}

void DaemonClient::reset_after_fork() {
  // The connection and the record belong to the parent.
  state_.store(State::kIdle);
  connected_.store(false);
  new (&mu_) std::mutex();
  if (fd_ >= 0) close(fd_);  // the child's copy only; the parent keeps its connection
  fd_ = -1;
  shm_ = nullptr;
  proc_ = -1;
  refusal_.clear();
}

}  // namespace vgpu::hook
