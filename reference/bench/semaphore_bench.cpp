// Benchmarks of mp::Semaphore and mp::RLock beside their system peers, in one
// binary so that the figures come from the same run (compare ratios: the dev
// VM drifts between runs).
//
//   Uncontended/*  acquire+release pairs in one thread, every primitive in
//                  MAP_SHARED memory (process-shared variants). Target:
//                  mp::Semaphore <= 1.2x sem_t.
//   Contended2T/*  two threads of one process on one primitive (a Semaphore of
//                  value 1 is used as a lock).
//   PingPong/*     round trip between two forked processes through two
//                  semaphores of value 0 (two wake-ups per round trip).
//   RLock/*        mp::RLock against the primitive it is built on, a glibc
//                  mutex that is process-shared, robust and recursive, plus the
//                  cost of one recursive level.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <new>

#include "mp/platform/shm.hpp"
#include "mp/rlock.hpp"
#include "mp/semaphore.hpp"

namespace {

using mp::platform::SharedMapping;

// --- Semaphore, uncontended ---------------------------------------------------

void BM_Uncontended_MpSemaphore(benchmark::State& state) {
  mp::Semaphore sem(1);
  for (auto _ : state) {
    sem.acquire();
    sem.release();
  }
}
BENCHMARK(BM_Uncontended_MpSemaphore)->Name("Uncontended/mp::Semaphore");

void BM_Uncontended_MpBoundedSemaphore(benchmark::State& state) {
  mp::BoundedSemaphore sem(1);
  for (auto _ : state) {
    sem.acquire();
    sem.release();
  }
}
BENCHMARK(BM_Uncontended_MpBoundedSemaphore)->Name("Uncontended/mp::BoundedSemaphore");

void BM_Uncontended_MpSemaphoreTimed(benchmark::State& state) {
  mp::Semaphore sem(1);
  for (auto _ : state) {
    sem.acquire(true, 1.0);  // the fast path does not read the clock
    sem.release();
  }
}
BENCHMARK(BM_Uncontended_MpSemaphoreTimed)->Name("Uncontended/mp::Semaphore(timeout=1)");

void BM_Uncontended_SemT(benchmark::State& state) {
  auto mapping = SharedMapping::anonymous(sizeof(sem_t));
  auto* sem = static_cast<sem_t*>(mapping.data());
  if (sem_init(sem, /*pshared=*/1, 1) != 0) {
    state.SkipWithError("sem_init failed");
    return;
  }
  for (auto _ : state) {
    sem_wait(sem);
    sem_post(sem);
  }
  sem_destroy(sem);
}
BENCHMARK(BM_Uncontended_SemT)->Name("Uncontended/sem_t(pshared)");

// --- Semaphore, two threads ---------------------------------------------------

template <class Primitive>
void Contended(benchmark::State& state) {
  static Primitive primitive;  // shared by the benchmark's threads
  static std::uint64_t counter = 0;
  for (auto _ : state) {
    primitive.lock();
    benchmark::DoNotOptimize(++counter);
    primitive.unlock();
  }
}

struct ContendedMpSemaphore {
  mp::Semaphore s{1};
  void lock() { s.acquire(); }
  void unlock() { s.release(); }
};

struct ContendedSemT {
  SharedMapping mapping = SharedMapping::anonymous(sizeof(sem_t));
  sem_t* sem = static_cast<sem_t*>(mapping.data());
  ContendedSemT() { sem_init(sem, 1, 1); }
  void lock() {
    while (sem_wait(sem) != 0 && errno == EINTR) {
    }
  }
  void unlock() { sem_post(sem); }
};

BENCHMARK_TEMPLATE(Contended, ContendedMpSemaphore)
    ->Name("Contended2T/mp::Semaphore")
    ->Threads(2)
    ->UseRealTime();
BENCHMARK_TEMPLATE(Contended, ContendedSemT)
    ->Name("Contended2T/sem_t(pshared)")
    ->Threads(2)
    ->UseRealTime();

// --- Semaphore, cross-process ping-pong ----------------------------------------

struct MpSemChannels {
  mp::Semaphore sems[2] = {mp::Semaphore(0), mp::Semaphore(0)};
  void wait(int i) { sems[i].acquire(); }
  void post(int i) { sems[i].release(); }
};

struct SemChannels {
  SharedMapping mapping = SharedMapping::anonymous(2 * sizeof(sem_t));
  sem_t* sems = static_cast<sem_t*>(mapping.data());
  SemChannels() {
    sem_init(&sems[0], 1, 0);
    sem_init(&sems[1], 1, 0);
  }
  ~SemChannels() {
    sem_destroy(&sems[0]);
    sem_destroy(&sems[1]);
  }
  void wait(int i) {
    while (sem_wait(&sems[i]) != 0 && errno == EINTR) {
    }
  }
  void post(int i) { sem_post(&sems[i]); }
};

template <class Channels>
void PingPong(benchmark::State& state) {
  Channels channels;
  auto stop_mapping = SharedMapping::anonymous(sizeof(std::atomic<bool>));
  auto* stop = ::new (stop_mapping.data()) std::atomic<bool>(false);
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child < 0) {
    state.SkipWithError("fork failed");
    return;
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    for (;;) {
      channels.wait(0);
      if (stop->load(std::memory_order_relaxed)) _exit(0);
      channels.post(1);
    }
  }
  for (auto _ : state) {
    channels.post(0);
    channels.wait(1);
  }
  stop->store(true, std::memory_order_relaxed);
  channels.post(0);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("child failed");
}

