#include "hook_server.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "log.h"
#include "vgpu/fd_passing.h"
#include "unix_listener.h"

namespace vgpu::sched {

namespace {

// The lease epoch a process of `t` last launched under, from its record in
// the tenant-written ledger: it can only make the tenant's own lease look
// busier or idler, never grant anything. `slot` is vgpud's own copy.
uint32_t touched_epoch(const Tenant* t, int slot, int gpu) {
  if (slot < 0 || slot >= kShmMaxProcs || gpu < 0 || gpu >= kShmMaxDevices) return 0;
  return lease_epoch(t->shm.led->procs[slot].touched[gpu].load(std::memory_order_relaxed));
}

template <class M>
bool send_msg(int fd, const M& m, int pass_fd = -1) {
  return send_with_fd(fd, &m, sizeof m, pass_fd, MSG_NOSIGNAL | MSG_DONTWAIT);
}

const char* check_text(proto::Check c) {
  switch (c) {
    case proto::Check::kBadMagic: return "not a vgpu message";
    case proto::Check::kBadVersion: return "protocol version mismatch";
    case proto::Check::kBadType: return "unknown message type";
    case proto::Check::kBadSize: return "message of the wrong size";
    default: return "ok";
  }
}

}  // namespace

HookServer::HookServer(EventLoop& loop, TenantRegistry& tenants, const SchedulerConfig& cfg,
                       std::unique_ptr<IdentityResolver> identity, uint64_t revoke_deadline_ns,
                       const LimitsConfig& limits)
    : loop_(loop), tenants_(tenants), cfg_(cfg), identity_(std::move(identity)),
      revoke_deadline_ns_(std::min(revoke_deadline_ns, cfg.drain_timeout_ns)), admission_(limits) {
  uint64_t now = now_ns();
  gpus_.resize(tenants_.gpus().size());
  for (auto& g : gpus_) g.arbiter = std::make_unique<LeaseArbiter>(cfg_.quantum_ns, cfg_.window_ns, now);
  for (Tenant* t : tenants_.all()) tenant_added(t);
  loop_.on_timer([this] { on_timer(); });
}

void HookServer::set_scheduler(const SchedulerConfig& cfg, uint64_t revoke_deadline_ns) {
  cfg_ = cfg;
  revoke_deadline_ns_ = std::min(revoke_deadline_ns, cfg.drain_timeout_ns);
  uint64_t now = now_ns();
  for (auto& g : gpus_) g.arbiter->set_timing(cfg_.quantum_ns, cfg_.window_ns, now);
  for (size_t g = 0; g < gpus_.size(); ++g) run_gpu(static_cast<int>(g), now);
}

void HookServer::set_limits(const LimitsConfig& limits) {
  admission_.set_limits(limits);
  arm_timer();  // Hello deadlines may have moved
}

HookServer::~HookServer() {
  for (auto& [fd, c] : clients_) close(fd);
  for (auto& [id, s] : tenant_sockets_) {
    close(s.fd);
    unlink_if_ours(s.path, s.id);
  }
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink_if_ours(path_, path_id_);
  }
}

Result<bool> HookServer::listen(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return make_error("socket path too long: " + path);
  std::strcpy(addr.sun_path, path.c_str());
  std::string dir = path.substr(0, path.find_last_of('/'));
  if (!dir.empty()) mkdir(dir.c_str(), 0755);
  // A vgpud that is stopping keeps answering until it is gone (well under a
  // second); a restart waits for it rather than failing.
  if (!wait_for_no_listener(path, SOCK_SEQPACKET, std::chrono::seconds(3)))
    return make_error("another vgpud is already listening on " + path + " (still answering after 3 s)");
  // A stale socket of a dead vgpud is replaced. Any process may connect:
  // identity comes from its token.
  auto fd = listen_unix(path, SOCK_SEQPACKET, 0666, 512);
  if (!fd) return Error{fd.error()};
  listen_fd_ = *fd;
  path_ = path;
  path_id_ = socket_identity(path);
  loop_.add(listen_fd_, EPOLLIN, [this](uint32_t) { accept_clients(listen_fd_, -1); });
  return true;
}

