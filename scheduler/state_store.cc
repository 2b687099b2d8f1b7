#include "state_store.h"

#include "vgpu/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <set>

#include "log.h"
#include "sha256.h"

namespace vgpu::sched {

namespace {

constexpr const char* kHeader = "# vgpud-state format ";
// Tokens stored by versions before the 16-character minimum still load (with
// a warning to rotate them) rather than keep vgpud from starting.
constexpr size_t kLegacyMinToken = 8;

Error sys_error(const std::string& what, const std::string& path) {
  return make_error(what + " " + path + ": " + std::strerror(errno));
}

// The shortest "%g" form that reads back (through the config parser's
// percent/100) as exactly `v`, so a restart does not move a share by an ulp.
std::string percent(double v) {
  char buf[40];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v * 100);
    if (std::strtod(buf, nullptr) / 100.0 == v) break;
  }
  return std::string(buf) + "%";
}

const char* source_name(Source s) {
  return s == Source::kApi ? "api" : s == Source::kDeleted ? "deleted" : "config";
}

void emit_allocation(YAML::Emitter& out, const AllocationRecord& a, const TenantConfig& t) {
  out << YAML::Key << "allocation" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "socket_root" << YAML::Value << YAML::DoubleQuoted << a.socket_root;
  out << YAML::Key << "namespace" << YAML::Value << YAML::DoubleQuoted << a.ns;
  out << YAML::Key << "pod" << YAML::Value << YAML::DoubleQuoted << a.pod;
  out << YAML::Key << "container" << YAML::Value << YAML::DoubleQuoted << a.container;
  out << YAML::Key << "memory" << YAML::Value << YAML::BeginMap;
  for (const auto& [uuid, bytes] : t.device_memory)
    out << YAML::Key << YAML::DoubleQuoted << uuid << YAML::Value << std::to_string(bytes);
  out << YAML::EndMap << YAML::EndMap;
}

// `allocation:` of a tenant entry (format 3): the record and its quotas.
Result<AllocationRecord> read_allocation(const YAML::Node& n, const std::string& name, const std::string& path,
                                         TenantConfig* t) {
  auto at = [&](const YAML::Node& x, const std::string& key, const std::string& what) {
    return make_error(name + ":" + std::to_string(x.Mark().line + 1) + ": " + path + ".allocation" + key + ": " + what);
  };
  if (!n.IsMap()) return at(n, "", "not a mapping");
  AllocationRecord a;
  std::string* fields[] = {&a.socket_root, &a.ns, &a.pod, &a.container};
  const char* keys[] = {"socket_root", "namespace", "pod", "container"};
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string k = it->first.Scalar();
    if (k != "memory" && std::find(std::begin(keys), std::end(keys), k) == std::end(keys))
      return at(it->first, "." + k, "unknown key");
  }
  for (size_t i = 0; i < 4; ++i) {
    const YAML::Node v = n[keys[i]];
    if (!v || !v.IsScalar()) return at(n, std::string(".") + keys[i], "missing or not a string");
    *fields[i] = v.Scalar();
  }
  const YAML::Node m = n["memory"];
  if (!m || !m.IsMap() || m.size() == 0) return at(n, ".memory", "missing or not a non-empty mapping");
  for (auto it = m.begin(); it != m.end(); ++it) {
    const std::string& v = it->second.IsScalar() ? it->second.Scalar() : "";
    char* end = nullptr;
    errno = 0;
    unsigned long long bytes = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || !std::isdigit(static_cast<unsigned char>(v[0])) || *end || errno == ERANGE)
      return at(it->second, ".memory." + it->first.Scalar(), "'" + v + "' is not a number of bytes");
    t->device_memory[it->first.Scalar()] = bytes;
  }
  return a;
}

