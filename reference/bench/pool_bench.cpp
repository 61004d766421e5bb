// Benchmarks of mp::Pool beside CPython's multiprocessing.Pool measured in
// the same run (compare ratios; the dev VM drifts between runs).
//
//   Pool/apply_roundtrip/mp        Pool(2): apply_async("identity", {i}).get()
//                                  per iteration: the latency of one task.
//   Pool/apply_roundtrip/cpython   the same in CPython: `python3 -c <loop>` with
//                                  a fork-context Pool(2), timing n round trips
//                                  with time.perf_counter() after a warm-up
//                                  (manual time: the mean of one round trip).
//   Pool/map_chunk1/mp/N           Pool(2): map("identity", range(N),
//                                  chunksize=1) per iteration; items_per_second
//                                  is the figure (tasks/s).
//   Pool/map_chunk1/cpython/N      the same in CPython (manual time: the mean
//                                  seconds per item; items_per_second = tasks/s).
//
// The goals (issue 7): an apply_async round trip <= 0.25x CPython's;
// map with chunksize 1 >= 10x CPython's tasks/s.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "mp/pool.hpp"
#include "mp/process.hpp"
#include "mp/value.hpp"
#include "python_peer.hpp"

namespace {

mp::Value identity(const mp::List& args, const mp::Dict&) { return args.at(0); }
const mp::PoolFunctionRegistration kIdentity("identity", &identity);

mp::PoolOptions two_workers() {
  mp::PoolOptions o;
  o.processes = 2;
  o.start_method = mp::StartMethod::kFork;
  return o;
}

void BM_ApplyRoundTrip_Mp(benchmark::State& state) {
  mp::Pool pool(two_workers());
  for (int i = 0; i < 1000; ++i) pool.apply_async("identity", {i}).get();  // warm-up
  std::int64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(pool.apply_async("identity", {i++}).get());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_MapChunk1_Mp(benchmark::State& state) {
  const auto n = state.range(0);
  mp::Pool pool(two_workers());
  mp::List input;
  input.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) input.emplace_back(i);
  pool.map("identity", input, 1);  // warm-up
  for (auto _ : state) {
    benchmark::DoNotOptimize(pool.map("identity", input, 1));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * n);
}

// Mean seconds of one apply_async(identity).get() round trip in CPython.
std::optional<double> cpython_apply_seconds(int count) {
  static const std::string script =
      "\n"
      "import multiprocessing, sys, time\n"
      "def identity(x):\n"
      "    return x\n"
      "n = int(sys.argv[1])\n"
      "with multiprocessing.get_context(\"fork\").Pool(2) as p:\n"
      "    for i in range(500):\n"
      "        p.apply_async(identity, (i,)).get()\n"
      "    t0 = time.perf_counter()\n"
      "    for i in range(n):\n"
      "        p.apply_async(identity, (i,)).get()\n"
      "    t1 = time.perf_counter()\n"
      "print(repr((t1 - t0) / n))\n";
  return mp_bench::run_python(script, std::to_string(count));
}

// Mean seconds per item of map(identity, range(n), chunksize=1) in CPython.
std::optional<double> cpython_map_seconds_per_item(std::int64_t n) {
  static const std::string script =
      "\n"
      "import multiprocessing, sys, time\n"
      "def identity(x):\n"
      "    return x\n"
      "n = int(sys.argv[1])\n"
      "with multiprocessing.get_context(\"fork\").Pool(2) as p:\n"
      "    p.map(identity, range(1000), chunksize=1)\n"
      "    t0 = time.perf_counter()\n"
      "    p.map(identity, range(n), chunksize=1)\n"
      "    t1 = time.perf_counter()\n"
      "print(repr((t1 - t0) / n))\n";
  return mp_bench::run_python(script, std::to_string(n));
}

void BM_ApplyRoundTrip_Cpython(benchmark::State& state) {
  for (auto _ : state) {
    const auto seconds = cpython_apply_seconds(3000);
    if (!seconds) {
      state.SkipWithError("python3 is not available (or failed): skipped");
      break;
    }
    state.SetIterationTime(*seconds);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_MapChunk1_Cpython(benchmark::State& state) {
  const auto n = state.range(0);
  for (auto _ : state) {
    const auto seconds = cpython_map_seconds_per_item(n);
    if (!seconds) {
      state.SkipWithError("python3 is not available (or failed): skipped");
      break;
    }
    state.SetIterationTime(*seconds * static_cast<double>(n));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * n);
}

BENCHMARK(BM_ApplyRoundTrip_Mp)->Name("Pool/apply_roundtrip/mp")->UseRealTime();
BENCHMARK(BM_ApplyRoundTrip_Cpython)
    ->Name("Pool/apply_roundtrip/cpython")
    ->UseManualTime()
    ->Iterations(2);
BENCHMARK(BM_MapChunk1_Mp)
    ->Name("Pool/map_chunk1/mp")
    ->Arg(100000)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MapChunk1_Cpython)
    ->Name("Pool/map_chunk1/cpython")
    ->Arg(100000)
    ->UseManualTime()
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  mp::spawn_main(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