Result<bool> HookServer::listen_tenant(int tenant_id, const std::string& path) {
  close_tenant_socket(tenant_id);
  // Mode 0666: the container's processes run as any uid; only the
  // allocation's container mounts the directory the socket is in.
  auto fd = listen_unix(path, SOCK_SEQPACKET, 0666, 64);
  if (!fd) return Error{fd.error()};
  int lfd = *fd;
  tenant_sockets_[tenant_id] = {lfd, path, socket_identity(path)};
  loop_.add(lfd, EPOLLIN, [this, lfd, tenant_id](uint32_t) { accept_clients(lfd, tenant_id); });
  return true;
}

void HookServer::close_tenant_socket(int tenant_id) {
  auto it = tenant_sockets_.find(tenant_id);
  if (it == tenant_sockets_.end()) return;
  loop_.remove(it->second.fd);
  close(it->second.fd);
  unlink_if_ours(it->second.path, it->second.id);
  tenant_sockets_.erase(it);
}

void HookServer::accept_clients(int listen_fd, int bound) {
  admission_.accept_all(listen_fd, now_ns(), [this, bound](int fd, const ucred& cred) {
    auto c = std::make_unique<ClientInfo>();
    c->fd = fd;
    c->bound_tenant = bound;
    c->peer = {cred.pid, cred.uid, cred.gid};
    clients_[fd] = std::move(c);
    loop_.add(fd, EPOLLIN | EPOLLRDHUP, [this, fd](uint32_t ev) { on_client(fd, ev); });
  });
  arm_timer();  // Hello deadlines
}

void HookServer::on_client(int fd, uint32_t events) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  // One message per readiness while the peer is there: epoll is
  // level-triggered and reports the socket again if more is queued, so the
  // usual single message costs one recv, not a second that says EAGAIN.
  // A peer that hung up is read to the end before it is dropped.
  bool hangup = (events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) != 0;
  for (;;) {
    char buf[proto::kMaxMessage + 1];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      if (!admission_.allow_message(fd, now_ns())) return drop(fd, "message flood (limits.messages_per_second)");
      dispatch(*it->second, buf, static_cast<size_t>(n));
      if (!clients_.count(fd)) return;  // dropped while handling
      if (!hangup) return;
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) return drop(fd, "");
    break;
  }
  if (events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) drop(fd, "");
}

void HookServer::refuse(ClientInfo& c, const std::string& reason) {
  auto m = proto::make<proto::Refused>();
  std::snprintf(m.reason, sizeof m.reason, "%s", reason.c_str());
  send_msg(c.fd, m);
}

void HookServer::dispatch(ClientInfo& c, const char* buf, size_t n) {
  proto::Check check = proto::check(buf, n);
  if (check == proto::Check::kBadVersion) {
    const auto* h = reinterpret_cast<const proto::Header*>(buf);
    refuse(c, "protocol version " + std::to_string(h->version) + " is not supported; vgpud speaks version " +
                  std::to_string(proto::kVersion));
  }
  if (check != proto::Check::kOk) return drop(c.fd, check_text(check));
  auto type = static_cast<proto::Type>(reinterpret_cast<const proto::Header*>(buf)->type);
  if (type != proto::Type::kHello && c.tenant < 0) return drop(c.fd, "message before Hello");
  switch (type) {
    case proto::Type::kHello: return on_hello(c, *reinterpret_cast<const proto::Hello*>(buf));
    case proto::Type::kLeaseRequest: return on_lease_request(c, *reinterpret_cast<const proto::LeaseRequest*>(buf));
    case proto::Type::kLeaseReturn: return on_lease_return(c, *reinterpret_cast<const proto::LeaseReturn*>(buf));
    default: return drop(c.fd, "unexpected message type");
  }
}

