// Unit tests of mp::Barrier. Comments name the clauses of spec/sync/barrier.md a test
// exercises (the conformance suite is what checks them normatively). Every blocking call is
// bounded (timeouts, watchdogs); forked children are always reaped.
#include "mp/barrier.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/lock.hpp"
#include "mp/platform/shm.hpp"
#include "test_util.hpp"

namespace {

using mp_test::Child;
using mp_test::Clock;
using mp_test::kLiveness;
using mp_test::Pipe;
using mp_test::seconds_since;
using std::chrono::milliseconds;

constexpr double kLongTimeout = 10.0;  // "must not expire" in these tests

// Waits (bounded) until the barrier reports `n` waiters.
bool AwaitWaiting(const mp::Barrier& b, std::size_t n) {
  const auto deadline = Clock::now() + kLiveness;
  while (Clock::now() < deadline) {
    if (b.n_waiting() == n) return true;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return false;
}

// [barrier.construct.state] [barrier.attr.parties] [barrier.construct.parties_invalid]
TEST(Barrier, ConstructionAndValidation) {
  mp::Barrier b(3);
  EXPECT_EQ(b.parties(), 3u);
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_FALSE(b.broken());
  EXPECT_THROW(mp::Barrier(0), mp::ValueError);
  EXPECT_THROW(mp::Barrier(mp::Barrier::kMaxParties + 1), mp::ValueError);
  EXPECT_THROW(mp::Barrier(2, {}, std::numeric_limits<double>::quiet_NaN()), mp::ValueError);
  EXPECT_THROW(b.wait(std::numeric_limits<double>::quiet_NaN()), mp::ValueError);
  EXPECT_EQ(b.n_waiting(), 0u);  // the NaN wait did not arrive
  mp::Barrier copy = b;
  EXPECT_TRUE(copy == b);
  EXPECT_FALSE(mp::Barrier(3) == b);
}

// A single party never blocks; the action runs every time.
TEST(Barrier, OnePartyIsTrivial) {
  int runs = 0;
  mp::Barrier b(1, [&] { ++runs; });
  for (int i = 0; i < 5; ++i) EXPECT_EQ(b.wait(0.0), 0u);
  EXPECT_EQ(runs, 5);
}

// [barrier.wait.blocks] [barrier.wait.releases] [barrier.wait.index] [barrier.wait.cyclic]
// [barrier.action.once]: threads, many cycles.
TEST(Barrier, ThreadsManyCycles) {
  constexpr int kThreads = 4, kCycles = 300;
  std::atomic<int> arrived{0}, actions{0};
  std::atomic<bool> bad{false};
  mp::Barrier b(kThreads, [&] {
    if (arrived.load() % kThreads != 0) bad = true;  // runs after all arrived
    actions.fetch_add(1);
  });
  std::vector<std::multiset<std::size_t>> indices(kCycles);
  std::mutex m;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int c = 0; c < kCycles; ++c) {
        arrived.fetch_add(1);
        const std::size_t i = b.wait(kLongTimeout);
        // The action of this cycle has run before anyone returns.
        if (actions.load() < c + 1) bad = true;
        std::lock_guard<std::mutex> g(m);
        indices[static_cast<std::size_t>(c)].insert(i);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(bad);
  EXPECT_EQ(actions.load(), kCycles);
  for (const auto& set : indices) EXPECT_EQ(set, (std::multiset<std::size_t>{0, 1, 2, 3}));
}

// [barrier.wait.index.order] [barrier.attr.n_waiting]
TEST(Barrier, IndexIsArrivalOrder) {
  mp::Barrier b(3);
  std::size_t first = 99, second = 99;
  std::thread t1([&] { first = b.wait(kLongTimeout); });
  ASSERT_TRUE(AwaitWaiting(b, 1));
  std::thread t2([&] { second = b.wait(kLongTimeout); });
  ASSERT_TRUE(AwaitWaiting(b, 2));
  EXPECT_EQ(b.wait(kLongTimeout), 2u);
  t1.join();
  t2.join();
  EXPECT_EQ(first, 0u);
  EXPECT_EQ(second, 1u);
  EXPECT_EQ(b.n_waiting(), 0u);
}

// [barrier.wait.timeout.expires] [barrier.wait.broken] [barrier.attr.broken]
TEST(Barrier, TimeoutBreaksForEveryone) {
  mp::Barrier b(3);
  bool other_broken = false;
  std::thread t([&] {
    try {
      b.wait();
    } catch (const mp::BrokenBarrierError& e) {
      other_broken = std::string(e.kind()) == "BrokenBarrierError";
    }
  });
  ASSERT_TRUE(AwaitWaiting(b, 1));
  const auto start = Clock::now();
  EXPECT_THROW(b.wait(0.05), mp::BrokenBarrierError);
  EXPECT_GE(seconds_since(start), 0.05 - 0.001);
  t.join();
  EXPECT_TRUE(other_broken);
  EXPECT_TRUE(b.broken());
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_THROW(b.wait(), mp::BrokenBarrierError);  // at once, no timeout needed
}

// [barrier.wait.timeout.default] [barrier.wait.timeout.zero] [barrier.wait.timeout.last]
TEST(Barrier, DefaultZeroAndLastTimeouts) {
  mp::Barrier b(2, {}, 0.05);
  auto start = Clock::now();
  EXPECT_THROW(b.wait(), mp::BrokenBarrierError);
  EXPECT_GE(seconds_since(start), 0.05 - 0.001);
  b.reset();
  start = Clock::now();
  EXPECT_THROW(b.wait(0.0), mp::BrokenBarrierError);
  b.reset();
  EXPECT_THROW(b.wait(-1.0), mp::BrokenBarrierError);
  EXPECT_LT(seconds_since(start), 1.0);
  b.reset();
  // An explicit timeout replaces the default; the completing party ignores its timeout.
  std::size_t index = 99;
  std::thread t([&] { index = b.wait(kLongTimeout); });
  ASSERT_TRUE(AwaitWaiting(b, 1));
  std::this_thread::sleep_for(milliseconds(100));  // past the default: t must still wait
  EXPECT_EQ(b.n_waiting(), 1u);
  EXPECT_EQ(b.wait(0.0), 1u);
  t.join();
  EXPECT_EQ(index, 0u);
}

// [barrier.action.raises]
TEST(Barrier, ThrowingActionBreaksAndPropagates) {
  mp::Barrier b(2, [] { throw std::runtime_error("boom"); });
  bool other_broken = false;
  std::thread t([&] {
    try {
      b.wait(kLongTimeout);
    } catch (const mp::BrokenBarrierError&) {
      other_broken = true;
    }
  });
  ASSERT_TRUE(AwaitWaiting(b, 1));
  EXPECT_THROW(b.wait(kLongTimeout), std::runtime_error);
  t.join();
  EXPECT_TRUE(other_broken);
  EXPECT_TRUE(b.broken());
  b.reset();
  EXPECT_FALSE(b.broken());
}

// [barrier.abort] [barrier.reset.waiters] [barrier.reset.usable]
TEST(Barrier, AbortAndReset) {
  mp::Barrier b(3);
  std::atomic<int> broken_out{0};
  auto waiter = [&] {
    try {
      b.wait(kLongTimeout);
    } catch (const mp::BrokenBarrierError&) {
      broken_out.fetch_add(1);
    }
  };
  std::thread t1(waiter), t2(waiter);
  ASSERT_TRUE(AwaitWaiting(b, 2));
  b.reset();
  t1.join();
  t2.join();
  EXPECT_EQ(broken_out.load(), 2);
  EXPECT_FALSE(b.broken());
  std::thread t3(waiter);
  ASSERT_TRUE(AwaitWaiting(b, 1));
  b.abort();
  t3.join();
  EXPECT_EQ(broken_out.load(), 3);
  EXPECT_TRUE(b.broken());
  EXPECT_THROW(b.wait(), mp::BrokenBarrierError);
  b.reset();
  std::size_t i1 = 99, i2 = 99;
  std::thread t4([&] { i1 = b.wait(kLongTimeout); });
  std::thread t5([&] { i2 = b.wait(kLongTimeout); });
  const std::size_t i3 = b.wait(kLongTimeout);
  t4.join();
  t5.join();
  EXPECT_EQ((std::set<std::size_t>{i1, i2, i3}), (std::set<std::size_t>{0, 1, 2}));
}

// The action must not call its own barrier.
TEST(Barrier, ActionUsingTheBarrierIsAnError) {
  std::optional<mp::Barrier> b;
  b.emplace(1, [&] { (void)b->n_waiting(); });
  EXPECT_THROW(b->wait(), mp::AssertionError);
  EXPECT_TRUE(b->broken());
}

// [barrier.wait.releases] across processes, many cycles, action in the last arriver's process.
TEST(Barrier, ProcessesManyCycles) {
  auto mapping = mp::platform::SharedMapping::anonymous(sizeof(std::atomic<int>));
  auto* actions = ::new (mapping.data()) std::atomic<int>(0);
  mp::Barrier b(2, [actions] { actions->fetch_add(1); });
  constexpr int kCycles = 500;
  Child child([&] {
    for (int c = 0; c < kCycles; ++c) {
      b.wait(kLongTimeout);
      if (actions->load() < c + 1) return 2;
    }
    return 0;
  });
  for (int c = 0; c < kCycles; ++c) {
    ASSERT_NO_THROW(b.wait(kLongTimeout)) << "cycle " << c;
    ASSERT_GE(actions->load(), c + 1);
  }
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(actions->load(), kCycles);
}

// [barrier.kill.waiter]: a party killed while waiting breaks the barrier for the survivor.
TEST(Barrier, KilledWaiterBreaksBarrier) {
  mp::Barrier b(3);
  Child child([&] {
    b.wait();
    return 0;
  });
  ASSERT_TRUE(AwaitWaiting(b, 1));
  std::atomic<bool> broken{false};
  std::thread survivor([&] {
    try {
      b.wait(kLongTimeout);
    } catch (const mp::BrokenBarrierError&) {
      broken = true;
    }
  });
  ASSERT_TRUE(AwaitWaiting(b, 2));
  const auto start = Clock::now();
  ASSERT_TRUE(child.kill_and_reap());
  survivor.join();
  EXPECT_TRUE(broken);
  // Detection latency: a few check intervals, far below the survivor's timeout.
  EXPECT_LT(seconds_since(start), 2.0);
  EXPECT_TRUE(b.broken());
}

// [barrier.kill.waiter]: the dead party is an unreaped zombie (kill(pid, 0) still succeeds):
// a later arrival is broken out all the same.
TEST(Barrier, KilledZombieWaiterBreaksLaterArrival) {
  mp::Barrier b(3);
  Child child([&] {
    b.wait();
    return 0;
  });
  ASSERT_TRUE(AwaitWaiting(b, 1));
  ::kill(child.pid(), SIGKILL);  // not reaped yet: a zombie
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_THROW(b.wait(kLongTimeout), mp::BrokenBarrierError);
  EXPECT_EQ(child.exit_code(), -SIGKILL);
}

// [barrier.kill.action]: the process running the action dies inside it (holding the guard).
TEST(Barrier, KilledActionRunnerBreaksBarrier) {
  mp::Lock gate;
  gate.acquire();  // the action blocks on it for ever
  Pipe in_action;
  mp::Barrier b(2, [&] {
    in_action.send('x');
    gate.acquire();
  });
  std::atomic<bool> broken{false};
  std::thread survivor([&] {
    try {
      b.wait(kLongTimeout);
    } catch (const mp::BrokenBarrierError&) {
      broken = true;
    }
  });
  ASSERT_TRUE(AwaitWaiting(b, 1));
  Child child([&] {
    b.wait();
    return 0;
  });
  ASSERT_TRUE(in_action.receive().has_value());
  const auto start = Clock::now();
  ASSERT_TRUE(child.kill_and_reap());
  survivor.join();
  EXPECT_TRUE(broken);
  EXPECT_LT(seconds_since(start), 2.0);  // broken by the death, not by the timeout
  EXPECT_TRUE(b.broken());
  b.reset();  // the guard was repaired: usable again
  EXPECT_FALSE(b.broken());
}

}  // namespace
