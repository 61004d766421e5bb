// Unit tests of mp::RWLock: the Python-style acquire/release rules shared with
// mp::Lock, reader sharing, writer exclusion, writer preference, timed writers
// that give up, killed waiters, and randomized stress between threads and
// between processes.
#include "mp/rwlock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <new>
#include <random>
#include <shared_mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/platform/shm.hpp"
#include "test_util.hpp"

namespace {

using mp::RWLockState;
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

constexpr char kReleaseReadMessage[] = "release_read: no reader holds the lock";
constexpr char kReleaseWriteMessage[] = "release_write: the lock is not held for writing";

// Asserts that `call` raises mp::ValueError with `message`.
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

// Polls `pred` every millisecond until it holds or `timeout` passes.
template <class Pred>
bool Eventually(Pred pred, milliseconds timeout = kLiveness) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

// Keeps the CPU busy for about `duration` (a critical section with a length).
void BusyFor(std::chrono::microseconds duration) {
  const auto until = Clock::now() + duration;
  while (Clock::now() < until) {
  }
}

// A critical section of random length: a short busy wait, and now and then a
// yield, so that a holder may lose its CPU while holding.
void RandomHold(std::mt19937& rng) {
  BusyFor(std::chrono::microseconds(rng() % 8));
  if (rng() % 16 == 0) std::this_thread::yield();
}

// Waits (bounded) until `go` is set: a common start line for stress threads.
void StartLine(const std::atomic<bool>& go) {
  Eventually([&] { return go.load(); });
}

// An RWLock whose state the test can inspect (white box), in shared memory so
// that forked children share it.
struct Inspectable {
  mp::platform::SharedMapping mapping = mp::platform::SharedMapping::anonymous(sizeof(RWLockState));
  RWLockState* state = ::new (mapping.data()) RWLockState{};
  mp::RWLock lock = mp::RWLock::attach(*state);

  std::uint32_t word() const { return state->word.load(); }
  bool writers_waiting() const { return (word() & RWLockState::kWritersWaiting) != 0; }
  bool readers_waiting() const { return (word() & RWLockState::kReadersWaiting) != 0; }
};

// --- Single thread ----------------------------------------------------------

TEST(RWLock, NewLockIsFreeAndFastPathsWork) {
  mp::RWLock rw;
  EXPECT_EQ(rw.readers(), 0);
  EXPECT_FALSE(rw.write_locked());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(rw.acquire_read());
    EXPECT_EQ(rw.readers(), 1);
    rw.release_read();
    ASSERT_TRUE(rw.acquire_write());
    EXPECT_TRUE(rw.write_locked());
    EXPECT_EQ(rw.readers(), 0);
    rw.release_write();
    rw.lock_shared();
    rw.unlock_shared();
    rw.lock();
    rw.unlock();
    ASSERT_TRUE(rw.try_lock_shared());
    rw.unlock_shared();
    ASSERT_TRUE(rw.try_lock());
    rw.unlock();
  }
  EXPECT_EQ(rw.readers(), 0);
  EXPECT_FALSE(rw.write_locked());
}

TEST(RWLock, ManyReadsAtOnceExcludeWriters) {
  constexpr int kReads = 100;
  mp::RWLock rw;
  for (int i = 0; i < kReads; ++i) ASSERT_TRUE(rw.acquire_read(false));
  EXPECT_EQ(rw.readers(), kReads);
  EXPECT_FALSE(rw.acquire_write(false));
  EXPECT_FALSE(rw.try_lock());
  for (int i = 0; i < kReads - 1; ++i) rw.release_read();
  EXPECT_EQ(rw.readers(), 1);
  EXPECT_FALSE(rw.try_lock());
  rw.release_read();
  EXPECT_TRUE(rw.try_lock());
  rw.unlock();
}

TEST(RWLock, AcquireWithAnyArgumentsTakesFreeLock) {
  mp::RWLock rw;
  for (std::optional<double> t :
       {std::optional<double>(), std::optional<double>(0.0), std::optional<double>(-1.0),
        std::optional<double>(0.5), std::optional<double>(kInf), std::optional<double>(1e20)}) {
    EXPECT_TRUE(rw.acquire_read(true, t));
    EXPECT_TRUE(rw.acquire_read(false, t));  // readers share
    EXPECT_EQ(rw.readers(), 2);
    rw.release_read();
    rw.release_read();
    EXPECT_TRUE(rw.acquire_write(true, t));
    rw.release_write();
    EXPECT_TRUE(rw.acquire_write(false, t));
    rw.release_write();
  }
}

TEST(RWLock, NonBlockingAcquireOfUnavailableLockFailsAtOnce) {
  mp::RWLock rw;
  ASSERT_TRUE(rw.acquire_write());
  const auto start = Clock::now();
  EXPECT_FALSE(rw.acquire_read(false));
  EXPECT_FALSE(rw.acquire_read(false, 5.0));
  EXPECT_FALSE(rw.acquire_read(false, kInf));
  EXPECT_FALSE(rw.acquire_read(false, kNaN));  // ignored, not validated
  EXPECT_FALSE(rw.try_lock_shared());
  EXPECT_FALSE(rw.acquire_write(false));
  EXPECT_FALSE(rw.acquire_write(false, 5.0));
  EXPECT_FALSE(rw.acquire_write(false, kNaN));
  EXPECT_FALSE(rw.try_lock());
  rw.release_write();
  ASSERT_TRUE(rw.acquire_read());
  EXPECT_FALSE(rw.acquire_write(false));
  EXPECT_FALSE(rw.acquire_write(false, kInf));
  EXPECT_FALSE(rw.try_lock());
  EXPECT_LT(seconds_since(start), 1.0);
  rw.release_read();
  EXPECT_EQ(rw.readers(), 0);
  EXPECT_FALSE(rw.write_locked());
}

