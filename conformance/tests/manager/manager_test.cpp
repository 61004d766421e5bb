// Scenario tests for spec/manager/manager.md. Each test names the clauses it checks.
//
// How the tests observe a manager (the chapter's introduction): a Manager is process-local, so
// the actor that calls it first owns it and its server; objects are created into Proxy slots.
// Several processes share a referent in two ways: through an inherited manager (the prelude
// starts it in the driver's process and creates the objects; every actor inherits the slots),
// or as clients that connect by address and key (`Module.manager_create`, `connect`).
//
// Timing policy (spec/README.md §7): "is blocked" is shown by another process's non-blocking
// attempt failing and by the call not returning within a `small` grace period; timed calls
// assert only a lower bound. Calls a backend might never answer (proxies of a shut-down server)
// are awaited with a bound, so that a hang is a FAIL with its clause. The only polling is the
// bounded wait for a `serve_forever` server to accept connections.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "manager_util.hpp"

namespace mpspec {
namespace {

using namespace manager_test;

// A process-local manager "M" (default address, the tests' key) in actor "a", with the Proxy
// slots P, P2 and the module "Mod".
void local_setup(Scenario& s, Json margs = manager_args()) {
  s.object("M", "Manager", std::move(margs))
      .object("Mod", "Module")
      .object("P", "Proxy")
      .object("P2", "Proxy")
      .actor("a");
}

// Awaits `id` for at most bound(); fails the test (not hangs) when it does not return.
#define AWAIT_BOUNDED(s, id, what)               \
  ASSERT_TRUE((s).returns_within((id), bound())) \
      << what << ": no answer within " << bound() << " s (a call must never hang on a manager)"

// ---- §1 life cycle ----

TEST(Manager, CreateBeforeStartIsAssertionError) {
  MPSPEC_CLAUSES("[manager.construct.unstarted]");
  Scenario s;
  local_setup(s);
  MPSPEC_START(s);
  const CallResult c = run(s, "a", "M", "create", create("dict", "P"));
  SKIP_IF_UNSUPPORTED(c);
  EXPECT_TRUE(c.raised("AssertionError")) << "create on an unstarted manager: " << c;
  EXPECT_FALSE(pcall(s, "a", "P", "__len__").ok()) << "the slot must stay unbound";
  MANAGER_START(s, "a", "M");
  ASSERT_TRUE(run(s, "a", "M", "create", create("dict", "P")).ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "a", "P", "__len__"), 0));
}

TEST(Manager, StartReportsTheAddress) {
  MPSPEC_CLAUSES("[manager.start]");
  Scenario s;
  s.object("M", "Manager", manager_args())
      .object("T", "Manager", manager_args(tcp_any()))
      .object("P", "Proxy")
      .needs_method("Manager", "address")
      .actor("a");
  const std::string path = s.temp_path("m.sock");
  s.object("X", "Manager", manager_args(path));
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  const CallResult a = run(s, "a", "M", "address");
  ASSERT_TRUE(a.ok()) << a;
  EXPECT_TRUE(a.value.is_string() || is_bytes_json(a.value) ||
              (a.value.is_array() && a.value.size() == 2 && a.value[0].is_string() &&
               a.value[1].is_number_integer()))
      << "a default address is a path, an abstract name (bytes) or [host, port]: "
      << a.value.dump();
  ASSERT_TRUE(run(s, "a", "M", "create", create("list", "P", {Json::array({1})})).ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "a", "P", "__len__"), 1)) << "create works at once";

  MANAGER_START(s, "a", "T");
  const CallResult t = run(s, "a", "T", "address");
  ASSERT_TRUE(t.ok() && t.value.is_array() && t.value.size() == 2) << t;
  EXPECT_TRUE(same_value(t.value[0], "127.0.0.1")) << t.value.dump();
  ASSERT_TRUE(t.value[1].is_number_integer()) << t.value.dump();
  EXPECT_GT(t.value[1].get<std::int64_t>(), 0) << "port 0 must report the bound port";
  EXPECT_LT(t.value[1].get<std::int64_t>(), 65536);
  ASSERT_TRUE(run(s, "a", "T", "create", create("dict", "P")).ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "a", "P", "__len__"), 0));

  MANAGER_START(s, "a", "X");
  EXPECT_TRUE(has_value(run(s, "a", "X", "address"), path)) << "an AF_UNIX path is kept";
}

TEST(Manager, StartTwiceOrAfterShutdownIsProcessError) {
  MPSPEC_CLAUSES("[manager.start.twice]");
  Scenario s;
  local_setup(s);
  s.needs_method("Manager", "shutdown");
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  ASSERT_TRUE(run(s, "a", "M", "create", create("list", "P")).ok(nullptr));
  ASSERT_TRUE(pcall(s, "a", "P", "append", {1}).ok(nullptr));
  const CallResult again = run(s, "a", "M", "start");
  EXPECT_TRUE(again.raised("ProcessError")) << "start on a started manager: " << again;
  EXPECT_TRUE(has_value(pcall(s, "a", "P", "__len__"), 1)) << "the server must be unchanged";
  const CallId sd = s.call("a", "M", "shutdown");
  AWAIT_BOUNDED(s, sd, "shutdown");
  ASSERT_TRUE(s.result(sd).ok(nullptr)) << s.result(sd);
  const CallResult after = run(s, "a", "M", "start");
  EXPECT_TRUE(after.raised("ProcessError")) << "start after shutdown: " << after;
}

