// Unit tests of mp::RLock. Comments name the clauses of spec/sync/rlock.md a
// test exercises (the conformance suite is what checks them normatively).
#include "mp/rlock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/platform/shm.hpp"
#include "test_util.hpp"

namespace {

using mp_test::Child;
using mp_test::Clock;
using mp_test::kLiveness;
using mp_test::kStaysBlocked;
using mp_test::Pipe;
using mp_test::seconds_since;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// [rlock.construct.unlocked] [rlock.acquire.free] [rlock.acquire.recursive]
// [rlock.release.owner] [rlock.release.depth]
TEST(RLock, RecursionCountsLevels) {
  mp::RLock r;
  EXPECT_FALSE(r.is_owned());
  EXPECT_EQ(r.depth(), 0u);
  for (std::optional<double> t :
       {std::optional<double>(), std::optional<double>(0.0), std::optional<double>(-1.0),
        std::optional<double>(0.5), std::optional<double>(kInf)}) {
    EXPECT_TRUE(r.acquire(true, t));
  }
  EXPECT_TRUE(r.acquire(false));
  EXPECT_TRUE(r.try_lock());
  EXPECT_EQ(r.depth(), 7u);
  EXPECT_TRUE(r.is_owned());
  for (unsigned i = 7; i > 0; --i) {
    EXPECT_EQ(r.depth(), i);
    r.release();
  }
  EXPECT_FALSE(r.is_owned());
  EXPECT_THROW(r.release(), mp::AssertionError);  // [rlock.release.unowned]
}

// [rlock.release.unowned] the error's kind and message
TEST(RLock, ReleaseOfFreeLockIsAssertionError) {
  mp::RLock r;
  try {
    r.release();
    ADD_FAILURE() << "expected mp::AssertionError";
  } catch (const mp::AssertionError& e) {
    EXPECT_STREQ(e.kind(), "AssertionError");
  }
  EXPECT_TRUE(r.acquire(false)) << "still free";
  r.release();
}

TEST(RLock, NaNTimeoutIsValueError) {
  mp::RLock r;
  EXPECT_THROW(r.acquire(true, kNaN), mp::ValueError);
  EXPECT_FALSE(r.is_owned());
}

// [rlock.owner.thread] [rlock.release.other_thread] [rlock.acquire.nonblocking]
// [rlock.acquire.timeout.expires]
TEST(RLock, OtherThreadIsNotOwner) {
  mp::RLock r;
  ASSERT_TRUE(r.acquire());
  ASSERT_TRUE(r.acquire());
  std::thread other([&] {
    EXPECT_FALSE(r.is_owned());
    EXPECT_FALSE(r.acquire(false));
    EXPECT_FALSE(r.acquire(true, 0.0));
    const auto start = Clock::now();
    EXPECT_FALSE(r.acquire(true, 0.05));
    EXPECT_GE(seconds_since(start), 0.05 - 0.001);
    EXPECT_THROW(r.release(), mp::AssertionError);
  });
  other.join();
  EXPECT_EQ(r.depth(), 2u) << "a failed release by another thread changes nothing";
  r.release();
  r.release();
}

// [rlock.acquire.blocks] [rlock.acquire.wakes] [rlock.release.depth]
TEST(RLock, WaiterWokenByLastRelease) {
  mp::RLock r;
  ASSERT_TRUE(r.acquire());
  ASSERT_TRUE(r.acquire());
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    r.lock();
    got = true;
    r.unlock();
  });
  std::this_thread::sleep_for(kStaysBlocked);  // grace period, not synchronisation
  EXPECT_FALSE(got.load());
  r.release();
  std::this_thread::sleep_for(kStaysBlocked);
  EXPECT_FALSE(got.load()) << "one level is still held";
  r.release();
  waiter.join();
  EXPECT_TRUE(got.load());
}

// [rlock.acquire.exclusive] with std::lock_guard and several threads
TEST(RLock, MutualExclusionAcrossThreads) {
  mp::RLock r;
  long counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        std::lock_guard<mp::RLock> outer(r);
        std::lock_guard<mp::RLock> inner(r);
        ++counter;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 80000);
}

