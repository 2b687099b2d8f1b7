#include "proto_json.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdlib>

namespace vgpu::cli {

namespace {

namespace pb = google::protobuf;

bool is_64bit(pb::FieldDescriptor::CppType t) {
  return t == pb::FieldDescriptor::CPPTYPE_INT64 || t == pb::FieldDescriptor::CPPTYPE_UINT64;
}

Json fix_scalar(const pb::FieldDescriptor* f, const Json& v) {
  if (is_64bit(f->cpp_type()) && v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT64) return Json(std::strtoull(s.c_str(), nullptr, 10));
    return Json(static_cast<int64_t>(std::strtoll(s.c_str(), nullptr, 10)));
  }
  if ((f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE || f->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT) &&
      v.is_number())
    return Json(v.get<double>());
  return v;
}

// Walks `json` (the printer's output for `m`) along m's descriptor.
void fix(const pb::Message& m, Json& json) {
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        if (!json.contains(f->name())) json[f->name()] = Json::array();
        Json& list = json[f->name()];
        for (int k = 0; k < r->FieldSize(m, f) && k < static_cast<int>(list.size()); ++k)
          fix(r->GetRepeatedMessage(m, f, k), list[k]);
      } else {
        // An unset message field is left out by the printer: print its defaults.
        if (!json.contains(f->name())) json[f->name()] = Json::object();
        const pb::Message& sub = r->GetMessage(m, f);
        if (json[f->name()].empty()) json[f->name()] = proto_json(sub);
        else fix(sub, json[f->name()]);
      }
      continue;
    }
    if (!json.contains(f->name())) continue;
    Json& v = json[f->name()];
    if (f->is_repeated()) {
      for (auto& item : v) item = fix_scalar(f, item);
    } else {
      v = fix_scalar(f, v);
    }
  }
}

}  // namespace

Json proto_json(const google::protobuf::Message& message) {
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;   // memory_bytes, not memoryBytes
  options.always_print_primitive_fields = true;  // 0, "" and [] too: a stable set of keys
  std::string text;
  if (!pb::util::MessageToJsonString(message, &text, options).ok()) return Json::object();
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return Json::object();
  fix(message, json);
  return json;
}

Json reshape(const Json& object, std::initializer_list<std::pair<const char*, const char*>> renames,
             std::initializer_list<const char*> order) {
  Json renamed = Json::object();
  for (const auto& [key, value] : object.items()) {
    std::string name = key;
    for (const auto& [from, to] : renames)
      if (key == from) name = to;
    renamed[name] = value;
  }
  Json out = Json::object();
  for (const char* key : order)
    if (renamed.contains(key)) out[key] = renamed[key];
  for (const auto& [key, value] : renamed.items())
    if (!out.contains(key)) out[key] = value;
  return out;
}

}  // namespace vgpu::cli