TEST(Manager, ShutdownMakesEveryProxyFailPromptly) {
  MPSPEC_CLAUSES("[manager.shutdown]");
  Scenario s;
  local_setup(s);
  s.object("D", "Proxy").actor("b");
  s.needs_method("Manager", "shutdown")
      .needs_method("Manager", "address")
      .needs_method("Module", "manager_create");
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  const CallResult addr = run(s, "a", "M", "address");
  ASSERT_TRUE(addr.ok()) << addr;
  ASSERT_TRUE(run(s, "a", "M", "create", create("dict", "P")).ok(nullptr));
  ASSERT_TRUE(pcall(s, "a", "P", "__setitem__", {"k", 1}).ok(nullptr));
  // A client in another process, with a connection of its own.
  ASSERT_TRUE(
      run(s, "b", "Mod", "manager_create", remote_create(addr.value, key(), "shared_dict", "D"))
          .ok(nullptr));
  ASSERT_TRUE(pcall(s, "b", "D", "__setitem__", {"k", 2}).ok(nullptr));

  const CallId sd = s.call("a", "M", "shutdown");
  AWAIT_BOUNDED(s, sd, "shutdown");
  ASSERT_TRUE(s.result(sd).ok(nullptr)) << s.result(sd);

  for (int i = 0; i < 2; ++i) {
    const CallId own = s.call("a", "P", "call", method("__len__"));
    AWAIT_BOUNDED(s, own, "a proxy call in the owner after shutdown (#" << i << ")");
    EXPECT_FALSE(s.result(own).ok())
        << "a proxy of a shut-down server returned a value: " << s.result(own);
    const CallId other = s.call("b", "D", "call", method("__getitem__", {"k"}));
    AWAIT_BOUNDED(s, other, "a proxy call in another process after shutdown (#" << i << ")");
    EXPECT_FALSE(s.result(other).ok())
        << "a proxy of a shut-down server returned a value: " << s.result(other);
  }
  const CallId sd2 = s.call("a", "M", "shutdown");
  AWAIT_BOUNDED(s, sd2, "a second shutdown");
  EXPECT_TRUE(s.result(sd2).ok(nullptr)) << "a second shutdown: " << s.result(sd2);
  const CallId c = s.call("a", "M", "create", create("list", "P2"));
  AWAIT_BOUNDED(s, c, "create after shutdown");
  EXPECT_FALSE(s.result(c).ok()) << "create on a shut-down manager: " << s.result(c);
}

TEST(Manager, WithBlockStartsAndShutsDown) {
  MPSPEC_CLAUSES("[manager.context]");
  {
    Scenario s;
    local_setup(s);
    s.needs_method("Manager", "__enter__").needs_method("Manager", "__exit__");
    MPSPEC_START(s);
    const CallResult e = run(s, "a", "M", "__enter__");
    SKIP_IF_UNSUPPORTED(e);
    ASSERT_TRUE(e.ok(nullptr)) << e;
    ASSERT_TRUE(run(s, "a", "M", "create", create("list", "P", {Json::array({1})})).ok(nullptr));
    ASSERT_TRUE(pcall(s, "a", "P", "append", {2}).ok(nullptr));
    EXPECT_TRUE(has_value(run(s, "a", "P", "getvalue"), Json::array({1, 2})));
    const CallId x = s.call("a", "M", "__exit__");
    AWAIT_BOUNDED(s, x, "__exit__");
    ASSERT_TRUE(s.result(x).ok(nullptr)) << s.result(x);
    const CallId after = s.call("a", "P", "call", method("__len__"));
    AWAIT_BOUNDED(s, after, "a proxy call after __exit__");
    EXPECT_FALSE(s.result(after).ok()) << "the server must be shut down: " << s.result(after);
  }
  {
    Scenario s;  // __enter__ on a started manager leaves it running
    local_setup(s);
    s.needs_method("Manager", "__enter__").needs_method("Manager", "__exit__");
    MPSPEC_START(s);
    MANAGER_START(s, "a", "M");
    ASSERT_TRUE(run(s, "a", "M", "create", create("dict", "P")).ok(nullptr));
    ASSERT_TRUE(pcall(s, "a", "P", "__setitem__", {"k", 1}).ok(nullptr));
    EXPECT_TRUE(run(s, "a", "M", "__enter__").ok(nullptr));
    EXPECT_TRUE(has_value(pcall(s, "a", "P", "__getitem__", {"k"}), 1));
    ASSERT_TRUE(run(s, "a", "M", "create", create("dict", "P2")).ok(nullptr));
    const CallId x = s.call("a", "M", "__exit__");
    AWAIT_BOUNDED(s, x, "__exit__");
    EXPECT_TRUE(s.result(x).ok(nullptr)) << s.result(x);
  }
}

