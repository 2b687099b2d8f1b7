// RawClient: a benchmark's own hook-protocol client. It speaks
// vgpu/protocol.h directly (no libvgpu.so, no CUDA): Hello with a token, the
// Welcome and the tenant shared memory it carries, LeaseRequest, Revoke and
// LeaseReturn. Benchmarks use it to drive vgpud at message speed and to watch
// a tenant's ledger and lease words as a registered process of that tenant.
// Not thread-safe: one thread per RawClient.
#pragma once

#include <cstdint>
#include <string>

#include "vgpu/protocol.h"
#include "vgpu/tenant_shm.h"

namespace vgpu::bench {

class RawClient {
 public:
  RawClient() = default;
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // Connects to `socket`; false with the reason in *why.
  bool connect_to(const std::string& socket, std::string* why);
  // Sends Hello only (for pipelined registration).
  bool send_hello(const std::string& token);
  // Receives the Welcome and maps the tenant memory; false with *why on Refused.
  bool receive_welcome(std::string* why);
  // connect_to + send_hello + receive_welcome.
  bool register_as(const std::string& socket, const std::string& token, std::string* why);

  bool request_lease(uint32_t dev);
  // Waits up to timeout_ms for one message; returns its type (0: none, -1: closed).
  int receive(int timeout_ms, proto::Revoke* revoke);
  bool return_lease(uint32_t dev, uint64_t epoch, uint32_t flags, uint64_t busy_ns);  // proto::kReturn*
  // Marks the current lease epoch as "launched under" (what a hooked launch does).
  void touch(uint32_t dev);

  TenantShm shm() const { return shm_; }
  LeaseWord& lease(uint32_t dev) const { return shm_.ctl->leases[dev]; }
  // The memfds vgpud passed (control, ledger), kept open for tests that
  // try to write or resize them; -1 before Welcome.
  int control_fd() const { return control_fd_; }
  int ledger_fd() const { return ledger_fd_; }
  int slot() const { return slot_; }
  uint64_t quantum_ns() const { return quantum_ns_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  TenantShm shm_;
  int control_fd_ = -1, ledger_fd_ = -1;
  int slot_ = -1;
  uint64_t quantum_ns_ = 0;
};

}  // namespace vgpu::bench