std::string emit_body(const std::vector<StoredTenant>& tenants) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "format" << YAML::Value << kStateFormat;
  out << YAML::Key << "tenants" << YAML::Value << YAML::BeginSeq;
  for (const StoredTenant& s : tenants) {
    const TenantConfig& t = s.tenant;
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << t.name;
    out << YAML::Key << "token" << YAML::Value << YAML::DoubleQuoted << t.token;
    out << YAML::Key << "source" << YAML::Value << source_name(s.source);
    out << YAML::Key << "priority" << YAML::Value << priority_name(t.priority);
    out << YAML::Key << "memory" << YAML::Value << std::to_string(t.memory);
    out << YAML::Key << "compute" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "request"
        << YAML::Value << percent(t.request) << YAML::Key << "limit" << YAML::Value << percent(t.limit)
        << YAML::EndMap;
    out << YAML::Key << "devices" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& d : t.devices) out << YAML::DoubleQuoted << d;
    out << YAML::EndSeq;
    if (t.enforcement) out << YAML::Key << "enforcement" << YAML::Value << policy_name(*t.enforcement);
    if (s.allocation) emit_allocation(out, *s.allocation, t);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

// "# vgpud-state format N sha256 HEX" -> N and HEX; false if not that shape.
bool parse_header(const std::string& line, long* format, std::string* hex) {
  if (line.rfind(kHeader, 0) != 0) return false;
  std::string rest = line.substr(std::strlen(kHeader));
  size_t sp = rest.find(' ');
  if (sp == 0 || sp == std::string::npos || sp > 4) return false;
  for (size_t i = 0; i < sp; ++i)
    if (!std::isdigit(static_cast<unsigned char>(rest[i]))) return false;
  *format = std::strtol(rest.substr(0, sp).c_str(), nullptr, 10);
  rest = rest.substr(sp + 1);
  if (rest.rfind("sha256 ", 0) != 0 || rest.size() != 7 + 64) return false;
  *hex = rest.substr(7);
  for (char c : *hex)
    if (!std::isdigit(static_cast<unsigned char>(c)) && !(c >= 'a' && c <= 'f')) return false;
  return true;
}

