// CUevent: the latest record of an event is a (stream, sequence number) pair
// plus the time at which the record op executed on that stream.
#pragma once

#include "driver.h"

namespace simgpu {

struct EventRecord {
  std::shared_ptr<Stream> stream;
  uint64_t seq = 0;
  std::atomic<uint64_t> time_ns{0};
  // Set when recorded in a capturing stream: nothing was queued (seq is 0);
  // the record stands for the stream's capture dependencies at that point.
  std::shared_ptr<Capture> capture;
  std::vector<CUgraphNode> capture_nodes;
};

struct Event {
  unsigned flags = 0;
  Context* ctx = nullptr;
  std::mutex mu;
  std::shared_ptr<EventRecord> last;  // null until first recorded
  std::shared_ptr<EventRecord> latest() {
    std::lock_guard<std::mutex> g(mu);
    return last;
  }
};

extern HandleTable<Event> g_events;

// Hook run at synchronization points (stream/event/context synchronize); the
// memory pools use it to release memory above their threshold.
void run_sync_hooks(Context* ctx);
void add_sync_hook(std::function<void(Context*)> fn);

}  // namespace simgpu
