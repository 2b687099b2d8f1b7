#include "metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <errno.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include "daemon.h"
#include "gpu_inventory.h"
#include "log.h"
#include "vgpu/protocol.h"
#include "vgpu_version.h"

namespace vgpu::sched {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using Labels = std::map<std::string, std::string>;

struct Metrics::Families {
  explicit Families(prometheus::Registry& r)
      : memory_used(gauge(r, "vgpu_tenant_memory_used_bytes", "Device memory the tenant holds on the GPU")),
        memory_limit(gauge(r, "vgpu_tenant_memory_limit_bytes", "The tenant's memory quota on the GPU")),
        denied(counter(r, "vgpu_tenant_allocations_denied_total", "Allocations refused by the tenant's quota")),
        share_target(gauge(r, "vgpu_tenant_share_target_ratio", "Configured compute request (guaranteed share)")),
        share_limit(gauge(r, "vgpu_tenant_share_limit_ratio", "Configured compute limit (hard cap)")),
        share_achieved(gauge(r, "vgpu_tenant_share_achieved_ratio", "GPU time charged over the sliding window")),
        wait(counter(r, "vgpu_tenant_lease_wait_seconds_total", "Time the tenant's launches waited for a lease")),
        granted(counter(r, "vgpu_tenant_leases_granted_total", "GPU leases granted to the tenant")),
        preempted(counter(r, "vgpu_tenant_leases_preempted_total", "Leases taken from the tenant for a higher priority")),
        processes(gauge(r, "vgpu_tenant_processes", "Registered processes of the tenant")),
        gpu_memory_used(gauge(r, "vgpu_gpu_memory_used_bytes", "Physical memory in use on the GPU (NVML)")),
        gpu_memory_total(gauge(r, "vgpu_gpu_memory_total_bytes", "Physical memory of the GPU")),
        gpu_busy(gauge(r, "vgpu_gpu_busy_ratio", "Fraction of time the GPU was busy (NVML utilization)")),
        enforcement(counter(r, "vgpu_enforcement_actions_total",
                            "Actions of the enforcement backstop by reason, action (killed, reported, kill_failed) "
                            "and tenant (empty: an unregistered process)")),
        unmanaged(gauge(r, "vgpu_unmanaged_processes",
                        "Unregistered processes using a managed GPU at the backstop's last poll")),
        build_info(gauge(r, "vgpu_build_info",
                         "Always 1; labels: version, revision and protocol of this vgpud, Hostname")),
        info(gauge(r, "vgpu_tenant_info",
                   "1 for each allocation tenant, with the Kubernetes namespace, pod and container it serves "
                   "(join on tenant)")) {}

  static Family<Gauge>& gauge(prometheus::Registry& r, const char* name, const char* help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(r);
  }
  static Family<Counter>& counter(prometheus::Registry& r, const char* name, const char* help) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(r);
  }
  // Brings a counter to `value` (counters only go up; a reset restarts them).
  static void set_counter(Family<Counter>& f, const Labels& l, double value) {
    Counter& c = f.Add(l);
    double now = c.Value();
    if (value > now) c.Increment(value - now);
  }

  Family<Gauge>& memory_used;
  Family<Gauge>& memory_limit;
  Family<Counter>& denied;
  Family<Gauge>& share_target;
  Family<Gauge>& share_limit;
  Family<Gauge>& share_achieved;
  Family<Counter>& wait;
  Family<Counter>& granted;
  Family<Counter>& preempted;
  Family<Gauge>& processes;
  Family<Gauge>& gpu_memory_used;
  Family<Gauge>& gpu_memory_total;
  Family<Gauge>& gpu_busy;
  Family<Counter>& enforcement;
  Family<Gauge>& unmanaged;
  Family<Gauge>& build_info;
  Family<Gauge>& info;
  std::set<std::string> tenants;  // names with metrics, to drop deleted ones
  std::map<std::string, Labels> info_labels;  // tenant -> labels of its info series

  // The info series of `tenant` has `l` (none if `l` is empty).
  void set_info(const std::string& tenant, const Labels& l) {
    auto it = info_labels.find(tenant);
    if (it != info_labels.end() && it->second == l) return;
    if (it != info_labels.end()) {
      if (info.Has(it->second)) info.Remove(&info.Add(it->second));
      info_labels.erase(it);
    }
    if (l.empty()) return;
    info.Add(l).Set(1);
    info_labels[tenant] = l;
  }
};

