// Scenario tests for spec/sync/barrier.md. Each test names the clauses it checks; every test
// that makes parties wait also judges its history with the Barrier invariant checker
// (conformance/checker/barrier_check.hpp): indices of a cycle form a permutation, nobody
// returns before the cycle's last party was invoked, no return without a complete cycle.
//
// Timing policy (spec/README.md): a party is known to be blocked in `wait` when `n_waiting`
// (read by another actor) says it has arrived; "times out" asserts only the lower bound; "is
// woken" waits with the liveness bound `huge`. The strict crash tests bound the survivors'
// wait with returns_within so that a wedged backend (CPython) FAILs instead of timing out.
#include <gtest/gtest.h>

#include <set>

#include "barrier_check.hpp"
#include "scenario.hpp"

namespace mpspec {
namespace {

using timing::huge;
using timing::kClockResolution;
using timing::long_;
using timing::small;

// How long the strict crash tests give a survivor to be broken out after a kill: well above
// any reasonable detection latency, well below the liveness bound, so that a backend that
// wedges (CPython) FAILs in seconds rather than a minute per test.
double wedged() { return 10 * timing::long_(); }
Json timeout_args(Json t) { return Json{{"timeout", std::move(t)}}; }

// Declares Barrier "B" with `parties` (and optional action / default timeout) plus the actors.
void barrier_scenario(Scenario& s, int parties, std::initializer_list<const char*> actors,
                      Json action = nullptr, Json timeout = nullptr) {
  s.object("B", "Barrier", Json{{"parties", parties}, {"action", action}, {"timeout", timeout}});
  s.needs_method("Barrier", "wait").needs_method("Barrier", "n_waiting");
  for (const char* a : actors) s.actor(a);
}

// Waits until `n_waiting` (read by `observer`) equals `n`: the handshake that shows that the
// parties have arrived and are blocked. Fails the test if it never does (liveness bound).
// `blocked` are waits that must not return meanwhile (else the test fails at once rather than
// after the liveness bound).
::testing::AssertionResult await_n_waiting(Scenario& s, const char* observer, int n,
                                           std::initializer_list<CallId> blocked = {}) {
  const auto start = std::chrono::steady_clock::now();
  Json last;
  for (;;) {
    const auto& r = s.await(s.call(observer, "B", "n_waiting"));
    if (!r.ok()) return ::testing::AssertionFailure() << "n_waiting raised: " << r;
    last = r.value;
    if (last == n) return ::testing::AssertionSuccess();
    for (CallId id : blocked) {
      if (s.returned(id))
        return ::testing::AssertionFailure()
               << "a wait returned before its cycle was complete (n_waiting " << last.dump()
               << ", waiting for " << n << "): " << s.result(id);
    }
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > huge())
      return ::testing::AssertionFailure()
             << "n_waiting never became " << n << " (last " << last.dump() << ")";
  }
}

void expect_invariants(Scenario& s, int parties, const std::set<std::string>& action_errors = {}) {
  const check::BarrierReport r = check::check_barrier(s.history(), "B", parties, action_errors);
  if (!r.ok) {
    ADD_FAILURE() << "Barrier invariants violated:\n"
                  << r.explanation << "history: " << s.save_history("barrier");
  }
}

TEST(Barrier, ConstructState) {
  MPSPEC_CLAUSES("[barrier.construct.state] [barrier.attr.parties]");
  Scenario s;
  barrier_scenario(s, 3, {"a"});
  s.needs_method("Barrier", "parties").needs_method("Barrier", "broken");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "B", "parties")).ok(3));
  EXPECT_TRUE(s.await(s.call("a", "B", "n_waiting")).ok(0));
  EXPECT_TRUE(s.await(s.call("a", "B", "broken")).ok(false));
}

