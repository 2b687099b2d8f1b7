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
  return SocketState::kClosedByPeer;
}

SocketState connect_state(const std::string& path, std::chrono::milliseconds wait) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return SocketState::kAnswers;  // cannot probe: report gRPC's own message
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  SocketState state;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) state = watch_accepted(fd, wait);
  else if (errno == ENOENT) state = SocketState::kMissing;
  else if (errno == EACCES || errno == EPERM) state = SocketState::kNoAccess;
  else state = SocketState::kRefused;
  close(fd);
  return state;
}

}  // namespace

SocketState probe_socket(const std::string& path, std::chrono::milliseconds wait) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return errno == EACCES ? SocketState::kNoAccess : SocketState::kMissing;
  if (!S_ISSOCK(st.st_mode)) return SocketState::kNotSocket;
  if (access(path.c_str(), R_OK | W_OK) != 0 && errno == EACCES) return SocketState::kNoAccess;
  return connect_state(path, wait);
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
    case SocketState::kAnswers:
      break;
  }
  return "vgpud at " + path + " is unavailable: " + detail;
}

}  // namespace vgpu::cli
