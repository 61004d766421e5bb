// Scenario tests for spec/local/local.md: process-local storage. The value set in the prelude is
// stored by the driver process before the actors start (are forked), so the fork test needs the
// `prelude` feature.
#include <gtest/gtest.h>

#include "scenario.hpp"

namespace mpspec {
namespace {

void local_scenario(Scenario& s) {
  s.object("L", "local");
  for (const char* m : {"set", "get", "clear"}) s.needs_method("local", m);
}

TEST(Local, GetUnsetRaisesAttributeError) {
  MPSPEC_CLAUSES("[local.get.unset]");
  Scenario s;
  local_scenario(s);
  s.actor("a");
  MPSPEC_START(s);
  const auto& r = s.await(s.call("a", "L", "get"));
  EXPECT_TRUE(r.raised("AttributeError")) << r;
}

TEST(Local, SetThenGetAndClear) {
  MPSPEC_CLAUSES("[local.set.get] [local.clear]");
  Scenario s;
  local_scenario(s);
  s.actor("a", 2);
  s.needs_feature("threads");
  MPSPEC_START(s);
  const Json values[] = {Json(1), Json("text"), Json::array({1, "two", nullptr}), Json{{"k", 2.5}},
                         Json(true)};
  for (const auto& v : values) {
    ASSERT_TRUE(s.await(s.call("a", "L", "set", Json{{"value", v}})).ok(nullptr));
    const auto& r = s.await(s.call("a", "L", "get"));
    EXPECT_TRUE(r.ok(v)) << "set(" << v.dump() << ") then get: " << r;
  }
  ASSERT_TRUE(s.await(s.call("a", "L", "set", Json{{"value", 7}}, 1)).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "L", "clear")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "L", "get")).raised("AttributeError"));
  EXPECT_TRUE(s.await(s.call("a", "L", "get", Json::object(), 1)).ok(7))
      << "clear in one thread removed another thread's value";
}

TEST(Local, ThreadsAreIsolated) {
  MPSPEC_CLAUSES("[local.thread.isolated]");
  Scenario s;
  local_scenario(s);
  s.actor("a", 2);
  s.needs_feature("threads");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "set", Json{{"value", "t0"}}, 0)).ok(nullptr));
  const auto& r = s.await(s.call("a", "L", "get", Json::object(), 1));
  EXPECT_TRUE(r.raised("AttributeError")) << "thread 1 saw thread 0's value: " << r;
  ASSERT_TRUE(s.await(s.call("a", "L", "set", Json{{"value", "t1"}}, 1)).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "L", "get", Json::object(), 0)).ok("t0"));
  EXPECT_TRUE(s.await(s.call("a", "L", "get", Json::object(), 1)).ok("t1"));
}

TEST(Local, ProcessesAreIsolated) {
  MPSPEC_CLAUSES("[local.process.isolated]");
  Scenario s;
  local_scenario(s);
  s.actor("a").actor("b");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "set", Json{{"value", "mine"}})).ok(nullptr));
  const auto& r = s.await(s.call("b", "L", "get"));
  EXPECT_TRUE(r.raised("AttributeError")) << "process b saw process a's value: " << r;
  ASSERT_TRUE(s.await(s.call("b", "L", "set", Json{{"value", "b's"}})).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "L", "get")).ok("mine"));
}

TEST(Local, ForkedChildSeesNothing) {
  MPSPEC_CLAUSES("[local.fork.empty]");
  Scenario s;
  local_scenario(s);
  s.prelude("L", "set", Json{{"value", "parent's"}});
  s.actor("a", 2);
  s.needs_feature("prelude").needs_feature("threads");
  MPSPEC_START(s);
  for (int thread : {0, 1}) {
    const auto& r = s.await(s.call("a", "L", "get", Json::object(), thread));
    EXPECT_TRUE(r.raised("AttributeError"))
        << "thread " << thread << " of a process started after set() saw the value: " << r;
  }
}

}  // namespace
}  // namespace mpspec
