// SHA-256 (FIPS 180-4) of a byte string, as 64 lower-case hex digits. Used to
// check vgpud's state files for corruption (torn or edited files), not as a
// defence against an attacker who can write them. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace vgpu::sched {

std::string sha256_hex(std::string_view data);

}  // namespace vgpu::sched
