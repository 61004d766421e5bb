// Scenario tests for spec/sync/semaphore.md. Each test names the clauses it checks; most also
// judge their whole history against the Semaphore model ([semaphore.acquire.linearizable]).
//
// Timing policy (spec/README.md): "is blocked" is a positive handshake (the value is known to
// be 0) plus a `small` grace period; "times out" asserts only the lower bound; "is woken"
// waits with the liveness bound `huge`.
#include <gtest/gtest.h>

#include <string>

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
      << "[semaphore.acquire.linearizable] history is not linearizable:\n"
      << r.summary();
}

// Scenario with one Semaphore "S" (value `value`, or the default when null) and the given
// single-threaded actors.
void sem_scenario(Scenario& s, Json value, std::initializer_list<const char*> actors) {
  Json args = Json::object();
  if (!value.is_null()) args["value"] = value;
  s.object("S", "Semaphore", args)
      .needs_method("Semaphore", "acquire")
      .needs_method("Semaphore", "release");
  for (const char* a : actors) s.actor(a);
}

// Takes units with acquire(block=False) until one fails; returns how many were taken
// (at most `limit` + 1 attempts).
int drain(Scenario& s, const std::string& actor, int limit) {
  for (int n = 0; n <= limit; ++n) {
    const auto& r = s.await(s.call(actor, "S", "acquire", kTry));
    EXPECT_TRUE(r.ok()) << r;
    if (!r.ok(true)) return n;
  }
  return limit + 1;
}

TEST(Semaphore, DefaultValueIsOne) {
  MPSPEC_CLAUSES("[semaphore.construct.default] [semaphore.acquire.nonblocking]");
  Scenario s;
  sem_scenario(s, nullptr, {"a"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_EQ(drain(s, "a", 3), 1) << "Semaphore() must hold exactly one unit";
  expect_linearizable(s);
}

TEST(Semaphore, InitialValue) {
  MPSPEC_CLAUSES("[semaphore.construct.value] [semaphore.acquire.positive]");
  Scenario s;
  sem_scenario(s, 3, {"a"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_EQ(drain(s, "a", 5), 3) << "Semaphore(3) must hold exactly three units";
  expect_linearizable(s);
}

TEST(Semaphore, ZeroIsAllowed) {
  MPSPEC_CLAUSES("[semaphore.construct.value] [semaphore.acquire.nonblocking]");
  Scenario s;
  sem_scenario(s, 0, {"a"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_EQ(drain(s, "a", 2), 0);
  expect_linearizable(s);
}

// Setup of a Semaphore with a negative value; returns the setup failure's text, or "" if the
// setup succeeded.
std::string negative_setup_error(const char* type) {
  Scenario s;
  s.object("S", type, Json{{"value", -1}}).actor("a");
  if (!Backend::get().has_type(type))
    return std::string("UNSUPPORTED: the backend does not offer type ") + type;
  try {
    const std::string why = s.start();
    return why.empty() ? "" : "UNSUPPORTED: " + why;
  } catch (const std::exception& e) {
    return e.what();
  }
}

TEST(Semaphore, NegativeValueRejected) {
  MPSPEC_CLAUSES("[semaphore.construct.negative]");
  const std::string err = negative_setup_error("Semaphore");
  if (err.rfind("UNSUPPORTED", 0) == 0) GTEST_SKIP() << err;
  EXPECT_NE(err, "") << "Semaphore(-1) must fail";
  EXPECT_NE(err.find("SetupError"), std::string::npos) << err;
}

TEST(Semaphore, NegativeValueIsValueError) {
  MPSPEC_CLAUSES("[semaphore.construct.negative.kind]");
  const std::string err = negative_setup_error("Semaphore");
  if (err.rfind("UNSUPPORTED", 0) == 0) GTEST_SKIP() << err;
  EXPECT_NE(err.find("ValueError"), std::string::npos)
      << "Semaphore(-1) should raise ValueError: " << err;
}

TEST(Semaphore, GetValueIsExact) {
  MPSPEC_CLAUSES(
      "[semaphore.get_value.exact] [semaphore.acquire.decrements]"
      " [semaphore.release.increments]");
  Scenario s;
  sem_scenario(s, 2, {"a", "b"});
  s.needs_method("Semaphore", "get_value");
  MPSPEC_START(s);
  const auto& first = s.await(s.call("a", "S", "get_value"));
  if (first.raised("NotImplementedError"))
    GTEST_SKIP() << "UNSUPPORTED: get_value is not implemented on this platform";
  EXPECT_TRUE(first.ok(2)) << first;
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "S", "get_value")).ok(1)) << "seen from another process";
  ASSERT_TRUE(s.await(s.call("b", "S", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "S", "get_value")).ok(0));
  ASSERT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "S", "get_value")).ok(1));
  expect_linearizable(s);
}

