// CUDA arrays and mipmapped arrays: creation (charged to the device),
// descriptors, levels and destruction. An array is backed by one device range
// (a MemKind::kArray registry record holding the charge); its size is
// round_up(width * channels * element size, 512) * height * depth, and a
// mipmapped array charges the sum of its levels. Array copies and texture
// access are not simulated.
#include <algorithm>

#include "memory.h"

using namespace simgpu;

namespace {

constexpr size_t kRowAlignment = 512;

struct Array {
  CUDA_ARRAY3D_DESCRIPTOR desc{};
  Context* ctx = nullptr;
  CUdeviceptr backing = 0;  // 0 for a mipmap level (the mipmap holds the memory)
};

struct Mipmap {
  Context* ctx = nullptr;
  CUdeviceptr backing = 0;
  std::vector<Array*> levels;
};

HandleTable<Array> g_arrays;   // arrays the application may destroy
HandleTable<Array> g_levels;   // levels of mipmapped arrays
HandleTable<Mipmap> g_mipmaps;

size_t element_size(CUarray_format f) {
  switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT8: return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_HALF: return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32: case CU_AD_FORMAT_SIGNED_INT32: case CU_AD_FORMAT_FLOAT: return 4;
    default: return 0;
  }
}

CUresult check_desc(const CUDA_ARRAY3D_DESCRIPTOR& d) {
  constexpr unsigned kFlags = CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_SURFACE_LDST | CUDA_ARRAY3D_CUBEMAP |
                              CUDA_ARRAY3D_TEXTURE_GATHER | CUDA_ARRAY3D_COLOR_ATTACHMENT;
  if (element_size(d.Format) == 0) return CUDA_ERROR_INVALID_VALUE;
  if (d.NumChannels != 1 && d.NumChannels != 2 && d.NumChannels != 4) return CUDA_ERROR_INVALID_VALUE;
  if (d.Width == 0 || (d.Flags & ~kFlags)) return CUDA_ERROR_INVALID_VALUE;
  bool layered = d.Flags & CUDA_ARRAY3D_LAYERED;
  if (d.Depth > 0 && d.Height == 0 && !layered) return CUDA_ERROR_INVALID_VALUE;
  if ((d.Flags & CUDA_ARRAY3D_CUBEMAP) && (d.Width != d.Height || (layered ? d.Depth % 6 : d.Depth != 6)))
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

uint64_t bytes_of(const CUDA_ARRAY3D_DESCRIPTOR& d) {
  uint64_t row = (d.Width * d.NumChannels * element_size(d.Format) + kRowAlignment - 1) / kRowAlignment * kRowAlignment;
  return row * std::max<size_t>(d.Height, 1) * std::max<size_t>(d.Depth, 1);
}

CUDA_ARRAY3D_DESCRIPTOR level_desc(const CUDA_ARRAY3D_DESCRIPTOR& d, unsigned level) {
  CUDA_ARRAY3D_DESCRIPTOR l = d;
  auto shrink = [level](size_t v) { return v == 0 ? 0 : std::max<size_t>(v >> level, 1); };
  l.Width = shrink(d.Width);
  l.Height = shrink(d.Height);
  if (!(d.Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP))) l.Depth = shrink(d.Depth);
  return l;
}

// Releases a kArray backing range and its charge.
void free_backing(CUdeviceptr base) {
  if (auto a = unregister_allocation(base)) {
    give_back_address(a->device, a->base, a->extent);
    uncharge_device(a->device, a->charged);
  }
}

void destroy_mipmap(Mipmap* m) {
  for (Array* l : m->levels) {
    g_levels.remove(l);
    delete l;
  }
  free_backing(m->backing);
  delete m;
}

void free_context_arrays(Context* ctx) {
  for (Array* a : g_arrays.snapshot())
    if (a->ctx == ctx && g_arrays.remove(a)) {
      free_backing(a->backing);
      delete a;
    }
  for (Mipmap* m : g_mipmaps.snapshot())
    if (m->ctx == ctx && g_mipmaps.remove(m)) destroy_mipmap(m);
}

void install_hooks() {
  static std::once_flag once;
  std::call_once(once, [] { Driver::get().on_context_destroy(free_context_arrays); });
}

CUresult create_array(const CUDA_ARRAY3D_DESCRIPTOR& d, CUarray* out) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_desc(d)) return r;
  install_hooks();
  uint64_t bytes = bytes_of(d);
  auto* a = new Array();
  if (CUresult r = alloc_device_memory(c, bytes, bytes, MemKind::kArray, 0, &a->backing)) {
    delete a;
    return r;
  }
  a->desc = d;
  a->ctx = c;
  g_arrays.add(a);
  *out = reinterpret_cast<CUarray>(a);
  return CUDA_SUCCESS;
}

