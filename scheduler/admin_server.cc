#include "admin_server.h"

#include <grp.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_posix.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "admin_service.h"
#include "daemon.h"
#include "log.h"
#include "unix_listener.h"

namespace vgpu::sched {

namespace {

// Supplementary groups of `pid` from /proc (SO_PEERCRED has only the primary).
bool in_supplementary_groups(pid_t pid, gid_t gid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("Groups:", 0) != 0) continue;
    std::istringstream groups(line.substr(7));
    for (long g; groups >> g;)
      if (static_cast<gid_t>(g) == gid) return true;
  }
  return false;
}

}  // namespace

bool AdminServer::allowed(uid_t uid, gid_t gid, pid_t pid, gid_t admin_gid, bool have_group) {
  if (uid == 0) return true;
  if (!have_group) return false;
  return gid == admin_gid || in_supplementary_groups(pid, admin_gid);
}

AdminServer::AdminServer(Daemon& daemon) : daemon_(daemon) {}

AdminServer::~AdminServer() { shutdown(); }

Result<bool> AdminServer::start(const std::string& path, const std::string& group) {
  if (!group.empty()) {
    struct group* g = getgrnam(group.c_str());
    if (!g) return make_error("admin_group '" + group + "' does not exist");
    admin_gid_ = g->gr_gid;
    have_group_ = true;
  }
  service_ = std::make_unique<AdminService>(daemon_, [this](const std::string& peer) { return describe_peer(peer); });
  grpc::ServerBuilder builder;
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_) return make_error("cannot start the admin API server");

  if (!wait_for_no_listener(path, SOCK_STREAM, std::chrono::seconds(3)))
    return make_error("another vgpud is already serving the admin API on " + path + " (still answering after 3 s)");
  auto fd = listen_unix(path, SOCK_STREAM, 0660, 64);
  if (!fd) return Error{fd.error()};
  listen_fd_ = *fd;
  path_id_ = socket_identity(path);
  if (have_group_ && chown(path.c_str(), 0, admin_gid_) != 0)
    log_warn("cannot give %s to group %s: %s", path.c_str(), group.c_str(), std::strerror(errno));
  path_ = path;
  daemon_.loop().add(listen_fd_, EPOLLIN, [this](uint32_t) { accept_clients(); });
  return true;
}

void AdminServer::accept_clients() {
  for (;;) {
    ucred cred;
    int fd = accept_with_credentials(listen_fd_, &cred);
    if (fd < 0) return;
    if (!allowed(cred.uid, cred.gid, cred.pid, admin_gid_, have_group_)) {
      log_warn("admin API: refused pid %d (uid %u): not root or in the admin group", cred.pid, cred.uid);
      close(fd);
      continue;
    }
    {
      std::lock_guard<std::mutex> g(peers_mu_);
      peers_[fd] = cred;  // gRPC names this connection's peer "fd:<fd>"
    }
    grpc::AddInsecureChannelFromFd(server_.get(), fd);  // gRPC owns fd now
  }
}

std::string AdminServer::describe_peer(const std::string& grpc_peer) const {
  int fd = -1;
  if (std::sscanf(grpc_peer.c_str(), "fd:%d", &fd) != 1) return grpc_peer;
  ucred cred{};
  {
    std::lock_guard<std::mutex> g(peers_mu_);
    auto it = peers_.find(fd);
    if (it == peers_.end()) return grpc_peer;
    cred = it->second;
  }
  char comm[64] = {};
  if (FILE* f = std::fopen(("/proc/" + std::to_string(cred.pid) + "/comm").c_str(), "r")) {
    if (std::fgets(comm, sizeof comm, f)) comm[std::strcspn(comm, "\n")] = 0;
    std::fclose(f);
  }
  std::string who = "uid " + std::to_string(cred.uid) + " pid " + std::to_string(cred.pid);
  if (comm[0]) who += std::string(" (") + comm + ")";
  return who;
}

void AdminServer::shutdown() {
  if (listen_fd_ >= 0) {
    daemon_.loop().remove(listen_fd_);
    close(listen_fd_);
    unlink_if_ours(path_, path_id_);
    listen_fd_ = -1;
  }
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    server_.reset();
  }
}

}  // namespace vgpu::sched
