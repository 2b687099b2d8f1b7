// vgpu-device-plugin: advertises <domain>/gpu-memory from vgpud's GPUs and
// turns the kubelet's Allocate calls into vgpud allocation tenants with CDI
// specs (docs/kubernetes.md). Exits 2 on bad flags, 1 when it cannot start,
// 0 on SIGTERM/SIGINT.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "allocator.h"
#include "api_client.h"
#include "compute_applier.h"
#include "kubeconfig.h"
#include "cdi.h"
#include "device_state.h"
#include "reconcile.h"
#include "log.h"
#include "options.h"
#include "plugin_server.h"
#include "registration.h"
#include "vgpud_client.h"

using namespace vgpu::k8s;
using vgpu::sched::log_error;
using vgpu::sched::log_info;
using vgpu::sched::log_warn;

namespace {

vgpu::sched::LogLevel level_of(const std::string& s) {
  if (s == "error") return vgpu::sched::LogLevel::kError;
  if (s == "warn") return vgpu::sched::LogLevel::kWarn;
  if (s == "debug") return vgpu::sched::LogLevel::kDebug;
  return vgpu::sched::LogLevel::kInfo;
}

// Waits for a signal on its own thread: every other thread has them blocked.
std::atomic<bool> g_stop{false};

void wait_for_signal(sigset_t set, DeviceState* state, Registrar* registrar) {
  int sig = 0;
  sigwait(&set, &sig);
  log_info("signal %d: stopping", sig);
  g_stop = true;
  state->shutdown();
  registrar->stop();
}

// The API server's credentials: --kubeconfig, else in-cluster, else none
// (annotations are then not read). A kubeconfig that cannot be used is an
// error: the operator asked for it.
vgpu::Result<std::unique_ptr<ApiClient>> api_client(const PluginOptions& o) {
  if (!o.kubeconfig.empty()) {
    auto c = load_kubeconfig(o.kubeconfig);
    if (!c) return vgpu::Error{c.error()};
    return std::make_unique<ApiClient>(std::move(c).value());
  }
  if (!std::getenv("KUBERNETES_SERVICE_HOST")) return std::unique_ptr<ApiClient>();
  auto c = in_cluster_credentials(o.service_account_dir);
  if (!c) return vgpu::Error{c.error()};
  return std::make_unique<ApiClient>(std::move(c).value());
}

std::string node_name() {
  if (const char* n = std::getenv("NODE_NAME"); n && *n) return n;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

}  // namespace

int main(int argc, char** argv) {
  vgpu::sched::set_log_program("vgpu-device-plugin");
  bool help = false;
  auto opts = parse_options(std::vector<std::string>(argv + 1, argv + argc), &help);
  if (!opts) {
    std::fprintf(help ? stdout : stderr, "%s%s", help ? "" : "vgpu-device-plugin: ", opts.error().c_str());
    if (!help) std::fprintf(stderr, "\n");
    return help ? 0 : 2;
  }
  vgpu::sched::set_log_level(level_of(opts->log_level));
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  VgpudClient vgpud(opts->admin_socket);
  DeviceState state(opts->memory_unit);
  Allocator allocator(*opts, vgpud, state);
  PodResourcesClient pods(opts->pod_resources_socket());
  auto api = api_client(*opts);
  if (!api) {
    log_error("%s", api.error().c_str());
    return 1;
  }
  std::unique_ptr<ComputeApplier> applier;
  if (*api) {
    log_info("compute annotations from the API server at %s (%s)", (*api)->credentials().server.c_str(),
             (*api)->credentials().source.c_str());
    applier = std::make_unique<ComputeApplier>(*opts, vgpud, std::move(api).value(), node_name());
  } else {
    log_info("no API server (no --kubeconfig, not in a cluster): compute annotations are not read");
  }
  AllocationReconciler reconciler(*opts, vgpud, pods, applier.get());
  PluginServer server(*opts, state, allocator, [&](const std::vector<std::string>& ids) {
    if (auto ok = reconciler.prepare(ids); !ok) log_warn("PreStartContainer: %s", ok.error().c_str());
  });
  Registrar registrar(*opts, server);
  std::thread signals(wait_for_signal, set, &state, &registrar);
  signals.detach();

  if (auto ok = ensure_preload_file(allocator.layout()); !ok) {
    log_error("%s", ok.error().c_str());
    return 1;
  }
  for (const std::string& lib : {allocator.layout().shim(), allocator.layout().core()})
    if (access(lib.c_str(), R_OK) != 0)
      log_warn("%s is missing: containers will not find the shim (the DaemonSet's init container installs "
               "libvgpu.so and libvgpu-core.so)",
               lib.c_str());
  // vgpud first: without its GPU list there is nothing to advertise.
  for (int tries = 0; !g_stop; ++tries) {
    auto gpus = vgpud.gpus();
    if (gpus) {
      state.update(gpus);
      break;
    }
    if (tries % 10 == 0) log_warn("%s (waiting for vgpud)", gpus.error().c_str());
    usleep(1'000'000);
  }
  if (g_stop) return 0;
  log_info("%zu GPUs, %zu devices of %llu MiB", state.gpus().size(), state.devices(nullptr).size(),
           static_cast<unsigned long long>(opts->memory_unit >> 20));
  if (auto n = allocator.restore(); n) log_info("restored the CDI specs of %zu allocations", *n);
  else log_warn("cannot restore CDI specs: %s", n.error().c_str());
  // Specs of allocations vgpud no longer has (its state was wiped) would
  // start containers on a socket that is not there.
  // Through a client of its own: a first connection that finds no kubelet
  // would hold the long-lived client in gRPC's reconnect backoff (a second),
  // failing the first PreStartContainer calls.
  PodResourcesClient start_pods(opts->pod_resources_socket(), std::chrono::seconds(2));
  if (access(start_pods.socket().c_str(), F_OK) != 0) {
    log_info("no PodResources socket yet: stale CDI specs are left to the reconciliation rounds");
  } else if (auto stale = AllocationReconciler(*opts, vgpud, start_pods).remove_stale_specs(); stale) {
    for (const auto& name : *stale) log_info("allocation %s: vgpud and PodResources do not know it; CDI spec removed", name.c_str());
  } else {
    log_info("stale CDI specs are left to the reconciliation rounds: %s", stale.error().c_str());
  }

  std::thread reg([&] { registrar.run(); });
  auto next_gc = std::chrono::steady_clock::now() + opts->gc_interval;
  auto next_annotations = std::chrono::steady_clock::now() + opts->annotation_interval;
  bool gc_warned = false, annotations_warned = false;
  while (!g_stop) {
    uint64_t seen = 0;
    state.devices(&seen);
    state.wait_change(seen, opts->health_interval);  // a sleep that shutdown() ends
    if (g_stop) break;
    auto reading = vgpud.gpus();
    bool was = state.reachable();
    if (state.update(reading)) log_info("device health changed; ListAndWatch resends");
    if (was && !reading) log_warn("%s: devices reported Unhealthy", reading.error().c_str());
    if (!was && reading) log_info("vgpud answers again");
    auto now = std::chrono::steady_clock::now();
    if (opts->gc_interval.count() > 0 && now >= next_gc) {
      next_gc = now + opts->gc_interval;
      auto round = reconciler.reconcile(now);
      if (!round && !gc_warned) log_warn("allocations not reconciled with PodResources: %s", round.error().c_str());
      gc_warned = !round;
      if (round) {
        for (const auto& name : round->removed) log_info("allocation %s: no container holds it; removed", name.c_str());
        for (const auto& name : round->labeled) log_info("allocation %s: labeled from PodResources", name.c_str());
        for (const auto& name : round->stale_specs)
          log_info("allocation %s: vgpud and PodResources do not know it; CDI spec removed", name.c_str());
      }
    }
    if (applier && opts->annotation_interval.count() > 0 && now >= next_annotations) {
      next_annotations = now + opts->annotation_interval;
      auto changed = reconciler.apply_annotations();
      if (!changed && !annotations_warned)
        log_warn("compute annotations not applied (retrying every %lld ms): %s",
                 static_cast<long long>(opts->annotation_interval.count()), changed.error().c_str());
      if (changed && annotations_warned) log_info("compute annotations: the API server and vgpud answer again");
      annotations_warned = !changed;
      if (changed)
        for (const auto& name : *changed) log_info("allocation %s: compute settings from annotations", name.c_str());
    }
  }
  reg.join();
  server.stop();
  return 0;
}
