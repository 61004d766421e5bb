// Benchmarks of mp::FileLock beside the system calls it is built on, in one
// binary so that the figures come from the same run (the dev VM drifts by
// +-30-50% between runs; compare ratios).
//
//   Uncontended/raw_ofd(setlk+unlk)   the floor: fcntl(F_OFD_SETLK, F_WRLCK)
//                                     then fcntl(F_OFD_SETLK, F_UNLCK) on an
//                                     open descriptor. Two system calls.
//   Uncontended/raw_posix(setlk+unlk) the same with process-owned POSIX record
//                                     locks (F_SETLK; fasteners' lockf).
//   Uncontended/mp::FileLock          acquire()+release() of a free lock on one
//                                     handle: the same two system calls plus
//                                     the handle's checks (the file is opened
//                                     once, at the first acquire). Target:
//                                     <= 1.2x the raw OFD cycle.
//   Uncontended/mp::FileLock(timeout=1)  a timed acquire of a free lock: one
//                                     attempt succeeds; no timer is created.
//   Uncontended/mp::FileRWLock(read)  acquire_read()+release_read().
//   TimedOut/mp::FileLock(timeout=1ms)  a timed acquire of a held lock, i.e.
//                                     1 ms of waiting plus the cost of the
//                                     timer, the signal and the EINTR: the
//                                     figure minus 1000 us is the overshoot.
//   HandOff/*                         the latency of handing the lock to a
//                                     waiting process: a forked child is
//                                     asleep in acquire() (the parent checks
//                                     /proc/<pid>/stat for state 'S' before
//                                     releasing); the figure is the time from
//                                     just before the parent's release() to
//                                     the return of the child's acquire(),
//                                     both read from CLOCK_MONOTONIC and
//                                     passed through shared memory (manual
//                                     time, one hand-off per iteration).
//     mp::FileLock(blocking)          child in acquire(): F_OFD_SETLKW; the
//                                     kernel wakes it at the release.
//     mp::FileLock(timeout=10)        child in acquire(true, 10): the same
//                                     wait with the deadline timer armed.
//     polling(fasteners back-off)     child retries F_OFD_SETLK and sleeps
//                                     min(attempt * 10 ms, 100 ms) between
//                                     attempts, as fasteners'
//                                     InterProcessLock.acquire() does. The
//                                     parent releases right after the child
//                                     fell asleep, so the figure is about the
//                                     *best* case, the first 10 ms step;
//                                     a longer-held lock costs up to 100 ms.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <system_error>
#include <thread>

#include "mp/file_lock.hpp"
#include "mp/platform/clock.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/shm.hpp"

namespace {

using mp::platform::monotonic_now_ns;
using mp::platform::SharedMapping;
namespace futex = mp::platform::futex;

// A directory for the lock files, removed at exit.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                          "/mp_file_lock_bench.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

const TempDir& Dir() {
  static const TempDir dir;
  return dir;
}

int OfdLock(int fd, int command, short type) {
  struct flock request {};
  request.l_type = type;
  request.l_whence = SEEK_SET;
  return fcntl(fd, command, &request);
}

// --- Uncontended ------------------------------------------------------------

template <int kSetCommand>
void RawCycle(benchmark::State& state) {
  const std::string path = Dir().file(kSetCommand == F_OFD_SETLK ? "raw_ofd" : "raw_posix");
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    state.SkipWithError("open failed");
    return;
  }
  for (auto _ : state) {
    if (OfdLock(fd, kSetCommand, F_WRLCK) != 0) state.SkipWithError("lock failed");
    benchmark::DoNotOptimize(OfdLock(fd, kSetCommand, F_UNLCK));
  }
  close(fd);
}
BENCHMARK_TEMPLATE(RawCycle, F_OFD_SETLK)->Name("Uncontended/raw_ofd(setlk+unlk)");
BENCHMARK_TEMPLATE(RawCycle, F_SETLK)->Name("Uncontended/raw_posix(setlk+unlk)");

void BM_Uncontended_FileLock(benchmark::State& state) {
  mp::FileLock lock(Dir().file("uncontended"));
  for (auto _ : state) {
    lock.acquire();
    lock.release();
  }
}
BENCHMARK(BM_Uncontended_FileLock)->Name("Uncontended/mp::FileLock");

void BM_Uncontended_FileLockTimed(benchmark::State& state) {
  mp::FileLock lock(Dir().file("uncontended_timed"));
  for (auto _ : state) {
    lock.acquire(true, 1.0);
    lock.release();
  }
}
BENCHMARK(BM_Uncontended_FileLockTimed)->Name("Uncontended/mp::FileLock(timeout=1)");

void BM_Uncontended_FileRWLockRead(benchmark::State& state) {
  mp::FileRWLock lock(Dir().file("uncontended_rw"));
  for (auto _ : state) {
    lock.acquire_read();
    lock.release_read();
  }
}
BENCHMARK(BM_Uncontended_FileRWLockRead)->Name("Uncontended/mp::FileRWLock(read)");

