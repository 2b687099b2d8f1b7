#include "cdi.h"

#include "allocation.h"
#include "vgpu/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

namespace vgpu::k8s {

ContainerEdits allocation_edits(const HostLayout& layout, const std::string& socket_dir) {
  ContainerEdits e;
  e.env.emplace_back("VGPU_SOCKET", kContainerSocket);
  // Read-only: connecting to a socket needs no write access to its
  // directory, and a container that could write there could swap the socket
  // for a symlink while vgpud (root) re-creates and chmods it.
  e.mounts.push_back({socket_dir, kContainerSocketDir, true});
  // The directory, not the file: libvgpu.so loads libvgpu-core.so from its
  // own directory on the first CUDA call.
  e.mounts.push_back({layout.lib_dir(), kContainerLibDir, true});
  e.mounts.push_back({layout.preload_file(), kContainerPreload, true});
  return e;
}

std::string cdi_device_name(const std::string& kind, const std::string& name) { return kind + "=" + name; }

std::string cdi_spec_json(const std::string& kind, const std::string& name, const ContainerEdits& edits) {
  nlohmann::json env = nlohmann::json::array();
  for (const auto& [k, v] : edits.env) env.push_back(k + "=" + v);
  nlohmann::json mounts = nlohmann::json::array();
  for (const EditMount& m : edits.mounts)
    mounts.push_back({{"hostPath", m.host_path},
                      {"containerPath", m.container_path},
                      {"options", m.read_only ? nlohmann::json{"ro", "nosuid", "nodev", "bind"}
                                              : nlohmann::json{"rw", "nosuid", "nodev", "bind"}}});
  nlohmann::json spec = {
      {"cdiVersion", kCdiVersion},
      {"kind", kind},
      {"devices", nlohmann::json::array({{{"name", name}, {"containerEdits", {{"env", env}, {"mounts", mounts}}}}})}};
  return spec.dump(2) + "\n";
}

std::string cdi_spec_path(const std::string& cdi_dir, const std::string& kind, const std::string& name) {
  std::string file = kind;
  for (char& c : file)
    if (c == '/') c = '-';
  return cdi_dir + "/" + file + "-" + name + ".json";
}

Result<bool> write_atomically(const std::string& path, const std::string& data, unsigned mode) {
  std::string dir = path.substr(0, path.find_last_of('/'));
  if (!dir.empty() && mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return make_error("cannot create directory " + dir + ": " + std::strerror(errno));
  return vgpu::write_file_atomically(path, data, mode);
}

Result<bool> write_cdi_spec(const std::string& cdi_dir, const std::string& kind, const std::string& name,
                            const ContainerEdits& edits) {
  return write_atomically(cdi_spec_path(cdi_dir, kind, name), cdi_spec_json(kind, name, edits), 0644);
}

void remove_cdi_spec(const std::string& cdi_dir, const std::string& kind, const std::string& name) {
  unlink(cdi_spec_path(cdi_dir, kind, name).c_str());
}

namespace {
// allocation_id()'s shape: "k8s-" and 20 lower-case hex digits.
bool allocation_shaped(std::string_view s) {
  std::string_view prefix = kAllocationPrefix;
  if (s.size() != prefix.size() + 20 || s.substr(0, prefix.size()) != prefix) return false;
  for (char c : s.substr(prefix.size()))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}
}  // namespace

std::vector<std::string> cdi_spec_allocations(const std::string& cdi_dir, const std::string& kind) {
  std::vector<std::string> out;
  // The file-name prefix cdi_spec_path() gives this kind.
  std::string prefix = cdi_spec_path("", kind, "");
  prefix = prefix.substr(1, prefix.size() - 1 - std::string_view(".json").size());
  const std::string suffix = ".json";
  DIR* d = opendir(cdi_dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string_view f = e->d_name;
    if (f.size() <= prefix.size() + suffix.size() || f.substr(0, prefix.size()) != prefix ||
        f.substr(f.size() - suffix.size()) != suffix)
      continue;
    std::string name(f.substr(prefix.size(), f.size() - prefix.size() - suffix.size()));
    if (!allocation_shaped(name)) continue;
    // The name alone could be another class's (vendor "a", class "b-k8s"...):
    // the spec must say it is of this kind.
    std::ifstream in(cdi_dir + "/" + std::string(f));
    auto spec = nlohmann::json::parse(in, nullptr, false);
    if (!spec.is_object() || !spec.contains("kind") || spec["kind"] != kind) continue;
    out.push_back(name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<bool> ensure_preload_file(const HostLayout& layout) {
  std::string want = std::string(kContainerShim) + "\n";
  std::ifstream in(layout.preload_file());
  std::stringstream have;
  have << in.rdbuf();
  if (in && have.str() == want) return true;
  if (mkdir(layout.host_dir.c_str(), 0755) != 0 && errno != EEXIST)
    return make_error("cannot create directory " + layout.host_dir + ": " + std::strerror(errno));
  return write_atomically(layout.preload_file(), want, 0644);
}

}  // namespace vgpu::k8s
