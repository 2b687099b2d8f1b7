#include "allocation_record.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vgpu::sched {

namespace {

Result<bool> check_label(const char* what, const std::string& v) {
  if (v.size() > 253) return make_error(std::string(what) + " is longer than 253 characters");
  for (unsigned char c : v)
    if (c < 0x20 || c >= 0x7f) return make_error(std::string(what) + " has a control or non-ASCII character");
  return true;
}

// mkdir -p with `mode`; an existing component must be a real directory.
Result<bool> make_dirs(const std::string& path, mode_t mode) {
  std::string at;
  size_t pos = 0;
  while (pos != std::string::npos) {
    size_t next = path.find('/', pos + 1);
    at = path.substr(0, next);
    pos = next;
    if (at.empty()) continue;
    if (mkdir(at.c_str(), mode) != 0 && errno != EEXIST)
      return make_error("cannot create directory " + at + ": " + std::strerror(errno));
    struct stat st;
    if (lstat(at.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return make_error(at + " is not a directory (a symlink is not followed)");
  }
  return true;
}

}  // namespace

std::string socket_dir(const AllocationRecord& r, const std::string& tenant) { return r.socket_root + "/" + tenant; }

std::string socket_path(const AllocationRecord& r, const std::string& tenant) {
  return socket_dir(r, tenant) + "/" + kTenantSocketName;
}

Result<bool> validate_allocation(const AllocationRecord& r, const std::string& tenant) {
  const std::string& root = r.socket_root;
  if (root.empty() || root[0] != '/') return make_error("socket_root '" + root + "' is not an absolute path");
  if (root.size() > 1 && root.back() == '/') return make_error("socket_root '" + root + "' ends in '/'");
  for (size_t i = 1; i <= root.size();) {
    size_t end = root.find('/', i);
    if (end == std::string::npos) end = root.size();
    std::string part = root.substr(i, end - i);
    if (root.size() > 1 && (part.empty() || part == "." || part == ".."))
      return make_error("socket_root '" + root + "' has an empty, '.' or '..' component");
    i = end + 1;
  }
  for (unsigned char c : root)
    if (c < 0x20 || c == 0x7f) return make_error("socket_root has a control character");
  if (socket_path(r, tenant).size() >= sizeof(sockaddr_un{}.sun_path))
    return make_error("socket path " + socket_path(r, tenant) + " is too long for a Unix socket (" +
                      std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes at most)");
  if (auto ok = check_label("namespace", r.ns); !ok) return ok;
  if (auto ok = check_label("pod", r.pod); !ok) return ok;
  return check_label("container", r.container);
}

Result<bool> validate_allocation_quotas(const TenantConfig& t) {
  if (t.device_memory.empty()) return make_error("an allocation needs a memory quota on at least one GPU");
  if (t.device_memory.size() != t.devices.size())
    return make_error("an allocation's devices are exactly the GPUs of its quotas");
  uint64_t most = 0;
  for (const auto& [uuid, bytes] : t.device_memory) {
    if (bytes == 0) return make_error("the memory quota on " + uuid + " is 0");
    if (std::find(t.devices.begin(), t.devices.end(), uuid) == t.devices.end())
      return make_error("an allocation's devices are exactly the GPUs of its quotas");
    most = std::max(most, bytes);
  }
  if (t.memory != most) return make_error("an allocation's memory is its largest quota");
  return true;
}

Result<bool> prepare_socket_dir(const AllocationRecord& r, const std::string& tenant) {
  if (auto ok = make_dirs(r.socket_root, 0755); !ok) return ok;
  std::string dir = socket_dir(r, tenant);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return make_error("cannot create directory " + dir + ": " + std::strerror(errno));
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return make_error(dir + " is not a directory");
  // The mode is what the container needs to reach the socket, whatever umask.
  chmod(dir.c_str(), 0755);
  return true;
}

void remove_socket_dir(const AllocationRecord& r, const std::string& tenant) {
  unlink(socket_path(r, tenant).c_str());
  rmdir(socket_dir(r, tenant).c_str());
}

}  // namespace vgpu::sched