Array* any_array(CUarray h) {
  auto* a = reinterpret_cast<Array*>(h);
  return h && (g_arrays.contains(a) || g_levels.contains(a)) ? a : nullptr;
}

}  // namespace

SIMGPU_EXPORT CUresult cuArrayCreate_v2(CUarray* pHandle, const CUDA_ARRAY_DESCRIPTOR* d) {
  if (CUresult r = require_init()) return r;
  if (!d) return CUDA_ERROR_INVALID_VALUE;
  CUDA_ARRAY3D_DESCRIPTOR d3{};
  d3.Width = d->Width;
  d3.Height = d->Height;
  d3.Format = d->Format;
  d3.NumChannels = d->NumChannels;
  return create_array(d3, pHandle);
}

SIMGPU_EXPORT CUresult cuArray3DCreate_v2(CUarray* pHandle, const CUDA_ARRAY3D_DESCRIPTOR* d) {
  if (CUresult r = require_init()) return r;
  if (!d) return CUDA_ERROR_INVALID_VALUE;
  return create_array(*d, pHandle);
}

SIMGPU_EXPORT CUresult cuArrayDestroy(CUarray hArray) {
  if (CUresult r = require_init()) return r;
  auto* a = reinterpret_cast<Array*>(hArray);
  if (!hArray || !g_arrays.remove(a)) return CUDA_ERROR_INVALID_HANDLE;
  free_backing(a->backing);
  delete a;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuArrayGetDescriptor_v2(CUDA_ARRAY_DESCRIPTOR* out, CUarray hArray) {
  if (CUresult r = require_init()) return r;
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Array* a = any_array(hArray);
  if (!a) return CUDA_ERROR_INVALID_HANDLE;
  out->Width = a->desc.Width;
  out->Height = a->desc.Height;
  out->Format = a->desc.Format;
  out->NumChannels = a->desc.NumChannels;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuArray3DGetDescriptor_v2(CUDA_ARRAY3D_DESCRIPTOR* out, CUarray hArray) {
  if (CUresult r = require_init()) return r;
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Array* a = any_array(hArray);
  if (!a) return CUDA_ERROR_INVALID_HANDLE;
  *out = a->desc;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray* pHandle, const CUDA_ARRAY3D_DESCRIPTOR* d,
                                              unsigned int numLevels) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (!pHandle || !d || numLevels == 0) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_desc(*d)) return r;
  size_t largest = std::max({d->Width, d->Height, (d->Flags & CUDA_ARRAY3D_LAYERED) ? size_t{0} : d->Depth});
  unsigned max_levels = 1;
  while ((largest >> max_levels) > 0) ++max_levels;
  if (numLevels > max_levels) return CUDA_ERROR_INVALID_VALUE;
  install_hooks();
  uint64_t bytes = 0;
  for (unsigned i = 0; i < numLevels; ++i) bytes += bytes_of(level_desc(*d, i));
  auto* m = new Mipmap();
  m->ctx = c;
  if (CUresult r = alloc_device_memory(c, bytes, bytes, MemKind::kArray, 0, &m->backing)) {
    delete m;
    return r;
  }
  for (unsigned i = 0; i < numLevels; ++i) {
    auto* l = new Array();
    l->desc = level_desc(*d, i);
    l->ctx = c;
    m->levels.push_back(l);
    g_levels.add(l);
  }
  g_mipmaps.add(m);
  *pHandle = reinterpret_cast<CUmipmappedArray>(m);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMipmappedArrayGetLevel(CUarray* pLevelArray, CUmipmappedArray hMipmappedArray,
                                                unsigned int level) {
  if (CUresult r = require_init()) return r;
  if (!pLevelArray) return CUDA_ERROR_INVALID_VALUE;
  auto* m = reinterpret_cast<Mipmap*>(hMipmappedArray);
  if (!m || !g_mipmaps.contains(m)) return CUDA_ERROR_INVALID_HANDLE;
  if (level >= m->levels.size()) return CUDA_ERROR_INVALID_VALUE;
  *pLevelArray = reinterpret_cast<CUarray>(m->levels[level]);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray hMipmappedArray) {
  if (CUresult r = require_init()) return r;
  auto* m = reinterpret_cast<Mipmap*>(hMipmappedArray);
  if (!m || !g_mipmaps.remove(m)) return CUDA_ERROR_INVALID_HANDLE;
  destroy_mipmap(m);
  return CUDA_SUCCESS;
}