TEST(Barrier, WaitBlocksUntilAllArrive) {
  MPSPEC_CLAUSES("[barrier.wait.blocks] [barrier.wait.releases] [barrier.wait.index]");
  Scenario s;
  barrier_scenario(s, 3, {"a", "b", "c", "obs"});
  MPSPEC_START(s);
  const CallId wa = s.call("a", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "obs", 1, {wa}));
  EXPECT_FALSE(s.returns_within(wa, small()))
      << "wait returned with 1 of 3 parties: " << s.result(wa);
  const CallId wb = s.call("b", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "obs", 2, {wa, wb}));
  EXPECT_FALSE(s.returns_within(wb, small()))
      << "wait returned with 2 of 3 parties: " << s.result(wb);
  EXPECT_FALSE(s.returned(wa)) << s.result(wa);
  const CallId wc = s.call("c", "B", "wait");
  std::set<long long> indices;
  for (CallId id : {wa, wb, wc}) {
    const auto& r = s.await(id);
    ASSERT_TRUE(r.ok() && r.value.is_number_integer()) << r;
    indices.insert(r.value.get<long long>());
  }
  EXPECT_EQ(indices, (std::set<long long>{0, 1, 2}));
  expect_invariants(s, 3);
}

TEST(Barrier, IndexIsArrivalOrder) {
  MPSPEC_CLAUSES("[barrier.wait.index.order] [barrier.wait.index]");
  Scenario s;
  barrier_scenario(s, 3, {"a", "b", "c", "obs"});
  MPSPEC_START(s);
  const CallId wa = s.call("b", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "obs", 1, {wa}));
  const CallId wb = s.call("c", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "obs", 2, {wa, wb}));
  const CallId wc = s.call("a", "B", "wait");
  EXPECT_TRUE(s.await(wa).ok(0)) << "first to arrive: " << s.result(wa);
  EXPECT_TRUE(s.await(wb).ok(1)) << "second to arrive: " << s.result(wb);
  EXPECT_TRUE(s.await(wc).ok(2)) << "last to arrive: " << s.result(wc);
  expect_invariants(s, 3);
}

TEST(Barrier, Cyclic) {
  MPSPEC_CLAUSES("[barrier.wait.cyclic] [barrier.wait.releases] [barrier.wait.index]");
  Scenario s;
  barrier_scenario(s, 2, {"a", "b"});
  s.needs_method("Barrier", "broken");
  MPSPEC_START(s);
  for (int cycle = 0; cycle < 6; ++cycle) {
    const CallId wa = s.call("a", "B", "wait");
    const CallId wb = s.call("b", "B", "wait");
    const auto& ra = s.await(wa);
    const auto& rb = s.await(wb);
    ASSERT_TRUE(ra.ok() && rb.ok()) << "cycle " << cycle << ": " << ra << "; " << rb;
    EXPECT_NE(ra.value, rb.value) << "cycle " << cycle;
    EXPECT_TRUE(s.await(s.call("a", "B", "n_waiting")).ok(0)) << "cycle " << cycle;
    EXPECT_TRUE(s.await(s.call("b", "B", "broken")).ok(false)) << "cycle " << cycle;
  }
  expect_invariants(s, 2);
}

TEST(Barrier, ManyPartiesManyCycles) {
  MPSPEC_CLAUSES("[barrier.wait.cyclic] [barrier.wait.blocks] [barrier.wait.index]");
  Scenario s;
  barrier_scenario(s, 4, {"a", "b", "c", "d"});
  MPSPEC_START(s);
  // Every actor issues its next wait as soon as its previous one returned: cycles overlap
  // in time as much as the backend lets them.
  const char* names[] = {"a", "b", "c", "d"};
  constexpr int kCycles = 15;
  int issued[4] = {1, 1, 1, 1};
  std::vector<CallId> running;
  for (const char* n : names) running.push_back(s.call(n, "B", "wait"));
  std::vector<CallId> pending = running;
  while (!pending.empty()) {
    auto done = s.await_any(pending, huge());
    ASSERT_TRUE(done) << "no wait returned within the liveness bound";
    ASSERT_TRUE(s.result(*done).ok()) << s.result(*done);
    for (int i = 0; i < 4; ++i) {
      if (running[static_cast<size_t>(i)] != *done) continue;
      if (issued[i] < kCycles) {
        running[static_cast<size_t>(i)] = s.call(names[i], "B", "wait");
        ++issued[i];
      } else {
        running[static_cast<size_t>(i)] = -1;
      }
    }
    pending.clear();
    for (CallId id : running)
      if (id >= 0) pending.push_back(id);
  }
  const auto r = check::check_barrier(s.history(), "B", 4);
  EXPECT_TRUE(r.ok) << r.explanation << s.save_history("barrier");
  EXPECT_EQ(r.cycles, kCycles);
}

