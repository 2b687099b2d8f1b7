// The JSON model of vgpuctl's output: one function per admin API message.
// Field names and units are the stable interface documented in docs/cli.md:
// bytes as integers, shares as fractions 0..1, durations in nanoseconds.
// Pure functions; thread-safe.
#pragma once

#include "admin.pb.h"
#include "output.h"

namespace vgpu::cli {

namespace api = ::vgpu::admin::v1;

Json tenant_json(const api::Tenant& t);
Json tenant_with_token_json(const api::TenantWithToken& t);
Json tenants_json(const google::protobuf::RepeatedPtrField<api::Tenant>& tenants);  // array
Json status_json(const api::NodeStatus& s);
Json process_json(const api::Process& p);
Json processes_json(const google::protobuf::RepeatedPtrField<api::Process>& processes);  // array
Json snapshot_json(const api::Snapshot& s);
Json event_json(const api::Event& e);
Json events_json(const google::protobuf::RepeatedPtrField<api::Event>& events);  // array

}  // namespace vgpu::cli
