// Benchmarks of mp::RWLock beside its system peer, pthread_rwlock_t, in one
// binary so that the figures come from the same run (the dev VM drifts by
// +-30-50% between runs: compare ratios, not absolute figures).
// Every lock lives in MAP_SHARED memory; the pthread locks are initialised
// with PTHREAD_PROCESS_SHARED, in two kinds:
//
//   pthread_rwlock(pshared)               the default kind, which prefers
//                                         readers (PTHREAD_RWLOCK_PREFER_READER_NP)
//   pthread_rwlock(pshared,prefer_writer) PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP,
//                                         the kind whose policy mp::RWLock has
//
//   Uncontended/read/*   acquire_read()+release_read() pairs in one thread
//                        (pthread_rwlock_rdlock + unlock). mp::RWLock's path is
//                        one CAS for each half, inline (the CAS guesses the
//                        word; no load before it); glibc takes a read with
//                        an atomic add and releases it with a CAS loop, after
//                        reading a few other fields (owner, flags), in calls.
//   Uncontended/write/*  acquire_write()+release_write() pairs in one thread
//                        (pthread_rwlock_wrlock + unlock).
//   Uncontended/read(timeout=1)/mp::RWLock
//                        the timed entry point; its fast path reads no clock.
//   Reading2T/*          two threads of one process taking and releasing reads
//                        of one lock: no one waits, but the lock word's cache
//                        line moves between the CPUs on every operation (the
//                        figure is the inverse of the total throughput).
//
// Target: Uncontended/read/mp::RWLock <= 1.2x Uncontended/read/pthread_rwlock
// (either kind). The write figures are informative.
#include <benchmark/benchmark.h>
#include <pthread.h>

#include "mp/platform/shm.hpp"
#include "mp/rwlock.hpp"

namespace {

using mp::platform::SharedMapping;

// A process-shared pthread_rwlock_t in its own MAP_SHARED mapping.
class PthreadRWLock {
 public:
  explicit PthreadRWLock(bool prefer_writer)
      : mapping_(SharedMapping::anonymous(sizeof(pthread_rwlock_t))),
        lock_(static_cast<pthread_rwlock_t*>(mapping_.data())) {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (prefer_writer) {
      pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    }
    ok_ = pthread_rwlock_init(lock_, &attr) == 0;
    pthread_rwlockattr_destroy(&attr);
  }
  ~PthreadRWLock() {
    if (ok_) pthread_rwlock_destroy(lock_);
  }
  PthreadRWLock(const PthreadRWLock&) = delete;
  PthreadRWLock& operator=(const PthreadRWLock&) = delete;

  bool ok() const { return ok_; }
  void lock_shared() { pthread_rwlock_rdlock(lock_); }
  void unlock_shared() { pthread_rwlock_unlock(lock_); }
  void lock() { pthread_rwlock_wrlock(lock_); }
  void unlock() { pthread_rwlock_unlock(lock_); }

 private:
  SharedMapping mapping_;
  pthread_rwlock_t* lock_;
  bool ok_ = false;
};

// --- Uncontended ------------------------------------------------------------

void BM_Read_MpRWLock(benchmark::State& state) {
  mp::RWLock rw;
  for (auto _ : state) {
    rw.acquire_read();
    rw.release_read();
  }
}
BENCHMARK(BM_Read_MpRWLock)->Name("Uncontended/read/mp::RWLock");

void BM_Read_MpRWLockTimed(benchmark::State& state) {
  mp::RWLock rw;
  for (auto _ : state) {
    rw.acquire_read(true, 1.0);
    rw.release_read();
  }
}
BENCHMARK(BM_Read_MpRWLockTimed)->Name("Uncontended/read(timeout=1)/mp::RWLock");

void BM_Read_Pthread(benchmark::State& state, bool prefer_writer) {
  PthreadRWLock rw(prefer_writer);
  if (!rw.ok()) {
    state.SkipWithError("pthread_rwlock_init failed");
    return;
  }
  for (auto _ : state) {
    rw.lock_shared();
    rw.unlock_shared();
  }
}
BENCHMARK_CAPTURE(BM_Read_Pthread, default, false)
    ->Name("Uncontended/read/pthread_rwlock(pshared)");
BENCHMARK_CAPTURE(BM_Read_Pthread, prefer_writer, true)
    ->Name("Uncontended/read/pthread_rwlock(pshared,prefer_writer)");

void BM_Write_MpRWLock(benchmark::State& state) {
  mp::RWLock rw;
  for (auto _ : state) {
    rw.acquire_write();
    rw.release_write();
  }
}
BENCHMARK(BM_Write_MpRWLock)->Name("Uncontended/write/mp::RWLock");

void BM_Write_Pthread(benchmark::State& state, bool prefer_writer) {
  PthreadRWLock rw(prefer_writer);
  if (!rw.ok()) {
    state.SkipWithError("pthread_rwlock_init failed");
    return;
  }
  for (auto _ : state) {
    rw.lock();
    rw.unlock();
  }
}
BENCHMARK_CAPTURE(BM_Write_Pthread, default, false)
    ->Name("Uncontended/write/pthread_rwlock(pshared)");
BENCHMARK_CAPTURE(BM_Write_Pthread, prefer_writer, true)
    ->Name("Uncontended/write/pthread_rwlock(pshared,prefer_writer)");

// --- Two reading threads ----------------------------------------------------

template <class Primitive>
void Reading(benchmark::State& state) {
  static Primitive primitive;  // shared by the benchmark's threads
  for (auto _ : state) {
    primitive.lock_shared();
    primitive.unlock_shared();
  }
}

struct ReadingMpRWLock {
  mp::RWLock rw;
  void lock_shared() { rw.acquire_read(); }
  void unlock_shared() { rw.release_read(); }
};

struct ReadingPthread : PthreadRWLock {
  ReadingPthread() : PthreadRWLock(false) {}
};

struct ReadingPthreadPreferWriter : PthreadRWLock {
  ReadingPthreadPreferWriter() : PthreadRWLock(true) {}
};

BENCHMARK_TEMPLATE(Reading, ReadingMpRWLock)
    ->Name("Reading2T/mp::RWLock")
    ->Threads(2)
    ->UseRealTime();
BENCHMARK_TEMPLATE(Reading, ReadingPthread)
    ->Name("Reading2T/pthread_rwlock(pshared)")
    ->Threads(2)
    ->UseRealTime();
BENCHMARK_TEMPLATE(Reading, ReadingPthreadPreferWriter)
    ->Name("Reading2T/pthread_rwlock(pshared,prefer_writer)")
    ->Threads(2)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