TEST(RWLock, TimedAcquireOfUnavailableLockExpiresNoEarlierThanTimeout) {
  mp::RWLock rw;
  for (double timeout : {0.001, 0.05, 0.2}) {
    SCOPED_TRACE(timeout);
    ASSERT_TRUE(rw.acquire_write());
    auto start = Clock::now();
    EXPECT_FALSE(rw.acquire_read(true, timeout));
    double elapsed = seconds_since(start);
    EXPECT_GE(elapsed, timeout - 0.001);
    EXPECT_LT(elapsed, kLivenessSeconds);
    start = Clock::now();
    EXPECT_FALSE(rw.acquire_write(true, timeout));
    elapsed = seconds_since(start);
    EXPECT_GE(elapsed, timeout - 0.001);
    EXPECT_LT(elapsed, kLivenessSeconds);
    rw.release_write();  // still held exactly once

    ASSERT_TRUE(rw.acquire_read());
    start = Clock::now();
    EXPECT_FALSE(rw.acquire_write(true, timeout));
    elapsed = seconds_since(start);
    EXPECT_GE(elapsed, timeout - 0.001);
    EXPECT_LT(elapsed, kLivenessSeconds);
    // The writer that gave up no longer holds readers back.
    EXPECT_TRUE(rw.acquire_read(false));
    EXPECT_EQ(rw.readers(), 2);
    rw.release_read();
    rw.release_read();
  }
  ExpectValueError([&] { rw.release_read(); }, kReleaseReadMessage);
  ExpectValueError([&] { rw.release_write(); }, kReleaseWriteMessage);
}

TEST(RWLock, ZeroAndNegativeTimeoutsMakeOneAttempt) {
  mp::RWLock rw;
  ASSERT_TRUE(rw.acquire_write());
  const auto start = Clock::now();
  for (double t : {0.0, -0.0, -1.0, -kInf}) {
    EXPECT_FALSE(rw.acquire_read(true, t));
    EXPECT_FALSE(rw.acquire_write(true, t));
  }
  EXPECT_FALSE(rw.try_lock_for(milliseconds(0)));
  EXPECT_FALSE(rw.try_lock_for(milliseconds(-5)));
  EXPECT_FALSE(rw.try_lock_shared_for(milliseconds(0)));
  EXPECT_FALSE(rw.try_lock_shared_for(milliseconds(-5)));
  EXPECT_LT(seconds_since(start), 1.0);
  rw.release_write();
  EXPECT_TRUE(rw.acquire_read(true, 0.0));
  EXPECT_TRUE(rw.acquire_read(true, -3.0));
  EXPECT_FALSE(rw.acquire_write(true, 0.0));
  rw.release_read();
  rw.release_read();
  EXPECT_TRUE(rw.acquire_write(true, -3.0));
  rw.release_write();
}

TEST(RWLock, NaNTimeoutThrowsValueErrorAndLeavesLockUntouched) {
  Inspectable rw;
  for (double nan : {kNaN, -kNaN}) {
    try {
      rw.lock.acquire_read(true, nan);
      ADD_FAILURE() << "expected mp::ValueError";
    } catch (const mp::ValueError& e) {
      EXPECT_STREQ(e.kind(), "ValueError");
    }
    EXPECT_THROW(rw.lock.acquire_write(true, nan), mp::ValueError);
    EXPECT_EQ(rw.word(), 0u);
  }
  // Also when the lock is unavailable.
  ASSERT_TRUE(rw.lock.acquire_read());
  EXPECT_THROW(rw.lock.acquire_write(true, kNaN), mp::ValueError);
  EXPECT_EQ(rw.word(), 1u);
  rw.lock.release_read();
  // With block=false the timeout is ignored, even NaN.
  EXPECT_TRUE(rw.lock.acquire_read(false, kNaN));
  rw.lock.release_read();
  EXPECT_TRUE(rw.lock.acquire_write(false, kNaN));
  rw.lock.release_write();
  EXPECT_EQ(rw.word(), 0u);
}

TEST(RWLock, ReleaseOfUnheldModeThrowsValueErrorAndChangesNothing) {
  Inspectable rw;
  mp::RWLock& lock = rw.lock;
  ExpectValueError([&] { lock.release_read(); }, kReleaseReadMessage);
  ExpectValueError([&] { lock.unlock_shared(); }, kReleaseReadMessage);
  ExpectValueError([&] { lock.release_write(); }, kReleaseWriteMessage);
  ExpectValueError([&] { lock.unlock(); }, kReleaseWriteMessage);
  EXPECT_EQ(rw.word(), 0u);

  ASSERT_TRUE(lock.acquire_write());
  ExpectValueError([&] { lock.release_read(); }, kReleaseReadMessage);
  EXPECT_TRUE(lock.write_locked());
  lock.release_write();
  ExpectValueError([&] { lock.release_write(); }, kReleaseWriteMessage);
  EXPECT_EQ(rw.word(), 0u);

  ASSERT_TRUE(lock.acquire_read());
  ASSERT_TRUE(lock.acquire_read());
  ExpectValueError([&] { lock.release_write(); }, kReleaseWriteMessage);
  EXPECT_EQ(lock.readers(), 2);
  lock.release_read();
  lock.release_read();
  ExpectValueError([&] { lock.release_read(); }, kReleaseReadMessage);
  EXPECT_EQ(rw.word(), 0u);
  try {
    lock.release_write();
  } catch (const mp::Error& e) {  // reachable through the base class
    EXPECT_STREQ(e.kind(), "ValueError");
  }
}

