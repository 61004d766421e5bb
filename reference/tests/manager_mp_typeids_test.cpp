// Tests of the manager's "mp." typeids (mp.Lock, mp.RLock, mp.Semaphore, mp.BoundedSemaphore,
// mp.Condition, mp.Queue, mp.JoinableQueue): the served objects with the semantics of libmp's own
// primitives (spec/sync/*.md, spec/queue/*.md; [manager.served_semantics]) instead of Python's
// threading / queue.Queue, each client connection counting as one thread. Comments name the
// chapters' clauses. Every forked child uses its own connection to the server; every child is
// reaped (mp_test::Child). Timing: lower bounds and generous liveness bounds only.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>

#include "mp/errors.hpp"
#include "mp/manager.hpp"
#include "mp/process.hpp"
#include "test_util.hpp"

namespace {

using mp::Dict;
using mp::List;
using mp::Value;
using mp_test::Child;
using mp_test::Clock;
using mp_test::kStaysBlocked;
using mp_test::Pipe;
using mp_test::seconds_since;

// A generous bound for "at once" / "promptly" (a call that must not wait for its timeout, or a
// wake-up that must come): far below the timeouts the tests pass, far above any scheduling noise.
constexpr double kPrompt = 10.0;
// A timeout long enough that returning before kPrompt proves it was not waited for.
constexpr double kLongTimeout = 30.0;

template <class E, class F>
void expect_kind(F&& f, const char* kind) {
  try {
    f();
    ADD_FAILURE() << "expected " << kind;
  } catch (const mp::Error& e) {
    EXPECT_STREQ(e.kind(), kind) << e.what();
    EXPECT_NE(dynamic_cast<const E*>(&e), nullptr) << e.kind() << ": " << e.what();
  }
}

// The kind of the mp::Error `f` throws, "" if it returns (for checks inside forked children).
template <class F>
std::string kind_of(F&& f) {
  try {
    f();
    return "";
  } catch (const mp::Error& e) {
    return e.kind();
  }
}

// A create() whose factory throws fails with RemoteError whose message names the factory's kind.
void expect_create_fails(mp::Manager& m, const char* typeid_name, List args,
                         const std::string& factory_kind) {
  try {
    m.create(typeid_name, std::move(args));
    ADD_FAILURE() << typeid_name << ": create succeeded";
  } catch (const mp::RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find(factory_kind), std::string::npos) << e.what();
  } catch (const mp::Error& e) {
    ADD_FAILURE() << typeid_name << ": " << e.kind() << ": " << e.what();
  }
}

// Blocks the calling (child) process until it is killed; its watchdog bounds it. (Typed int for
// use as a child's return value.)
[[noreturn]] int stay() {
  for (;;) ::pause();
}

class MpTypeids : public testing::Test {
 protected:
  mp::Manager m;
  void SetUp() override { m.start(); }
};

// ---- 1. Errors and arguments ----

// [lock.release.unheld] [lock.release.other_process]: releasing a free mp.Lock is ValueError and
// leaves it free; any client may release a held one. The built-in "Lock" keeps threading's
// RuntimeError.
TEST_F(MpTypeids, LockReleaseUnheldIsValueError) {
  mp::Proxy lock = m.create("mp.Lock");
  expect_kind<mp::ValueError>([&] { lock.call("release"); }, "ValueError");
  EXPECT_EQ(lock.call("acquire", {false}), Value(true));  // still free
  EXPECT_EQ(lock.call("release"), Value());
  expect_kind<mp::ValueError>([&] { lock.call("release"); }, "ValueError");
  EXPECT_EQ(lock.call("acquire"), Value(true));
  Child releaser([&] { return kind_of([&] { lock.call("release"); }) == "" ? 0 : 1; });
  EXPECT_EQ(releaser.exit_code(), 0);
  EXPECT_EQ(lock.call("acquire", {false}), Value(true));
  lock.call("release");

  mp::Proxy builtin = m.create("Lock");
  expect_kind<mp::RuntimeError>([&] { builtin.call("release"); }, "RuntimeError");
}

// [rlock.release.unowned] [rlock.release.other_thread] [rlock.release.other_process]
// [rlock.release.depth] [rlock.owner.thread]: releasing an mp.RLock the caller does not own is
// AssertionError and changes nothing. The built-in "RLock" keeps threading's RuntimeError.
TEST_F(MpTypeids, RLockReleaseUnownedIsAssertionError) {
  mp::Proxy r = m.create("mp.RLock");
  expect_kind<mp::AssertionError>([&] { r.call("release"); }, "AssertionError");
  EXPECT_EQ(r.call("acquire"), Value(true));
  EXPECT_EQ(r.call("acquire"), Value(true));  // depth 2
  std::thread([&] {
    EXPECT_EQ(r.call("acquire", {false}), Value(false));
    expect_kind<mp::AssertionError>([&] { r.call("release"); }, "AssertionError");
  }).join();
  Child other([&] {
    if (kind_of([&] { r.call("release"); }) != "AssertionError") return 1;
    return r.call("acquire", {false}) == Value(false) ? 0 : 2;
  });
  EXPECT_EQ(other.exit_code(), 0);
  r.call("release");
  std::thread([&] { EXPECT_EQ(r.call("acquire", {false}), Value(false)); }).join();  // depth 1
  r.call("release");
  expect_kind<mp::AssertionError>([&] { r.call("release"); }, "AssertionError");
  std::thread([&] {
    EXPECT_EQ(r.call("acquire", {false}), Value(true));  // free
    r.call("release");
  }).join();

  mp::Proxy builtin = m.create("RLock");
  expect_kind<mp::RuntimeError>([&] { builtin.call("release"); }, "RuntimeError");
  builtin.call("acquire");
  std::thread([&] {
    expect_kind<mp::RuntimeError>([&] { builtin.call("release"); }, "RuntimeError");
  }).join();
  builtin.call("release");
}