// The tenants of a parsed body: top-level keys exactly {version_key, tenants}.
Result<std::vector<StoredTenant>> read_body(const YAML::Node& top, const std::string& name, const char* version_key,
                                            int version) {
  if (!top.IsMap()) return make_error(name + ": the top level is not a mapping");
  for (auto it = top.begin(); it != top.end(); ++it) {
    std::string k = it->first.Scalar();
    if (k != version_key && k != "tenants")
      return make_error(name + ":" + std::to_string(it->first.Mark().line + 1) + ": " + k + ": unknown key");
  }
  const YAML::Node v = top[version_key];
  if (!v || !v.IsScalar() || v.Scalar() != std::to_string(version))
    return make_error(name + ": " + version_key + ": missing or not " + std::to_string(version));
  bool allocations = std::string(version_key) == "format" && version >= 3;
  const YAML::Node ts = top["tenants"];
  if (!ts || !ts.IsSequence()) return make_error(name + ": tenants: missing or not a list");
  std::vector<StoredTenant> out;
  std::set<std::string> names;
  TenantReadOptions opt;
  opt.extra_keys = {"source"};
  if (allocations) opt.extra_keys.push_back("allocation");
  opt.min_token = kLegacyMinToken;
  opt.require_all = true;
  for (size_t i = 0; i < ts.size(); ++i) {
    std::string path = "tenants[" + std::to_string(i) + "]";
    const YAML::Node n = ts[i];
    if (!n.IsMap()) return make_error(name + ":" + std::to_string(n.Mark().line + 1) + ": " + path + ": not a mapping");
    const YAML::Node src = n["source"];
    if (!src || !src.IsScalar())
      return make_error(name + ":" + std::to_string(n.Mark().line + 1) + ": " + path + ".source: missing");
    StoredTenant s;
    if (src.Scalar() == "config") s.source = Source::kConfig;
    else if (src.Scalar() == "api") s.source = Source::kApi;
    else if (src.Scalar() == "deleted") s.source = Source::kDeleted;
    else
      return make_error(name + ":" + std::to_string(src.Mark().line + 1) + ": " + path + ".source: '" + src.Scalar() +
                        "' is not one of config, api, deleted");
    auto t = read_tenant_yaml(n, name, path, opt);
    if (!t) return Error{t.error()};
    s.tenant = *t;
    if (const YAML::Node a = n["allocation"]) {
      auto rec = read_allocation(a, name, path, &s.tenant);
      if (!rec) return Error{rec.error()};
      s.allocation = *rec;
    }
    if (!names.insert(s.tenant.name).second)
      return make_error(name + ":" + std::to_string(n.Mark().line + 1) + ": " + path + ": tenant '" + s.tenant.name +
                        "' appears twice");
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<StoredTenant>> parse_yaml_body(const std::string& body, const std::string& name,
                                                  const char* version_key, int version) {
  if (auto ok = check_utf8(body, name); !ok) return Error{ok.error()};
  YAML::Node top;
  try {
    top = YAML::Load(body);
  } catch (const YAML::Exception& e) {
    return make_error(name + ": not valid YAML (line " + std::to_string(e.mark.line + 1) + "): " + e.msg);
  }
  if (!top.IsDefined() || top.IsNull()) return make_error(name + ": no content");
  if (auto ok = check_duplicate_keys(top, name); !ok) return Error{ok.error()};
  try {
    return read_body(top, name, version_key, version);
  } catch (const YAML::Exception& e) {  // a node of an unexpected kind
    return make_error(name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

bool read_whole(const std::string& path, std::string* out, int* err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return false;
  }
  char buf[16384];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(n));
  *err = n < 0 ? errno : 0;
  ::close(fd);
  return n == 0;
}

// Our temp files: "<name>.tmp.<digits>".
bool is_temp_name(const char* n) {
  const char* p = std::strstr(n, ".tmp.");
  if (!p || p == n || !p[5]) return false;
  for (p += 5; *p; ++p)
    if (!std::isdigit(static_cast<unsigned char>(*p))) return false;
  return true;
}

}  // namespace

std::string format_state(const std::vector<StoredTenant>& tenants) {
  std::string body = emit_body(tenants);
  return std::string(kHeader) + std::to_string(kStateFormat) + " sha256 " + sha256_hex(body) + "\n" + body;
}

Result<std::vector<StoredTenant>> parse_state(const std::string& text, const std::string& name) {
  if (text.empty()) return make_error(name + ": the file is empty");
  if (text[0] == '#') {  // format 2 and later: a header line
    size_t eol = text.find('\n');
    if (eol == std::string::npos) return make_error(name + ": truncated (the header line is incomplete)");
    long format = 0;
    std::string hex;
    if (!parse_header(text.substr(0, eol), &format, &hex))
      return make_error(name + ": line 1 is not a vgpud state header ('" + std::string(kHeader) +
                        "N sha256 HEX'); the file is damaged");
    if (format != 2 && format != kStateFormat)
      return make_error(name + ": format " + std::to_string(format) + " is not one this vgpud reads (1 to " +
                        std::to_string(kStateFormat) + "); was it written by a newer vgpud?");
    std::string body = text.substr(eol + 1);
    if (sha256_hex(body) != hex)
      return make_error(name + ": checksum mismatch: the file is truncated, corrupt or was edited by hand");
    return parse_yaml_body(body, name, "format", static_cast<int>(format));
  }
  // Format 1: no header, "version: 1" (vgpud before format 2).
  return parse_yaml_body(text, name + " (format 1, no checksum)", "version", 1);
}


Result<bool> StateStore::open() {
  for (const std::string& d : {dir_, dir_ + "/tokens"}) {
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return sys_error("cannot create directory", d);
    struct stat st;
    if (stat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return make_error(d + " is not a directory");
    // An interrupted write leaves its temp file; the real file is intact.
    if (DIR* dir = opendir(d.c_str())) {
      while (dirent* e = readdir(dir)) {
        if (!is_temp_name(e->d_name)) continue;
        std::string p = d + "/" + e->d_name;
        if (unlink(p.c_str()) == 0) log_info("removed %s, left by an interrupted write", p.c_str());
      }
      closedir(dir);
    }
  }
  return true;
}

Result<std::vector<StoredTenant>> StateStore::load() const {
  std::string file = path(), prev = prev_path(), text;
  int err = 0;
  if (!read_whole(file, &text, &err)) {
    if (err == ENOENT) {
      if (access(prev.c_str(), F_OK) == 0)
        log_warn("%s is missing; starting from the config file (the previous generation is still at %s)",
                 file.c_str(), prev.c_str());
      return std::vector<StoredTenant>{};
    }
    return make_error("cannot read state file " + file + ": " + std::strerror(err));
  }
  auto parsed = parse_state(text, file);
  if (!parsed) {
    // What the operator can do, and whether the previous generation would do.
    std::string prev_text, about_prev;
    if (!read_whole(prev, &prev_text, &err)) {
      about_prev = err == ENOENT ? "there is no previous generation (" + prev + ")"
                                 : "the previous generation " + prev + " cannot be read: " + std::strerror(err);
    } else if (auto p = parse_state(prev_text, prev); !p) {
      about_prev = "the previous generation is damaged too: " + p.error();
    } else {
      struct stat st{};
      char when[64] = "?";
      if (stat(prev.c_str(), &st) == 0) {
        struct tm tm{};
        localtime_r(&st.st_mtime, &tm);
        std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
      }
      about_prev = "the previous generation " + prev + " is intact (" + std::to_string(p->size()) +
                   " tenants, written " + when + "): restore it with 'cp " + prev + " " + file + "'";
    }
    return make_error("state file damaged: " + parsed.error() +
                      ".\nvgpud does not start with it, since tenants created or deleted through the admin API and "
                      "generated tokens would silently change.\nTo recover: " +
                      about_prev + "; or remove " + file +
                      " to start from the config file alone (runtime changes and generated tokens are then lost).");
  }
  if (text.rfind("#", 0) != 0)
    log_warn("%s is in format 1 (no checksum); it is rewritten in format %d, the old file kept as %s", file.c_str(),
             kStateFormat, prev.c_str());
  for (const StoredTenant& s : *parsed)
    if (s.source != Source::kDeleted && s.tenant.token.size() < kMinTokenLength)
      log_warn("tenant '%s' has a token shorter than %zu characters (set by an older vgpud); rotate it: "
               "vgpuctl token rotate %s",
               s.tenant.name.c_str(), kMinTokenLength, s.tenant.name.c_str());
  return parsed;
}

Result<bool> StateStore::save(const std::vector<StoredTenant>& tenants) const {
  std::string file = path(), text = format_state(tenants), current;
  int err = 0;
  bool exists = read_whole(file, &current, &err);
  if (!exists || current != text) {
    // Keep the generation being replaced: a hard link renamed over .prev, so
    // that tenants.yaml exists at every moment.
    if (exists) {
      std::string link_tmp = prev_path() + ".tmp." + std::to_string(getpid());
      unlink(link_tmp.c_str());
      if (link(file.c_str(), link_tmp.c_str()) != 0) return sys_error("cannot link", link_tmp);
      if (rename(link_tmp.c_str(), prev_path().c_str()) != 0) {
        Error e = sys_error("cannot rename to", prev_path());
        unlink(link_tmp.c_str());
        return e;
      }
    }
    if (auto r = write_file_atomically(file, text, 0600); !r) return r;
  }
  std::set<std::string> live;
  for (const StoredTenant& s : tenants) {
    if (s.source == Source::kDeleted) continue;
    live.insert(s.tenant.name);
    std::string tp = dir_ + "/tokens/" + s.tenant.name, have;
    if (read_whole(tp, &have, &err) && have == s.tenant.token + "\n") continue;
    if (auto r = write_file_atomically(tp, s.tenant.token + "\n", 0600); !r) return r;
  }
  // A deleted tenant's token file goes too.
  if (DIR* d = opendir((dir_ + "/tokens").c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.' && !live.count(e->d_name) && !is_temp_name(e->d_name))
        unlink((dir_ + "/tokens/" + e->d_name).c_str());
    closedir(d);
  }
  return true;
}

}  // namespace vgpu::sched
