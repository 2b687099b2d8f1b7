// Listening Unix sockets for vgpud (hook and admin sockets): bind, listen,
// set the file mode, and read the peer's credentials of an accepted socket.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>

#include <string>

#include "vgpu/result.h"

namespace vgpu::sched {

// A non-blocking, close-on-exec listening socket of `type` (SOCK_SEQPACKET or
// SOCK_STREAM) at `path` with file mode `mode`; its directory is created if
// missing and a stale socket file replaced. Returns the descriptor.
Result<int> listen_unix(const std::string& path, int type, unsigned mode, int backlog);

// Waits up to `patience` for nobody to answer on `path` (a vgpud that is
// shutting down is given that long to go). True when the path is free: no
// file, or a stale socket nobody listens on.
bool wait_for_no_listener(const std::string& path, int type, std::chrono::milliseconds patience);

// Removes the socket file at `path` only if it is still the one this process
// bound (device and inode as recorded by socket_identity() after bind), so a
// vgpud that is stopping never deletes its successor's socket.
struct SocketIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
};
SocketIdentity socket_identity(const std::string& path);
void unlink_if_ours(const std::string& path, SocketIdentity id);

// Accepts one connection (non-blocking, close-on-exec) and reads its
// SO_PEERCRED; -1 when there is none pending.
int accept_with_credentials(int listen_fd, ucred* cred);

}  // namespace vgpu::sched