namespace {

// civetweb serves each connection on one worker thread until the request is
// read, so a client that sends half a request holds a worker. Bounds: a
// request must arrive whole within kRequestTimeoutMs, and connections are not
// kept alive. K such clients delay a scrape not at all while K < kThreads,
// and otherwise by about ceil((K - kThreads + 1) / kThreads) timeouts (the
// accept queue is first come, first served).
constexpr const char* kThreads = "8";
constexpr const char* kRequestTimeoutMs = "1000";

std::vector<std::string> server_options(const std::string& address) {
  return {"listening_ports", address,           "num_threads",       kThreads,
          "request_timeout_ms", kRequestTimeoutMs, "enable_keep_alive", "no"};
}

// civetweb says only "null context" when it cannot listen; binding the same
// address here (as civetweb does, with SO_REUSEADDR) finds out why.
std::string why_not_listening(const std::string& address, const std::string& civetweb_says) {
  size_t colon = address.rfind(':');
  std::string host = colon == std::string::npos ? "0.0.0.0" : address.substr(0, colon);
  std::string port = colon == std::string::npos ? address : address.substr(colon + 1);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535)
    return "not a host:port address";
  addrinfo hints{}, *ai = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &ai) != 0 || !ai) return "not a numeric host:port address";
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1, err = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) err = errno;
  if (fd >= 0) close(fd);
  freeaddrinfo(ai);
  if (err == EADDRINUSE) return "address in use";
  if (err == EACCES) return "permission denied (a port below 1024 needs privileges)";
  if (err == EADDRNOTAVAIL) return "no such local address";
  if (err != 0) return std::strerror(err);
  return civetweb_says;
}

// The node's name on every series: NODE_NAME (set from the pod's
// spec.nodeName in the DaemonSet), else the host name.
std::string node_hostname() {
  if (const char* n = std::getenv("NODE_NAME"); n && *n) return n;
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

}  // namespace

// The labels dashboards built for dcgm-exporter already use (`gpu` = the
// physical GPU's NVML index, `UUID` = its UUID, `modelName`, `Hostname`;
// MIG units add `GPU_I_ID`), plus vgpu's own `gpu_uuid` (the unit: a GPU's or
// a MIG device's UUID), kept for existing queries.
Labels Metrics::gpu_labels(const Gpu& g) const {
  Labels l{{"gpu_uuid", g.uuid},
           {"gpu", std::to_string(g.nvml_index)},
           {"UUID", g.gpu_uuid.empty() ? g.uuid : g.gpu_uuid},
           {"modelName", g.name},
           {"Hostname", hostname_}};
  if (g.mig_index >= 0) l["GPU_I_ID"] = std::to_string(g.mig_index);
  return l;
}

Result<std::unique_ptr<Metrics>> Metrics::start(Daemon& d, const std::string& address) {
  std::unique_ptr<Metrics> m(new Metrics(d));
  try {
    m->exposer_ = std::make_unique<prometheus::Exposer>(server_options(address));
  } catch (const std::exception& e) {
    return make_error("metrics: cannot listen on " + address + ": " + why_not_listening(address, e.what()));
  }
  m->registry_ = std::make_shared<prometheus::Registry>();
  m->f_ = std::make_unique<Families>(*m->registry_);
  m->exposer_->RegisterCollectable(m->registry_);
  m->timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  itimerspec every{{0, 250'000'000}, {0, 1'000'000}};
  timerfd_settime(m->timerfd_, 0, &every, nullptr);
  Metrics* raw = m.get();
  d.loop().add(m->timerfd_, EPOLLIN, [raw](uint32_t) {
    uint64_t n;
    while (read(raw->timerfd_, &n, sizeof n) > 0) {
    }
    raw->update();
  });
  log_info("metrics on http://%s/metrics", address.c_str());
  return m;
}

Metrics::Metrics(Daemon& d) : d_(d), hostname_(node_hostname()) {}

Metrics::~Metrics() {
  if (timerfd_ >= 0) {
    d_.loop().remove(timerfd_);
    close(timerfd_);
  }
}