TEST(Semaphore, ReleaseAboveInitialValue) {
  MPSPEC_CLAUSES("[semaphore.release.above_initial] [semaphore.release.increments]");
  Scenario s;
  sem_scenario(s, 1, {"a"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  EXPECT_EQ(drain(s, "a", 5), 3) << "Semaphore(1) released twice must hold three units";
  expect_linearizable(s);
}

TEST(Semaphore, BlockingAcquireWaitsForRelease) {
  MPSPEC_CLAUSES("[semaphore.acquire.blocks] [semaphore.acquire.wakes] [semaphore.release.any]");
  Scenario s;
  sem_scenario(s, 1, {"a", "b", "c"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire")).ok(true));
  const CallId waiter = s.call("b", "S", "acquire");
  ASSERT_FALSE(s.returns_within(waiter, small()))
      << "acquire returned while the value was 0: " << s.result(waiter);
  // c never acquired: a semaphore has no owner, anyone may release it.
  const CallId release = s.call("c", "S", "release");
  EXPECT_TRUE(s.await(release).ok(nullptr));
  const auto& r = s.await(waiter);
  EXPECT_TRUE(r.ok(true)) << r;
  EXPECT_GE(r.return_ns, s.result(release).invoke_ns) << "the waiter returned before the release";
  expect_linearizable(s);
}

TEST(Semaphore, EachReleaseWakesOneWaiter) {
  MPSPEC_CLAUSES("[semaphore.acquire.wakes] [semaphore.acquire.linearizable]");
  Scenario s;
  sem_scenario(s, 0, {"a", "b", "c"});
  MPSPEC_START(s);
  const CallId w1 = s.call("a", "S", "acquire");
  const CallId w2 = s.call("b", "S", "acquire");
  ASSERT_FALSE(s.returns_within(w1, small())) << s.result(w1);
  ASSERT_FALSE(s.returned(w2)) << s.result(w2);
  ASSERT_TRUE(s.await(s.call("c", "S", "release")).ok(nullptr));
  const auto first = s.await_any({w1, w2}, huge());
  ASSERT_TRUE(first.has_value()) << "a release must wake a waiter";
  const CallId other = *first == w1 ? w2 : w1;
  EXPECT_TRUE(s.result(*first).ok(true)) << s.result(*first);
  EXPECT_FALSE(s.returns_within(other, small()))
      << "one release let two waiters through: " << s.result(other);
  ASSERT_TRUE(s.await(s.call("c", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(other).ok(true)) << s.result(other);
  expect_linearizable(s);
}

TEST(Semaphore, NonBlockingAndZeroTimeoutOnZero) {
  MPSPEC_CLAUSES(
      "[semaphore.acquire.nonblocking] [semaphore.acquire.timeout.zero]"
      " [semaphore.acquire.timeout.negative]");
  Scenario s;
  sem_scenario(s, 0, {"a"});
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  const Json variants[] = {kTry, acquire_args(false, 10 * huge()), acquire_args(true, 0),
                           acquire_args(true, -1)};
  for (const auto& args : variants) {
    const auto& r = s.await(s.call("a", "S", "acquire", args));
    EXPECT_TRUE(r.ok(false)) << "acquire(" << args.dump() << ") with value 0: " << r;
  }
  ASSERT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "S", "acquire", acquire_args(true, 0))).ok(true));
  expect_linearizable(s);
}

TEST(Semaphore, TimedAcquireExpires) {
  MPSPEC_CLAUSES("[semaphore.acquire.timeout.expires]");
  Scenario s;
  sem_scenario(s, 0, {"a"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  const double timeout = small();
  const auto& r = s.await(s.call("a", "S", "acquire", acquire_args(true, timeout)));
  EXPECT_TRUE(r.ok(false)) << r;
  EXPECT_GE(r.elapsed(), timeout - kClockResolution) << "timed acquire gave up early: " << r;
  expect_linearizable(s);
}

TEST(Semaphore, TimedAcquireSucceedsWhenReleased) {
  MPSPEC_CLAUSES("[semaphore.acquire.timeout.success] [semaphore.acquire.wakes]");
  Scenario s;
  sem_scenario(s, 0, {"a", "b"});
  s.needs_feature("timeout").needs_feature("nonblocking");
  MPSPEC_START(s);
  const CallId waiter = s.call("a", "S", "acquire", acquire_args(true, huge()));
  ASSERT_FALSE(s.returns_within(waiter, small())) << s.result(waiter);
  ASSERT_TRUE(s.await(s.call("b", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(waiter).ok(true)) << s.result(waiter);
  EXPECT_TRUE(s.await(s.call("b", "S", "acquire", kTry)).ok(false)) << "the unit was taken";
  expect_linearizable(s);
}

TEST(Semaphore, CountingAdmitsExactlyValue) {
  MPSPEC_CLAUSES("[semaphore.acquire.counting] [semaphore.acquire.linearizable]");
  Scenario s;
  sem_scenario(s, 2, {"a", "b", "c"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire")).ok(true));
  ASSERT_TRUE(s.await(s.call("b", "S", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("c", "S", "acquire", kTry)).ok(false))
      << "Semaphore(2) admitted a third holder";
  const CallId waiter = s.call("c", "S", "acquire");
  EXPECT_FALSE(s.returns_within(waiter, small())) << s.result(waiter);
  ASSERT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(waiter).ok(true)) << s.result(waiter);
  expect_linearizable(s);
}

TEST(Semaphore, ScopedForm) {
  MPSPEC_CLAUSES("[semaphore.context.enter] [semaphore.context.exit]");
  Scenario s;
  sem_scenario(s, 1, {"a", "b"});
  s.needs_method("Semaphore", "__enter__").needs_method("Semaphore", "__exit__");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "S", "__enter__")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "S", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("a", "S", "__exit__")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "S", "acquire", kTry)).ok(true));
  expect_linearizable(s);
}

TEST(Semaphore, InheritedValue) {
  MPSPEC_CLAUSES("[semaphore.process.inherit]");
  Scenario s;
  sem_scenario(s, 2, {"a", "b"});
  s.prelude("S", "acquire").needs_feature("nonblocking").needs_feature("prelude");
  MPSPEC_START(s);
  // The parent took one of the two units before starting the actors.
  EXPECT_TRUE(s.await(s.call("a", "S", "acquire", kTry)).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "S", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("b", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "S", "acquire", kTry)).ok(true));
  // The model cannot tell the parent's unit apart from the initial value: the history is
  // linearizable with an initial value of 1.
  expect_linearizable(s);
}

TEST(Semaphore, KilledHolderKeepsUnit) {
  MPSPEC_CLAUSES("[semaphore.kill.holder]");
  Scenario s;
  sem_scenario(s, 1, {"a", "b"});
  s.needs_feature("kill").needs_feature("timeout").needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire")).ok(true));
  s.kill("a");
  const double timeout = small();
  const auto& r = s.await(s.call("b", "S", "acquire", acquire_args(true, timeout)));
  EXPECT_TRUE(r.ok(false)) << "a killed process's unit must not come back: " << r;
  EXPECT_GE(r.elapsed(), timeout - kClockResolution) << r;
  EXPECT_TRUE(s.await(s.call("b", "S", "release")).ok(nullptr)) << "a survivor may release";
  EXPECT_TRUE(s.await(s.call("b", "S", "acquire", kTry)).ok(true));
  expect_linearizable(s);
}

TEST(Semaphore, KilledWaiterDoesNotDisturb) {
  MPSPEC_CLAUSES("[semaphore.kill.waiter] [semaphore.acquire.wakes]");
  Scenario s;
  sem_scenario(s, 0, {"a", "b", "c"});
  s.needs_feature("kill").needs_feature("nonblocking");
  MPSPEC_START(s);
  const CallId doomed = s.call("b", "S", "acquire");
  const CallId survivor = s.call("c", "S", "acquire");
  ASSERT_FALSE(s.returns_within(doomed, small())) << s.result(doomed);
  ASSERT_FALSE(s.returned(survivor)) << s.result(survivor);
  s.kill("b");
  ASSERT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(survivor).ok(true)) << "the surviving waiter must be woken";
  EXPECT_TRUE(s.await(s.call("a", "S", "acquire", kTry)).ok(false)) << "c took the unit";
  expect_linearizable(s);
}

}  // namespace
}  // namespace mpspec
