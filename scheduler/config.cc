#include "config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "vgpu/units.h"

namespace vgpu::sched {

const char* priority_name(Priority p) {
  switch (p) {
    case Priority::kLow: return "low";
    case Priority::kNormal: return "normal";
    case Priority::kHigh: return "high";
  }
  return "normal";
}

std::optional<Priority> parse_priority(const std::string& s) {
  if (s == "low") return Priority::kLow;
  if (s == "normal") return Priority::kNormal;
  if (s == "high") return Priority::kHigh;
  return std::nullopt;
}

namespace {

// Carries the file name and builds located errors.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  Error fail(const YAML::Node& at, const std::string& key, const std::string& what) const {
    int line = at.IsDefined() ? at.Mark().line + 1 : 0;
    std::string where = file_ + (line > 0 ? ":" + std::to_string(line) : "");
    return make_error(where + ": " + key + ": " + what);
  }

  // Rejects keys of `map` that are not in `known`.
  std::optional<Error> only(const YAML::Node& map, const std::string& path, std::set<std::string> known) const {
    if (!map.IsMap()) return fail(map, path.empty() ? "(top level)" : path, "must be a mapping");
    for (auto it = map.begin(); it != map.end(); ++it) {
      std::string k = it->first.as<std::string>();
      if (!known.count(k)) {
        std::string allowed;
        for (auto& s : known) allowed += (allowed.empty() ? "" : ", ") + s;
        return fail(it->first, path.empty() ? k : path + "." + k, "unknown key (known: " + allowed + ")");
      }
    }
    return std::nullopt;
  }

  Result<std::string> scalar(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) return fail(n, key, "must be a single value");
    return n.as<std::string>();
  }

 private:
  std::string file_;
};

Result<uint64_t> bytes_at(const Reader& r, const YAML::Node& n, const std::string& key) {
  auto s = r.scalar(n, key);
  if (!s) return Error{s.error()};
  auto b = parse_bytes(*s);
  if (!b) return r.fail(n, key, b.error());
  return *b;
}

Result<double> share_at(const Reader& r, const YAML::Node& n, const std::string& key) {
  auto s = r.scalar(n, key);
  if (!s) return Error{s.error()};
  auto p = parse_percent(*s);
  if (!p) return r.fail(n, key, p.error());
  return *p / 100.0;
}

Result<uint64_t> duration_at(const Reader& r, const YAML::Node& n, const std::string& key) {
  auto s = r.scalar(n, key);
  if (!s) return Error{s.error()};
  auto d = parse_duration_ns(*s);
  if (!d) return r.fail(n, key, d.error());
  return *d;
}

