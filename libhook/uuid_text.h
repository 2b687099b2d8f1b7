// GPU and MIG UUIDs as NVML prints them ("GPU-1307b00a-6c26-4ed0-b7da-7062b5cebc62",
// "MIG-...") and as CUDA returns them (16 bytes). Pure; thread-safe.
#pragma once

namespace vgpu::hook {

// Parses the text form (the "GPU-" or "MIG-" prefix and dashes are optional) into 16
// bytes. Returns false unless exactly 32 hex digits are present.
bool parse_uuid_text(const char* text, unsigned char out[16]);

}  // namespace vgpu::hook
