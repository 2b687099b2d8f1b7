#include "unix_listener.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace vgpu::sched {

Result<int> listen_unix(const std::string& path, int type, unsigned mode, int backlog) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return make_error("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  std::string dir = path.substr(0, path.find_last_of('/'));
  if (!dir.empty()) mkdir(dir.c_str(), 0755);
  unlink(path.c_str());
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, backlog) != 0) {
    Error e = make_error("cannot listen on " + path + ": " + std::strerror(errno));
    if (fd >= 0) close(fd);
    return e;
  }
  chmod(path.c_str(), mode);
  return fd;
}

bool wait_for_no_listener(const std::string& path, int type, std::chrono::milliseconds patience) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return true;  // listen_unix reports it
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    int probe = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (probe < 0) return true;
    bool answered = connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(probe);
    if (!answered) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    usleep(20'000);
  }
}

SocketIdentity socket_identity(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino};
}

void unlink_if_ours(const std::string& path, SocketIdentity id) {
  if (path.empty() || id.ino == 0) return;
  SocketIdentity now = socket_identity(path);
  if (now.dev == id.dev && now.ino == id.ino) unlink(path.c_str());
}

int accept_with_credentials(int listen_fd, ucred* cred) {
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return -1;
  *cred = {};
  socklen_t len = sizeof *cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) != 0) *cred = {0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
  return fd;
}

}  // namespace vgpu::sched