TEST(RWLock, WorksWithStandardLockGuards) {
  mp::RWLock rw;
  {
    std::shared_lock<mp::RWLock> r1(rw);
    std::shared_lock<mp::RWLock> r2(rw, std::try_to_lock);
    EXPECT_TRUE(r2.owns_lock());
    EXPECT_EQ(rw.readers(), 2);
    std::unique_lock<mp::RWLock> w(rw, std::try_to_lock);
    EXPECT_FALSE(w.owns_lock());
    EXPECT_FALSE(w.try_lock_for(milliseconds(1)));
    EXPECT_FALSE(w.try_lock_until(Clock::now() + milliseconds(1)));
  }
  EXPECT_EQ(rw.readers(), 0);
  {
    std::lock_guard<mp::RWLock> guard(rw);
    EXPECT_TRUE(rw.write_locked());
    std::shared_lock<mp::RWLock> r(rw, std::defer_lock);
    EXPECT_FALSE(r.try_lock());
    EXPECT_FALSE(r.try_lock_for(milliseconds(1)));
    EXPECT_FALSE(r.try_lock_until(Clock::now() + milliseconds(1)));
  }
  {
    std::scoped_lock guard(rw);
    EXPECT_TRUE(rw.write_locked());
  }
  // The scope is left by an exception: released, exception not suppressed.
  try {
    std::shared_lock<mp::RWLock> r(rw);
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(rw.readers(), 0);
  EXPECT_TRUE(rw.try_lock());
  rw.unlock();
}

TEST(RWLock, TryLockForAndUntilInBothModes) {
  mp::RWLock rw;
  EXPECT_TRUE(rw.try_lock_for(std::chrono::seconds(1)));
  auto start = Clock::now();
  EXPECT_FALSE(rw.try_lock_for(milliseconds(30)));
  EXPECT_GE(Clock::now() - start, milliseconds(30) - kClockResolution);
  start = Clock::now();
  EXPECT_FALSE(rw.try_lock_shared_for(milliseconds(30)));
  EXPECT_GE(Clock::now() - start, milliseconds(30) - kClockResolution);
  start = Clock::now();
  EXPECT_FALSE(rw.try_lock_until(start + milliseconds(30)));
  EXPECT_GE(Clock::now() - start, milliseconds(30) - kClockResolution);
  start = Clock::now();
  EXPECT_FALSE(rw.try_lock_shared_until(start + milliseconds(30)));
  EXPECT_GE(Clock::now() - start, milliseconds(30) - kClockResolution);
  start = Clock::now();
  EXPECT_FALSE(rw.try_lock_until(start - std::chrono::hours(1)));  // passed: one attempt
  EXPECT_FALSE(rw.try_lock_shared_until(Clock::time_point()));
  EXPECT_LT(seconds_since(start), 1.0);
  rw.unlock();
  EXPECT_TRUE(rw.try_lock_shared_until(Clock::time_point::max()));
  EXPECT_TRUE(rw.try_lock_shared_for(std::chrono::hours::max()));
  EXPECT_FALSE(rw.try_lock_until(Clock::now() + milliseconds(1)));
  rw.unlock_shared();
  rw.unlock_shared();
  EXPECT_TRUE(rw.try_lock_until(Clock::time_point::max()));
  rw.unlock();
  EXPECT_TRUE(rw.try_lock_for(std::chrono::hours::max()));
  rw.unlock();
  EXPECT_TRUE(rw.try_lock_until(
      std::chrono::time_point_cast<std::chrono::hours>(Clock::now() + std::chrono::hours(1))));
  rw.unlock();
}

TEST(RWLock, CopiesAreHandlesToTheSameLock) {
  mp::RWLock a;
  mp::RWLock b = a;
  mp::RWLock c;
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
  ASSERT_TRUE(b.acquire_write(false));
  EXPECT_FALSE(a.acquire_read(false));
  EXPECT_TRUE(c.acquire_write(false));  // independent
  a.release_write();
  c.release_write();
  c = b;  // assignment rebinds the handle
  ASSERT_TRUE(c.acquire_read(false));
  EXPECT_EQ(a.readers(), 1);
  mp::RWLock moved = std::move(b);
  EXPECT_TRUE(moved == a);
  EXPECT_EQ(b.readers(), 1);  // NOLINT(bugprone-use-after-move): moving is copying
  moved.release_read();
}

TEST(RWLock, MappingLivesWhileAnyHandleDoes) {
  std::optional<mp::RWLock> survivor;
  {
    mp::RWLock original;
    ASSERT_TRUE(original.acquire_write());
    survivor = original;
  }
  EXPECT_FALSE(survivor->acquire_read(false));
  survivor->release_write();
  EXPECT_TRUE(survivor->acquire_read(false));
  survivor->release_read();
}

TEST(RWLock, AttachUsesCallerProvidedStateWithDocumentedBits) {
  auto mapping = mp::platform::SharedMapping::anonymous(sizeof(RWLockState) * 2);
  auto* states = ::new (mapping.data()) RWLockState[2];
  mp::RWLock a = mp::RWLock::attach(states[0]);
  mp::RWLock a2 = mp::RWLock::attach(states[0]);
  mp::RWLock b = mp::RWLock::attach(states[1]);
  EXPECT_TRUE(a == a2);
  EXPECT_FALSE(a == b);
  ASSERT_TRUE(a.acquire_read());
  ASSERT_TRUE(a2.acquire_read());
  EXPECT_EQ(states[0].word.load(), 2u);
  EXPECT_EQ(states[1].word.load(), 0u);
  EXPECT_TRUE(b.acquire_write(false));
  EXPECT_EQ(states[1].word.load(), RWLockState::kWriteLocked);
  a.release_read();
  a.release_read();
  b.release_write();
  EXPECT_EQ(states[0].word.load(), 0u);
  EXPECT_EQ(states[1].word.load(), 0u);
  EXPECT_EQ(mp::RWLock::kMaxReaders, (1 << 29) - 1);
}

TEST(RWLock, ReadBeyondMaxReadersThrowsEagain) {
  Inspectable rw;
  // White box: pretend kMaxReaders readers hold the lock.
  rw.state->word.store(RWLockState::kReaderMask);
  EXPECT_EQ(rw.lock.readers(), mp::RWLock::kMaxReaders);
  auto expect_eagain = [&](auto&& call) {
    try {
      call();
      ADD_FAILURE() << "expected std::system_error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::resource_unavailable_try_again);
    }
    EXPECT_EQ(rw.word(), RWLockState::kReaderMask);  // unchanged
  };
  expect_eagain([&] { (void)rw.lock.try_lock_shared(); });
  expect_eagain([&] { rw.lock.acquire_read(); });
  expect_eagain([&] { rw.lock.acquire_read(false); });
  expect_eagain([&] { rw.lock.acquire_read(true, 1.0); });
  expect_eagain([&] { rw.lock.lock_shared(); });
  EXPECT_FALSE(rw.lock.try_lock());
  rw.lock.release_read();
  EXPECT_TRUE(rw.lock.acquire_read(false));  // room for one again
  EXPECT_EQ(rw.word(), RWLockState::kReaderMask);
  rw.state->word.store(0);
}

// Upgrade is not offered: a write requested while holding a read waits for
// every reader, including the caller.
TEST(RWLock, UpgradeFailsWhenNonBlockingOrTimedAndLeavesNoTrace) {
  Inspectable rw;
  ASSERT_TRUE(rw.lock.acquire_read());
  EXPECT_FALSE(rw.lock.acquire_write(false));
  const auto start = Clock::now();
  EXPECT_FALSE(rw.lock.acquire_write(true, 0.05));
  EXPECT_GE(seconds_since(start), 0.05 - 0.001);
  EXPECT_FALSE(rw.lock.try_lock_for(milliseconds(5)));
  EXPECT_FALSE(rw.writers_waiting());
  EXPECT_TRUE(rw.lock.acquire_read(false));
  rw.lock.release_read();
  rw.lock.release_read();
  EXPECT_TRUE(rw.lock.acquire_write(false));
  rw.lock.release_write();
  EXPECT_EQ(rw.word(), 0u);
}

// --- Threads ----------------------------------------------------------------

TEST(RWLockThreads, ReadersFromManyThreadsHoldTogether) {
  constexpr int kThreads = 6;
  mp::RWLock rw;
  std::atomic<int> inside{0};
  std::atomic<int> saw_all{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      if (!rw.acquire_read(true, kLivenessSeconds)) return;
      inside.fetch_add(1);
      // Every reader waits, holding its read, until all are inside.
      if (Eventually([&] { return inside.load() == kThreads; })) saw_all.fetch_add(1);
      rw.release_read();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(saw_all.load(), kThreads);
  EXPECT_EQ(rw.readers(), 0);
}

TEST(RWLockThreads, AnotherThreadMayRelease) {
  mp::RWLock rw;
  ASSERT_TRUE(rw.acquire_write());
  std::thread([&] { rw.release_write(); }).join();
  ASSERT_TRUE(rw.acquire_read());
  std::thread([&] { rw.release_read(); }).join();
  EXPECT_TRUE(rw.try_lock());
  rw.unlock();
}

TEST(RWLockThreads, BlockedReaderIsWokenByWriteRelease) {
  for (const bool timed : {false, true}) {
    SCOPED_TRACE(timed ? "timed" : "blocking");
    Inspectable rw;
    ASSERT_TRUE(rw.lock.acquire_write());
    std::atomic<bool> done{false};
    std::atomic<bool> result{false};
    std::thread reader([&] {
      result = timed ? rw.lock.acquire_read(true, kLivenessSeconds) : rw.lock.acquire_read();
      done = true;
    });
    EXPECT_TRUE(Eventually([&] { return rw.readers_waiting(); }));
    EXPECT_FALSE(Eventually([&] { return done.load(); }, kStaysBlocked));
    rw.lock.release_write();
    reader.join();
    EXPECT_TRUE(result);
    EXPECT_EQ(rw.lock.readers(), 1);
    rw.lock.release_read();
    EXPECT_EQ(rw.word(), 0u);
  }
}

TEST(RWLockThreads, WriteReleaseWakesEveryWaitingReader) {
  constexpr int kReaders = 4;
  Inspectable rw;
  ASSERT_TRUE(rw.lock.acquire_write());
  std::atomic<int> inside{0};
  std::atomic<int> saw_all{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&] {
      if (!rw.lock.acquire_read(true, kLivenessSeconds)) return;
      inside.fetch_add(1);
      if (Eventually([&] { return inside.load() == kReaders; })) saw_all.fetch_add(1);
      rw.lock.release_read();
    });
  }
  EXPECT_TRUE(Eventually([&] { return rw.readers_waiting(); }));
  EXPECT_FALSE(Eventually([&] { return inside.load() != 0; }, kStaysBlocked));
  rw.lock.release_write();
  for (auto& th : readers) th.join();
  EXPECT_EQ(saw_all.load(), kReaders);
  EXPECT_EQ(rw.word(), 0u);
}

