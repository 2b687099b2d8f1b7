// AllocationRecord: what makes a tenant an allocation tenant (issue 10; the
// Kubernetes device plugin creates them through the admin API): the host
// directory its own hook socket lives under and the Kubernetes names of the
// container it serves. Its per-GPU quotas are TenantConfig::device_memory.
//
// Layout on the host: <socket_root>/<tenant>/vgpud.sock. The directory
// <socket_root>/<tenant> (mode 0755) is mounted into that allocation's
// container only; the socket in it is mode 0666 so that any uid in the
// container can connect. Who connects there IS the tenant: the directory,
// not a token, is the credential (docs/architecture.md, per-tenant sockets).
//
// Pure functions except prepare_socket_dir/remove_socket_dir (filesystem).
// Thread-safe.
#pragma once

#include <string>

#include "config.h"
#include "vgpu/result.h"

namespace vgpu::sched {

struct AllocationRecord {
  std::string socket_root;  // absolute host directory
  std::string ns, pod, container;  // Kubernetes names; empty until known

  bool operator==(const AllocationRecord&) const = default;
};

inline constexpr const char* kTenantSocketName = "vgpud.sock";

std::string socket_dir(const AllocationRecord& r, const std::string& tenant);
std::string socket_path(const AllocationRecord& r, const std::string& tenant);

// socket_root is absolute, without "." or ".." components, and the socket
// path fits a sockaddr_un; labels are at most 253 printable characters.
Result<bool> validate_allocation(const AllocationRecord& r, const std::string& tenant);

// A tenant config is an allocation's: one device_memory entry per device,
// each > 0, devices exactly those UUIDs, memory their maximum (so the quota
// checks made for every tenant apply to the largest one).
Result<bool> validate_allocation_quotas(const TenantConfig& t);

// Creates socket_root (0755, parents too) and <socket_root>/<tenant> (0755).
// A socket_root that is a symlink or not a directory is refused.
Result<bool> prepare_socket_dir(const AllocationRecord& r, const std::string& tenant);
// Removes the socket file and its directory (only if empty afterwards).
void remove_socket_dir(const AllocationRecord& r, const std::string& tenant);

}  // namespace vgpu::sched
