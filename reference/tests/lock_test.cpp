// Unit tests of mp::Lock. Comments name the clauses of spec/sync/lock.md a
// test exercises (the conformance suite is what checks them normatively).
#include "mp/lock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/platform/shm.hpp"
#include "test_util.hpp"

namespace {

using mp_test::Child;
using mp_test::Clock;
using mp_test::kClockResolution;
using mp_test::kLiveness;
using mp_test::kStaysBlocked;
using mp_test::Pipe;
using mp_test::seconds_since;
using std::chrono::milliseconds;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kLivenessSeconds = 10.0;

// Asserts that `call` raises mp::ValueError with the spec's message.
template <class F>
void ExpectValueError(F&& call, const std::string& message) {
  try {
    call();
    ADD_FAILURE() << "expected mp::ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.kind(), "ValueError");
    EXPECT_EQ(std::string(e.what()), message);
  }
}

// --- Single thread ----------------------------------------------------------

// [lock.construct.unlocked] [lock.acquire.free] [lock.release.held]
TEST(Lock, NewLockIsFreeAndFastPathWorks) {
  mp::Lock lock;
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(lock.acquire());
    lock.release();
    lock.lock();
    lock.unlock();
    ASSERT_TRUE(lock.try_lock());
    lock.unlock();
  }
}

// [lock.acquire.free]: any arguments take a free lock.
TEST(Lock, AcquireWithAnyArgumentsTakesFreeLock) {
  mp::Lock lock;
  for (std::optional<double> t :
       {std::optional<double>(), std::optional<double>(0.0), std::optional<double>(-1.0),
        std::optional<double>(0.5), std::optional<double>(kInf), std::optional<double>(1e20)}) {
    EXPECT_TRUE(lock.acquire(true, t));
    lock.release();
    EXPECT_TRUE(lock.acquire(false, t));
    lock.release();
  }
}

// [lock.acquire.nonblocking] [lock.acquire.nonblocking.timeout_ignored]
TEST(Lock, NonBlockingAcquireOfHeldLockFailsAtOnce) {
  mp::Lock lock;
  ASSERT_TRUE(lock.acquire());
  const auto start = Clock::now();
  EXPECT_FALSE(lock.acquire(false));
  EXPECT_FALSE(lock.acquire(false, 5.0));
  EXPECT_FALSE(lock.acquire(false, kInf));
  EXPECT_FALSE(lock.acquire(false, kNaN));  // ignored, not validated
  EXPECT_FALSE(lock.try_lock());
  EXPECT_LT(seconds_since(start), 1.0);
  lock.release();
}

// [lock.acquire.timeout.expires] [lock.acquire.not_reentrant]
TEST(Lock, TimedAcquireOfHeldLockExpiresNoEarlierThanTimeout) {
  mp::Lock lock;
  ASSERT_TRUE(lock.acquire());
  for (double timeout : {0.001, 0.05, 0.2}) {
    const auto start = Clock::now();
    EXPECT_FALSE(lock.acquire(true, timeout));
    const double elapsed = seconds_since(start);
    EXPECT_GE(elapsed, timeout - 0.001) << "timeout " << timeout;
    EXPECT_LT(elapsed, kLivenessSeconds) << "timeout " << timeout;
  }
  lock.release();  // still held exactly once
  ExpectValueError([&] { lock.release(); }, "semaphore or lock released too many times");
}

// [lock.acquire.timeout.zero] [lock.acquire.timeout.negative]
TEST(Lock, ZeroAndNegativeTimeoutsMakeOneAttempt) {
  mp::Lock lock;
  ASSERT_TRUE(lock.acquire());
  const auto start = Clock::now();
  EXPECT_FALSE(lock.acquire(true, 0.0));
  EXPECT_FALSE(lock.acquire(true, -0.0));
  EXPECT_FALSE(lock.acquire(true, -1.0));
  EXPECT_FALSE(lock.acquire(true, -kInf));
  EXPECT_FALSE(lock.try_lock_for(milliseconds(0)));
  EXPECT_FALSE(lock.try_lock_for(milliseconds(-5)));
  EXPECT_LT(seconds_since(start), 1.0);
  lock.release();
  EXPECT_TRUE(lock.acquire(true, 0.0));
  lock.release();
  EXPECT_TRUE(lock.acquire(true, -3.0));
  lock.release();
}