TEST(RWLockThreads, BlockedWriterIsWokenByLastReadRelease) {
  for (const bool timed : {false, true}) {
    SCOPED_TRACE(timed ? "timed" : "blocking");
    Inspectable rw;
    ASSERT_TRUE(rw.lock.acquire_read());
    ASSERT_TRUE(rw.lock.acquire_read());
    std::atomic<bool> done{false};
    std::atomic<bool> result{false};
    std::thread writer([&] {
      result = timed ? rw.lock.acquire_write(true, kLivenessSeconds) : rw.lock.acquire_write();
      done = true;
    });
    EXPECT_TRUE(Eventually([&] { return rw.writers_waiting(); }));
    EXPECT_FALSE(Eventually([&] { return done.load(); }, kStaysBlocked));
    rw.lock.release_read();
    EXPECT_FALSE(Eventually([&] { return done.load(); }, kStaysBlocked)) << "one reader left";
    rw.lock.release_read();
    writer.join();
    EXPECT_TRUE(result);
    EXPECT_TRUE(rw.lock.write_locked());
    rw.lock.release_write();
    EXPECT_EQ(rw.word(), 0u);
  }
}

TEST(RWLockThreads, BlockedWriterIsWokenByWriteRelease) {
  mp::RWLock rw;
  ASSERT_TRUE(rw.acquire_write());
  std::atomic<bool> done{false};
  std::thread writer([&] {
    if (rw.acquire_write(true, kLivenessSeconds)) done = true;
  });
  EXPECT_FALSE(Eventually([&] { return done.load(); }, kStaysBlocked));
  rw.release_write();
  writer.join();
  EXPECT_TRUE(done);
  EXPECT_TRUE(rw.write_locked());
  rw.release_write();
}

