#include "config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cmath>
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

const char* policy_name(EnforcePolicy p) { return p == EnforcePolicy::kReport ? "report" : "kill"; }

std::optional<EnforcePolicy> parse_policy(const std::string& s) {
  if (s == "kill") return EnforcePolicy::kKill;
  if (s == "report") return EnforcePolicy::kReport;
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
  // The number parser accepts "nan" and "inf", which compare false with every
  // bound; a share must be a real number.
  if (!std::isfinite(*p)) return r.fail(n, key, "'" + *s + "' is not a percentage between 0% and 100%");
  return *p / 100.0;
}

Result<uint64_t> duration_at(const Reader& r, const YAML::Node& n, const std::string& key) {
  auto s = r.scalar(n, key);
  if (!s) return Error{s.error()};
  auto d = parse_duration_ns(*s);
  if (!d) return r.fail(n, key, d.error());
  return *d;
}

Result<uint64_t> duration_in(const Reader& r, const YAML::Node& n, const std::string& key, uint64_t lo, uint64_t hi,
                             const char* range) {
  auto d = duration_at(r, n, key);
  if (!d) return d;
  if (*d < lo || *d > hi) return r.fail(n, key, std::string("must be between ") + range);
  return d;
}

Result<uint64_t> count_at(const Reader& r, const YAML::Node& n, const std::string& key, uint64_t lo, uint64_t hi) {
  auto v = r.scalar(n, key);
  if (!v) return Error{v.error()};
  char* end = nullptr;
  errno = 0;
  unsigned long long x = std::strtoull(v->c_str(), &end, 10);
  if (v->empty() || !std::isdigit(static_cast<unsigned char>((*v)[0])) || *end || errno == ERANGE || x < lo || x > hi)
    return r.fail(n, key, "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  return static_cast<uint64_t>(x);
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

std::optional<Error> read_enforcement(const Reader& r, const YAML::Node& n, EnforcementConfig* e) {
  if (auto err = r.only(n, "enforcement", {"policy", "poll_interval", "tolerance", "context_allowance", "context_overhead", "grace",
                                           "startup_grace", "allowlist", "overcommit", "revoke_deadline", "bpf",
                                           "bpf_launches"}))
    return err;
  if (n["policy"]) {
    auto v = r.scalar(n["policy"], "enforcement.policy");
    if (!v) return Error{v.error()};
    auto p = parse_policy(*v);
    if (!p) return r.fail(n["policy"], "enforcement.policy", "'" + *v + "' is not one of kill, report");
    e->policy = *p;
  }
  struct Dur {
    const char* key;
    uint64_t* out;
    uint64_t lo, hi;
    const char* range;
  };
  for (const Dur& d : {Dur{"poll_interval", &e->poll_interval_ns, 10'000'000, 10'000'000'000, "10ms and 10s"},
                       Dur{"grace", &e->grace_ns, 0, 60'000'000'000, "0 and 60s"},
                       Dur{"startup_grace", &e->startup_grace_ns, 0, 600'000'000'000, "0 and 600s"},
                       Dur{"revoke_deadline", &e->revoke_deadline_ns, 1'000'000, 10'000'000'000, "1ms and 10s"}}) {
    if (!n[d.key]) continue;
    auto v = duration_in(r, n[d.key], std::string("enforcement.") + d.key, d.lo, d.hi, d.range);
    if (!v) return Error{v.error()};
    *d.out = *v;
  }
  for (auto [key, out] : {std::pair{"tolerance", &e->tolerance}, std::pair{"context_allowance", &e->context_allowance},
                          std::pair{"context_overhead", &e->context_overhead}}) {
    if (!n[key]) continue;
    auto b = bytes_at(r, n[key], std::string("enforcement.") + key);
    if (!b) return Error{b.error()};
    *out = *b;
  }
  // A floor above any GPU's memory would refuse every context: surely a typo.
  if (e->context_overhead > (64ull << 30))
    return r.fail(n["context_overhead"], "enforcement.context_overhead", "must be at most 64Gi");
  if (n["allowlist"]) {
    const YAML::Node& l = n["allowlist"];
    if (!l.IsSequence()) return r.fail(l, "enforcement.allowlist", "must be a list");
    e->allowlist.clear();
    for (size_t i = 0; i < l.size(); ++i) {
      std::string key = "enforcement.allowlist[" + std::to_string(i) + "]";
      auto v = r.scalar(l[i], key);
      if (!v) return Error{v.error()};
      bool bad_char = false;
      for (unsigned char ch : *v) bad_char |= ch <= ' ' || ch == 0x7f;
      if (v->empty() || bad_char) return r.fail(l[i], key, "must be a process name or an absolute path, without spaces");
      // A name is matched against comm, which the kernel truncates to 15
      // characters (so "nvidia-persistenced" matches "nvidia-persiste").
      if ((*v)[0] != '/' && v->find('/') != std::string::npos)
        return r.fail(l[i], key, "'" + *v + "' is neither a process name (no '/') nor an absolute path");
      e->allowlist.push_back(*v);
    }
  }
  for (auto [key, out] : {std::pair{"overcommit", &e->overcommit}, std::pair{"bpf_launches", &e->bpf_launches}}) {
    if (!n[key]) continue;
    std::string path = std::string("enforcement.") + key;
    auto v = r.scalar(n[key], path);
    if (!v) return Error{v.error()};
    if (*v != "true" && *v != "false") return r.fail(n[key], path, "must be true or false");
    *out = *v == "true";
  }
  if (n["bpf"]) {
    auto v = r.scalar(n["bpf"], "enforcement.bpf");
    if (!v) return Error{v.error()};
    if (*v != "auto" && *v != "off" && *v != "required")
      return r.fail(n["bpf"], "enforcement.bpf", "'" + *v + "' is not one of auto, off, required");
    e->bpf = *v;
  }
  return std::nullopt;
}

std::optional<Error> read_limits(const Reader& r, const YAML::Node& n, LimitsConfig* l) {
  if (auto e = r.only(n, "limits", {"hello_timeout", "max_connections", "max_connections_per_uid", "messages_per_second"}))
    return e;
  if (n["hello_timeout"]) {
    auto v = duration_in(r, n["hello_timeout"], "limits.hello_timeout", 10'000'000, 60'000'000'000, "10ms and 60s");
    if (!v) return Error{v.error()};
    l->hello_timeout_ns = *v;
  }
  if (n["max_connections"]) {
    auto v = count_at(r, n["max_connections"], "limits.max_connections", 1, 1'000'000);
    if (!v) return Error{v.error()};
    l->max_connections = static_cast<uint32_t>(*v);
  }
  if (n["max_connections_per_uid"]) {
    auto v = count_at(r, n["max_connections_per_uid"], "limits.max_connections_per_uid", 1, 1'000'000);
    if (!v) return Error{v.error()};
    l->max_connections_per_uid = static_cast<uint32_t>(*v);
  }
  if (l->max_connections_per_uid > l->max_connections)
    return r.fail(n["max_connections_per_uid"] ? n["max_connections_per_uid"] : n, "limits.max_connections_per_uid",
                  "is above limits.max_connections (" + std::to_string(l->max_connections) + ")");
  if (n["messages_per_second"]) {
    auto v = count_at(r, n["messages_per_second"], "limits.messages_per_second", 1, 10'000'000);
    if (!v) return Error{v.error()};
    l->messages_per_second = static_cast<uint32_t>(*v);
  }
  return std::nullopt;
}

std::optional<Error> read_tenant(const Reader& r, const YAML::Node& n, const std::string& path, TenantConfig* t,
                                 const TenantReadOptions& opt = {}) {
  std::set<std::string> known{"name", "token", "priority", "memory", "compute", "devices", "enforcement"};
  for (const auto& k : opt.extra_keys) known.insert(k);
  if (auto e = r.only(n, path, known)) return e;
  if (opt.require_all)
    for (const char* k : {"name", "token", "priority", "memory", "compute", "devices"})
      if (!n[k]) return r.fail(n, path + "." + k, "is missing");
  if (!n["name"]) return r.fail(n, path + ".name", "is required");
  auto name = r.scalar(n["name"], path + ".name");
  if (!name) return Error{name.error()};
  t->name = *name;
  if (auto ok = validate_tenant(*t); !ok) return r.fail(n["name"], path + ".name", ok.error());
  if (n["token"]) {
    auto tok = r.scalar(n["token"], path + ".token");
    if (!tok) return Error{tok.error()};
    auto ok = validate_token(*tok);
    // A shorter token stored by an older version, where the caller allows it
    // (padded, so that only its characters are checked).
    bool legacy = !ok && tok->size() >= opt.min_token && tok->size() < kMinTokenLength &&
                  validate_token(*tok + std::string(kMinTokenLength, 'x'));
    if (!ok && !legacy) return r.fail(n["token"], path + ".token", ok.error());
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
  if (n["compute"]) {
    if (opt.require_all && !(n["compute"].IsMap() && n["compute"]["request"] && n["compute"]["limit"]))
      return r.fail(n["compute"], path + ".compute", "must give request and limit");
    if (auto e = read_compute(r, n["compute"], path + ".compute", t)) return e;
  }
  if (n["enforcement"]) {
    auto v = r.scalar(n["enforcement"], path + ".enforcement");
    if (!v) return Error{v.error()};
    auto p = parse_policy(*v);
    if (!p) return r.fail(n["enforcement"], path + ".enforcement", "'" + *v + "' is not one of kill, report");
    t->enforcement = *p;
  }
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
                                 "enforcement", "limits", "tenants"}))
    return *e;
  for (auto [key, out] : {std::pair{"socket", &c.socket}, {"admin_socket", &c.admin_socket},
                          {"admin_group", &c.admin_group}, {"metrics", &c.metrics}, {"state_dir", &c.state_dir}})
    if (auto e = read_string(r, top, key, out)) return *e;
  if (top["scheduler"])
    if (auto e = read_scheduler(r, top["scheduler"], &c.scheduler)) return *e;
  if (top["enforcement"])
    if (auto e = read_enforcement(r, top["enforcement"], &c.enforcement)) return *e;
  if (top["limits"])
    if (auto e = read_limits(r, top["limits"], &c.limits)) return *e;
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
  // NaN compares false with every bound, so finiteness is checked first.
  if (!std::isfinite(t.request) || !std::isfinite(t.limit) || t.request < 0 || t.request > t.limit || t.limit <= 0 ||
      t.limit > 1)
    return make_error("compute request must be between 0% and limit, limit between 0% and 100%");
  return true;
}

Result<bool> validate_token(const std::string& token) {
  if (token.size() < kMinTokenLength || token.size() > kMaxTokenLength)
    return make_error("a token must be " + std::to_string(kMinTokenLength) + " to " + std::to_string(kMaxTokenLength) +
                      " characters (got " + std::to_string(token.size()) + ")");
  for (unsigned char ch : token)
    if (ch <= ' ' || ch >= 0x7f)
      return make_error("a token may not contain whitespace, control or non-ASCII characters");
  return true;
}

Result<bool> validate_quota(const TenantConfig& t, const std::vector<Gpu>& gpus, bool overcommit) {
  if (overcommit) return true;
  std::vector<const Gpu*> used;
  if (t.devices.empty())
    for (const Gpu& g : gpus) used.push_back(&g);
  for (const std::string& d : t.devices)
    if (auto i = resolve_gpu(gpus, d); i)
      for (const Gpu& g : gpus)
        if (g.index == *i) used.push_back(&g);
  for (const Gpu* g : used) {
    auto own = t.device_memory.find(g->uuid);  // an allocation's quota on this GPU
    uint64_t quota = own == t.device_memory.end() ? t.memory : own->second;
    if (g->memory > 0 && quota > g->memory)
      return make_error("tenant '" + t.name + "': memory " + format_bytes(quota) + " is above the memory of GPU " +
                        std::to_string(g->index) + " (" + format_bytes(g->memory) +
                        "); lower it, or set enforcement.overcommit: true to allow quotas above a GPU's memory");
  }
  return true;
}

Result<TenantConfig> read_tenant_yaml(const YAML::Node& n, const std::string& file, const std::string& key_path,
                                      const TenantReadOptions& opt) {
  Reader r(file);
  TenantConfig t;
  try {
    if (auto e = read_tenant(r, n, key_path, &t, opt)) return *e;
  } catch (const YAML::Exception& e) {
    return make_error(file + ":" + std::to_string(e.mark.line + 1) + ": " + key_path + ": " + e.msg);
  }
  return t;
}

namespace {

// Depth-first walk with a budget, so that an alias bomb cannot make it run
// (nearly) forever.
std::optional<Error> find_duplicates(const YAML::Node& n, const std::string& file, const std::string& path,
                                     int depth, size_t* budget) {
  if (depth > 64 || *budget == 0) return make_error(file + ": " + path + ": nested too deeply or too large");
  --*budget;
  if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i)
      if (auto e = find_duplicates(n[i], file, path + "[" + std::to_string(i) + "]", depth + 1, budget)) return e;
  } else if (n.IsMap()) {
    std::map<std::string, int> seen;  // key -> line
    for (auto it = n.begin(); it != n.end(); ++it) {
      int line = it->first.Mark().line + 1;
      if (!it->first.IsScalar())
        return make_error(file + ":" + std::to_string(line) + ": " + (path.empty() ? "(top level)" : path) +
                          ": keys must be plain words");
      std::string k = it->first.Scalar();
      std::string kp = path.empty() ? k : path + "." + k;
      auto [at, fresh] = seen.emplace(k, line);
      if (!fresh)
        return make_error(file + ":" + std::to_string(line) + ": " + kp + ": duplicate key (first on line " +
                          std::to_string(at->second) + ")");
      if (auto e = find_duplicates(it->second, file, kp, depth + 1, budget)) return e;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<bool> check_utf8(const std::string& text, const std::string& file) {
  const auto* b = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size(), line = 1;
  for (size_t i = 0; i < n;) {
    unsigned c = b[i];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (b[i + k] & 0xc0) == 0x80;
      cp = (cp << 6) | (b[i + k] & 0x3f);
    }
    // No overlong forms, no UTF-16 surrogates, nothing past U+10FFFF.
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (ok && (cp < kMin[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)) ok = false;
    if (!ok) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", c);
      return make_error(file + ":" + std::to_string(line) + ": not UTF-8 text (byte " + hex +
                        "); write the file as UTF-8");
    }
    if (c == '\n') ++line;
    i += len;
  }
  return true;
}

Result<bool> check_duplicate_keys(const YAML::Node& root, const std::string& file) {
  size_t budget = 1'000'000;
  try {
    if (auto e = find_duplicates(root, file, "", 0, &budget)) return *e;
  } catch (const YAML::Exception& e) {
    return make_error(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
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
  if (auto ok = check_utf8(text, name); !ok) return Error{ok.error()};
  YAML::Node top;
  try {
    top = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return make_error(name + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  if (auto ok = check_duplicate_keys(top, name); !ok) return Error{ok.error()};
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
