// Admission: what one local user can make vgpud spend on the hook socket.
//
// Anyone on the node can connect to the hook socket (identity comes later,
// from a token), so connections are bounded before anything else happens:
//  * at most `max_connections` in all and `max_connections_per_uid` per uid
//    (SO_PEERCRED): a connection over a cap is closed at once;
//  * a connection that has not registered within `hello_timeout` is closed,
//    so idle connections cannot pile up;
//  * each connection may send `messages_per_second` messages (token bucket,
//    one second of burst); a flooding client is dropped;
//  * a reserve descriptor is kept open, so when vgpud runs out of file
//    descriptors (EMFILE) it can still accept and close the pending
//    connection instead of spinning on a listening socket that stays readable.
// Not thread-safe: vgpud's event loop.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <vector>

#include "config.h"

namespace vgpu::sched {

class Admission {
 public:
  explicit Admission(const LimitsConfig& limits);
  ~Admission();

  // Accepts every pending connection of `listen_fd`; calls `admitted(fd, cred)`
  // for each one within the caps (the others are closed).
  void accept_all(int listen_fd, uint64_t now, const std::function<void(int fd, const ucred& cred)>& admitted);
  // A connection admitted at `now` ended.
  void closed(int fd, uid_t uid);
  // The connection registered: no Hello deadline any more.
  void registered(int fd) { pending_.erase(fd); }
  // Connections past their Hello deadline at `now` (to be dropped by the caller).
  std::vector<int> expired(uint64_t now);
  // Earliest Hello deadline, UINT64_MAX if none.
  uint64_t next_deadline() const;
  // Counts a message of `fd`; false if it exceeds its rate.
  bool allow_message(int fd, uint64_t now);

  uint64_t refused_total() const { return refused_; }
  const LimitsConfig& limits() const { return limits_; }
  // New limits (a reload), from now on: the caps apply to connections
  // accepted from now on (connections already admitted above a lowered cap
  // stay); a connection still waiting for its Hello gets the new
  // hello_timeout counted from its arrival; the message rate applies to
  // every connection at its next message (a bucket never holds more than
  // one second of the new rate).
  void set_limits(const LimitsConfig& limits);

 private:
  bool admit(int fd, uid_t uid, uint64_t now);
  // accept() failed with EMFILE/ENFILE: accept and close one with the reserve.
  void shed(int listen_fd, uint64_t now);
  void warn(uint64_t now, const char* what);

  LimitsConfig limits_;
  size_t total_ = 0;
  std::map<uid_t, size_t> per_uid_;
  std::map<int, uint64_t> pending_;  // fd -> Hello deadline
  // The same deadlines in the order they fall (one timeout for all, so
  // arrival order); entries no longer pending are skipped lazily. Keeps
  // next_deadline() O(1) on the loop's every timer re-arm.
  mutable std::deque<std::pair<uint64_t, int>> order_;
  void drop_stale() const;
  struct Bucket {
    double tokens;
    uint64_t at;
  };
  std::map<int, Bucket> buckets_;
  int reserve_fd_ = -1;
  uint64_t refused_ = 0;
  uint64_t last_warning_ns_ = 0;
};

}  // namespace vgpu::sched