// Writer preference: once a writer waits, new readers wait behind it, and
// when it releases they all get in.
TEST(RWLockThreads, WaitingWriterHoldsBackNewReaders) {
  Inspectable rw;
  ASSERT_TRUE(rw.lock.acquire_read());
  std::atomic<bool> writer_in{false};
  std::atomic<bool> writer_out{false};
  std::atomic<bool> reader_in{false};
  std::atomic<bool> overlap{false};
  std::thread writer([&] {
    if (!rw.lock.acquire_write(true, kLivenessSeconds)) return;
    writer_in = true;
    // Hold the write until the test has seen the blocked reader stay out.
    Eventually([&] { return writer_out.load(); });
    if (reader_in) overlap = true;
    rw.lock.release_write();
  });
  ASSERT_TRUE(Eventually([&] { return rw.writers_waiting(); }));
  // A new reader does not get in although only readers hold the lock.
  EXPECT_FALSE(rw.lock.try_lock_shared());
  EXPECT_FALSE(rw.lock.acquire_read(false));
  auto start = Clock::now();
  EXPECT_FALSE(rw.lock.acquire_read(true, 0.05));
  EXPECT_GE(seconds_since(start), 0.05 - 0.001);
  std::thread reader([&] {
    if (rw.lock.acquire_read(true, kLivenessSeconds)) {
      reader_in = true;
      rw.lock.release_read();
    }
  });
  EXPECT_TRUE(Eventually([&] { return rw.readers_waiting(); }));
  EXPECT_FALSE(Eventually([&] { return reader_in.load(); }, kStaysBlocked));
  EXPECT_FALSE(writer_in);
  rw.lock.release_read();  // the last reader leaves: the writer goes first
  EXPECT_TRUE(Eventually([&] { return writer_in.load(); }));
  EXPECT_FALSE(Eventually([&] { return reader_in.load(); }, kStaysBlocked));
  writer_out = true;
  writer.join();
  reader.join();
  EXPECT_TRUE(reader_in);
  EXPECT_FALSE(overlap);
  EXPECT_EQ(rw.lock.readers(), 0);
  EXPECT_FALSE(rw.lock.write_locked());
}

// Readers in other threads that keep the lock read-held without a gap do not
// starve a writer: every write attempt succeeds within the liveness bound.
TEST(RWLockThreads, ContinuousReaderStreamDoesNotStarveWriter) {
  constexpr int kReaders = 4;
  constexpr int kWrites = 20;
  mp::RWLock rw;
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> reads{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        if (!rw.acquire_read(true, kLivenessSeconds)) {
          failures.fetch_add(1);
          return;
        }
        reads.fetch_add(1);
        BusyFor(std::chrono::microseconds(200));  // reads overlap: the count rarely drops to 0
        rw.release_read();
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return reads.load() > 100; }));
  int writes = 0;
  for (int i = 0; i < kWrites; ++i) {
    const auto start = Clock::now();
    if (!rw.acquire_write(true, kLivenessSeconds)) break;
    EXPECT_LT(seconds_since(start), kLivenessSeconds);
    EXPECT_EQ(rw.readers(), 0);
    ++writes;
    rw.release_write();
    // Let the stream flow again before the next attempt.
    const std::int64_t seen = reads.load();
    Eventually([&] { return reads.load() > seen + kReaders; });
  }
  stop = true;
  for (auto& th : readers) th.join();
  EXPECT_EQ(writes, kWrites);
  EXPECT_EQ(failures.load(), 0);
}

// A writer that gives up at its deadline lets in the readers it held back,
// even though a reader still holds the lock.
TEST(RWLockThreads, WriterThatTimesOutLetsHeldBackReadersIn) {
  Inspectable rw;
  ASSERT_TRUE(rw.lock.acquire_read());
  std::atomic<bool> writer_done{false};
  std::atomic<bool> writer_result{true};
  double writer_elapsed = 0;
  std::thread writer([&] {
    const auto start = Clock::now();
    writer_result = rw.lock.acquire_write(true, 0.3);
    writer_elapsed = seconds_since(start);
    writer_done = true;
  });
  ASSERT_TRUE(Eventually([&] { return rw.writers_waiting(); }));
  std::atomic<bool> reader_in{false};
  std::thread reader([&] {
    if (rw.lock.acquire_read()) reader_in = true;  // blocking, no timeout
  });
  EXPECT_TRUE(Eventually([&] { return rw.readers_waiting() || writer_done.load(); }));
  EXPECT_TRUE(Eventually([&] { return writer_done.load(); }));
  writer.join();
  EXPECT_FALSE(writer_result);
  EXPECT_GE(writer_elapsed, 0.3 - 0.001);
  // The reader gets in while the first read is still held.
  EXPECT_TRUE(Eventually([&] { return reader_in.load(); }));
  reader.join();
  EXPECT_EQ(rw.lock.readers(), 2);
  EXPECT_FALSE(rw.writers_waiting());
  EXPECT_TRUE(rw.lock.acquire_read(false));
  rw.lock.release_read();
  rw.lock.release_read();
  rw.lock.release_read();
  EXPECT_TRUE(rw.lock.try_lock());
  rw.lock.unlock();
}

// A writer that gives up while another writer still waits keeps the readers
// out: the remaining writer goes first.
TEST(RWLockThreads, WriterThatTimesOutKeepsReadersOutWhileAnotherWriterWaits) {
  Inspectable rw;
  ASSERT_TRUE(rw.lock.acquire_read());
  std::atomic<bool> w1_in{false};
  std::atomic<bool> w1_out{false};
  std::thread w1([&] {
    if (!rw.lock.acquire_write(true, kLivenessSeconds)) return;
    w1_in = true;
    Eventually([&] { return w1_out.load(); });
    rw.lock.release_write();
  });
  ASSERT_TRUE(Eventually([&] { return rw.writers_waiting(); }));
  EXPECT_FALSE(Eventually([&] { return w1_in.load(); }, kStaysBlocked));
  const auto start = Clock::now();
  EXPECT_FALSE(rw.lock.acquire_write(true, 0.1));  // this thread is writer 2
  EXPECT_GE(seconds_since(start), 0.1 - 0.001);
  EXPECT_TRUE(rw.writers_waiting());
  std::atomic<bool> reader_in{false};
  std::thread reader([&] {
    if (rw.lock.acquire_read(true, kLivenessSeconds)) {
      reader_in = true;
      rw.lock.release_read();
    }
  });
  EXPECT_FALSE(Eventually([&] { return reader_in.load(); }, kStaysBlocked));
  rw.lock.release_read();
  EXPECT_TRUE(Eventually([&] { return w1_in.load(); }));
  EXPECT_FALSE(reader_in);
  w1_out = true;
  w1.join();
  reader.join();
  EXPECT_TRUE(reader_in);
  EXPECT_EQ(rw.lock.readers(), 0);
  EXPECT_FALSE(rw.lock.write_locked());
}

