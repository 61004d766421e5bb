// Scenario tests for spec/manager/proxy.md. Each test names the clauses it checks.
//
// Proxies are Proxy slots: bound by Manager.create in the actor that owns a process-local
// manager, or in the prelude on an inherited manager, so that every actor holds them. `call`
// names the referent's method (Python names, dunders included); `call` with `as` binds the
// proxy a method returns (a dict's `__iter__`).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "manager_util.hpp"

namespace mpspec {
namespace {

using namespace manager_test;

// A process-local manager "M" in actor "a", with the Proxy slots P, D, I.
void local_setup(Scenario& s) {
  s.object("M", "Manager", manager_args())
      .object("P", "Proxy")
      .object("D", "Proxy")
      .object("I", "Proxy")
      .actor("a");
}

// ---- §1 calls ----

TEST(Proxy, CallReturnsACopyOfTheMethodsValue) {
  MPSPEC_CLAUSES("[proxy.call.value]");
  Scenario s;
  local_setup(s);
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  ASSERT_TRUE(run(s, "a", "M", "create", create("list", "P")).ok(nullptr));
  const Json values = Json::array(
      {nullptr, true, false, -7, 0, 1.5, "", "h\xc3\xa9llo", bytes_json(std::string("\x00\xff", 2)),
       Json::array({1, Json::array({2.5})}), Json{{"k", "v"}, {"n", Json::array({1, 2})}}});
  for (const Json& v : values) ASSERT_TRUE(pcall(s, "a", "P", "append", {v}).ok(nullptr)) << v;
  for (std::size_t i = 0; i < values.size(); ++i)
    EXPECT_TRUE(has_value(pcall(s, "a", "P", "__getitem__", {static_cast<int>(i)}), values[i]))
        << "element " << i;
  EXPECT_TRUE(has_value(pcall(s, "a", "P", "__len__"), values.size()));
  EXPECT_TRUE(has_value(pcall(s, "a", "P", "index", {1.5}), 5)) << "1.5 is not 1 nor true";
  // Keyword arguments.
  ASSERT_TRUE(run(s, "a", "M", "create", create("dict", "D")).ok(nullptr));
  EXPECT_TRUE(
      pcall(s, "a", "D", "update", Json::array(), Json{{"kw", 5}, {"other", "x"}}).ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "a", "D", "__getitem__", {"kw"}), 5));
  EXPECT_TRUE(has_value(pcall(s, "a", "D", "pop", {"other"}), "x"));
  ASSERT_TRUE(run(s, "a", "M", "create", create("Queue", "P")).ok(nullptr));
  EXPECT_TRUE(pcall(s, "a", "P", "put", {"item"}, Json{{"block", false}}).ok(nullptr));
  EXPECT_TRUE(
      has_value(pcall(s, "a", "P", "get", Json::array(), Json{{"timeout", long_()}}), "item"));
}