TEST(Manager, CreateWithRejectedArgumentsFails) {
  MPSPEC_CLAUSES("[manager.create.error]");
  Scenario s;
  local_setup(s);
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  ASSERT_TRUE(run(s, "a", "M", "create", create("list", "P", {Json::array({7})})).ok(nullptr));
  const CallResult bad = run(s, "a", "M", "create", create("Semaphore", "P", {-1}));
  EXPECT_FALSE(bad.ok()) << "a Semaphore with an initial value of -1: " << bad;
  EXPECT_TRUE(has_value(run(s, "a", "P", "getvalue"), Json::array({7})))
      << "the slot must still hold the list";
  ASSERT_TRUE(run(s, "a", "M", "create", create("Semaphore", "P2", {1})).ok(nullptr))
      << "the server keeps serving";
  EXPECT_TRUE(has_value(pcall(s, "a", "P2", "acquire", {false}), true));
}

// ---- §2 connecting and serving ----

TEST(Manager, ConnectReachesARunningServer) {
  MPSPEC_CLAUSES("[manager.connect] [manager.typeid.shared_dict]");
  Scenario s;
  const std::string path = s.temp_path("mgr.sock");
  s.object("M", "Manager", manager_args(path))
      .object("C", "Manager", manager_args(path))
      .object("Mod", "Module")
      .object("D", "Proxy")
      .object("L", "Proxy")
      .actor("a")
      .actor("b")
      .actor("c");
  s.needs_method("Manager", "connect").needs_method("Module", "manager_create");
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  ASSERT_TRUE(run(s, "a", "M", "create", create("shared_dict", "D")).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "D", "getvalue"), Json::object())) << "it starts empty";
  ASSERT_TRUE(pcall(s, "a", "D", "__setitem__", {"x", 1}).ok(nullptr));

  // A second manager, in another actor, connects with the same address and key.
  const CallResult con = run(s, "b", "C", "connect");
  ASSERT_TRUE(con.ok(nullptr)) << "connect: " << con;
  ASSERT_TRUE(run(s, "b", "C", "create", create("shared_dict", "D")).ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "b", "D", "__getitem__", {"x"}), 1));
  ASSERT_TRUE(pcall(s, "b", "D", "__setitem__", {"y", 2}).ok(nullptr));
  // Objects a client creates live in that server too.
  ASSERT_TRUE(run(s, "b", "C", "create", create("list", "L", {Json::array({1, 2})})).ok(nullptr));
  ASSERT_TRUE(pcall(s, "b", "L", "append", {3}).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "b", "L", "getvalue"), Json::array({1, 2, 3})));

  // manager_create: connect and create in one call.
  const CallResult mc =
      run(s, "c", "Mod", "manager_create", remote_create(path, key(), "shared_dict", "D"));
  ASSERT_TRUE(mc.ok(nullptr)) << "manager_create: " << mc;
  EXPECT_TRUE(has_value(pcall(s, "c", "D", "__getitem__", {"y"}), 2));
  EXPECT_TRUE(has_value(pcall(s, "c", "D", "__len__"), 2));
  EXPECT_TRUE(has_value(run(s, "a", "D", "getvalue"), Json{{"x", 1}, {"y", 2}}));
}

TEST(Manager, ConnectWithAWrongKeyIsAuthenticationError) {
  MPSPEC_CLAUSES("[manager.connect.wrong_key]");
  Scenario s;
  const std::string path = s.temp_path("mgr.sock");
  s.object("M", "Manager", manager_args(path))
      .object("C", "Manager", manager_args(path, key("another key")))
      .object("Mod", "Module")
      .object("D", "Proxy")
      .object("L", "Proxy")
      .actor("a")
      .actor("b")
      .actor("c");
  s.needs_method("Manager", "connect").needs_method("Module", "manager_create");
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  ASSERT_TRUE(run(s, "a", "M", "create", create("shared_dict", "D")).ok(nullptr));
  ASSERT_TRUE(pcall(s, "a", "D", "__setitem__", {"x", 1}).ok(nullptr));

  const CallResult con = run(s, "b", "C", "connect");
  EXPECT_TRUE(con.raised("AuthenticationError")) << "connect with a wrong key: " << con;
  const CallResult mc = run(s, "b", "Mod", "manager_create",
                            remote_create(path, key("another key"), "shared_dict", "D"));
  EXPECT_TRUE(mc.raised("AuthenticationError")) << "manager_create with a wrong key: " << mc;
  EXPECT_FALSE(pcall(s, "b", "D", "__len__").ok()) << "the slot must stay unbound";

  // The server keeps serving: a client with the right key, and the owner.
  ASSERT_TRUE(run(s, "c", "Mod", "manager_create", remote_create(path, key(), "shared_dict", "D"))
                  .ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "c", "D", "__getitem__", {"x"}), 1));
  EXPECT_TRUE(pcall(s, "a", "D", "__setitem__", {"y", 2}).ok(nullptr));
  EXPECT_TRUE(run(s, "a", "M", "create", create("list", "L")).ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "c", "D", "__getitem__", {"y"}), 2));
}

TEST(Manager, ConnectWithoutAServerIsOSError) {
  MPSPEC_CLAUSES("[manager.connect.no_server]");
  Scenario s;
  const std::string path = s.temp_path("nobody.sock");
  s.object("C", "Manager", manager_args(path)).object("Mod", "Module").object("D", "Proxy");
  s.actor("a");
  s.needs_method("Manager", "connect").needs_method("Module", "manager_create");
  MPSPEC_START(s);
  const CallResult mc =
      run(s, "a", "Mod", "manager_create", remote_create(path, key(), "dict", "D"));
  EXPECT_TRUE(mc.raised("OSError")) << "manager_create where no server listens: " << mc;
  const CallResult con = run(s, "a", "C", "connect");
  EXPECT_TRUE(con.raised("OSError")) << "connect where no server listens: " << con;
}