// Many writers that all give up (a reader holds the lock throughout) while
// readers come and go: afterwards nothing holds readers back.
TEST(RWLockThreads, WritersThatAllTimeOutLeaveNoTrace) {
  constexpr int kWriters = 3;
  constexpr int kRounds = 40;
  constexpr int kReaders = 2;
  Inspectable rw;
  ASSERT_TRUE(rw.lock.acquire_read());
  std::atomic<int> writes{0};
  std::atomic<int> read_failures{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < kRounds; ++i) {
        const double timeout = static_cast<double>(rng() % 3000) * 1e-6;  // 0..3 ms
        if (rw.lock.acquire_write(true, timeout)) {
          writes.fetch_add(1);
          rw.lock.release_write();
        }
      }
    });
  }
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        if (!rw.lock.acquire_read(true, kLivenessSeconds)) {
          read_failures.fetch_add(1);
          return;
        }
        rw.lock.release_read();
      }
    });
  }
  for (auto& th : threads) th.join();
  stop = true;
  for (auto& th : readers) th.join();
  EXPECT_EQ(writes.load(), 0);
  EXPECT_EQ(read_failures.load(), 0);
  EXPECT_FALSE(rw.writers_waiting());
  EXPECT_TRUE(rw.lock.acquire_read(false));
  rw.lock.release_read();
  // A blocking reader in another thread gets in at once too.
  bool got = false;
  std::thread([&] {
    got = rw.lock.acquire_read(true, kLivenessSeconds);
    if (got) rw.lock.release_read();
  }).join();
  EXPECT_TRUE(got);
  rw.lock.release_read();
  EXPECT_EQ(rw.lock.readers(), 0);
}

// Invariant under a random mix of every entry point: a writer is never inside
// together with anyone.
TEST(RWLockThreads, RandomizedStressKeepsWritersExclusive) {
  constexpr int kThreads = 6;
  constexpr int kOps = 5000;
  mp::RWLock rw;
  std::atomic<bool> go{false};
  std::atomic<int> readers_inside{0};
  std::atomic<int> writers_inside{0};
  std::atomic<int> violations{0};
  std::atomic<std::int64_t> reads{0};
  std::atomic<std::int64_t> writes{0};
  std::atomic<std::int64_t> refused{0};  // non-blocking or timed attempts that failed
  std::int64_t data = 0;                 // written under the write lock; TSan checks the guarding
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(1234 + t));
      StartLine(go);
      for (int i = 0; i < kOps; ++i) {
        const bool write = rng() % 4 == 0;
        const unsigned mode = rng() % 4;
        const double timeout = static_cast<double>(rng() % 2000) * 1e-6;  // 0..2 ms
        if (write) {
          bool got = false;
          std::unique_lock<mp::RWLock> guard(rw, std::defer_lock);
          switch (mode) {
            case 0:
              got = rw.acquire_write();
              break;
            case 1:
              got = rw.acquire_write(true, timeout);
              break;
            case 2:
              got = rw.acquire_write(false);
              break;
            default:
              guard.lock();
              got = true;
          }
          if (!got) {
            refused.fetch_add(1);
            continue;
          }
          if (writers_inside.fetch_add(1) != 0 || readers_inside.load() != 0) {
            violations.fetch_add(1);
          }
          ++data;
          RandomHold(rng);
          writers_inside.fetch_sub(1);
          writes.fetch_add(1);
          if (!guard.owns_lock()) rw.release_write();
        } else {
          bool got = false;
          std::shared_lock<mp::RWLock> guard(rw, std::defer_lock);
          switch (mode) {
            case 0:
              got = rw.acquire_read();
              break;
            case 1:
              got = rw.acquire_read(true, timeout);
              break;
            case 2:
              got = rw.acquire_read(false);
              break;
            default:
              guard.lock();
              got = true;
          }
          if (!got) {
            refused.fetch_add(1);
            continue;
          }
          readers_inside.fetch_add(1);
          if (writers_inside.load() != 0) violations.fetch_add(1);
          const volatile std::int64_t seen = data;  // a read under the read lock
          (void)seen;
          RandomHold(rng);
          readers_inside.fetch_sub(1);
          reads.fetch_add(1);
          if (!guard.owns_lock()) rw.release_read();
        }
      }
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(data, writes.load());
  EXPECT_GT(reads.load(), 0);
  EXPECT_GT(writes.load(), 0);
  RecordProperty("reads", std::to_string(reads.load()));
  RecordProperty("writes", std::to_string(writes.load()));
  RecordProperty("refused", std::to_string(refused.load()));
  EXPECT_EQ(rw.readers(), 0);
  EXPECT_FALSE(rw.write_locked());
  EXPECT_TRUE(rw.try_lock());
  rw.unlock();
}

// --- Processes (fork) -------------------------------------------------------

TEST(RWLockProcesses, ReadersInTwoProcessesHoldTogether) {
  mp::RWLock rw;
  ASSERT_TRUE(rw.acquire_read());
  Pipe to_parent;
  Pipe to_child;
  Child child([&] {
    if (rw.readers() != 1) return 2;  // inherited
    if (!rw.acquire_read(false)) return 3;
    if (!to_parent.send('r')) return 4;
    if (to_child.receive() != 'x') return 5;
    rw.release_read();
    return 0;
  });
  ASSERT_EQ(to_parent.receive(), 'r');
  EXPECT_EQ(rw.readers(), 2);
  EXPECT_FALSE(rw.try_lock());
  to_child.send('x');
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(rw.readers(), 1);
  rw.release_read();
  EXPECT_TRUE(rw.try_lock());
  rw.unlock();
}

