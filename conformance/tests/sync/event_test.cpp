// Scenario tests for spec/sync/event.md. Every test also judges its whole history against the
// Event model ([event.linearizable]).
//
// Timing policy (spec/README.md): "is blocked" is a handshake plus a `small` grace period;
// "times out" asserts only the lower bound; "is woken" waits with the liveness bound `huge`.
#include <gtest/gtest.h>

#include "scenario.hpp"

namespace mpspec {
namespace {

using timing::huge;
using timing::kClockResolution;
using timing::long_;
using timing::small;

Json timeout(Json t) { return Json{{"timeout", std::move(t)}}; }

void expect_linearizable(Scenario& s) {
  auto r = s.check();
  if (r.verdict == check::Verdict::kUnknown)
    GTEST_SKIP() << "UNRESOLVED: the checker ran out of budget:\n" << r.summary();
  EXPECT_EQ(r.verdict, check::Verdict::kLinearizable)
      << "[event.linearizable] history is not linearizable:\n"
      << r.summary();
}

void event_scenario(Scenario& s, std::initializer_list<const char*> actors) {
  s.object("E", "Event");
  for (const char* m : {"is_set", "set", "clear", "wait"}) s.needs_method("Event", m);
  for (const char* a : actors) s.actor(a);
}

TEST(Event, ConstructClear) {
  MPSPEC_CLAUSES("[event.construct.clear] [event.is_set]");
  Scenario s;
  event_scenario(s, {"a"});
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "E", "is_set")).ok(false));
  expect_linearizable(s);
}

TEST(Event, SetAndClear) {
  MPSPEC_CLAUSES("[event.set] [event.clear] [event.is_set] [event.process.shared]");
  Scenario s;
  event_scenario(s, {"a", "b"});
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "E", "set")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "E", "is_set")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "E", "is_set")).ok(true))
      << "set in one process, seen in another";
  EXPECT_TRUE(s.await(s.call("b", "E", "clear")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "E", "is_set")).ok(false));
  EXPECT_TRUE(s.await(s.call("a", "E", "clear")).ok(nullptr)) << "clear of a clear event";
  EXPECT_TRUE(s.await(s.call("b", "E", "is_set")).ok(false));
  expect_linearizable(s);
}

TEST(Event, SetIsIdempotent) {
  MPSPEC_CLAUSES("[event.set.idempotent]");
  Scenario s;
  event_scenario(s, {"a", "b"});
  MPSPEC_START(s);
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(s.await(s.call(i % 2 ? "b" : "a", "E", "set")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "E", "is_set")).ok(true));
  // One clear undoes any number of sets: the flag is a flag, not a counter.
  EXPECT_TRUE(s.await(s.call("a", "E", "clear")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "E", "is_set")).ok(false));
  expect_linearizable(s);
}

TEST(Event, WaitOnSetReturnsTrueAtOnce) {
  MPSPEC_CLAUSES("[event.wait.set]");
  Scenario s;
  event_scenario(s, {"a", "b"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "E", "set")).ok(nullptr));
  // Each of these would trip the watchdog if it waited for its timeout.
  for (const Json& args :
       {Json::object(), timeout(nullptr), timeout(10 * huge()), timeout(0), timeout(-1)}) {
    const auto& r = s.await(s.call("b", "E", "wait", args), long_());
    EXPECT_TRUE(r.ok(true)) << "wait(" << args.dump() << ") on a set event: " << r;
  }
  expect_linearizable(s);
}

TEST(Event, WaitBlocksUntilSet) {
  MPSPEC_CLAUSES("[event.wait.blocks] [event.wait.wakes]");
  Scenario s;
  event_scenario(s, {"a", "b"});
  MPSPEC_START(s);
  const CallId waiter = s.call("b", "E", "wait");
  ASSERT_FALSE(s.returns_within(waiter, small()))
      << "wait() returned on a clear event: " << s.result(waiter);
  const CallId set = s.call("a", "E", "set");
  EXPECT_TRUE(s.await(set).ok(nullptr));
  const auto& r = s.await(waiter);
  EXPECT_TRUE(r.ok(true)) << r;
  EXPECT_GE(r.return_ns, s.result(set).invoke_ns) << "the waiter returned before set began";
  expect_linearizable(s);
}

