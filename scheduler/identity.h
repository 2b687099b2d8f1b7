// IdentityResolver: who a connecting process is. vgpud never trusts what a
// process says about itself beyond a secret it proves: the token resolver
// matches VGPU_TOKEN against the tenants' tokens; the Kubernetes resolver
// (later) maps the peer's pid to its pod through its cgroup.
#pragma once

#include <sys/types.h>

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

class TokenResolver final : public IdentityResolver {
 public:
  Result<Tenant*> resolve(const Peer& peer, const proto::Hello& hello, TenantRegistry& tenants) override;
};

}  // namespace vgpu::sched
