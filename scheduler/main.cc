// vgpud: the node scheduler daemon. See docs/operations.md.
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "daemon.h"
#include "log.h"
#include "vgpu_version.h"
#include "vgpu/protocol.h"

namespace {

const char* kUsage =
    "usage: vgpud --config FILE [--log-level error|warn|info|debug]\n"
    "\n"
    "The vgpu node scheduler: tenant memory quotas and GPU time slicing for\n"
    "every process that runs with libvgpu.so.\n"
    "\n"
    "  --config FILE      configuration (YAML), e.g. /etc/vgpu/vgpud.yaml\n"
    "  --log-level LEVEL  error, warn, info (default) or debug; overrides VGPUD_LOG_LEVEL\n"
    "  -h, --help         this help\n"
    "  --version          print the version\n";

int usage_error(const std::string& problem) {
  std::fprintf(stderr, "vgpud: %s\n\n%s", problem.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vgpu::sched;
  std::string config_path;
  bool level_from_flag = false;
  configure_log_output();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--version") {
      std::printf("vgpud %s (revision %s, protocol %u)\n", VGPU_VERSION_STRING, VGPU_REVISION_STRING,
                  static_cast<unsigned>(vgpu::proto::kVersion));
      return 0;
    }
    if ((a == "--config" || a == "--log-level") && i + 1 >= argc) return usage_error(a + " needs a value");
    if (a == "--config") {
      config_path = argv[++i];
    } else if (a == "--log-level") {
      std::string l = argv[++i];
      auto level = parse_log_level(l);
      if (!level) return usage_error("unknown log level '" + l + "' (error, warn, info or debug)");
      set_log_level(*level);
      level_from_flag = true;
    } else {
      return usage_error("unknown argument '" + a + "'");
    }
  }
  if (config_path.empty()) return usage_error("--config FILE is required");
  if (const char* env = std::getenv("VGPUD_LOG_LEVEL"); env && *env && !level_from_flag) {
    auto level = parse_log_level(env);
    if (!level) return usage_error(std::string("VGPUD_LOG_LEVEL: unknown log level '") + env + "' (error, warn, info or debug)");
    set_log_level(*level);
  }
  auto cfg = load_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "vgpud: %s\n", cfg.error().c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  auto daemon = Daemon::start(*cfg);
  if (!daemon) {
    std::fprintf(stderr, "vgpud: %s\n", daemon.error().c_str());
    return 1;
  }
  int sfd = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
  Daemon* d = daemon.value().get();
  d->loop().add(sfd, EPOLLIN, [d, sfd](uint32_t) {
    signalfd_siginfo si;
    if (read(sfd, &si, sizeof si) > 0) log_info("signal %u: shutting down", si.ssi_signo);
    sd_notify(0, "STOPPING=1");
    d->stop();
  });
  // Under systemd (Type=notify) the unit is started once the sockets accept
  // connections; elsewhere NOTIFY_SOCKET is unset and this does nothing.
  sd_notifyf(0, "READY=1\nMAINPID=%d\nSTATUS=serving %zu tenants", static_cast<int>(getpid()),
             d->tenants().all().size());
  d->run();
  close(sfd);
  return 0;
}