TEST(Event, SetWakesAllWaiters) {
  MPSPEC_CLAUSES("[event.wait.wakes] [event.process.shared]");
  Scenario s;
  event_scenario(s, {"setter", "w1", "w2", "w3"});
  s.actor("wt", 2);
  s.needs_feature("threads").needs_feature("timeout");
  MPSPEC_START(s);
  std::vector<CallId> waiters = {s.call("w1", "E", "wait"), s.call("w2", "E", "wait"),
                                 s.call("w3", "E", "wait", timeout(huge())),
                                 s.call("wt", "E", "wait", Json::object(), 0),
                                 s.call("wt", "E", "wait", timeout(huge()), 1)};
  ASSERT_FALSE(s.returns_within(waiters[0], small())) << s.result(waiters[0]);
  for (CallId w : waiters) ASSERT_FALSE(s.returned(w)) << s.result(w);
  ASSERT_TRUE(s.await(s.call("setter", "E", "set")).ok(nullptr));
  for (CallId w : waiters) EXPECT_TRUE(s.await(w).ok(true)) << s.result(w);
  expect_linearizable(s);
}

TEST(Event, TimedWaitExpiresFalse) {
  MPSPEC_CLAUSES("[event.wait.timeout] [event.wait.result]");
  Scenario s;
  event_scenario(s, {"a"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  const double t = small();
  const auto& r = s.await(s.call("a", "E", "wait", timeout(t)));
  EXPECT_TRUE(r.ok(false)) << r;
  EXPECT_GE(r.elapsed(), t - kClockResolution) << "timed wait gave up early: " << r;
  expect_linearizable(s);
}

TEST(Event, TimedWaitReturnsTrueWhenSet) {
  MPSPEC_CLAUSES("[event.wait.wakes] [event.wait.result]");
  Scenario s;
  event_scenario(s, {"a", "b"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  const CallId waiter = s.call("b", "E", "wait", timeout(huge()));
  ASSERT_FALSE(s.returns_within(waiter, small())) << s.result(waiter);
  ASSERT_TRUE(s.await(s.call("a", "E", "set")).ok(nullptr));
  EXPECT_TRUE(s.await(waiter).ok(true)) << s.result(waiter);
  expect_linearizable(s);
}

TEST(Event, WaitZeroAndNegativeReturnAtOnce) {
  MPSPEC_CLAUSES("[event.wait.timeout.zero]");
  Scenario s;
  event_scenario(s, {"a"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  for (double t : {0.0, -1.0, -0.5}) {
    // A wait that honoured a long wait here would trip the `long` bound.
    const auto& r = s.await(s.call("a", "E", "wait", timeout(t)), long_());
    EXPECT_TRUE(r.ok(false)) << "wait(" << t << ") on a clear event: " << r;
  }
  ASSERT_TRUE(s.await(s.call("a", "E", "set")).ok(nullptr));
  for (double t : {0.0, -1.0}) {
    const auto& r = s.await(s.call("a", "E", "wait", timeout(t)), long_());
    EXPECT_TRUE(r.ok(true)) << "wait(" << t << ") on a set event: " << r;
  }
  expect_linearizable(s);
}

TEST(Event, ClearedEventBlocksAgain) {
  MPSPEC_CLAUSES("[event.clear] [event.wait.blocks]");
  Scenario s;
  event_scenario(s, {"a", "b"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "E", "set")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("b", "E", "wait")).ok(true));
  ASSERT_TRUE(s.await(s.call("a", "E", "clear")).ok(nullptr));
  const CallId waiter = s.call("b", "E", "wait");
  EXPECT_FALSE(s.returns_within(waiter, small())) << "wait() after clear: " << s.result(waiter);
  ASSERT_TRUE(s.await(s.call("a", "E", "set")).ok(nullptr));
  EXPECT_TRUE(s.await(waiter).ok(true)) << s.result(waiter);
  expect_linearizable(s);
}

// CPython's set() waits for every sleeper to acknowledge its wake-up (Condition.notify_all),
// so a waiter killed while waiting makes set() block for ever (gh-75158). The strict profile
// forbids that. The watchdog turns the hang into a FAIL.
TEST(Event, KilledWaiterDoesNotBlockSet) {
  MPSPEC_CLAUSES("[event.kill.waiter]");
  Scenario s;
  event_scenario(s, {"setter", "victim", "other"});
  s.needs_feature("kill");
  MPSPEC_START(s);
  const CallId victim = s.call("victim", "E", "wait");
  const CallId other = s.call("other", "E", "wait");
  ASSERT_FALSE(s.returns_within(victim, small())) << s.result(victim);
  ASSERT_FALSE(s.returned(other)) << s.result(other);
  s.kill("victim");
  const CallId set = s.call("setter", "E", "set");
  ASSERT_TRUE(s.returns_within(set, long_()))
      << "set() did not return within `long` after a waiting process was killed (gh-75158)";
  EXPECT_TRUE(s.result(set).ok(nullptr)) << s.result(set);
  EXPECT_TRUE(s.await(other).ok(true)) << "the surviving waiter must be woken: " << s.result(other);
  EXPECT_TRUE(s.await(s.call("setter", "E", "is_set")).ok(true));
  expect_linearizable(s);
}

}  // namespace
}  // namespace mpspec
