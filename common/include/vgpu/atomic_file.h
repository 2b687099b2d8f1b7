// Writing a file so that readers see either the old or the whole new content:
// a temporary file "<path>.tmp.<pid>" in the same directory, written, given
// `mode`, fsynced, renamed over `path`, and the directory fsynced. On error
// the temporary file is removed and the message names the file and errno.
// Used for vgpud's state and tokens and the device plugin's CDI specs (a
// CDI loader reads only *.json/*.yaml, so it never sees the temporary file).
#pragma once

#include <string>

#include "vgpu/result.h"

namespace vgpu {

Result<bool> write_file_atomically(const std::string& path, const std::string& data, unsigned mode);

}  // namespace vgpu
