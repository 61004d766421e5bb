// Scenario tests for spec/sync/condition.md. A Condition has no sequential model; tests end
// with the invariant checker (conformance/checker/condition_check.hpp), which also judges the
// condition's lock as a Lock history.
//
// Timing policy (spec/README.md): a waiter is known to be waiting once another actor has
// acquired the condition's lock after the wait was invoked (the waiter held the lock when it
// called wait, so the lock can only have been taken after wait released it): that is the
// handshake every "notify wakes" test uses, never a sleep.
#include <gtest/gtest.h>

#include <algorithm>

#include "condition_check.hpp"
#include "scenario.hpp"

namespace mpspec {
namespace {

using timing::huge;
using timing::kClockResolution;
using timing::long_;
using timing::small;

const Json kTry = Json{{"block", false}};
Json timeout(Json t) { return Json{{"timeout", std::move(t)}}; }
Json count(int n) { return Json{{"n", n}}; }

void expect_invariants(Scenario& s, const std::string& lock_object = "",
                       const std::set<std::string>& killed = {}) {
  const auto r = check::check_condition(s.history(), "C", lock_object, killed);
  if (r.verdict == check::Verdict::kUnknown)
    GTEST_SKIP() << "UNRESOLVED: the checker ran out of budget:\n" << r.explanation;
  if (r.verdict != check::Verdict::kLinearizable) {
    ADD_FAILURE() << r.explanation << "\nhistory saved at " << s.save_history("-condition");
  }
}

// A Condition "C" over a new RLock (lock = null) or over the Lock/RLock "L".
void condition_scenario(Scenario& s, const char* lock_type,
                        std::initializer_list<const char*> actors) {
  if (lock_type) {
    s.object("L", lock_type);
    s.object("C", "Condition", Json{{"lock", Json{{"$ref", "L"}}}});
  } else {
    s.object("C", "Condition", Json{{"lock", nullptr}});
  }
  for (const char* m : {"acquire", "release", "wait", "notify", "notify_all"})
    s.needs_method("Condition", m);
  for (const char* a : actors) s.actor(a);
}

// Starts `wait` (with `args`) in `waiter`, which first takes the lock; returns the wait's
// call once `helper` has acquired the lock after the wait began (so the waiter is waiting),
// with `helper` holding the lock.
CallId start_waiting(Scenario& s, const std::string& waiter, const std::string& helper,
                     const std::string& method = "wait", Json args = Json::object(),
                     int thread = 0) {
  EXPECT_TRUE(s.await(s.call(waiter, "C", "acquire", Json::object(), thread)).ok(true));
  const CallId w = s.call(waiter, "C", method, std::move(args), thread);
  const auto& a = s.await(s.call(helper, "C", "acquire"));
  EXPECT_TRUE(a.ok(true)) << "the lock must be free for others while a waiter waits: " << a;
  return w;
}

TEST(Condition, DefaultLockIsRecursive) {
  MPSPEC_CLAUSES("[condition.construct.default_rlock] [condition.acquire]");
  Scenario s;
  condition_scenario(s, nullptr, {"a", "b"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "C", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "C", "acquire", kTry)).ok(true))
      << "Condition() must use an RLock: its holder can take it again";
  EXPECT_TRUE(s.await(s.call("b", "C", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("a", "C", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "C", "acquire", kTry)).ok(false)) << "still held once";
  EXPECT_TRUE(s.await(s.call("a", "C", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "C", "acquire", kTry)).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "C", "release")).ok(nullptr));
}

TEST(Condition, GivenLockIsShared) {
  MPSPEC_CLAUSES("[condition.construct.lock] [condition.acquire]");
  Scenario s;
  condition_scenario(s, "Lock", {"a", "b"});
  s.needs_feature("nonblocking")
      .needs_method("Condition", "__enter__")
      .needs_method("Condition", "__exit__");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "C", "acquire", kTry)).ok(false))
      << "the Condition must use the Lock it was given";
  EXPECT_TRUE(s.await(s.call("a", "C", "acquire", kTry)).ok(false)) << "a Lock is not recursive";
  EXPECT_TRUE(s.await(s.call("a", "C", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "C", "__enter__")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("b", "C", "__exit__")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "L", "acquire", kTry)).ok(true));
  expect_invariants(s, "L");
}

