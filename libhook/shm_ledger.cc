#include "shm_ledger.h"

#include <new>

namespace vgpu::hook {

// One change of a slot's word by reserve/release: a CAS that keeps the
// epoch and adds `delta` (two's complement) to the bytes, remembering the
// epoch it saw. Runs inside the shared ledger's critical section.
struct ShmLedger::Change {
  std::atomic<uint64_t>* word;
  uint64_t delta;
  uint64_t seen = 0;
  bool ran = false;

  static void run(void* p) {
    auto* c = static_cast<Change*>(p);
    uint64_t old = c->word->load(std::memory_order_relaxed);
    uint64_t next;
    do {
      next = (old & ~kBytesMask) | ((old + c->delta) & kBytesMask);
    } while (!c->word->compare_exchange_weak(old, next, std::memory_order_acq_rel, std::memory_order_relaxed));
    c->seen = old >> kBytesBits;
    c->ran = true;
  }
  void run_if_not_yet() {
    if (!ran) run(this);
  }
};

// attach(): bumps the words inside the new memory's critical section and
// hands what they held to tenant_shm_attach.
struct ShmLedger::Adopt {
  ShmLedger* self;
  const Binding* n;

  static void run(void* p, uint64_t (&bytes)[kShmMaxDevices]) {
    auto* a = static_cast<Adopt*>(p);
    a->self->bump_all(a->n->epoch, false, &bytes, a->n);
  }
};

ShmLedger::ShmLedger() {
  for (auto& w : mine_) w.store(0);
  publish_empty(0);
}

// The bytes of a word, sign-extended from kBytesBits: a slot whose releases
// ran ahead of its reserves reads as a small negative, as a plain counter would.
uint64_t ShmLedger::bytes_of(uint64_t word) {
  return static_cast<uint64_t>(static_cast<int64_t>(word << kEpochBits) >> kEpochBits);
}

void ShmLedger::publish_empty(uint64_t epoch) {
  auto* b = new Binding;  // never freed: a thread may still read the previous one
  for (int& d : b->dev) d = -1;
  b->epoch = epoch;
  bind_.store(b, std::memory_order_release);
}

// Moves every word to `epoch`, zeroing it or adding its bytes to (*adopt)
// under the device `n` maps its slot to. Caller holds mu_.
void ShmLedger::bump_all(uint64_t epoch, bool zero, uint64_t (*adopt)[kShmMaxDevices], const Binding* n) {
  uint64_t tag = epoch << kBytesBits;
  for (int i = 0; i < kMaxDevices; ++i) {
    uint64_t old = mine_[i].load(std::memory_order_relaxed);
    while (!mine_[i].compare_exchange_weak(old, tag | (zero ? 0 : old & kBytesMask), std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
    }
    int d = n ? n->dev[i] : -1;
    if (adopt && d >= 0 && d < kShmMaxDevices) (*adopt)[d] += bytes_of(old);
  }
}

void ShmLedger::attach(TenantShm shm, int proc, const int (&dev_of_slot)[kMaxDevices]) {
  std::lock_guard<std::mutex> g(mu_);
  auto* n = new Binding;  // never freed (see publish_empty)
  n->shm = shm;
  n->proc = proc;
  for (int i = 0; i < kMaxDevices; ++i) {
    int d = dev_of_slot[i];
    n->dev[i] = d >= 0 && d < kShmMaxDevices ? d : -1;
  }
  epoch_ = (epoch_ + 1) & ((uint64_t{1} << kEpochBits) - 1);
  n->epoch = epoch_;
  Adopt a{this, n};
  if (shm.led && shm.ctl) {
    tenant_shm_attach(shm, proc, &Adopt::run, &a);
  } else {
    uint64_t ignored[kShmMaxDevices] = {};
    Adopt::run(&a, ignored);
  }
  bind_.store(n, std::memory_order_release);
}

void ShmLedger::seed(int slot, uint64_t bytes) {
  if (slot < 0 || slot >= kMaxDevices) return;
  uint64_t old = mine_[slot].load(std::memory_order_relaxed);
  while (!mine_[slot].compare_exchange_weak(old, (old & ~kBytesMask) | (bytes & kBytesMask))) {
  }
}

void ShmLedger::reset() {
  std::lock_guard<std::mutex> g(mu_);
  epoch_ = (epoch_ + 1) & ((uint64_t{1} << kEpochBits) - 1);
  bump_all(epoch_, true, nullptr, nullptr);
  publish_empty(epoch_);
}

void ShmLedger::reset_after_fork() {
  new (&mu_) std::mutex();
  reset();
}

bool ShmLedger::reserve(int slot, uint64_t bytes) {
  if (slot < 0 || slot >= kMaxDevices) return bytes == 0;
  const Binding* b = binding();
  if (!shared(b, slot)) return bytes == 0;
  Change c{&mine_[slot], bytes};
  if (!tenant_shm_reserve(b->shm, b->proc, b->dev[slot], bytes, LedgerHook{&Change::run, &c})) return false;
  if (c.seen != b->epoch) settle(b, slot, bytes, false, c.seen);
  return true;
}

void ShmLedger::release(int slot, uint64_t bytes) {
  if (slot < 0 || slot >= kMaxDevices) return;
  const Binding* b = binding();
  Change c{&mine_[slot], uint64_t{0} - bytes};
  if (shared(b, slot)) tenant_shm_release(b->shm, b->proc, b->dev[slot], bytes, LedgerHook{&Change::run, &c});
  c.run_if_not_yet();  // no memory, or a record out of range: this process's count still changes
  if (c.seen != b->epoch) settle(b, slot, bytes, true, c.seen);
}

// An operation on binding `b` whose word change saw `seen_epoch` != b's:
// an attach (or reset) counted the word before this change. See the header.
void ShmLedger::settle(const Binding* b, int slot, uint64_t bytes, bool released, uint64_t seen_epoch) {
  std::lock_guard<std::mutex> g(mu_);  // the attach that bumped the word has published its binding
  const Binding* cur = binding();
  if (cur->epoch != seen_epoch) return;  // a later attach adopted the word with this change in it
  int bd = b->dev[slot], cd = cur->dev[slot];
  if (released) {
    if (shared(b, slot)) tenant_shm_adopt(b->shm, b->proc, bd, bytes);
    if (shared(cur, slot)) tenant_shm_release(cur->shm, cur->proc, cd, bytes);
  } else {
    if (shared(b, slot)) tenant_shm_release(b->shm, b->proc, bd, bytes);
    if (shared(cur, slot)) tenant_shm_adopt(cur->shm, cur->proc, cd, bytes);
  }
}

uint64_t ShmLedger::used(int slot) const {
  if (slot < 0 || slot >= kMaxDevices) return 0;
  const Binding* b = binding();
  return shared(b, slot) ? tenant_shm_used(b->shm, b->dev[slot]) : 0;
}

uint64_t ShmLedger::limit(int slot) const {
  if (slot < 0 || slot >= kMaxDevices) return 0;
  const Binding* b = binding();
  int d = b->dev[slot];
  return b->shm.ctl && d >= 0 ? b->shm.ctl->devices[d].limit.load(std::memory_order_relaxed) : 0;
}

uint64_t ShmLedger::mine(int slot) const {
  return slot >= 0 && slot < kMaxDevices ? bytes_of(mine_[slot].load(std::memory_order_relaxed)) : 0;
}

}  // namespace vgpu::hook
