// A process-shared, robust pthread mutex for state in shared memory: a
// process that dies holding it cannot wedge the others; the next locker gets
// EOWNERDEAD, repairs the state it guards and marks the mutex consistent.
// Used by simgpu's node state and by the hooks' tenant ledger (never by
// vgpud, which takes no lock a tenant can hold).
#pragma once

#include <errno.h>
#include <pthread.h>

namespace vgpu {

inline void init_robust_shared_mutex(pthread_mutex_t* m) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
}

// Locks `m`; if its previous owner died inside, runs `repair` (with the lock
// held) before marking it consistent.
template <class Repair>
void lock_robust(pthread_mutex_t* m, Repair repair) {
  if (pthread_mutex_lock(m) == EOWNERDEAD) {
    repair();
    pthread_mutex_consistent(m);
  }
}

}  // namespace vgpu
