// vgpud's Prometheus endpoint, scraped over loopback while tenants run.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::bin_dir;
using vgpu::test::json_number;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

std::string scrape(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return out;
}

// The value of the first sample of `metric` whose labels contain `label`.
double sample(const std::string& text, const std::string& metric, const std::string& label) {
  std::regex re("^" + metric + "\\{([^}]*)\\} ([0-9.e+-]+)$");
  std::smatch m;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string line = text.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    if (std::regex_match(line, m, re) && m[1].str().find(label) != std::string::npos) return std::stod(m[2]);
    if (eol == std::string::npos) break;
    pos = eol + 1;
  }
  return -1;
}

TEST(VgpudMetrics, TenantAndGpuMetricsFollowTheWorkloads) {
  int port = free_port();
  VgpudFixture f("  - {name: base, token: base-tenant-token-1, memory: 1Gi, compute: {request: 30%, limit: 90%}}\n", {},
                 "metrics: 127.0.0.1:" + std::to_string(port) + "\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto w = f.run({bin_dir() + "/vgpu-workload", "--duration", "3", "--alloc-size", "768Mi", "--hold", "--json"},
                 "base-tenant-token-1");
  ASSERT_TRUE(wait_until([&] { return w->errors().find("; launching") != std::string::npos; }, 20s));
  auto refused = f.run({bin_dir() + "/vgpu-workload", "--count", "1", "--alloc-size", "512Mi", "--json"},
                       "base-tenant-token-1");
  ASSERT_EQ(refused->wait(30s), 0);
  ASSERT_EQ(json_number(refused->output(), "failed"), 1);
  const std::string t = "tenant=\"base\"";
  std::string text;
  ASSERT_TRUE(wait_until([&] {
    text = scrape(port);
    return sample(text, "vgpu_tenant_memory_used_bytes", t) == 768.0 * (1 << 20) &&
           sample(text, "vgpu_tenant_allocations_denied_total", t) >= 1 &&
           sample(text, "vgpu_tenant_share_achieved_ratio", t) > 0.2;
  }, 10s)) << text;
  EXPECT_EQ(sample(text, "vgpu_tenant_memory_limit_bytes", t), 1024.0 * (1 << 20));
  EXPECT_DOUBLE_EQ(sample(text, "vgpu_tenant_share_target_ratio", t), 0.3);
  EXPECT_DOUBLE_EQ(sample(text, "vgpu_tenant_share_limit_ratio", t), 0.9);
  EXPECT_GE(sample(text, "vgpu_tenant_leases_granted_total", t), 1);
  EXPECT_GE(sample(text, "vgpu_tenant_processes", t), 1);
  EXPECT_GT(sample(text, "vgpu_gpu_memory_total_bytes", "gpu_uuid=\"GPU-"), 0);
  EXPECT_GE(sample(text, "vgpu_gpu_memory_used_bytes", "gpu_uuid=\"GPU-"), 768.0 * (1 << 20));
  EXPECT_GE(sample(text, "vgpu_gpu_busy_ratio", "gpu_uuid=\"GPU-"), 0);
  ASSERT_EQ(w->wait(30s), 0) << w->errors();
  // Memory comes back when the process ends.
  EXPECT_TRUE(wait_until([&] { return sample(scrape(port), "vgpu_tenant_memory_used_bytes", t) == 0; }, 10s));
}

TEST(VgpudMetrics, UnusableAddressIsAClearStartupError) {
  VgpudFixture f("  - {name: base, memory: 1Gi}\n", {}, "metrics: 127.0.0.1:notaport\n");
  std::string why;
  ASSERT_FALSE(f.start(&why));
  EXPECT_NE(why.find("metrics"), std::string::npos) << why;
}

}  // namespace
