#include "enforcement.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "bpf/driver_probe.h"
#include "log.h"

namespace vgpu::sched {

namespace {

constexpr size_t kMaxEvents = 1000;

uint64_t unix_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// SIGKILL through a pidfd: the signal reaches the process the pidfd names,
// not a later process that reused the pid.
bool kill_process(int32_t pid, std::string* why) {
  if (pid <= 1 || pid == getpid()) {
    *why = "refusing to signal pid " + std::to_string(pid);
    return false;
  }
  int pfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pfd < 0) {
    *why = std::string("pidfd_open: ") + std::strerror(errno);
    return false;
  }
  bool ok = syscall(SYS_pidfd_send_signal, pfd, SIGKILL, nullptr, 0) == 0;
  if (!ok) *why = std::string("pidfd_send_signal: ") + std::strerror(errno);
  close(pfd);
  return ok;
}

}  // namespace

std::string find_driver_library() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("LD_LIBRARY_PATH"))
    for (std::string rest = env; !rest.empty();) {
      size_t colon = rest.find(':');
      dirs.push_back(rest.substr(0, colon));
      rest = colon == std::string::npos ? "" : rest.substr(colon + 1);
    }
  for (const char* d : {"/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/nvidia/lib64", "/usr/lib"})
    dirs.push_back(d);
  for (const std::string& d : dirs) {
    std::string path = (d.empty() ? "." : d) + "/libcuda.so.1";
    char real[4096];
    if (access(path.c_str(), R_OK) == 0 && realpath(path.c_str(), real)) return real;
  }
  return "";
}

bool process_allowlisted(int32_t pid, const std::vector<std::string>& allowlist) {
  if (allowlist.empty()) return false;
  std::string comm;
  std::ifstream(std::string("/proc/") + std::to_string(pid) + "/comm") >> comm;
  char exe[4096];
  ssize_t n = readlink((std::string("/proc/") + std::to_string(pid) + "/exe").c_str(), exe, sizeof exe - 1);
  std::string path = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "";
  for (const std::string& a : allowlist)
    if ((!a.empty() && a[0] == '/') ? a == path : a == comm) return true;
  return false;
}

Enforcement::Enforcement(EventLoop& loop, TenantRegistry& tenants, HookServer& hooks, const EnforcementConfig& cfg,
                         std::unique_ptr<GpuReader> reader)
    : loop_(loop),
      tenants_(tenants),
      hooks_(hooks),
      cfg_(cfg),
      reader_(std::move(reader)),
      backstop_(cfg, now_ns(), [this](int32_t pid) { return process_allowlisted(pid, cfg_.allowlist); }) {
  // NVML's samples are stamped in wall-clock µs: only those after this
  // vgpud started count (a restarted vgpud must not judge the GPU time of
  // its predecessor's leases).
  last_seen_us_.assign(tenants_.gpus().size(), unix_ns() / 1000);
  physical_.resize(tenants_.gpus().size());
  last_poll_ns_ = now_ns();
  hooks_.on_overrun([this](int32_t pid, int tenant, int gpu, uint64_t overrun) {
    lease_overrun(pid, tenant, gpu, overrun);
  });
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  loop_.add(timer_fd_, EPOLLIN, [this](uint32_t) {
    uint64_t expirations;
    while (read(timer_fd_, &expirations, sizeof expirations) > 0) {
    }
    poll();
  });
  arm();
}

Enforcement::~Enforcement() {
  hooks_.on_overrun(nullptr);
  if (probe_) loop_.remove(probe_->fd());
  if (timer_fd_ >= 0) {
    loop_.remove(timer_fd_);
    close(timer_fd_);
  }
}

void Enforcement::set_config(const EnforcementConfig& cfg) {
  cfg_ = cfg;
  backstop_.set_config(cfg);
  arm();
}

