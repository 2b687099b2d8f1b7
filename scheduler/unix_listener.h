// Listening Unix sockets for vgpud (hook and admin sockets): bind, listen,
// set the file mode, and read the peer's credentials of an accepted socket.
#pragma once

#include <sys/socket.h>

#include <string>

#include "vgpu/result.h"

namespace vgpu::sched {

// A non-blocking, close-on-exec listening socket of `type` (SOCK_SEQPACKET or
// SOCK_STREAM) at `path` with file mode `mode`; its directory is created if
// missing and a stale socket file replaced. Returns the descriptor.
Result<int> listen_unix(const std::string& path, int type, unsigned mode, int backlog);

// Accepts one connection (non-blocking, close-on-exec) and reads its
// SO_PEERCRED; -1 when there is none pending.
int accept_with_credentials(int listen_fd, ucred* cred);

}  // namespace vgpu::sched