TEST(Manager, TcpServerIsSharedByClientsInOtherActors) {
  MPSPEC_CLAUSES("[manager.remote.tcp] [manager.typeid.shared_dict]");
  Scenario s;
  s.object("M", "Manager", manager_args(tcp_any()))
      .object("Mod", "Module")
      .object("D", "Proxy")
      .actor("a")
      .actor("b")
      .actor("c");
  s.needs_method("Manager", "address").needs_method("Module", "manager_create");
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  const CallResult addr = run(s, "a", "M", "address");
  ASSERT_TRUE(addr.ok() && addr.value.is_array() && addr.value.size() == 2) << addr;
  ASSERT_TRUE(addr.value[1].is_number_integer() && addr.value[1].get<std::int64_t>() > 0)
      << addr.value.dump();
  for (const char* client : {"b", "c"}) {
    const CallResult mc = run(s, client, "Mod", "manager_create",
                              remote_create(addr.value, key(), "shared_dict", "D"));
    ASSERT_TRUE(mc.ok(nullptr)) << client << ": manager_create over TCP: " << mc;
  }
  ASSERT_TRUE(pcall(s, "b", "D", "__setitem__", {"from_b", 1}).ok(nullptr));
  ASSERT_TRUE(pcall(s, "c", "D", "__setitem__", {"from_c", Json::array({2, "two"})}).ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "c", "D", "__getitem__", {"from_b"}), 1));
  EXPECT_TRUE(has_value(pcall(s, "b", "D", "__getitem__", {"from_c"}), Json::array({2, "two"})));
  ASSERT_TRUE(run(s, "a", "M", "create", create("shared_dict", "D")).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "D", "getvalue"),
                        Json{{"from_b", 1}, {"from_c", Json::array({2, "two"})}}))
      << "the owner sees what the clients wrote";
}

TEST(Manager, ServeForeverServesClientsInOtherActors) {
  MPSPEC_CLAUSES("[manager.serve_forever]");
  Scenario s;
  const std::string path = s.temp_path("srv.sock");
  s.object("M", "Manager", manager_args(path))
      .object("Mod", "Module")
      .object("D", "Proxy")
      .object("Q", "Proxy")
      .actor("a")
      .actor("b")
      .actor("c");
  s.needs_method("Manager", "serve_forever").needs_method("Module", "manager_create");
  MPSPEC_START(s);
  const CallId server = s.call("a", "M", "serve_forever");
  // Wait for the server to accept connections: a bounded number of attempts, a short pause
  // between them (the one place where the suite polls).
  const double pause = 5 * timing::yield();
  const int attempts = static_cast<int>(bound() / pause) + 1;
  CallResult mc;
  bool up = false;
  for (int i = 0; i < attempts && !up; ++i) {
    if (s.returned(server)) {
      const CallResult& r = s.result(server);
      SKIP_IF_UNSUPPORTED(r);
      FAIL() << "serve_forever returned without a shutdown request: " << r;
    }
    mc = run(s, "b", "Mod", "manager_create", remote_create(path, key(), "shared_dict", "D"));
    SKIP_IF_UNSUPPORTED(mc);
    up = mc.ok();
    if (!up) std::this_thread::sleep_for(std::chrono::duration<double>(pause));
  }
  ASSERT_TRUE(up) << "no client could connect to the serve_forever server within about " << bound()
                  << " s; last attempt: " << mc;
  ASSERT_TRUE(pcall(s, "b", "D", "__setitem__", {"k", "from b"}).ok(nullptr));
  ASSERT_TRUE(run(s, "c", "Mod", "manager_create", remote_create(path, key(), "shared_dict", "D"))
                  .ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "c", "D", "__getitem__", {"k"}), "from b"));
  ASSERT_TRUE(
      run(s, "c", "Mod", "manager_create", remote_create(path, key(), "Queue", "Q")).ok(nullptr));
  EXPECT_TRUE(pcall(s, "c", "Q", "put", {5}).ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "c", "Q", "get"), 5));
  EXPECT_FALSE(s.returns_within(server, small()))
      << "serve_forever returned while no shutdown request came: " << s.result(server);
}

// ---- §3 the typeid catalogue ----

