// The hook <-> vgpud wire protocol: one header, one struct per message.
//
// Transport: a SOCK_SEQPACKET Unix socket, so every message is one datagram
// and a short or oversized read is a protocol error. All integers are host
// order (both ends are on the same node). Every message starts with Header;
// `size` is the whole message's size and must equal sizeof(the struct) for its
// type. A peer that sends another protocol version is answered with Refused
// (naming both versions) and disconnected.
//
// Flow:
//   hook -> Hello(pid, token, device UUIDs it sees)
//   vgpud -> Welcome(tenant, quotas, slot) + SCM_RIGHTS: the tenant's shared
//            memory, two memfds (tenant_shm.h): the control block (sealed,
//            read-only to the process) then the ledger   or Refused(reason)
//   hook -> LeaseRequest(device)                   when a launch finds no lease
//   vgpud -> Revoke(device, epoch)                 lease over: drain and report
//   hook -> LeaseReturn(device, epoch, busy_ns)    after draining (with
//                                                  kReturnWants when launches
//                                                  wait for the lease again:
//                                                  no LeaseRequest then), or
//                                                  unasked with kReturnIdle
//                                                  when it has nothing queued
//                                                  under a contended lease
//   vgpud -> Refused(reason)                       at any time: the process is
//                                                  no longer registered (its
//                                                  tenant was deleted); sent
//                                                  before vgpud closes it
// After a reconnect the hook adds its live charges to the new tenant memory
// itself; no message carries charges (vgpud could not check them).
// Everything vgpud receives is checked by check() and by the handler of its
// type (device indexes against vgpud's own GPU count); a peer that breaks the
// protocol is dropped, no one else is affected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vgpu::proto {

constexpr uint32_t kMagic = 0x55504756;  // "VGPU"
constexpr uint16_t kVersion = 2;  // 2: two memfds in Welcome (control + ledger)
constexpr size_t kMaxMessage = 1024;
constexpr int kMaxDevices = 8;
constexpr size_t kTokenBytes = 128;
constexpr size_t kNameBytes = 64;
constexpr size_t kReasonBytes = 256;

enum class Type : uint16_t {
  kHello = 1,
  kWelcome = 2,
  kRefused = 3,
  // 4 was Charges (removed: a peer could lower its tenant's usage with it).
  kLeaseRequest = 5,
  kRevoke = 6,
  kLeaseReturn = 7,
};

struct Header {
  uint32_t magic;
  uint16_t version;
  uint16_t type;
  uint32_t size;
  uint32_t reserved;
};

struct Hello {
  Header h;
  int32_t pid;
  uint32_t device_count;           // devices the process sees (CUDA ordinals)
  unsigned char uuids[kMaxDevices][16];
  char token[kTokenBytes];         // NUL-terminated VGPU_TOKEN
  uint32_t reconnect;              // 1 if this process was registered before
  uint32_t reserved;
};

struct Welcome {
  Header h;
  char tenant[kNameBytes];
  uint32_t slot;                   // this process's record in the tenant shm
  uint32_t device_count;           // devices of the tenant shm (by UUID there)
  uint64_t quantum_ns;
  uint32_t inflight_cap;           // max launches queued per lease and stream
  uint32_t reserved;
};

struct Refused {
  Header h;
  char reason[kReasonBytes];
};

struct LeaseRequest {
  Header h;
  uint32_t device;                 // tenant-shm device index
  uint32_t reserved;
};

struct Revoke {
  Header h;
  uint32_t device;
  uint32_t reserved;
  uint64_t epoch;
};

// LeaseReturn::flags. kReturnWants was added within version 2: a vgpud that
// predates it ignores the bit, and the hook then asks again with a
// LeaseRequest after its next wait slice.
constexpr uint32_t kReturnIdle = 1;   // unasked: nothing queued under a contended lease
constexpr uint32_t kReturnWants = 2;  // after a revoke's drain: launches here wait for the
                                      // lease again (a LeaseRequest folded into the return)

struct LeaseReturn {
  Header h;
  uint32_t device;
  uint32_t flags;                  // kReturnIdle | kReturnWants
  uint64_t epoch;
  uint64_t busy_ns;                // engine time measured by the hook
};

template <class M>
constexpr Type type_of();
template <> constexpr Type type_of<Hello>() { return Type::kHello; }
template <> constexpr Type type_of<Welcome>() { return Type::kWelcome; }
template <> constexpr Type type_of<Refused>() { return Type::kRefused; }
template <> constexpr Type type_of<LeaseRequest>() { return Type::kLeaseRequest; }
template <> constexpr Type type_of<Revoke>() { return Type::kRevoke; }
template <> constexpr Type type_of<LeaseReturn>() { return Type::kLeaseReturn; }

// A zeroed message of type M with its header filled in.
template <class M>
M make() {
  M m{};
  m.h.magic = kMagic;
  m.h.version = kVersion;
  m.h.type = static_cast<uint16_t>(type_of<M>());
  m.h.size = sizeof(M);
  return m;
}

// Expected size of a message of `type`, 0 for an unknown type.
constexpr size_t size_of(uint16_t type) {
  switch (static_cast<Type>(type)) {
    case Type::kHello: return sizeof(Hello);
    case Type::kWelcome: return sizeof(Welcome);
    case Type::kRefused: return sizeof(Refused);
    case Type::kLeaseRequest: return sizeof(LeaseRequest);
    case Type::kRevoke: return sizeof(Revoke);
    case Type::kLeaseReturn: return sizeof(LeaseReturn);
  }
  return 0;
}

enum class Check { kOk, kBadMagic, kBadVersion, kBadType, kBadSize };

// Validates a received datagram of `n` bytes. `data` need not be aligned:
// the header is copied out, never read in place.
inline Check check(const void* data, size_t n) {
  if (n < sizeof(Header)) return Check::kBadSize;
  Header h;
  std::memcpy(&h, data, sizeof h);
  if (h.magic != kMagic) return Check::kBadMagic;
  if (h.version != kVersion) return Check::kBadVersion;
  size_t want = size_of(h.type);
  if (want == 0) return Check::kBadType;
  if (h.size != n || n != want) return Check::kBadSize;
  return Check::kOk;
}

}  // namespace vgpu::proto