// [condition.wait.unheld] [condition.notify.unheld] [rlock.release.unowned]: wait, notify and
// notify_all of an mp.Condition without its lock are AssertionError, also while another
// client holds it. The built-in "Condition" keeps threading's RuntimeError.
TEST_F(MpTypeids, ConditionWithoutLockIsAssertionError) {
  mp::Proxy c = m.create("mp.Condition");
  expect_kind<mp::AssertionError>([&] { c.call("wait", {0.01}); }, "AssertionError");
  expect_kind<mp::AssertionError>([&] { c.call("wait"); }, "AssertionError");
  expect_kind<mp::AssertionError>([&] { c.call("notify"); }, "AssertionError");
  expect_kind<mp::AssertionError>([&] { c.call("notify_all"); }, "AssertionError");
  expect_kind<mp::AssertionError>([&] { c.call("release"); }, "AssertionError");
  c.call("acquire");
  std::thread([&] {
    expect_kind<mp::AssertionError>([&] { c.call("wait", {0.01}); }, "AssertionError");
    expect_kind<mp::AssertionError>([&] { c.call("notify", {1}); }, "AssertionError");
    expect_kind<mp::AssertionError>([&] { c.call("notify_all"); }, "AssertionError");
  }).join();
  c.call("notify");  // [condition.notify.none_waiting]
  c.call("notify_all");
  c.call("release");

  mp::Proxy builtin = m.create("Condition");
  expect_kind<mp::RuntimeError>([&] { builtin.call("wait", {0.01}); }, "RuntimeError");
  expect_kind<mp::RuntimeError>([&] { builtin.call("notify"); }, "RuntimeError");
}

// [lock.acquire.nonblocking] [lock.acquire.nonblocking.timeout_ignored]
// [lock.acquire.timeout.negative] [lock.acquire.timeout.zero] [lock.acquire.timeout.expires]:
// multiprocessing's acquire(block, timeout). The built-in "Lock" keeps threading's ValueError
// for a non-blocking acquire with a timeout and for a negative timeout other than -1.
TEST_F(MpTypeids, LockAcquireArguments) {
  mp::Proxy lock = m.create("mp.Lock");
  EXPECT_EQ(lock.call("acquire"), Value(true));
  auto start = Clock::now();
  EXPECT_EQ(lock.call("acquire", {false, kLongTimeout}), Value(false));
  EXPECT_EQ(lock.call("acquire", {}, Dict{{"block", false}, {"timeout", kLongTimeout}}),
            Value(false));
  EXPECT_EQ(lock.call("acquire", {true, -1.0}), Value(false));
  EXPECT_EQ(lock.call("acquire", {true, -5}), Value(false));
  EXPECT_EQ(lock.call("acquire", {}, Dict{{"timeout", -0.5}}), Value(false));
  EXPECT_EQ(lock.call("acquire", {true, 0}), Value(false));
  EXPECT_LT(seconds_since(start), kPrompt);
  start = Clock::now();
  EXPECT_EQ(lock.call("acquire", {true, 0.1}), Value(false));
  EXPECT_GE(seconds_since(start), 0.099);
  lock.call("release");
  // On a free lock each form takes it.
  EXPECT_EQ(lock.call("acquire", {false, kLongTimeout}), Value(true));
  lock.call("release");
  EXPECT_EQ(lock.call("acquire", {true, -1.0}), Value(true));
  lock.call("release");
  EXPECT_EQ(lock.call("acquire", {true, Value()}), Value(true));  // timeout=None
  lock.call("release");

  mp::Proxy builtin = m.create("Lock");
  builtin.call("acquire");
  expect_kind<mp::ValueError>([&] { builtin.call("acquire", {false, 5.0}); }, "ValueError");
  expect_kind<mp::ValueError>([&] { builtin.call("acquire", {true, -5.0}); }, "ValueError");
  builtin.call("release");
}

