// vgpud's Prometheus endpoint, scraped over loopback while tenants run.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <cerrno>
#include <chrono>
#include <regex>
#include <vector>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::bin_dir;
using vgpu::test::json_number;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;

using vgpu::test::free_port;
using vgpu::test::scrape_metrics;

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
    text = scrape_metrics(port);
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
  EXPECT_TRUE(wait_until([&] { return sample(scrape_metrics(port), "vgpu_tenant_memory_used_bytes", t) == 0; }, 10s));
}

// Every sample line of `metric`: its label text ("a=\"b\",c=\"d\"").
std::vector<std::string> label_sets(const std::string& text, const std::string& metric) {
  std::vector<std::string> out;
  std::regex re("^" + metric + "\\{([^}]*)\\} .*$");
  std::smatch m;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string line = text.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    if (std::regex_match(line, m, re)) out.push_back(m[1]);
    if (eol == std::string::npos) break;
    pos = eol + 1;
  }
  return out;
}

// Series carry the labels dashboards made for dcgm-exporter use, and
// vgpu_build_info says what is running (docs/metrics.md).
TEST(VgpudMetrics, SeriesCarryDcgmStyleLabelsAndBuildInfo) {
  int port = free_port();
  VgpudFixture f("  - {name: base, token: base-tenant-token-1, memory: 1Gi, compute: {request: 30%}}\n", {},
                 "metrics: 127.0.0.1:" + std::to_string(port) + "\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  std::string text;
  ASSERT_TRUE(wait_until([&] {
    text = scrape_metrics(port);
    return !label_sets(text, "vgpu_build_info").empty() && !label_sets(text, "vgpu_tenant_memory_limit_bytes").empty();
  }, 10s)) << text;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  for (const char* metric : {"vgpu_tenant_memory_limit_bytes", "vgpu_gpu_memory_total_bytes"}) {
    auto sets = label_sets(text, metric);
    ASSERT_EQ(sets.size(), 1u) << metric << "\n" << text;
    const std::string& l = sets[0];
    EXPECT_NE(l.find("gpu=\"0\""), std::string::npos) << l;
    EXPECT_TRUE(std::regex_search(l, std::regex("UUID=\"GPU-[0-9a-f-]+\""))) << l;
    EXPECT_NE(l.find("modelName=\"NVIDIA H100"), std::string::npos) << l;
    EXPECT_NE(l.find(std::string("Hostname=\"") + host + "\""), std::string::npos) << l;
    EXPECT_TRUE(std::regex_search(l, std::regex("gpu_uuid=\"GPU-[0-9a-f-]+\""))) << l;
  }
  auto build = label_sets(text, "vgpu_build_info");
  ASSERT_EQ(build.size(), 1u);
  EXPECT_TRUE(std::regex_search(build[0], std::regex("version=\"[0-9]+\\.[0-9]+\\.[0-9]+\""))) << build[0];
  EXPECT_NE(build[0].find("revision=\""), std::string::npos) << build[0];
  EXPECT_NE(build[0].find("protocol=\""), std::string::npos) << build[0];
}

// config/grafana/vgpu.json: every metric its queries use is one a running
// vgpud exports, with every label the query filters or the legend prints.
TEST(VgpudMetrics, DashboardQueriesUseExportedMetricsAndLabels) {
  std::ifstream in(std::string(VGPU_TREE_DIR) + "/config/grafana/vgpu.json");
  ASSERT_TRUE(in) << "config/grafana/vgpu.json missing";
  nlohmann::json dash = nlohmann::json::parse(in);
  int port = free_port();
  // An over-quota refusal and an enforcement action (a process holding GPU
  // memory without the hook, reported) make every family exist.
  VgpudFixture f("  - {name: base, token: base-tenant-token-1, memory: 1Gi, compute: {request: 30%}}\n", {},
                 "metrics: 127.0.0.1:" + std::to_string(port) +
                     "\nenforcement: {policy: report, grace: 0s, startup_grace: 0s, bpf: \"off\"}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto w = f.run({bin_dir() + "/vgpu-workload", "--count", "50", "--alloc-size", "2Gi", "--json"}, "base-tenant-token-1");
  ASSERT_EQ(w->wait(60s), 0) << w->errors();
  vgpu::test::Child bypass({bin_dir() + "/vgpu-workload", "--duration", "5", "--alloc-size", "64Mi", "--hold", "--json"},
                           f.node().env());
  std::string text;
  ASSERT_TRUE(wait_until([&] {
    text = scrape_metrics(port);
    return !label_sets(text, "vgpu_tenant_allocations_denied_total").empty() &&
           !label_sets(text, "vgpu_tenant_leases_granted_total").empty() &&
           !label_sets(text, "vgpu_enforcement_actions_total").empty();
  }, 20s)) << text;
  // Families that may have no sample yet still announce themselves.
  std::set<std::string> exported;
  std::regex type_re("^# TYPE (vgpu_[a-z_]+) ");
  std::smatch m;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    std::string line = text.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    if (std::regex_search(line, m, type_re)) exported.insert(m[1]);
    if (eol == std::string::npos) break;
    pos = eol + 1;
  }
  std::regex metric_re("\\b(vgpu_[a-z_]+)");
  std::regex label_re("([A-Za-z_]+)=~?\"");
  std::regex legend_re("\\{\\{([A-Za-z_]+)\\}\\}");
  int queries = 0;
  for (const auto& panel : dash.at("panels")) {
    for (const auto& target : panel.at("targets")) {
      std::string expr = target.at("expr");
      ++queries;
      std::set<std::string> metrics;
      for (auto it = std::sregex_iterator(expr.begin(), expr.end(), metric_re); it != std::sregex_iterator(); ++it)
        metrics.insert((*it)[1]);
      ASSERT_FALSE(metrics.empty()) << "no vgpu metric in: " << expr;
      std::set<std::string> labels;
      for (auto it = std::sregex_iterator(expr.begin(), expr.end(), label_re); it != std::sregex_iterator(); ++it)
        labels.insert((*it)[1]);
      std::string legend = target.value("legendFormat", "");
      for (auto it = std::sregex_iterator(legend.begin(), legend.end(), legend_re); it != std::sregex_iterator(); ++it)
        labels.insert((*it)[1]);
      for (const std::string& metric : metrics) {
        EXPECT_TRUE(exported.count(metric)) << panel.at("title") << ": " << metric << " is not exported";
        auto sets = label_sets(text, metric);
        if (sets.empty()) continue;  // no sample yet: the labels cannot be checked
        for (const std::string& label : labels)
          EXPECT_NE(sets[0].find(label + "=\""), std::string::npos)
              << panel.at("title") << ": " << metric << " has no label " << label << " (" << sets[0] << ")";
      }
    }
  }
  EXPECT_GE(queries, 10);
}

TEST(VgpudMetrics, UnusableAddressIsAClearStartupError) {
  VgpudFixture f("  - {name: base, memory: 1Gi}\n", {}, "metrics: 127.0.0.1:notaport\n");
  std::string why;
  ASSERT_FALSE(f.start(&why));
  EXPECT_NE(why.find("metrics"), std::string::npos) << why;
}

// A client that sends half a request and then nothing: it holds one of the
// server's workers until the server gives up on it.
int half_request(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::string part = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n";
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      write(fd, part.data(), part.size()) != static_cast<ssize_t>(part.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

// More slow clients than the server has workers: a scrape still answers
// within 3 s, and the server drops the slow clients.
TEST(VgpudMetrics, SlowClientsDoNotStopScrapes) {
  int port = free_port();
  VgpudFixture f("  - {name: base, memory: 1Gi}\n", {}, "metrics: 127.0.0.1:" + std::to_string(port) + "\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  ASSERT_TRUE(wait_until([&] { return scrape_metrics(port).find("vgpu_gpu_memory_total_bytes") != std::string::npos; }, 10s));
  std::vector<int> slow;
  for (int i = 0; i < 12; ++i) {
    int fd = half_request(port);
    ASSERT_GE(fd, 0) << "connection " << i;
    slow.push_back(fd);
  }
  auto t0 = std::chrono::steady_clock::now();
  std::string text = scrape_metrics(port);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(text.find("vgpu_gpu_memory_total_bytes"), std::string::npos) << "no answer within 5 s";
  EXPECT_LT(took, 3s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  // Each slow client is disconnected (read returns 0 or an error) rather than held forever.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  for (int fd : slow) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
    timeval tv{0, std::max<long>(10'000, static_cast<long>(std::min<int64_t>(left.count(), 999'999)))};
    if (left > 1s) tv = {static_cast<time_t>(left.count() / 1'000'000), static_cast<long>(left.count() % 1'000'000)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
    }
    EXPECT_FALSE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) << "slow client still connected after 5 s";
    close(fd);
  }
  EXPECT_TRUE(f.daemon_running());
}

TEST(VgpudMetrics, BusyPortIsAClearStartupError) {
  int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(busy, 4), 0);
  socklen_t len = sizeof a;
  getsockname(busy, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  VgpudFixture f("  - {name: base, memory: 1Gi}\n", {}, "metrics: " + address + "\n");
  (void)f.start();  // may see the hook socket before vgpud gives up on the metrics port
  ASSERT_TRUE(wait_until([&] { return !f.daemon_running(); }, 10s)) << "vgpud kept running on a busy metrics port";
  EXPECT_NE(f.daemon_log().find("metrics: cannot listen on " + address + ": address in use"), std::string::npos)
      << f.daemon_log();
  close(busy);
}

}  // namespace