void wait_unheld(const char* lock_type) {
  Scenario s;
  condition_scenario(s, lock_type, {"a"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  for (const Json& args : {Json::object(), timeout(huge()), timeout(0)}) {
    const auto& r = s.await(s.call("a", "C", "wait", args), long_());
    EXPECT_TRUE(r.raised("AssertionError"))
        << "wait(" << args.dump() << ") without the lock: " << r;
  }
  // The failed calls changed nothing: the lock is still free.
  EXPECT_TRUE(s.await(s.call("a", "C", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "C", "release")).ok(nullptr));
}

void notify_unheld(const char* lock_type) {
  Scenario s;
  condition_scenario(s, lock_type, {"a"});
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "C", "notify")).raised("AssertionError")) << "notify()";
  EXPECT_TRUE(s.await(s.call("a", "C", "notify", count(2))).raised("AssertionError"))
      << "notify(2)";
  EXPECT_TRUE(s.await(s.call("a", "C", "notify_all")).raised("AssertionError")) << "notify_all()";
  EXPECT_TRUE(s.await(s.call("a", "C", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "C", "release")).ok(nullptr));
}

TEST(Condition, WaitWithoutLockRaisesAssertionError) {
  MPSPEC_CLAUSES("[condition.wait.unheld]");
  wait_unheld(nullptr);
}
TEST(Condition, WaitWithoutLockRaisesAssertionErrorOverLock) {
  MPSPEC_CLAUSES("[condition.wait.unheld]");
  wait_unheld("Lock");
}
TEST(Condition, WaitWithoutLockRaisesAssertionErrorOverRLock) {
  MPSPEC_CLAUSES("[condition.wait.unheld]");
  wait_unheld("RLock");
}
TEST(Condition, NotifyWithoutLockRaisesAssertionError) {
  MPSPEC_CLAUSES("[condition.notify.unheld]");
  notify_unheld(nullptr);
}
TEST(Condition, NotifyWithoutLockRaisesAssertionErrorOverLock) {
  MPSPEC_CLAUSES("[condition.notify.unheld]");
  notify_unheld("Lock");
}
TEST(Condition, NotifyWithoutLockRaisesAssertionErrorOverRLock) {
  MPSPEC_CLAUSES("[condition.notify.unheld]");
  notify_unheld("RLock");
}

