// Benchmarks of mp::Process start+join beside its system peer and CPython's
// multiprocessing, in one binary so that the figures come from the same run
// (compare ratios; the dev VM drifts between runs, see
// research/performance-baselines.md).
//
//   StartJoin/fork_waitpid  fork(), the child _exit(0)s at once, waitpid():
//                           the floor.
//   StartJoin/mp            mp::Process("noop").start() then join(): the task
//                           returns 0 at once.
//   StartJoin/cpython       CPython's multiprocessing.get_context("fork")
//                           .Process(target=f).start() then .join(), f a
//                           function that returns at once. Each iteration runs
//                           `python3 -c <timing loop>`: the loop times
//                           kCpythonBatch start+join pairs with
//                           time.perf_counter() inside the interpreter (after
//                           3 warm-up pairs), so interpreter start-up is not
//                           counted; the iteration's (manual) time is the
//                           mean of one pair. Skipped (with an error message)
//                           when python3 is not on the PATH.
//
// StartJoin/mp also reports, as counters, CPython's figure measured right
// after it in the same repetition (cpython_ns) and the ratio
// mp_over_cpython = mp time / CPython time (goal: <= 0.2).
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "mp/process.hpp"
#include "python_peer.hpp"

namespace {

constexpr int kCpythonBatch = 200;
// Fixed, so that each repetition of StartJoin/mp runs CPython's loop once.
constexpr int kIterations = 1000;

const mp::TaskRegistration kNoop("noop", [](const mp::TaskArgs&) { return 0; });

// Runs CPython's timing loop once; the mean seconds of one start+join, or
// nullopt if python3 is missing or fails.
std::optional<double> cpython_start_join_seconds(int count) {
  static const std::string script =
      "\n"
      "import multiprocessing, sys, time\n"
      "def f():\n"
      "    pass\n"
      "ctx = multiprocessing.get_context(\"fork\")\n"
      "n = int(sys.argv[1])\n"
      "for _ in range(3):\n"
      "    p = ctx.Process(target=f); p.start(); p.join()\n"
      "t0 = time.perf_counter()\n"
      "for _ in range(n):\n"
      "    p = ctx.Process(target=f); p.start(); p.join()\n"
      "t1 = time.perf_counter()\n"
      "print(repr((t1 - t0) / n))\n";
  return mp_bench::run_python(script, std::to_string(count));
}

void BM_StartJoin_ForkWaitpid(benchmark::State& state) {
  for (auto _ : state) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      state.SkipWithError("fork failed");
      break;
    }
    if (pid == 0) ::_exit(0);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

void BM_StartJoin_Mp(benchmark::State& state) {
  const auto begin = std::chrono::steady_clock::now();
  for (auto _ : state) {
    mp::Process p("noop");
    p.start();
    p.join();
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - begin;
  // CPython's figure, measured now (untimed), in the same repetition.
  if (const auto cpython = cpython_start_join_seconds(kCpythonBatch)) {
    const double mp_seconds = elapsed.count() / static_cast<double>(state.iterations());
    state.counters["cpython_ns"] = *cpython * 1e9;
    state.counters["mp_over_cpython"] = mp_seconds / *cpython;
  }
}

void BM_StartJoin_Cpython(benchmark::State& state) {
  for (auto _ : state) {
    const auto seconds = cpython_start_join_seconds(kCpythonBatch);
    if (!seconds) {
      state.SkipWithError("python3 is not available (or failed): skipped");
      break;
    }
    state.SetIterationTime(*seconds);
  }
}

BENCHMARK(BM_StartJoin_ForkWaitpid)
    ->Name("StartJoin/fork_waitpid")
    ->UseRealTime()
    ->Iterations(kIterations);
BENCHMARK(BM_StartJoin_Mp)->Name("StartJoin/mp")->UseRealTime()->Iterations(kIterations);
BENCHMARK(BM_StartJoin_Cpython)->Name("StartJoin/cpython")->UseManualTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
