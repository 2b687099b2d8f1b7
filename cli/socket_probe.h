// Tells apart why vgpud's admin socket cannot be used, after a gRPC call
// failed with UNAVAILABLE: gRPC reports "connection refused", "no such file"
// and "closed by the peer" alike, but the operator needs to know whether to
// start vgpud or to fix their permissions. vgpud closes connections from
// callers other than root and its admin group at once (SO_PEERCRED), so a
// connection that is accepted and then closed means "permission denied".
// Two look-alikes are told apart: a connection reset before it was accepted
// (vgpud closed its listening socket with us in its backlog: it is stopping),
// and a SOCK_SEQPACKET socket (vgpud's hook socket) given instead of the
// SOCK_STREAM admin socket: connect() fails with EPROTOTYPE, then succeeds
// with SOCK_SEQPACKET. Thread-safe (blocking, at most about 2 * `wait` long).
#pragma once

#include <chrono>
#include <string>

namespace vgpu::cli {

enum class SocketState {
  kMissing,       // no file at the path: vgpud is not running (or elsewhere)
  kNotSocket,     // something else than a socket is there
  kNoAccess,      // file modes forbid connecting
  kRefused,       // stale socket file: nobody listens
  kClosedByPeer,  // accepted, then closed (twice): refused by vgpud's peer check
  kStopping,      // reset before being accepted, or gone on a second look: vgpud is stopping
  kHookSocket,    // a SOCK_SEQPACKET listener: vgpud's hook socket, not the admin socket
  kAnswers,       // accepted and kept open: the daemon is there
};

SocketState probe_socket(const std::string& path,
                         std::chrono::milliseconds wait = std::chrono::milliseconds(1000));

// One line for the operator, e.g. "vgpud is not running: no admin socket at
// /run/vgpu/vgpud-admin.sock"; `detail` (gRPC's message) is used for kAnswers.
std::string explain_socket(SocketState state, const std::string& path, const std::string& detail);

}  // namespace vgpu::cli
