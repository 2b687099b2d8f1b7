// EventLoop: vgpud's single thread. epoll over file descriptors plus one
// precise timer (timerfd, CLOCK_MONOTONIC, absolute). Handlers run on the
// loop thread; none may block. Not thread-safe except stop(), which may be
// called from a signal-safe context through a handler.
#pragma once

#include <cstdint>
#include <functional>
#include <map>

namespace vgpu::sched {

uint64_t now_ns();  // CLOCK_MONOTONIC

class EventLoop {
 public:
  using Handler = std::function<void(uint32_t events)>;
  EventLoop();
  ~EventLoop();
  void add(int fd, uint32_t events, Handler h);
  void remove(int fd);
  // Arms the timer for absolute monotonic time `when` (replaces the previous).
  void set_timer(uint64_t when_ns);
  void on_timer(std::function<void()> fn) { timer_fn_ = std::move(fn); }
  void run();
  void stop() { running_ = false; }

 private:
  int epfd_;
  int timerfd_;
  bool running_ = false;
  std::map<int, Handler> handlers_;
  std::function<void()> timer_fn_;
  uint64_t armed_ = 0;
};

}  // namespace vgpu::sched
