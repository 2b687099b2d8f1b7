#include "socket_probe.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace vgpu::cli {

namespace {

const char kWhoMayConnect[] = "vgpud accepts root and its admin group";

// After a successful connect: EOF or a reset before any byte means the
// daemon dropped us; data or silence means it is serving the connection.
SocketState watch_accepted(int fd, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  int n = poll(&p, 1, static_cast<int>(wait.count()));
  if (n <= 0) return SocketState::kAnswers;
  char byte;
  ssize_t got = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (got > 0) return SocketState::kAnswers;
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return SocketState::kAnswers;
  // Linux resets a connection still in the backlog when the listener is
  // closed (ECONNRESET); one accepted and then closed reads as EOF.
  if (got < 0 && errno == ECONNRESET) return SocketState::kStopping;
  return SocketState::kClosedByPeer;
}

// connect() to `path` with a socket of `type`; -1 with errno on failure.
int connect_unix(const std::string& path, int type) {
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}

SocketState connect_state(const std::string& path, std::chrono::milliseconds wait) {
  int fd = connect_unix(path, SOCK_STREAM);
  if (fd >= 0) {
    SocketState state = watch_accepted(fd, wait);
    close(fd);
    return state;
  }
  if (errno == ENOENT) return SocketState::kMissing;
  if (errno == EACCES || errno == EPERM) return SocketState::kNoAccess;
  if (errno == EPROTOTYPE) {
    // Someone listens, but not with SOCK_STREAM: the hook socket is SEQPACKET.
    int seq = connect_unix(path, SOCK_SEQPACKET);
    if (seq >= 0) {
      close(seq);
      return SocketState::kHookSocket;
    }
    return SocketState::kNotSocket;
  }
  return SocketState::kRefused;
}

bool gone(SocketState s) {
  return s == SocketState::kMissing || s == SocketState::kRefused || s == SocketState::kStopping;
}

SocketState probe_once(const std::string& path, std::chrono::milliseconds wait) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return errno == EACCES ? SocketState::kNoAccess : SocketState::kMissing;
  if (!S_ISSOCK(st.st_mode)) return SocketState::kNotSocket;
  if (access(path.c_str(), R_OK | W_OK) != 0 && errno == EACCES) return SocketState::kNoAccess;
  return connect_state(path, wait);
}

}  // namespace

SocketState probe_socket(const std::string& path, std::chrono::milliseconds wait) {
  SocketState first = probe_once(path, wait);
  if (first != SocketState::kClosedByPeer) return first;
  // A vgpud that is stopping may close connections it had accepted; its
  // peer check refuses every time, so look again before saying "denied".
  usleep(200'000);
  SocketState second = probe_once(path, wait);
  return gone(second) ? SocketState::kStopping : second;
}

std::string explain_socket(SocketState state, const std::string& path, const std::string& detail) {
  switch (state) {
    case SocketState::kMissing:
      return "vgpud is not running: no admin socket at " + path + " (use --socket or VGPU_ADMIN_SOCKET)";
    case SocketState::kNotSocket:
      return path + " is not a socket (use --socket or VGPU_ADMIN_SOCKET)";
    case SocketState::kNoAccess:
      return "permission denied: cannot connect to " + path + " (" + kWhoMayConnect + ")";
    case SocketState::kRefused:
      return "vgpud is not running: connection to " + path + " refused";
    case SocketState::kClosedByPeer:
      return std::string("permission denied: ") + kWhoMayConnect + " (connection to " + path + " closed)";
    case SocketState::kStopping:
      return "vgpud is not running: it is stopping (" + path + " closed)";
    case SocketState::kHookSocket:
      return path + " is vgpud's hook socket, not its admin socket; use --socket ADMIN_SOCKET (default " +
             "/run/vgpu/vgpud-admin.sock, vgpud's admin_socket:)";
    case SocketState::kAnswers:
      break;
  }
  return "vgpud at " + path + " is unavailable: " + detail;
}

}  // namespace vgpu::cli
