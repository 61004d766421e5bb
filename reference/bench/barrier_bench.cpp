// Benchmarks of mp::Barrier beside its system peer, pthread_barrier_t (process-shared), in one
// binary so that the figures come from the same run (compare ratios; the dev VM drifts).
//
//   Cycle2P/*  one barrier cycle between two forked processes: both call wait(), both return.
//              The argument selects the CPU placement: 0 unpinned, 1 parent on cpu0 and child
//              on cpu1, 2 both on cpu0.
//   Single/*   a one-party barrier: the cost of wait() when nobody has to be woken (mp::Barrier
//              takes and drops its robust guard; pthread_barrier its internal lock).
//
// pthread_barrier_t has no timeout, no action, no abort/reset and no crash detection: it is the
// floor, not a drop-in peer. mp::Barrier is measured with no timeout and no action.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <new>

#include "mp/barrier.hpp"
#include "mp/platform/shm.hpp"

namespace {

using mp::platform::SharedMapping;

bool PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

struct MpBarrier2 {
  mp::Barrier b{2};
  void wait() { b.wait(); }
};

struct PthreadBarrier2 {
  SharedMapping mapping = SharedMapping::anonymous(sizeof(pthread_barrier_t));
  pthread_barrier_t* b = static_cast<pthread_barrier_t*>(mapping.data());
  PthreadBarrier2() {
    pthread_barrierattr_t attr;
    pthread_barrierattr_init(&attr);
    pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(b, &attr, 2);
    pthread_barrierattr_destroy(&attr);
  }
  ~PthreadBarrier2() { pthread_barrier_destroy(b); }
  void wait() { pthread_barrier_wait(b); }
};

// The parent runs the measured loop; the child mirrors it, cycle for cycle. The number of
// cycles is not known to the child in advance: after the loop the parent publishes the total
// (the measured cycles plus one extra) and runs the extra cycle; the child stops when it has
// done that many.
template <class B>
void Cycle2P(benchmark::State& state) {
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
  B barrier;
  auto total_mapping = SharedMapping::anonymous(sizeof(std::atomic<std::int64_t>));
  auto* total = ::new (total_mapping.data()) std::atomic<std::int64_t>(0);
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
    for (std::int64_t done = 1;; ++done) {
      barrier.wait();
      if (total->load(std::memory_order_acquire) == done) _exit(0);
    }
  }
  std::int64_t cycles = 0;
  for (auto _ : state) {
    barrier.wait();
    ++cycles;
  }
  total->store(cycles + 1, std::memory_order_release);
  barrier.wait();
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (placement != 0) sched_setaffinity(0, sizeof(original), &original);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("child failed");
  state.SetLabel(placement == 0 ? "unpinned" : placement == 1 ? "cpu0/cpu1" : "cpu0/cpu0");
}

BENCHMARK_TEMPLATE(Cycle2P, MpBarrier2)
    ->Name("Cycle2P/mp::Barrier")
    ->ArgName("placement")
    ->DenseRange(0, 2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(Cycle2P, PthreadBarrier2)
    ->Name("Cycle2P/pthread_barrier(pshared)")
    ->ArgName("placement")
    ->DenseRange(0, 2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_Single_MpBarrier(benchmark::State& state) {
  mp::Barrier b(1);
  for (auto _ : state) benchmark::DoNotOptimize(b.wait());
}
BENCHMARK(BM_Single_MpBarrier)->Name("Single/mp::Barrier");

void BM_Single_PthreadBarrier(benchmark::State& state) {
  auto mapping = SharedMapping::anonymous(sizeof(pthread_barrier_t));
  auto* b = static_cast<pthread_barrier_t*>(mapping.data());
  pthread_barrierattr_t attr;
  pthread_barrierattr_init(&attr);
  pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_barrier_init(b, &attr, 1);
  pthread_barrierattr_destroy(&attr);
  for (auto _ : state) benchmark::DoNotOptimize(pthread_barrier_wait(b));
  pthread_barrier_destroy(b);
}
BENCHMARK(BM_Single_PthreadBarrier)->Name("Single/pthread_barrier(pshared)");

}  // namespace

BENCHMARK_MAIN();
