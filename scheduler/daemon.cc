#include "daemon.h"

#include <sys/resource.h>

#include <algorithm>
#include <map>

#include "log.h"

namespace vgpu::sched {

Result<std::unique_ptr<Daemon>> Daemon::start(const Config& cfg) {
  // Room for limits.max_connections: the soft descriptor limit goes to the hard one.
  if (rlimit rl; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  std::unique_ptr<Daemon> d(new Daemon());
  d->cfg_ = cfg;
  d->started_ns_ = now_ns();
  auto gpus = discover_gpus();
  if (!gpus) return make_error("cannot list GPUs: " + gpus.error());
  for (const Gpu& g : *gpus)
    log_info("GPU %d: %s %s, %llu MiB", g.index, g.uuid.c_str(), g.name.c_str(),
             static_cast<unsigned long long>(g.memory >> 20));
  d->tenants_ = std::make_unique<TenantRegistry>(*gpus, cfg.enforcement.context_overhead);
  d->store_ = std::make_unique<StateStore>(cfg.state_dir);
  if (auto r = d->store_->open(); !r) return Error{r.error()};
  if (auto r = d->load_tenants(cfg); !r) return Error{r.error()};
  if (auto r = d->persist(); !r) return Error{r.error()};
  d->hooks_ = std::make_unique<HookServer>(d->loop_, *d->tenants_, cfg.scheduler, std::make_unique<TokenResolver>(),
                                           cfg.enforcement.revoke_deadline_ns, cfg.limits);
  d->enforcement_ =
      std::make_unique<Enforcement>(d->loop_, *d->tenants_, *d->hooks_, cfg.enforcement, make_nvml_reader());
  if (auto r = d->enforcement_->start_probe(find_driver_library()); !r) return Error{r.error()};
  // Metrics first: an unusable address refuses the start before any socket
  // exists, so no client connects to a vgpud that is about to exit. (Its
  // updates run on the loop, which starts after create().)
  if (!cfg.metrics.empty()) {
    auto m = Metrics::start(*d, cfg.metrics);
    if (!m) return Error{m.error()};
    d->metrics_ = std::move(m).value();
  }
  if (auto r = d->hooks_->listen(cfg.socket); !r) return Error{r.error()};
  d->open_allocation_sockets();
  d->admin_ = std::make_unique<AdminServer>(*d);
  if (auto r = d->admin_->start(cfg.admin_socket, cfg.admin_group); !r) return Error{r.error()};
  log_info("listening on %s (admin API on %s) with %zu tenants", cfg.socket.c_str(), cfg.admin_socket.c_str(),
           d->tenants_->all().size());
  for (const std::string& line : d->overridden_by_runtime(cfg.tenants)) log_warn("%s", line.c_str());
  return d;
}

Result<bool> Daemon::load_tenants(const Config& cfg) {
  auto stored = store_->load();
  if (!stored) return Error{stored.error()};
  const std::vector<Gpu>& gpus = tenants_->gpus();
  bool overcommit = cfg.enforcement.overcommit;
  std::map<std::string, StoredTenant> by_name;
  for (auto& s : *stored) by_name[s.tenant.name] = s;
  // Tenants of the config file, unless changed or deleted at run time; a
  // token generated for one before is kept.
  for (TenantConfig t : cfg.tenants) {
    auto it = by_name.find(t.name);
    if (it != by_name.end() && it->second.source == Source::kDeleted) {
      deleted_.push_back(t.name);
      continue;
    }
    if (it != by_name.end() && it->second.source == Source::kApi) continue;  // added below
    if (auto ok = validate_quota(t, gpus, overcommit); !ok) return make_error(cfg.path + ": " + ok.error());
    if (t.token.empty()) t.token = it != by_name.end() ? it->second.tenant.token : generate_token();
    if (auto r = tenants_->add(t); !r) return make_error(cfg.path + ": " + r.error());
  }
  // Tenants created or changed at run time (vgpuctl) survive restarts. One
  // that no longer fits this node is an error, not a tenant quietly dropped.
  std::string state = store_->path();
  for (auto& [name, s] : by_name) {
    if (s.source != Source::kApi) continue;
    if (auto ok = validate_tenant(s.tenant); !ok) return make_error(state + ": tenant '" + name + "': " + ok.error());
    if (auto ok = validate_quota(s.tenant, gpus, overcommit); !ok)
      return make_error(state + ": " + ok.error() + " (this tenant was created or changed through the admin API)");
    if (s.allocation) {
      if (auto ok = validate_allocation(*s.allocation, name); !ok)
        return make_error(state + ": tenant '" + name + "': allocation: " + ok.error());
      if (auto ok = validate_allocation_quotas(s.tenant); !ok)
        return make_error(state + ": tenant '" + name + "': allocation: " + ok.error());
      // A GPU gone (failed, removed) must not keep vgpud, and with it every
      // other pod's GPU sharing, from starting: the allocation is kept in the
      // state file, not enforced, until the GPU is back or it is deleted.
      if (auto gone = missing_gpu(s.tenant, gpus)) {
        log_error("%s: allocation '%s' is kept but not served: its GPU %s is not on this node", state.c_str(),
                  name.c_str(), gone->c_str());
        dormant_.push_back(s);
        continue;
      }
    }
    if (auto r = tenants_->add(s.tenant); !r) return make_error(state + ": " + r.error());
    api_tenants_.push_back(name);
    if (s.allocation) allocations_[name] = *s.allocation;
  }
  // The file and the runtime changes together must still keep the guarantees.
  std::vector<TenantConfig> all;
  for (Tenant* t : tenants_->all()) all.push_back(t->config);
  if (auto ok = validate_requests(all); !ok)
    return make_error(cfg.path + " with the runtime changes in " + state + ": " + ok.error());
  return true;
}

Daemon::~Daemon() {
  metrics_.reset();
  if (admin_) admin_->shutdown();  // before the loop and the tenants go away
}

bool Daemon::from_api(const std::string& name) const {
  return std::find(api_tenants_.begin(), api_tenants_.end(), name) != api_tenants_.end();
}

// The sum of requests with `changed` applied (or removed) stays within 100%.
Result<bool> Daemon::check_requests(const TenantConfig& changed, bool removing) {
  std::vector<TenantConfig> all;
  for (Tenant* t : tenants_->all())
    if (t->config.name != changed.name) all.push_back(t->config);
  if (!removing) all.push_back(changed);
  return validate_requests(all);
}

Result<Tenant*> Daemon::create_tenant(TenantConfig t) {
  if (auto ok = validate_tenant(t); !ok) return Error{ok.error()};
  if (tenants_->by_name(t.name)) return make_error("tenant '" + t.name + "' already exists");
  deleted_.erase(std::remove(deleted_.begin(), deleted_.end(), t.name), deleted_.end());
  if (auto ok = check_requests(t, false); !ok) return Error{ok.error()};
  if (auto ok = validate_quota(t, tenants_->gpus(), cfg_.enforcement.overcommit); !ok) return Error{ok.error()};
  if (!t.token.empty())
    if (auto ok = validate_token(t.token); !ok) return Error{ok.error()};
  if (t.token.empty()) t.token = generate_token();
  auto added = tenants_->add(t);
  if (!added) return added;
  api_tenants_.push_back(t.name);
  if (auto r = persist(); !r) {
    tenants_->remove(t.name);
    api_tenants_.pop_back();
    return Error{r.error()};
  }
  hooks_->tenant_added(*added);
  log_info("tenant '%s' created", t.name.c_str());
  return added;
}

Result<Tenant*> Daemon::update_tenant(const TenantConfig& t) {
  Tenant* cur = tenants_->by_name(t.name);
  if (!cur) return make_error("no tenant named '" + t.name + "'");
  if (allocations_.count(t.name) && (t.memory != cur->config.memory || t.devices != cur->config.devices ||
                                      t.device_memory != cur->config.device_memory))
    return make_error("tenant '" + t.name +
                      "' is an allocation: its GPUs and memory quotas are fixed (its compute settings may change)");
  if (auto ok = validate_tenant(t); !ok) return Error{ok.error()};
  if (auto ok = check_requests(t, false); !ok) return Error{ok.error()};
  if (auto ok = validate_quota(t, tenants_->gpus(), cfg_.enforcement.overcommit); !ok) return Error{ok.error()};
  // A token from an older version may be short; a changed one may not.
  if (t.token != cur->config.token)
    if (auto ok = validate_token(t.token); !ok) return Error{ok.error()};
  TenantConfig before = cur->config;
  bool was_api = from_api(t.name);
  auto updated = tenants_->update(t);
  if (!updated) return updated;
  if (!was_api) api_tenants_.push_back(t.name);  // runtime changes win over the file
  if (auto r = persist(); !r) {
    (void)tenants_->update(before);
    if (!was_api) api_tenants_.pop_back();
    return Error{r.error()};
  }
  hooks_->tenant_changed(*updated);
  log_info("tenant '%s' updated", t.name.c_str());
  return updated;
}

Result<bool> Daemon::delete_tenant(const std::string& name) {
  auto dormant = std::find_if(dormant_.begin(), dormant_.end(), [&](auto& s) { return s.tenant.name == name; });
  if (dormant != dormant_.end()) {
    StoredTenant keep = *dormant;
    dormant_.erase(dormant);
    if (auto r = persist(); !r) {
      dormant_.push_back(keep);
      return r;
    }
    if (keep.allocation) remove_socket_dir(*keep.allocation, name);
    log_info("allocation '%s' (not served: its GPU is missing) deleted", name.c_str());
    return true;
  }
  Tenant* t = tenants_->by_name(name);
  if (!t) return make_error("no tenant named '" + name + "'");
  hooks_->tenant_removing(t);
  tenants_->remove(name);
  if (auto a = allocations_.find(name); a != allocations_.end()) {
    remove_socket_dir(a->second, name);
    allocations_.erase(a);
  }
  api_tenants_.erase(std::remove(api_tenants_.begin(), api_tenants_.end(), name), api_tenants_.end());
  for (const TenantConfig& c : cfg_.tenants)
    if (c.name == name) deleted_.push_back(name);  // keep the file from bringing it back
  if (auto r = persist(); !r) return r;
  log_info("tenant '%s' deleted", name.c_str());
  return true;
}

Result<Tenant*> Daemon::rotate_token(const std::string& name, const std::string& token) {
  Tenant* t = tenants_->by_name(name);
  if (!t) return make_error("no tenant named '" + name + "'");
  TenantConfig c = t->config;
  c.token = token.empty() ? generate_token() : token;
  if (auto ok = validate_token(c.token); !ok) return Error{ok.error()};
  return update_tenant(c);
}

// --- the configuration file vs runtime changes (reload.h) ---------------------

namespace {

const TenantConfig* file_tenant(const std::vector<TenantConfig>& file, const std::string& name) {
  for (const TenantConfig& c : file)
    if (c.name == name) return &c;
  return nullptr;
}

// The file's definition as it would run: a file tenant without a token keeps
// the one generated for it.
TenantConfig as_run(const TenantConfig& file, const Tenant* cur) {
  TenantConfig t = file;
  if (t.token.empty()) t.token = cur ? cur->config.token : generate_token();
  return t;
}

}  // namespace

std::vector<std::string> Daemon::overridden_by_runtime(const std::vector<TenantConfig>& file) const {
  std::vector<std::string> out;
  for (const TenantConfig& c : file) {
    if (std::find(deleted_.begin(), deleted_.end(), c.name) != deleted_.end()) {
      out.push_back("tenant '" + c.name + "' is in " + cfg_.path +
                    " but was deleted at run time: the file's definition is not applied (`vgpuctl tenant reset " +
                    c.name + "` restores it)");
      continue;
    }
    if (!from_api(c.name)) continue;
    const Tenant* cur = tenants_->by_name(c.name);
    if (!cur) continue;
    std::string diff = describe_tenant_change(as_run(c, cur), cur->config);
    if (!diff.empty())
      out.push_back("tenant '" + c.name + "' was changed at run time; " + cfg_.path + "'s definition is not applied (" +
                    diff + "; `vgpuctl tenant reset " + c.name + "` applies the file)");
  }
  return out;
}

Result<ReloadReport> Daemon::reload(const Config& file) {
  ReloadReport rep;
  rep.restart = restart_only_changes(cfg_, file);
  // The backstop's settings first: quota checks below use overcommit.
  EnforcementConfig enforcement = with_live_enforcement(cfg_.enforcement, file.enforcement);
  EnforcementConfig running_enforcement = cfg_.enforcement;
  cfg_.enforcement = enforcement;
  enum class Kind { kAdd, kUpdate, kRemove };
  struct Step {
    Kind kind;
    TenantConfig want;
  };
  std::vector<Step> plan;
  const std::vector<Gpu>& gpus = tenants_->gpus();
  for (const TenantConfig& c : file.tenants) {
    bool deleted = std::find(deleted_.begin(), deleted_.end(), c.name) != deleted_.end();
    if (deleted || from_api(c.name) || allocation(c.name)) continue;  // reported below
    Tenant* cur = tenants_->by_name(c.name);
    TenantConfig want = as_run(c, cur);
    if (auto ok = validate_quota(want, gpus, cfg_.enforcement.overcommit); !ok) {
      cfg_.enforcement = running_enforcement;
      return make_error(file.path + ": " + ok.error() + "; nothing changed");
    }
    if (!cur) plan.push_back({Kind::kAdd, want});
    else if (!describe_tenant_change(cur->config, want).empty()) plan.push_back({Kind::kUpdate, want});
  }
  for (const TenantConfig& old : cfg_.tenants)
    if (!file_tenant(file.tenants, old.name) && !from_api(old.name) && tenants_->by_name(old.name) &&
        !allocation(old.name))
      plan.push_back({Kind::kRemove, old});
  // The guarantees hold for the tenants as they will be, or nothing changes.
  std::map<std::string, TenantConfig> after;
  for (Tenant* t : tenants_->all()) after[t->config.name] = t->config;
  for (const Step& s : plan) {
    if (s.kind == Kind::kRemove) after.erase(s.want.name);
    else after[s.want.name] = s.want;
  }
  std::vector<TenantConfig> all;
  for (auto& [name, c] : after) all.push_back(c);
  if (auto ok = validate_requests(all); !ok) {
    cfg_.enforcement = running_enforcement;
    return make_error(file.path + " with the runtime changes: " + ok.error() + "; nothing changed");
  }
  apply_node_settings(file, running_enforcement, &rep);
  for (const Step& s : plan) {
    if (s.kind == Kind::kAdd) {
      auto added = tenants_->add(s.want);
      if (!added) return make_error("tenant '" + s.want.name + "': " + added.error());
      hooks_->tenant_added(*added);
      rep.applied.push_back("tenant '" + s.want.name + "' added from the file");
    } else if (s.kind == Kind::kUpdate) {
      Tenant* cur = tenants_->by_name(s.want.name);
      std::string diff = describe_tenant_change(cur->config, s.want);
      auto updated = tenants_->update(s.want);
      if (!updated) return make_error("tenant '" + s.want.name + "': " + updated.error());
      hooks_->tenant_changed(*updated);
      rep.applied.push_back("tenant '" + s.want.name + "' updated from the file: " + diff);
    } else {
      Tenant* cur = tenants_->by_name(s.want.name);
      hooks_->tenant_removing(cur);
      tenants_->remove(s.want.name);
      rep.applied.push_back("tenant '" + s.want.name + "' removed (no longer in the file)");
    }
  }
  // A runtime deletion of a tenant the file no longer has is moot.
  deleted_.erase(std::remove_if(deleted_.begin(), deleted_.end(),
                                [&](const std::string& n) { return !file_tenant(file.tenants, n); }),
                 deleted_.end());
  cfg_.tenants = file.tenants;
  rep.conflicts = overridden_by_runtime(file.tenants);
  if (auto r = persist(); !r)
    rep.applied.push_back("(not persisted: " + r.error() + "; the file still has it)");
  return rep;
}

// The node-wide settings a reload applies live (reload.h); cfg_.enforcement
// already holds the file's live enforcement keys, `before` the running ones.
void Daemon::apply_node_settings(const Config& file, const EnforcementConfig& before, ReloadReport* rep) {
  const EnforcementConfig& now = cfg_.enforcement;
  std::vector<std::string> enforcement = live_enforcement_changes(before, now);
  std::vector<std::string> node = live_node_changes(cfg_, file);
  if (!enforcement.empty()) enforcement_->set_config(now);
  if (now.context_overhead != before.context_overhead) tenants_->set_context_overhead(now.context_overhead);
  if (!node.empty() || now.revoke_deadline_ns != before.revoke_deadline_ns) {
    hooks_->set_scheduler(file.scheduler, now.revoke_deadline_ns);
    hooks_->set_limits(file.limits);
  }
  cfg_.scheduler = file.scheduler;
  cfg_.limits = file.limits;
  rep->applied.insert(rep->applied.end(), enforcement.begin(), enforcement.end());
  rep->applied.insert(rep->applied.end(), node.begin(), node.end());
}

Result<Tenant*> Daemon::reset_tenant(const std::string& name) {
  const TenantConfig* def = file_tenant(cfg_.tenants, name);
  if (!def)
    return make_error("tenant '" + name + "' is not in " + cfg_.path +
                      ": there is no file definition to return to (delete it with `vgpuctl tenant delete " + name + "`)");
  if (allocation(name)) return make_error("tenant '" + name + "' is an allocation of the device plugin");
  Tenant* cur = tenants_->by_name(name);
  TenantConfig want = as_run(*def, cur);
  if (auto ok = validate_quota(want, tenants_->gpus(), cfg_.enforcement.overcommit); !ok) return Error{ok.error()};
  if (auto ok = check_requests(want, false); !ok) return Error{ok.error()};
  auto api = std::find(api_tenants_.begin(), api_tenants_.end(), name);
  auto del = std::find(deleted_.begin(), deleted_.end(), name);
  bool was_api = api != api_tenants_.end(), was_deleted = del != deleted_.end();
  if (was_api) api_tenants_.erase(api);
  if (was_deleted) deleted_.erase(del);
  Result<Tenant*> done = make_error("unreachable");
  TenantConfig before;
  if (cur) {
    before = cur->config;
    done = tenants_->update(want);
  } else {
    done = tenants_->add(want);
  }
  if (done && persist()) {
    if (cur) hooks_->tenant_changed(*done);
    else hooks_->tenant_added(*done);
    return done;
  }
  // Undo: the tenant stays as it was.
  std::string why = done ? std::string("cannot persist the change") : done.error();
  if (done) {
    if (cur) (void)tenants_->update(before);
    else tenants_->remove(name);
  }
  if (was_api) api_tenants_.push_back(name);
  if (was_deleted) deleted_.push_back(name);
  return make_error("tenant '" + name + "': " + why);
}

Result<bool> Daemon::persist() {
  std::vector<StoredTenant> out;
  for (Tenant* t : tenants_->all()) {
    StoredTenant s{t->config, from_api(t->config.name) ? Source::kApi : Source::kConfig, std::nullopt};
    if (auto a = allocations_.find(t->config.name); a != allocations_.end()) s.allocation = a->second;
    out.push_back(std::move(s));
  }
  out.insert(out.end(), dormant_.begin(), dormant_.end());
  for (const std::string& name : deleted_) {
    TenantConfig tomb;
    tomb.name = name;
    tomb.memory = 0;
    tomb.token = "deleted-tenant-tombstone";  // never registered; a valid token keeps the file uniform
    out.push_back({tomb, Source::kDeleted, std::nullopt});
  }
  return store_->save(out);
}

// --- allocation tenants -------------------------------------------------------

std::string Daemon::default_socket_root() const {
  size_t slash = cfg_.socket.find_last_of('/');
  std::string dir = slash == std::string::npos || slash == 0 ? "/run/vgpu" : cfg_.socket.substr(0, slash);
  return dir + "/tenants";
}

const AllocationRecord* Daemon::allocation(const std::string& name) const {
  auto it = allocations_.find(name);
  return it == allocations_.end() ? nullptr : &it->second;
}

Result<bool> Daemon::open_allocation_socket(Tenant* t, const AllocationRecord& r) {
  if (auto ok = prepare_socket_dir(r, t->config.name); !ok) return ok;
  return hooks_->listen_tenant(t->id, socket_path(r, t->config.name));
}

Result<bool> Daemon::set_allocation_record(const std::string& name, const AllocationRecord& r) {
  auto it = allocations_.find(name);
  if (it == allocations_.end()) return make_error("no allocation named '" + name + "'");
  if (r.socket_root != it->second.socket_root) return make_error("an allocation's socket directory is fixed");
  if (auto ok = validate_allocation(r, name); !ok) return ok;
  AllocationRecord before = it->second;
  it->second = r;
  if (auto p = persist(); !p) {
    it->second = before;
    return p;
  }
  return true;
}

void Daemon::open_allocation_sockets() {
  for (const auto& [name, r] : allocations_) {
    Tenant* t = tenants_->by_name(name);
    if (!t) continue;
    if (auto ok = open_allocation_socket(t, r); !ok)
      log_error("allocation '%s': cannot re-create its socket: %s", name.c_str(), ok.error().c_str());
  }
}

std::optional<std::string> missing_gpu(const TenantConfig& t, const std::vector<Gpu>& gpus) {
  for (const auto& [uuid, bytes] : t.device_memory)
    if (std::none_of(gpus.begin(), gpus.end(), [&](const Gpu& g) { return g.uuid == uuid; })) return uuid;
  return std::nullopt;
}

bool Daemon::dormant(const std::string& name) const {
  return std::any_of(dormant_.begin(), dormant_.end(), [&](auto& s) { return s.tenant.name == name; });
}

Result<Tenant*> Daemon::create_allocation(TenantConfig t, AllocationRecord r, bool* existed) {
  *existed = false;
  if (dormant(t.name)) return make_error("tenant '" + t.name + "' already exists (not served: its GPU is missing)");
  if (r.socket_root.empty()) r.socket_root = default_socket_root();
  if (auto ok = validate_tenant(t); !ok) return Error{ok.error()};
  if (auto ok = validate_allocation(r, t.name); !ok) return Error{ok.error()};
  if (auto ok = validate_allocation_quotas(t); !ok) return Error{ok.error()};
  if (Tenant* cur = tenants_->by_name(t.name)) {
    const AllocationRecord* have = allocation(t.name);
    if (!have || cur->config.device_memory != t.device_memory || have->socket_root != r.socket_root)
      return make_error("tenant '" + t.name + "' already exists with other GPUs, quotas or socket directory");
    *existed = true;
    if (!hooks_->tenant_listening(cur->id))
      if (auto ok = open_allocation_socket(cur, *have); !ok) return Error{ok.error()};
    return cur;
  }
  if (auto ok = prepare_socket_dir(r, t.name); !ok) return Error{ok.error()};
  allocations_[t.name] = r;  // persisted with the tenant by create_tenant
  auto created = create_tenant(t);
  if (!created) {
    allocations_.erase(t.name);
    remove_socket_dir(r, t.name);
    return created;
  }
  if (auto ok = hooks_->listen_tenant((*created)->id, socket_path(r, t.name)); !ok) {
    (void)delete_tenant(t.name);  // removes the record and the directory too
    return Error{ok.error()};
  }
  log_info("allocation '%s': own socket %s", t.name.c_str(), socket_path(r, t.name).c_str());
  return created;
}

}  // namespace vgpu::sched
