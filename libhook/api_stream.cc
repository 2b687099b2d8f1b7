// Exported wrappers: stream creation and destruction, so the drain knows the
// streams this process can have work on (stream_drain.h). They forward
// unchanged; nothing is added to launches.
#include "charging.h"
#include "stream_drain.h"

using namespace vgpu::hook;

namespace {

template <class Call>
CUresult destroy_stream(CUstream s, Call call) {
  KnownStream was;
  bool known = streams_forget(s, &was);  // before the driver frees it: the drain stops using it
  CUresult r = call();
  if (r != CUDA_SUCCESS && known) streams_note_again(was);
  return r;
}

}  // namespace

VGPU_EXPORT CUresult cuStreamCreate(CUstream* ps, unsigned int flags) {
  VGPU_REAL_OR_RETURN(real, cuStreamCreate);
  CUresult r = real(ps, flags);
  if (r == CUDA_SUCCESS && ps) streams_note_created(*ps, flags);
  return r;
}

VGPU_EXPORT CUresult cuStreamCreateWithPriority(CUstream* ps, unsigned int flags, int priority) {
  VGPU_REAL_OR_RETURN(real, cuStreamCreateWithPriority);
  CUresult r = real(ps, flags, priority);
  if (r == CUDA_SUCCESS && ps) streams_note_created(*ps, flags);
  return r;
}

VGPU_EXPORT CUresult cuStreamDestroy(CUstream s) {
  VGPU_REAL_OR_RETURN(real, cuStreamDestroy);
  return destroy_stream(s, [&] { return real(s); });
}

VGPU_EXPORT CUresult cuStreamDestroy_v2(CUstream s) {
  VGPU_REAL_OR_RETURN(real, cuStreamDestroy_v2);
  return destroy_stream(s, [&] { return real(s); });
}
