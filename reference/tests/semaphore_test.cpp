// Unit tests of mp::Semaphore and mp::BoundedSemaphore. Comments name the
// clauses of spec/sync/semaphore.md and bounded_semaphore.md a test exercises.
#include "mp/semaphore.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "test_util.hpp"

namespace {

using mp_test::Child;
using mp_test::Clock;
using mp_test::kStaysBlocked;
using mp_test::Pipe;
using mp_test::seconds_since;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// [semaphore.construct.default] [semaphore.construct.value]
// [semaphore.acquire.positive] [semaphore.acquire.decrements] [semaphore.get_value.exact]
TEST(Semaphore, CountsUnits) {
  mp::Semaphore def;
  EXPECT_EQ(def.get_value(), 1);
  mp::Semaphore s(3);
  EXPECT_EQ(s.get_value(), 3);
  EXPECT_TRUE(s.acquire());
  EXPECT_TRUE(s.acquire(false));
  EXPECT_TRUE(s.acquire(true, 0.0));
  EXPECT_EQ(s.get_value(), 0);
  EXPECT_FALSE(s.acquire(false));
  EXPECT_FALSE(s.acquire(true, -1.0));
  EXPECT_FALSE(s.try_lock());
  s.release();
  EXPECT_EQ(s.get_value(), 1);
}

// [semaphore.construct.negative] [semaphore.construct.negative.kind]
TEST(Semaphore, ValueIsValidated) {
  EXPECT_THROW(mp::Semaphore(-1), mp::ValueError);
  EXPECT_THROW(mp::BoundedSemaphore(-1), mp::ValueError);
  EXPECT_THROW(mp::Semaphore(mp::Semaphore::kMaxValue + 1), mp::ValueError);
  mp::Semaphore zero(0);
  EXPECT_EQ(zero.get_value(), 0);
  mp::Semaphore max(mp::Semaphore::kMaxValue);
  EXPECT_THROW(max.release(), mp::ValueError);
  EXPECT_EQ(max.get_value(), mp::Semaphore::kMaxValue);
}

// [semaphore.release.above_initial]
TEST(Semaphore, ReleaseAboveInitialValue) {
  mp::Semaphore s(1);
  s.release();
  s.release();
  EXPECT_EQ(s.get_value(), 3);
}

// [semaphore.acquire.timeout.expires]
TEST(Semaphore, TimedAcquireExpires) {
  mp::Semaphore s(0);
  EXPECT_THROW(s.acquire(true, kNaN), mp::ValueError);
  for (double timeout : {0.001, 0.05}) {
    const auto start = Clock::now();
    EXPECT_FALSE(s.acquire(true, timeout));
    EXPECT_GE(seconds_since(start), timeout - 0.001);
  }
  EXPECT_FALSE(s.try_lock_for(std::chrono::milliseconds(5)));
  EXPECT_EQ(s.get_value(), 0);
}

// [bounded_semaphore.release.above_bound] [bounded_semaphore.release.below_bound]
TEST(BoundedSemaphore, RefusesReleaseAboveBound) {
  mp::BoundedSemaphore b(2);
  EXPECT_THROW(b.release(), mp::ValueError);
  EXPECT_EQ(b.get_value(), 2);
  ASSERT_TRUE(b.acquire());
  b.release();
  EXPECT_THROW(b.release(), mp::ValueError);
  mp::BoundedSemaphore zero(0);
  EXPECT_THROW(zero.release(), mp::ValueError);
}

// [bounded_semaphore.release.atomic] concurrent releases never pass the bound
TEST(BoundedSemaphore, ConcurrentReleasesRespectBound) {
  for (int round = 0; round < 200; ++round) {
    mp::BoundedSemaphore b(4);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(b.acquire(false));
    b.release();  // three missing
    std::atomic<int> ok{0}, refused{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) {
      threads.emplace_back([&] {
        try {
          b.release();
          ++ok;
        } catch (const mp::ValueError&) {
          ++refused;
        }
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_EQ(ok.load(), 3);
    ASSERT_EQ(refused.load(), 3);
    ASSERT_EQ(b.get_value(), 4);
  }
}

// [semaphore.acquire.counting] [semaphore.acquire.wakes]: a bounded number of
// concurrent holders, and every waiter eventually gets through.
TEST(Semaphore, AtMostValueHolders) {
  mp::Semaphore s(2);
  std::atomic<int> inside{0}, most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        std::lock_guard<mp::Semaphore> g(s);
        const int now = ++inside;
        int m = most.load();
        while (now > m && !most.compare_exchange_weak(m, now)) {
        }
        --inside;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), 2);
  EXPECT_EQ(s.get_value(), 2);
}

// [semaphore.acquire.wakes] each release lets exactly one waiter through.
TEST(Semaphore, EachReleaseWakesOne) {
  mp::Semaphore s(0);
  std::atomic<int> through{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      s.acquire();
      ++through;
    });
  }
  std::this_thread::sleep_for(kStaysBlocked);  // grace period, not synchronisation
  EXPECT_EQ(through.load(), 0);
  for (int n = 1; n <= 3; ++n) {
    s.release();
    const auto start = Clock::now();
    while (through.load() < n && seconds_since(start) < 10) std::this_thread::yield();
    EXPECT_EQ(through.load(), n);
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(s.get_value(), 0);
}

// [semaphore.release.any] [semaphore.process.inherit] across processes
TEST(SemaphoreProcesses, ChildReleaseWakesParent) {
  mp::Semaphore s(0);
  Pipe go;
  Child child([&] {
    if (!go.receive()) return 1;
    s.release();
    return 0;
  });
  go.send('g');
  EXPECT_TRUE(s.acquire(true, 10.0));
  EXPECT_EQ(child.exit_code(), 0);
}

// [semaphore.kill.waiter] a killed waiter does not swallow a release.
TEST(SemaphoreProcesses, KilledWaiterDoesNotSwallowRelease) {
  mp::Semaphore s(0);
  Pipe ready;
  Child doomed([&] {
    ready.send('r');
    s.acquire();
    return 0;
  });
  ASSERT_TRUE(ready.receive());
  EXPECT_TRUE(doomed.still_running_after(kStaysBlocked));
  ASSERT_TRUE(doomed.kill_and_reap());
  std::thread releaser([&] { s.release(); });
  EXPECT_TRUE(s.acquire(true, 10.0));
  releaser.join();
  EXPECT_EQ(s.get_value(), 0);
}

}  // namespace