void Metrics::update() {
  Families& f = *f_;
  uint64_t now = now_ns();
  const auto& gpus = d_.tenants().gpus();
  std::set<std::string> seen;
  for (Tenant* t : d_.tenants().all()) {
    const std::string& name = t->config.name;
    seen.insert(name);
    uint32_t procs = 0;
    for (auto& [fd, c] : d_.hooks().clients()) procs += c->tenant == t->id;
    f.processes.Add({{"tenant", name}}).Set(procs);
    const AllocationRecord* a = d_.allocation(name);
    if (a) f.set_info(name, {{"tenant", name}, {"namespace", a->ns}, {"pod", a->pod}, {"container", a->container}});
    for (size_t i = 0; i < gpus.size(); ++i) {
      if (!t->allowed[i]) continue;
      Labels l = gpu_labels(gpus[i]);
      l["tenant"] = name;
      // Kubernetes names where known (an allocation the plugin labelled).
      if (a && !a->pod.empty()) {
        l["namespace"] = a->ns;
        l["pod"] = a->pod;
        l["container"] = a->container;
      }
      int g = static_cast<int>(i);
      // A tenant's labels can change (Kubernetes names set after Allocate):
      // the old series go, so no stale duplicate stays behind.
      auto key = std::make_pair(name, i);
      if (auto old = series_labels_.find(key); old != series_labels_.end() && old->second != l) {
        for (auto* fam : {&f.memory_used, &f.memory_limit, &f.share_target, &f.share_limit, &f.share_achieved})
          if (fam->Has(old->second)) fam->Remove(&fam->Add(old->second));
        for (auto* fam : {&f.denied, &f.wait, &f.granted, &f.preempted})
          if (fam->Has(old->second)) fam->Remove(&fam->Add(old->second));
      }
      series_labels_[key] = l;
      f.memory_used.Add(l).Set(static_cast<double>(t->reported_used(g)));
      f.memory_limit.Add(l).Set(static_cast<double>(t->limit(g)));
      Families::set_counter(f.denied, l, static_cast<double>(t->reported_denied(g)));
      f.share_target.Add(l).Set(t->config.request);
      f.share_limit.Add(l).Set(t->config.limit);
      f.share_achieved.Add(l).Set(d_.hooks().share(t->id, static_cast<int>(i), now));
      Families::set_counter(f.wait, l, static_cast<double>(t->reported_wait_ns(g)) / 1e9);
      Families::set_counter(f.granted, l,
                            static_cast<double>(d_.hooks().gpu(static_cast<int>(i)).arbiter->granted_count(t->id)));
      Families::set_counter(f.preempted, l,
                            static_cast<double>(d_.hooks().gpu(static_cast<int>(i)).arbiter->preempted_count(t->id)));
    }
  }
  for (const std::string& gone : f.tenants)
    if (!seen.count(gone)) {
      // A deleted tenant's series go away with it.
      for (size_t i = 0; i < gpus.size(); ++i) {
        auto it = series_labels_.find({gone, i});
        if (it == series_labels_.end()) continue;
        const Labels& l = it->second;
        for (auto* fam : {&f.memory_used, &f.memory_limit, &f.share_target, &f.share_limit, &f.share_achieved})
          if (fam->Has(l)) fam->Remove(&fam->Add(l));
        for (auto* fam : {&f.denied, &f.wait, &f.granted, &f.preempted})
          if (fam->Has(l)) fam->Remove(&fam->Add(l));
      }
      Labels lt{{"tenant", gone}};
      if (f.processes.Has(lt)) f.processes.Remove(&f.processes.Add(lt));
      for (size_t i = 0; i < gpus.size(); ++i) series_labels_.erase({gone, i});
      f.set_info(gone, {});
    }
  f.tenants = seen;
  for (const Gpu& g : gpus) {
    Labels l = gpu_labels(g);
    GpuReading r = read_gpu(g.index);
    f.gpu_memory_used.Add(l).Set(static_cast<double>(r.memory_used));
    f.gpu_memory_total.Add(l).Set(static_cast<double>(g.memory));
    f.gpu_busy.Add(l).Set(r.busy_fraction);
  }
  // Kept for deleted tenants too: an action taken stays counted.
  for (const auto& [key, n] : d_.enforcement().counts()) {
    const auto& [reason, action, tenant] = key;
    Families::set_counter(f.enforcement, {{"reason", reason}, {"action", action}, {"tenant", tenant}},
                          static_cast<double>(n));
  }
  f.unmanaged.Add({{"Hostname", hostname_}}).Set(static_cast<double>(d_.enforcement().unmanaged().size()));
  f.build_info.Add({{"version", VGPU_VERSION_STRING}, {"revision", VGPU_REVISION_STRING},
                    {"protocol", std::to_string(proto::kVersion)}, {"Hostname", hostname_}})
      .Set(1);
}

}  // namespace vgpu::sched