TEST(Barrier, TimeoutExpiresAndBreaks) {
  MPSPEC_CLAUSES("[barrier.wait.timeout.expires] [barrier.attr.broken]");
  Scenario s;
  barrier_scenario(s, 3, {"a", "b", "obs"});
  s.needs_feature("timeout").needs_method("Barrier", "broken");
  MPSPEC_START(s);
  const CallId wa = s.call("a", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "obs", 1, {wa}));
  const double timeout = small();
  const auto& rb = s.await(s.call("b", "B", "wait", timeout_args(timeout)));
  EXPECT_TRUE(rb.raised("BrokenBarrierError")) << "the timed wait must break the barrier: " << rb;
  EXPECT_GE(rb.elapsed(), timeout - kClockResolution) << "gave up early: " << rb;
  EXPECT_TRUE(s.await(wa).raised("BrokenBarrierError"))
      << "the other waiter must be broken out: " << s.result(wa);
  EXPECT_TRUE(s.await(s.call("obs", "B", "broken")).ok(true));
  expect_invariants(s, 3);
}

TEST(Barrier, DefaultTimeout) {
  MPSPEC_CLAUSES("[barrier.wait.timeout.default]");
  Scenario s;
  barrier_scenario(s, 2, {"a", "b"}, nullptr, small());
  s.needs_feature("timeout").needs_method("Barrier", "reset");
  MPSPEC_START(s);
  // No timeout argument: the default (small) applies.
  const auto& r1 = s.await(s.call("a", "B", "wait"));
  EXPECT_TRUE(r1.raised("BrokenBarrierError")) << r1;
  EXPECT_GE(r1.elapsed(), small() - kClockResolution) << r1;
  ASSERT_TRUE(s.await(s.call("b", "B", "reset")).ok(nullptr));
  // timeout=None is the default too.
  const auto& r2 = s.await(s.call("a", "B", "wait", timeout_args(nullptr)));
  EXPECT_TRUE(r2.raised("BrokenBarrierError")) << r2;
  EXPECT_GE(r2.elapsed(), small() - kClockResolution) << r2;
  ASSERT_TRUE(s.await(s.call("b", "B", "reset")).ok(nullptr));
  // An explicit timeout replaces the default: still blocked well after the default expired.
  const CallId wa = s.call("a", "B", "wait", timeout_args(huge()));
  EXPECT_FALSE(s.returns_within(wa, 3 * small()))
      << "the explicit timeout did not replace the default: " << s.result(wa);
  const auto& rb = s.await(s.call("b", "B", "wait", timeout_args(huge())));
  EXPECT_TRUE(rb.ok()) << rb;
  EXPECT_TRUE(s.await(wa).ok()) << s.result(wa);
  expect_invariants(s, 2);
}

TEST(Barrier, TimeoutZeroOrNegativeBreaksAtOnce) {
  MPSPEC_CLAUSES("[barrier.wait.timeout.zero] [barrier.attr.broken]");
  Scenario s;
  barrier_scenario(s, 2, {"a", "b"});
  s.needs_feature("timeout").needs_method("Barrier", "reset").needs_method("Barrier", "broken");
  MPSPEC_START(s);
  for (double t : {0.0, -1.0}) {
    const auto& r = s.await(s.call("a", "B", "wait", timeout_args(t)));
    EXPECT_TRUE(r.raised("BrokenBarrierError")) << "wait(timeout=" << t << "): " << r;
    EXPECT_TRUE(s.await(s.call("b", "B", "broken")).ok(true)) << "timeout " << t;
    ASSERT_TRUE(s.await(s.call("b", "B", "reset")).ok(nullptr));
  }
  expect_invariants(s, 2);
}

TEST(Barrier, LastPartyNeverTimesOut) {
  MPSPEC_CLAUSES("[barrier.wait.timeout.last]");
  Scenario s;
  barrier_scenario(s, 2, {"a", "b", "obs"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  const CallId wa = s.call("a", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "obs", 1, {wa}));
  const auto& rb = s.await(s.call("b", "B", "wait", timeout_args(0)));
  EXPECT_TRUE(rb.ok(1)) << "the completing party returns its index, even with timeout 0: " << rb;
  EXPECT_TRUE(s.await(wa).ok(0)) << s.result(wa);
  expect_invariants(s, 2);
}

TEST(Barrier, BrokenBarrierRaisesAtOnce) {
  MPSPEC_CLAUSES("[barrier.wait.broken] [barrier.abort]");
  Scenario s;
  barrier_scenario(s, 2, {"a", "b"});
  s.needs_method("Barrier", "abort");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "B", "abort")).ok(nullptr));
  // No timeout: only an immediate BrokenBarrierError returns within the liveness bound.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(s.await(s.call("a", "B", "wait")).raised("BrokenBarrierError"));
    EXPECT_TRUE(s.await(s.call("b", "B", "wait")).raised("BrokenBarrierError"));
  }
  expect_invariants(s, 2);
}

