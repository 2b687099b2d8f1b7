// Stream capture (cuStreamBeginCapture ... cuStreamEndCapture), modelled on
// cuda.h and the real driver's observed behaviour; docs/simgpu.md, "Stream
// capture", lists the rules. A capture sequence owns a graph (graph.h); every
// stream taking part (the origin and streams joined through events) points at
// it and keeps the set of nodes its next captured op depends on.
//
// Entry points that queue work call submit_op instead of enqueue_ordered; those
// that synchronize or allocate call the checks below first.
//
// Thread-safety: everything here is thread-safe (one process-wide mutex guards
// all capture state, including Stream::capture / capture_deps).
#pragma once

#include "driver.h"

namespace simgpu {

struct EventRecord;

struct Capture {
  uint64_t id = 0;
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  std::thread::id owner;  // thread that began the capture
  Context* ctx = nullptr;
  CUgraph graph = nullptr;
  bool owns_graph = true;  // false: cuStreamBeginCaptureToGraph's graph stays the caller's
  Stream* origin = nullptr;
  bool invalidated = false;
  bool ended = false;
  std::vector<std::weak_ptr<Stream>> members;  // origin and joined streams
};

// Queues `op` on `s`, or, when `s` is capturing, adds it to the capture's graph
// as a node of `type` that does not run now. Errors: INVALIDATED when the
// capture was invalidated; IMPLICIT for work on the legacy stream while a
// blocking stream of its context captures (those captures are invalidated).
// *seq gets the op's sequence number, 0 when captured.
CUresult submit_op(const std::shared_ptr<Stream>& s, StreamOp op, CUgraphNodeType type, uint64_t* seq = nullptr);

// Work that becomes a graph node of its own kind when `s` captures (a graph
// launch, a stream-ordered allocation or free): when `s` captures, calls
// add(graph, the stream's pending dependencies, &node) under the capture lock,
// makes the node the stream's next dependency and sets *captured; errors as
// submit_op (INVALIDATED, IMPLICIT) or add's own (the capture goes on).
// Otherwise *captured = false and the caller runs the work as usual.
using AddNodeFn = std::function<CUresult(CUgraph, const std::vector<CUgraphNode>&, CUgraphNode*)>;
CUresult capture_node(const std::shared_ptr<Stream>& s, const AddNodeFn& add, bool* captured);

// A potentially unsafe call (allocation, synchronization, query) by this
// thread: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, invalidating the captures that
// forbid it, when this thread's mode is not RELAXED and it has a non-RELAXED
// capture of its own or (mode GLOBAL) another thread has a GLOBAL capture.
CUresult check_unsafe_call();

// cuStreamSynchronize / cuStreamQuery of `s`: UNSUPPORTED (and the capture
// invalidated) when `s` captures, IMPLICIT for the legacy stream while a
// blocking stream of its context captures, else check_unsafe_call().
CUresult check_stream_sync(const std::shared_ptr<Stream>& s);

// cuCtxSynchronize of `ctx`: a context sync encompasses every stream of the
// context, so while one of them captures it necessarily conflicts with the
// capture and is refused in every mode (RELAXED permits only "potentially
// unsafe" calls): UNSUPPORTED, those captures invalidated; else
// check_unsafe_call().
CUresult check_context_sync(Context* ctx);

// Called by cuEventRecord with the event's new record: when `s` captures, fills
// the record's capture fields and returns true (nothing must be queued). May
// fail like submit_op (*err set, returns true).
bool capture_event_record(const std::shared_ptr<Stream>& s, EventRecord* rec, CUresult* err);

// cuEventQuery / cuEventSynchronize: CAPTURED_EVENT when the event was last
// recorded in a capture still in progress, else check_unsafe_call().
CUresult check_event_sync(const std::shared_ptr<EventRecord>& rec);

// cuStreamWaitEvent(s, event whose latest record is `rec`): handles the cases
// where `s` or the record is part of a capture (fork/join, ISOLATION, MERGE).
// Returns true when handled (result in *err); false: queue the wait as usual.
bool capture_wait_event(const std::shared_ptr<Stream>& s, const std::shared_ptr<EventRecord>& rec,
                        unsigned flags, CUresult* err);

// The calling thread's capture interaction mode (GLOBAL until exchanged).
CUstreamCaptureMode& thread_capture_mode();

// cuStreamBeginCapture: UNSUPPORTED on the legacy stream, ILLEGAL_STATE when
// `s` already captures, INVALID_VALUE for an unknown mode. With `into`
// (cuStreamBeginCaptureToGraph), nodes go into that graph after `deps`
// (INVALID_VALUE unless they are its nodes).
CUresult capture_begin(const std::shared_ptr<Stream>& s, CUstreamCaptureMode mode, CUgraph into = nullptr,
                       const std::vector<CUgraphNode>& deps = {});
// cuStreamUpdateCaptureDependencies: ILLEGAL_STATE unless `s` captures;
// INVALID_VALUE for nodes not in the capture's graph or unknown flags.
CUresult capture_update_deps(const std::shared_ptr<Stream>& s, const std::vector<CUgraphNode>& deps,
                             unsigned flags);
// cuStreamEndCapture: ILLEGAL_STATE when `s` does not capture, UNMATCHED when
// it was not the origin, WRONG_THREAD (capture goes on), then INVALIDATED or
// UNJOINED (capture ended, *out = NULL) or the graph.
CUresult capture_end(const std::shared_ptr<Stream>& s, CUgraph* out);
// cuStreamIsCapturing / cuStreamGetCaptureInfo: IMPLICIT for the legacy
// stream while a blocking stream of its context captures. `deps` gets a
// pointer valid until this thread's next capture query.
CUresult capture_info(const std::shared_ptr<Stream>& s, CUstreamCaptureStatus* status, cuuint64_t* id,
                      CUgraph* graph, const CUgraphNode** deps, size_t* ndeps);

}  // namespace simgpu
