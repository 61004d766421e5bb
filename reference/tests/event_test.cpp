// Unit tests of mp::Event. Every wait is bounded, every child reaped (test_util.hpp); ordering
// comes from pipe handshakes, never from sleeps.
#include "mp/event.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "test_util.hpp"

namespace {

using mp_test::Child;
using mp_test::Clock;
using mp_test::kClockResolution;
using mp_test::kStaysBlocked;
using mp_test::Pipe;
using mp_test::seconds_since;

TEST(Event, StartsClearAndSetClearToggle) {
  mp::Event e;
  EXPECT_FALSE(e.is_set());
  e.set();
  EXPECT_TRUE(e.is_set());
  e.set();  // idempotent
  EXPECT_TRUE(e.is_set());
  e.clear();
  EXPECT_FALSE(e.is_set());
  e.clear();
  EXPECT_FALSE(e.is_set());
}

TEST(Event, WaitOnSetReturnsTrueAtOnce) {
  mp::Event e;
  e.set();
  EXPECT_TRUE(e.wait());
  EXPECT_TRUE(e.wait(0.0));
  EXPECT_TRUE(e.wait(-1.0));
  EXPECT_TRUE(e.wait(1e9));
}

TEST(Event, ZeroAndNegativeTimeoutsDoNotWait) {
  mp::Event e;
  const auto start = Clock::now();
  EXPECT_FALSE(e.wait(0.0));
  EXPECT_FALSE(e.wait(-5.0));
  EXPECT_LT(seconds_since(start), 1.0);
}

TEST(Event, TimedWaitExpiresNoEarlierThanTimeout) {
  mp::Event e;
  const auto start = Clock::now();
  EXPECT_FALSE(e.wait(0.05));
  EXPECT_GE(seconds_since(start), 0.05 - 0.001);
}

TEST(Event, NanTimeoutThrowsValueError) {
  mp::Event e;
  EXPECT_THROW(e.wait(std::nan("")), mp::ValueError);
}

TEST(Event, SetWakesEveryThreadWaiter) {
  mp::Event e;
  std::atomic<int> started{0}, woken{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      started.fetch_add(1);
      if (e.wait(i % 2 ? std::optional<double>(30.0) : std::nullopt)) woken.fetch_add(1);
    });
  }
  while (started.load() < 4) std::this_thread::yield();
  e.set();
  for (auto& t : threads) t.join();
  EXPECT_EQ(woken.load(), 4);
}

TEST(Event, SetInOneProcessWakesWaitersInOthers) {
  mp::Event e;
  Pipe ready1, ready2;
  Child c1([&] {
    ready1.send('r');
    return e.wait(20.0) ? 0 : 1;
  });
  Child c2([&] {
    ready2.send('r');
    return e.wait() ? 0 : 1;
  });
  ASSERT_TRUE(ready1.receive());
  ASSERT_TRUE(ready2.receive());
  EXPECT_TRUE(c1.still_running_after(kStaysBlocked));
  e.set();
  EXPECT_EQ(c1.exit_code(), 0);
  EXPECT_EQ(c2.exit_code(), 0);
}

TEST(Event, KilledWaiterDoesNotDisturbSet) {
  mp::Event e;
  Pipe ready, ready2;
  Child victim([&] {
    ready.send('r');
    e.wait();
    return 0;
  });
  Child survivor([&] {
    ready2.send('r');
    return e.wait() ? 0 : 1;
  });
  ASSERT_TRUE(ready.receive());
  ASSERT_TRUE(ready2.receive());
  ASSERT_TRUE(victim.still_running_after(kStaysBlocked));
  ASSERT_TRUE(victim.kill_and_reap());
  e.set();  // must not block
  EXPECT_EQ(survivor.exit_code(), 0);
  EXPECT_TRUE(e.is_set());
}

TEST(Event, ClearAfterSetMakesWaitersBlockAgain) {
  mp::Event e;
  e.set();
  e.clear();
  Pipe ready;
  Child c([&] {
    ready.send('r');
    return e.wait(20.0) ? 0 : 1;
  });
  ASSERT_TRUE(ready.receive());
  EXPECT_TRUE(c.still_running_after(kStaysBlocked));
  e.set();
  EXPECT_EQ(c.exit_code(), 0);
}

TEST(Event, AttachSharesState) {
  mp::EventState state;
  mp::Event a = mp::Event::attach(state), b = mp::Event::attach(state);
  a.set();
  EXPECT_TRUE(b.is_set());
  EXPECT_TRUE(a == b);
}

}  // namespace