TEST(Barrier, AbortBreaksWaiters) {
  MPSPEC_CLAUSES("[barrier.abort] [barrier.attr.broken]");
  Scenario s;
  barrier_scenario(s, 3, {"a", "b", "c"});
  s.needs_method("Barrier", "abort").needs_method("Barrier", "broken");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("c", "B", "broken")).ok(false));
  const CallId wa = s.call("a", "B", "wait");
  const CallId wb = s.call("b", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "c", 2, {wa, wb}));
  EXPECT_TRUE(s.await(s.call("c", "B", "abort")).ok(nullptr));
  EXPECT_TRUE(s.await(wa).raised("BrokenBarrierError")) << s.result(wa);
  EXPECT_TRUE(s.await(wb).raised("BrokenBarrierError")) << s.result(wb);
  EXPECT_TRUE(s.await(s.call("c", "B", "broken")).ok(true));
  EXPECT_TRUE(s.await(s.call("c", "B", "wait")).raised("BrokenBarrierError"));
  expect_invariants(s, 3);
}

TEST(Barrier, ResetBreaksWaiters) {
  MPSPEC_CLAUSES("[barrier.reset.waiters]");
  Scenario s;
  barrier_scenario(s, 3, {"a", "b", "c"});
  s.needs_method("Barrier", "reset");
  MPSPEC_START(s);
  const CallId wa = s.call("a", "B", "wait");
  const CallId wb = s.call("b", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "c", 2, {wa, wb}));
  EXPECT_TRUE(s.await(s.call("c", "B", "reset")).ok(nullptr));
  EXPECT_TRUE(s.await(wa).raised("BrokenBarrierError")) << s.result(wa);
  EXPECT_TRUE(s.await(wb).raised("BrokenBarrierError")) << s.result(wb);
  expect_invariants(s, 3);
}

TEST(Barrier, ResetMakesUsable) {
  MPSPEC_CLAUSES("[barrier.reset.usable] [barrier.attr.broken] [barrier.attr.n_waiting]");
  Scenario s;
  barrier_scenario(s, 2, {"a", "b"});
  s.needs_method("Barrier", "reset")
      .needs_method("Barrier", "abort")
      .needs_method("Barrier", "broken");
  MPSPEC_START(s);
  // From broken.
  ASSERT_TRUE(s.await(s.call("a", "B", "abort")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("b", "B", "broken")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "B", "reset")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "B", "broken")).ok(false));
  EXPECT_TRUE(s.await(s.call("a", "B", "n_waiting")).ok(0));
  CallId wa = s.call("a", "B", "wait");
  CallId wb = s.call("b", "B", "wait");
  EXPECT_TRUE(s.await(wa).ok()) << s.result(wa);
  EXPECT_TRUE(s.await(wb).ok()) << s.result(wb);
  // From filling, with a party waiting: it is broken out, then a fresh cycle works.
  wa = s.call("a", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "b", 1, {wa}));
  EXPECT_TRUE(s.await(s.call("b", "B", "reset")).ok(nullptr));
  EXPECT_TRUE(s.await(wa).raised("BrokenBarrierError")) << s.result(wa);
  EXPECT_TRUE(s.await(s.call("b", "B", "broken")).ok(false));
  EXPECT_TRUE(s.await(s.call("b", "B", "n_waiting")).ok(0));
  wa = s.call("a", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "b", 1, {wa}));
  wb = s.call("b", "B", "wait");
  EXPECT_TRUE(s.await(wa).ok(0)) << "fresh indices after reset: " << s.result(wa);
  EXPECT_TRUE(s.await(wb).ok(1)) << s.result(wb);
  expect_invariants(s, 2);
}

