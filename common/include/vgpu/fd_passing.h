// One datagram with an optional file descriptor (SCM_RIGHTS) over a Unix
// socket: how vgpud hands a tenant's shared memory to a process.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace vgpu {

// Sends `n` bytes and, if `pass_fd` >= 0, that descriptor. True if all was sent.
bool send_with_fd(int sock, const void* buf, size_t n, int pass_fd, int flags);
// Receives one datagram into `buf`; *passed is the received descriptor
// (close-on-exec) or -1. Returns recvmsg's result.
ssize_t recv_with_fd(int sock, void* buf, size_t n, int* passed);

}  // namespace vgpu
