#include "identity.h"

#include <cstring>

#include "event_loop.h"
#include "log.h"

namespace vgpu::sched {

Result<Tenant*> resolve_bound_socket(const proto::Hello& hello, Tenant* bound, TenantRegistry& tenants) {
  if (!bound || bound->deleted) return make_error("the tenant of this socket was deleted");
  size_t n = strnlen(hello.token, sizeof hello.token);
  if (n == 0) return bound;
  if (n < sizeof hello.token && tenants.by_token(std::string(hello.token, n)) == bound) return bound;
  // Not "token of tenant X": the answer never names other tenants.
  return make_error("this socket belongs to one tenant: a process connecting here is that tenant and may not "
                    "present another VGPU_TOKEN (unset VGPU_TOKEN)");
}

Result<Tenant*> TokenResolver::resolve(const Peer& peer, const proto::Hello& hello, TenantRegistry& tenants) {
  uint64_t now = now_ns();
  if (!failures_.empty() && now - last_log_ns_ >= kFailureLogInterval) flush(now);
  size_t n = strnlen(hello.token, sizeof hello.token);
  Error why{};
  if (n == 0) {
    why = make_error("no VGPU_TOKEN: this process has no tenant");
  } else if (n == sizeof hello.token) {
    why = make_error("malformed token");
  } else if (Tenant* t = tenants.by_token(std::string(hello.token, n))) {
    return t;
  } else {
    why = make_error("invalid VGPU_TOKEN");
  }
  note_failure(peer);
  // The first failure after a quiet interval is reported at once.
  if (!logged_once_ || now - last_log_ns_ >= kFailureLogInterval) flush(now);
  return why;
}

void TokenResolver::note_failure(const Peer& peer) {
  auto it = failures_.find(peer.uid);
  if (it == failures_.end() && failures_.size() >= kMaxUids) {
    ++other_uids_;
    return;
  }
  Failures& f = failures_[peer.uid];
  ++f.count;
  f.last_pid = peer.pid;
}

void TokenResolver::flush(uint64_t now) {
  double secs = static_cast<double>(now - last_log_ns_) / 1e9;
  if (!logged_once_ || secs > 2 * kFailureLogInterval / 1e9) {
    // After a quiet time: this attempt alone, at once.
    for (auto& [uid, f] : failures_)
      log_warn("failed token attempt from uid %u (pid %d); further ones are counted and reported at most every %llus",
               static_cast<unsigned>(uid), static_cast<int>(f.last_pid),
               static_cast<unsigned long long>(kFailureLogInterval / 1'000'000'000));
  } else {
    for (auto& [uid, f] : failures_)
      log_warn("%llu failed token attempt%s from uid %u (last pid %d) in the last %.0fs",
             static_cast<unsigned long long>(f.count), f.count == 1 ? "" : "s", static_cast<unsigned>(uid),
             static_cast<int>(f.last_pid), secs);
  }
  if (other_uids_)
    log_warn("%llu failed token attempts from further uids in the last %.0fs",
             static_cast<unsigned long long>(other_uids_), secs);
  failures_.clear();
  other_uids_ = 0;
  last_log_ns_ = now;
  logged_once_ = true;
}

}  // namespace vgpu::sched