TEST(Manager, TypeidsDictAndList) {
  MPSPEC_CLAUSES("[manager.typeids]");
  Scenario s;
  local_setup(s);
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  ASSERT_TRUE(run(s, "a", "M", "create", create("dict", "P", {Json{{"a", 1}}})).ok(nullptr));
  auto d = [&](const std::string& m, Json args = Json::array()) {
    return pcall(s, "a", "P", m, std::move(args));
  };
  EXPECT_TRUE(d("__setitem__", {"b", 2}).ok(nullptr));
  EXPECT_TRUE(has_value(d("__getitem__", {"b"}), 2));
  EXPECT_TRUE(has_value(d("__len__"), 2));
  EXPECT_TRUE(has_value(d("__contains__", {"a"}), true));
  EXPECT_TRUE(has_value(d("__contains__", {"z"}), false));
  EXPECT_TRUE(has_value(d("get", {"z", 0}), 0));
  EXPECT_TRUE(has_value(d("get", {"z"}), nullptr));
  EXPECT_TRUE(has_value(d("get", {"a"}), 1));
  EXPECT_TRUE(has_value(d("keys"), Json::array({"a", "b"})));
  EXPECT_TRUE(has_value(d("values"), Json::array({1, 2})));
  EXPECT_TRUE(has_value(d("items"), Json::array({Json::array({"a", 1}), Json::array({"b", 2})})));
  EXPECT_TRUE(d("update", {Json{{"c", 3}}}).ok(nullptr));
  EXPECT_TRUE(has_value(d("setdefault", {"d", 4}), 4));
  EXPECT_TRUE(has_value(d("setdefault", {"d", 5}), 4));
  EXPECT_TRUE(has_value(d("pop", {"d"}), 4));
  EXPECT_TRUE(has_value(d("pop", {"d", "gone"}), "gone"));
  EXPECT_TRUE(d("__delitem__", {"c"}).ok(nullptr));
  EXPECT_TRUE(has_value(d("copy"), Json{{"a", 1}, {"b", 2}}));
  EXPECT_TRUE(d("clear").ok(nullptr));
  EXPECT_TRUE(has_value(d("__len__"), 0));
  ASSERT_TRUE(run(s, "a", "M", "create", create("dict", "P2")).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "P2", "getvalue"), Json::object())) << "dict()";

  ASSERT_TRUE(
      run(s, "a", "M", "create", create("list", "P", {Json::array({3, 1, 2})})).ok(nullptr));
  auto l = d;
  EXPECT_TRUE(l("append", {4}).ok(nullptr));
  EXPECT_TRUE(l("extend", {Json::array({5})}).ok(nullptr));
  EXPECT_TRUE(l("insert", {0, 0}).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "P", "getvalue"), Json::array({0, 3, 1, 2, 4, 5})));
  EXPECT_TRUE(has_value(l("__getitem__", {1}), 3));
  EXPECT_TRUE(has_value(l("__getitem__", {-1}), 5));
  EXPECT_TRUE(l("__setitem__", {1, 9}).ok(nullptr));
  EXPECT_TRUE(has_value(l("__len__"), 6));
  EXPECT_TRUE(has_value(l("__contains__", {9}), true));
  EXPECT_TRUE(has_value(l("__contains__", {3}), false));
  EXPECT_TRUE(has_value(l("index", {9}), 1));
  EXPECT_TRUE(has_value(l("count", {9}), 1));
  EXPECT_TRUE(has_value(l("pop"), 5));
  EXPECT_TRUE(has_value(l("pop", {0}), 0));
  EXPECT_TRUE(l("remove", {9}).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "P", "getvalue"), Json::array({1, 2, 4})));
  EXPECT_TRUE(l("reverse").ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "P", "getvalue"), Json::array({4, 2, 1})));
  EXPECT_TRUE(l("sort").ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "P", "getvalue"), Json::array({1, 2, 4})));
  ASSERT_TRUE(run(s, "a", "M", "create", create("list", "P2")).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "P2", "getvalue"), Json::array())) << "list()";
}

TEST(Manager, TypeidsNamespaceValueArray) {
  MPSPEC_CLAUSES("[manager.typeids]");
  Scenario s;
  local_setup(s);
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  auto p = [&](const std::string& m, Json args = Json::array()) {
    return pcall(s, "a", "P", m, std::move(args));
  };
  ASSERT_TRUE(run(s, "a", "M", "create", create("Namespace", "P", Json::array(), Json{{"x", 1}}))
                  .ok(nullptr));
  EXPECT_TRUE(has_value(p("__getattribute__", {"x"}), 1));
  EXPECT_TRUE(p("__setattr__", {"y", "two"}).ok(nullptr));
  EXPECT_TRUE(has_value(p("__getattribute__", {"y"}), "two"));
  EXPECT_TRUE(p("__delattr__", {"x"}).ok(nullptr));
  EXPECT_TRUE(p("__getattribute__", {"x"}).raised("AttributeError"));
  EXPECT_TRUE(has_value(p("__getattribute__", {"y"}), "two"));

  ASSERT_TRUE(run(s, "a", "M", "create", create("Value", "P", {"i", 3})).ok(nullptr));
  EXPECT_TRUE(has_value(p("get"), 3));
  EXPECT_TRUE(p("set", {4}).ok(nullptr));
  EXPECT_TRUE(has_value(p("get"), 4));
  ASSERT_TRUE(run(s, "a", "M", "create", create("Value", "P", {"d", 1.5})).ok(nullptr));
  EXPECT_TRUE(has_value(p("get"), 1.5));

  ASSERT_TRUE(
      run(s, "a", "M", "create", create("Array", "P", {"i", Json::array({1, 2, 3})})).ok(nullptr));
  EXPECT_TRUE(has_value(p("__len__"), 3));
  EXPECT_TRUE(has_value(p("__getitem__", {0}), 1));
  EXPECT_TRUE(p("__setitem__", {0, 7}).ok(nullptr));
  EXPECT_TRUE(has_value(p("__getitem__", {0}), 7));
  EXPECT_TRUE(has_value(p("__getitem__", {2}), 3));
}

