#include "daemon.h"

#include <algorithm>
#include <map>

#include "log.h"

namespace vgpu::sched {

Result<std::unique_ptr<Daemon>> Daemon::start(const Config& cfg) {
  std::unique_ptr<Daemon> d(new Daemon());
  d->cfg_ = cfg;
  auto gpus = discover_gpus();
  if (!gpus) return make_error("cannot list GPUs: " + gpus.error());
  for (const Gpu& g : *gpus)
    log_info("GPU %d: %s %s, %llu MiB", g.index, g.uuid.c_str(), g.name.c_str(),
             static_cast<unsigned long long>(g.memory >> 20));
  d->tenants_ = std::make_unique<TenantRegistry>(*gpus);
  d->store_ = std::make_unique<StateStore>(cfg.state_dir);
  if (auto r = d->store_->open(); !r) return Error{r.error()};
  if (auto r = d->load_tenants(cfg); !r) return Error{r.error()};
  if (auto r = d->persist(); !r) return Error{r.error()};
  d->hooks_ = std::make_unique<HookServer>(d->loop_, *d->tenants_, cfg.scheduler, std::make_unique<TokenResolver>());
  if (auto r = d->hooks_->listen(cfg.socket); !r) return Error{r.error()};
  log_info("listening on %s with %zu tenants", cfg.socket.c_str(), d->tenants_->all().size());
  return d;
}

Result<bool> Daemon::load_tenants(const Config& cfg) {
  auto stored = store_->load();
  if (!stored) return Error{stored.error()};
  std::map<std::string, StoredTenant> by_name;
  for (auto& s : *stored) by_name[s.tenant.name] = s;
  // Tenants of the config file, keeping the token generated for them before.
  for (TenantConfig t : cfg.tenants) {
    if (t.token.empty()) {
      auto it = by_name.find(t.name);
      t.token = it != by_name.end() ? it->second.tenant.token : generate_token();
    }
    if (auto r = tenants_->add(t); !r) return make_error(cfg.path + ": " + r.error());
  }
  // Tenants created at run time (vgpuctl) survive restarts.
  for (auto& [name, s] : by_name) {
    if (!s.from_api || tenants_->by_name(name)) continue;
    if (auto r = tenants_->add(s.tenant); !r) return make_error(store_->dir() + "/tenants.yaml: " + r.error());
    api_tenants_.push_back(name);
  }
  return true;
}

Result<bool> Daemon::persist() {
  std::vector<StoredTenant> out;
  for (Tenant* t : tenants_->all()) {
    bool api = std::find(api_tenants_.begin(), api_tenants_.end(), t->config.name) != api_tenants_.end();
    out.push_back({t->config, api});
  }
  return store_->save(out);
}

}  // namespace vgpu::sched
