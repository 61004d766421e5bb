// Benchmarks of mp::Queue: one producer process, one consumer process, items
// of N bytes, beside CPython's multiprocessing.Queue measured in the same run
// (compare ratios; the dev VM drifts between runs).
//
//   Throughput/mp_bytes/N/split:P
//                            a forked child put_bytes() N-byte items as fast as
//                            the queue takes them; the parent get_bytes() one
//                            item per iteration. items_per_second is the figure.
//   Throughput/mp_values/N   the same with put()/get() of a bytes Value (the
//                            pickle codec on both sides), as Python code would.
//   Throughput/cpython/N     CPython: `python3 -c <loop>` with a fork child
//                            putting N-byte bytes objects into a
//                            multiprocessing.Queue and the parent getting them;
//                            the loop times the gets with time.perf_counter()
//                            (after a warm-up), so interpreter start-up is not
//                            counted. Manual time: the mean of one item.
//
//   Throughput/boost/N       Boost.Interprocess message_queue (when the build
//                            found Boost's headers: MP_BENCH_HAVE_BOOST): a
//                            named queue of 1024 messages of at most N bytes,
//                            a forked child send()s, the parent receive()s.
//
// The goals (issue 6): >= 40x CPython at 64 B; >= 1.5x Boost's
// message_queue at 64 B and 4 KiB.
#include <benchmark/benchmark.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#if MP_BENCH_HAVE_BOOST
#include <boost/interprocess/ipc/message_queue.hpp>
#endif

#include "mp/errors.hpp"
#include "mp/queue.hpp"
#include "mp/value.hpp"
#include "python_peer.hpp"

namespace {

constexpr int kCpythonItems = 20000;

pid_t fork_child() {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::abort();
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
  }
  return pid;
}

void stop(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

// The processes' placement, the benchmark's second argument: 0 leaves them to the scheduler; 1
// (`split`) runs the producer (the child) on cpu1 and the consumer (the parent) on cpu0, the
// steady figure on a two-CPU machine, where an unpinned run sometimes puts both on one CPU for a
// while (then every blocked call waits for a time slice, and the figures swing several-fold).
// Construct before forking; call in_parent() after.
class Placement {
 public:
  Placement(benchmark::State& state, bool split) : split_(split) {
    if (!split_) return;
    sched_getaffinity(0, sizeof original_, &original_);
    if (!set(1)) state.SkipWithError("sched_setaffinity(cpu1) failed: needs two CPUs");
  }
  void in_parent() {
    if (split_) set(0);
  }
  ~Placement() {
    if (split_) sched_setaffinity(0, sizeof original_, &original_);
  }

 private:
  static bool set(int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof one, &one) == 0;
  }
  bool split_;
  cpu_set_t original_{};
};

void BM_Throughput_MpBytes(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  mp::Queue q(1024);
  Placement placement(state, state.range(1) != 0);
  const pid_t pid = fork_child();
  placement.in_parent();
  if (pid == 0) {
    const std::string item(n, 'x');
    for (;;) q.put_bytes(item);
  }
  std::string buffer;
  for (auto _ : state) {
    q.get_bytes_into(buffer);
    benchmark::DoNotOptimize(buffer.data());
  }
  stop(pid);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_Throughput_MpValues(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  mp::Queue q(1024);
  Placement placement(state, state.range(1) != 0);
  const pid_t pid = fork_child();
  placement.in_parent();
  if (pid == 0) {
    const mp::Value item = mp::Value::bytes(std::string(n, 'x'));
    for (;;) q.put(item);
  }
  for (auto _ : state) benchmark::DoNotOptimize(q.get());
  stop(pid);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

#if MP_BENCH_HAVE_BOOST
void BM_Throughput_Boost(benchmark::State& state) {
  namespace bip = boost::interprocess;
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::string name = "mp_bench_mq_" + std::to_string(::getpid());
  bip::message_queue::remove(name.c_str());
  {
    bip::message_queue q(bip::create_only, name.c_str(), 1024, n);
    Placement placement(state, state.range(1) != 0);
    const pid_t pid = fork_child();
    placement.in_parent();
    if (pid == 0) {
      bip::message_queue child(bip::open_only, name.c_str());
      const std::string item(n, 'x');
      for (;;) child.send(item.data(), item.size(), 0);
    }
    std::string buffer(n, '\0');
    bip::message_queue::size_type received = 0;
    unsigned int priority = 0;
    for (auto _ : state) {
      q.receive(buffer.data(), buffer.size(), received, priority);
      benchmark::DoNotOptimize(received);
    }
    stop(pid);
  }
  bip::message_queue::remove(name.c_str());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
#endif

// Mean seconds per item of CPython's Queue moving `count` items of `size`
// bytes from a fork child to the parent; nullopt if python3 is missing or fails.
std::optional<double> cpython_seconds_per_item(int count, std::size_t size) {
  static const std::string script =
      "\n"
      "import multiprocessing, sys, time\n"
      "n, size = int(sys.argv[1]), int(sys.argv[2])\n"
      "ctx = multiprocessing.get_context(\"fork\")\n"
      "q = ctx.Queue(1024)\n"
      "def produce():\n"
      "    item = b\"x\" * size\n"
      "    for _ in range(n + 1000):\n"
      "        q.put(item)\n"
      "p = ctx.Process(target=produce); p.start()\n"
      "for _ in range(1000):\n"
      "    q.get()\n"
      "t0 = time.perf_counter()\n"
      "for _ in range(n):\n"
      "    q.get()\n"
      "t1 = time.perf_counter()\n"
      "p.join()\n"
      "print(repr((t1 - t0) / n))\n";
  return mp_bench::run_python(script, std::to_string(count) + " " + std::to_string(size));
}

void BM_Throughput_Cpython(benchmark::State& state) {
  for (auto _ : state) {
    const auto seconds =
        cpython_seconds_per_item(kCpythonItems, static_cast<std::size_t>(state.range(0)));
    if (!seconds) {
      state.SkipWithError("python3 is not available (or failed): skipped");
      break;
    }
    state.SetIterationTime(*seconds);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// {item bytes, placement (0 unpinned, 1 split)}.
#define MP_QUEUE_ARGS ->ArgsProduct({{64, 4096}, {0, 1}})->ArgNames({"", "split"})->UseRealTime()
BENCHMARK(BM_Throughput_MpBytes)->Name("Throughput/mp_bytes") MP_QUEUE_ARGS;
BENCHMARK(BM_Throughput_MpValues)->Name("Throughput/mp_values") MP_QUEUE_ARGS;
#if MP_BENCH_HAVE_BOOST
BENCHMARK(BM_Throughput_Boost)->Name("Throughput/boost") MP_QUEUE_ARGS;
#endif
BENCHMARK(BM_Throughput_Cpython)
    ->Name("Throughput/cpython")
    ->Arg(64)
    ->Arg(4096)
    ->UseManualTime()
    ->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