// [rlock.acquire.nonblocking] [rlock.acquire.timeout.negative] [rlock.acquire.timeout.zero]
// [semaphore.acquire.nonblocking] [semaphore.acquire.timeout.negative]
// [condition.wait.timeout.negative]: the same arguments for the other mp. typeids.
TEST_F(MpTypeids, OtherAcquireArguments) {
  mp::Proxy r = m.create("mp.RLock");
  r.call("acquire");  // owned by this thread: another client's attempts fail at once
  std::thread([&] {
    const auto start = Clock::now();
    EXPECT_EQ(r.call("acquire", {false, kLongTimeout}), Value(false));
    EXPECT_EQ(r.call("acquire", {true, -1.0}), Value(false));
    EXPECT_EQ(r.call("acquire", {true, 0}), Value(false));
    EXPECT_LT(seconds_since(start), kPrompt);
  }).join();
  EXPECT_EQ(r.call("acquire", {true, -1.0}), Value(true));  // recursive: depth 2
  r.call("release");
  r.call("release");

  for (const char* name : {"mp.Semaphore", "mp.BoundedSemaphore"}) {
    SCOPED_TRACE(name);
    mp::Proxy s = m.create(name, {1});
    EXPECT_EQ(s.call("acquire", {true, -1.0}), Value(true));  // a unit: taken
    const auto start = Clock::now();
    EXPECT_EQ(s.call("acquire", {false, kLongTimeout}), Value(false));
    EXPECT_EQ(s.call("acquire", {true, -1.0}), Value(false));
    EXPECT_EQ(s.call("acquire", {true, 0.0}), Value(false));
    EXPECT_LT(seconds_since(start), kPrompt);
    EXPECT_EQ(s.call("get_value"), Value(0));
    s.call("release");
  }

  mp::Proxy c = m.create("mp.Condition");
  c.call("acquire");
  const auto start = Clock::now();
  EXPECT_EQ(c.call("wait", {-1.0}), Value(false));
  EXPECT_EQ(c.call("wait", {}, Dict{{"timeout", -0.5}}), Value(false));
  EXPECT_EQ(c.call("wait", {0}), Value(false));
  EXPECT_LT(seconds_since(start), kPrompt);
  c.call("release");  // the wait gave the lock back at depth 1
  expect_kind<mp::AssertionError>([&] { c.call("release"); }, "AssertionError");
}

// [semaphore.construct.default] [semaphore.construct.value] [semaphore.get_value.exact]
// [semaphore.release.above_initial] [bounded_semaphore.release.above_bound]
// [semaphore.construct.negative] [semaphore.construct.too_large]
TEST_F(MpTypeids, SemaphoreValues) {
  EXPECT_EQ(m.create("mp.Semaphore").call("get_value"), Value(1));
  mp::Proxy s = m.create("mp.Semaphore", {3});
  EXPECT_EQ(s.call("get_value"), Value(3));
  EXPECT_EQ(s.call("acquire"), Value(true));
  EXPECT_EQ(s.call("get_value"), Value(2));
  EXPECT_EQ(s.call("acquire", {false}), Value(true));
  EXPECT_EQ(s.call("get_value"), Value(1));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(s.call("release"), Value());
  EXPECT_EQ(s.call("get_value"), Value(4));  // above the initial value
  Child child([&] { return s.call("acquire", {false}) == Value(true) ? 0 : 1; });
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(s.call("get_value"), Value(3));  // a unit taken by another process counts

  mp::Proxy zero = m.create("mp.Semaphore", {0});
  EXPECT_EQ(zero.call("get_value"), Value(0));
  EXPECT_EQ(zero.call("acquire", {false}), Value(false));

  mp::Proxy b = m.create("mp.BoundedSemaphore", {2});
  EXPECT_EQ(b.call("get_value"), Value(2));
  expect_kind<mp::ValueError>([&] { b.call("release"); }, "ValueError");
  EXPECT_EQ(b.call("get_value"), Value(2));  // unchanged
  EXPECT_EQ(b.call("acquire"), Value(true));
  EXPECT_EQ(b.call("get_value"), Value(1));
  b.call("release");
  expect_kind<mp::ValueError>([&] { b.call("release"); }, "ValueError");
  EXPECT_EQ(b.call("get_value"), Value(2));
  EXPECT_EQ(m.create("mp.BoundedSemaphore").call("get_value"), Value(1));

  EXPECT_EQ(m.create("mp.Semaphore", {2147483647}).call("get_value"), Value(2147483647));
  expect_create_fails(m, "mp.Semaphore", {-1}, "ValueError");
  expect_create_fails(m, "mp.BoundedSemaphore", {-1}, "ValueError");
  expect_create_fails(m, "mp.Semaphore", {std::int64_t{2147483648}}, "ValueError");
  // The built-in typeids do not expose get_value.
  expect_kind<mp::RemoteError>([&] { m.create("Semaphore").call("get_value"); }, "RemoteError");
}