void HookServer::on_hello(ClientInfo& c, const proto::Hello& m) {
  if (c.tenant >= 0) return drop(c.fd, "second Hello");
  auto tenant = c.bound_tenant >= 0 ? resolve_bound_socket(m, tenants_.by_id(c.bound_tenant), tenants_)
                                    : identity_->resolve(c.peer, m, tenants_);
  if (!tenant) {
    // Not logged per attempt: the resolver counts failed tokens and logs them
    // rate-limited (a flood of bad Hellos must not flood the log).
    refuse(c, tenant.error());
    return drop(c.fd, "");
  }
  Tenant* t = *tenant;
  int slot = tenant_shm_claim(t->shm.ctl, t->slot_taken, c.peer.pid);
  if (slot < 0) {
    refuse(c, "tenant '" + t->config.name + "' has too many processes");
    return drop(c.fd, "");
  }
  c.tenant = t->id;
  c.slot = slot;
  admission_.registered(c.fd);
  auto w = proto::make<proto::Welcome>();
  std::snprintf(w.tenant, sizeof w.tenant, "%s", t->config.name.c_str());
  w.slot = static_cast<uint32_t>(slot);
  w.device_count = static_cast<uint32_t>(tenants_.gpus().size());
  w.quantum_ns = cfg_.quantum_ns;
  w.inflight_cap = cfg_.inflight_cap;
  int fds[2] = {t->control_fd, t->ledger_fd};
  if (!send_with_fds(c.fd, &w, sizeof w, fds, 2, MSG_NOSIGNAL | MSG_DONTWAIT)) return drop(c.fd, "cannot send Welcome");
  log_info("pid %d registered as tenant '%s'%s", c.peer.pid, t->config.name.c_str(), m.reconnect ? " (reconnect)" : "");
}

void HookServer::on_lease_request(ClientInfo& c, const proto::LeaseRequest& m) {
  if (m.device >= gpus_.size()) return drop(c.fd, "lease request for an unknown GPU");
  if (note_request(c, m.device)) run_gpu(static_cast<int>(m.device), now_ns());
}

// Queues the client's tenant for the GPU; false if it already was.
bool HookServer::note_request(ClientInfo& c, uint32_t device) {
  // A flood of requests for a lease already asked for costs one lookup.
  if (c.waiting[device] && gpus_[device].arbiter->waiting(c.tenant)) return false;
  c.waiting[device] = true;
  gpus_[device].arbiter->request(c.tenant);
  return true;
}

void HookServer::on_lease_return(ClientInfo& c, const proto::LeaseReturn& m) {
  if (m.device >= gpus_.size()) return drop(c.fd, "lease return for an unknown GPU");
  GpuLeaseState& g = gpus_[m.device];
  int gpu = static_cast<int>(m.device);
  // A drained process whose launches wait again folds its LeaseRequest into
  // the return (one message and one wake-up less per handover). Queued before
  // the drain ends, so the next holder's lease stays contended throughout.
  bool asked = (m.flags & proto::kReturnWants) && !(m.flags & proto::kReturnIdle) && note_request(c, m.device);
  if (auto late = g.overdue.find(c.fd); late != g.overdue.end()) {
    // The lease was taken by force meanwhile: the overrun is paid for.
    uint64_t now = now_ns();
    charge_penalty(late->second.first, gpu, now - late->second.second, now);
    g.overdue.erase(late);
    return;  // charge_penalty decided again, with the request
  }
  if (g.draining.erase(c.fd)) {
    if (g.draining.empty()) finish_drain(gpu, now_ns());
    else if (asked) run_gpu(gpu, now_ns());
    return;
  }
  if (asked) run_gpu(gpu, now_ns());
  // Unasked: this process has nothing queued under a contended lease. When
  // all of the holder's processes say so, the lease goes back early.
  Tenant* t = tenants_.by_id(c.tenant);
  if (!(m.flags & proto::kReturnIdle) || !t || g.holder != c.tenant) return;
  g.idle[c.fd] = static_cast<uint32_t>(m.epoch);
  uint64_t now = now_ns();
  if (holder_all_idle(gpu, t) && g.arbiter->release_holder(now).kind == Action::kRevoke) {
    revoke(gpu, t, now);
    run_gpu(gpu, now);
  }
}

