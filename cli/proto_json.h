// A protobuf message as JSON, through protobuf's own JSON printer
// (google::protobuf::util::MessageToJsonString) with the field names of the
// .proto file and every field printed, defaults included. Two corrections
// keep the types docs/cli.md documents: 64-bit integers, which proto3 JSON
// writes as strings (JavaScript numbers are doubles), become numbers again,
// and double fields stay doubles (the printer writes 1.0 as 1). Both follow
// the message's descriptor, so a field added to the .proto appears without
// changes here. Pure functions; thread-safe.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include <google/protobuf/message.h>

#include "output.h"

namespace vgpu::cli {

Json proto_json(const google::protobuf::Message& message);

// `object` with keys renamed ({from, to} pairs) and reordered: the keys of
// `order` first, in that order, then any others in their original order
// (fields added to the .proto later). The documented JSON shape predates the
// .proto's field names and numbering; this is the whole of the difference.
Json reshape(const Json& object, std::initializer_list<std::pair<const char*, const char*>> renames,
             std::initializer_list<const char*> order);

}  // namespace vgpu::cli