// [queue.construct.maxsize.too_large] [queue.construct.maxsize.range]
// [queue.get.timeout.negative] [queue.get.nonblocking.timeout_ignored]
// [queue.put.timeout.negative] [queue.put.nonblocking.timeout_ignored] [queue.get.timeout.zero]
TEST_F(MpTypeids, QueueArguments) {
  const std::int64_t huge = std::numeric_limits<std::int64_t>::max();  // 2**63 - 1
  expect_create_fails(m, "mp.Queue", {huge}, "OverflowError");
  expect_create_fails(m, "mp.JoinableQueue", {huge}, "OverflowError");
  expect_create_fails(m, "mp.Queue", {std::int64_t{2147483648}}, "OverflowError");
  mp::Proxy big = m.create("mp.Queue", {2147483647});
  big.call("put", {1});
  EXPECT_EQ(big.call("get"), Value(1));

  mp::Proxy q = m.create("mp.Queue", {1});
  auto start = Clock::now();
  expect_kind<mp::Empty>([&] { q.call("get", {true, -1}); }, "Empty");
  expect_kind<mp::Empty>([&] { q.call("get", {true, -0.5}); }, "Empty");
  expect_kind<mp::Empty>([&] { q.call("get", {}, Dict{{"timeout", -1}}); }, "Empty");
  expect_kind<mp::Empty>([&] { q.call("get", {false, kLongTimeout}); }, "Empty");
  expect_kind<mp::Empty>([&] { q.call("get", {true, 0}); }, "Empty");
  q.call("put", {"a", true, -1});  // room: a negative timeout still puts
  expect_kind<mp::Full>([&] { q.call("put", {"b", true, -1}); }, "Full");
  expect_kind<mp::Full>([&] { q.call("put", {"b", false, kLongTimeout}); }, "Full");
  expect_kind<mp::Full>([&] { q.call("put", {"b"}, Dict{{"timeout", -2.0}}); }, "Full");
  EXPECT_LT(seconds_since(start), kPrompt);
  EXPECT_EQ(q.call("get", {true, -1}), Value("a"));  // an item: returned at once
  start = Clock::now();
  expect_kind<mp::Empty>([&] { q.call("get", {true, 0.1}); }, "Empty");
  EXPECT_GE(seconds_since(start), 0.099);

  // The built-in Queue keeps queue.Queue's ValueError for a negative timeout.
  expect_kind<mp::ValueError>([&] { m.create("Queue").call("get", {true, -1}); }, "ValueError");
}

// [queue.put.timeout.negative] for mp.JoinableQueue, and its task accounting.
TEST_F(MpTypeids, JoinableQueue) {
  mp::Proxy jq = m.create("mp.JoinableQueue", {2});
  expect_kind<mp::Empty>([&] { jq.call("get", {true, -1}); }, "Empty");
  jq.call("put", {"job"});
  Child worker([&] {
    if (jq.call("get") != Value("job")) return 1;
    jq.call("task_done");
    return 0;
  });
  jq.call("join");
  EXPECT_EQ(worker.exit_code(), 0);
  expect_kind<mp::ValueError>([&] { jq.call("task_done"); }, "ValueError");
}

// ---- 2. Robust RLock (and the Condition's lock) ----

// A child that takes `lock` `depth` times through its own connection, says 'h', and then stays
// (until killed) or, with `exit_normally`, ends with _exit(0) while owning it.
std::unique_ptr<Child> owner_child(mp::Proxy& lock, int depth, Pipe& ready,
                                   bool exit_normally = false) {
  return std::make_unique<Child>([&lock, depth, &ready, exit_normally] {
    for (int i = 0; i < depth; ++i)
      if (lock.call("acquire") != Value(true)) return 1;
    ready.send('h');
    if (exit_normally) return 0;
    return stay();
  });
}

// After an acquire that reported OwnerDied: the caller owns `lock` at depth 1 — other clients
// cannot take it, one release frees it, a second is AssertionError — and from then on it works
// as before, without a second report.
void expect_owned_at_depth_one_then_normal(mp::Proxy& lock) {
  std::thread([&] { EXPECT_EQ(lock.call("acquire", {false}), Value(false)); }).join();
  EXPECT_EQ(lock.call("release"), Value());
  expect_kind<mp::AssertionError>([&] { lock.call("release"); }, "AssertionError");
  EXPECT_EQ(lock.call("acquire", {false}), Value(true));
  EXPECT_EQ(lock.call("acquire"), Value(true));
  lock.call("release");
  lock.call("release");
  std::thread([&] {
    EXPECT_EQ(lock.call("acquire", {false}), Value(true));
    lock.call("release");
  }).join();
  Child child([&] {
    if (lock.call("acquire", {true, 5.0}) != Value(true)) return 1;
    lock.call("release");
    return 0;
  });
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(lock.call("acquire"), Value(true));
  lock.call("release");
}