// release_all / acquire_restore, for condition variables
TEST(RLock, ReleaseAllAndRestore) {
  mp::RLock r;
  EXPECT_THROW(r.release_all(), mp::AssertionError);
  ASSERT_TRUE(r.acquire());
  ASSERT_TRUE(r.acquire());
  ASSERT_TRUE(r.acquire());
  EXPECT_EQ(r.release_all(), 3u);
  EXPECT_FALSE(r.is_owned());
  std::thread other([&] {
    EXPECT_TRUE(r.acquire(false)) << "free after release_all";
    r.release();
  });
  other.join();
  r.acquire_restore(3);
  EXPECT_EQ(r.depth(), 3u);
  EXPECT_EQ(r.release_all(), 3u);
}

// An RLock placed by the caller in memory it manages.
TEST(RLock, AttachToCallerState) {
  auto mapping = mp::platform::SharedMapping::anonymous(sizeof(mp::RLockState));
  auto* state = ::new (mapping.data()) mp::RLockState();
  mp::RLock a = mp::RLock::attach(*state);
  mp::RLock b = mp::RLock::attach(*state);
  EXPECT_TRUE(a == b);
  ASSERT_TRUE(a.acquire());
  EXPECT_TRUE(b.is_owned());
  b.release();
  state->~RLockState();
}

// --- Processes ---------------------------------------------------------------

// [rlock.process.not_inherited] the child of an owner does not own the RLock
TEST(RLockProcesses, ChildDoesNotOwnParentsLock) {
  mp::RLock r;
  ASSERT_TRUE(r.acquire());
  Child child([&] {
    if (r.is_owned()) return 1;
    try {
      r.release();
      return 2;
    } catch (const mp::AssertionError&) {
    }
    if (r.acquire(false)) return 3;
    return 0;
  });
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(r.depth(), 1u);
  r.release();
}

// [rlock.release.other_process] [rlock.acquire.wakes]
TEST(RLockProcesses, ChildWaitsForParent) {
  mp::RLock r;
  Pipe ready;
  ASSERT_TRUE(r.acquire());
  Child child([&] {
    ready.send('r');
    if (!r.acquire(true, 10.0)) return 1;
    r.release();
    return 0;
  });
  ASSERT_TRUE(ready.receive());
  EXPECT_TRUE(child.still_running_after(kStaysBlocked));
  r.release();
  EXPECT_EQ(child.exit_code(), 0);
}

// [rlock.kill.owner_died] a killed owner is reported; the caller then owns it.
TEST(RLockProcesses, KilledOwnerIsReportedAndLockRecovers) {
  mp::RLock r;
  Pipe held;
  Child owner([&] {
    r.acquire();
    r.acquire();
    held.send('h');
    for (;;) pause();
    return 0;
  });
  ASSERT_TRUE(held.receive());
  EXPECT_FALSE(r.acquire(false)) << "the owner is alive";
  ASSERT_TRUE(owner.kill_and_reap());
  try {
    r.acquire(true, 5.0);
    ADD_FAILURE() << "expected mp::OwnerDied";
  } catch (const mp::OwnerDied& e) {
    EXPECT_STREQ(e.kind(), "OwnerDied");
  }
  EXPECT_TRUE(r.is_owned());
  EXPECT_EQ(r.depth(), 1u);
  r.release();
  EXPECT_FALSE(r.is_owned());
  // Fully usable again, also across processes, and the death is reported once.
  ASSERT_TRUE(r.acquire(false));
  r.release();
  Child next([&] {
    if (!r.acquire(false)) return 1;
    r.release();
    return 0;
  });
  EXPECT_EQ(next.exit_code(), 0);
}

// [rlock.kill.owner_died] a waiter blocked when the owner dies gets OwnerDied.
TEST(RLockProcesses, BlockedWaiterLearnsOfDeath) {
  mp::RLock r;
  Pipe held, go;
  Child owner([&] {
    r.acquire();
    held.send('h');
    go.receive();
    _exit(0);  // dies owning the lock, without releasing it
    return 0;
  });
  ASSERT_TRUE(held.receive());
  std::atomic<int> outcome{0};
  std::thread waiter([&] {
    try {
      outcome = r.acquire(true, 10.0) ? 1 : 2;
    } catch (const mp::OwnerDied&) {
      outcome = 3;
    }
  });
  go.send('g');
  waiter.join();
  EXPECT_EQ(outcome.load(), 3);
  EXPECT_EQ(owner.exit_code(), 0);
  EXPECT_FALSE(r.is_owned()) << "the waiter thread owns it, not this one";
}

}  // namespace
