// A fake Kubernetes API server for the device plugin's tests (issue 10):
// plain HTTP/1.1 on 127.0.0.1 (one request per connection), serving
//   GET  /api/v1/namespaces/<ns>/pods/<name>   the pods the test sets (404 otherwise)
//   POST /api/v1/namespaces/<ns>/events        recorded, 201
// and 401 for a request without "Authorization: Bearer <token>". stop() and
// start() on the same port model an API server that goes away and comes
// back. Header-only. Thread-safe: one server thread; the test reads and
// sets under the mutex.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace vgpu::test::k8s {

class FakeApiServer {
 public:
  explicit FakeApiServer(std::string token = "test-token") : token_(std::move(token)) {}
  ~FakeApiServer() { stop(); }

  // Listens on `port` (0: any free one); false if it cannot.
  bool start(int port = 0) {
    stop();
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 64) != 0) {
      close(fd_);
      fd_ = -1;
      return false;
    }
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    stopping_ = false;
    thread_ = std::thread([this] { serve(); });
    return true;
  }
  // Closes the listening socket: connections are refused until start().
  void stop() {
    if (fd_ < 0) return;
    stopping_ = true;
    thread_.join();
    close(fd_);
    fd_ = -1;
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void set_pod(const std::string& ns, const std::string& name, const std::map<std::string, std::string>& annotations) {
    nlohmann::json pod = {{"apiVersion", "v1"},
                          {"kind", "Pod"},
                          {"metadata", {{"name", name}, {"namespace", ns}, {"uid", "uid-" + ns + "-" + name}}}};
    for (const auto& [k, v] : annotations) pod["metadata"]["annotations"][k] = v;
    std::lock_guard<std::mutex> l(mu_);
    pods_[ns + "/" + name] = pod;
  }
  void remove_pod(const std::string& ns, const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    pods_.erase(ns + "/" + name);
  }
  std::vector<nlohmann::json> events() {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }
  size_t pod_reads() {
    std::lock_guard<std::mutex> l(mu_);
    return pod_reads_;
  }
  size_t unauthorized() {
    std::lock_guard<std::mutex> l(mu_);
    return unauthorized_;
  }

  // A kubeconfig for this server with the token, written to `path`.
  void write_kubeconfig(const std::string& path) const {
    std::ofstream(path) << "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
                        << "clusters:\n- name: fake\n  cluster:\n    server: " << url() << "\n"
                        << "users:\n- name: plugin\n  user:\n    token: " << token_ << "\n"
                        << "contexts:\n- name: test\n  context:\n    cluster: fake\n    user: plugin\n";
  }

 private:
  void serve() {
    while (!stopping_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{2, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      handle(c);
      close(c);
    }
  }

  void handle(int c) {
    std::string in;
    char buf[4096];
    size_t head_end;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) return;
      in.append(buf, static_cast<size_t>(n));
    }
    std::string head = in.substr(0, head_end + 2), lower;  // each header line ends in \r\n
    for (char ch : head) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
    size_t length = 0;
    if (size_t cl = lower.find("content-length:"); cl != std::string::npos)
      length = std::stoul(head.substr(cl + 15));
    std::string body = in.substr(head_end + 4);
    while (body.size() < length) {
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) return;
      body.append(buf, static_cast<size_t>(n));
    }
    std::string method = head.substr(0, head.find(' '));
    size_t p0 = head.find(' ') + 1;
    std::string path = head.substr(p0, head.find(' ', p0) - p0);
    auto [status, reply] = route(method, path, head, body);
    std::string out = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
                      "Content-Length: " + std::to_string(reply.size()) + "\r\nConnection: close\r\n\r\n" + reply;
    (void)!write(c, out.data(), out.size());
  }

  static std::string status(int code, const std::string& message) {
    return nlohmann::json{{"kind", "Status"}, {"status", "Failure"}, {"message", message}, {"code", code}}.dump();
  }

  std::pair<int, std::string> route(const std::string& method, const std::string& path, const std::string& head,
                                    const std::string& body) {
    std::lock_guard<std::mutex> l(mu_);
    if (head.find("Authorization: Bearer " + token_ + "\r\n") == std::string::npos) {
      ++unauthorized_;
      return {401, status(401, "Unauthorized")};
    }
    const std::string prefix = "/api/v1/namespaces/";
    if (path.rfind(prefix, 0) != 0) return {404, status(404, "not found")};
    std::string rest = path.substr(prefix.size());
    std::string ns = rest.substr(0, rest.find('/'));
    std::string tail = rest.substr(ns.size());
    if (method == "GET" && tail.rfind("/pods/", 0) == 0) {
      ++pod_reads_;
      auto it = pods_.find(ns + "/" + tail.substr(6));
      if (it == pods_.end()) return {404, status(404, "pods \"" + tail.substr(6) + "\" not found")};
      return {200, it->second.dump()};
    }
    if (method == "POST" && tail == "/events") {
      auto e = nlohmann::json::parse(body, nullptr, false);
      if (!e.is_object()) return {400, status(400, "not JSON")};
      events_.push_back(e);
      return {201, body};
    }
    return {404, status(404, "not found")};
  }

  std::string token_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, nlohmann::json> pods_;
  std::vector<nlohmann::json> events_;
  size_t pod_reads_ = 0, unauthorized_ = 0;
};

}  // namespace vgpu::test::k8s
