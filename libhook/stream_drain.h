// The streams this process can have queued work on, and the drain that waits
// for that work without a device-wide synchronization (issue 9: a context or
// device sync is refused while any stream of the context captures a graph, in
// every capture mode, and invalidates the capture).
//
// What the drain relies on (cuda.h; CUDA driver API, "Stream synchronization
// behavior"): work queued on the legacy default stream first waits for all
// prior work of every blocking stream of its context — streams created without
// CU_STREAM_NON_BLOCKING and every thread's per-thread default stream — so one
// event recorded there covers all of them. Non-blocking streams do not
// synchronize with the legacy stream: each gets its own event. Only streams
// created through the hook's cuStreamCreate/cuStreamCreateWithPriority are
// known; nothing is added to the launch path.
//
// Captures: a stream being captured holds no queued work (its work only
// becomes graph nodes), so it is skipped — recording on it would add a node to
// the application's graph and syncing it is refused. The legacy stream is used
// only when cuStreamIsCapturing(CU_STREAM_LEGACY) says no blocking stream of
// the context captures (while one does, it answers STREAM_CAPTURE_IMPLICIT
// without harm, whereas work on the legacy stream would invalidate that
// capture). Then each known non-capturing blocking stream gets its own event
// instead; what is left unreached is documented at drain_context_streams.
//
// Thread-safety: all functions are thread-safe. The registry's lock is held
// while the drain records its events, and the destroy wrapper removes a stream
// under it before the driver destroys it, so the drain never uses a destroyed
// stream.
#pragma once

#include <vector>

#include "cuda_api.h"

namespace vgpu::hook {

// A stream the application created: its context and creation flags.
struct KnownStream {
  CUstream stream = nullptr;
  void* ctx = nullptr;  // CUcontext
  bool non_blocking = false;
};

// After a successful cuStreamCreate*: remembers `s` (its context asked of the
// driver, else the calling thread's current one) with its `flags`.
void streams_note_created(CUstream s, unsigned flags);
// Before the driver destroys `s`: forgets it; *was gets the entry (for
// streams_note_again if the destroy fails). False: not known.
bool streams_forget(CUstream s, KnownStream* was);
void streams_note_again(const KnownStream& k);
// Before the driver destroys `ctx`: forgets its streams and the drain's events.
void streams_forget_context(void* ctx);
void streams_reset_after_fork();

// Waits until the work queued in `ctx` before the call has finished, plus the
// events in `also` (the gate's throttle events), without synchronizing the
// context or device and without touching a capturing stream. Runs in RELAXED
// capture mode; pushes `ctx` current for the duration. The caller keeps `ctx`
// alive (the gate's use lock).
//
// Not reached while a blocking stream of `ctx` captures (the legacy stream
// cannot be used then): work queued before that capture began on the legacy
// stream and on per-thread default streams, unless a throttle event in `also`
// follows it (while the lease is contended every batch of cap/4 launches ends
// with one, but the last launches of a burst get theirs only from the idle
// watcher, on the legacy stream, which a blocking capture rules out). Not
// reached ever: streams created past the hook (RTLD_DEEPBIND, dlmopen, green
// contexts). Residual race: a capture on a blocking stream beginning between
// the legacy-stream query and the event record is invalidated (two driver
// calls apart; the application gets STREAM_CAPTURE_INVALIDATED at its end).
void drain_context_streams(void* ctx, const std::vector<CUevent>& also);

// Records `e` after the work of the application's latest launches in `ctx`
// (made on `s`; `per_thread`: through a _ptsz/_ptds entry point), for the
// idle watcher when no throttle event follows them: on `s` itself if it is a
// known non-blocking stream, else on the legacy stream (which follows every
// blocking stream, per-thread default streams included). Never on a stream
// being captured, a stream the hook does not know, or an unknown context.
// Pushes `ctx` current for the call; runs in RELAXED capture mode. False: not
// recorded (the caller keeps its launches uncovered).
bool record_after_recent_work(void* ctx, CUstream s, bool per_thread, CUevent e);

}  // namespace vgpu::hook
