#include "admin_client.h"

#include "log.h"
#include "socket_probe.h"

namespace vgpu::cli {

std::string describe_status(const grpc::Status& status, const std::string& socket, const std::string& tenant) {
  const std::string& msg = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      // vgpud answers this itself once its event loop has stopped.
      if (msg == "vgpud is shutting down") return "vgpud is not running: it is stopping (" + socket + ")";
      return explain_socket(probe_socket(socket), socket, msg);
    case grpc::StatusCode::NOT_FOUND:
      return tenant.empty() ? "not found: " + msg : "unknown tenant '" + tenant + "'";
    case grpc::StatusCode::ALREADY_EXISTS:
      return tenant.empty() ? "already exists: " + msg : "tenant '" + tenant + "' already exists";
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "rejected by vgpud: " + msg;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return "permission denied: " + (msg.empty() ? std::string("vgpud accepts root and its admin group") : msg);
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "vgpud at " + socket + " did not answer in time";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "this vgpud does not support the request (" + msg + ")";
    default:
      return "vgpud error (code " + std::to_string(static_cast<int>(status.error_code())) + "): " + msg;
  }
}

std::string describe_lost_stream(const grpc::Status& status, const std::string& socket) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return describe_status(status, socket, "");
  SocketState state = probe_socket(socket);
  switch (state) {
    case SocketState::kMissing:
    case SocketState::kRefused:
    case SocketState::kStopping:
      return explain_socket(state, socket, "");
    default:
      return "lost the connection to vgpud at " + socket + " (it stopped or restarted): " + status.error_message();
  }
}

AdminClient::AdminClient(std::string socket_path, std::chrono::seconds timeout)
    : socket_(std::move(socket_path)), timeout_(timeout) {
  auto channel = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
  stub_ = api::Admin::NewStub(channel);
}

template <class Req, class Resp, class Method>
Result<Resp> AdminClient::call(const char* rpc, Method method, const Req& req, const std::string& tenant) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
  Resp resp;
  log().debug("{} on {} (deadline {}s)", rpc, socket_, timeout_.count());
  auto start = std::chrono::steady_clock::now();
  grpc::Status status = ((*stub_).*method)(&ctx, req, &resp);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!status.ok()) {
    log().debug("{} failed after {:.1f}ms: code {} \"{}\"", rpc, ms, static_cast<int>(status.error_code()),
                status.error_message());
    return make_error(describe_status(status, socket_, tenant));
  }
  log().debug("{} OK in {:.1f}ms ({} bytes)", rpc, ms, resp.ByteSizeLong());
  return resp;
}

Result<api::ListTenantsResponse> AdminClient::list_tenants() {
  return call<api::ListTenantsRequest, api::ListTenantsResponse>("ListTenants", &api::Admin::Stub::ListTenants,
                                                                 api::ListTenantsRequest(), "");
}

Result<api::Tenant> AdminClient::get_tenant(const std::string& name) {
  api::GetTenantRequest req;
  req.set_name(name);
  return call<api::GetTenantRequest, api::Tenant>("GetTenant", &api::Admin::Stub::GetTenant, req, name);
}

Result<api::TenantWithToken> AdminClient::create_tenant(const api::CreateTenantRequest& req) {
  return call<api::CreateTenantRequest, api::TenantWithToken>("CreateTenant", &api::Admin::Stub::CreateTenant, req,
                                                              req.spec().name());
}

Result<api::Tenant> AdminClient::update_tenant(const api::UpdateTenantRequest& req) {
  return call<api::UpdateTenantRequest, api::Tenant>("UpdateTenant", &api::Admin::Stub::UpdateTenant, req, req.name());
}

Result<api::Tenant> AdminClient::reset_tenant(const std::string& name) {
  api::ResetTenantRequest req;
  req.set_name(name);
  return call<api::ResetTenantRequest, api::Tenant>("ResetTenant", &api::Admin::Stub::ResetTenant, req, name);
}

Result<api::DeleteTenantResponse> AdminClient::delete_tenant(const std::string& name) {
  api::DeleteTenantRequest req;
  req.set_name(name);
  return call<api::DeleteTenantRequest, api::DeleteTenantResponse>("DeleteTenant", &api::Admin::Stub::DeleteTenant, req, name);
}

Result<api::TenantWithToken> AdminClient::rotate_token(const std::string& name, const std::string& token) {
  api::RotateTokenRequest req;
  req.set_name(name);
  req.set_token(token);
  return call<api::RotateTokenRequest, api::TenantWithToken>("RotateToken", &api::Admin::Stub::RotateToken, req, name);
}

Result<api::NodeStatus> AdminClient::status() {
  return call<api::GetStatusRequest, api::NodeStatus>("GetStatus", &api::Admin::Stub::GetStatus, api::GetStatusRequest(), "");
}

Result<api::ListProcessesResponse> AdminClient::processes(const std::string& tenant) {
  api::ListProcessesRequest req;
  req.set_tenant(tenant);
  return call<api::ListProcessesRequest, api::ListProcessesResponse>("ListProcesses", &api::Admin::Stub::ListProcesses, req, tenant);
}

Result<api::ListEventsResponse> AdminClient::events(const api::ListEventsRequest& req) {
  return call<api::ListEventsRequest, api::ListEventsResponse>("ListEvents", &api::Admin::Stub::ListEvents, req, "");
}

std::unique_ptr<WatchStream> AdminClient::watch(uint32_t interval_ms) {
  auto stream = std::make_unique<WatchStream>(std::make_unique<grpc::ClientContext>(), socket_);
  api::WatchRequest req;
  req.set_interval_ms(interval_ms);
  log().debug("Watch on {} every {}ms", socket_, interval_ms);
  stream->reader_ = stub_->Watch(stream->ctx_.get(), req);
  return stream;
}

WatchStream::WatchStream(std::unique_ptr<grpc::ClientContext> ctx, std::string socket)
    : ctx_(std::move(ctx)), socket_(std::move(socket)) {}

bool WatchStream::next(api::Snapshot* out) {
  if (!reader_->Read(out)) return false;
  ++received_;
  return true;
}

void WatchStream::cancel() {
  cancelled_.store(true);
  ctx_->TryCancel();
}

Result<bool> WatchStream::finish() {
  grpc::Status status = reader_->Finish();
  log().debug("Watch ended after {} snapshots: code {} \"{}\"", received_, static_cast<int>(status.error_code()),
              status.error_message());
  if (cancelled_.load() && (status.ok() || status.error_code() == grpc::StatusCode::CANCELLED)) return true;
  if (status.ok()) return make_error("vgpud at " + socket_ + " ended the stream (it is stopping)");
  if (received_ > 0) return make_error(describe_lost_stream(status, socket_));
  return make_error(describe_status(status, socket_, ""));
}

}  // namespace vgpu::cli
