#include "allocator.h"

#include <algorithm>

namespace vgpu::workload {
namespace {

// Shapes of the pitched and array allocations: rows of at most this many
// bytes, so that `size` bytes need ceil(size / row) rows.
constexpr uint64_t kPitchRowBytes = 64 * 1024;
constexpr uint64_t kArrayMaxWidth = 131072;  // elements; H100's maximum 2D width
constexpr uint64_t kArrayElementBytes = 4;   // CU_AD_FORMAT_UNSIGNED_INT8 x 4 channels

uint64_t div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

CUmemLocation device_location(CUdevice device) {
  CUmemLocation loc{};
  loc.type = CU_MEM_LOCATION_TYPE_DEVICE;
  loc.id = device;
  return loc;
}

}  // namespace

Allocator::Allocator(AllocApi api, CUdevice device, CUstream stream, ErrorLog* log)
    : api_(api), device_(device), stream_(stream), log_(log) {
  report_.api = alloc_api_name(api);
}

Allocator::~Allocator() {
  release_all();
  if (pool_ != nullptr) log_->check("cuMemPoolDestroy", cuMemPoolDestroy(pool_));
}

void Allocator::run(uint64_t size, int count, bool hold) {
  report_.size = size;
  if (api_ == AllocApi::kNone || size == 0) return;
  for (int i = 0; i < count; ++i) {
    ++report_.requested;
    Block b;
    CUresult r = allocate(size, &b);
    if (r != CUDA_SUCCESS) {
      ++report_.failed;
      ++report_.errors[error_name(r)];
      continue;
    }
    ++report_.ok;
    held_.push_back(b);
    held_bytes_ += b.bytes;
    report_.peak_bytes = std::max(report_.peak_bytes, held_bytes_);
    if (!hold) release_all();
  }
}

CUresult Allocator::allocate(uint64_t size, Block* b) {
  b->bytes = size;
  switch (api_) {
    case AllocApi::kAlloc:
      return cuMemAlloc(&b->ptr, size);
    case AllocApi::kPitch: {
      size_t width = std::min(size, kPitchRowBytes), pitch = 0;
      CUresult r = cuMemAllocPitch(&b->ptr, &pitch, width, div_up(size, width), 4);
      if (r == CUDA_SUCCESS) b->bytes = pitch * div_up(size, width);
      return r;
    }
    case AllocApi::kManaged:
      return cuMemAllocManaged(&b->ptr, size, CU_MEM_ATTACH_GLOBAL);
    case AllocApi::kAsync: {
      CUresult r = cuMemAllocAsync(&b->ptr, size, stream_);
      return r == CUDA_SUCCESS ? cuStreamSynchronize(stream_) : r;
    }
    case AllocApi::kPool:
      return allocate_pool(size, b);
    case AllocApi::kVmm:
      return allocate_vmm(size, b);
    case AllocApi::kArray:
      return allocate_array(size, b);
    case AllocApi::kNone:
      break;
  }
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult Allocator::allocate_pool(uint64_t size, Block* b) {
  if (pool_ == nullptr) {
    CUmemPoolProps props{};
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.handleTypes = CU_MEM_HANDLE_TYPE_NONE;
    props.location = device_location(device_);
    if (CUresult r = cuMemPoolCreate(&pool_, &props); r != CUDA_SUCCESS) {
      pool_ = nullptr;
      return r;
    }
  }
  CUresult r = cuMemAllocFromPoolAsync(&b->ptr, size, pool_, stream_);
  return r == CUDA_SUCCESS ? cuStreamSynchronize(stream_) : r;
}

// Physical memory, a virtual range, the mapping and access rights: the four
// steps a VMM user (e.g. PyTorch's expandable segments) goes through.
CUresult Allocator::allocate_vmm(uint64_t size, Block* b) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location = device_location(device_);
  size_t granularity = 0;
  CUresult r = cuMemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
  if (r != CUDA_SUCCESS) return r;
  b->bytes = div_up(size, granularity) * granularity;
  if ((r = cuMemCreate(&b->handle, b->bytes, &prop, 0)) != CUDA_SUCCESS) return r;
  if ((r = cuMemAddressReserve(&b->ptr, b->bytes, 0, 0, 0)) == CUDA_SUCCESS) {
    if ((r = cuMemMap(b->ptr, b->bytes, 0, b->handle, 0)) == CUDA_SUCCESS) {
      CUmemAccessDesc access{};
      access.location = device_location(device_);
      access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
      if ((r = cuMemSetAccess(b->ptr, b->bytes, &access, 1)) == CUDA_SUCCESS) return r;
      log_->check("cuMemUnmap", cuMemUnmap(b->ptr, b->bytes));
    }
    log_->check("cuMemAddressFree", cuMemAddressFree(b->ptr, b->bytes));
  }
  log_->check("cuMemRelease", cuMemRelease(b->handle));
  return r;
}

CUresult Allocator::allocate_array(uint64_t size, Block* b) {
  CUDA_ARRAY_DESCRIPTOR desc{};
  desc.Format = CU_AD_FORMAT_UNSIGNED_INT8;
  desc.NumChannels = 4;
  desc.Width = std::min(div_up(size, kArrayElementBytes), kArrayMaxWidth);
  desc.Height = div_up(size, desc.Width * kArrayElementBytes);
  b->bytes = desc.Width * desc.Height * kArrayElementBytes;
  return cuArrayCreate(&b->array, &desc);
}

void Allocator::release(Block& b) {
  switch (api_) {
    case AllocApi::kAsync:
    case AllocApi::kPool:
      if (log_->check("cuMemFreeAsync", cuMemFreeAsync(b.ptr, stream_)))
        log_->check("cuStreamSynchronize", cuStreamSynchronize(stream_));
      break;
    case AllocApi::kVmm:
      log_->check("cuMemUnmap", cuMemUnmap(b.ptr, b.bytes));
      log_->check("cuMemAddressFree", cuMemAddressFree(b.ptr, b.bytes));
      log_->check("cuMemRelease", cuMemRelease(b.handle));
      break;
    case AllocApi::kArray:
      log_->check("cuArrayDestroy", cuArrayDestroy(b.array));
      break;
    default:
      log_->check("cuMemFree", cuMemFree(b.ptr));
  }
}

void Allocator::release_all() {
  for (Block& b : held_) release(b);
  held_.clear();
  held_bytes_ = 0;
}

}  // namespace vgpu::workload