// [rlock.kill.owner_died] [rlock.kill.holder]: the owner (depth 2) is killed; the next
// non-blocking acquire raises OwnerDied and takes the lock at depth 1.
TEST_F(MpTypeids, RLockOwnerKilledNonBlockingAcquireReportsOwnerDied) {
  mp::Proxy r = m.create("mp.RLock");
  Pipe ready;
  auto owner = owner_child(r, 2, ready);
  ASSERT_TRUE(ready.receive());
  EXPECT_EQ(r.call("acquire", {false}), Value(false));  // a live owner keeps it
  ASSERT_TRUE(owner->kill_and_reap());
  expect_kind<mp::OwnerDied>([&] { r.call("acquire", {false}); }, "OwnerDied");
  expect_owned_at_depth_one_then_normal(r);
}

// [rlock.kill.owner_died]: the same with a blocking acquire made after the owner's death.
TEST_F(MpTypeids, RLockOwnerKilledBlockingAcquireReportsOwnerDied) {
  mp::Proxy r = m.create("mp.RLock");
  Pipe ready;
  auto owner = owner_child(r, 2, ready);
  ASSERT_TRUE(ready.receive());
  ASSERT_TRUE(owner->kill_and_reap());
  const auto start = Clock::now();
  expect_kind<mp::OwnerDied>([&] { r.call("acquire"); }, "OwnerDied");
  EXPECT_LT(seconds_since(start), kPrompt);
  expect_owned_at_depth_one_then_normal(r);
}

// [rlock.kill.owner_died] [rlock.acquire.blocks]: a blocking (timed) acquire that is already
// waiting when the owner is killed raises OwnerDied instead of waiting for its timeout.
TEST_F(MpTypeids, RLockAcquireBlockedWhenOwnerKilledReportsOwnerDied) {
  mp::Proxy r = m.create("mp.RLock");
  Pipe ready;
  auto owner = owner_child(r, 2, ready);
  ASSERT_TRUE(ready.receive());
  std::thread killer([&] {
    std::this_thread::sleep_for(3 * kStaysBlocked);  // let the acquire below block
    EXPECT_TRUE(owner->kill_and_reap());
  });
  const auto start = Clock::now();
  expect_kind<mp::OwnerDied>([&] { r.call("acquire", {true, kLongTimeout}); }, "OwnerDied");
  EXPECT_LT(seconds_since(start), kPrompt + 1);
  killer.join();
  expect_owned_at_depth_one_then_normal(r);
}

// [rlock.kill.owner_died]: an owner that ends normally (_exit) while owning: its connection
// closes, which counts as its death.
TEST_F(MpTypeids, RLockOwnerExitedReportsOwnerDied) {
  mp::Proxy r = m.create("mp.RLock");
  Pipe ready;
  auto owner = owner_child(r, 2, ready, /*exit_normally=*/true);
  ASSERT_TRUE(ready.receive());
  EXPECT_EQ(owner->exit_code(), 0);
  expect_kind<mp::OwnerDied>([&] { r.call("acquire", {false}); }, "OwnerDied");
  expect_owned_at_depth_one_then_normal(r);
}

// [manager.sync.semantics] [rlock.kill.holder]: the built-in "RLock" keeps CPython's behaviour:
// a killed owner's lock stays held for ever, without OwnerDied.
TEST_F(MpTypeids, BuiltinRLockOwnerKilledStaysHeld) {
  mp::Proxy r = m.create("RLock");
  Pipe ready;
  auto owner = owner_child(r, 2, ready);
  ASSERT_TRUE(ready.receive());
  ASSERT_TRUE(owner->kill_and_reap());
  std::this_thread::sleep_for(3 * kStaysBlocked);  // the server has noticed the death
  EXPECT_EQ(r.call("acquire", {false}), Value(false));
  EXPECT_EQ(r.call("acquire", {true, 0.1}), Value(false));
  expect_kind<mp::RuntimeError>([&] { r.call("release"); }, "RuntimeError");
  mp::Proxy c = m.create("Condition");
  auto cowner = owner_child(c, 1, ready);
  ASSERT_TRUE(ready.receive());
  ASSERT_TRUE(cowner->kill_and_reap());
  std::this_thread::sleep_for(3 * kStaysBlocked);
  EXPECT_EQ(c.call("acquire", {false}), Value(false));
}

// [rlock.kill.owner_died] for an mp.Condition's own lock: non-blocking acquire after the death.
TEST_F(MpTypeids, ConditionOwnerKilledNonBlockingAcquireReportsOwnerDied) {
  mp::Proxy c = m.create("mp.Condition");
  Pipe ready;
  auto owner = owner_child(c, 2, ready);
  ASSERT_TRUE(ready.receive());
  EXPECT_EQ(c.call("acquire", {false}), Value(false));
  ASSERT_TRUE(owner->kill_and_reap());
  expect_kind<mp::OwnerDied>([&] { c.call("acquire", {false}); }, "OwnerDied");
  // The caller owns the lock: wait and notify are allowed.
  EXPECT_EQ(c.call("wait", {0}), Value(false));
  c.call("notify_all");
  expect_owned_at_depth_one_then_normal(c);
}

