// File offsets of exported functions in an ELF shared library, for attaching
// uprobes by offset (a uprobe_multi link takes offsets, not names).
//
// The offset of a function is where its first instruction lies in the file:
// its symbol value (a virtual address) moved from the PT_LOAD segment that
// contains it to that segment's file position. Both the dynamic symbol table
// and, when present, the full symbol table are searched; undefined symbols,
// data symbols and address 0 are ignored.
//
// Thread-safety: a pure function of the file's contents.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vgpu/result.h"

namespace vgpu::sched {

// For each of `names` found as a defined function symbol in the ELF file at
// `path`, its file offset. Names not found are absent from the result. Fails
// (with the reason) when the file cannot be read or is not a 64-bit ELF file
// of this machine's byte order.
Result<std::map<std::string, uint64_t>> elf_function_offsets(const std::string& path,
                                                              const std::vector<std::string>& names);

}  // namespace vgpu::sched