TEST(RWLockProcesses, ChildBlocksUntilParentReleases) {
  for (const bool parent_writes : {false, true}) {
    for (const bool timed : {false, true}) {
      SCOPED_TRACE(std::string(parent_writes ? "parent writes" : "parent reads") +
                   (timed ? ", timed" : ", blocking"));
      mp::RWLock rw;
      ASSERT_TRUE(parent_writes ? rw.acquire_write() : rw.acquire_read());
      Pipe to_parent;
      Child child([&] {
        // A child writer waits for a parent reader; a child reader for a writer.
        if (parent_writes) {
          if (rw.acquire_read(false)) return 2;
          if (!to_parent.send('r')) return 3;
          if (!(timed ? rw.acquire_read(true, kLivenessSeconds) : rw.acquire_read())) return 4;
        } else {
          if (rw.acquire_write(false)) return 2;
          if (!to_parent.send('r')) return 3;
          if (!(timed ? rw.acquire_write(true, kLivenessSeconds) : rw.acquire_write())) return 4;
        }
        return to_parent.send('g') ? 0 : 5;  // exits holding the lock
      });
      ASSERT_EQ(to_parent.receive(), 'r');
      EXPECT_TRUE(child.still_running_after(kStaysBlocked)) << "child not blocked";
      if (parent_writes) {
        rw.release_write();
      } else {
        rw.release_read();
      }
      EXPECT_EQ(to_parent.receive(), 'g');
      EXPECT_EQ(child.exit_code(), 0);
      // The dead child holds the lock; a survivor releases on its behalf.
      if (parent_writes) {
        EXPECT_EQ(rw.readers(), 1);
        rw.release_read();
      } else {
        EXPECT_TRUE(rw.write_locked());
        rw.release_write();
      }
      EXPECT_TRUE(rw.try_lock());
      rw.unlock();
    }
  }
}

TEST(RWLockProcesses, ChildReleasesLocksHeldByParent) {
  mp::RWLock rw;
  ASSERT_TRUE(rw.acquire_read());
  Child reader_releaser([&] {
    rw.release_read();
    try {
      rw.release_read();
      return 2;
    } catch (const mp::ValueError&) {
      return 0;
    }
  });
  ASSERT_EQ(reader_releaser.exit_code(), 0);
  EXPECT_EQ(rw.readers(), 0);
  ASSERT_TRUE(rw.acquire_write());
  Child writer_releaser([&] {
    rw.release_write();
    try {
      rw.release_write();
      return 2;
    } catch (const mp::ValueError&) {
      return 0;
    }
  });
  ASSERT_EQ(writer_releaser.exit_code(), 0);
  EXPECT_TRUE(rw.try_lock());
  rw.unlock();
}

TEST(RWLockProcesses, KilledHolderKeepsLockHeldUntilSurvivorReleases) {
  for (const bool holds_write : {false, true}) {
    SCOPED_TRACE(holds_write ? "write holder" : "read holder");
    mp::RWLock rw;
    Pipe to_parent;
    Child child([&] {
      if (!(holds_write ? rw.acquire_write(false) : rw.acquire_read(false))) return 2;
      to_parent.send('h');
      for (;;) pause();  // until killed (or the watchdog fires)
    });
    ASSERT_EQ(to_parent.receive(), 'h');
    ASSERT_TRUE(child.kill_and_reap());
    const auto start = Clock::now();
    EXPECT_FALSE(rw.acquire_write(true, 0.1));
    EXPECT_GE(seconds_since(start), 0.1 - 0.001);
    if (holds_write) {
      EXPECT_FALSE(rw.acquire_read(true, 0.05));
      rw.release_write();  // on the dead holder's behalf
    } else {
      EXPECT_TRUE(rw.acquire_read(false));  // readers still share with it
      rw.release_read();
      rw.release_read();  // on the dead holder's behalf
    }
    EXPECT_TRUE(rw.try_lock());
    rw.unlock();
    EXPECT_EQ(rw.readers(), 0);
    EXPECT_FALSE(rw.write_locked());
  }
}

// A writer killed while waiting does not wedge a surviving waiting writer, nor
// the readers held back behind both.
TEST(RWLockProcesses, KilledWaitingWriterDoesNotWedgeOthers) {
  Inspectable rw;
  ASSERT_TRUE(rw.lock.acquire_read());
  Pipe doomed_pipe;
  Child doomed([&] {
    doomed_pipe.send('r');
    rw.lock.acquire_write();
    return 3;  // must not get here: killed while blocked
  });
  ASSERT_EQ(doomed_pipe.receive(), 'r');
  ASSERT_TRUE(Eventually([&] { return rw.writers_waiting(); }));
  EXPECT_TRUE(doomed.still_running_after(kStaysBlocked));
  Pipe writer_pipe;
  Child writer([&] {
    writer_pipe.send('r');
    if (!rw.lock.acquire_write(true, kLivenessSeconds)) return 2;
    writer_pipe.send('w');
    rw.lock.release_write();
    return 0;
  });
  ASSERT_EQ(writer_pipe.receive(), 'r');
  EXPECT_TRUE(writer.still_running_after(kStaysBlocked));
  ASSERT_TRUE(doomed.kill_and_reap());
  Pipe reader_pipe;
  Child reader([&] {
    reader_pipe.send('r');
    if (!rw.lock.acquire_read(true, kLivenessSeconds)) return 2;
    reader_pipe.send('g');
    rw.lock.release_read();
    return 0;
  });
  ASSERT_EQ(reader_pipe.receive(), 'r');
  EXPECT_TRUE(reader.still_running_after(kStaysBlocked));  // the live writer waits
  rw.lock.release_read();                                  // the last reader leaves
  EXPECT_EQ(writer_pipe.receive(), 'w');
  EXPECT_EQ(writer.exit_code(), 0);
  EXPECT_EQ(reader_pipe.receive(), 'g');
  EXPECT_EQ(reader.exit_code(), 0);
  EXPECT_TRUE(Eventually([&] { return !rw.writers_waiting(); }));
  EXPECT_TRUE(rw.lock.try_lock_shared());
  rw.lock.unlock_shared();
  EXPECT_TRUE(rw.lock.try_lock());
  rw.lock.unlock();
}

// The only waiting writer is killed: the readers it held back get in at the
// next release (documented: until then they wait as for a live writer).
TEST(RWLockProcesses, KilledOnlyWaitingWriterIsForgottenAtNextRelease) {
  Inspectable rw;
  ASSERT_TRUE(rw.lock.acquire_read());
  ASSERT_TRUE(rw.lock.acquire_read());
  Pipe doomed_pipe;
  Child doomed([&] {
    doomed_pipe.send('r');
    rw.lock.acquire_write();
    return 3;
  });
  ASSERT_EQ(doomed_pipe.receive(), 'r');
  ASSERT_TRUE(Eventually([&] { return rw.writers_waiting(); }));
  ASSERT_TRUE(doomed.kill_and_reap());
  Pipe reader_pipe;
  Child reader([&] {
    reader_pipe.send('r');
    if (!rw.lock.acquire_read(true, kLivenessSeconds)) return 2;
    reader_pipe.send('g');
    return 0;  // exits holding its read
  });
  ASSERT_EQ(reader_pipe.receive(), 'r');
  rw.lock.release_read();
  rw.lock.release_read();  // the last reader leaves: finds no writer asleep
  EXPECT_EQ(reader_pipe.receive(), 'g');
  EXPECT_EQ(reader.exit_code(), 0);
  EXPECT_EQ(rw.lock.readers(), 1);
  EXPECT_FALSE(rw.writers_waiting());
  rw.lock.release_read();
  EXPECT_EQ(rw.word(), 0u);
}