std::optional<Error> read_scheduler(const Reader& r, const YAML::Node& n, SchedulerConfig* s) {
  if (auto e = r.only(n, "scheduler", {"quantum", "window", "inflight_cap", "drain_timeout", "idle_check"})) return e;
  if (n["quantum"]) {
    auto d = duration_at(r, n["quantum"], "scheduler.quantum");
    if (!d) return Error{d.error()};
    if (*d < 1'000'000 || *d > 1'000'000'000)
      return r.fail(n["quantum"], "scheduler.quantum", "must be between 1ms and 1s");
    s->quantum_ns = *d;
  }
  if (n["window"]) {
    auto d = duration_at(r, n["window"], "scheduler.window");
    if (!d) return Error{d.error()};
    if (*d < 10 * s->quantum_ns) return r.fail(n["window"], "scheduler.window", "must be at least 10 quanta");
    s->window_ns = *d;
  }
  if (n["inflight_cap"]) {
    auto v = r.scalar(n["inflight_cap"], "scheduler.inflight_cap");
    if (!v) return Error{v.error()};
    char* end = nullptr;
    long cap = std::strtol(v->c_str(), &end, 10);
    if (v->empty() || *end || cap < 1 || cap > 4096)
      return r.fail(n["inflight_cap"], "scheduler.inflight_cap", "must be a number from 1 to 4096");
    s->inflight_cap = static_cast<uint32_t>(cap);
  }
  if (n["idle_check"]) {
    auto d = duration_at(r, n["idle_check"], "scheduler.idle_check");
    if (!d) return Error{d.error()};
    if (*d < 100'000) return r.fail(n["idle_check"], "scheduler.idle_check", "must be at least 100us");
    s->idle_check_ns = *d;
  }
  if (n["drain_timeout"]) {
    auto d = duration_at(r, n["drain_timeout"], "scheduler.drain_timeout");
    if (!d) return Error{d.error()};
    s->drain_timeout_ns = *d;
  }
  return std::nullopt;
}

std::optional<Error> read_compute(const Reader& r, const YAML::Node& n, const std::string& path, TenantConfig* t) {
  if (auto e = r.only(n, path, {"request", "limit"})) return e;
  if (n["request"]) {
    auto v = share_at(r, n["request"], path + ".request");
    if (!v) return Error{v.error()};
    t->request = *v;
  }
  if (n["limit"]) {
    auto v = share_at(r, n["limit"], path + ".limit");
    if (!v) return Error{v.error()};
    if (*v <= 0) return r.fail(n["limit"], path + ".limit", "must be above 0%");
    t->limit = *v;
  }
  if (t->request > t->limit)
    return r.fail(n, path, "request (" + std::to_string(int(t->request * 100)) + "%) is above limit (" +
                               std::to_string(int(t->limit * 100)) + "%)");
  return std::nullopt;
}

std::optional<Error> read_tenant(const Reader& r, const YAML::Node& n, const std::string& path, TenantConfig* t) {
  if (auto e = r.only(n, path, {"name", "token", "priority", "memory", "compute", "devices"})) return e;
  if (!n["name"]) return r.fail(n, path + ".name", "is required");
  auto name = r.scalar(n["name"], path + ".name");
  if (!name) return Error{name.error()};
  t->name = *name;
  if (auto ok = validate_tenant(*t); !ok) return r.fail(n["name"], path + ".name", ok.error());
  if (n["token"]) {
    auto tok = r.scalar(n["token"], path + ".token");
    if (!tok) return Error{tok.error()};
    if (tok->size() < 8 || tok->size() >= 128)
      return r.fail(n["token"], path + ".token", "must be 8 to 127 characters");
    t->token = *tok;
  }
  if (n["priority"]) {
    auto p = r.scalar(n["priority"], path + ".priority");
    if (!p) return Error{p.error()};
    auto prio = parse_priority(*p);
    if (!prio) return r.fail(n["priority"], path + ".priority", "'" + *p + "' is not one of high, normal, low");
    t->priority = *prio;
  }
  if (!n["memory"]) return r.fail(n, path + ".memory", "is required (e.g. memory: 8Gi)");
  auto mem = bytes_at(r, n["memory"], path + ".memory");
  if (!mem) return Error{mem.error()};
  t->memory = *mem;
  if (n["compute"])
    if (auto e = read_compute(r, n["compute"], path + ".compute", t)) return e;
  if (n["devices"]) {
    if (!n["devices"].IsSequence()) return r.fail(n["devices"], path + ".devices", "must be a list");
    for (size_t i = 0; i < n["devices"].size(); ++i) {
      auto d = r.scalar(n["devices"][i], path + ".devices[" + std::to_string(i) + "]");
      if (!d) return Error{d.error()};
      t->devices.push_back(*d);
    }
  }
  return std::nullopt;
}

std::optional<Error> read_string(const Reader& r, const YAML::Node& top, const char* key, std::string* out) {
  if (!top[key]) return std::nullopt;
  auto v = r.scalar(top[key], key);
  if (!v) return Error{v.error()};
  if (v->empty()) return r.fail(top[key], key, "must not be empty");
  *out = *v;
  return std::nullopt;
}

Result<Config> read_config(const YAML::Node& top, const Reader& r) {
  Config c;
  if (!top.IsDefined() || top.IsNull()) return r.fail(top, "(top level)", "the file is empty");
  if (auto e = r.only(top, "", {"socket", "admin_socket", "admin_group", "metrics", "state_dir", "scheduler",
                                 "tenants"}))
    return *e;
  for (auto [key, out] : {std::pair{"socket", &c.socket}, {"admin_socket", &c.admin_socket},
                          {"admin_group", &c.admin_group}, {"metrics", &c.metrics}, {"state_dir", &c.state_dir}})
    if (auto e = read_string(r, top, key, out)) return *e;
  if (top["scheduler"])
    if (auto e = read_scheduler(r, top["scheduler"], &c.scheduler)) return *e;
  if (top["tenants"]) {
    const YAML::Node& ts = top["tenants"];
    if (!ts.IsSequence()) return r.fail(ts, "tenants", "must be a list");
    std::set<std::string> names;
    for (size_t i = 0; i < ts.size(); ++i) {
      std::string path = "tenants[" + std::to_string(i) + "]";
      TenantConfig t;
      if (auto e = read_tenant(r, ts[i], path, &t)) return *e;
      if (!names.insert(t.name).second) return r.fail(ts[i]["name"], path + ".name", "duplicate tenant '" + t.name + "'");
      c.tenants.push_back(t);
    }
    if (auto ok = validate_requests(c.tenants); !ok) return r.fail(ts, "tenants", ok.error());
  }
  return c;
}

}  // namespace

Result<bool> validate_tenant(const TenantConfig& t) {
  if (t.name.empty() || t.name.size() > 63) return make_error("tenant names are 1 to 63 characters");
  for (char ch : t.name)
    if (!(std::islower(static_cast<unsigned char>(ch)) || std::isdigit(static_cast<unsigned char>(ch)) || ch == '-'))
      return make_error("'" + t.name + "' is not a valid name (lower-case letters, digits and '-')");
  if (t.request < 0 || t.request > t.limit || t.limit <= 0 || t.limit > 1)
    return make_error("compute request must be between 0% and limit, limit between 0% and 100%");
  return true;
}

Result<bool> validate_requests(const std::vector<TenantConfig>& tenants) {
  // Requests are guarantees: on any device their sum may not exceed 100%.
  std::map<std::string, double> per_device;
  double all_devices = 0;
  for (const auto& t : tenants) {
    if (t.devices.empty()) all_devices += t.request;
    for (const auto& d : t.devices) per_device[d] += t.request;
  }
  if (all_devices > 1.0 + 1e-9)
    return make_error("compute requests add up to " + std::to_string(int(all_devices * 100 + 0.5)) +
                      "% on some GPU; guarantees cannot exceed 100%");
  for (auto& [d, sum] : per_device)
    if (sum + all_devices > 1.0 + 1e-9)
      return make_error("compute requests add up to " + std::to_string(int((sum + all_devices) * 100 + 0.5)) +
                        "% on GPU " + d + "; guarantees cannot exceed 100%");
  return true;
}

Result<Config> parse_config(const std::string& text, const std::string& name) {
  Reader r(name);
  YAML::Node top;
  try {
    top = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return make_error(name + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  try {
    auto c = read_config(top, r);
    if (c) c.value().path = name;
    return c;
  } catch (const YAML::Exception& e) {
    return make_error(name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Result<Config> load_config(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return make_error(path + ": cannot read: " + std::strerror(errno));
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  std::fclose(f);
  return parse_config(text, path);
}

}  // namespace vgpu::sched
