#include "raw_client.h"

#include "vgpu/fd_passing.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace vgpu::bench {
namespace {

template <class M>
bool send_msg(int fd, const M& m) {
  return send(fd, &m, sizeof m, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof m);
}

}  // namespace

RawClient::~RawClient() {
  if (shm_.ctl) munmap(shm_.ctl, sizeof(TenantControl));
  if (shm_.led) munmap(shm_.led, sizeof(TenantLedger));
  if (control_fd_ >= 0) close(control_fd_);
  if (ledger_fd_ >= 0) close(ledger_fd_);
  if (fd_ >= 0) close(fd_);
}

bool RawClient::connect_to(const std::string& socket_path, std::string* why) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
  *why = std::string("connect: ") + std::strerror(errno);
  return false;
}

bool RawClient::send_hello(const std::string& token) {
  auto h = proto::make<proto::Hello>();
  h.pid = getpid();
  std::snprintf(h.token, sizeof h.token, "%s", token.c_str());
  return send_msg(fd_, h);
}

bool RawClient::receive_welcome(std::string* why) {
  char buf[proto::kMaxMessage];
  int passed[2] = {-1, -1}, npassed = 0;
  ssize_t n = vgpu::recv_with_fds(fd_, buf, sizeof buf, passed, 2, &npassed);
  auto close_passed = [&] {
    for (int i = 0; i < npassed; ++i) close(passed[i]);
  };
  const auto* h = reinterpret_cast<const proto::Header*>(buf);
  if (n <= 0 || proto::check(buf, static_cast<size_t>(n)) != proto::Check::kOk) {
    *why = "no valid answer to Hello";
  } else if (h->type == static_cast<uint16_t>(proto::Type::kRefused)) {
    *why = std::string("refused: ") + reinterpret_cast<const proto::Refused*>(buf)->reason;
  } else if (h->type == static_cast<uint16_t>(proto::Type::kWelcome) && npassed == 2) {
    const auto* w = reinterpret_cast<const proto::Welcome*>(buf);
    // The control block can only be mapped read-only (sealed by vgpud).
    void* c = mmap(nullptr, sizeof(TenantControl), PROT_READ, MAP_SHARED, passed[0], 0);
    void* l = mmap(nullptr, sizeof(TenantLedger), PROT_READ | PROT_WRITE, MAP_SHARED, passed[1], 0);
    control_fd_ = passed[0];
    ledger_fd_ = passed[1];
    if (c == MAP_FAILED || l == MAP_FAILED) {
      *why = "cannot map the tenant memory";
      return false;
    }
    shm_ = TenantShm{static_cast<TenantControl*>(c), static_cast<TenantLedger*>(l)};
    slot_ = static_cast<int>(w->slot);
    quantum_ns_ = w->quantum_ns;
    return true;
  } else {
    *why = "unexpected answer to Hello";
  }
  close_passed();
  return false;
}

bool RawClient::register_as(const std::string& socket_path, const std::string& token, std::string* why) {
  if (!connect_to(socket_path, why)) return false;
  if (!send_hello(token)) {
    *why = "cannot send Hello";
    return false;
  }
  return receive_welcome(why);
}

bool RawClient::request_lease(uint32_t dev) {
  auto m = proto::make<proto::LeaseRequest>();
  m.device = dev;
  return send_msg(fd_, m);
}

int RawClient::receive(int timeout_ms, proto::Revoke* revoke) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return 0;
  char buf[proto::kMaxMessage];
  ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
  if (n == 0) return -1;
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  if (proto::check(buf, static_cast<size_t>(n)) != proto::Check::kOk) return -1;
  auto type = reinterpret_cast<const proto::Header*>(buf)->type;
  if (type == static_cast<uint16_t>(proto::Type::kRevoke) && revoke) std::memcpy(revoke, buf, sizeof *revoke);
  return type;
}

bool RawClient::return_lease(uint32_t dev, uint64_t epoch, uint32_t flags, uint64_t busy_ns) {
  auto m = proto::make<proto::LeaseReturn>();
  m.device = dev;
  m.epoch = epoch;
  m.flags = flags;
  m.busy_ns = busy_ns;
  return send_msg(fd_, m);
}

void RawClient::touch(uint32_t dev) {
  shm_.led->procs[slot_].touched[dev].store(shm_.ctl->leases[dev].state.load(std::memory_order_acquire));
}

}  // namespace vgpu::bench