TEST(Condition, WaitReleasesAndReacquiresTheLock) {
  MPSPEC_CLAUSES("[condition.wait.releases] [condition.wait.reacquires] [condition.wait.notified]");
  Scenario s;
  condition_scenario(s, "Lock", {"w", "n"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  const CallId w = start_waiting(s, "w", "n");  // n now holds the lock
  ASSERT_TRUE(s.await(s.call("n", "C", "notify")).ok(nullptr));
  // The waiter cannot return before it has the lock again, and n still holds it.
  EXPECT_FALSE(s.returns_within(w, small()))
      << "wait returned while the lock was held by another: " << s.result(w);
  ASSERT_TRUE(s.await(s.call("n", "C", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(w).ok(true)) << s.result(w);
  EXPECT_TRUE(s.await(s.call("n", "C", "acquire", kTry)).ok(false))
      << "wait must return holding the lock";
  EXPECT_TRUE(s.await(s.call("w", "C", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("n", "C", "acquire", kTry)).ok(true));
  expect_invariants(s, "L");
}

TEST(Condition, RLockFullyReleasedAndDepthRestored) {
  MPSPEC_CLAUSES("[condition.wait.rlock_depth] [condition.wait.releases]");
  Scenario s;
  condition_scenario(s, "RLock", {"w", "n"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.await(s.call("w", "C", "acquire")).ok(true));
  const CallId w = s.call("w", "C", "wait");
  // An RLock held three times must be released completely during the wait.
  const auto& a = s.await(s.call("n", "L", "acquire"));
  ASSERT_TRUE(a.ok(true)) << a;
  ASSERT_TRUE(s.await(s.call("n", "C", "notify")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("n", "L", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(w).ok(true)) << s.result(w);
  // The depth is restored: three releases succeed, and the lock is held until the third.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(s.await(s.call("n", "L", "acquire", kTry)).ok(false))
        << "after " << i << " releases";
    EXPECT_TRUE(s.await(s.call("w", "C", "release")).ok(nullptr)) << "release " << i + 1;
  }
  EXPECT_TRUE(s.await(s.call("w", "C", "release")).raised("AssertionError"))
      << "a fourth release: the depth was restored to more than 3";
  EXPECT_TRUE(s.await(s.call("n", "L", "acquire", kTry)).ok(true));
}

TEST(Condition, TimedWaitExpiresFalseWithLock) {
  MPSPEC_CLAUSES("[condition.wait.timeout] [condition.wait.reacquires]");
  Scenario s;
  condition_scenario(s, nullptr, {"w", "n"});
  s.needs_feature("timeout").needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("w", "C", "acquire")).ok(true));
  const double t = small();
  const auto& r = s.await(s.call("w", "C", "wait", timeout(t)));
  EXPECT_TRUE(r.ok(false)) << r;
  EXPECT_GE(r.elapsed(), t - kClockResolution) << "timed wait gave up early: " << r;
  EXPECT_TRUE(s.await(s.call("n", "C", "acquire", kTry)).ok(false)) << "must hold the lock again";
  EXPECT_TRUE(s.await(s.call("w", "C", "release")).ok(nullptr));
  expect_invariants(s);
}

TEST(Condition, WaitZeroAndNegativeReturnFalseAtOnce) {
  MPSPEC_CLAUSES("[condition.wait.timeout.zero]");
  Scenario s;
  condition_scenario(s, nullptr, {"w"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("w", "C", "acquire")).ok(true));
  for (double t : {0.0, -1.0}) {
    const auto& r = s.await(s.call("w", "C", "wait", timeout(t)), long_());
    EXPECT_TRUE(r.ok(false)) << "wait(" << t << "): " << r;
  }
  EXPECT_TRUE(s.await(s.call("w", "C", "release")).ok(nullptr));
  expect_invariants(s);
}

TEST(Condition, TimedWaitNotifiedReturnsTrue) {
  MPSPEC_CLAUSES(
      "[condition.wait.notified] [condition.notify.no_lost_wakeup] [condition.process.shared]");
  Scenario s;
  condition_scenario(s, nullptr, {"w", "n"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  const CallId w = start_waiting(s, "w", "n", "wait", timeout(huge()));
  ASSERT_TRUE(s.await(s.call("n", "C", "notify")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("n", "C", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(w).ok(true)) << s.result(w);
  EXPECT_TRUE(s.await(s.call("w", "C", "release")).ok(nullptr));
  expect_invariants(s);
}

TEST(Condition, NotifyOneWakesAtMostOne) {
  MPSPEC_CLAUSES("[condition.notify.at_most_n] [condition.notify.no_lost_wakeup]");
  Scenario s;
  condition_scenario(s, nullptr, {"w1", "w2", "w3", "n"});
  MPSPEC_START(s);
  std::vector<CallId> waits;
  for (const char* w : {"w1", "w2", "w3"}) {
    waits.push_back(start_waiting(s, w, "n"));
    ASSERT_TRUE(s.await(s.call("n", "C", "release")).ok(nullptr));
  }
  ASSERT_TRUE(s.await(s.call("n", "C", "acquire")).ok(true));
  ASSERT_TRUE(s.await(s.call("n", "C", "notify", count(1))).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("n", "C", "release")).ok(nullptr));
  // One waiter is woken: wait for it, let it release, then give the others a grace period.
  const auto first = s.await_any(waits, huge());
  ASSERT_TRUE(first) << "notify(1) woke nobody";
  EXPECT_TRUE(s.result(*first).ok(true)) << s.result(*first);
  std::string first_actor;
  for (size_t i = 0; i < waits.size(); ++i)
    if (waits[i] == *first) first_actor = "w" + std::to_string(i + 1);
  ASSERT_TRUE(s.await(s.call(first_actor, "C", "release")).ok(nullptr));
  int early = 0;
  for (size_t i = 0; i < waits.size(); ++i) {
    if (waits[i] == *first || !s.returns_within(waits[i], small())) continue;
    ++early;  // woken too: it holds the lock now; let it go so that the test can go on
    s.await(s.call("w" + std::to_string(i + 1), "C", "release"));
  }
  ASSERT_EQ(early, 0) << "notify(1) woke more than one waiter";
  // notify(2) wakes the remaining two.
  ASSERT_TRUE(s.await(s.call("n", "C", "acquire")).ok(true));
  ASSERT_TRUE(s.await(s.call("n", "C", "notify", count(2))).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("n", "C", "release")).ok(nullptr));
  // Both return, one after the other (each holds the lock until it releases it): take them
  // in the order they return.
  std::vector<CallId> rest;
  for (CallId w : waits)
    if (w != *first) rest.push_back(w);
  while (!rest.empty()) {
    const auto done = s.await_any(rest, huge());
    ASSERT_TRUE(done) << "notify(2) left " << rest.size() << " waiters blocked";
    EXPECT_TRUE(s.result(*done).ok(true)) << s.result(*done);
    size_t i = 0;
    while (waits[i] != *done) ++i;
    EXPECT_TRUE(s.await(s.call("w" + std::to_string(i + 1), "C", "release")).ok(nullptr));
    rest.erase(std::find(rest.begin(), rest.end(), *done));
  }
  expect_invariants(s);
}

TEST(Condition, NotifyAllWakesEveryWaiter) {
  MPSPEC_CLAUSES("[condition.notify_all] [condition.notify.no_lost_wakeup]");
  Scenario s;
  condition_scenario(s, "Lock", {"w1", "w2", "n"});
  s.actor("wt", 2);
  s.needs_feature("threads");
  MPSPEC_START(s);
  std::vector<std::pair<std::string, int>> who = {{"w1", 0}, {"w2", 0}, {"wt", 0}, {"wt", 1}};
  std::vector<CallId> waits;
  for (const auto& [actor, thread] : who) {
    waits.push_back(start_waiting(s, actor, "n", "wait", Json::object(), thread));
    ASSERT_TRUE(s.await(s.call("n", "C", "release")).ok(nullptr));
  }
  ASSERT_TRUE(s.await(s.call("n", "C", "acquire")).ok(true));
  ASSERT_TRUE(s.await(s.call("n", "C", "notify_all")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("n", "C", "release")).ok(nullptr));
  // Each woken waiter returns holding the lock and releases it for the next one.
  while (!waits.empty()) {
    const auto done = s.await_any(waits, huge());
    ASSERT_TRUE(done) << "notify_all left " << waits.size() << " waiters blocked";
    size_t i = 0;
    while (waits[i] != *done) ++i;
    EXPECT_TRUE(s.result(*done).ok(true)) << s.result(*done);
    ASSERT_TRUE(
        s.await(s.call(who[i].first, "C", "release", Json::object(), who[i].second)).ok(nullptr));
    waits.erase(waits.begin() + static_cast<std::ptrdiff_t>(i));
    who.erase(who.begin() + static_cast<std::ptrdiff_t>(i));
  }
  EXPECT_TRUE(waits.empty()) << "notify_all left waiters blocked";
  expect_invariants(s, "L");
}

TEST(Condition, NotifyWithoutWaitersIsNotRemembered) {
  MPSPEC_CLAUSES("[condition.notify.none_waiting]");
  Scenario s;
  condition_scenario(s, nullptr, {"a"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "C", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "C", "notify"), long_()).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "C", "notify", count(5)), long_()).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "C", "notify_all"), long_()).ok(nullptr));
  const auto& r = s.await(s.call("a", "C", "wait", timeout(small())));
  EXPECT_TRUE(r.ok(false)) << "a notify issued before the wait must not wake it: " << r;
  EXPECT_TRUE(s.await(s.call("a", "C", "release")).ok(nullptr));
  expect_invariants(s);
}

// wait_for's predicate is an Event's is_set, given as {"$call": ["E", "is_set"]}.
void wait_for_scenario(Scenario& s, std::initializer_list<const char*> actors) {
  s.object("E", "Event");
  condition_scenario(s, nullptr, actors);
  s.needs_method("Condition", "wait_for")
      .needs_method("Event", "set")
      .needs_method("Event", "is_set");
}
const Json kPredicate = Json{{"$call", Json::array({"E", "is_set"})}};

TEST(Condition, WaitForTrueReturnsAtOnce) {
  MPSPEC_CLAUSES("[condition.wait_for.true_at_once]");
  Scenario s;
  wait_for_scenario(s, {"a"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "E", "set")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "C", "acquire")).ok(true));
  const auto& r = s.await(s.call("a", "C", "wait_for", Json{{"predicate", kPredicate}}), long_());
  EXPECT_TRUE(r.ok(true)) << r;
  EXPECT_TRUE(s.await(s.call("a", "C", "release")).ok(nullptr));
}