TEST(Manager, TypeidsQueues) {
  MPSPEC_CLAUSES("[manager.typeids]");
  Scenario s;
  local_setup(s);
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  auto p = [&](const std::string& m, Json args = Json::array()) {
    return pcall(s, "a", "P", m, std::move(args));
  };
  ASSERT_TRUE(run(s, "a", "M", "create", create("Queue", "P")).ok(nullptr));
  EXPECT_TRUE(has_value(p("empty"), true));
  EXPECT_TRUE(p("put", {1}).ok(nullptr));
  EXPECT_TRUE(p("put", {"two"}).ok(nullptr));
  EXPECT_TRUE(has_value(p("qsize"), 2));
  EXPECT_TRUE(has_value(p("empty"), false));
  EXPECT_TRUE(has_value(p("full"), false));
  EXPECT_TRUE(has_value(p("get"), 1));
  EXPECT_TRUE(has_value(p("get_nowait"), "two"));
  EXPECT_TRUE(p("put_nowait", {3}).ok(nullptr));
  EXPECT_TRUE(has_value(p("get", {true, long_()}), 3));

  ASSERT_TRUE(run(s, "a", "M", "create", create("Queue", "P", {1})).ok(nullptr));
  EXPECT_TRUE(p("put", {1}).ok(nullptr));
  EXPECT_TRUE(has_value(p("full"), true));
  EXPECT_TRUE(p("put_nowait", {2}).raised("Full"));
  EXPECT_TRUE(has_value(p("get_nowait"), 1));
  EXPECT_TRUE(p("get_nowait").raised("Empty"));

  ASSERT_TRUE(run(s, "a", "M", "create", create("JoinableQueue", "P")).ok(nullptr));
  EXPECT_TRUE(p("put", {"job"}).ok(nullptr));
  EXPECT_TRUE(has_value(p("get"), "job"));
  EXPECT_TRUE(p("task_done").ok(nullptr));
  const CallId j = s.call("a", "P", "call", method("join"));
  AWAIT_BOUNDED(s, j, "join of a JoinableQueue whose every item is done");
  EXPECT_TRUE(s.result(j).ok(nullptr)) << s.result(j);
  EXPECT_TRUE(p("task_done").raised("ValueError"));
}

TEST(Manager, TypeidsLocksAndSemaphores) {
  MPSPEC_CLAUSES("[manager.typeids]");
  Scenario s;
  local_setup(s);
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  auto p = [&](const std::string& m, Json args = Json::array(), Json kwds = Json::object()) {
    return pcall(s, "a", "P", m, std::move(args), std::move(kwds));
  };
  ASSERT_TRUE(run(s, "a", "M", "create", create("Lock", "P")).ok(nullptr));
  EXPECT_TRUE(has_value(p("acquire"), true));
  EXPECT_TRUE(has_value(p("acquire", {false}), false));
  EXPECT_TRUE(has_value(p("acquire", Json::array(), Json{{"blocking", false}}), false));
  EXPECT_TRUE(p("release").ok(nullptr));
  EXPECT_TRUE(p("release").raised("RuntimeError"));
  EXPECT_TRUE(has_value(p("acquire", {false}), true));

  ASSERT_TRUE(run(s, "a", "M", "create", create("RLock", "P")).ok(nullptr));
  EXPECT_TRUE(has_value(p("acquire"), true));
  EXPECT_TRUE(has_value(p("acquire", {false}), true)) << "an RLock is recursive";
  EXPECT_TRUE(p("release").ok(nullptr));
  EXPECT_TRUE(p("release").ok(nullptr));
  EXPECT_TRUE(p("release").raised("RuntimeError"));

  ASSERT_TRUE(run(s, "a", "M", "create", create("Semaphore", "P", {2})).ok(nullptr));
  EXPECT_TRUE(has_value(p("acquire", {false}), true));
  EXPECT_TRUE(has_value(p("acquire", {false}), true));
  EXPECT_TRUE(has_value(p("acquire", {false}), false));
  EXPECT_TRUE(p("release").ok(nullptr));
  EXPECT_TRUE(has_value(p("acquire", {false}), true));
  ASSERT_TRUE(run(s, "a", "M", "create", create("Semaphore", "P")).ok(nullptr));
  EXPECT_TRUE(has_value(p("acquire", {false}), true)) << "Semaphore() starts at 1";
  EXPECT_TRUE(has_value(p("acquire", {false}), false));
  EXPECT_TRUE(p("release").ok(nullptr));
  EXPECT_TRUE(p("release").ok(nullptr)) << "a Semaphore may go above its initial value";

  ASSERT_TRUE(run(s, "a", "M", "create", create("BoundedSemaphore", "P", {1})).ok(nullptr));
  EXPECT_TRUE(p("release").raised("ValueError"));
  EXPECT_TRUE(has_value(p("acquire", {false}), true));
  EXPECT_TRUE(has_value(p("acquire", {false}), false));
  EXPECT_TRUE(p("release").ok(nullptr));
}

