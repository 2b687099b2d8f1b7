// TokenResolver: refusals carry the reason; a client hammering wrong tokens
// produces counted log lines at most once per interval, not one per attempt.
#include <gtest/gtest.h>

#include <cstring>

#include "identity.h"

namespace vgpu::sched {
namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(SchedIdentity, FailedAttemptsAreLoggedRateLimited) {
  TenantRegistry tenants({});
  TokenResolver r;
  Peer peer{.pid = 4711, .uid = 1234, .gid = 1234};
  auto hello = proto::make<proto::Hello>();
  std::snprintf(hello.token, sizeof hello.token, "%s", "guess-0000000000000");
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 1000; ++i) {
    auto t = r.resolve(peer, hello, tenants);
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error(), "invalid VGPU_TOKEN");
  }
  hello.token[0] = '\0';
  auto none = r.resolve(peer, hello, tenants);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("no VGPU_TOKEN"), std::string::npos);
  std::string log = ::testing::internal::GetCapturedStderr();
  // The first attempt is reported at once; the other 1000 wait for the interval.
  EXPECT_EQ(count(log, "failed token attempt"), 1u) << log;
  EXPECT_NE(log.find("uid 1234 (pid 4711)"), std::string::npos) << log;
}

}  // namespace
}  // namespace vgpu::sched
