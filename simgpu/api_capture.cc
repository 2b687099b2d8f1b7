// Stream capture entry points: cuStreamBeginCapture (legacy, _v2, _ptsz),
// cuStreamEndCapture, cuStreamIsCapturing, cuStreamGetCaptureInfo (v1, _v2,
// _v3, each with _ptsz), cuStreamBeginCaptureToGraph(_ptsz),
// cuStreamUpdateCaptureDependencies (v1, _v2, each with _ptsz) and
// cuThreadExchangeStreamCaptureMode. The rules live in capture.cc.
#include <cstring>

#include "capture.h"

using namespace simgpu;

namespace {

CUresult begin(CUstream h, CUstreamCaptureMode mode, bool per_thread) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  return capture_begin(s, mode);
}

// Captured edges carry no data: edge data, when given, must be all default.
CUresult node_list(const CUgraphNode* deps, const CUgraphEdgeData* edges, size_t n, std::vector<CUgraphNode>* out) {
  if (n > 0 && !deps) return CUDA_ERROR_INVALID_VALUE;
  const CUgraphEdgeData zero{};
  for (size_t i = 0; edges && i < n; ++i)
    if (std::memcmp(&edges[i], &zero, sizeof zero) != 0) return not_supported("capture edges with edge data");
  out->assign(deps, deps + n);
  return CUDA_SUCCESS;
}

CUresult begin_to_graph(CUstream h, CUgraph g, const CUgraphNode* deps, const CUgraphEdgeData* edges, size_t n,
                        CUstreamCaptureMode mode, bool per_thread) {
  if (!g) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  std::vector<CUgraphNode> list;
  if (CUresult r = node_list(deps, edges, n, &list)) return r;
  return capture_begin(s, mode, g, list);
}

CUresult update_deps(CUstream h, CUgraphNode* deps, const CUgraphEdgeData* edges, size_t n, unsigned flags,
                     bool per_thread) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  std::vector<CUgraphNode> list;
  if (CUresult r = node_list(deps, edges, n, &list)) return r;
  return capture_update_deps(s, list, flags);
}

CUresult end(CUstream h, CUgraph* out, bool per_thread) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  return capture_end(s, out);
}

CUresult info(CUstream h, bool per_thread, CUstreamCaptureStatus* status, cuuint64_t* id, CUgraph* graph,
              const CUgraphNode** deps, const CUgraphEdgeData** edges, size_t* ndeps) {
  if (edges && !deps) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  CUresult r = capture_info(s, status, id, graph, deps, ndeps);
  if (r == CUDA_SUCCESS && edges) *edges = nullptr;  // captured edges carry no data
  return r;
}

}  // namespace

// The version-1 export takes no mode: the real driver treats it as GLOBAL.
SIMGPU_EXPORT CUresult cuStreamBeginCapture(CUstream h) { return begin(h, CU_STREAM_CAPTURE_MODE_GLOBAL, false); }
SIMGPU_EXPORT CUresult cuStreamBeginCapture_ptsz(CUstream h) {
  return begin(h, CU_STREAM_CAPTURE_MODE_GLOBAL, true);
}
SIMGPU_EXPORT CUresult cuStreamBeginCapture_v2(CUstream h, CUstreamCaptureMode mode) { return begin(h, mode, false); }
SIMGPU_EXPORT CUresult cuStreamBeginCapture_v2_ptsz(CUstream h, CUstreamCaptureMode mode) {
  return begin(h, mode, true);
}

SIMGPU_EXPORT CUresult cuStreamBeginCaptureToGraph(CUstream h, CUgraph g, const CUgraphNode* deps,
                                                   const CUgraphEdgeData* edges, size_t n, CUstreamCaptureMode mode) {
  return begin_to_graph(h, g, deps, edges, n, mode, false);
}
SIMGPU_EXPORT CUresult cuStreamBeginCaptureToGraph_ptsz(CUstream h, CUgraph g, const CUgraphNode* deps,
                                                        const CUgraphEdgeData* edges, size_t n,
                                                        CUstreamCaptureMode mode) {
  return begin_to_graph(h, g, deps, edges, n, mode, true);
}

