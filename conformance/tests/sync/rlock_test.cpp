// Scenario tests for spec/sync/rlock.md. Each test names the clauses it checks; most also judge
// their whole history against the RLock model ([rlock.acquire.exclusive]).
//
// Timing policy (spec/README.md): "is blocked" is a positive handshake (the owner is known to
// own the lock) plus a `small` grace period; "times out" asserts only the lower bound; "is
// woken" waits with the liveness bound `huge`.
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
      << "[rlock.acquire.exclusive] history is not linearizable:\n"
      << r.summary();
}

// Scenario with one RLock "R" and the given single-threaded actors.
void rlock_scenario(Scenario& s, std::initializer_list<const char*> actors) {
  s.object("R", "RLock").needs_method("RLock", "acquire").needs_method("RLock", "release");
  for (const char* a : actors) s.actor(a);
}

TEST(RLock, ConstructUnlocked) {
  MPSPEC_CLAUSES("[rlock.construct.unlocked] [rlock.acquire.nonblocking]");
  Scenario s;
  rlock_scenario(s, {"a"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire", kTry)).ok(true));
  expect_linearizable(s);
}

TEST(RLock, AcquireFreeReturnsTrue) {
  MPSPEC_CLAUSES("[rlock.acquire.free] [rlock.release.owner]");
  Scenario s;
  rlock_scenario(s, {"a"});
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  const Json variants[] = {
      Json::object(), acquire_args(true),   acquire_args(true, small()), acquire_args(true, huge()),
      kTry,           acquire_args(true, 0)};
  for (const auto& args : variants) {
    const auto& r = s.await(s.call("a", "R", "acquire", args));
    EXPECT_TRUE(r.ok(true)) << "acquire(" << args.dump() << ") on a free RLock: " << r;
    EXPECT_TRUE(s.await(s.call("a", "R", "release")).ok(nullptr));
  }
  expect_linearizable(s);
}

TEST(RLock, OwnerReacquiresWithoutBlocking) {
  MPSPEC_CLAUSES("[rlock.acquire.recursive]");
  Scenario s;
  rlock_scenario(s, {"a"});
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  // Every form succeeds at once for the owner; an untimed one within the liveness bound.
  const Json variants[] = {kTry, acquire_args(true, 0), acquire_args(true, -1),
                           acquire_args(true, small()), Json::object()};
  for (const auto& args : variants) {
    const auto& r = s.await(s.call("a", "R", "acquire", args));
    EXPECT_TRUE(r.ok(true)) << "the owner's acquire(" << args.dump() << "): " << r;
  }
  for (std::size_t i = 0; i <= std::size(variants); ++i)
    EXPECT_TRUE(s.await(s.call("a", "R", "release")).ok(nullptr)) << "release #" << i;
  expect_linearizable(s);
}

TEST(RLock, HeldUntilEveryLevelReleased) {
  MPSPEC_CLAUSES("[rlock.release.depth] [rlock.release.unowned]");
  Scenario s;
  rlock_scenario(s, {"a", "b"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  constexpr int kDepth = 3;
  for (int i = 0; i < kDepth; ++i) ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  for (int i = 0; i < kDepth; ++i) {
    EXPECT_TRUE(s.await(s.call("b", "R", "acquire", kTry)).ok(false))
        << "b took the RLock while a still held " << kDepth - i << " level(s)";
    ASSERT_TRUE(s.await(s.call("a", "R", "release")).ok(nullptr));
  }
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire", kTry)).ok(true))
      << "the RLock must be free after as many releases as acquires";
  ASSERT_TRUE(s.await(s.call("b", "R", "release")).ok(nullptr));
  // One release more than acquires: the lock is free, and releasing it raises.
  EXPECT_TRUE(s.await(s.call("a", "R", "release")).raised("AssertionError"));
  expect_linearizable(s);
}

TEST(RLock, ReleaseUnownedRaisesAssertionError) {
  MPSPEC_CLAUSES("[rlock.release.unowned]");
  Scenario s;
  rlock_scenario(s, {"a"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  const auto& r = s.await(s.call("a", "R", "release"));
  EXPECT_TRUE(r.raised("AssertionError")) << "release of a free RLock: " << r;
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire", kTry)).ok(true)) << "still free";
  expect_linearizable(s);
}

TEST(RLock, BlockingAcquireWaitsForLastRelease) {
  MPSPEC_CLAUSES("[rlock.acquire.blocks] [rlock.acquire.wakes] [rlock.release.depth]");
  Scenario s;
  rlock_scenario(s, {"a", "b"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  const CallId waiter = s.call("b", "R", "acquire");
  ASSERT_FALSE(s.returns_within(waiter, small()))
      << "acquire returned while another process owned the RLock: " << s.result(waiter);
  ASSERT_TRUE(s.await(s.call("a", "R", "release")).ok(nullptr));
  EXPECT_FALSE(s.returns_within(waiter, small()))
      << "acquire returned while the owner still held one level: " << s.result(waiter);
  const CallId last = s.call("a", "R", "release");
  EXPECT_TRUE(s.await(last).ok(nullptr));
  const auto& r = s.await(waiter);
  EXPECT_TRUE(r.ok(true)) << r;
  EXPECT_GE(r.return_ns, s.result(last).invoke_ns) << "the waiter returned before the release";
  expect_linearizable(s);
}

TEST(RLock, NonBlockingOnOwnedByOtherReturnsFalse) {
  MPSPEC_CLAUSES(
      "[rlock.acquire.nonblocking] [rlock.acquire.timeout.zero] [rlock.acquire.timeout.negative]");
  Scenario s;
  rlock_scenario(s, {"a", "b"});
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  const Json variants[] = {kTry, acquire_args(false, 10 * huge()), acquire_args(true, 0),
                           acquire_args(true, -1)};
  for (const auto& args : variants) {
    const auto& r = s.await(s.call("b", "R", "acquire", args));
    EXPECT_TRUE(r.ok(false)) << "acquire(" << args.dump() << ") on an RLock a owns: " << r;
  }
  ASSERT_TRUE(s.await(s.call("a", "R", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire", kTry)).ok(true));
  expect_linearizable(s);
}

TEST(RLock, TimedAcquireExpires) {
  MPSPEC_CLAUSES("[rlock.acquire.timeout.expires]");
  Scenario s;
  rlock_scenario(s, {"a", "b"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  const double timeout = small();
  const auto& r = s.await(s.call("b", "R", "acquire", acquire_args(true, timeout)));
  EXPECT_TRUE(r.ok(false)) << r;
  EXPECT_GE(r.elapsed(), timeout - kClockResolution) << "timed acquire gave up early: " << r;
  expect_linearizable(s);
}

TEST(RLock, TimedAcquireSucceedsWhenReleased) {
  MPSPEC_CLAUSES("[rlock.acquire.timeout.success] [rlock.acquire.wakes]");
  Scenario s;
  rlock_scenario(s, {"a", "b"});
  s.needs_feature("timeout").needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  const CallId waiter = s.call("b", "R", "acquire", acquire_args(true, huge()));
  ASSERT_FALSE(s.returns_within(waiter, small())) << s.result(waiter);
  ASSERT_TRUE(s.await(s.call("a", "R", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(waiter).ok(true)) << s.result(waiter);
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire", kTry)).ok(false)) << "b should own it";
  expect_linearizable(s);
}

TEST(RLock, ReleaseByOtherProcessRaises) {
  MPSPEC_CLAUSES("[rlock.release.other_process]");
  Scenario s;
  rlock_scenario(s, {"a", "b"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  const auto& r = s.await(s.call("b", "R", "release"));
  EXPECT_TRUE(r.raised("AssertionError")) << "release by a process that does not own it: " << r;
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire", kTry)).ok(false))
      << "a failed release must leave the RLock owned by a";
  EXPECT_TRUE(s.await(s.call("a", "R", "release")).ok(nullptr)) << "a still owns it";
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire", kTry)).ok(true));
  expect_linearizable(s);
}

TEST(RLock, OwnedByThreadNotProcess) {
  MPSPEC_CLAUSES("[rlock.owner.thread] [rlock.release.other_thread]");
  Scenario s;
  s.object("R", "RLock").needs_method("RLock", "acquire").needs_method("RLock", "release");
  s.actor("a", 2).needs_feature("threads").needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire", Json::object(), 0)).ok(true));
  // Another thread of the same process neither owns nor may release it.
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire", kTry, 1)).ok(false))
      << "thread 1 took an RLock owned by thread 0 of its process";
  const auto& r = s.await(s.call("a", "R", "release", Json::object(), 1));
  EXPECT_TRUE(r.raised("AssertionError")) << "release by a thread that does not own it: " << r;
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire", kTry, 1)).ok(false)) << "still thread 0's";
  ASSERT_TRUE(s.await(s.call("a", "R", "release", Json::object(), 0)).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire", kTry, 1)).ok(true));
  expect_linearizable(s);
}

TEST(RLock, ChildDoesNotOwnParentsLock) {
  MPSPEC_CLAUSES("[rlock.process.not_inherited]");
  Scenario s;
  rlock_scenario(s, {"a"});
  s.prelude("R", "acquire").needs_feature("nonblocking").needs_feature("prelude");
  MPSPEC_START(s);
  // The parent acquired R before starting the actor: the child sees it owned by someone else.
  const auto& r = s.await(s.call("a", "R", "release"));
  EXPECT_TRUE(r.raised("AssertionError")) << "a child released its parent's RLock: " << r;
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire", kTry)).ok(false))
      << "a child must not own (or take) an RLock its parent holds";
  // The history starts with R owned by the parent, which the model cannot express: the
  // assertions above are the whole judgement.
}

TEST(RLock, ScopedForm) {
  MPSPEC_CLAUSES("[rlock.context.enter] [rlock.context.exit]");
  Scenario s;
  rlock_scenario(s, {"a", "b"});
  s.needs_method("RLock", "__enter__").needs_method("RLock", "__exit__");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "R", "__enter__")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "R", "__enter__")).ok(true)) << "nested with-blocks";
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("a", "R", "__exit__")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire", kTry)).ok(false)) << "one level left";
  EXPECT_TRUE(s.await(s.call("a", "R", "__exit__")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire", kTry)).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "R", "__exit__")).raised("AssertionError"))
      << "__exit__ by a thread that does not own the RLock";
  expect_linearizable(s);
}

TEST(RLock, KilledOwnerNeverSilentlyHandedOver) {
  MPSPEC_CLAUSES("[rlock.kill.holder]");
  Scenario s;
  rlock_scenario(s, {"a", "b"});
  s.needs_feature("kill").needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  s.kill("a");
  const double timeout = small();
  const auto& r = s.await(s.call("b", "R", "acquire", acquire_args(true, timeout)));
  // core: either the lock stays held (False, after the timeout) or the death is reported.
  if (r.ok(false)) {
    EXPECT_GE(r.elapsed(), timeout - kClockResolution) << r;
  } else {
    EXPECT_TRUE(r.raised("OwnerDied"))
        << "an RLock whose owner was killed must stay held or report OwnerDied: " << r;
  }
  expect_linearizable(s);
}

TEST(RLock, KilledOwnerReportedAsOwnerDied) {
  MPSPEC_CLAUSES("[rlock.kill.owner_died]");
  Scenario s;
  rlock_scenario(s, {"a", "b", "c"});
  s.needs_feature("kill").needs_feature("timeout").needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  s.kill("a");
  const auto& r = s.await(s.call("b", "R", "acquire", acquire_args(true, small())));
  ASSERT_TRUE(r.raised("OwnerDied")) << "the next acquirer must learn that the owner died: " << r;
  // b owns it now, at depth 1.
  EXPECT_TRUE(s.await(s.call("c", "R", "acquire", kTry)).ok(false)) << "b owns the RLock";
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire", kTry)).ok(true)) << "b owns it: recursive";
  EXPECT_TRUE(s.await(s.call("b", "R", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "R", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("c", "R", "acquire", kTry)).ok(true))
      << "after OwnerDied the RLock is fully usable again";
  EXPECT_TRUE(s.await(s.call("b", "R", "release")).raised("AssertionError"));
  expect_linearizable(s);
}

TEST(RLock, KilledWaiterDoesNotDisturb) {
  MPSPEC_CLAUSES("[rlock.kill.waiter] [rlock.acquire.wakes]");
  Scenario s;
  rlock_scenario(s, {"a", "b", "c"});
  s.needs_feature("kill").needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire")).ok(true));
  const CallId doomed = s.call("b", "R", "acquire");
  const CallId survivor = s.call("c", "R", "acquire");
  ASSERT_FALSE(s.returns_within(doomed, small())) << s.result(doomed);
  ASSERT_FALSE(s.returned(survivor)) << s.result(survivor);
  s.kill("b");
  ASSERT_TRUE(s.await(s.call("a", "R", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(survivor).ok(true)) << "the surviving waiter must be woken";
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire", kTry)).ok(false)) << "c owns the RLock";
  expect_linearizable(s);
}

}  // namespace
}  // namespace mpspec