TEST(Proxy, ReferentErrorsKeepTheirKind) {
  MPSPEC_CLAUSES("[proxy.call.error]");
  Scenario s;
  local_setup(s);
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  auto make = [&](const std::string& typeid_, Json args = Json::array()) {
    const CallResult r = run(s, "a", "M", "create", create(typeid_, "P", std::move(args)));
    EXPECT_TRUE(r.ok(nullptr)) << "create " << typeid_ << ": " << r;
  };
  auto expect_raises = [&](const std::string& m, Json args, const std::string& kind) {
    const CallResult r = pcall(s, "a", "P", m, std::move(args));
    EXPECT_TRUE(r.raised(kind)) << m << ": expected " << kind << ", got " << r;
  };
  ASSERT_TRUE(run(s, "a", "M", "create", create("dict", "D", {Json{{"a", 1}}})).ok(nullptr));
  EXPECT_TRUE(pcall(s, "a", "D", "__getitem__", {"zz"}).raised("KeyError"));
  EXPECT_TRUE(pcall(s, "a", "D", "pop", {"zz"}).raised("KeyError"));
  EXPECT_TRUE(pcall(s, "a", "D", "__delitem__", {"zz"}).raised("KeyError"));

  make("list", {Json::array({1})});
  expect_raises("__getitem__", {5}, "IndexError");
  expect_raises("remove", {7}, "ValueError");
  expect_raises("index", {7}, "ValueError");
  EXPECT_TRUE(has_value(pcall(s, "a", "P", "pop"), 1));
  expect_raises("pop", Json::array(), "IndexError");
  make("Array", {"i", Json::array({1})});
  expect_raises("__getitem__", {3}, "IndexError");
  make("Namespace");
  expect_raises("__getattribute__", {"nope"}, "AttributeError");
  make("Queue", {1});
  expect_raises("get_nowait", Json::array(), "Empty");
  EXPECT_TRUE(pcall(s, "a", "P", "put", {1}).ok(nullptr));
  expect_raises("put_nowait", {2}, "Full");
  make("JoinableQueue");
  expect_raises("task_done", Json::array(), "ValueError");
  make("Lock");
  expect_raises("release", Json::array(), "RuntimeError");
  make("RLock");
  expect_raises("release", Json::array(), "RuntimeError");
  make("BoundedSemaphore", {1});
  expect_raises("release", Json::array(), "ValueError");
  make("Condition");
  expect_raises("wait", {small()}, "RuntimeError");
  expect_raises("notify", Json::array(), "RuntimeError");
  make("Barrier", {2});
  expect_raises("wait", {small()}, "BrokenBarrierError");
  // The proxies still work, and the referent is as the failed calls left it.
  EXPECT_TRUE(has_value(run(s, "a", "D", "getvalue"), Json{{"a", 1}}));
  EXPECT_TRUE(has_value(pcall(s, "a", "P", "__getattribute__", {"broken"}), true));
}

TEST(Proxy, UnexposedMethodIsRemoteErrorAndTheProxyGoesOn) {
  MPSPEC_CLAUSES("[proxy.exposed]");
  Scenario s;
  local_setup(s);
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  ASSERT_TRUE(run(s, "a", "M", "create", create("dict", "D", {Json{{"a", 1}}})).ok(nullptr));
  ASSERT_TRUE(run(s, "a", "M", "create", create("list", "P", {Json::array({1, 2})})).ok(nullptr));
  for (const char* m : {"__init__", "_private", "nosuch"}) {
    const CallResult r = pcall(s, "a", "D", m, Json::array());
    EXPECT_TRUE(r.raised("RemoteError")) << "dict " << m << ": " << r;
    EXPECT_TRUE(has_value(pcall(s, "a", "D", "__len__"), 1)) << "after " << m;
    const CallResult q = pcall(s, "a", "P", m, Json::array());
    EXPECT_TRUE(q.raised("RemoteError")) << "list " << m << ": " << q;
    EXPECT_TRUE(has_value(pcall(s, "a", "P", "__len__"), 2)) << "after " << m;
  }
  EXPECT_TRUE(pcall(s, "a", "D", "__init__", {Json{{"b", 2}}}).raised("RemoteError"));
  EXPECT_TRUE(has_value(run(s, "a", "D", "getvalue"), Json{{"a", 1}})) << "__init__ must not run";
}

TEST(Proxy, GetvalueIsACopyOfTheReferent) {
  MPSPEC_CLAUSES("[proxy.getvalue]");
  Scenario s;
  local_setup(s);
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  ASSERT_TRUE(run(s, "a", "M", "create", create("dict", "D", {Json{{"a", 1}}})).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "D", "getvalue"), Json{{"a", 1}}));
  ASSERT_TRUE(pcall(s, "a", "D", "__setitem__", {"b", Json::array({2, "x"})}).ok(nullptr));
  EXPECT_TRUE(
      has_value(run(s, "a", "D", "getvalue"), Json{{"a", 1}, {"b", Json::array({2, "x"})}}));
  ASSERT_TRUE(run(s, "a", "M", "create", create("list", "P", {Json::array({1, 2})})).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "P", "getvalue"), Json::array({1, 2})));
  ASSERT_TRUE(pcall(s, "a", "P", "append", {Json{{"k", nullptr}}}).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "P", "getvalue"), Json::array({1, 2, Json{{"k", nullptr}}})));
  ASSERT_TRUE(run(s, "a", "M", "create", create("shared_dict", "I")).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "I", "getvalue"), Json::object()));
}

