#include "admission.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "log.h"
#include "unix_listener.h"

namespace vgpu::sched {

namespace {
constexpr uint64_t kWarnEveryNs = 10'000'000'000;
}

Admission::Admission(const LimitsConfig& limits) : limits_(limits) {
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

Admission::~Admission() {
  if (reserve_fd_ >= 0) close(reserve_fd_);
}

void Admission::warn(uint64_t now, const char* what) {
  if (last_warning_ns_ && now - last_warning_ns_ < kWarnEveryNs) return;
  last_warning_ns_ = now;
  log_warn("hook socket: %s (%llu connections refused so far)", what, static_cast<unsigned long long>(refused_));
}

void Admission::accept_all(int listen_fd, uint64_t now,
                           const std::function<void(int fd, const ucred& cred)>& admitted) {
  for (;;) {
    ucred cred;
    int fd = accept_with_credentials(listen_fd, &cred);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        shed(listen_fd, now);
        continue;
      }
      return;  // EAGAIN: nothing more pending (or a transient error)
    }
    if (!admit(fd, cred.uid, now)) {
      close(fd);
      continue;
    }
    admitted(fd, cred);
  }
}

void Admission::shed(int listen_fd, uint64_t now) {
  ++refused_;
  warn(now, "out of file descriptors: closing new connections");
  if (reserve_fd_ < 0) return;
  close(reserve_fd_);
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) close(fd);
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) errno = EAGAIN;  // stop this round; the loop calls again
}

bool Admission::admit(int fd, uid_t uid, uint64_t now) {
  size_t& mine = per_uid_[uid];
  if (total_ >= limits_.max_connections || mine >= limits_.max_connections_per_uid) {
    ++refused_;
    if (mine == 0) per_uid_.erase(uid);
    warn(now, total_ >= limits_.max_connections ? "connection limit reached (limits.max_connections)"
                                                : "a uid reached limits.max_connections_per_uid");
    return false;
  }
  ++mine;
  ++total_;
  pending_[fd] = now + limits_.hello_timeout_ns;
  order_.emplace_back(now + limits_.hello_timeout_ns, fd);
  buckets_[fd] = {static_cast<double>(limits_.messages_per_second), now};
  return true;
}

void Admission::set_limits(const LimitsConfig& limits) {
  uint64_t before = limits_.hello_timeout_ns, after = limits.hello_timeout_ns;
  limits_ = limits;
  if (before == after) return;
  // Every pending deadline moves by the same amount, so they stay in
  // arrival order (order_ relies on it).
  order_.clear();
  for (auto& [fd, deadline] : pending_) {
    uint64_t arrived = deadline > before ? deadline - before : 0;
    deadline = arrived + after;
    order_.emplace_back(deadline, fd);
  }
  std::sort(order_.begin(), order_.end());
}

void Admission::closed(int fd, uid_t uid) {
  pending_.erase(fd);
  buckets_.erase(fd);
  auto it = per_uid_.find(uid);
  if (it == per_uid_.end()) return;
  if (--it->second == 0) per_uid_.erase(it);
  if (total_) --total_;
}

void Admission::drop_stale() const {
  while (!order_.empty()) {
    auto it = pending_.find(order_.front().second);
    if (it != pending_.end() && it->second == order_.front().first) return;
    order_.pop_front();  // registered, closed, or the fd was reused
  }
}

std::vector<int> Admission::expired(uint64_t now) {
  std::vector<int> out;
  for (drop_stale(); !order_.empty() && order_.front().first <= now; drop_stale()) {
    out.push_back(order_.front().second);
    order_.pop_front();
  }
  return out;
}

uint64_t Admission::next_deadline() const {
  drop_stale();
  return order_.empty() ? UINT64_MAX : order_.front().first;
}

bool Admission::allow_message(int fd, uint64_t now) {
  auto it = buckets_.find(fd);
  if (it == buckets_.end()) return true;
  Bucket& b = it->second;
  double rate = static_cast<double>(limits_.messages_per_second);
  b.tokens = std::min(rate, b.tokens + rate * static_cast<double>(now - b.at) / 1e9);
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

}  // namespace vgpu::sched