void BM_PingPong_MpSemaphore(benchmark::State& state) { PingPong<MpSemChannels>(state); }
void BM_PingPong_SemT(benchmark::State& state) { PingPong<SemChannels>(state); }
BENCHMARK(BM_PingPong_MpSemaphore)
    ->Name("PingPong/mp::Semaphore")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PingPong_SemT)
    ->Name("PingPong/sem_t(pshared)")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// --- RLock ----------------------------------------------------------------------

// The peer: a process-shared, robust, recursive glibc mutex, used bare.
struct RobustRecursiveMutex {
  SharedMapping mapping = SharedMapping::anonymous(sizeof(pthread_mutex_t));
  pthread_mutex_t* mutex = static_cast<pthread_mutex_t*>(mapping.data());
  RobustRecursiveMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(mutex, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  ~RobustRecursiveMutex() { pthread_mutex_destroy(mutex); }
};

void BM_RLock_Mp(benchmark::State& state) {
  mp::RLock r;
  for (auto _ : state) {
    r.acquire();
    r.release();
  }
}
BENCHMARK(BM_RLock_Mp)->Name("RLock/Uncontended/mp::RLock");

void BM_RLock_Pthread(benchmark::State& state) {
  RobustRecursiveMutex m;
  for (auto _ : state) {
    pthread_mutex_lock(m.mutex);
    pthread_mutex_unlock(m.mutex);
  }
}
BENCHMARK(BM_RLock_Pthread)->Name("RLock/Uncontended/pthread_mutex(robust,recursive)");

void BM_RLock_MpNested(benchmark::State& state) {
  mp::RLock r;
  r.acquire();
  for (auto _ : state) {
    r.acquire();
    r.release();
  }
  r.release();
}
BENCHMARK(BM_RLock_MpNested)->Name("RLock/OneMoreLevel/mp::RLock");

void BM_RLock_PthreadNested(benchmark::State& state) {
  RobustRecursiveMutex m;
  pthread_mutex_lock(m.mutex);
  for (auto _ : state) {
    pthread_mutex_lock(m.mutex);
    pthread_mutex_unlock(m.mutex);
  }
  pthread_mutex_unlock(m.mutex);
}
BENCHMARK(BM_RLock_PthreadNested)->Name("RLock/OneMoreLevel/pthread_mutex(robust,recursive)");

struct ContendedMpRLock {
  mp::RLock r;
  void lock() { r.lock(); }
  void unlock() { r.unlock(); }
};
struct ContendedRobustMutex {
  RobustRecursiveMutex m;
  void lock() { pthread_mutex_lock(m.mutex); }
  void unlock() { pthread_mutex_unlock(m.mutex); }
};
BENCHMARK_TEMPLATE(Contended, ContendedMpRLock)
    ->Name("RLock/Contended2T/mp::RLock")
    ->Threads(2)
    ->UseRealTime();
BENCHMARK_TEMPLATE(Contended, ContendedRobustMutex)
    ->Name("RLock/Contended2T/pthread_mutex(robust,recursive)")
    ->Threads(2)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
