// Scenario tests for spec/sync/lock.md. Each test names the clauses it checks; every test
// also judges its whole history against the Lock model ([lock.acquire.exclusive]).
//
// Timing policy (spec/README.md): "is blocked" is shown by a positive handshake (the holder
// is known to hold the lock) plus a `small` grace period; "times out" asserts only the lower
// bound; "is woken" waits with the liveness bound `huge`.
#include <gtest/gtest.h>

#include "scenario.hpp"

namespace mpspec {
namespace {

using timing::huge;
using timing::kClockResolution;
using timing::small;

Json acquire_args(bool block, Json timeout = nullptr) {
  return Json{{"block", block}, {"timeout", std::move(timeout)}};
}
const Json kTry = Json{{"block", false}};

void expect_linearizable(Scenario& s) {
  auto r = s.check();
  if (r.verdict == check::Verdict::kUnknown)
    GTEST_SKIP() << "UNRESOLVED: the checker ran out of budget:\n" << r.summary();
  EXPECT_EQ(r.verdict, check::Verdict::kLinearizable)
      << "[lock.acquire.exclusive] history is not linearizable:\n"
      << r.summary();
}

// Scenario with one Lock "L" and the given single-threaded actors.
void lock_scenario(Scenario& s, std::initializer_list<const char*> actors) {
  s.object("L", "Lock").needs_method("Lock", "acquire").needs_method("Lock", "release");
  for (const char* a : actors) s.actor(a);
}

TEST(Lock, ConstructUnlocked) {
  MPSPEC_CLAUSES("[lock.construct.unlocked] [lock.acquire.nonblocking]");
  Scenario s;
  lock_scenario(s, {"a"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(true));
  expect_linearizable(s);
}

TEST(Lock, AcquireFreeReturnsTrue) {
  MPSPEC_CLAUSES("[lock.acquire.free] [lock.release.held]");
  Scenario s;
  lock_scenario(s, {"a"});
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  const Json variants[] = {Json::object(), acquire_args(true), acquire_args(true, small()),
                           acquire_args(true, huge()), kTry, acquire_args(true, 0)};
  for (const auto& args : variants) {
    const auto& r = s.await(s.call("a", "L", "acquire", args));
    EXPECT_TRUE(r.ok(true)) << "acquire(" << args.dump() << ") on a free lock: " << r;
    EXPECT_TRUE(s.await(s.call("a", "L", "release")).ok(nullptr));
  }
  expect_linearizable(s);
}

TEST(Lock, BlockingAcquireWaitsForRelease) {
  MPSPEC_CLAUSES("[lock.acquire.blocks] [lock.acquire.wakes] [lock.release.other_process]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  const CallId waiter = s.call("b", "L", "acquire");
  ASSERT_FALSE(s.returns_within(waiter, small()))
      << "acquire returned while another process held the lock: " << s.result(waiter);
  const CallId release = s.call("a", "L", "release");
  EXPECT_TRUE(s.await(release).ok(nullptr));
  const auto& r = s.await(waiter);
  EXPECT_TRUE(r.ok(true)) << r;
  EXPECT_GE(r.return_ns, s.result(release).invoke_ns)
      << "the waiter returned before the release began";
  expect_linearizable(s);
}

TEST(Lock, NonBlockingOnHeldReturnsFalse) {
  MPSPEC_CLAUSES("[lock.acquire.nonblocking]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(false))
      << "acquire(block=False) on a held lock must return False";
  ASSERT_TRUE(s.await(s.call("a", "L", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(true));
  expect_linearizable(s);
}

TEST(Lock, NonBlockingIgnoresTimeout) {
  MPSPEC_CLAUSES("[lock.acquire.nonblocking.timeout_ignored]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  // A timeout ten times the liveness bound: honouring it would trip the watchdog.
  const auto& r = s.await(s.call("b", "L", "acquire", acquire_args(false, 10 * huge())));
  EXPECT_TRUE(r.ok(false)) << r;
  expect_linearizable(s);
}

TEST(Lock, TimedAcquireExpires) {
  MPSPEC_CLAUSES("[lock.acquire.timeout.expires]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  const double timeout = small();
  const auto& r = s.await(s.call("b", "L", "acquire", acquire_args(true, timeout)));
  EXPECT_TRUE(r.ok(false)) << r;
  EXPECT_GE(r.elapsed(), timeout - kClockResolution) << "timed acquire gave up early: " << r;
  expect_linearizable(s);
}

TEST(Lock, TimedAcquireSucceedsWhenReleased) {
  MPSPEC_CLAUSES("[lock.acquire.timeout.success] [lock.acquire.wakes]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  const CallId waiter = s.call("b", "L", "acquire", acquire_args(true, huge()));
  ASSERT_FALSE(s.returns_within(waiter, small())) << s.result(waiter);
  ASSERT_TRUE(s.await(s.call("a", "L", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(waiter).ok(true)) << s.result(waiter);
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(false)) << "b should hold it";
  expect_linearizable(s);
}

TEST(Lock, TimeoutZero) {
  MPSPEC_CLAUSES("[lock.acquire.timeout.zero]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", acquire_args(true, 0))).ok(true));
  ASSERT_TRUE(s.await(s.call("b", "L", "release")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", acquire_args(true, 0))).ok(false));
  expect_linearizable(s);
}

TEST(Lock, TimeoutNegative) {
  MPSPEC_CLAUSES("[lock.acquire.timeout.negative]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", acquire_args(true, -1))).ok(true));
  ASSERT_TRUE(s.await(s.call("b", "L", "release")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", acquire_args(true, -1))).ok(false));
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", acquire_args(true, -0.5))).ok(false));
  expect_linearizable(s);
}

TEST(Lock, TimeoutNoneWaits) {
  MPSPEC_CLAUSES("[lock.acquire.timeout.none] [lock.acquire.blocks]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  const CallId waiter = s.call("b", "L", "acquire", acquire_args(true, nullptr));
  ASSERT_FALSE(s.returns_within(waiter, small())) << s.result(waiter);
  ASSERT_TRUE(s.await(s.call("a", "L", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(waiter).ok(true)) << s.result(waiter);
  expect_linearizable(s);
}

TEST(Lock, NotReentrant) {
  MPSPEC_CLAUSES("[lock.acquire.not_reentrant]");
  Scenario s;
  lock_scenario(s, {"a"});
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(false))
      << "a Lock must not be recursive";
  const auto& r = s.await(s.call("a", "L", "acquire", acquire_args(true, small())));
  EXPECT_TRUE(r.ok(false)) << r;
  expect_linearizable(s);
}

TEST(Lock, ReleaseHeld) {
  MPSPEC_CLAUSES("[lock.release.held]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  const auto& r = s.await(s.call("a", "L", "release"));
  EXPECT_TRUE(r.ok(nullptr)) << "release returns None: " << r;
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(true)) << "released lock not free";
  expect_linearizable(s);
}

TEST(Lock, ReleaseUnheldRaisesValueError) {
  MPSPEC_CLAUSES("[lock.release.unheld]");
  Scenario s;
  lock_scenario(s, {"a"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  const auto& r = s.await(s.call("a", "L", "release"));
  EXPECT_TRUE(r.raised("ValueError")) << "release of a free lock: " << r;
  // The failed release left the lock free with a single unit.
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(false))
      << "release of a free lock added a unit";
  EXPECT_TRUE(s.await(s.call("a", "L", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "L", "release")).raised("ValueError"));
  expect_linearizable(s);
}

TEST(Lock, ReleaseByOtherThread) {
  MPSPEC_CLAUSES("[lock.release.other_thread]");
  Scenario s;
  s.object("L", "Lock").actor("a", 2);
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire", Json::object(), 0)).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "L", "release", Json::object(), 1)).ok(nullptr))
      << "another thread may release a Lock";
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry, 1)).ok(true));
  expect_linearizable(s);
}

TEST(Lock, ReleaseByOtherProcess) {
  MPSPEC_CLAUSES("[lock.release.other_process]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "L", "release")).ok(nullptr))
      << "another process may release a Lock";
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(false));
  expect_linearizable(s);
}

TEST(Lock, ConcurrentReleaseExactlyOne) {
  MPSPEC_CLAUSES("[lock.release.concurrent]");
  Scenario s;
  lock_scenario(s, {"a", "b", "c"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  constexpr int kRounds = 60;
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
    const CallId r1 = s.call("b", "L", "release");
    const CallId r2 = s.call("c", "L", "release");
    const auto& x = s.await(r1);
    const auto& y = s.await(r2);
    const int successes = int{x.ok(nullptr)} + int{y.ok(nullptr)};
    ASSERT_EQ(successes, 1) << "round " << round << ": " << x << "; " << y;
    ASSERT_TRUE(x.ok(nullptr) || x.raised("ValueError")) << x;
    ASSERT_TRUE(y.ok(nullptr) || y.raised("ValueError")) << y;
    // One unit, not two.
    ASSERT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(true));
    ASSERT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(false))
        << "round " << round << ": two concurrent releases left two units";
    ASSERT_TRUE(s.await(s.call("a", "L", "release")).ok(nullptr));
  }
  expect_linearizable(s);
}

TEST(Lock, ContextEnterExit) {
  MPSPEC_CLAUSES("[lock.context.enter] [lock.context.exit]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  s.needs_method("Lock", "__enter__").needs_method("Lock", "__exit__").needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "L", "__enter__")).ok(true)) << "entering yields True";
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(false)) << "inside the scope";
  const CallId waiter = s.call("b", "L", "__enter__");
  ASSERT_FALSE(s.returns_within(waiter, small())) << "entering blocks while held";
  EXPECT_TRUE(s.await(s.call("a", "L", "__exit__")).ok(nullptr));
  EXPECT_TRUE(s.await(waiter).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "L", "__exit__")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(true)) << "exit released the lock";
  expect_linearizable(s);
}

TEST(Lock, SharedAcrossProcesses) {
  MPSPEC_CLAUSES("[lock.process.shared]");
  Scenario s;
  lock_scenario(s, {"a", "b", "c"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("c", "L", "acquire", kTry)).ok(false));
  ASSERT_TRUE(s.await(s.call("a", "L", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("c", "L", "acquire", kTry)).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(false));
  expect_linearizable(s);
}

TEST(Lock, InheritHeld) {
  MPSPEC_CLAUSES("[lock.process.inherit_held] [lock.release.other_process]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  s.prelude("L", "acquire").needs_feature("nonblocking");
  MPSPEC_START(s);
  // The parent acquired L before starting the actors: they see it held.
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("a", "L", "release")).ok(nullptr))
      << "a child may release a lock its parent held";
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(true));
  // The history starts with L held: the model's initial state is "free", so the checker
  // is not applied here; the assertions above are the whole judgement.
}

TEST(Lock, KilledHolderKeepsLock) {
  MPSPEC_CLAUSES("[lock.kill.holder]");
  Scenario s;
  lock_scenario(s, {"a", "b"});
  s.needs_feature("kill").needs_feature("timeout").needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  s.kill("a");
  const double timeout = small();
  const auto& r = s.await(s.call("b", "L", "acquire", acquire_args(true, timeout)));
  EXPECT_TRUE(r.ok(false)) << "a killed holder's lock must stay held: " << r;
  EXPECT_GE(r.elapsed(), timeout - kClockResolution) << r;
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(false));
  expect_linearizable(s);
}

TEST(Lock, SurvivorReleasesAfterKill) {
  MPSPEC_CLAUSES("[lock.kill.release_by_survivor]");
  Scenario s;
  lock_scenario(s, {"a", "b", "c"});
  s.needs_feature("kill").needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  s.kill("a");
  EXPECT_TRUE(s.await(s.call("b", "L", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("c", "L", "acquire", kTry)).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(false));
  expect_linearizable(s);
}

TEST(Lock, KilledWaiterDoesNotDisturb) {
  MPSPEC_CLAUSES("[lock.kill.waiter] [lock.acquire.wakes]");
  Scenario s;
  lock_scenario(s, {"a", "b", "c"});
  s.needs_feature("kill").needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  const CallId doomed = s.call("b", "L", "acquire");
  const CallId survivor = s.call("c", "L", "acquire");
  ASSERT_FALSE(s.returns_within(doomed, small())) << s.result(doomed);
  ASSERT_FALSE(s.returned(survivor)) << s.result(survivor);
  s.kill("b");
  EXPECT_EQ(s.result(doomed).status, OpStatus::kInfo) << s.result(doomed);
  ASSERT_TRUE(s.await(s.call("a", "L", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(survivor).ok(true)) << "the surviving waiter must be woken";
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(false)) << "c holds the lock";
  expect_linearizable(s);
}

}  // namespace
}  // namespace mpspec