// [rlock.kill.owner_died] for an mp.Condition's lock: a blocking acquire, made after the death
// and made before it.
TEST_F(MpTypeids, ConditionOwnerKilledBlockingAcquireReportsOwnerDied) {
  mp::Proxy c = m.create("mp.Condition");
  Pipe ready;
  {
    auto owner = owner_child(c, 1, ready);
    ASSERT_TRUE(ready.receive());
    ASSERT_TRUE(owner->kill_and_reap());
    expect_kind<mp::OwnerDied>([&] { c.call("acquire"); }, "OwnerDied");
    expect_owned_at_depth_one_then_normal(c);
  }
  auto owner = owner_child(c, 2, ready);
  ASSERT_TRUE(ready.receive());
  std::thread killer([&] {
    std::this_thread::sleep_for(3 * kStaysBlocked);
    EXPECT_TRUE(owner->kill_and_reap());
  });
  expect_kind<mp::OwnerDied>([&] { c.call("acquire", {true, kLongTimeout}); }, "OwnerDied");
  killer.join();
  expect_owned_at_depth_one_then_normal(c);
}

// [rlock.kill.owner_died] through Condition.wait: the waiter is notified by a client that is
// then killed while holding the lock; the wait takes the lock back from the dead owner (at the
// waiter's depth) and raises OwnerDied.
TEST_F(MpTypeids, ConditionWaitTakesLockFromKilledNotifier) {
  mp::Proxy c = m.create("mp.Condition");
  Pipe ready;
  c.call("acquire");
  Child notifier([&] {
    c.call("acquire");  // gets it once the parent waits
    c.call("acquire");
    c.call("notify");
    ready.send('n');
    return stay();
  });
  std::thread killer([&] {
    if (!ready.receive()) return;
    std::this_thread::sleep_for(3 * kStaysBlocked);  // the wait is taking the lock back
    EXPECT_TRUE(notifier.kill_and_reap());
  });
  expect_kind<mp::OwnerDied>([&] { c.call("wait", {kLongTimeout}); }, "OwnerDied");
  killer.join();
  c.call("notify");  // owned again
  expect_owned_at_depth_one_then_normal(c);
}

// [rlock.kill.owner_died] over TCP: the server sees a killed client's connection close there
// too.
TEST(MpTypeidsTcp, RLockOwnerKilledReportsOwnerDied) {
  mp::Manager m(mp::Address::inet("127.0.0.1", 0), std::string("mp typeids tcp"));
  m.start();
  mp::Proxy r = m.create("mp.RLock");
  Pipe ready;
  auto owner = owner_child(r, 3, ready);
  ASSERT_TRUE(ready.receive());
  EXPECT_EQ(r.call("acquire", {false}), Value(false));
  ASSERT_TRUE(owner->kill_and_reap());
  expect_kind<mp::OwnerDied>([&] { r.call("acquire", {true, kLongTimeout}); }, "OwnerDied");
  expect_owned_at_depth_one_then_normal(r);
}

// [lock.kill.holder] [lock.kill.release_by_survivor] [semaphore.kill.holder]: mp.Lock and
// mp.Semaphore have no owner: what a killed process took stays taken (no OwnerDied), and a
// survivor may release in its place.
TEST_F(MpTypeids, LockAndSemaphoreKilledHolderKeepTheirUnits) {
  mp::Proxy lock = m.create("mp.Lock");
  mp::Proxy s = m.create("mp.Semaphore", {2});
  Pipe ready;
  Child holder([&] {
    if (lock.call("acquire") != Value(true) || s.call("acquire") != Value(true)) return 1;
    ready.send('h');
    return stay();
  });
  ASSERT_TRUE(ready.receive());
  ASSERT_TRUE(holder.kill_and_reap());
  std::this_thread::sleep_for(3 * kStaysBlocked);  // the server has noticed the death
  EXPECT_EQ(lock.call("acquire", {false}), Value(false));
  EXPECT_EQ(lock.call("acquire", {true, 0.1}), Value(false));
  EXPECT_EQ(s.call("get_value"), Value(1));
  lock.call("release");  // in the dead holder's place
  EXPECT_EQ(lock.call("acquire", {false}), Value(true));
  lock.call("release");
  s.call("release");
  EXPECT_EQ(s.call("get_value"), Value(2));
}

// ---- 3. Killed waiters ----

// A child that waits on `c` for a notify: takes the lock, says 'w' while still holding it (so
// that the parent's next acquire succeeds only once the child is inside wait), waits up to
// 15 s, and ends with 0 if it was notified.
std::unique_ptr<Child> waiter_child(mp::Proxy& c, Pipe& ready) {
  return std::make_unique<Child>([&c, &ready] {
    if (c.call("acquire") != Value(true)) return 2;
    ready.send('w');
    const Value notified = c.call("wait", {15.0});
    c.call("release");
    return notified == Value(true) ? 0 : 1;
  });
}

// Starts a waiter and returns once it is waiting (its wait has released the lock).
std::unique_ptr<Child> waiting_child(mp::Proxy& c, Pipe& ready) {
  auto w = waiter_child(c, ready);
  EXPECT_TRUE(ready.receive());
  EXPECT_EQ(c.call("acquire", {true, 10.0}), Value(true));
  c.call("release");
  return w;
}

