// TokenResolver: refusals carry the reason; a client hammering wrong tokens
// produces counted log lines at most once per interval, not one per attempt.
#include <gtest/gtest.h>

#include <algorithm>
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

// A connection on a tenant's own socket is that tenant; a token of anyone
// else (another tenant, unknown, unterminated) is refused without naming
// another tenant, and so is a socket whose tenant was deleted.
TEST(SchedIdentity, BoundSocketIsItsTenantAndRefusesOtherTokens) {
  TenantRegistry tenants({});
  TenantConfig a, b;
  a.name = "k8s-a";
  a.token = "aaaaaaaaaaaaaaaaaaaaaaaa";
  b.name = "plain-b";
  b.token = "bbbbbbbbbbbbbbbbbbbbbbbb";
  auto ta = tenants.add(a);
  auto tb = tenants.add(b);
  ASSERT_TRUE(ta && tb);
  auto hello = proto::make<proto::Hello>();
  auto with = [&](const std::string& token) {
    std::memset(hello.token, 0, sizeof hello.token);
    std::memcpy(hello.token, token.data(), std::min(token.size(), sizeof hello.token));
    return resolve_bound_socket(hello, *ta, tenants);
  };
  EXPECT_EQ(*with(""), *ta);
  EXPECT_EQ(*with(a.token), *ta);
  for (const std::string& other : {b.token, std::string("unknown-token-0000000"), std::string(sizeof hello.token, 'a')}) {
    auto r = with(other);
    ASSERT_FALSE(r) << other;
    EXPECT_EQ(r.error().find("plain-b"), std::string::npos) << r.error();
  }
  (*ta)->deleted = true;
  EXPECT_FALSE(with(""));
  EXPECT_FALSE(resolve_bound_socket(hello, nullptr, tenants));
}

}  // namespace
}  // namespace vgpu::sched
