#include "options.h"

#include <cctype>
#include <map>

#include "vgpu/units.h"

namespace vgpu::k8s {

std::string usage() {
  return "usage: vgpu-device-plugin [flags]\n"
         "  --kubelet-root DIR      kubelet directory (default /var/lib/kubelet)\n"
         "  --admin-socket PATH     vgpud's admin API socket (default /run/vgpu/vgpud-admin.sock)\n"
         "  --cdi-dir DIR           where CDI specs are written (default /var/run/cdi)\n"
         "  --kubeconfig PATH       API server credentials for compute annotations and events (default: in-cluster)\n"
         "  --service-account-dir DIR  in-cluster token and ca.crt (default /var/run/secrets/kubernetes.io/serviceaccount)\n"
         "  --annotation-interval DUR  how often pods' compute annotations are re-read, 0: only at start (default 10s)\n"
         "  --memory-unit SIZE      memory per advertised device (default 1Gi)\n"
         "  --domain NAME           resource domain: <domain>/gpu-memory (default vgpu.io)\n"
         "  --host-dir DIR          host directory of the shim and allocation sockets (default /var/lib/vgpu/k8s)\n"
         "  --nvidia-cdi-kind KIND  CDI kind of the real GPU, \"\" for none (default nvidia.com/gpu)\n"
         "  --nvidia-env BOOL       set NVIDIA_VISIBLE_DEVICES (default true)\n"
         "  --pre-start BOOL        ask the kubelet for PreStartContainer: label allocations before start (default true)\n"
         "  --health-interval DUR   how often vgpud's GPU health is read (default 2s)\n"
         "  --gc-interval DUR       how often allocations no pod holds are looked for, 0: never (default 30s)\n"
         "  --gc-grace DUR          how long an allocation is unlisted before it is removed (default 2m)\n"
         "  --log-level LEVEL       error, warn, info or debug (default info)\n";
}

namespace {

bool valid_domain(const std::string& d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
  for (char c : d)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '.' ||
          c == '-'))
      return false;
  return true;
}

Result<bool> absolute(const std::string& flag, const std::string& v) {
  if (v.empty() || v[0] != '/') return make_error(flag + ": '" + v + "' is not an absolute path");
  return true;
}

}  // namespace

Result<PluginOptions> parse_options(const std::vector<std::string>& args, bool* help) {
  *help = false;
  PluginOptions o;
  std::map<std::string, std::string*> paths = {{"--kubelet-root", &o.kubelet_root}, {"--admin-socket", &o.admin_socket},
                                               {"--cdi-dir", &o.cdi_dir},           {"--kubeconfig", &o.kubeconfig},
                                               {"--host-dir", &o.host_dir},
                                               {"--service-account-dir", &o.service_account_dir}};
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], value;
    if (flag == "--help" || flag == "-h") {
      *help = true;
      return make_error(usage());
    }
    size_t eq = flag.find('=');
    if (eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else {
      if (i + 1 >= args.size()) return make_error(flag + ": needs a value");
      value = args[++i];
    }
    if (auto p = paths.find(flag); p != paths.end()) {
      if (!(flag == "--kubeconfig" && value.empty()))
        if (auto ok = absolute(flag, value); !ok) return Error{ok.error()};
      *p->second = value;
    } else if (flag == "--memory-unit") {
      auto b = parse_bytes(value);
      if (!b) return make_error("--memory-unit: " + b.error());
      if (*b < (1ull << 20)) return make_error("--memory-unit: at least 1Mi");
      o.memory_unit = *b;
    } else if (flag == "--domain") {
      if (!valid_domain(value)) return make_error("--domain: '" + value + "' is not a DNS name in lower case");
      o.domain = value;
    } else if (flag == "--nvidia-cdi-kind") {
      if (!value.empty() && value.find('/') == std::string::npos)
        return make_error("--nvidia-cdi-kind: '" + value + "' is not <vendor>/<class>");
      o.nvidia_cdi_kind = value;
    } else if (flag == "--nvidia-env" || flag == "--pre-start") {
      if (value != "true" && value != "false") return make_error(flag + ": true or false");
      (flag == "--nvidia-env" ? o.nvidia_env : o.pre_start) = value == "true";
    } else if (flag == "--health-interval") {
      auto d = parse_duration_ns(value);
      if (!d || *d < 10'000'000 || *d > 600'000'000'000ull)
        return make_error("--health-interval: '" + value + "' is not a duration between 10ms and 10m");
      o.health_interval = std::chrono::milliseconds(*d / 1'000'000);
    } else if (flag == "--annotation-interval") {
      auto d = parse_duration_ns(value);
      if (!d || *d > 86'400'000'000'000ull || (*d != 0 && *d < 10'000'000))
        return make_error("--annotation-interval: '" + value + "' is not a duration (0 or 10ms..24h)");
      o.annotation_interval = std::chrono::milliseconds(*d / 1'000'000);
    } else if (flag == "--gc-interval" || flag == "--gc-grace") {
      auto d = parse_duration_ns(value);
      if (!d || *d > 86'400'000'000'000ull || (flag == "--gc-interval" && *d != 0 && *d < 10'000'000))
        return make_error(flag + ": '" + value + "' is not a duration (0 or 10ms..24h)");
      (flag == "--gc-interval" ? o.gc_interval : o.gc_grace) = std::chrono::milliseconds(*d / 1'000'000);
    } else if (flag == "--log-level") {
      if (value != "error" && value != "warn" && value != "info" && value != "debug")
        return make_error("--log-level: one of error, warn, info, debug");
      o.log_level = value;
    } else {
      return make_error("unknown flag " + flag + "\n" + usage());
    }
  }
  if (o.plugin_socket().size() >= 108) return make_error("--kubelet-root: the plugin socket path is too long");
  return o;
}

}  // namespace vgpu::k8s
