// Fuzz target: the hook protocol as vgpud receives it.
//
// Each input is a list of records, each one datagram from one of three hook
// clients:   [client: 1 byte][length: 2 bytes, little endian][payload]
// (client = byte % 3, length clipped to what is left; a record whose length
// is 0xffff takes the rest). Every payload also goes through
// vgpu::proto::check directly.
//
// The server side is a real HookServer with the token resolver on its own
// EventLoop, on a private socket in a temp directory, with two tenants
// ("fuzz-a", "fuzz-b", tokens kTokenA/kTokenB) on a simulated node of two
// GPUs (given to TenantRegistry directly: no NVML is needed). Only the public
// interfaces of scheduler/ are used. The loop runs on this thread, driven a
// bounded number of iterations per input by an always-ready eventfd:
//   1. the clients send their datagrams and read what vgpud answers (closing
//      any passed descriptors) until vgpud has read everything or dropped
//      them; then they close;
//   2. once vgpud has forgotten them, a fresh client sends a valid Hello and
//      must get a Welcome: vgpud still serves after the input.
// A crash, a sanitizer report, an exception, a stall (iteration budget) or a
// missing Welcome is a finding (abort).
//
// vgpud keeps its state (leases, shares) from one input to the next, like a
// long-running daemon; a reproducer is therefore best replayed on its own.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/sockios.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "event_loop.h"
#include "hook_server.h"
#include "identity.h"
#include "log.h"
#include "tenant_registry.h"
#include "vgpu/protocol.h"

namespace {

using namespace vgpu::sched;
namespace proto = vgpu::proto;

constexpr const char* kTokenA = "fuzz-token-a";
constexpr const char* kTokenB = "fuzz-token-b";
constexpr int kClients = 3;
// Generous: one input needs a few dozen iterations.
constexpr int kMaxIterations = 200000;

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz_protocol: FINDING: %s\n", what);
  std::abort();
}

struct Server {
  std::string dir;
  std::string path;
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<TenantRegistry> tenants;
  std::unique_ptr<HookServer> hooks;
  int ticker = -1;                  // eventfd kept readable: one call per loop iteration
  std::function<bool()> step;       // the current input's state machine; true: done
  int iterations = 0;
};

Server* g_server = nullptr;

Gpu fake_gpu(int index) {
  Gpu g;
  g.index = index;
  char uuid[64];
  std::snprintf(uuid, sizeof uuid, "GPU-f0220000-0000-4000-8000-00000000000%d", index);
  g.uuid = uuid;
  parse_uuid(g.uuid, g.uuid_bytes);
  g.name = "Fuzz GPU";
  g.memory = 16ull << 30;
  return g;
}

Server* make_server() {
  auto* s = new Server();
  char tmpl[] = "/tmp/vgpu-fuzz-proto-XXXXXX";
  if (!mkdtemp(tmpl)) finding("mkdtemp failed");
  s->dir = tmpl;
  s->path = s->dir + "/vgpud.sock";
  set_log_level(LogLevel::kError);  // every dropped client would log a line
  s->loop = std::make_unique<EventLoop>();
  s->tenants = std::make_unique<TenantRegistry>(std::vector<Gpu>{fake_gpu(0), fake_gpu(1)});
  TenantConfig a;
  a.name = "fuzz-a";
  a.token = kTokenA;
  a.memory = 1ull << 30;
  a.request = 0.3;
  TenantConfig b;
  b.name = "fuzz-b";
  b.token = kTokenB;
  b.memory = 1ull << 30;
  b.priority = Priority::kHigh;
  b.limit = 0.5;
  b.devices = {"1"};
  if (!s->tenants->add(a) || !s->tenants->add(b)) finding("cannot add the tenants");
  SchedulerConfig sc;
  sc.quantum_ns = 1'000'000;  // short: leases turn over within a few inputs
  sc.drain_timeout_ns = 5'000'000;
  s->hooks = std::make_unique<HookServer>(*s->loop, *s->tenants, sc, std::make_unique<TokenResolver>());
  if (auto r = s->hooks->listen(s->path); !r) finding(r.error().c_str());
  s->ticker = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
  s->loop->add(s->ticker, EPOLLIN, [s](uint32_t) {
    if (++s->iterations > kMaxIterations) finding("vgpud did not finish an input (stall)");
    if (s->step()) s->loop->stop();
  });
  return s;
}

