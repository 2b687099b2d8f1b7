// What a container of an allocation gets, and its CDI spec (Container Device
// Interface, version 0.5.0: podman >= 4.3 and containerd >= 1.7 read it).
//
// Host layout under --host-dir (docs/kubernetes.md):
//   <host-dir>/lib/libvgpu.so         the shim and the core it loads on the first
//   <host-dir>/lib/libvgpu-core.so    CUDA call (both installed by the DaemonSet)
//   <host-dir>/ld.so.preload          one line: the shim's path in the container
//   <host-dir>/sockets/<alloc>/       vgpud's socket of that allocation alone
// In the container:
//   /run/vgpu/vgpud.sock               VGPU_SOCKET: the allocation's socket
//   /usr/lib/vgpu/                     <host-dir>/lib, read-only: the shim and its core
//   /etc/ld.so.preload                 preloads the shim into every process
//
// The spec of one allocation is one file, <cdi-dir>/<vendor>-<class>-<alloc>.json,
// written atomically (temp file and rename in the same directory), so a
// runtime reading the directory never sees half a spec. Thread-safe.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "vgpu/result.h"

namespace vgpu::k8s {

inline constexpr const char* kContainerSocketDir = "/run/vgpu";
inline constexpr const char* kContainerSocket = "/run/vgpu/vgpud.sock";
inline constexpr const char* kContainerLibDir = "/usr/lib/vgpu";
inline constexpr const char* kContainerShim = "/usr/lib/vgpu/libvgpu.so";
inline constexpr const char* kContainerPreload = "/etc/ld.so.preload";
inline constexpr const char* kCdiVersion = "0.5.0";

struct HostLayout {
  std::string host_dir;
  std::string lib_dir() const { return host_dir + "/lib"; }
  std::string shim() const { return host_dir + "/lib/libvgpu.so"; }
  std::string core() const { return host_dir + "/lib/libvgpu-core.so"; }
  std::string preload_file() const { return host_dir + "/ld.so.preload"; }
  std::string socket_root() const { return host_dir + "/sockets"; }
};

struct EditMount {
  std::string host_path;
  std::string container_path;
  bool read_only = false;
};

struct ContainerEdits {
  std::vector<std::pair<std::string, std::string>> env;  // in order
  std::vector<EditMount> mounts;
};

// The env and mounts of an allocation whose vgpud socket directory on the
// host is `socket_dir`.
ContainerEdits allocation_edits(const HostLayout& layout, const std::string& socket_dir);

// The CDI spec (JSON text) with one device `name` of `kind` ("vgpu.io/gpu").
std::string cdi_spec_json(const std::string& kind, const std::string& name, const ContainerEdits& edits);
// "<vendor>/<class>=<name>".
std::string cdi_device_name(const std::string& kind, const std::string& name);
std::string cdi_spec_path(const std::string& cdi_dir, const std::string& kind, const std::string& name);

// Writes `data` to `path` atomically with `mode`; creates the directory if missing.
Result<bool> write_atomically(const std::string& path, const std::string& data, unsigned mode);
// Writes the spec of allocation `name` (mode 0644).
Result<bool> write_cdi_spec(const std::string& cdi_dir, const std::string& kind, const std::string& name,
                            const ContainerEdits& edits);
void remove_cdi_spec(const std::string& cdi_dir, const std::string& kind, const std::string& name);
// The allocations of the device plugin whose specs of `kind` are in
// `cdi_dir`: files named exactly cdi_spec_path(cdi_dir, kind, <allocation
// id>) (an ID of allocation_id()'s shape, "k8s-" and 20 hex digits) whose
// JSON says that kind. Specs of other vendors or classes, other names, and
// files that are not such a spec are never listed, so never removed.
std::vector<std::string> cdi_spec_allocations(const std::string& cdi_dir, const std::string& kind);
// Writes <host-dir>/ld.so.preload (the shim's container path) if it differs.
Result<bool> ensure_preload_file(const HostLayout& layout);

}  // namespace vgpu::k8s
