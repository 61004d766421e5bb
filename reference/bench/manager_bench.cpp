// Benchmarks of mp::Manager proxies beside CPython's multiprocessing.Manager measured in the
// same run (compare ratios; the dev VM drifts between runs).
//
//   Manager/dict_set_get/mp        d.call("__setitem__", {key, i}) then
//                                  d.call("__getitem__", {key}) on a manager dict proxy
//                                  (one server, the caller's connection); items_per_second
//                                  counts operations (2 per iteration).
//   Manager/dict_set_get/cpython   the same in CPython: `d[key] = i; d[key]` on
//                                  `multiprocessing.get_context("fork").Manager().dict()`,
//                                  timed with time.perf_counter() after a warm-up (manual
//                                  time: the mean seconds of one set + get pair).
//   Manager/create_release/mp      create("dict") and drop the proxy (create + decref).
//
// The goal (issue 8): dict set/get operations per second >= 2x CPython's.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "mp/manager.hpp"
#include "mp/process.hpp"
#include "mp/value.hpp"
#include "python_peer.hpp"

namespace {

void BM_DictSetGet_Mp(benchmark::State& state) {
  mp::ManagerOptions o;
  o.start_method = mp::StartMethod::kFork;
  mp::Manager manager(std::nullopt, std::nullopt, o);
  manager.start();
  mp::Proxy d = manager.create("dict");
  for (int i = 0; i < 1000; ++i) d.call("__setitem__", {"k" + std::to_string(i % 16), i});
  std::int64_t i = 0;
  const std::string keys[4] = {"k0", "k1", "k2", "k3"};
  for (auto _ : state) {
    const std::string& key = keys[i & 3];
    d.call("__setitem__", {key, i});
    benchmark::DoNotOptimize(d.call("__getitem__", {key}));
    ++i;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 2);
}

void BM_CreateRelease_Mp(benchmark::State& state) {
  mp::Manager manager;
  manager.start();
  for (auto _ : state) {
    benchmark::DoNotOptimize(manager.create("dict"));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// Mean seconds of one `d[key] = i; d[key]` pair on a CPython manager dict.
std::optional<double> cpython_set_get_seconds(int count) {
  static const std::string script =
      "\n"
      "import multiprocessing, sys, time\n"
      "n = int(sys.argv[1])\n"
      "with multiprocessing.get_context(\"fork\").Manager() as m:\n"
      "    d = m.dict()\n"
      "    keys = [\"k0\", \"k1\", \"k2\", \"k3\"]\n"
      "    for i in range(1000):\n"
      "        d[keys[i & 3]] = i\n"
      "        d[keys[i & 3]]\n"
      "    t0 = time.perf_counter()\n"
      "    for i in range(n):\n"
      "        d[keys[i & 3]] = i\n"
      "        d[keys[i & 3]]\n"
      "    t1 = time.perf_counter()\n"
      "print(repr((t1 - t0) / n))\n";
  return mp_bench::run_python(script, std::to_string(count));
}

void BM_DictSetGet_Cpython(benchmark::State& state) {
  for (auto _ : state) {
    const auto seconds = cpython_set_get_seconds(20000);
    if (!seconds) {
      state.SkipWithError("python3 is not available (or failed): skipped");
      break;
    }
    state.SetIterationTime(*seconds);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 2);
}

BENCHMARK(BM_DictSetGet_Mp)->Name("Manager/dict_set_get/mp")->UseRealTime();
BENCHMARK(BM_DictSetGet_Cpython)
    ->Name("Manager/dict_set_get/cpython")
    ->UseManualTime()
    ->Iterations(2);
BENCHMARK(BM_CreateRelease_Mp)->Name("Manager/create_release/mp")->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  mp::spawn_main(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
