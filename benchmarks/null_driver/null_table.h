// The null driver's entry-point table (generated into null_table.cc from
// libhook/hooks.inc and null_symbols.txt): every exported symbol with the
// base name and version under which cuGetProcAddress hands it out.
// Read-only after load; thread-safe.
#pragma once

namespace nulldrv {

struct ProcRow {
  const char* base;  // cuGetProcAddress name, e.g. "cuMemAlloc"
  int version;       // CUDA version that introduced this ABI, e.g. 3020
  int ptsz;          // 1: the per-thread default stream variant
  void* fn;
};

extern const ProcRow kProcTable[];
extern const int kProcCount;

}  // namespace nulldrv
