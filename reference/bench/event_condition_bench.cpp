// Benchmarks of mp::Event and mp::Condition beside their system peers, in one binary so that
// the figures come from the same run (compare ratios: the dev VM drifts between runs).
//
//   Event/is_set, Event/wait(set)   the uncontended fast paths (target: is_set <= 10 ns).
//   RoundTrip/*                     two forked processes take turns through a shared `turn`
//                                   word; one iteration is a full round trip (two wake-ups):
//     raw-futex                     the floor: the turn word itself is the futex;
//     mp::Condition                 lock, wait while not my turn, flip, notify, unlock;
//     pthread_cond(pshared)         the same protocol on a process-shared pthread mutex and
//                                   condition variable.
//   The argument selects the CPU placement: 0 unpinned, 2 both processes on cpu0 (context
//   switches only: the steady figure on a shared VM, where cross-vCPU wake-ups vary by 2-3x
//   between runs). (target: mp::Condition <= 1.2x raw-futex.)
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <new>

#include "mp/condition.hpp"
#include "mp/event.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/shm.hpp"

namespace {

using mp::platform::SharedMapping;
namespace futex = mp::platform::futex;

constexpr std::uint32_t kStop = 2;

void BM_Event_IsSet(benchmark::State& state) {
  mp::Event e;
  e.set();
  for (auto _ : state) benchmark::DoNotOptimize(e.is_set());
}
BENCHMARK(BM_Event_IsSet)->Name("Event/is_set");

void BM_Event_WaitSet(benchmark::State& state) {
  mp::Event e;
  e.set();
  for (auto _ : state) benchmark::DoNotOptimize(e.wait());
}
BENCHMARK(BM_Event_WaitSet)->Name("Event/wait(set)");

void BM_Event_SetClear(benchmark::State& state) {
  mp::Event e;
  for (auto _ : state) {
    e.set();
    e.clear();
  }
}
BENCHMARK(BM_Event_SetClear)->Name("Event/set+clear");

// Runs `parent_turn()` once per iteration in this process and `child_loop()` in a forked child
// until the child sees the stop value. `stop()` ends the child; it is then reaped.
bool PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

template <class ParentTurn, class ChildLoop, class Stop>
void round_trips(benchmark::State& state, ParentTurn parent_turn, ChildLoop child_loop, Stop stop) {
  const int placement = static_cast<int>(state.range(0));
  cpu_set_t original;
  sched_getaffinity(0, sizeof(original), &original);
  if (placement != 0 && !PinTo(0)) {
    state.SkipWithError("sched_setaffinity failed");
    return;
  }
  const pid_t child = fork();
  if (child < 0) {
    state.SkipWithError("fork failed");
    return;
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(120);
    child_loop();
    _exit(0);
  }
  for (auto _ : state) parent_turn();
  stop();
  int status;
  while (waitpid(child, &status, 0) < 0) {
  }
  if (placement != 0) sched_setaffinity(0, sizeof(original), &original);
  state.SetLabel(placement == 0 ? "unpinned" : "cpu0/cpu0");
}

// The turn word: 0 the parent's turn, 1 the child's, kStop the end.
struct Shared {
  alignas(64) std::atomic<std::uint32_t> turn{0};
  alignas(64) pthread_mutex_t mutex;
  pthread_cond_t cond;
};

void BM_RoundTrip_RawFutex(benchmark::State& state) {
  auto mapping = SharedMapping::anonymous(sizeof(Shared));
  auto* s = ::new (mapping.data()) Shared{};
  auto wait_while = [&](std::uint32_t v) {
    while (s->turn.load(std::memory_order_acquire) == v) futex::wait(s->turn, v, nullptr);
  };
  round_trips(
      state,
      [&] {
        s->turn.store(1, std::memory_order_release);
        futex::wake(s->turn, 1);
        wait_while(1);
      },
      [&] {
        for (;;) {
          wait_while(0);
          if (s->turn.load(std::memory_order_acquire) == kStop) return;
          s->turn.store(0, std::memory_order_release);
          futex::wake(s->turn, 1);
        }
      },
      [&] {
        s->turn.store(kStop, std::memory_order_release);
        futex::wake(s->turn, 1);
      });
}
BENCHMARK(BM_RoundTrip_RawFutex)
    ->Name("RoundTrip/raw-futex")
    ->ArgName("placement")
    ->Arg(0)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_RoundTrip_MpCondition(benchmark::State& state) {
  auto mapping = SharedMapping::anonymous(sizeof(Shared));
  auto* s = ::new (mapping.data()) Shared{};
  mp::Condition cond{mp::Lock()};
  round_trips(
      state,
      [&] {
        cond.acquire();
        s->turn.store(1, std::memory_order_relaxed);
        cond.notify();
        while (s->turn.load(std::memory_order_relaxed) == 1) cond.wait();
        cond.release();
      },
      [&] {
        cond.acquire();
        for (;;) {
          while (s->turn.load(std::memory_order_relaxed) == 0) cond.wait();
          if (s->turn.load(std::memory_order_relaxed) == kStop) break;
          s->turn.store(0, std::memory_order_relaxed);
          cond.notify();
        }
        cond.release();
      },
      [&] {
        cond.acquire();
        s->turn.store(kStop, std::memory_order_relaxed);
        cond.notify_all();
        cond.release();
      });
}
BENCHMARK(BM_RoundTrip_MpCondition)
    ->Name("RoundTrip/mp::Condition(Lock)")
    ->ArgName("placement")
    ->Arg(0)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_RoundTrip_PthreadCond(benchmark::State& state) {
  auto mapping = SharedMapping::anonymous(sizeof(Shared));
  auto* s = ::new (mapping.data()) Shared{};
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(&s->mutex, &ma);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
  pthread_cond_init(&s->cond, &ca);
  round_trips(
      state,
      [&] {
        pthread_mutex_lock(&s->mutex);
        s->turn.store(1, std::memory_order_relaxed);
        pthread_cond_signal(&s->cond);
        while (s->turn.load(std::memory_order_relaxed) == 1) pthread_cond_wait(&s->cond, &s->mutex);
        pthread_mutex_unlock(&s->mutex);
      },
      [&] {
        pthread_mutex_lock(&s->mutex);
        for (;;) {
          while (s->turn.load(std::memory_order_relaxed) == 0)
            pthread_cond_wait(&s->cond, &s->mutex);
          if (s->turn.load(std::memory_order_relaxed) == kStop) break;
          s->turn.store(0, std::memory_order_relaxed);
          pthread_cond_signal(&s->cond);
        }
        pthread_mutex_unlock(&s->mutex);
      },
      [&] {
        pthread_mutex_lock(&s->mutex);
        s->turn.store(kStop, std::memory_order_relaxed);
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mutex);
      });
}
BENCHMARK(BM_RoundTrip_PthreadCond)
    ->Name("RoundTrip/pthread_cond(pshared)")
    ->ArgName("placement")
    ->Arg(0)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