SIMGPU_EXPORT CUresult cuStreamUpdateCaptureDependencies(CUstream h, CUgraphNode* deps, size_t n, unsigned flags) {
  return update_deps(h, deps, nullptr, n, flags, false);
}
SIMGPU_EXPORT CUresult cuStreamUpdateCaptureDependencies_ptsz(CUstream h, CUgraphNode* deps, size_t n,
                                                              unsigned flags) {
  return update_deps(h, deps, nullptr, n, flags, true);
}
SIMGPU_EXPORT CUresult cuStreamUpdateCaptureDependencies_v2(CUstream h, CUgraphNode* deps,
                                                            const CUgraphEdgeData* edges, size_t n, unsigned flags) {
  return update_deps(h, deps, edges, n, flags, false);
}
SIMGPU_EXPORT CUresult cuStreamUpdateCaptureDependencies_v2_ptsz(CUstream h, CUgraphNode* deps,
                                                                 const CUgraphEdgeData* edges, size_t n,
                                                                 unsigned flags) {
  return update_deps(h, deps, edges, n, flags, true);
}

SIMGPU_EXPORT CUresult cuStreamEndCapture(CUstream h, CUgraph* out) { return end(h, out, false); }
SIMGPU_EXPORT CUresult cuStreamEndCapture_ptsz(CUstream h, CUgraph* out) { return end(h, out, true); }

SIMGPU_EXPORT CUresult cuStreamIsCapturing(CUstream h, CUstreamCaptureStatus* status) {
  return info(h, false, status, nullptr, nullptr, nullptr, nullptr, nullptr);
}
SIMGPU_EXPORT CUresult cuStreamIsCapturing_ptsz(CUstream h, CUstreamCaptureStatus* status) {
  return info(h, true, status, nullptr, nullptr, nullptr, nullptr, nullptr);
}

SIMGPU_EXPORT CUresult cuStreamGetCaptureInfo(CUstream h, CUstreamCaptureStatus* status, cuuint64_t* id) {
  return info(h, false, status, id, nullptr, nullptr, nullptr, nullptr);
}
SIMGPU_EXPORT CUresult cuStreamGetCaptureInfo_ptsz(CUstream h, CUstreamCaptureStatus* status, cuuint64_t* id) {
  return info(h, true, status, id, nullptr, nullptr, nullptr, nullptr);
}
SIMGPU_EXPORT CUresult cuStreamGetCaptureInfo_v2(CUstream h, CUstreamCaptureStatus* status, cuuint64_t* id,
                                                 CUgraph* graph, const CUgraphNode** deps, size_t* ndeps) {
  return info(h, false, status, id, graph, deps, nullptr, ndeps);
}
SIMGPU_EXPORT CUresult cuStreamGetCaptureInfo_v2_ptsz(CUstream h, CUstreamCaptureStatus* status, cuuint64_t* id,
                                                      CUgraph* graph, const CUgraphNode** deps, size_t* ndeps) {
  return info(h, true, status, id, graph, deps, nullptr, ndeps);
}
SIMGPU_EXPORT CUresult cuStreamGetCaptureInfo_v3(CUstream h, CUstreamCaptureStatus* status, cuuint64_t* id,
                                                 CUgraph* graph, const CUgraphNode** deps,
                                                 const CUgraphEdgeData** edges, size_t* ndeps) {
  return info(h, false, status, id, graph, deps, edges, ndeps);
}
SIMGPU_EXPORT CUresult cuStreamGetCaptureInfo_v3_ptsz(CUstream h, CUstreamCaptureStatus* status, cuuint64_t* id,
                                                      CUgraph* graph, const CUgraphNode** deps,
                                                      const CUgraphEdgeData** edges, size_t* ndeps) {
  return info(h, true, status, id, graph, deps, edges, ndeps);
}

SIMGPU_EXPORT CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  if (!mode) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = require_init()) return r;
  if (*mode != CU_STREAM_CAPTURE_MODE_GLOBAL && *mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      *mode != CU_STREAM_CAPTURE_MODE_RELAXED)
    return CUDA_ERROR_INVALID_VALUE;
  std::swap(*mode, thread_capture_mode());
  return CUDA_SUCCESS;
}