// [condition.kill.waiter] [condition.notify.no_lost_wakeup]: of two waiters, the first (the
// one a notify(1) would choose) is killed; notify(1) wakes the survivor. Several rounds.
TEST_F(MpTypeids, ConditionKilledWaiterTakesNoNotify) {
  mp::Proxy c = m.create("mp.Condition");
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE(round);
    Pipe ready;
    auto first = waiting_child(c, ready);
    auto second = waiting_child(c, ready);
    ASSERT_EQ(c.call("acquire", {true, 10.0}), Value(true));  // both are waiting
    ASSERT_TRUE(first->kill_and_reap());
    if (round % 2 == 1) std::this_thread::sleep_for(3 * kStaysBlocked);  // the server noticed
    const auto start = Clock::now();
    c.call("notify", {1});
    c.call("release");
    EXPECT_EQ(second->exit_code(), 0);  // notified, within the liveness bound
    EXPECT_LT(seconds_since(start), kPrompt + 1);
  }
}

// [condition.kill.waiter] [condition.notify.none_waiting]: notify and notify_all with only dead
// waiters return promptly, and leave nothing behind for a later waiter.
TEST_F(MpTypeids, ConditionNotifyWithOnlyDeadWaitersReturns) {
  mp::Proxy c = m.create("mp.Condition");
  Pipe ready;
  auto a = waiting_child(c, ready);
  auto b = waiting_child(c, ready);
  auto d = waiting_child(c, ready);
  ASSERT_EQ(c.call("acquire", {true, 10.0}), Value(true));
  ASSERT_TRUE(a->kill_and_reap());
  ASSERT_TRUE(b->kill_and_reap());
  ASSERT_TRUE(d->kill_and_reap());
  const auto start = Clock::now();
  c.call("notify_all");
  c.call("notify", {1});
  c.call("release");
  EXPECT_LT(seconds_since(start), kPrompt);
  // A new waiter gets the next notify.
  auto e = waiting_child(c, ready);
  c.call("acquire");
  c.call("notify");
  c.call("release");
  EXPECT_EQ(e->exit_code(), 0);
}

// [semaphore.kill.waiter]: a process killed while blocked in mp.Semaphore.acquire takes nothing:
// the next release's unit goes to a live acquirer (a blocked child, then the parent).
TEST_F(MpTypeids, SemaphoreKilledWaiterTakesNoUnit) {
  mp::Proxy s = m.create("mp.Semaphore", {0});
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    Pipe ready;
    Child doomed([&] {
      ready.send('a');
      s.call("acquire");
      return 0;
    });
    ASSERT_TRUE(ready.receive());
    Child live([&] {
      ready.send('a');
      return s.call("acquire", {true, 15.0}) == Value(true) ? 0 : 1;
    });
    ASSERT_TRUE(ready.receive());
    EXPECT_TRUE(doomed.still_running_after(3 * kStaysBlocked));  // both blocked in the server
    ASSERT_TRUE(doomed.kill_and_reap());
    s.call("release");
    EXPECT_EQ(live.exit_code(), 0);
    EXPECT_EQ(s.call("get_value"), Value(0));

    // Only a dead waiter: the unit stays for the parent.
    Child doomed2([&] {
      ready.send('a');
      s.call("acquire");
      return 0;
    });
    ASSERT_TRUE(ready.receive());
    EXPECT_TRUE(doomed2.still_running_after(3 * kStaysBlocked));
    ASSERT_TRUE(doomed2.kill_and_reap());
    s.call("release");
    if (round % 2 == 1) {
      std::this_thread::sleep_for(3 * kStaysBlocked);  // the dead waiter's thread has woken
      EXPECT_EQ(s.call("get_value"), Value(1));
    }
    EXPECT_EQ(s.call("acquire", {true, 5.0}), Value(true));
    EXPECT_EQ(s.call("get_value"), Value(0));
  }
}

// [lock.kill.waiter] [queue.kill.get]: the same for mp.Lock and mp.Queue.
TEST_F(MpTypeids, LockAndQueueKilledWaiterTakeNothing) {
  mp::Proxy lock = m.create("mp.Lock");
  mp::Proxy q = m.create("mp.Queue");
  lock.call("acquire");
  Pipe ready;
  Child doomed([&] {
    ready.send('a');
    lock.call("acquire");
    return 0;
  });
  Child getter([&] {
    ready.send('g');
    q.call("get");
    return 0;
  });
  ASSERT_TRUE(ready.receive());
  ASSERT_TRUE(ready.receive());
  EXPECT_TRUE(doomed.still_running_after(3 * kStaysBlocked));
  ASSERT_TRUE(doomed.kill_and_reap());
  ASSERT_TRUE(getter.kill_and_reap());
  lock.call("release");
  q.call("put", {"item"});
  EXPECT_EQ(lock.call("acquire", {true, 5.0}), Value(true));
  EXPECT_EQ(q.call("get", {true, 5.0}), Value("item"));
  lock.call("release");
}

