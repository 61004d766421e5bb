// Unit tests of mp::Condition over mp::Lock and mp::RLock. Every wait is bounded, every child
// reaped (test_util.hpp); ordering comes from pipe handshakes and from the lock itself (a
// notifier that got the lock after a waiter called wait knows the waiter is waiting).
#include "mp/condition.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <new>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/platform/shm.hpp"
#include "test_util.hpp"

namespace {

using mp_test::Child;
using mp_test::Clock;
using mp_test::kStaysBlocked;
using mp_test::Pipe;
using mp_test::seconds_since;

TEST(Condition, WaitAndNotifyWithoutLockThrowAssertionError) {
  mp::Condition over_rlock;
  EXPECT_THROW(over_rlock.wait(0.0), mp::AssertionError);
  EXPECT_THROW(over_rlock.notify(), mp::AssertionError);
  EXPECT_THROW(over_rlock.notify_all(), mp::AssertionError);
  mp::Condition over_lock{mp::Lock()};
  EXPECT_THROW(over_lock.wait(), mp::AssertionError);
  EXPECT_THROW(over_lock.notify(2), mp::AssertionError);
  // The failed checks left the locks free.
  EXPECT_TRUE(over_lock.acquire(false));
  over_lock.release();
  EXPECT_TRUE(over_rlock.acquire(false));
  over_rlock.release();
}

TEST(Condition, DefaultLockIsAnRLock) {
  mp::Condition c;
  ASSERT_TRUE(std::holds_alternative<mp::RLock>(c.underlying_lock()));
  c.acquire();
  EXPECT_TRUE(c.acquire(false));
  c.release();
  c.release();
}

TEST(Condition, TimedWaitReturnsFalseWithLockHeld) {
  mp::Lock lock;
  mp::Condition c(lock);
  c.acquire();
  const auto start = Clock::now();
  EXPECT_FALSE(c.wait(0.05));
  EXPECT_GE(seconds_since(start), 0.05 - 0.001);
  EXPECT_FALSE(lock.try_lock()) << "wait must return holding the lock";
  EXPECT_FALSE(c.wait(0.0));
  EXPECT_FALSE(c.wait(-1.0));
  c.release();
}

TEST(Condition, NotifyWithoutWaitersIsNotRemembered) {
  mp::Condition c;
  c.acquire();
  c.notify();
  c.notify_all();
  EXPECT_FALSE(c.wait(0.02));
  c.release();
}

TEST(Condition, NotifyWakesAWaitingProcess) {
  for (bool use_rlock : {false, true}) {
    mp::Condition c = use_rlock ? mp::Condition(mp::RLock()) : mp::Condition(mp::Lock());
    Pipe called;
    Child waiter([&] {
      c.acquire();
      called.send('w');
      const bool woken = c.wait(20.0);
      c.release();
      return woken ? 0 : 1;
    });
    ASSERT_TRUE(called.receive());
    c.acquire();  // the waiter held the lock when it signalled: now it is waiting
    c.notify();
    c.release();
    EXPECT_EQ(waiter.exit_code(), 0) << (use_rlock ? "RLock" : "Lock");
  }
}

TEST(Condition, RLockDepthReleasedAndRestored) {
  mp::RLock r;
  mp::Condition c(r);
  Pipe called;
  Child waiter([&] {
    for (int i = 0; i < 3; ++i) c.acquire();
    called.send('w');
    if (!c.wait(20.0)) return 1;
    if (r.depth() != 3) return 2;
    for (int i = 0; i < 3; ++i) c.release();
    try {
      c.release();
      return 3;
    } catch (const mp::AssertionError&) {
    }
    return 0;
  });
  ASSERT_TRUE(called.receive());
  ASSERT_TRUE(r.acquire(true, 20.0)) << "the RLock must be fully released during wait";
  c.notify();
  r.release();
  EXPECT_EQ(waiter.exit_code(), 0);
}

TEST(Condition, NotifyOneWakesExactlyOneThread) {
  mp::Condition c(mp::Lock{});
  constexpr int kWaiters = 3;
  std::atomic<int> waiting{0}, woken{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&] {
      c.acquire();
      waiting.fetch_add(1);
      if (c.wait(20.0)) woken.fetch_add(1);
      c.release();
    });
  }
  // Each waiter counted itself with the lock held; once we hold it with the count complete,
  // all of them are waiting.
  for (;;) {
    c.acquire();
    if (waiting.load() == kWaiters) break;
    c.release();
    std::this_thread::yield();
  }
  c.notify(1);
  c.release();
  const auto deadline = Clock::now() + mp_test::kLiveness;
  while (woken.load() < 1 && Clock::now() < deadline) std::this_thread::yield();
  std::this_thread::sleep_for(kStaysBlocked);  // grace period: evidence only
  EXPECT_EQ(woken.load(), 1);
  c.acquire();
  c.notify_all();
  c.release();
  for (auto& t : threads) t.join();
  EXPECT_EQ(woken.load(), kWaiters);
}