// ---- §2 proxies in other processes ----

TEST(Proxy, InheritedProxyWorksInEveryActor) {
  MPSPEC_CLAUSES("[proxy.inherited]");
  Scenario s;
  inherited_manager(s, {create("list", "L"), create("dict", "D", {Json{{"seed", 0}}})});
  const std::vector<std::string> actors = {"a", "b", "c"};
  for (const auto& a : actors) s.actor(a);
  MPSPEC_START(s);
  for (const auto& a : actors) {
    EXPECT_TRUE(has_value(pcall(s, a, "D", "__getitem__", {"seed"}), 0)) << a;
    ASSERT_TRUE(pcall(s, a, "L", "append", {a}).ok(nullptr)) << a;
    ASSERT_TRUE(pcall(s, a, "D", "__setitem__", {a, a + "!"}).ok(nullptr)) << a;
  }
  for (const auto& a : actors) {
    EXPECT_TRUE(has_value(run(s, a, "L", "getvalue"), Json::array({"a", "b", "c"}))) << a;
    EXPECT_TRUE(has_value(pcall(s, a, "D", "__len__"), 4)) << a;
  }
}

// Calls `__next__` on slot I `n` times in `actor`; the keys it returned, or a failure.
::testing::AssertionResult next_keys(Scenario& s, const std::string& actor, int n,
                                     std::multiset<std::string>& out) {
  for (int i = 0; i < n; ++i) {
    const CallResult r = pcall(s, actor, "I", "__next__");
    if (!r.ok() || !r.value.is_string())
      return ::testing::AssertionFailure() << "__next__ #" << i << ": " << r;
    out.insert(r.value.get<std::string>());
  }
  return ::testing::AssertionSuccess();
}

TEST(Proxy, DictIterReturnsAProxyInTheCreatingProcess) {
  MPSPEC_CLAUSES("[proxy.returns_proxy]");
  Scenario s;
  local_setup(s);
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  const Json init{{"a", 1}, {"b", 2}, {"c", 3}};
  ASSERT_TRUE(run(s, "a", "M", "create", create("dict", "D", {init})).ok(nullptr));
  const CallResult it = run(s, "a", "D", "call", method_as("__iter__", "I"));
  ASSERT_TRUE(it.ok(nullptr)) << "__iter__ with as: " << it;
  std::multiset<std::string> keys;
  ASSERT_TRUE(next_keys(s, "a", 3, keys));
  EXPECT_EQ(keys, (std::multiset<std::string>{"a", "b", "c"}));
  // A second iterator starts from the beginning; the dict is unchanged.
  ASSERT_TRUE(run(s, "a", "D", "call", method_as("__iter__", "I")).ok(nullptr));
  keys.clear();
  ASSERT_TRUE(next_keys(s, "a", 3, keys));
  EXPECT_EQ(keys, (std::multiset<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(has_value(run(s, "a", "D", "getvalue"), init));
}

TEST(Proxy, DictIterReturnsAProxyInAnInheritingProcess) {
  MPSPEC_CLAUSES("[proxy.returns_proxy.child]");
  Scenario s;
  const Json init{{"a", 1}, {"b", 2}};
  inherited_manager(s, {create("dict", "D", {init})});
  s.object("I", "Proxy");
  s.actor("a").actor("b");
  MPSPEC_START(s);
  for (const char* actor : {"a", "b"}) {
    ASSERT_TRUE(has_value(pcall(s, actor, "D", "__len__"), 2)) << actor << ": the inherited proxy";
    const CallResult it = run(s, actor, "D", "call", method_as("__iter__", "I"));
    ASSERT_TRUE(it.ok(nullptr))
        << actor << ": __iter__ of an inherited dict proxy, outside the manager's creator "
        << "(CPython: gh-99595): " << it;
    std::multiset<std::string> keys;
    ASSERT_TRUE(next_keys(s, actor, 2, keys)) << actor;
    EXPECT_EQ(keys, (std::multiset<std::string>{"a", "b"})) << actor;
  }
}

}  // namespace
}  // namespace mpspec