// [lock.acquire.timeout.nonfinite]: the reference's choice (NaN -> ValueError).
TEST(Lock, NaNTimeoutThrowsValueErrorAndLeavesLockUntouched) {
  mp::Lock lock;
  try {
    lock.acquire(true, kNaN);
    ADD_FAILURE() << "expected mp::ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.kind(), "ValueError");
  }
  EXPECT_TRUE(lock.try_lock());  // still free
  EXPECT_THROW(lock.acquire(true, kNaN), mp::ValueError);
  EXPECT_THROW(lock.acquire(true, -kNaN), mp::ValueError);
  lock.release();  // still held exactly once

  // With block=false the timeout is ignored, even NaN.
  EXPECT_TRUE(lock.acquire(false, kNaN));
  lock.release();
}

// [lock.release.unheld]
TEST(Lock, ReleaseOfFreeLockThrowsValueErrorAndLeavesItFree) {
  mp::Lock lock;
  ExpectValueError([&] { lock.release(); }, "semaphore or lock released too many times");
  ExpectValueError([&] { lock.unlock(); }, "semaphore or lock released too many times");
  ASSERT_TRUE(lock.acquire(false));  // free, with one unit only
  EXPECT_FALSE(lock.acquire(false));
  lock.release();
  ExpectValueError([&] { lock.release(); }, "semaphore or lock released too many times");
  try {
    lock.release();
  } catch (const mp::Error& e) {  // reachable through the base class
    EXPECT_STREQ(e.kind(), "ValueError");
  }
}

