// IdentityResolver: who a connecting process is. vgpud never trusts what a
// process says about itself beyond a secret it proves: the token resolver
// matches VGPU_TOKEN against the tenants' tokens; the Kubernetes resolver
// (later) maps the peer's pid to its pod through its cgroup.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>

#include "tenant_registry.h"
#include "vgpu/protocol.h"

namespace vgpu::sched {

struct Peer {
  pid_t pid = 0;  // from SO_PEERCRED, in vgpud's pid namespace
  uid_t uid = 0;
  gid_t gid = 0;
};

class IdentityResolver {
 public:
  virtual ~IdentityResolver() = default;
  // The tenant of `peer`, or an error to send back (never naming other tenants).
  virtual Result<Tenant*> resolve(const Peer& peer, const proto::Hello& hello, TenantRegistry& tenants) = 0;
};

// Failed attempts (no, malformed or unknown token) are counted per uid and
// logged at most once per kFailureLogInterval as "N failed token attempts
// from uid U (last pid P) in the last Xs" -- a guessing client cannot flood
// the log. Counts are written out on the first resolve after the interval
// (the first failure after a quiet interval is logged at once). Loop thread.
class TokenResolver final : public IdentityResolver {
 public:
  static constexpr uint64_t kFailureLogInterval = 10'000'000'000;
  Result<Tenant*> resolve(const Peer& peer, const proto::Hello& hello, TenantRegistry& tenants) override;

 private:
  struct Failures {
    uint64_t count = 0;
    pid_t last_pid = 0;
  };
  void note_failure(const Peer& peer);
  void flush(uint64_t now);
  std::map<uid_t, Failures> failures_;  // since last_log_ns_; at most kMaxUids
  uint64_t other_uids_ = 0;             // attempts from uids beyond kMaxUids
  uint64_t last_log_ns_ = 0;
  bool logged_once_ = false;
  static constexpr size_t kMaxUids = 64;
};

// A connection that arrived on tenant `bound`'s own socket (allocation
// tenants, allocation_record.h) is that tenant: the socket is the credential.
// A Hello carrying a token is refused unless it is `bound`'s own token, so a
// process cannot use the socket to act as another tenant. `bound` null: the
// tenant was deleted since the connection was accepted.
Result<Tenant*> resolve_bound_socket(const proto::Hello& hello, Tenant* bound, TenantRegistry& tenants);

}  // namespace vgpu::sched