TEST(Condition, WaitForTimesOutWithLastValue) {
  MPSPEC_CLAUSES("[condition.wait_for.result]");
  Scenario s;
  wait_for_scenario(s, {"a"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "C", "acquire")).ok(true));
  const double t = small();
  const auto& r =
      s.await(s.call("a", "C", "wait_for", Json{{"predicate", kPredicate}, {"timeout", t}}));
  EXPECT_TRUE(r.ok(false)) << "wait_for returns the predicate's last value: " << r;
  EXPECT_GE(r.elapsed(), t - kClockResolution) << r;
  EXPECT_TRUE(s.await(s.call("a", "C", "release")).ok(nullptr));
}

TEST(Condition, WaitForWakesWhenPredicateHolds) {
  MPSPEC_CLAUSES("[condition.wait_for.wakes] [condition.wait_for.result]");
  Scenario s;
  wait_for_scenario(s, {"w", "n"});
  MPSPEC_START(s);
  const CallId w = start_waiting(s, "w", "n", "wait_for", Json{{"predicate", kPredicate}});
  // A notify while the predicate is false: the waiter re-checks and keeps waiting.
  ASSERT_TRUE(s.await(s.call("n", "C", "notify")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("n", "C", "release")).ok(nullptr));
  EXPECT_FALSE(s.returns_within(w, small()))
      << "wait_for returned with a false predicate: " << s.result(w);
  ASSERT_TRUE(s.await(s.call("n", "C", "acquire")).ok(true));
  ASSERT_TRUE(s.await(s.call("n", "E", "set")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("n", "C", "notify_all")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("n", "C", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(w).ok(true)) << s.result(w);
  EXPECT_TRUE(s.await(s.call("w", "C", "release")).ok(nullptr));
}

// CPython's notify waits until each woken waiter acknowledges; a waiter killed while waiting
// never does, so notify hangs (gh-75158). Strict: notify returns, and the dead waiter takes
// none of its wake-ups. The `long` bound turns a hang into a FAIL.
void killed_waiter(const std::string& method) {
  Scenario s;
  condition_scenario(s, nullptr, {"victim", "other", "n"});
  s.needs_feature("kill");
  MPSPEC_START(s);
  const CallId victim = start_waiting(s, "victim", "n");
  ASSERT_TRUE(s.await(s.call("n", "C", "release")).ok(nullptr));
  const CallId other = start_waiting(s, "other", "n");  // n holds the lock
  s.kill("victim");
  const CallId notify = s.call("n", "C", method, method == "notify" ? count(1) : Json::object());
  ASSERT_TRUE(s.returns_within(notify, long_()))
      << method << " did not return within `long` after a waiting process was killed (gh-75158)";
  EXPECT_TRUE(s.result(notify).ok(nullptr)) << s.result(notify);
  ASSERT_TRUE(s.await(s.call("n", "C", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(other).ok(true))
      << "the surviving waiter must be woken (the dead one takes no wake-up): " << s.result(other);
  EXPECT_TRUE(s.await(s.call("other", "C", "release")).ok(nullptr));
  EXPECT_TRUE(s.result(victim).status == OpStatus::kInfo) << s.result(victim);
  expect_invariants(s, "", {"victim"});
}

TEST(Condition, KilledWaiterDoesNotBlockNotify) {
  MPSPEC_CLAUSES("[condition.kill.waiter]");
  killed_waiter("notify");
}
TEST(Condition, KilledWaiterDoesNotBlockNotifyAll) {
  MPSPEC_CLAUSES("[condition.kill.waiter]");
  killed_waiter("notify_all");
}

}  // namespace
}  // namespace mpspec
