#include "state_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "vgpu/units.h"

namespace vgpu::sched {

namespace {

Error sys_error(const std::string& what, const std::string& path) {
  return make_error(what + " " + path + ": " + std::strerror(errno));
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g%%", v * 100);
  return buf;
}

std::string emit(const std::vector<StoredTenant>& tenants) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "version" << YAML::Value << 1;
  out << YAML::Key << "tenants" << YAML::Value << YAML::BeginSeq;
  for (const StoredTenant& s : tenants) {
    const TenantConfig& t = s.tenant;
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << t.name;
    out << YAML::Key << "token" << YAML::Value << t.token;
    out << YAML::Key << "source" << YAML::Value
        << (s.source == Source::kApi ? "api" : s.source == Source::kDeleted ? "deleted" : "config");
    out << YAML::Key << "priority" << YAML::Value << priority_name(t.priority);
    out << YAML::Key << "memory" << YAML::Value << std::to_string(t.memory);
    out << YAML::Key << "compute" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "request"
        << YAML::Value << percent(t.request) << YAML::Key << "limit" << YAML::Value << percent(t.limit)
        << YAML::EndMap;
    out << YAML::Key << "devices" << YAML::Value << YAML::Flow << t.devices;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace

Result<bool> write_file_atomically(const std::string& path, const std::string& data, unsigned mode) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return sys_error("cannot create", tmp);
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && fsync(fd) == 0;
  ::close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = sys_error("cannot write", path);
    unlink(tmp.c_str());
    return e;
  }
  std::string dir = path.substr(0, path.find_last_of('/'));
  int dfd = ::open(dir.empty() ? "/" : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    ::close(dfd);
  }
  return true;
}

Result<bool> StateStore::open() {
  for (const std::string& d : {dir_, dir_ + "/tokens"}) {
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return sys_error("cannot create directory", d);
    struct stat st;
    if (stat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return make_error(d + " is not a directory");
  }
  return true;
}

Result<std::vector<StoredTenant>> StateStore::load() const {
  std::string path = dir_ + "/tenants.yaml";
  std::ifstream f(path);
  if (!f) return std::vector<StoredTenant>{};
  std::stringstream ss;
  ss << f.rdbuf();
  // The same validation as the config file: a hand-edited state file that is
  // wrong is reported with its line, never half-applied.
  std::string text = ss.str();
  YAML::Node top;
  try {
    top = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return make_error(path + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  std::vector<StoredTenant> out;
  YAML::Node as_config;
  as_config["tenants"] = YAML::Node(YAML::NodeType::Sequence);
  std::vector<Source> sources;
  if (top["tenants"] && top["tenants"].IsSequence())
    for (auto t : top["tenants"]) {
      std::string src = t["source"] ? t["source"].as<std::string>() : "config";
      sources.push_back(src == "api" ? Source::kApi : src == "deleted" ? Source::kDeleted : Source::kConfig);
      YAML::Node copy = YAML::Clone(t);
      copy.remove("source");
      as_config["tenants"].push_back(copy);
    }
  YAML::Emitter e;
  e << as_config;
  auto parsed = parse_config(e.c_str(), path);
  if (!parsed) return make_error("state file " + parsed.error());
  for (size_t i = 0; i < parsed->tenants.size(); ++i) out.push_back({parsed->tenants[i], sources[i]});
  return out;
}

Result<bool> StateStore::save(const std::vector<StoredTenant>& tenants) const {
  if (auto r = write_file_atomically(dir_ + "/tenants.yaml", emit(tenants), 0600); !r) return r;
  std::set<std::string> live;
  for (const StoredTenant& s : tenants) {
    if (s.source == Source::kDeleted) continue;
    live.insert(s.tenant.name);
    if (auto r = write_file_atomically(dir_ + "/tokens/" + s.tenant.name, s.tenant.token + "\n", 0600); !r) return r;
  }
  // A deleted tenant's token file goes too.
  if (DIR* d = opendir((dir_ + "/tokens").c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.' && !live.count(e->d_name) && std::strstr(e->d_name, ".tmp.") == nullptr)
        unlink((dir_ + "/tokens/" + e->d_name).c_str());
    closedir(d);
  }
  return true;
}

}  // namespace vgpu::sched