bool HookServer::holder_all_idle(int gpu, Tenant* t) const {
  const GpuLeaseState& g = gpus_[static_cast<size_t>(gpu)];
  for (auto& [fd, c] : clients_) {
    if (c->tenant != t->id) continue;
    uint32_t touched = touched_epoch(t, c->slot, gpu);
    if (touched < g.grant_epoch) continue;  // did not launch under this lease
    auto it = g.idle.find(fd);
    if (it == g.idle.end() || it->second < touched) return false;  // launched after its report
  }
  return true;
}

void HookServer::drop(int fd, const std::string& why) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  std::unique_ptr<ClientInfo> c = std::move(it->second);
  clients_.erase(it);
  loop_.remove(fd);
  close(fd);
  admission_.closed(fd, c->peer.uid);
  if (!why.empty()) log_warn("dropped pid %d: %s", c->peer.pid, why.c_str());
  if (c->tenant < 0) return;
  Tenant* t = tenants_.by_id(c->tenant);
  // The record's charges leave the tenant's usage at the next locker's repair:
  // vgpud never takes a lock a tenant can hold.
  if (t) tenant_shm_free(t->shm.ctl, t->slot_taken, c->slot);
  uint64_t now = now_ns();
  for (size_t g = 0; g < gpus_.size(); ++g) {
    bool still_waiting = false;
    for (auto& [ofd, o] : clients_)
      if (o->tenant == c->tenant && o->waiting[g]) still_waiting = true;
    if (c->waiting[g] && !still_waiting) gpus_[g].arbiter->cancel(c->tenant);
    gpus_[g].overdue.erase(fd);
    bool was_draining = gpus_[g].draining.erase(fd) > 0;
    if (was_draining && gpus_[g].draining.empty()) finish_drain(static_cast<int>(g), now);
    // The holder's last process is gone: take the lease back now.
    if (t && gpus_[g].holder == c->tenant && !holder_active(static_cast<int>(g), t)) {
      bool any = false;
      for (auto& [ofd, o] : clients_) any |= o->tenant == c->tenant;
      if (!any) {
        Action a = gpus_[g].arbiter->release_holder(now);
        if (a.kind == Action::kRevoke) revoke(static_cast<int>(g), t, now);
      } else {
        // Others of the tenant stay: they may not launch at all. The quantum's
        // check would find that late; the early check finds it at once.
        gpus_[g].check_at = std::min(gpus_[g].check_at, now + idle_check_interval(static_cast<int>(g)));
      }
    }
    run_gpu(static_cast<int>(g), now);
  }
}

// --- leases ---------------------------------------------------------------

void HookServer::run_gpu(int gpu, uint64_t now) {
  GpuLeaseState& g = gpus_[static_cast<size_t>(gpu)];
  for (int guard = 0; guard < 8; ++guard) {
    Action a = g.arbiter->tick(now);
    Tenant* t = a.tenant >= 0 ? tenants_.by_id(a.tenant) : nullptr;
    if (a.kind == Action::kGrant && t) {
      grant(gpu, t, now);
      break;
    }
    if (a.kind == Action::kRevoke && t) {
      revoke(gpu, t, now);
      keep_blocked_request(gpu, t);
      continue;  // decide again: the next holder may be granted during the drain
    }
    if (a.kind == Action::kRevoke && !t) {  // tenant deleted meanwhile
      g.arbiter->drained(a.tenant, now);
      continue;
    }
    break;
  }
  update_contention(gpu, now);
  arm_timer();
}

// After a revoke the arbiter decided (quantum end, cap, preemption): launches
// of the tenant still blocked on the lease word (the hook counts them) keep
// its request. A grant can come and go before they wake (a cap reached at
// once, a preemption), and they asked only once: without this they waited
// for their next reminder. The count is written by the tenant: faking it only
// queues the tenant, as LeaseRequests would. Not after an idle check's
// revoke: blocked processes that did not launch during a whole quantum
// (stopped, say) are not owed another grant.
void HookServer::keep_blocked_request(int gpu, Tenant* t) {
  if (t->shm.led->lease_stats[gpu].waiting.load(std::memory_order_relaxed) == 0) return;
  for (auto& [fd, c] : clients_)
    if (c->tenant == t->id) c->waiting[gpu] = true;
  gpus_[static_cast<size_t>(gpu)].arbiter->request(t->id);
}