int connect_client(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) finding("cannot connect to vgpud");
  return fd;
}

// Reads whatever vgpud sent, closing passed descriptors. Returns the type of
// the last message read (0: none); *closed when vgpud hung up.
uint16_t drain(int fd, bool* closed) {
  uint16_t last = 0;
  for (;;) {
    char buf[proto::kMaxMessage];
    char control[CMSG_SPACE(sizeof(int) * 4)];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return last;
    if (n <= 0) {
      *closed = true;
      return last;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
          int passed;
          std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
          close(passed);
        }
    if (static_cast<size_t>(n) >= sizeof(proto::Header)) {
      proto::Header h;
      std::memcpy(&h, buf, sizeof h);
      last = h.type;
    }
  }
}

// Bytes this client sent that vgpud has not read yet.
int unread(int fd) {
  int n = 0;
  if (ioctl(fd, SIOCOUTQ, &n) != 0) return 0;
  return n;
}

struct Record {
  int client;
  const uint8_t* data;
  size_t size;
};

std::vector<Record> split(const uint8_t* data, size_t size) {
  std::vector<Record> out;
  while (size >= 3) {
    int client = data[0] % kClients;
    size_t len = static_cast<size_t>(data[1]) | static_cast<size_t>(data[2]) << 8;
    data += 3;
    size -= 3;
    if (len > size || len == 0xffff) len = size;
    out.push_back({client, data, len});
    data += len;
    size -= len;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!g_server) g_server = make_server();
  Server& s = *g_server;

  std::vector<Record> records = split(data, size);
  for (const Record& r : records) {
    // The decoder alone: never reads past n, agrees with size_of.
    proto::Check c = proto::check(r.data, r.size);
    if (c == proto::Check::kOk) {
      proto::Header h;
      std::memcpy(&h, r.data, sizeof h);
      if (proto::size_of(h.type) != r.size || h.size != r.size) finding("check() accepted a wrong size");
    }
  }

  int fds[kClients] = {-1, -1, -1};
  bool sent = false;
  int probe = -1;
  enum { kSending, kWaitForgotten, kProbe, kWaitProbeGone } phase = kSending;
  s.iterations = 0;
  s.step = [&]() -> bool {
    switch (phase) {
      case kSending: {
        if (!sent) {
          for (const Record& r : records) {
            int& fd = fds[r.client];
            if (fd < 0) fd = connect_client(s.path);
            // SEQPACKET: each send is one datagram; an oversized one fails
            // here (EMSGSIZE), a full buffer (EAGAIN) just loses the rest.
            (void)send(fd, r.data, r.size, MSG_DONTWAIT | MSG_NOSIGNAL);
          }
          sent = true;
          return false;
        }
        bool pending = false;
        for (int& fd : fds) {
          if (fd < 0) continue;
          bool closed = false;
          drain(fd, &closed);
          if (!closed && unread(fd) > 0) {
            pending = true;
            continue;
          }
          close(fd);
          fd = -1;
        }
        if (!pending) phase = kWaitForgotten;
        return false;
      }
      case kWaitForgotten:
        if (!s.hooks->clients().empty()) return false;
        probe = connect_client(s.path);
        {
          auto hello = proto::make<proto::Hello>();
          hello.pid = static_cast<int32_t>(getpid());
          std::snprintf(hello.token, sizeof hello.token, "%s", kTokenA);
          if (send(probe, &hello, sizeof hello, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof hello))
            finding("cannot send the probe Hello");
        }
        phase = kProbe;
        return false;
      case kProbe: {
        bool closed = false;
        uint16_t type = drain(probe, &closed);
        if (type == static_cast<uint16_t>(proto::Type::kWelcome)) {
          close(probe);
          phase = kWaitProbeGone;
          return false;
        }
        if (type != 0 || closed) finding("vgpud refused a valid Hello after the input");
        return false;
      }
      case kWaitProbeGone:
        return s.hooks->clients().empty();
    }
    return true;
  };
  s.loop->run();
  s.step = nullptr;
  return 0;
}
