// The drain of a revoked lease (issue 9, libhook/stream_drain.h): while the
// holder has a GLOBAL capture open on a blocking stream and a long kernel
// queued on a non-blocking stream, another tenant contends and vgpud revokes
// the holder's lease. The drain must leave the capture intact (a context sync
// would be refused and invalidate it) and still wait for the queued kernel, so
// the other tenant is granted only after that kernel finished. Parameters:
// the captured stream's kind and where the long kernel is queued — a
// non-blocking or blocking created stream while a blocking stream captures
// (the legacy stream cannot be used: each stream gets its own event), the
// legacy or a per-thread default stream while a non-blocking stream captures
// (one event on the legacy stream covers them).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <utility>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::program;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;

// The number after "key=" in text; 0 if absent.
unsigned long long field(const std::string& text, const std::string& key) {
  auto at = text.find(key + "=");
  return at == std::string::npos ? 0 : std::strtoull(text.c_str() + at + key.size() + 1, nullptr, 10);
}

class VgpudDrain : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(VgpudDrain, RevokeDuringAGlobalCaptureWaitsForQueuedWorkAndKeepsTheCapture) {
  auto [capture_kind, work_kind] = GetParam();
  // Deadlines far above the kernel: the next tenant may only be granted when
  // the holder's drain has answered, never by force. (vgpud grants the next
  // tenant early only once it knows how long this holder's busy drains take;
  // this is the holder's first.)
  VgpudFixture f(
      "  - {name: holder, token: holder-token-000001, memory: 1Gi, compute: {request: 50%}}\n"
      "  - {name: contender, token: contender-token-0001, memory: 1Gi, compute: {request: 50%}}\n",
      {}, "scheduler: {quantum: 5ms, drain_timeout: 10s}\nenforcement: {revoke_deadline: 10s}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto holder =
      f.run({program("hook_drain_probe"), "holder", "1500", "300", capture_kind, work_kind}, "holder-token-000001");
  ASSERT_TRUE(wait_until([&] { return holder->output().find("launched rc=0") != std::string::npos; }, 30s))
      << holder->output() << holder->errors();
  auto contender = f.run({program("hook_drain_probe"), "contender"}, "contender-token-0001");
  EXPECT_EQ(contender->wait(60s), 0) << contender->output() << contender->errors();
  EXPECT_EQ(holder->wait(60s), 0) << holder->output() << holder->errors();

  std::string h = holder->output(), c = contender->output();
  EXPECT_NE(h.find("holder capture=0 graph=0"), std::string::npos) << h << holder->errors();
  unsigned long long kernel_end = field(h, "kernel_end");
  unsigned long long requested = field(c, "requested"), granted = field(c, "granted");
  ASSERT_GT(kernel_end, 0u) << h;
  ASSERT_GT(granted, 0u) << c;
  // The contender asked while the holder's kernel was still queued, so the
  // holder's lease was revoked (and drained) with the capture open...
  ASSERT_LT(requested, kernel_end) << "the contender started too late to contend: " << h << c;
  // ...and was granted only once the queued kernel had finished.
  EXPECT_GE(granted, kernel_end) << "granted " << (kernel_end - granted) / 1000 << " us before the holder's kernel ended";
}

INSTANTIATE_TEST_SUITE_P(Streams, VgpudDrain,
                         ::testing::Values(std::pair{"blocking", "nonblocking"}, std::pair{"blocking", "blocking"},
                                           std::pair{"nonblocking", "legacy"}, std::pair{"nonblocking", "per_thread"}),
                         [](const auto& info) {
                           return std::string("capture_") + info.param.first + "_work_" + info.param.second;
                         });

}  // namespace
