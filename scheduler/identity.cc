#include "identity.h"

#include <cstring>

namespace vgpu::sched {

Result<Tenant*> TokenResolver::resolve(const Peer&, const proto::Hello& hello, TenantRegistry& tenants) {
  size_t n = strnlen(hello.token, sizeof hello.token);
  if (n == 0) return make_error("no VGPU_TOKEN: this process has no tenant");
  if (n == sizeof hello.token) return make_error("malformed token");
  Tenant* t = tenants.by_token(std::string(hello.token, n));
  if (!t) return make_error("invalid VGPU_TOKEN");
  return t;
}

}  // namespace vgpu::sched