// --- Timed out --------------------------------------------------------------

void BM_TimedOut(benchmark::State& state) {
  mp::FileLock holder(Dir().file("timed_out"));
  mp::FileLock lock(Dir().file("timed_out"));
  holder.acquire();
  for (auto _ : state) {
    if (lock.acquire(true, 0.001)) state.SkipWithError("acquired a held lock");
  }
  holder.release();
}
BENCHMARK(BM_TimedOut)
    ->Name("TimedOut/mp::FileLock(timeout=1ms)")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// --- Hand-off to a waiting process ------------------------------------------

enum class Waiter { kBlocking, kTimed, kPolling };

struct HandOffShared {
  std::atomic<std::uint32_t> go{0};        // round number the child may start
  std::atomic<std::uint32_t> blocking{0};  // round the child is about to wait in
  std::atomic<std::uint32_t> done{0};      // round the child finished
  std::atomic<std::uint32_t> stop{0};
  std::atomic<std::int64_t> acquired_ns{0};
  std::atomic<std::uint32_t> failed{0};
};

void Publish(std::atomic<std::uint32_t>& word, std::uint32_t value) {
  word.store(value, std::memory_order_release);
  futex::wake(word, futex::kWakeAll);
}

// Waits until `word` == `value`; false after 10 s.
bool AwaitValue(std::atomic<std::uint32_t>& word, std::uint32_t value) {
  const auto deadline = mp::platform::Deadline::after(10.0);
  for (;;) {
    const std::uint32_t seen = word.load(std::memory_order_acquire);
    if (seen == value) return true;
    if (futex::wait(word, seen, &deadline) == futex::WaitResult::kTimedOut) return false;
  }
}

// The process's state letter in /proc/<pid>/stat ('S': asleep).
char ProcessState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() ? stat[paren + 2] : '?';
}

// fasteners' InterProcessLock.acquire() on an OFD lock: one attempt, then
// sleep(min(attempts * 0.01, 0.1)) and try again.
void PollingAcquire(int fd) {
  for (int attempts = 1;; ++attempts) {
    if (OfdLock(fd, F_OFD_SETLK, F_WRLCK) == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(attempts * 10, 100)));
  }
}

[[noreturn]] void HandOffChild(Waiter waiter, const std::string& path, HandOffShared* shared) {
  mp::FileLock lock(path);
  const int raw = open(path.c_str(), O_RDWR | O_CLOEXEC);
  for (std::uint32_t round = 1;; ++round) {
    if (!AwaitValue(shared->go, round) || shared->stop.load()) _exit(0);
    Publish(shared->blocking, round);
    bool ok = true;
    switch (waiter) {
      case Waiter::kBlocking:
        ok = lock.acquire();
        break;
      case Waiter::kTimed:
        ok = lock.acquire(true, 10.0);
        break;
      case Waiter::kPolling:
        PollingAcquire(raw);
        break;
    }
    shared->acquired_ns.store(monotonic_now_ns());
    if (!ok) shared->failed.store(1);
    if (waiter == Waiter::kPolling) {
      OfdLock(raw, F_OFD_SETLK, F_UNLCK);
    } else if (ok) {
      lock.release();
    }
    Publish(shared->done, round);
  }
}

void HandOff(benchmark::State& state, Waiter waiter) {
  const std::string path = Dir().file("handoff");
  auto mapping = SharedMapping::anonymous(sizeof(HandOffShared));
  auto* shared = ::new (mapping.data()) HandOffShared;
  mp::FileLock lock(path);
  lock.acquire();

  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child < 0) {
    state.SkipWithError("fork failed");
    return;
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    HandOffChild(waiter, path, shared);
  }

  std::uint32_t round = 0;
  for (auto _ : state) {
    ++round;
    Publish(shared->go, round);
    if (!AwaitValue(shared->blocking, round)) {
      state.SkipWithError("child did not start");
      break;
    }
    // Release only once the child sleeps in the kernel (bounded: 10 s).
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ProcessState(child) != 'S' && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::yield();
    }
    const std::int64_t released_ns = monotonic_now_ns();
    lock.release();
    if (!AwaitValue(shared->done, round)) {
      state.SkipWithError("child did not take the lock");
      break;
    }
    state.SetIterationTime(static_cast<double>(shared->acquired_ns.load() - released_ns) * 1e-9);
    lock.acquire();
  }
  shared->stop.store(1);
  Publish(shared->go, round + 1);
  lock.release();
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (shared->failed.load() != 0) state.SkipWithError("a timed acquire in the child timed out");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("child failed");
}

BENCHMARK_CAPTURE(HandOff, blocking, Waiter::kBlocking)
    ->Name("HandOff/mp::FileLock(blocking)")
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(HandOff, timed, Waiter::kTimed)
    ->Name("HandOff/mp::FileLock(timeout=10)")
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(HandOff, polling, Waiter::kPolling)
    ->Name("HandOff/polling(fasteners back-off)")
    ->UseManualTime()
    ->Iterations(30)
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
