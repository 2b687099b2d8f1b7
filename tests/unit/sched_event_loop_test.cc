// EventLoop's timer, on both of its paths: epoll_pwait2's timeout and the
// timerfd fallback (kernels before 5.11, seccomp profiles that refuse
// epoll_pwait2). The timer never fires before its deadline, fires once per
// deadline, and a deadline moved by an event handler is the one that counts.
#include "event_loop.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vector>

namespace vgpu::sched {
namespace {

class EventLoopTimer : public ::testing::TestWithParam<bool> {};

TEST_P(EventLoopTimer, FiresAtItsDeadlinesInOrderAndNeverBefore) {
  EventLoop loop(GetParam());
  std::vector<uint64_t> fired, wanted;
  uint64_t start = now_ns();
  for (int i = 1; i <= 5; ++i) wanted.push_back(start + static_cast<uint64_t>(i) * 3'000'000);
  size_t next = 0;
  loop.on_timer([&] {
    fired.push_back(now_ns());
    if (++next < wanted.size()) loop.set_timer(wanted[next]);
    else loop.stop();
  });
  loop.set_timer(wanted[0]);
  loop.run();
  ASSERT_EQ(fired.size(), wanted.size());
  for (size_t i = 0; i < fired.size(); ++i) {
    EXPECT_GE(fired[i], wanted[i]) << "fired early, deadline " << i;
    EXPECT_LT(fired[i], wanted[i] + 500'000'000ull) << "fired very late, deadline " << i;
  }
}

TEST_P(EventLoopTimer, AnEventHandlerMovesTheDeadline) {
  EventLoop loop(GetParam());
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  uint64_t start = now_ns(), moved_to = 0, fired_at = 0;
  int fires = 0;
  loop.add(efd, EPOLLIN, [&](uint32_t) {
    uint64_t n;
    while (read(efd, &n, sizeof n) > 0) {
    }
    moved_to = now_ns() + 20'000'000;  // later than the first deadline
    loop.set_timer(moved_to);
  });
  loop.on_timer([&] {
    ++fires;
    fired_at = now_ns();
    loop.stop();
  });
  loop.set_timer(start + 10'000'000);
  uint64_t one = 1;
  ASSERT_EQ(write(efd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  loop.run();
  close(efd);
  EXPECT_EQ(fires, 1);
  EXPECT_GE(fired_at, moved_to) << "the replaced deadline fired";
}

TEST_P(EventLoopTimer, NoDeadlineMeansNoTimer) {
  EventLoop loop(GetParam());
  int fires = 0;
  loop.on_timer([&] { ++fires; });
  loop.set_timer(UINT64_MAX);
  loop.post([&] { loop.stop(); });
  loop.run();
  EXPECT_EQ(fires, 0);
}

INSTANTIATE_TEST_SUITE_P(Paths, EventLoopTimer, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "epoll_pwait2" : "timerfd"; });

}  // namespace
}  // namespace vgpu::sched