TEST(RWLockProcesses, KilledWaitingReaderDoesNotWedgeOthers) {
  Inspectable rw;
  ASSERT_TRUE(rw.lock.acquire_write());
  Pipe doomed_pipe;
  Child doomed([&] {
    doomed_pipe.send('r');
    rw.lock.acquire_read();
    return 3;
  });
  ASSERT_EQ(doomed_pipe.receive(), 'r');
  ASSERT_TRUE(Eventually([&] { return rw.readers_waiting(); }));
  EXPECT_TRUE(doomed.still_running_after(kStaysBlocked));
  ASSERT_TRUE(doomed.kill_and_reap());
  Pipe reader_pipe;
  Child reader([&] {
    reader_pipe.send('r');
    if (!rw.lock.acquire_read(true, kLivenessSeconds)) return 2;
    reader_pipe.send('g');
    rw.lock.release_read();
    return 0;
  });
  ASSERT_EQ(reader_pipe.receive(), 'r');
  EXPECT_TRUE(reader.still_running_after(kStaysBlocked));
  rw.lock.release_write();
  EXPECT_EQ(reader_pipe.receive(), 'g');
  EXPECT_EQ(reader.exit_code(), 0);
  EXPECT_TRUE(rw.lock.try_lock());
  rw.lock.unlock();
  EXPECT_EQ(rw.word(), 0u);
}

TEST(RWLockProcesses, ReaderStreamInOtherProcessesDoesNotStarveWriter) {
  constexpr int kChildren = 2;
  constexpr int kWrites = 20;
  struct Shared {
    std::atomic<bool> stop;
    std::atomic<std::int64_t> reads;
  };
  auto mapping = mp::platform::SharedMapping::anonymous(sizeof(Shared));
  auto* shared = ::new (mapping.data()) Shared{{false}, {0}};
  mp::RWLock rw;
  std::vector<std::unique_ptr<Child>> children;
  for (int c = 0; c < kChildren; ++c) {
    children.push_back(std::make_unique<Child>([&] {
      // Two overlapping readers per process.
      int failures = 0;
      auto stream = [&] {
        while (!shared->stop.load()) {
          if (!rw.acquire_read(true, kLivenessSeconds)) {
            ++failures;
            return;
          }
          shared->reads.fetch_add(1);
          BusyFor(std::chrono::microseconds(200));
          rw.release_read();
        }
      };
      std::thread other(stream);
      stream();
      other.join();
      return failures == 0 ? 0 : 2;
    }));
  }
  ASSERT_TRUE(Eventually([&] { return shared->reads.load() > 100; }));
  int writes = 0;
  for (int i = 0; i < kWrites; ++i) {
    if (!rw.acquire_write(true, kLivenessSeconds)) break;
    EXPECT_EQ(rw.readers(), 0);
    ++writes;
    rw.release_write();
    const std::int64_t seen = shared->reads.load();
    Eventually([&] { return shared->reads.load() > seen + 2 * kChildren; });
  }
  shared->stop = true;
  for (auto& child : children) EXPECT_EQ(child->exit_code(), 0);
  EXPECT_EQ(writes, kWrites);
}

// The invariant across processes: two processes of three threads each.
TEST(RWLockProcesses, RandomizedStressAcrossProcesses) {
  constexpr int kThreadsPerProcess = 3;
  constexpr int kOps = 3000;
  struct Shared {
    std::atomic<bool> go;
    std::atomic<int> readers_inside;
    std::atomic<int> writers_inside;
    std::atomic<int> violations;
    std::atomic<std::int64_t> writes;
    std::int64_t data;  // guarded by the write lock
  };
  auto mapping = mp::platform::SharedMapping::anonymous(sizeof(Shared));
  auto* shared = ::new (mapping.data()) Shared{{false}, {0}, {0}, {0}, {0}, 0};
  mp::RWLock rw;
  auto work = [&](unsigned seed) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreadsPerProcess; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(seed + static_cast<unsigned>(t));
        StartLine(shared->go);
        for (int i = 0; i < kOps; ++i) {
          const bool write = rng() % 4 == 0;
          const bool timed = rng() % 2 == 0;
          if (write) {
            if (!rw.acquire_write(true, timed ? std::optional<double>(0.001) : std::nullopt)) {
              continue;
            }
            if (shared->writers_inside.fetch_add(1) != 0 || shared->readers_inside.load() != 0) {
              shared->violations.fetch_add(1);
            }
            shared->data = shared->data + 1;
            RandomHold(rng);
            shared->writers_inside.fetch_sub(1);
            shared->writes.fetch_add(1);
            rw.release_write();
          } else {
            if (!rw.acquire_read(true, timed ? std::optional<double>(0.001) : std::nullopt)) {
              continue;
            }
            shared->readers_inside.fetch_add(1);
            if (shared->writers_inside.load() != 0) shared->violations.fetch_add(1);
            RandomHold(rng);
            shared->readers_inside.fetch_sub(1);
            rw.release_read();
          }
        }
      });
    }
    for (auto& th : threads) th.join();
  };
  Child child(
      [&] {
        work(100);
        return 0;
      },
      /*watchdog_seconds=*/50);
  shared->go = true;
  work(200);
  ASSERT_EQ(child.exit_code(milliseconds(45'000)), 0);
  EXPECT_EQ(shared->violations.load(), 0);
  EXPECT_EQ(shared->data, shared->writes.load());
  EXPECT_GT(shared->writes.load(), 0);
  EXPECT_EQ(rw.readers(), 0);
  EXPECT_FALSE(rw.write_locked());
}

}  // namespace
