// Scenario tests for spec/sync/bounded_semaphore.md. Each test names the clauses it checks;
// most also judge their whole history against the BoundedSemaphore model.
//
// Timing policy (spec/README.md): "is blocked" is a positive handshake plus a `small` grace
// period; "is woken" waits with the liveness bound `huge`.
#include <gtest/gtest.h>

#include <string>

#include "scenario.hpp"

namespace mpspec {
namespace {

using timing::huge;
using timing::small;

const Json kTry = Json{{"block", false}};

void expect_linearizable(Scenario& s) {
  auto r = s.check();
  if (r.verdict == check::Verdict::kUnknown)
    GTEST_SKIP() << "UNRESOLVED: the checker ran out of budget:\n" << r.summary();
  EXPECT_EQ(r.verdict, check::Verdict::kLinearizable)
      << "[bounded_semaphore.semaphore] history is not linearizable:\n"
      << r.summary();
}

void bsem_scenario(Scenario& s, Json value, std::initializer_list<const char*> actors) {
  Json args = Json::object();
  if (!value.is_null()) args["value"] = value;
  s.object("S", "BoundedSemaphore", args)
      .needs_method("BoundedSemaphore", "acquire")
      .needs_method("BoundedSemaphore", "release");
  for (const char* a : actors) s.actor(a);
}

int drain(Scenario& s, const std::string& actor, int limit) {
  for (int n = 0; n <= limit; ++n) {
    const auto& r = s.await(s.call(actor, "S", "acquire", kTry));
    EXPECT_TRUE(r.ok()) << r;
    if (!r.ok(true)) return n;
  }
  return limit + 1;
}

TEST(BoundedSemaphore, DefaultAndInitialValue) {
  MPSPEC_CLAUSES("[bounded_semaphore.construct]");
  {
    Scenario s;
    bsem_scenario(s, nullptr, {"a"});
    s.needs_feature("nonblocking");
    MPSPEC_START(s);
    EXPECT_EQ(drain(s, "a", 3), 1) << "BoundedSemaphore() must hold one unit";
    expect_linearizable(s);
  }
  {
    Scenario s;
    bsem_scenario(s, 3, {"a"});
    s.needs_feature("nonblocking");
    MPSPEC_START(s);
    EXPECT_EQ(drain(s, "a", 5), 3) << "BoundedSemaphore(3) must hold three units";
    expect_linearizable(s);
  }
}

TEST(BoundedSemaphore, NegativeValueRejected) {
  MPSPEC_CLAUSES("[bounded_semaphore.construct]");
  if (!Backend::get().has_type("BoundedSemaphore"))
    GTEST_SKIP() << "UNSUPPORTED: no BoundedSemaphore";
  Scenario s;
  s.object("S", "BoundedSemaphore", Json{{"value", -1}}).actor("a");
  std::string err;
  try {
    err = s.start();
    if (!err.empty()) GTEST_SKIP() << "UNSUPPORTED: " << err;
  } catch (const std::exception& e) {
    err = e.what();
  }
  EXPECT_NE(err.find("SetupError"), std::string::npos) << "BoundedSemaphore(-1) must fail";
}

TEST(BoundedSemaphore, ReleaseAtBoundRaisesValueError) {
  MPSPEC_CLAUSES("[bounded_semaphore.release.above_bound]");
  Scenario s;
  bsem_scenario(s, 2, {"a"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  const auto& r = s.await(s.call("a", "S", "release"));
  EXPECT_TRUE(r.raised("ValueError")) << "release above the initial value: " << r;
  EXPECT_EQ(drain(s, "a", 4), 2) << "a refused release must not change the value";
  expect_linearizable(s);
}

TEST(BoundedSemaphore, ReleaseBelowBound) {
  MPSPEC_CLAUSES("[bounded_semaphore.release.below_bound] [bounded_semaphore.release.above_bound]");
  Scenario s;
  bsem_scenario(s, 2, {"a", "b"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire")).ok(true));
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "S", "release")).ok(nullptr)) << "any process may release";
  EXPECT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "S", "release")).raised("ValueError")) << "back at the bound";
  expect_linearizable(s);
}

TEST(BoundedSemaphore, ZeroBoundRefusesEveryRelease) {
  MPSPEC_CLAUSES("[bounded_semaphore.release.above_bound] [bounded_semaphore.construct]");
  Scenario s;
  bsem_scenario(s, 0, {"a"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "S", "release")).raised("ValueError"));
  EXPECT_TRUE(s.await(s.call("a", "S", "acquire", kTry)).ok(false));
  expect_linearizable(s);
}

TEST(BoundedSemaphore, ConcurrentReleasesRespectBound) {
  MPSPEC_CLAUSES("[bounded_semaphore.release.atomic]");
  Scenario s;
  bsem_scenario(s, 2, {"a", "b", "c", "d"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire")).ok(true));
  // One unit missing, three concurrent releases: exactly one may succeed.
  const CallId r1 = s.call("b", "S", "release");
  const CallId r2 = s.call("c", "S", "release");
  const CallId r3 = s.call("d", "S", "release");
  int ok = 0, refused = 0;
  for (CallId id : {r1, r2, r3}) {
    const auto& r = s.await(id);
    if (r.ok(nullptr)) ++ok;
    if (r.raised("ValueError")) ++refused;
  }
  EXPECT_EQ(ok, 1) << "exactly one of three releases fits under the bound";
  EXPECT_EQ(refused, 2);
  EXPECT_EQ(drain(s, "a", 4), 2) << "the value must end at the bound";
  expect_linearizable(s);
}

TEST(BoundedSemaphore, BehavesAsSemaphore) {
  MPSPEC_CLAUSES("[bounded_semaphore.semaphore]");
  Scenario s;
  bsem_scenario(s, 1, {"a", "b"});
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "S", "acquire", kTry)).ok(false));
  const CallId waiter = s.call("b", "S", "acquire", Json{{"timeout", huge()}});
  ASSERT_FALSE(s.returns_within(waiter, small())) << s.result(waiter);
  ASSERT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(waiter).ok(true)) << s.result(waiter);
  if (Backend::get().has_method("BoundedSemaphore", "get_value")) {
    const auto& v = s.await(s.call("a", "S", "get_value"));
    EXPECT_TRUE(v.ok(0) || v.raised("NotImplementedError")) << v;
  }
  if (Backend::get().has_method("BoundedSemaphore", "__enter__")) {
    ASSERT_TRUE(s.await(s.call("b", "S", "release")).ok(nullptr));
    EXPECT_TRUE(s.await(s.call("a", "S", "__enter__")).ok(true));
    EXPECT_TRUE(s.await(s.call("a", "S", "__exit__")).ok(nullptr));
    EXPECT_TRUE(s.await(s.call("a", "S", "__exit__")).raised("ValueError"))
        << "__exit__ is a release: refused at the bound";
  }
  expect_linearizable(s);
}

}  // namespace
}  // namespace mpspec