TEST(Barrier, NWaitingCountsArrivals) {
  MPSPEC_CLAUSES("[barrier.attr.n_waiting]");
  Scenario s;
  barrier_scenario(s, 4, {"a", "b", "c", "d", "obs"});
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("obs", "B", "n_waiting")).ok(0));
  std::vector<CallId> waits;
  const char* names[] = {"a", "b", "c"};
  for (int i = 0; i < 3; ++i) {
    waits.push_back(s.call(names[i], "B", "wait"));
    ASSERT_TRUE(await_n_waiting(s, "obs", i + 1, {waits.back()}));
    // Stable: nobody else arrives; it stays at i + 1.
    EXPECT_TRUE(s.await(s.call("obs", "B", "n_waiting")).ok(i + 1));
  }
  waits.push_back(s.call("d", "B", "wait"));
  for (CallId id : waits) EXPECT_TRUE(s.await(id).ok()) << s.result(id);
  EXPECT_TRUE(s.await(s.call("obs", "B", "n_waiting")).ok(0)) << "after the cycle";
  expect_invariants(s, 4);
}

// The action counts cycles on a Semaphore: after cycle k each party, as soon as its wait has
// returned, reads exactly k (the next cycle cannot complete before both read it).
TEST(Barrier, ActionRunsOncePerCycleBeforeReturn) {
  MPSPEC_CLAUSES("[barrier.action.once]");
  Scenario s;
  s.object("S", "Semaphore", Json{{"value", 0}}).needs_method("Semaphore", "get_value");
  barrier_scenario(s, 2, {"a", "b"}, Json{{"$call", Json::array({"S", "release"})}});
  MPSPEC_START(s);
  for (int cycle = 1; cycle <= 4; ++cycle) {
    const CallId wa = s.call("a", "B", "wait");
    const CallId wb = s.call("b", "B", "wait");
    ASSERT_TRUE(s.await(wa).ok()) << s.result(wa);
    ASSERT_TRUE(s.await(wb).ok()) << s.result(wb);
    EXPECT_TRUE(s.await(s.call("a", "S", "get_value")).ok(cycle)) << "cycle " << cycle;
    EXPECT_TRUE(s.await(s.call("b", "S", "get_value")).ok(cycle)) << "cycle " << cycle;
  }
  expect_invariants(s, 2);
}

// The same with a Lock only (for backends without Semaphore): the action releases a Lock the
// parent holds; right after its wait returns, each party's release of that Lock must find it
// already released (ValueError). A second run of the action in a cycle would find the Lock
// free and raise, breaking the barrier.
TEST(Barrier, ActionEffectVisibleOnReturn) {
  MPSPEC_CLAUSES("[barrier.action.once]");
  Scenario s;
  s.object("L", "Lock").needs_method("Lock", "release").needs_method("Lock", "acquire");
  barrier_scenario(s, 2, {"a", "b"}, Json{{"$call", Json::array({"L", "release"})}});
  s.prelude("L", "acquire").needs_feature("nonblocking");
  MPSPEC_START(s);
  for (int cycle = 0; cycle < 4; ++cycle) {
    const CallId wa = s.call("a", "B", "wait");
    const CallId wb = s.call("b", "B", "wait");
    const auto& ra = s.await(wa);
    const auto& rb = s.await(wb);
    ASSERT_TRUE(ra.ok() && rb.ok()) << "cycle " << cycle << ": " << ra << "; " << rb;
    EXPECT_TRUE(s.await(s.call("a", "L", "release")).raised("ValueError"))
        << "cycle " << cycle << ": the action had not run when a's wait returned";
    EXPECT_TRUE(s.await(s.call("b", "L", "release")).raised("ValueError"))
        << "cycle " << cycle << ": the action had not run when b's wait returned";
    ASSERT_TRUE(s.await(s.call("a", "L", "acquire", Json{{"block", false}})).ok(true));
  }
  expect_invariants(s, 2);
}

