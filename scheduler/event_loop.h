// EventLoop: vgpud's single thread. epoll over file descriptors plus one
// precise timer (CLOCK_MONOTONIC, absolute: epoll_pwait2's timeout, or a
// timerfd where the kernel lacks epoll_pwait2). Handlers run on the
// loop thread; none may block. Not thread-safe, except post() and call(),
// which other threads (the admin API's) use to run work on the loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

struct epoll_event;

namespace vgpu::sched {

uint64_t now_ns();  // CLOCK_MONOTONIC

class EventLoop {
 public:
  using Handler = std::function<void(uint32_t events)>;
  // `pwait2`: false forces the timerfd (tests of the fallback path).
  explicit EventLoop(bool pwait2 = true);
  ~EventLoop();
  void add(int fd, uint32_t events, Handler h);
  void remove(int fd);
  // Arms the timer for absolute monotonic time `when` (replaces the previous;
  // 0 or UINT64_MAX: none). Takes effect before the loop next waits: a batch
  // of events that each move the deadline costs at most one timerfd_settime
  // (none with epoll_pwait2).
  void set_timer(uint64_t when_ns) { wanted_ = when_ns; }
  void on_timer(std::function<void()> fn) { timer_fn_ = std::move(fn); }
  void run();
  void stop() { running_ = false; }
  // Runs `fn` on the loop thread soon. Thread-safe.
  void post(std::function<void()> fn);
  // Runs `fn` on the loop thread and waits for it. Thread-safe; must not be
  // called from the loop thread. Returns false if the loop has stopped.
  bool call(const std::function<void()>& fn);

 private:
  bool pwait2_;  // epoll_pwait2's timeout; false: the timerfd (refused, or asked for)
  int epfd_;
  int timerfd_;
  bool running_ = false;
  std::map<int, Handler> handlers_;
  std::function<void()> timer_fn_;
  void apply_timer();
  int wait(::epoll_event* events, int max);
  uint64_t armed_ = 0;   // what the timerfd is set to (0: disarmed or fired)
  uint64_t wanted_ = 0;  // what set_timer() asked for
  int wakefd_;
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  bool stopped_ = false;
};

}  // namespace vgpu::sched