uint64_t HookServer::idle_check_interval(int gpu) const {
  return contention(gpu) ? std::min(cfg_.quantum_ns, cfg_.idle_check_ns) : cfg_.quantum_ns;
}

// Someone else wants the GPU: a waiting tenant, or the revoked holder still
// draining (granted during its drain, the next holder must be throttled from
// its first launch: the revoked one asks again only after its drain).
bool HookServer::contention(int gpu) const {
  const GpuLeaseState& g = gpus_[static_cast<size_t>(gpu)];
  return g.arbiter->anyone_waiting() || g.draining_tenant >= 0;
}

void HookServer::update_contention(int gpu, uint64_t now) {
  GpuLeaseState& g = gpus_[static_cast<size_t>(gpu)];
  Tenant* t = g.holder >= 0 ? tenants_.by_id(g.holder) : nullptr;
  if (!t) return;
  LeaseWord& w = t->shm.ctl->leases[gpu];
  uint32_t s = w.state.load();
  bool contended = contention(gpu);
  if (!lease_granted(s) || contended == ((s & kLeaseContended) != 0)) return;
  w.state.store(contended ? (s | kLeaseContended) : (s & ~kLeaseContended), std::memory_order_release);
  if (contended) g.check_at = std::min(g.check_at, now + idle_check_interval(gpu));
}

void HookServer::grant(int gpu, Tenant* t, uint64_t now) {
  GpuLeaseState& g = gpus_[static_cast<size_t>(gpu)];
  LeaseWord& w = t->shm.ctl->leases[gpu];
  uint32_t epoch = lease_epoch(w.state.load()) + 1;
  g.holder = t->id;
  g.grant_epoch = epoch;
  g.idle.clear();
  // Processes of the tenant blocked on the lease word launch the moment it is
  // granted and then report idle themselves: the early check (a holder that
  // launches nothing goes back after idle_check) is for a grant nobody is
  // waiting for, and costs a wake-up per handover. The count is written by
  // the tenant: one that fakes it keeps an unused lease for at most its
  // quantum, charged to itself.
  bool blocked = t->shm.led->lease_stats[gpu].waiting.load(std::memory_order_relaxed) > 0;
  g.check_at = now + (blocked ? cfg_.quantum_ns : idle_check_interval(gpu));
  for (auto& [fd, c] : clients_)
    if (c->tenant == t->id) c->waiting[gpu] = false;
  // The contended bit goes out with the grant: the holder's first launches
  // must already be throttled (and reported idle) if others wait.
  uint32_t contended = contention(gpu) ? kLeaseContended : 0;
  w.state.store((epoch << kLeaseEpochShift) | kLeaseGranted | contended, std::memory_order_release);
  lease_wake_all(&w);
}

bool HookServer::holder_active(int gpu, Tenant* t) const {
  // A process of the holder launched since the last check (its touched word
  // carries the lease word's current epoch).
  uint32_t state = t->shm.ctl->leases[gpu].state.load();
  for (auto& [fd, c] : clients_)
    if (c->tenant == t->id && touched_epoch(t, c->slot, gpu) == lease_epoch(state)) return true;
  return false;
}

void HookServer::revoke(int gpu, Tenant* t, uint64_t now) {
  GpuLeaseState& g = gpus_[static_cast<size_t>(gpu)];
  LeaseWord& w = t->shm.ctl->leases[gpu];
  uint32_t state = w.state.load();
  w.state.store(state & ~(kLeaseGranted | kLeaseContended), std::memory_order_release);
  // The holder becomes the draining tenant; the next one may be granted
  // before the drain ends (overlapped handover, LeaseArbiter).
  g.draining_tenant = t->id;
  g.draining_epoch = g.grant_epoch;
  g.holder = -1;
  g.idle.clear();
  g.draining.clear();
  for (auto& [fd, c] : clients_) {
    if (c->tenant != t->id) continue;
    if (touched_epoch(t, c->slot, gpu) < g.draining_epoch) continue;  // did not launch under this lease
    auto m = proto::make<proto::Revoke>();
    m.device = static_cast<uint32_t>(gpu);
    m.epoch = lease_epoch(state);
    if (send_msg(fd, m)) g.draining.insert(fd);
  }
  g.drain_deadline = now + revoke_deadline_ns_;
  if (g.draining.empty()) finish_drain(gpu, now);
}