// [lock.context.enter] [lock.context.exit]
TEST(Lock, WorksWithStandardLockGuards) {
  mp::Lock lock;
  {
    std::lock_guard<mp::Lock> guard(lock);
    EXPECT_FALSE(lock.try_lock());
  }
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
  {
    std::unique_lock<mp::Lock> ul(lock, std::try_to_lock);
    EXPECT_TRUE(ul.owns_lock());
    std::unique_lock<mp::Lock> other(lock, std::defer_lock);
    EXPECT_FALSE(other.try_lock_for(milliseconds(1)));
    EXPECT_FALSE(other.try_lock_until(Clock::now() + milliseconds(1)));
  }
  {
    std::scoped_lock guard(lock);
    EXPECT_FALSE(lock.try_lock());
  }
  // The scope is left by an exception: released, exception not suppressed.
  try {
    std::lock_guard<mp::Lock> guard(lock);
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
}

TEST(Lock, TryLockForAndUntil) {
  mp::Lock lock;
  EXPECT_TRUE(lock.try_lock_for(std::chrono::seconds(1)));
  auto start = Clock::now();
  EXPECT_FALSE(lock.try_lock_for(milliseconds(30)));
  EXPECT_GE(Clock::now() - start, milliseconds(30) - kClockResolution);
  start = Clock::now();
  EXPECT_FALSE(lock.try_lock_until(start + milliseconds(30)));
  EXPECT_GE(Clock::now() - start, milliseconds(30) - kClockResolution);
  start = Clock::now();
  EXPECT_FALSE(lock.try_lock_until(start - std::chrono::hours(1)));  // passed: one attempt
  EXPECT_FALSE(lock.try_lock_until(Clock::time_point()));
  EXPECT_LT(seconds_since(start), 1.0);
  lock.unlock();
  EXPECT_TRUE(lock.try_lock_until(Clock::time_point::max()));
  lock.unlock();
  EXPECT_TRUE(lock.try_lock_for(std::chrono::hours::max()));
  lock.unlock();
  EXPECT_TRUE(lock.try_lock_until(
      std::chrono::time_point_cast<std::chrono::hours>(Clock::now() + std::chrono::hours(1))));
  lock.unlock();
}

TEST(Lock, CopiesAreHandlesToTheSameLock) {
  mp::Lock a;
  mp::Lock b = a;
  mp::Lock c;
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
  ASSERT_TRUE(b.acquire(false));
  EXPECT_FALSE(a.acquire(false));
  EXPECT_TRUE(c.acquire(false));  // independent
  a.release();
  EXPECT_TRUE(b.acquire(false));
  c = b;  // assignment rebinds the handle
  EXPECT_FALSE(c.acquire(false));
  c.release();
  mp::Lock moved = std::move(b);
  EXPECT_TRUE(moved == a);
  EXPECT_TRUE(b.acquire(false));  // NOLINT(bugprone-use-after-move): moving is copying
  b.release();
}

TEST(Lock, MappingLivesWhileAnyHandleDoes) {
  std::optional<mp::Lock> survivor;
  {
    mp::Lock original;
    ASSERT_TRUE(original.acquire());
    survivor = original;
  }
  EXPECT_FALSE(survivor->acquire(false));
  survivor->release();
  EXPECT_TRUE(survivor->acquire(false));
  survivor->release();
}

TEST(Lock, AttachUsesCallerProvidedState) {
  auto mapping = mp::platform::SharedMapping::anonymous(sizeof(mp::LockState) * 2);
  auto* states = ::new (mapping.data()) mp::LockState[2];
  mp::Lock a = mp::Lock::attach(states[0]);
  mp::Lock a2 = mp::Lock::attach(states[0]);
  mp::Lock b = mp::Lock::attach(states[1]);
  EXPECT_TRUE(a == a2);
  EXPECT_FALSE(a == b);
  EXPECT_EQ(states[0].word.load(), 0u);
  ASSERT_TRUE(a.acquire());
  EXPECT_EQ(states[0].word.load(), 1u);
  EXPECT_EQ(states[1].word.load(), 0u);
  EXPECT_FALSE(a2.acquire(false));
  EXPECT_TRUE(b.acquire(false));
  a2.release();
  b.release();
  EXPECT_EQ(states[0].word.load(), 0u);
  EXPECT_EQ(states[1].word.load(), 0u);
  EXPECT_THROW(a.release(), mp::ValueError);
}

// --- Threads ----------------------------------------------------------------

// [lock.release.other_thread]
TEST(LockThreads, AnotherThreadMayRelease) {
  mp::Lock lock;
  ASSERT_TRUE(lock.acquire());
  bool released = false;
  std::thread([&] {
    lock.release();
    released = true;
  }).join();
  EXPECT_TRUE(released);
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

// [lock.acquire.blocks] [lock.acquire.wakes] [lock.acquire.timeout.success]
TEST(LockThreads, BlockedAcquireIsWokenByRelease) {
  for (const bool timed : {false, true}) {
    mp::Lock lock;
    ASSERT_TRUE(lock.acquire());
    std::atomic<bool> started{false};
    std::atomic<bool> done{false};
    std::atomic<bool> result{false};
    std::thread waiter([&] {
      started = true;
      result = timed ? lock.acquire(true, kLivenessSeconds) : lock.acquire();
      done = true;
    });
    // Handshake, then show that it stays blocked for a while.
    const auto start = Clock::now();
    while (!started && Clock::now() - start < kLiveness) std::this_thread::yield();
    const auto blocked_since = Clock::now();
    while (!done && Clock::now() - blocked_since < kStaysBlocked) std::this_thread::yield();
    EXPECT_FALSE(done) << "acquire returned while the lock was held";
    lock.release();
    waiter.join();
    EXPECT_TRUE(result);
    EXPECT_FALSE(lock.acquire(false));  // the waiter holds it now
    lock.release();
  }
}

// White box: a sleeper marks the word "held with waiters" (2); the release
// that finds 2 resets it to 0 and wakes the sleeper, which takes it as 2.
TEST(LockThreads, SleeperMarksWordContended) {
  mp::LockState state;
  mp::Lock lock = mp::Lock::attach(state);
  ASSERT_TRUE(lock.acquire());
  std::atomic<bool> result{false};
  std::thread waiter([&] { result = lock.acquire(true, kLivenessSeconds); });
  const auto start = Clock::now();
  while (state.word.load() != 2 && Clock::now() - start < kLiveness) std::this_thread::yield();
  EXPECT_EQ(state.word.load(), 2u);
  lock.release();
  waiter.join();
  EXPECT_TRUE(result);
  EXPECT_EQ(state.word.load(), 2u);  // conservatively keeps "maybe waiters"
  lock.release();
  EXPECT_EQ(state.word.load(), 0u);
}

// [lock.release.concurrent]: of two concurrent releases of a held lock,
// exactly one succeeds, and the lock ends up with exactly one unit.
TEST(LockThreads, ConcurrentReleasesExactlyOneSucceeds) {
  constexpr int kRounds = 5000;
  mp::Lock lock;
  std::barrier sync(3);
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  auto releaser = [&] {
    for (int round = 0; round < kRounds; ++round) {
      sync.arrive_and_wait();  // lock is held
      try {
        lock.release();
        ok.fetch_add(1);
      } catch (const mp::ValueError&) {
        failed.fetch_add(1);
      }
      sync.arrive_and_wait();  // both released
      sync.arrive_and_wait();  // main checked
    }
  };
  std::thread t1(releaser);
  std::thread t2(releaser);
  int bad_rounds = 0;
  for (int round = 0; round < kRounds; ++round) {
    if (!lock.try_lock()) ++bad_rounds;
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    if (ok.exchange(0) != 1 || failed.exchange(0) != 1) ++bad_rounds;
    // One unit, never two.
    if (!lock.try_lock()) ++bad_rounds;
    if (lock.try_lock()) ++bad_rounds;
    lock.release();
    sync.arrive_and_wait();
  }
  t1.join();
  t2.join();
  EXPECT_EQ(bad_rounds, 0);
}

// [lock.acquire.exclusive] between threads.
TEST(LockThreads, MutualExclusionCounter) {
  constexpr int kThreads = 4;
  constexpr int kIterations = 100000;
  mp::Lock lock;
  std::int64_t counter = 0;  // guarded by `lock`; TSan checks the guarding
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        // Mix the entry points.
        if ((i + t) % 3 == 0) {
          std::lock_guard<mp::Lock> guard(lock);
          if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
          ++counter;
          inside.fetch_sub(1);
        } else {
          const std::optional<double> timeout =
              (i % 3 == 1) ? std::optional<double>(kLivenessSeconds) : std::nullopt;
          if (!lock.acquire(true, timeout)) {
            overlaps.fetch_add(1000000);  // a timed acquire must not time out here
            continue;
          }
          if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
          ++counter;
          inside.fetch_sub(1);
          lock.release();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, std::int64_t{kThreads} * kIterations);
}

// --- Processes (fork) -------------------------------------------------------

// [lock.process.shared] [lock.process.inherit_held] [lock.acquire.blocks]
// [lock.acquire.wakes] [lock.release.other_process]
TEST(LockProcesses, ChildBlocksUntilParentReleases) {
  for (const bool timed : {false, true}) {
    mp::Lock lock;
    ASSERT_TRUE(lock.acquire());
    Pipe to_parent;
    Child child([&] {
      if (lock.acquire(false)) return 2;  // must be held in the child too
      if (!to_parent.send('r')) return 3;
      const bool got = timed ? lock.acquire(true, kLivenessSeconds) : lock.acquire();
      if (!got) return 4;
      return to_parent.send('g') ? 0 : 5;  // exits holding the lock
    });
    ASSERT_EQ(to_parent.receive(), 'r');
    EXPECT_TRUE(child.still_running_after(kStaysBlocked)) << "child not blocked";
    lock.release();
    EXPECT_EQ(to_parent.receive(), 'g');
    EXPECT_EQ(child.exit_code(), 0) << (timed ? "timed" : "blocking");
    // The dead child took it: held, and a survivor may release it.
    EXPECT_FALSE(lock.acquire(false));
    lock.release();
    EXPECT_TRUE(lock.acquire(false));
    lock.release();
  }
}

// [lock.process.inherit_held] [lock.release.other_process]
TEST(LockProcesses, ChildReleasesLockHeldByParent) {
  mp::Lock lock;
  ASSERT_TRUE(lock.acquire());
  Child child([&] {
    lock.release();
    try {
      lock.release();
      return 2;  // the second release must fail
    } catch (const mp::ValueError&) {
      return 0;
    }
  });
  ASSERT_EQ(child.exit_code(), 0);
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

// [lock.kill.holder] [lock.kill.release_by_survivor]
TEST(LockProcesses, KilledHolderKeepsLockHeldUntilSurvivorReleases) {
  mp::Lock lock;
  Pipe to_parent;
  Child child([&] {
    if (!lock.acquire(false)) return 2;
    to_parent.send('h');
    for (;;) pause();  // until killed (or the watchdog fires)
  });
  ASSERT_EQ(to_parent.receive(), 'h');
  ASSERT_TRUE(child.kill_and_reap());
  const auto start = Clock::now();
  EXPECT_FALSE(lock.acquire(true, 0.1));
  EXPECT_GE(seconds_since(start), 0.1 - 0.001);
  EXPECT_FALSE(lock.acquire(false));
  lock.release();  // the survivor releases on the dead holder's behalf
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
  EXPECT_THROW(lock.release(), mp::ValueError);
}

// [lock.kill.waiter]
TEST(LockProcesses, KilledWaiterDoesNotDisturbOtherWaiters) {
  mp::Lock lock;
  ASSERT_TRUE(lock.acquire());
  Pipe pipe1;
  Child doomed([&] {
    pipe1.send('r');
    lock.acquire();
    return 3;  // must not get here: killed while blocked
  });
  ASSERT_EQ(pipe1.receive(), 'r');
  EXPECT_TRUE(doomed.still_running_after(kStaysBlocked));
  ASSERT_TRUE(doomed.kill_and_reap());
  Pipe pipe2;
  Child waiter([&] {
    pipe2.send('r');
    if (!lock.acquire(true, kLivenessSeconds)) return 2;
    pipe2.send('g');
    lock.release();
    return 0;
  });
  ASSERT_EQ(pipe2.receive(), 'r');
  EXPECT_TRUE(waiter.still_running_after(kStaysBlocked));
  lock.release();
  EXPECT_EQ(pipe2.receive(), 'g');
  EXPECT_EQ(waiter.exit_code(), 0);
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

// [lock.acquire.exclusive] between processes.
TEST(LockProcesses, MutualExclusionAcrossProcesses) {
  constexpr int kIterations = 100000;
  struct Shared {
    std::int64_t counter;
    std::atomic<int> inside;
    std::atomic<int> overlaps;
  };
  auto mapping = mp::platform::SharedMapping::anonymous(sizeof(Shared));
  auto* shared = ::new (mapping.data()) Shared{0, {0}, {0}};
  mp::Lock lock;
  auto work = [&] {
    for (int i = 0; i < kIterations; ++i) {
      std::lock_guard<mp::Lock> guard(lock);
      if (shared->inside.fetch_add(1) != 0) shared->overlaps.fetch_add(1);
      shared->counter = shared->counter + 1;
      shared->inside.fetch_sub(1);
    }
  };
  Child child([&] {
    work();
    return 0;
  });
  work();
  ASSERT_EQ(child.exit_code(), 0);
  EXPECT_EQ(shared->overlaps.load(), 0);
  EXPECT_EQ(shared->counter, 2 * kIterations);
}

}  // namespace
