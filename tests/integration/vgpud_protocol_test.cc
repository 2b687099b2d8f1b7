// vgpud against malformed and hostile hook-socket peers: raw SOCK_SEQPACKET
// clients send garbage, a foreign protocol version, oversized datagrams,
// wrong tokens, messages out of order. Each must be dropped (a foreign version
// first told why), and afterwards vgpud still runs and a real tenant process
// still allocates and runs kernels.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "vgpu/protocol.h"
#include "vgpu/tenant_shm.h"
#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
namespace proto = vgpu::proto;
using vgpu::test::bin_dir;
using vgpu::test::json_number;
using vgpu::test::VgpudFixture;

const char* kToken = "proto-tenant-token-1";

// What a raw peer saw until vgpud closed the connection (or the time ran out).
struct Answer {
  std::vector<std::string> messages;
  bool closed = false;
};

class RawPeer {
 public:
  explicit RawPeer(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawPeer() { close(fd_); }
  bool connected() const { return connected_; }

  bool send_bytes(const void* data, size_t n) {
    return send(fd_, data, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
  }
  template <class M>
  bool send_msg(const M& m) { return send_bytes(&m, sizeof m); }

  // Collects datagrams until the peer closes or `timeout` passes.
  Answer read_until_closed(std::chrono::milliseconds timeout) {
    Answer a;
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      char buf[proto::kMaxMessage * 2];
      ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        a.messages.emplace_back(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        a.closed = true;
        return a;
      }
    }
    return a;
  }

  // Sends a Hello with `token`; true if vgpud answered Welcome.
  bool register_as(const std::string& token) {
    auto h = proto::make<proto::Hello>();
    h.pid = getpid();
    std::snprintf(h.token, sizeof h.token, "%s", token.c_str());
    if (!send_msg(h)) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return false;
    char buf[proto::kMaxMessage];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);  // the passed memfd is discarded (MSG_CTRUNC)
    return n == sizeof(proto::Welcome) && proto::check(buf, static_cast<size_t>(n)) == proto::Check::kOk &&
           reinterpret_cast<proto::Header*>(buf)->type == static_cast<uint16_t>(proto::Type::kWelcome);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// The reason of a Refused datagram; empty if `m` is not one.
std::string refusal(const std::string& m) {
  if (proto::check(m.data(), m.size()) != proto::Check::kOk) return "";
  const auto* r = reinterpret_cast<const proto::Refused*>(m.data());
  if (r->h.type != static_cast<uint16_t>(proto::Type::kRefused)) return "";
  return std::string(r->reason, strnlen(r->reason, sizeof r->reason));
}

class VgpudProtocol : public ::testing::Test {
 protected:
  VgpudProtocol() : f_("  - {name: solid, token: proto-tenant-token-1, memory: 1Gi, compute: {request: 50%}}\n") {}
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(f_.start(&why)) << why;
  }

  // vgpud survived and still serves a real process: it allocates all of its
  // 1Gi quota (so nothing leaked from the hostile peer) and runs kernels.
  void expect_still_serving() {
    ASSERT_TRUE(f_.daemon_running()) << f_.daemon_log();
    auto w = f_.run({bin_dir() + "/vgpu-workload", "--count", "5", "--kernel-us", "200", "--alloc-size", "1Gi",
                     "--json"},
                    kToken);
    ASSERT_EQ(w->wait(30s), 0) << w->errors();
    EXPECT_EQ(json_number(w->output(), "ok"), 1) << w->output() << w->errors();
    EXPECT_EQ(json_number(w->output(), "kernels_completed"), 5) << w->output() << w->errors();
    EXPECT_TRUE(f_.daemon_running()) << f_.daemon_log();
  }

  VgpudFixture f_;
};

TEST_F(VgpudProtocol, RandomBytesAreDropped) {
  RawPeer p(f_.socket());
  ASSERT_TRUE(p.connected());
  std::mt19937 rng(42);
  std::vector<unsigned char> junk(200);
  for (auto& b : junk) b = static_cast<unsigned char>(rng());
  ASSERT_TRUE(p.send_bytes(junk.data(), junk.size()));
  EXPECT_TRUE(p.read_until_closed(5s).closed);
  expect_still_serving();
}

TEST_F(VgpudProtocol, ForeignVersionIsRefusedNamingBothVersions) {
  RawPeer p(f_.socket());
  ASSERT_TRUE(p.connected());
  auto h = proto::make<proto::Hello>();
  h.h.version = 7;
  std::snprintf(h.token, sizeof h.token, "%s", kToken);
  ASSERT_TRUE(p.send_msg(h));
  Answer a = p.read_until_closed(5s);
  EXPECT_TRUE(a.closed);
  ASSERT_EQ(a.messages.size(), 1u);
  std::string reason = refusal(a.messages[0]);
  EXPECT_NE(reason.find("version 7"), std::string::npos) << "'" << reason << "'";
  EXPECT_NE(reason.find("version " + std::to_string(proto::kVersion)), std::string::npos) << "'" << reason << "'";
  expect_still_serving();
}

TEST_F(VgpudProtocol, OversizedDatagramIsDropped) {
  RawPeer p(f_.socket());
  ASSERT_TRUE(p.connected());
  std::vector<char> big(64 * 1024, 'x');
  auto h = proto::make<proto::Hello>();
  std::snprintf(h.token, sizeof h.token, "%s", kToken);
  std::memcpy(big.data(), &h, sizeof h);  // a valid Hello with 63 KiB of tail
  ASSERT_TRUE(p.send_bytes(big.data(), big.size()));
  Answer a = p.read_until_closed(5s);
  EXPECT_TRUE(a.closed);
  for (auto& m : a.messages) EXPECT_NE(proto::check(m.data(), m.size()), proto::Check::kOk) << "answered a Welcome?";
  expect_still_serving();
}

TEST_F(VgpudProtocol, TruncatedHelloIsDropped) {
  RawPeer p(f_.socket());
  ASSERT_TRUE(p.connected());
  auto h = proto::make<proto::Hello>();
  ASSERT_TRUE(p.send_bytes(&h, sizeof(proto::Header) + 4));
  Answer a = p.read_until_closed(5s);
  EXPECT_TRUE(a.closed);
  EXPECT_TRUE(a.messages.empty());
  expect_still_serving();
}

TEST_F(VgpudProtocol, WrongTokenIsRefusedAndDropped) {
  RawPeer p(f_.socket());
  ASSERT_TRUE(p.connected());
  auto h = proto::make<proto::Hello>();
  h.pid = getpid();
  std::snprintf(h.token, sizeof h.token, "%s", "proto-tenant-token-2");
  ASSERT_TRUE(p.send_msg(h));
  Answer a = p.read_until_closed(5s);
  EXPECT_TRUE(a.closed);
  ASSERT_EQ(a.messages.size(), 1u);
  std::string reason = refusal(a.messages[0]);
  for (char& c : reason) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_NE(reason.find("token"), std::string::npos) << "'" << reason << "'";
  expect_still_serving();
}

TEST_F(VgpudProtocol, UnterminatedTokenIsRefused) {
  RawPeer p(f_.socket());
  ASSERT_TRUE(p.connected());
  auto h = proto::make<proto::Hello>();
  std::memset(h.token, 'a', sizeof h.token);
  ASSERT_TRUE(p.send_msg(h));
  Answer a = p.read_until_closed(5s);
  EXPECT_TRUE(a.closed);
  ASSERT_EQ(a.messages.size(), 1u);
  EXPECT_FALSE(refusal(a.messages[0]).empty());
  expect_still_serving();
}

TEST_F(VgpudProtocol, LeaseRequestBeforeHelloIsDropped) {
  RawPeer p(f_.socket());
  ASSERT_TRUE(p.connected());
  ASSERT_TRUE(p.send_msg(proto::make<proto::LeaseRequest>()));
  Answer a = p.read_until_closed(5s);
  EXPECT_TRUE(a.closed);
  EXPECT_TRUE(a.messages.empty()) << "nothing is owed to an unregistered peer";
  expect_still_serving();
}

TEST_F(VgpudProtocol, RegisteredPeerAskingForAnUnknownGpuIsDropped) {
  RawPeer p(f_.socket());
  ASSERT_TRUE(p.connected());
  ASSERT_TRUE(p.register_as(kToken));
  auto m = proto::make<proto::LeaseRequest>();
  m.device = 1000;
  ASSERT_TRUE(p.send_msg(m));
  EXPECT_TRUE(p.read_until_closed(5s).closed);
  expect_still_serving();
}

TEST_F(VgpudProtocol, SecondHelloIsDropped) {
  RawPeer p(f_.socket());
  ASSERT_TRUE(p.connected());
  ASSERT_TRUE(p.register_as(kToken));
  auto h = proto::make<proto::Hello>();
  std::snprintf(h.token, sizeof h.token, "%s", kToken);
  ASSERT_TRUE(p.send_msg(h));
  EXPECT_TRUE(p.read_until_closed(5s).closed);
  expect_still_serving();
}

TEST_F(VgpudProtocol, HostileChargesCannotLiftTheTenantAboveItsQuota) {
  // A real process holds the whole 1Gi quota.
  auto holder = f_.run({bin_dir() + "/vgpu-workload", "--alloc-size", "1Gi", "--hold", "--rate", "20", "--duration",
                        "2"},
                       kToken);
  ASSERT_TRUE(vgpu::test::wait_until([&] { return holder->errors().find("; launching") != std::string::npos; }, 20s));
  ASSERT_NE(holder->errors().find("allocations 1/1 ok"), std::string::npos) << holder->errors();
  // A peer with the tenant's token, registered fresh (not a reconnect),
  // "re-registers" minus 1Gi: modulo 2^64 that would wipe the holder's charge.
  RawPeer p(f_.socket());
  ASSERT_TRUE(p.register_as(kToken));
  // The message type that once carried charges (4): built by hand, since the
  // protocol no longer defines it.
  struct {
    proto::Header h;
    uint64_t bytes[proto::kMaxDevices];
  } c{};
  c.h = {proto::kMagic, proto::kVersion, 4, sizeof c, 0};
  c.bytes[0] = ~0ull - (1ull << 30) + 1;
  ASSERT_TRUE(p.send_msg(c));
  p.read_until_closed(200ms);  // dropped or not, give vgpud time to act on it
  auto more = f_.run({vgpu::test::program("vgpud_alloc_retry"), std::to_string(1ull << 30), "0"}, kToken);
  EXPECT_EQ(more->wait(30s), 3) << "a second 1Gi was granted on a 1Gi quota: " << more->output();
  EXPECT_EQ(holder->wait(30s), 0) << holder->errors();
}

TEST_F(VgpudProtocol, TenantFullOfPeersRefusesMoreAndRecovers) {
  // Peers take every process record of the tenant (vgpu::kShmMaxProcs); one
  // more is refused with a reason, and once they are gone records are free.
  std::vector<std::unique_ptr<RawPeer>> peers;
  for (int i = 0; i < vgpu::kShmMaxProcs; ++i) {
    peers.push_back(std::make_unique<RawPeer>(f_.socket()));
    ASSERT_TRUE(peers.back()->register_as(kToken)) << "peer " << i;
  }
  RawPeer extra(f_.socket());
  ASSERT_FALSE(extra.register_as(kToken));
  peers.clear();
  EXPECT_TRUE(vgpu::test::wait_until([&] { return RawPeer(f_.socket()).register_as(kToken); }, 5s))
      << "records of closed peers were not freed";
  expect_still_serving();
}

TEST_F(VgpudProtocol, SilentPeersBlockNobody) {
  // Connected, never a word: vgpud must not wait on them.
  std::vector<std::unique_ptr<RawPeer>> peers;
  for (int i = 0; i < 20; ++i) peers.push_back(std::make_unique<RawPeer>(f_.socket()));
  auto half = proto::make<proto::Hello>();
  ASSERT_TRUE(peers[0]->send_bytes(&half, 8));  // and one stops mid-header
  expect_still_serving();
}

}  // namespace