TEST(Manager, TypeidsEventConditionBarrier) {
  MPSPEC_CLAUSES("[manager.typeids]");
  Scenario s;
  local_setup(s);
  MPSPEC_START(s);
  MANAGER_START(s, "a", "M");
  auto p = [&](const std::string& m, Json args = Json::array()) {
    return pcall(s, "a", "P", m, std::move(args));
  };
  ASSERT_TRUE(run(s, "a", "M", "create", create("Event", "P")).ok(nullptr));
  EXPECT_TRUE(has_value(p("is_set"), false));
  const CallResult w = p("wait", {small()});
  EXPECT_TRUE(has_value(w, false));
  EXPECT_GE(w.elapsed(), small() - kClockResolution) << "a timed wait returned early";
  EXPECT_TRUE(p("set").ok(nullptr));
  EXPECT_TRUE(has_value(p("is_set"), true));
  EXPECT_TRUE(has_value(p("wait"), true));
  EXPECT_TRUE(has_value(p("wait", {0}), true));
  EXPECT_TRUE(p("clear").ok(nullptr));
  EXPECT_TRUE(has_value(p("is_set"), false));

  ASSERT_TRUE(run(s, "a", "M", "create", create("Condition", "P")).ok(nullptr));
  EXPECT_TRUE(p("wait", {small()}).raised("RuntimeError")) << "wait without the lock";
  EXPECT_TRUE(p("notify").raised("RuntimeError")) << "notify without the lock";
  EXPECT_TRUE(has_value(p("acquire"), true));
  EXPECT_TRUE(has_value(p("acquire"), true)) << "a Condition's own lock is an RLock";
  EXPECT_TRUE(p("release").ok(nullptr));
  EXPECT_TRUE(p("notify").ok(nullptr));
  EXPECT_TRUE(p("notify_all").ok(nullptr));
  const CallResult cw = p("wait", {small()});
  EXPECT_TRUE(has_value(cw, false)) << "nobody notifies";
  EXPECT_GE(cw.elapsed(), small() - kClockResolution);
  EXPECT_TRUE(p("release").ok(nullptr));

  ASSERT_TRUE(run(s, "a", "M", "create", create("Barrier", "P", {1})).ok(nullptr));
  EXPECT_TRUE(has_value(p("__getattribute__", {"parties"}), 1));
  EXPECT_TRUE(has_value(p("wait"), 0)) << "one party: the barrier trips at once";
  EXPECT_TRUE(has_value(p("__getattribute__", {"n_waiting"}), 0));
  EXPECT_TRUE(has_value(p("__getattribute__", {"broken"}), false));
  EXPECT_TRUE(p("abort").ok(nullptr));
  EXPECT_TRUE(has_value(p("__getattribute__", {"broken"}), true));
  EXPECT_TRUE(p("wait").raised("BrokenBarrierError"));
  EXPECT_TRUE(p("reset").ok(nullptr));
  EXPECT_TRUE(has_value(p("__getattribute__", {"broken"}), false));
  EXPECT_TRUE(has_value(p("wait"), 0));
}

// ---- §4 shared state ----

TEST(Manager, ChangesAreSeenThroughEveryProxyInEveryProcess) {
  MPSPEC_CLAUSES("[manager.shared]");
  Scenario s;
  inherited_manager(
      s, {create("shared_dict", "S1"), create("shared_dict", "S2"), create("list", "L")});
  s.actor("a").actor("b").actor("c");
  MPSPEC_START(s);
  // Two proxies of one referent (shared_dict), in three processes.
  ASSERT_TRUE(pcall(s, "a", "S1", "__setitem__", {"from_a", 1}).ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "a", "S2", "__getitem__", {"from_a"}), 1))
      << "another proxy in the same process";
  EXPECT_TRUE(has_value(pcall(s, "b", "S2", "__getitem__", {"from_a"}), 1));
  ASSERT_TRUE(pcall(s, "b", "S2", "__setitem__", {"from_b", 2}).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "c", "S1", "getvalue"), Json{{"from_a", 1}, {"from_b", 2}}));
  // A list, changed from two processes, read from a third.
  ASSERT_TRUE(pcall(s, "b", "L", "append", {"b"}).ok(nullptr));
  ASSERT_TRUE(pcall(s, "c", "L", "append", {"c"}).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "a", "L", "getvalue"), Json::array({"b", "c"})));
  ASSERT_TRUE(pcall(s, "a", "L", "reverse").ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "b", "L", "__getitem__", {0}), "c"));
}

TEST(Manager, ConcurrentDictUpdatesLoseNothing) {
  MPSPEC_CLAUSES("[manager.dict.atomic]");
  Scenario s;
  inherited_manager(s, {create("dict", "D")});
  const std::vector<std::string> actors = {"a", "b", "c"};
  for (const auto& a : actors) s.actor(a);
  MPSPEC_START(s);
  Json want = Json::object();
  const int rounds = 40;
  for (int i = 0; i < rounds; ++i) {
    std::vector<CallId> ids;
    for (const auto& a : actors) {
      const std::string k = a + std::to_string(i);
      if (i % 2 == 0) {
        ids.push_back(s.call(a, "D", "call", method("__setitem__", {k, i})));
        want[k] = i;
      } else {
        const Json m{{k, i}, {k + "u", -i}};
        ids.push_back(s.call(a, "D", "call", method("update", {m})));
        want.update(m);
      }
    }
    for (CallId id : ids) ASSERT_TRUE(s.await(id).ok(nullptr)) << s.result(id);
  }
  const CallResult v = run(s, "a", "D", "getvalue");
  ASSERT_TRUE(v.ok() && v.value.is_object()) << v;
  EXPECT_EQ(v.value.size(), want.size()) << "keys lost or added";
  EXPECT_TRUE(has_value(v, want));
  EXPECT_TRUE(has_value(pcall(s, "b", "D", "__len__"), want.size()));
}

