// AdminClient: vgpuctl's connection to vgpud's admin API (gRPC over the
// admin Unix socket). Every call returns the answer or an Error whose message
// is the one line vgpuctl prints: it names the tenant for NOT_FOUND, carries
// the server's message for INVALID_ARGUMENT, and for UNAVAILABLE says
// whether vgpud is not running or the caller is not allowed (socket_probe.h).
// Not thread-safe except WatchStream::cancel.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "admin.grpc.pb.h"
#include "vgpu/result.h"

namespace vgpu::cli {

namespace api = ::vgpu::admin::v1;

// A running Watch call; next() blocks until the next snapshot.
class WatchStream {
 public:
  WatchStream(std::unique_ptr<grpc::ClientContext> ctx, std::string socket);
  // False when the stream ended (cancelled, daemon gone); then finish().
  bool next(api::Snapshot* out);
  // Ends the stream from any thread; next() returns false soon after.
  void cancel();
  // Why the stream ended; ok (true) when it was cancelled by us. A stream
  // that delivered snapshots and then failed means vgpud went away (it had
  // let us in, so this is never "permission denied"); one that vgpud ended
  // by itself is an error too ("vgpud closed the stream").
  Result<bool> finish();

 private:
  friend class AdminClient;
  std::atomic<bool> cancelled_{false};
  uint64_t received_ = 0;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReader<api::Snapshot>> reader_;
  std::string socket_;
};

class AdminClient {
 public:
  // Connects lazily: the first call reports an unreachable daemon.
  explicit AdminClient(std::string socket_path, std::chrono::seconds timeout = std::chrono::seconds(10));

  Result<api::ListTenantsResponse> list_tenants();
  Result<api::Tenant> get_tenant(const std::string& name);
  Result<api::TenantWithToken> create_tenant(const api::CreateTenantRequest& req);
  Result<api::Tenant> update_tenant(const api::UpdateTenantRequest& req);
  Result<api::DeleteTenantResponse> delete_tenant(const std::string& name);
  Result<api::Tenant> reset_tenant(const std::string& name);
  Result<api::TenantWithToken> rotate_token(const std::string& name, const std::string& token);
  Result<api::NodeStatus> status();
  Result<api::ListProcessesResponse> processes(const std::string& tenant);
  Result<api::ListEventsResponse> events(const api::ListEventsRequest& req);
  // Starts a Watch; the error (if any) shows on the first next()/finish().
  std::unique_ptr<WatchStream> watch(uint32_t interval_ms);

  const std::string& socket() const { return socket_; }

 private:
  // Runs one unary RPC; `rpc` names it in the -v log.
  template <class Req, class Resp, class Method>
  Result<Resp> call(const char* rpc, Method method, const Req& req, const std::string& tenant);

  std::string socket_;
  std::chrono::seconds timeout_;
  std::unique_ptr<api::Admin::Stub> stub_;
};

// The one-line message for a failed call (exposed for tests). `tenant` names
// the tenant the call was about, if any.
std::string describe_status(const grpc::Status& status, const std::string& socket, const std::string& tenant);
// The message when a Watch stream that had delivered snapshots fails.
std::string describe_lost_stream(const grpc::Status& status, const std::string& socket);

}  // namespace vgpu::cli