TEST(Condition, WaitForReturnsPredicateValue) {
  mp::Condition c;
  c.acquire();
  EXPECT_EQ(c.wait_for([] { return 7; }), 7);
  const auto start = Clock::now();
  EXPECT_EQ(c.wait_for([] { return 0; }, 0.05), 0);
  EXPECT_GE(seconds_since(start), 0.05 - 0.001);
  c.release();
}

TEST(Condition, KilledWaiterNeitherBlocksNorSwallowsNotify) {
  mp::Condition c;
  Pipe v_called, s_called;
  Child victim([&] {
    c.acquire();
    v_called.send('w');
    c.wait();
    return 0;
  });
  ASSERT_TRUE(v_called.receive());
  c.acquire();  // the victim is waiting (oldest waiter)
  c.release();
  Child survivor([&] {
    c.acquire();
    s_called.send('w');
    const bool woken = c.wait(20.0);
    c.release();
    return woken ? 0 : 1;
  });
  ASSERT_TRUE(s_called.receive());
  ASSERT_TRUE(victim.kill_and_reap());
  c.acquire();
  c.notify(1);  // the dead victim is skipped
  c.release();
  EXPECT_EQ(survivor.exit_code(), 0);
}

TEST(Condition, KilledWaiterOverLockNeitherBlocksNorSwallowsNotify) {
  // Over an mp::Lock (wait morphing); the dead victim is the oldest waiter, and notify(1) must
  // pass its notification on to the survivor. notify_all() with the victim dead returns too.
  mp::Condition c{mp::Lock()};
  Pipe v_called, s_called;
  Child victim([&] {
    c.acquire();
    v_called.send('w');
    c.wait();
    return 0;
  });
  ASSERT_TRUE(v_called.receive());
  c.acquire();  // the victim is waiting (oldest waiter)
  c.release();
  Child survivor([&] {
    c.acquire();
    s_called.send('w');
    const bool woken = c.wait(20.0);
    c.release();
    return woken ? 0 : 1;
  });
  ASSERT_TRUE(s_called.receive());
  ASSERT_TRUE(victim.kill_and_reap());
  c.acquire();
  c.notify(1);  // the dead victim is skipped
  c.release();
  EXPECT_EQ(survivor.exit_code(), 0);
  c.acquire();
  c.notify_all();  // only the dead victim's slot may be left: returns at once
  c.release();
}

// Two processes take turns through a shared word, many times: every notify finds its waiter
// either not yet asleep (marked only) or asleep (moved onto the lock's word, or woken). A lost
// wake-up hangs a side (the children's watchdogs then fail the test). Both on one CPU, where
// a woken process often preempts its waker, and unpinned.
TEST(Condition, PingPongBetweenProcessesLosesNoWakeUp) {
  constexpr int kRounds = 20000;
  for (bool use_rlock : {false, true}) {
    for (bool pinned : {true, false}) {
      auto mapping = mp::platform::SharedMapping::anonymous(sizeof(std::atomic<std::uint32_t>));
      auto* turn = ::new (mapping.data()) std::atomic<std::uint32_t>{0};
      mp::Condition c = use_rlock ? mp::Condition(mp::RLock()) : mp::Condition(mp::Lock());
      cpu_set_t original;
      ASSERT_EQ(sched_getaffinity(0, sizeof(original), &original), 0);
      if (pinned) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
        ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
      }
      Child other([&] {
        int notified = 0;
        c.acquire();
        for (int i = 0; i < kRounds; ++i) {
          while (turn->load(std::memory_order_relaxed) != 1) {
            if (!c.wait(20.0)) return 2;  // an untimely timeout: a lost wake-up
            ++notified;
          }
          turn->store(0, std::memory_order_relaxed);
          c.notify();
        }
        c.release();
        // No wait returned true without a notify: one per round, but for the first round
        // when the parent had already flipped the turn.
        return notified == kRounds || notified == kRounds - 1 ? 0 : 3;
      });
      bool ok = true;
      int notified = 0;
      c.acquire();
      for (int i = 0; i < kRounds && ok; ++i) {
        turn->store(1, std::memory_order_relaxed);
        c.notify();
        while (ok && turn->load(std::memory_order_relaxed) != 0) {
          ok = c.wait(20.0);
          notified += ok ? 1 : 0;
        }
      }
      c.release();
      if (pinned) sched_setaffinity(0, sizeof(original), &original);
      const char* what =
          use_rlock ? (pinned ? "RLock pinned" : "RLock") : (pinned ? "Lock pinned" : "Lock");
      EXPECT_TRUE(ok) << what;
      EXPECT_EQ(notified, kRounds) << what;
      EXPECT_EQ(other.exit_code(), 0) << what;
    }
  }
}

TEST(Condition, NanTimeoutThrowsValueError) {
  mp::Condition c;
  c.acquire();
  EXPECT_THROW(c.wait(std::nan("")), mp::ValueError);
  EXPECT_TRUE(std::get<mp::RLock>(c.underlying_lock()).is_owned());
  c.release();
}

}  // namespace
