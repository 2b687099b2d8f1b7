#include "admin_client.h"

#include "socket_probe.h"

namespace vgpu::cli {

std::string describe_status(const grpc::Status& status, const std::string& socket, const std::string& tenant) {
  const std::string& msg = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
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

AdminClient::AdminClient(std::string socket_path, std::chrono::seconds timeout)
    : socket_(std::move(socket_path)), timeout_(timeout) {
  auto channel = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
  stub_ = api::Admin::NewStub(channel);
}

template <class Req, class Resp, class Method>
Result<Resp> AdminClient::call(Method method, const Req& req, const std::string& tenant) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
  Resp resp;
  grpc::Status status = ((*stub_).*method)(&ctx, req, &resp);
  if (!status.ok()) return make_error(describe_status(status, socket_, tenant));
  return resp;
}

Result<api::ListTenantsResponse> AdminClient::list_tenants() {
  return call<api::ListTenantsRequest, api::ListTenantsResponse>(&api::Admin::Stub::ListTenants,
                                                                 api::ListTenantsRequest(), "");
}

Result<api::Tenant> AdminClient::get_tenant(const std::string& name) {
  api::GetTenantRequest req;
  req.set_name(name);
  return call<api::GetTenantRequest, api::Tenant>(&api::Admin::Stub::GetTenant, req, name);
}

Result<api::TenantWithToken> AdminClient::create_tenant(const api::CreateTenantRequest& req) {
  return call<api::CreateTenantRequest, api::TenantWithToken>(&api::Admin::Stub::CreateTenant, req,
                                                              req.spec().name());
}

Result<api::Tenant> AdminClient::update_tenant(const api::UpdateTenantRequest& req) {
  return call<api::UpdateTenantRequest, api::Tenant>(&api::Admin::Stub::UpdateTenant, req, req.name());
}

Result<api::DeleteTenantResponse> AdminClient::delete_tenant(const std::string& name) {
  api::DeleteTenantRequest req;
  req.set_name(name);
  return call<api::DeleteTenantRequest, api::DeleteTenantResponse>(&api::Admin::Stub::DeleteTenant, req, name);
}

Result<api::TenantWithToken> AdminClient::rotate_token(const std::string& name, const std::string& token) {
  api::RotateTokenRequest req;
  req.set_name(name);
  req.set_token(token);
  return call<api::RotateTokenRequest, api::TenantWithToken>(&api::Admin::Stub::RotateToken, req, name);
}

Result<api::NodeStatus> AdminClient::status() {
  return call<api::GetStatusRequest, api::NodeStatus>(&api::Admin::Stub::GetStatus, api::GetStatusRequest(), "");
}

Result<api::ListProcessesResponse> AdminClient::processes(const std::string& tenant) {
  api::ListProcessesRequest req;
  req.set_tenant(tenant);
  return call<api::ListProcessesRequest, api::ListProcessesResponse>(&api::Admin::Stub::ListProcesses, req, tenant);
}

Result<api::ListEventsResponse> AdminClient::events(const api::ListEventsRequest& req) {
  return call<api::ListEventsRequest, api::ListEventsResponse>(&api::Admin::Stub::ListEvents, req, "");
}

std::unique_ptr<WatchStream> AdminClient::watch(uint32_t interval_ms) {
  auto stream = std::make_unique<WatchStream>(std::make_unique<grpc::ClientContext>(), socket_);
  api::WatchRequest req;
  req.set_interval_ms(interval_ms);
  stream->reader_ = stub_->Watch(stream->ctx_.get(), req);
  return stream;
}

WatchStream::WatchStream(std::unique_ptr<grpc::ClientContext> ctx, std::string socket)
    : ctx_(std::move(ctx)), socket_(std::move(socket)) {}

bool WatchStream::next(api::Snapshot* out) { return reader_->Read(out); }

void WatchStream::cancel() {
  ctx_->TryCancel();
}

Result<bool> WatchStream::finish() {
  grpc::Status status = reader_->Finish();
  if (status.ok() || status.error_code() == grpc::StatusCode::CANCELLED) return true;
  return make_error(describe_status(status, socket_, ""));
}

}  // namespace vgpu::cli
