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

#include <CLI/CLI.hpp>

#include "daemon.h"
#include "log.h"
#include "vgpu_version.h"
#include "vgpu/protocol.h"

namespace {

// What the command line says; exit_code >= 0 means "exit now with it".
struct Args {
  std::string config_path;
  std::string log_level;
  int exit_code = -1;
};

Args parse_args(int argc, char** argv) {
  CLI::App app(
      "The vgpu node scheduler: tenant memory quotas and GPU time slicing for every process that runs with "
      "libvgpu.so. See docs/operations.md.",
      "vgpud");
  Args a;
  app.add_option("--config", a.config_path, "configuration (YAML), e.g. /etc/vgpu/vgpud.yaml")
      ->required()
      ->type_name("FILE");
  app.add_option("--log-level", a.log_level, "error, warn, info (default) or debug; overrides VGPUD_LOG_LEVEL")
      ->type_name("LEVEL")
      ->check([](const std::string& v) {
        return vgpu::sched::parse_log_level(v) ? std::string() : "unknown log level '" + v + "' (error, warn, info or debug)";
      });
  bool version = false;
  app.add_flag("--version", version, "print the version and exit");
  // --version needs no --config.
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--version") {
      std::printf("vgpud %s (revision %s, protocol %u)\n", VGPU_VERSION_STRING, VGPU_REVISION_STRING,
                  static_cast<unsigned>(vgpu::proto::kVersion));
      a.exit_code = 0;
      return a;
    }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::fputs(app.help().c_str(), stdout);
    a.exit_code = 0;
  } catch (const CLI::ParseError& e) {
    // The problem first, then how to call vgpud.
    std::fprintf(stderr, "vgpud: %s\n\n%s", e.what(), app.help().c_str());
    a.exit_code = 2;
  }
  return a;
}

// SIGHUP: re-reads the configuration file and applies what changed
// (Daemon::reload, reload.h); a file with an error changes nothing.
void reload_config(vgpu::sched::Daemon& d, const std::string& path) {
  using namespace vgpu::sched;
  sd_notify(0, "RELOADING=1");
  log_info("SIGHUP: reloading %s", path.c_str());
  auto cfg = load_config(path);
  vgpu::Result<ReloadReport> rep = cfg ? d.reload(*cfg) : vgpu::Result<ReloadReport>(vgpu::Error{cfg.error()});
  if (!rep) {
    log_error("reload refused, nothing changed: %s", rep.error().c_str());
    sd_notifyf(0, "READY=1\nSTATUS=reload of %s refused: %s", path.c_str(), rep.error().c_str());
    return;
  }
  for (const std::string& line : rep->applied) log_info("reload: %s", line.c_str());
  for (const std::string& line : rep->conflicts) log_warn("reload: %s", line.c_str());
  for (const std::string& line : rep->restart)
    log_warn("reload: %s changed; it takes effect when vgpud restarts", line.c_str());
  if (rep->applied.empty() && rep->restart.empty()) log_info("reload: no changes to apply");
  if (rep->restart.empty())
    sd_notifyf(0, "READY=1\nSTATUS=serving %zu tenants (reloaded)", d.tenants().all().size());
  else
    sd_notifyf(0, "READY=1\nSTATUS=serving %zu tenants (reloaded; %zu changed keys wait for a restart)",
               d.tenants().all().size(), rep->restart.size());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vgpu::sched;
  configure_log_output();
  Args args = parse_args(argc, argv);
  if (args.exit_code >= 0) return args.exit_code;
  std::string config_path = args.config_path;
  if (!args.log_level.empty()) {
    set_log_level(*parse_log_level(args.log_level));
  } else if (const char* env = std::getenv("VGPUD_LOG_LEVEL"); env && *env) {
    auto level = parse_log_level(env);
    if (!level) {
      std::fprintf(stderr, "vgpud: VGPUD_LOG_LEVEL: unknown log level '%s' (error, warn, info or debug)\n", env);
      return 2;
    }
    set_log_level(*level);
  }
  auto cfg = load_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "vgpud: %s\n", cfg.error().c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGHUP);
  sigprocmask(SIG_BLOCK, &handled, nullptr);
  auto daemon = Daemon::start(*cfg);
  if (!daemon) {
    std::fprintf(stderr, "vgpud: %s\n", daemon.error().c_str());
    return 1;
  }
  int sfd = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  Daemon* d = daemon.value().get();
  d->loop().add(sfd, EPOLLIN, [d, sfd, config_path](uint32_t) {
    signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      if (si.ssi_signo == SIGHUP) {
        reload_config(*d, config_path);
        continue;
      }
      log_info("signal %u: shutting down", si.ssi_signo);
      sd_notify(0, "STOPPING=1");
      d->stop();
      return;
    }
  });
  // Under systemd (Type=notify) the unit is started once the sockets accept
  // connections; elsewhere NOTIFY_SOCKET is unset and this does nothing.
  sd_notifyf(0, "READY=1\nMAINPID=%d\nSTATUS=serving %zu tenants", static_cast<int>(getpid()),
             d->tenants().all().size());
  d->run();
  close(sfd);
  return 0;
}
