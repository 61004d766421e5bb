// Benchmarks of mp::Lock beside its system peers, in one binary so that the
// figures come from the same run (the dev VM drifts by +-30-50% between runs;
// compare ratios, see research/performance-baselines.md).
//
//   Uncontended/*  acquire+release pairs in one thread, every primitive in
//                  MAP_SHARED memory (process-shared variants).
//   Contended2T/*  two threads of one process hammering one primitive.
//   PingPong/*     round trip between two forked processes that alternate
//                  strictly through two binary semaphores (2 wake-ups per round
//                  trip). mp::Lock is used as a binary semaphore, which is
//                  legal because any process may release it. The argument
//                  selects the CPU placement: 0 unpinned, 1 parent on cpu0 and
//                  child on cpu1 (cross-vCPU wake-ups), 2 both on cpu0
//                  (context switches, no IPI).
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "mp/lock.hpp"
#include "mp/platform/shm.hpp"

namespace {

using mp::platform::SharedMapping;

// --- Uncontended ------------------------------------------------------------

// The floor of mp::Lock's protocol: the same two atomic instructions (a CAS to
// take, an exchange to release) on a word in shared memory, with no checks.
void BM_Uncontended_Floor(benchmark::State& state) {
  auto mapping = SharedMapping::anonymous(sizeof(std::atomic<std::uint32_t>));
  auto* word = ::new (mapping.data()) std::atomic<std::uint32_t>(0);
  for (auto _ : state) {
    std::uint32_t expected = 0;
    word->compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                  std::memory_order_relaxed);
    benchmark::DoNotOptimize(word->exchange(0, std::memory_order_release));
  }
}
BENCHMARK(BM_Uncontended_Floor)->Name("Uncontended/floor(cas+xchg)");

void BM_Uncontended_MpLock(benchmark::State& state) {
  mp::Lock lock;
  for (auto _ : state) {
    lock.acquire();
    lock.release();
  }
}
BENCHMARK(BM_Uncontended_MpLock)->Name("Uncontended/mp::Lock");

void BM_Uncontended_MpLockTimed(benchmark::State& state) {
  mp::Lock lock;
  for (auto _ : state) {
    lock.acquire(true, 1.0);  // the fast path does not read the clock
    lock.release();
  }
}
BENCHMARK(BM_Uncontended_MpLockTimed)->Name("Uncontended/mp::Lock(timeout=1)");

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

void BM_Uncontended_PthreadMutex(benchmark::State& state) {
  auto mapping = SharedMapping::anonymous(sizeof(pthread_mutex_t));
  auto* mutex = static_cast<pthread_mutex_t*>(mapping.data());
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  const int rc = pthread_mutex_init(mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) {
    state.SkipWithError("pthread_mutex_init failed");
    return;
  }
  for (auto _ : state) {
    pthread_mutex_lock(mutex);
    pthread_mutex_unlock(mutex);
  }
  pthread_mutex_destroy(mutex);
}
BENCHMARK(BM_Uncontended_PthreadMutex)->Name("Uncontended/pthread_mutex(pshared)");

// --- Contended: 2 threads, tiny critical section ----------------------------

// Google Benchmark divides the wall time by the iterations of both threads:
// the figure is the inverse of the total throughput (lower is better). It
// mostly measures cache-line transfers and how often the releaser barges back
// in (all three primitives are unfair); on a 2-vCPU VM it is noisy.
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

struct ContendedMpLock {
  mp::Lock l;
  void lock() { l.lock(); }
  void unlock() { l.unlock(); }
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

struct ContendedPthreadMutex {
  SharedMapping mapping = SharedMapping::anonymous(sizeof(pthread_mutex_t));
  pthread_mutex_t* mutex = static_cast<pthread_mutex_t*>(mapping.data());
  ContendedPthreadMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(mutex, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  void lock() { pthread_mutex_lock(mutex); }
  void unlock() { pthread_mutex_unlock(mutex); }
};

BENCHMARK_TEMPLATE(Contended, ContendedMpLock)
    ->Name("Contended2T/mp::Lock")
    ->Threads(2)
    ->UseRealTime();
BENCHMARK_TEMPLATE(Contended, ContendedSemT)
    ->Name("Contended2T/sem_t(pshared)")
    ->Threads(2)
    ->UseRealTime();
BENCHMARK_TEMPLATE(Contended, ContendedPthreadMutex)
    ->Name("Contended2T/pthread_mutex(pshared)")
    ->Threads(2)
    ->UseRealTime();

// --- Cross-process ping-pong ------------------------------------------------

// Two binary semaphores, "ping" (0) and "pong" (1), both initially taken.
struct MpLockChannels {
  mp::Lock locks[2];
  MpLockChannels() {
    locks[0].acquire();
    locks[1].acquire();
  }
  void wait(int i) { locks[i].acquire(); }
  void post(int i) { locks[i].release(); }
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

bool PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

template <class Channels>
void PingPong(benchmark::State& state) {
  const int placement = static_cast<int>(state.range(0));
  cpu_set_t original;
  sched_getaffinity(0, sizeof(original), &original);
  if (placement == 1 && CPU_COUNT(&original) < 2) {
    state.SkipWithError("needs 2 CPUs");
    return;
  }
  if (placement != 0 && !PinTo(0)) {
    state.SkipWithError("sched_setaffinity failed");
    return;
  }
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
    if (placement == 1) PinTo(1);
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
  if (placement != 0) sched_setaffinity(0, sizeof(original), &original);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("child failed");
  state.SetLabel(placement == 0 ? "unpinned" : placement == 1 ? "cpu0/cpu1" : "cpu0/cpu0");
}

void BM_PingPong_MpLock(benchmark::State& state) { PingPong<MpLockChannels>(state); }
void BM_PingPong_SemT(benchmark::State& state) { PingPong<SemChannels>(state); }

BENCHMARK(BM_PingPong_MpLock)
    ->Name("PingPong/mp::Lock")
    ->ArgName("placement")
    ->DenseRange(0, 2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PingPong_SemT)
    ->Name("PingPong/sem_t(pshared)")
    ->ArgName("placement")
    ->DenseRange(0, 2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