TEST(Barrier, ActionRaisesBreaksBarrier) {
  MPSPEC_CLAUSES("[barrier.action.raises] [barrier.attr.broken]");
  Scenario s;
  // Releasing a free Lock raises ValueError: the action fails.
  s.object("L", "Lock").needs_method("Lock", "release");
  barrier_scenario(s, 3, {"a", "b", "c", "obs"}, Json{{"$call", Json::array({"L", "release"})}});
  s.needs_method("Barrier", "broken");
  MPSPEC_START(s);
  const CallId wa = s.call("a", "B", "wait");
  const CallId wb = s.call("b", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "obs", 2, {wa, wb}));
  const auto& rc = s.await(s.call("c", "B", "wait"));
  EXPECT_TRUE(rc.raised("ValueError")) << "the party running the action gets its error: " << rc;
  EXPECT_TRUE(s.await(wa).raised("BrokenBarrierError")) << s.result(wa);
  EXPECT_TRUE(s.await(wb).raised("BrokenBarrierError")) << s.result(wb);
  EXPECT_TRUE(s.await(s.call("obs", "B", "broken")).ok(true));
  expect_invariants(s, 3, {"ValueError"});
}

TEST(Barrier, KilledWaiterBreaksBarrier) {
  MPSPEC_CLAUSES("[barrier.kill.waiter]");
  Scenario s;
  barrier_scenario(s, 3, {"a", "b", "c", "obs"});
  s.needs_feature("kill");
  MPSPEC_START(s);
  const CallId wa = s.call("a", "B", "wait");
  const CallId wb = s.call("b", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "obs", 2, {wa, wb}));
  s.kill("a");
  // Bounded by returns_within, not await: a wedged barrier is a FAIL, not a TIMEOUT.
  ASSERT_TRUE(s.returns_within(wb, wedged()))
      << "the surviving party is still blocked " << wedged()
      << " s after another party of its cycle was killed: the barrier is wedged";
  EXPECT_TRUE(s.result(wb).raised("BrokenBarrierError")) << s.result(wb);
  // A party arriving later, without a timeout, is broken out too (no reset happened).
  const CallId wc = s.call("c", "B", "wait");
  ASSERT_TRUE(s.returns_within(wc, wedged())) << "a later wait is blocked on the wedged barrier";
  EXPECT_TRUE(s.result(wc).raised("BrokenBarrierError")) << s.result(wc);
  expect_invariants(s, 3);
}

TEST(Barrier, KilledLoneWaiterBreaksLaterArrival) {
  MPSPEC_CLAUSES("[barrier.kill.waiter]");
  Scenario s;
  barrier_scenario(s, 3, {"a", "b", "obs"});
  s.needs_feature("kill");
  MPSPEC_START(s);
  const CallId wa = s.call("a", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "obs", 1, {wa}));
  s.kill("a");
  // b arrives after the death: the cycle can never complete (2 of 3, one dead).
  const CallId wb = s.call("b", "B", "wait");
  ASSERT_TRUE(s.returns_within(wb, wedged()))
      << "a party arriving after a waiter was killed is blocked for ever: the barrier is wedged";
  EXPECT_TRUE(s.result(wb).raised("BrokenBarrierError")) << s.result(wb);
  expect_invariants(s, 3);
}

TEST(Barrier, KilledActionRunnerBreaksBarrier) {
  MPSPEC_CLAUSES("[barrier.kill.action]");
  Scenario s;
  // The action blocks on a Lock the parent holds, so its party is killed inside it.
  s.object("L", "Lock").needs_method("Lock", "acquire");
  barrier_scenario(s, 2, {"a", "k", "obs"}, Json{{"$call", Json::array({"L", "acquire"})}});
  s.prelude("L", "acquire").needs_feature("kill").needs_feature("nonblocking");
  MPSPEC_START(s);
  const CallId wa = s.call("a", "B", "wait");
  ASSERT_TRUE(await_n_waiting(s, "obs", 1, {wa}));
  // k is alive and serving calls; its next call is the completing wait, which runs the action.
  ASSERT_TRUE(s.await(s.call("k", "L", "acquire", Json{{"block", false}})).ok(false));
  const CallId wk = s.call("k", "B", "wait");
  // Evidence (not proof) that k is inside the action: its wait does not return for a while.
  ASSERT_FALSE(s.returns_within(wk, long_())) << "the action should block: " << s.result(wk);
  ASSERT_FALSE(s.returned(wa)) << "a returned while the action had not finished: " << s.result(wa);
  s.kill("k");
  ASSERT_TRUE(s.returns_within(wa, wedged()))
      << "the surviving party is still blocked after the action's process was killed";
  EXPECT_TRUE(s.result(wa).raised("BrokenBarrierError")) << s.result(wa);
  expect_invariants(s, 2);
}

}  // namespace
}  // namespace mpspec