// A revoked holder kept the lease past revoke + revoke_deadline: the next
// tenant gets the GPU now. The holder is charged until now; its processes that
// still have not answered pay the rest when they do, and one that never does
// by drain_timeout is an offence for the backstop's policy.
void HookServer::force_end(int gpu, uint64_t now) {
  GpuLeaseState& g = gpus_[static_cast<size_t>(gpu)];
  for (int fd : g.draining) g.overdue[fd] = {g.draining_tenant, now};
  g.overdue_deadline = now + cfg_.drain_timeout_ns;
  log_warn("GPU %d: tenant %d did not give back a revoked lease within %llu ms; taken by force", gpu, g.draining_tenant,
           static_cast<unsigned long long>(revoke_deadline_ns_ / 1'000'000));
  finish_drain(gpu, now);
}

void HookServer::check_overdue(int gpu, uint64_t now) {
  GpuLeaseState& g = gpus_[static_cast<size_t>(gpu)];
  if (g.overdue.empty() || now < g.overdue_deadline) return;
  for (auto& [fd, late] : g.overdue) {
    auto c = clients_.find(fd);
    if (c == clients_.end()) continue;
    charge_penalty(late.first, gpu, now - late.second, now);
    if (on_overrun_) on_overrun_(c->second->peer.pid, late.first, gpu, now - late.second);
  }
  g.overdue.clear();
}

uint64_t HookServer::held_ns(int tenant, int gpu, uint64_t now) const {
  return gpus_[static_cast<size_t>(gpu)].arbiter->held_ns(tenant, now);
}

void HookServer::charge_penalty(int tenant, int gpu, uint64_t ns, uint64_t now) {
  if (gpu < 0 || static_cast<size_t>(gpu) >= gpus_.size() || ns == 0) return;
  gpus_[static_cast<size_t>(gpu)].arbiter->charge(tenant, ns, now);
  run_gpu(gpu, now);
}

std::map<int32_t, int> HookServer::registered() const {
  std::map<int32_t, int> out;
  for (auto& [fd, c] : clients_)
    if (c->tenant >= 0) out[c->peer.pid] = c->tenant;
  return out;
}

void HookServer::finish_drain(int gpu, uint64_t now) {
  GpuLeaseState& g = gpus_[static_cast<size_t>(gpu)];
  if (g.draining_tenant < 0) return;
  g.arbiter->drained(g.draining_tenant, now);
  g.draining_tenant = -1;
  g.draining.clear();
  // The next holder's lease starts now: its idle check counts from here. If
  // its processes all said "idle" during the drain, it goes back at once.
  if (Tenant* h = g.holder >= 0 ? tenants_.by_id(g.holder) : nullptr) {
    g.check_at = std::max(g.check_at, now + idle_check_interval(gpu));
    if (!g.idle.empty() && holder_all_idle(gpu, h) && g.arbiter->release_holder(now).kind == Action::kRevoke)
      revoke(gpu, h, now);
  }
  run_gpu(gpu, now);
}

