// One datagram with optional file descriptors (SCM_RIGHTS) over a Unix
// socket: how vgpud hands a tenant's shared memory to a process.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace vgpu {

constexpr int kMaxPassedFds = 4;

// Sends `n` bytes and the `nfds` descriptors of `fds` (0..kMaxPassedFds).
// True if all was sent.
bool send_with_fds(int sock, const void* buf, size_t n, const int* fds, int nfds, int flags);
// Receives one datagram into `buf` and up to `max` descriptors into `fds`
// (close-on-exec); *nfds is how many arrived (extra ones are closed). Returns
// recvmsg's result.
ssize_t recv_with_fds(int sock, void* buf, size_t n, int* fds, int max, int* nfds);

inline bool send_with_fd(int sock, const void* buf, size_t n, int pass_fd, int flags) {
  return send_with_fds(sock, buf, n, &pass_fd, pass_fd >= 0 ? 1 : 0, flags);
}
inline ssize_t recv_with_fd(int sock, void* buf, size_t n, int* passed) {
  int got = 0;
  *passed = -1;
  return recv_with_fds(sock, buf, n, passed, 1, &got);
}

}  // namespace vgpu