void Enforcement::arm() {
  itimerspec its{};
  its.it_interval.tv_sec = static_cast<time_t>(cfg_.poll_interval_ns / 1'000'000'000ull);
  its.it_interval.tv_nsec = static_cast<long>(cfg_.poll_interval_ns % 1'000'000'000ull);
  its.it_value = its.it_interval;
  timerfd_settime(timer_fd_, 0, &its, nullptr);
}

Observation Enforcement::observe(uint64_t now) {
  Observation o;
  o.now_ns = now;
  o.interval_ns = now - last_poll_ns_;
  last_poll_ns_ = now;
  o.registered = hooks_.registered();
  size_t gpus = tenants_.gpus().size();
  o.gpus.resize(gpus);
  for (size_t g = 0; g < gpus; ++g) {
    o.gpus[g] = reader_->read(tenants_.gpus()[g].index, &last_seen_us_[g]);
    physical_[g].clear();
    for (const ProcessSample& p : o.gpus[g]) physical_[g][p.pid] = p.memory;
  }
  for (Tenant* t : tenants_.all()) {
    TenantFacts f;
    f.name = t->config.name;
    f.policy = t->config.enforcement.value_or(cfg_.policy);
    for (size_t g = 0; g < gpus; ++g) {
      int gi = static_cast<int>(g);
      f.quota.push_back(t->allowed[g] ? t->config.memory : 0);
      uint64_t held = hooks_.held_ns(t->id, gi, now);
      uint64_t& before = held_before_[{t->id, gi}];
      f.held_ns.push_back(held >= before ? held - before : 0);
      before = held;
    }
    o.tenants[t->id] = std::move(f);
  }
  return o;
}

void Enforcement::poll() {
  uint64_t now = now_ns();
  forget_exited();
  Observation o = observe(now);
  for (const Verdict& v : backstop_.evaluate(o)) {
    if (v.penalty_ns) hooks_.charge_penalty(v.tenant, v.gpu, v.penalty_ns, now);
    if (v.act) act(v);
  }
}

void Enforcement::lease_overrun(int32_t pid, int tenant, int gpu, uint64_t overrun_ns) {
  Tenant* t = tenants_.by_id(tenant);
  Verdict v;
  v.pid = pid;
  v.tenant = tenant;
  v.gpu = gpu;
  v.reason = Reason::kLeaseOverrun;
  v.action = t ? t->config.enforcement.value_or(cfg_.policy) : cfg_.policy;
  v.detail = "did not give back a revoked lease of GPU " + std::to_string(gpu) + " for " +
             std::to_string(overrun_ns / 1'000'000) + " ms (charged to the tenant)";
  act(v);
}

void Enforcement::act(const Verdict& v) {
  if (v.action == EnforcePolicy::kReport) return record(v, "reported");
  std::string why;
  if (kill_process(v.pid, &why)) return record(v, "killed");
  Verdict failed = v;
  failed.detail += " (kill failed: " + why + ")";
  record(failed, "kill_failed");
}

void Enforcement::record(const Verdict& v, const std::string& action) {
  EnforcementEvent e;
  e.unix_ns = unix_ns();
  e.reason = v.reason;
  e.action = action;
  e.pid = v.pid;
  Tenant* t = v.tenant >= 0 ? tenants_.by_id(v.tenant) : nullptr;
  e.tenant = t ? t->config.name : "";
  e.gpu = v.gpu;
  e.detail = v.detail;
  log_warn("enforcement: %s pid %d%s%s (%s): %s", action.c_str(), v.pid, t ? " of tenant " : "",
           t ? t->config.name.c_str() : "", reason_name(v.reason), v.detail.c_str());
  ++counts_[{reason_name(v.reason), action, e.tenant}];
  events_.push_back(std::move(e));
  if (events_.size() > kMaxEvents) events_.pop_front();
}

uint64_t Enforcement::physical(int32_t pid, int gpu) const {
  if (gpu < 0 || static_cast<size_t>(gpu) >= physical_.size()) return 0;
  auto it = physical_[static_cast<size_t>(gpu)].find(pid);
  return it == physical_[static_cast<size_t>(gpu)].end() ? 0 : it->second;
}

Result<bool> Enforcement::start_probe(const std::string& driver_library) {
  if (cfg_.bpf == "off") return true;
  // Launch entry points only on request: a uprobe trap per launch is far too
  // dear on a hot path (docs/security.md); first calls and allocations are
  // what the backstop needs.
  auto probe = driver_library.empty() ? Result<std::unique_ptr<DriverProbe>>(make_error("no libcuda.so.1 found"))
                                      : DriverProbe::attach(driver_library, DriverProbeOptions{cfg_.bpf_launches});
  if (!probe) {
    probe_status_ = "unavailable: " + probe.error();
    if (cfg_.bpf == "required") return make_error("eBPF driver probe (enforcement.bpf: required): " + probe.error());
    log_warn("eBPF driver probe unavailable (%s); enforcing with the NVML backstop alone", probe.error().c_str());
    return true;
  }
  probe_ = std::move(probe).value();
  probe_status_ = "attached to " + driver_library;
  log_info("eBPF driver probe attached to %s", driver_library.c_str());
  loop_.add(probe_->fd(), EPOLLIN, [this](uint32_t) { on_probe(); });
  return true;
}

void Enforcement::on_probe() {
  uint64_t now = now_ns();
  bool allocated = false;
  auto registered = hooks_.registered();
  probe_->consume([&](const DriverEvent& e) {
    allocated |= e.kind == DriverEvent::Kind::kAlloc;
    if (!registered.count(e.pid)) backstop_.saw_driver_call(e.pid, e.ts_ns ? e.ts_ns : now);
  });
  // Someone allocated (unregistered, or registered and maybe past its quota):
  // look at the GPUs now rather than at the next poll (at most every 20 ms).
  if (allocated && now - last_poll_ns_ > 20'000'000) poll();
}

void Enforcement::forget_exited() {
  if (!probe_) return;
  for (auto& [pid, c] : probe_->counts())
    if (c.exit_ns) probe_->forget(pid);
}

}  // namespace vgpu::sched