// ---- 4. Thread ending ----

// [rlock.kill.owner_died] with a thread: a thread of this process that owns an mp.RLock and
// ends closes its connection; the next acquire from another thread reports OwnerDied.
TEST_F(MpTypeids, RLockOwnerThreadEndedReportsOwnerDied) {
  mp::Proxy r = m.create("mp.RLock");
  r.call("acquire");  // this thread's connection exists
  r.call("release");
  std::thread([&] {
    EXPECT_EQ(r.call("acquire"), Value(true));
    EXPECT_EQ(r.call("acquire"), Value(true));
  }).join();
  std::thread([&] {
    expect_kind<mp::OwnerDied>([&] { r.call("acquire", {false}); }, "OwnerDied");
    r.call("release");
    expect_kind<mp::AssertionError>([&] { r.call("release"); }, "AssertionError");
  }).join();
  EXPECT_EQ(r.call("acquire", {false}), Value(true));  // no second report
  r.call("release");

  // A blocked acquire from this thread while the owner thread ends.
  Pipe ready;
  std::thread owner([&] {
    r.call("acquire");
    ready.send('h');
    std::this_thread::sleep_for(3 * kStaysBlocked);
  });
  ASSERT_TRUE(ready.receive());
  expect_kind<mp::OwnerDied>([&] { r.call("acquire", {true, kLongTimeout}); }, "OwnerDied");
  owner.join();
  expect_owned_at_depth_one_then_normal(r);
}

// The same for an mp.Condition's lock.
TEST_F(MpTypeids, ConditionOwnerThreadEndedReportsOwnerDied) {
  mp::Proxy c = m.create("mp.Condition");
  std::thread([&] { EXPECT_EQ(c.call("acquire"), Value(true)); }).join();
  expect_kind<mp::OwnerDied>([&] { c.call("acquire"); }, "OwnerDied");
  EXPECT_EQ(c.call("wait", {0}), Value(false));
  expect_owned_at_depth_one_then_normal(c);
}

// ---- Forked copies of a connection do not hide its owner's death ----

// [rlock.kill.owner_died]: the owner's thread ends while a process forked after it connected
// lives. Fork copies every descriptor, the owner thread's connection included; libmp closes
// those copies in the child at once (manager.cpp, atfork_child), so the server sees the
// connection close and the next acquire raises OwnerDied although the child still runs.
TEST_F(MpTypeids, RLockOwnerThreadEndedWhileAForkedChildLives) {
  mp::Proxy r = m.create("mp.RLock");
  r.call("acquire");
  r.call("release");
  Pipe ready, go;
  std::unique_ptr<Child> bystander;
  std::thread owner([&] {
    r.call("acquire");
    ready.send('h');
    go.receive();
  });
  ASSERT_TRUE(ready.receive());
  bystander = std::make_unique<Child>([] { return stay(); });  // forked while `owner` is connected
  go.send('g');
  owner.join();
  EXPECT_TRUE(bystander->still_running_after(kStaysBlocked));
  expect_kind<mp::OwnerDied>([&] { r.call("acquire", {false}); }, "OwnerDied");
  ASSERT_TRUE(bystander->kill_and_reap());
}

// [rlock.kill.owner_died]: the owner process is killed while a child it forked (one that never
// uses the manager) lives: as above, the grandchild's copy of the owner's connection is closed
// at fork, so the owner's death is seen.
TEST_F(MpTypeids, RLockOwnerKilledWhileItsForkedChildLives) {
  mp::Proxy r = m.create("mp.RLock");
  // The grandchild is re-parented to this process when its parent dies, so it can be reaped.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int pid_pipe[2];
  ASSERT_EQ(::pipe(pid_pipe), 0);
  Pipe ready;
  auto owner = std::make_unique<Child>([&] {
    if (r.call("acquire") != Value(true)) return 1;
    const pid_t g = ::fork();
    if (g == 0) {
      ::alarm(20);
      stay();
    }
    if (::write(pid_pipe[1], &g, sizeof g) != sizeof g) return 2;
    ready.send('h');
    return stay();
  });
  pid_t grandchild = -1;
  ASSERT_TRUE(ready.receive());
  ASSERT_EQ(::read(pid_pipe[0], &grandchild, sizeof grandchild),
            static_cast<ssize_t>(sizeof grandchild));
  ::close(pid_pipe[0]);
  ::close(pid_pipe[1]);
  ASSERT_TRUE(owner->kill_and_reap());
  expect_kind<mp::OwnerDied>([&] { r.call("acquire", {false}); }, "OwnerDied");
  ::kill(grandchild, SIGKILL);
  int status;
  while (::waitpid(grandchild, &status, 0) < 0 && errno == EINTR) {
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

}  // namespace

int main(int argc, char** argv) {
  mp::spawn_main(argc, argv);  // runs the task and exits in a spawned child
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
