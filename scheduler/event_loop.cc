#include "event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>

namespace vgpu::sched {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

EventLoop::EventLoop(bool pwait2)
    : pwait2_(pwait2), epfd_(epoll_create1(EPOLL_CLOEXEC)), timerfd_(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) {
  add(timerfd_, EPOLLIN, [this](uint32_t) {
    uint64_t expirations;  // one read takes every expiration
    if (read(timerfd_, &expirations, sizeof expirations) < 0) {
    }
    armed_ = 0;
    if (wanted_ != 0 && wanted_ != UINT64_MAX && wanted_ <= now_ns()) wanted_ = 0;  // this expiry
    if (timer_fn_) timer_fn_();
  });
  wakefd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  add(wakefd_, EPOLLIN, [this](uint32_t) {
    uint64_t n;
    while (read(wakefd_, &n, sizeof n) > 0) {
    }
    std::vector<std::function<void()>> work;
    {
      std::lock_guard<std::mutex> g(posted_mu_);
      work.swap(posted_);
    }
    for (auto& fn : work) fn();
  });
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> g(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  if (write(wakefd_, &one, sizeof one) < 0) {
  }
}

bool EventLoop::call(const std::function<void()>& fn) {
  struct Done {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };
  auto d = std::make_shared<Done>();
  {
    std::lock_guard<std::mutex> g(posted_mu_);
    if (stopped_) return false;
  }
  post([d, &fn] {
    fn();
    std::lock_guard<std::mutex> g(d->mu);
    d->done = true;
    d->cv.notify_all();
  });
  std::unique_lock<std::mutex> l(d->mu);
  // A stopped loop runs nothing more: give up rather than wait forever.
  while (!d->cv.wait_for(l, std::chrono::milliseconds(200), [&] { return d->done; })) {
    std::lock_guard<std::mutex> g(posted_mu_);
    if (stopped_) return false;
  }
  return true;
}

EventLoop::~EventLoop() {
  close(wakefd_);
  close(timerfd_);
  close(epfd_);
}

void EventLoop::add(int fd, uint32_t events, Handler h) {
  handlers_[fd] = std::move(h);
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
}

void EventLoop::remove(int fd) {
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  handlers_.erase(fd);
}

void EventLoop::apply_timer() {
  uint64_t when_ns = wanted_ == UINT64_MAX ? 0 : wanted_;
  if (when_ns == armed_) return;
  armed_ = when_ns;
  itimerspec its{};
  if (when_ns != 0 && when_ns != UINT64_MAX) {
    its.it_value.tv_sec = static_cast<time_t>(when_ns / 1'000'000'000ull);
    its.it_value.tv_nsec = static_cast<long>(when_ns % 1'000'000'000ull);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
  }
  timerfd_settime(timerfd_, TFD_TIMER_ABSTIME, &its, nullptr);
}

// Waits for events until the timer's deadline. epoll_pwait2 takes the
// deadline as a nanosecond timeout, so a timer costs no syscall of its own;
// the timerfd (two syscalls per deadline: settime, read) is kept for kernels
// before 5.11 and seccomp profiles that refuse epoll_pwait2.
int EventLoop::wait(epoll_event* events, int max) {
  if (pwait2_) {
    uint64_t when = wanted_ == UINT64_MAX ? 0 : wanted_;
    timespec ts{}, *timeout = nullptr;
    if (when != 0) {
      uint64_t now = now_ns(), left = when > now ? when - now : 0;
      ts.tv_sec = static_cast<time_t>(left / 1'000'000'000ull);
      ts.tv_nsec = static_cast<long>(left % 1'000'000'000ull);
      timeout = &ts;
    }
    int n = epoll_pwait2(epfd_, events, max, timeout, nullptr);
    if (n >= 0 || (errno != ENOSYS && errno != EPERM)) return n;
    pwait2_ = false;  // not available here: the timerfd from now on
  }
  apply_timer();
  return epoll_wait(epfd_, events, max, -1);
}

void EventLoop::run() {
  running_ = true;
  epoll_event events[64];
  while (running_) {
    int n = wait(events, 64);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n && running_; ++i) {
      auto it = handlers_.find(events[i].data.fd);
      if (it == handlers_.end()) continue;  // removed by an earlier handler
      Handler h = it->second;              // the handler may remove itself
      h(events[i].events);
    }
    // The deadline passed (the wait timed out, or events ran past it).
    if (pwait2_ && running_ && wanted_ != 0 && wanted_ != UINT64_MAX && wanted_ <= now_ns()) {
      wanted_ = 0;
      if (timer_fn_) timer_fn_();
    }
  }
  std::lock_guard<std::mutex> g(posted_mu_);
  stopped_ = true;
}

}  // namespace vgpu::sched