TEST(Manager, LockIsSharedBetweenProcesses) {
  MPSPEC_CLAUSES("[manager.sync.semantics]");
  Scenario s;
  inherited_manager(s, {create("Lock", "L")});
  s.actor("a").actor("b").actor("c");
  MPSPEC_START(s);
  ASSERT_TRUE(has_value(pcall(s, "a", "L", "acquire"), true));
  EXPECT_TRUE(has_value(pcall(s, "b", "L", "acquire", {false}), false)) << "held by a";
  const CallId blocked = s.call("b", "L", "call", method("acquire"));
  EXPECT_FALSE(s.returns_within(blocked, small()))
      << "a blocking acquire of a held lock returned: " << s.result(blocked);
  const CallResult timed = pcall(s, "c", "L", "acquire", {true, small()});
  EXPECT_TRUE(has_value(timed, false));
  EXPECT_GE(timed.elapsed(), small() - kClockResolution) << "a timed acquire returned early";
  const CallResult rel = pcall(s, "a", "L", "release");
  ASSERT_TRUE(rel.ok(nullptr)) << rel;
  const CallResult& got = s.await(blocked);
  ASSERT_TRUE(has_value(got, true)) << "the waiter must get the lock once a released it";
  EXPECT_GE(got.return_ns, rel.invoke_ns) << "the waiter returned before the release";
  // Held by b; released by c: a manager Lock has no owner.
  EXPECT_TRUE(has_value(pcall(s, "c", "L", "acquire", {false}), false));
  EXPECT_TRUE(pcall(s, "c", "L", "release").ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "a", "L", "acquire", {false}), true));
  EXPECT_TRUE(pcall(s, "b", "L", "release").ok(nullptr));
}

TEST(Manager, EventIsSharedBetweenProcesses) {
  MPSPEC_CLAUSES("[manager.sync.semantics]");
  Scenario s;
  inherited_manager(s, {create("Event", "E")});
  s.actor("a").actor("b").actor("c");
  MPSPEC_START(s);
  const CallId waiter = s.call("a", "E", "call", method("wait"));
  EXPECT_TRUE(has_value(pcall(s, "b", "E", "is_set"), false));
  EXPECT_FALSE(s.returns_within(waiter, small()))
      << "wait on a clear event returned: " << s.result(waiter);
  const CallResult timed = pcall(s, "c", "E", "wait", {small()});
  EXPECT_TRUE(has_value(timed, false));
  EXPECT_GE(timed.elapsed(), small() - kClockResolution) << "a timed wait returned early";
  const CallResult set = pcall(s, "b", "E", "set");
  ASSERT_TRUE(set.ok(nullptr)) << set;
  const CallResult& woke = s.await(waiter);
  ASSERT_TRUE(has_value(woke, true)) << "the waiter must wake once b set the event";
  EXPECT_GE(woke.return_ns, set.invoke_ns) << "the waiter returned before the set";
  EXPECT_TRUE(has_value(pcall(s, "c", "E", "wait", {small()}), true));
  EXPECT_TRUE(has_value(pcall(s, "a", "E", "is_set"), true));
  EXPECT_TRUE(pcall(s, "c", "E", "clear").ok(nullptr));
  EXPECT_TRUE(has_value(pcall(s, "a", "E", "wait", {small()}), false));
}

TEST(Manager, QueueIsSharedBetweenProcesses) {
  MPSPEC_CLAUSES("[manager.sync.semantics]");
  Scenario s;
  inherited_manager(s, {create("Queue", "Q", {2})});
  s.actor("a").actor("b").actor("c");
  MPSPEC_START(s);
  const CallId getter = s.call("c", "Q", "call", method("get"));
  EXPECT_FALSE(s.returns_within(getter, small()))
      << "get on an empty queue returned: " << s.result(getter);
  const CallResult put = pcall(s, "a", "Q", "put", {"first"});
  ASSERT_TRUE(put.ok(nullptr)) << put;
  const CallResult& got = s.await(getter);
  ASSERT_TRUE(has_value(got, "first")) << "the getter must receive a's item";
  EXPECT_GE(got.return_ns, put.invoke_ns);
  // FIFO across producers, in the real-time order of the puts.
  ASSERT_TRUE(pcall(s, "a", "Q", "put", {1}).ok(nullptr));
  ASSERT_TRUE(pcall(s, "b", "Q", "put", {2}).ok(nullptr));
  const CallResult full = pcall(s, "a", "Q", "put", {3, true, small()});
  EXPECT_TRUE(full.raised("Full")) << full;
  EXPECT_GE(full.elapsed(), small() - kClockResolution) << "a timed put returned early";
  EXPECT_TRUE(pcall(s, "b", "Q", "put_nowait", {3}).raised("Full"));
  EXPECT_TRUE(has_value(pcall(s, "c", "Q", "get"), 1));
  EXPECT_TRUE(has_value(pcall(s, "c", "Q", "get"), 2));
  const CallResult empty = pcall(s, "c", "Q", "get", {true, small()});
  EXPECT_TRUE(empty.raised("Empty")) << empty;
  EXPECT_GE(empty.elapsed(), small() - kClockResolution) << "a timed get returned early";
  EXPECT_TRUE(pcall(s, "b", "Q", "get_nowait").raised("Empty"));
}

}  // namespace
}  // namespace mpspec