void HookServer::on_timer() {
  uint64_t now = now_ns();
  for (int fd : admission_.expired(now)) drop(fd, "");  // no Hello within limits.hello_timeout
  for (size_t i = 0; i < gpus_.size(); ++i) {
    GpuLeaseState& g = gpus_[i];
    int gpu = static_cast<int>(i);
    // Only a GPU whose deadline came: the others' state has not changed since
    // their last event (each GPU's decisions are time-driven only through
    // these deadlines), and deciding for every GPU at every expiry was most
    // of vgpud's user time with 8 contended GPUs.
    // A quantum ending soon ends now (LeaseArbiter::coalesce_ns): one wake-up
    // for the handovers of several GPUs.
    if (next_deadline(g) > now + g.arbiter->coalesce_ns()) continue;
    check_overdue(gpu, now);
    if (g.draining_tenant >= 0 && !g.draining.empty() && now >= g.drain_deadline) {
      force_end(gpu, now);
      continue;
    }
    Tenant* t = g.holder >= 0 ? tenants_.by_id(g.holder) : nullptr;
    if (t && !g.arbiter->draining() && now >= g.check_at) {
      if (!holder_active(gpu, t)) {
        // Nobody launched under the lease for a quantum: take it back.
        if (g.arbiter->release_holder(now).kind == Action::kRevoke) revoke(gpu, t, now);
      } else {
        // Renew with a new epoch, so the next check sees fresh launches only.
        // It launched under this lease: from here its processes report idle
        // themselves (the hook's idle watcher, unasked), so the backstop
        // checks once a quantum -- not every idle_check, which with many
        // contended GPUs was most of vgpud's CPU (8 GPUs x 8 saturating
        // tenants: 21 % of a core against 7 %).
        LeaseWord& w = t->shm.ctl->leases[gpu];
        w.state.store(w.state.load() + (1u << kLeaseEpochShift), std::memory_order_release);
        g.check_at = now + cfg_.quantum_ns;
      }
    }
    run_gpu(gpu, now);
  }
  arm_timer();
}

// The earliest time at which the GPU's state needs the timer: the arbiter's
// next decision, the holder's check, a drain's or an overrun's deadline.
uint64_t HookServer::next_deadline(const GpuLeaseState& g) const {
  uint64_t when = g.arbiter->next_tick();
  if (g.holder >= 0 && g.draining_tenant < 0) when = std::min(when, g.check_at);
  if (!g.draining.empty()) when = std::min(when, g.drain_deadline);
  if (!g.overdue.empty()) when = std::min(when, g.overdue_deadline);
  return when;
}

void HookServer::arm_timer() {
  uint64_t when = admission_.next_deadline();
  for (auto& g : gpus_) when = std::min(when, next_deadline(g));
  loop_.set_timer(when);
}

// --- tenants ----------------------------------------------------------------

void HookServer::tenant_added(Tenant* t) { tenant_changed(t); }

void HookServer::tenant_changed(Tenant* t) {
  TenantPolicy p{t->config.priority, t->config.request, t->config.limit};
  for (size_t g = 0; g < gpus_.size(); ++g) {
    if (t->allowed[g]) gpus_[g].arbiter->set_policy(t->id, p);
    else gpus_[g].arbiter->remove(t->id);
  }
  uint64_t now = now_ns();
  for (size_t g = 0; g < gpus_.size(); ++g) run_gpu(static_cast<int>(g), now);
}

void HookServer::tenant_removing(Tenant* t) {
  // The lease goes at once (no drain: the tenant is no longer owed anything),
  // then every process is told why before it is disconnected.
  t->deleted = true;
  close_tenant_socket(t->id);
  t->shm.ctl->status.store(static_cast<uint32_t>(TenantStatus::kDeleted), std::memory_order_release);
  for (size_t g = 0; g < gpus_.size(); ++g) {
    if (gpus_[g].holder == t->id) {
      gpus_[g].holder = -1;
      gpus_[g].idle.clear();
    }
    if (gpus_[g].draining_tenant == t->id) {
      gpus_[g].draining_tenant = -1;
      gpus_[g].draining.clear();
    }
    gpus_[g].arbiter->remove(t->id);
    t->shm.ctl->devices[g].limit.store(0, std::memory_order_release);
    t->shm.ctl->leases[g].state.store(0, std::memory_order_release);
    lease_wake_all(&t->shm.ctl->leases[g]);
  }
  std::vector<int> fds;
  for (auto& [fd, c] : clients_)
    if (c->tenant == t->id) fds.push_back(fd);
  for (int fd : fds) {
    refuse(*clients_[fd], "tenant '" + t->config.name +
                              "' was deleted: this process has no GPU memory or time any more");
    drop(fd, "");
  }
  uint64_t now = now_ns();
  for (size_t g = 0; g < gpus_.size(); ++g) run_gpu(static_cast<int>(g), now);
}

double HookServer::share(int tenant, int gpu, uint64_t now) const {
  return gpus_[static_cast<size_t>(gpu)].arbiter->share(tenant, now);
}


}  // namespace vgpu::sched
