// Tests of mp::Manager and mp::Proxy. Comments name the clauses of spec/manager/manager.md
// (manager.*) and spec/manager/proxy.md (proxy.*). Timing: lower bounds and generous liveness
// bounds only.
#include "mp/manager.hpp"

#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "mp/barrier.hpp"
#include "mp/errors.hpp"
#include "mp/process.hpp"
#include "test_util.hpp"

namespace {

using mp::Dict;
using mp::List;
using mp::Value;
using mp_test::Child;
using mp_test::Clock;
using mp_test::seconds_since;

// A server-global dict (the catalogue's shared_dict), and a custom typeid whose exposed list
// names a private method and whose `spawn` returns a new referent.
class Custom final : public mp::Referent {
 public:
  Value call(mp::CallContext&, std::string_view m, const List& a, const Dict&) override {
    if (m == "_h") return "private but exposed";
    if (m == "echo") return a.empty() ? Value() : a[0];
    if (m == "hidden") return "must not be reachable";
    throw mp::AttributeError(std::string(m));
  }
  std::shared_ptr<mp::Referent> call_referent(mp::CallContext&, std::string_view, const List&,
                                              const Dict&) override {
    return std::make_shared<Custom>();
  }
};

const mp::TypeidRegistration kShared("test_shared_dict", [] {
  mp::TypeidSpec s = *mp::typeid_spec("dict");
  s.factory = [](const List&, const Dict&) {
    static auto d = mp::make_referent("dict");
    return d;
  };
  return s;
}());
const mp::TypeidRegistration kCustom("test_custom",
                                     mp::TypeidSpec{[](const List& a, const Dict&) {
                                                      if (!a.empty())
                                                        throw mp::ValueError("no args");
                                                      return std::make_shared<Custom>();
                                                    },
                                                    {"_h", "echo"},
                                                    {{"spawn", "test_custom"}}});

int open_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n;
}

template <class E, class F>
void expect_kind(F&& f, const char* kind) {
  try {
    f();
    ADD_FAILURE() << "expected " << kind;
  } catch (const mp::Error& e) {
    EXPECT_STREQ(e.kind(), kind) << e.what();
    EXPECT_NE(dynamic_cast<const E*>(&e), nullptr);
  }
}

class ManagerTest : public testing::Test {
 protected:
  mp::Manager m;
  void SetUp() override { m.start(); }
};

// [manager.construct.unstarted] [manager.start] [manager.start.twice] [manager.shutdown]
TEST(ManagerLifecycle, StartTwiceShutdownAgain) {
  mp::Manager m;
  EXPECT_FALSE(m.started());
  expect_kind<mp::AssertionError>([&] { m.create("dict"); }, "AssertionError");
  m.start();
  EXPECT_TRUE(m.started());
  EXPECT_TRUE(m.address().is_abstract());
  ASSERT_TRUE(m.pid());
  expect_kind<mp::ProcessError>([&] { m.start(); }, "ProcessError");
  mp::Proxy d = m.create("dict");
  d.call("__setitem__", {"k", 1});
  m.shutdown();
  EXPECT_FALSE(m.started());
  m.shutdown();  // again: no error
  expect_kind<mp::ProcessError>([&] { m.start(); }, "ProcessError");
  expect_kind<mp::AssertionError>([&] { m.create("dict"); }, "AssertionError");
  EXPECT_EQ(::kill(*m.pid(), 0), -1);  // reaped
}

// [manager.context]: a scope is the `with` block; the destructor shuts the server down.
TEST(ManagerLifecycle, DestructorShutsDown) {
  pid_t pid;
  {
    mp::Manager m;
    m.start();
    pid = *m.pid();
    EXPECT_EQ(::kill(pid, 0), 0);
  }
  EXPECT_EQ(::kill(pid, 0), -1);
}

// [manager.shutdown]: proxies fail (raise, never hang) after shutdown.
TEST(ManagerLifecycle, ProxiesFailAfterShutdown) {
  mp::Manager m;
  m.start();
  mp::Proxy q = m.create("Queue");
  mp::Proxy d = m.create("dict");
  d.call("__setitem__", {"a", 1});
  std::thread blocked([&] {
    try {
      q.call("get");  // blocks until the server goes away
      ADD_FAILURE() << "get returned";
    } catch (const mp::Error&) {
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto start = Clock::now();
  m.shutdown();
  blocked.join();
  for (int i = 0; i < 2; ++i) {
    try {
      d.call("__getitem__", {"a"});
      ADD_FAILURE() << "a call after shutdown returned";
    } catch (const mp::Error& e) {
      const std::string k = e.kind();
      EXPECT_TRUE(k == "EOFError" || k == "OSError" || k == "RemoteError") << k;
    }
  }
  EXPECT_LT(seconds_since(start), 10.0);
}

// [manager.start] [manager.remote.tcp]: TCP on loopback, port 0.
TEST(ManagerLifecycle, TcpPortZero) {
  mp::Manager m(mp::Address::inet("127.0.0.1", 0), std::string("tcp key"));
  m.start();
  EXPECT_EQ(m.address().family(), mp::Address::Family::kInet);
  EXPECT_NE(m.address().port(), 0);
  mp::Proxy d = m.create("dict", {Value::dict({{"x", 1}})});
  EXPECT_EQ(d.call("__getitem__", {"x"}), Value(1));
  mp::Manager client(m.address(), std::string("tcp key"));
  client.connect();
  EXPECT_EQ(client.create("list", {Value::list({1, 2})}).call("__len__"), Value(2));
}

// [manager.connect] [manager.connect.wrong_key] [manager.shared]
TEST(ManagerLifecycle, ConnectSharedAndWrongKey) {
  mp::Manager m(std::nullopt, std::string("right"));
  m.start();
  m.create("test_shared_dict").call("__setitem__", {"from", "server owner"});
  mp::Manager wrong(m.address(), std::string("wrong"));
  expect_kind<mp::AuthenticationError>([&] { wrong.connect(); }, "AuthenticationError");
  mp::Manager other(m.address(), std::string("right"));
  other.connect();
  EXPECT_TRUE(other.started());
  expect_kind<mp::ProcessError>([&] { other.connect(); }, "ProcessError");
  mp::Proxy d = other.create("test_shared_dict");
  EXPECT_EQ(d.call("__getitem__", {"from"}), Value("server owner"));
  other.shutdown();  // a connect-only manager leaves the server running
  EXPECT_EQ(m.create("test_shared_dict").call("__len__"), Value(1));
}

// [manager.serve_forever]: the server in the calling process (a child here).
int serve_task(const mp::TaskArgs& args) {
  mp::Manager m(mp::Address::unix_socket(args.at(0)), std::string("sf"));
  m.serve_forever();
  return m.started() ? 1 : 0;
}
const mp::TaskRegistration kServeTask("manager_test.serve", &serve_task);

TEST(ManagerLifecycle, ServeForeverInChild) {
  char dir[] = "/tmp/mp-manager-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/sock";
  mp::Process p("manager_test.serve", {path});
  p.start();
  mp::Manager client(mp::Address::unix_socket(path), std::string("sf"));
  const auto start = Clock::now();
  for (;;) {  // until it listens
    try {
      client.connect();
      break;
    } catch (const mp::OSError&) {
      ASSERT_LT(seconds_since(start), 10.0);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  mp::Proxy d = client.create("dict");
  d.call("update", {Value::dict({{"a", 1}, {"b", 2}})});
  EXPECT_EQ(d.call("__len__"), Value(2));
  p.join(0.2);
  EXPECT_FALSE(p.exitcode());  // still serving
  mp::request_shutdown(client.address(), "sf");
  p.join(10.0);
  EXPECT_EQ(p.exitcode(), 0);
  struct stat st;
  EXPECT_NE(::stat(path.c_str(), &st), 0);  // the socket file is gone
  ::rmdir(dir);
}

// [manager.typeids] [proxy.call.value] [proxy.call.error] [proxy.getvalue]
TEST_F(ManagerTest, Dict) {
  mp::Proxy d = m.create("dict", {Value::dict({{"a", 1}})}, Dict{{"b", 2}});
  d.call("__setitem__", {"c", 3});
  EXPECT_EQ(d.call("__getitem__", {"a"}), Value(1));
  EXPECT_EQ(d.call("__len__"), Value(3));
  EXPECT_EQ(d.call("__contains__", {"b"}), Value(true));
  EXPECT_EQ(d.call("__contains__", {"z"}), Value(false));
  EXPECT_EQ(d.call("get", {"z"}), Value());
  EXPECT_EQ(d.call("get", {"z", 9}), Value(9));
  EXPECT_EQ(d.call("keys"), Value::list({"a", "b", "c"}));
  EXPECT_EQ(d.call("values"), Value::list({1, 2, 3}));
  EXPECT_EQ(d.call("items"),
            Value::list({Value::list({"a", 1}), Value::list({"b", 2}), Value::list({"c", 3})}));
  expect_kind<mp::KeyError>([&] { d.call("__getitem__", {"zz"}); }, "KeyError");
  expect_kind<mp::KeyError>([&] { d.call("pop", {"zz"}); }, "KeyError");
  expect_kind<mp::KeyError>([&] { d.call("__delitem__", {"zz"}); }, "KeyError");
  EXPECT_EQ(d.call("pop", {"zz", 0}), Value(0));
  EXPECT_EQ(d.call("pop", {"a"}), Value(1));
  EXPECT_EQ(d.call("setdefault", {"s", 5}), Value(5));
  EXPECT_EQ(d.call("setdefault", {"s", 6}), Value(5));
  d.call("update", {Value::list({Value::list({"u", 1})})}, Dict{{"v", 2}});
  d.call("__delitem__", {"u"});
  EXPECT_EQ(d.getvalue(), Value::dict({{"b", 2}, {"c", 3}, {"s", 5}, {"v", 2}}));
  EXPECT_EQ(d.call("copy"), d.getvalue());
  EXPECT_EQ(d.call("popitem"), Value::list({"v", 2}));
  expect_kind<mp::TypeError>([&] { d.call("__setitem__", {1, 1}); }, "TypeError");
  d.call("clear");
  EXPECT_EQ(d.call("__len__"), Value(0));
  expect_kind<mp::KeyError>([&] { d.call("popitem"); }, "KeyError");
  for (int i = 0; i < 100; ++i) d.call("__setitem__", {std::to_string(i), i});
  for (int i = 0; i < 90; ++i) d.call("__delitem__", {std::to_string(i)});
  EXPECT_EQ(d.call("keys"),
            Value::list({"90", "91", "92", "93", "94", "95", "96", "97", "98", "99"}));
}

// [proxy.returns_proxy]: dict __iter__ -> an Iterator proxy with __next__.
TEST_F(ManagerTest, DictIterator) {
  mp::Proxy d = m.create("dict", {Value::dict({{"x", 1}, {"y", 2}})});
  mp::Proxy it = d.call_proxy("__iter__");
  EXPECT_EQ(it.token().typeid_name, "Iterator");
  EXPECT_EQ(it.call("__next__"), Value("x"));
  EXPECT_EQ(it.call("__next__"), Value("y"));
  expect_kind<mp::StopIteration>([&] { it.call("__next__"); }, "StopIteration");
  mp::Proxy it2 = d.call_proxy("__iter__");
  d.call("__setitem__", {"z", 3});
  expect_kind<mp::RuntimeError>([&] { it2.call("__next__"); }, "RuntimeError");
  expect_kind<mp::TypeError>([&] { d.call("__iter__"); }, "TypeError");
  expect_kind<mp::TypeError>([&] { d.call_proxy("keys"); }, "TypeError");
}

TEST_F(ManagerTest, List) {
  mp::Proxy l = m.create("list", {Value::list({3, 1, 2})});
  l.call("append", {4});
  l.call("extend", {Value::list({5, 6})});
  l.call("insert", {0, 0});
  EXPECT_EQ(l.getvalue(), Value::list({0, 3, 1, 2, 4, 5, 6}));
  EXPECT_EQ(l.call("__getitem__", {-1}), Value(6));
  l.call("__setitem__", {1, 30});
  expect_kind<mp::IndexError>([&] { l.call("__getitem__", {7}); }, "IndexError");
  expect_kind<mp::IndexError>([&] { l.call("__setitem__", {-8, 0}); }, "IndexError");
  EXPECT_EQ(l.call("pop"), Value(6));
  EXPECT_EQ(l.call("pop", {0}), Value(0));
  EXPECT_EQ(l.call("index", {2}), Value(2));
  EXPECT_EQ(l.call("index", {2.0}), Value(2));  // Python equality: 2 == 2.0
  expect_kind<mp::ValueError>([&] { l.call("index", {99}); }, "ValueError");
  expect_kind<mp::ValueError>([&] { l.call("remove", {99}); }, "ValueError");
  EXPECT_EQ(l.call("count", {1}), Value(1));
  EXPECT_EQ(l.call("__contains__", {30}), Value(true));
  l.call("remove", {30});
  l.call("reverse");
  EXPECT_EQ(l.getvalue(), Value::list({5, 4, 2, 1}));
  l.call("sort");
  EXPECT_EQ(l.getvalue(), Value::list({1, 2, 4, 5}));
  l.call("sort", {}, Dict{{"reverse", true}});
  EXPECT_EQ(l.getvalue(), Value::list({5, 4, 2, 1}));
  l.call("append", {"s"});
  expect_kind<mp::TypeError>([&] { l.call("sort"); }, "TypeError");
  EXPECT_EQ(l.call("__len__"), Value(5));
  expect_kind<mp::TypeError>([&] { l.call("__getitem__", {"0"}); }, "TypeError");
  while (l.call("__len__") != Value(0)) l.call("pop");
  expect_kind<mp::IndexError>([&] { l.call("pop"); }, "IndexError");
}

TEST_F(ManagerTest, NamespaceValueArray) {
  mp::Proxy ns = m.create("Namespace", {}, Dict{{"x", 1}});
  EXPECT_EQ(ns.call("__getattribute__", {"x"}), Value(1));
  ns.call("__setattr__", {"y", "two"});
  EXPECT_EQ(ns.call("__getattribute__", {"y"}), Value("two"));
  ns.call("__delattr__", {"x"});
  expect_kind<mp::AttributeError>([&] { ns.call("__getattribute__", {"x"}); }, "AttributeError");
  expect_kind<mp::AttributeError>([&] { ns.call("__delattr__", {"x"}); }, "AttributeError");

  mp::Proxy v = m.create("Value", {"i", 7});
  EXPECT_EQ(v.call("get"), Value(7));
  v.call("set", {"anything"});  // the typecode is ignored, as in CPython
  EXPECT_EQ(v.call("get"), Value("anything"));

  mp::Proxy a = m.create("Array", {"i", Value::list({1, 2, 3})});
  EXPECT_EQ(a.call("__len__"), Value(3));
  a.call("__setitem__", {0, 10});
  EXPECT_EQ(a.call("__getitem__", {0}), Value(10));
  EXPECT_EQ(a.getvalue(), Value::list({10, 2, 3}));
  expect_kind<mp::IndexError>([&] { a.call("__getitem__", {3}); }, "IndexError");
  expect_kind<mp::TypeError>([&] { a.call("__setitem__", {0, 1.5}); }, "TypeError");
  expect_kind<mp::OverflowError>(
      [&] {
        a.call("__setitem__", {0, std::int64_t{1} << 40});
      },
      "OverflowError");
  expect_kind<mp::RemoteError>([&] { m.create("Array", {"z", Value::list({})}); }, "RemoteError");
}

TEST_F(ManagerTest, Queue) {
  mp::Proxy q = m.create("Queue", {2});
  EXPECT_EQ(q.call("empty"), Value(true));
  q.call("put", {1});
  q.call("put_nowait", {2});
  EXPECT_EQ(q.call("full"), Value(true));
  EXPECT_EQ(q.call("qsize"), Value(2));
  expect_kind<mp::Full>([&] { q.call("put_nowait", {3}); }, "Full");
  auto start = Clock::now();
  expect_kind<mp::Full>([&] { q.call("put", {3, true, 0.1}); }, "Full");
  EXPECT_GE(seconds_since(start), 0.099);
  EXPECT_EQ(q.call("get"), Value(1));  // FIFO
  EXPECT_EQ(q.call("get_nowait"), Value(2));
  expect_kind<mp::Empty>([&] { q.call("get_nowait"); }, "Empty");
  expect_kind<mp::Empty>([&] { q.call("get", {false}); }, "Empty");
  start = Clock::now();
  expect_kind<mp::Empty>([&] { q.call("get", {}, Dict{{"timeout", 0.1}}); }, "Empty");
  EXPECT_GE(seconds_since(start), 0.099);
  expect_kind<mp::ValueError>([&] { q.call("get", {true, -1}); }, "ValueError");

  mp::Proxy jq = m.create("JoinableQueue");
  jq.call("put", {"job"});
  std::thread worker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    jq.call("get");
    jq.call("task_done");
  });
  start = Clock::now();
  jq.call("join");
  EXPECT_GE(seconds_since(start), 0.04);
  worker.join();
  expect_kind<mp::ValueError>([&] { jq.call("task_done"); }, "ValueError");
}

// [manager.sync.semantics]
TEST_F(ManagerTest, LockAcrossProcesses) {
  mp::Proxy lock = m.create("Lock");
  expect_kind<mp::RuntimeError>([&] { lock.call("release"); }, "RuntimeError");
  EXPECT_EQ(lock.call("acquire"), Value(true));
  EXPECT_EQ(lock.call("acquire", {false}), Value(false));
  auto start = Clock::now();
  EXPECT_EQ(lock.call("acquire", {true, 0.1}), Value(false));
  EXPECT_GE(seconds_since(start), 0.099);
  expect_kind<mp::ValueError>([&] { lock.call("acquire", {false, 1}); }, "ValueError");
  Child child([&] {  // releases the lock the parent acquired
    lock.call("release");
    return 0;
  });
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(lock.call("acquire", {false}), Value(true));
  // A blocking acquire waits for the release by another process.
  Child holder([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    lock.call("release");
    return 0;
  });
  start = Clock::now();
  EXPECT_EQ(lock.call("acquire"), Value(true));
  EXPECT_GE(seconds_since(start), 0.09);
  EXPECT_EQ(holder.exit_code(), 0);
}

TEST_F(ManagerTest, RLockOwnedPerThread) {
  mp::Proxy r = m.create("RLock");
  EXPECT_EQ(r.call("acquire"), Value(true));
  EXPECT_EQ(r.call("acquire"), Value(true));  // reentrant
  std::thread other([&] {
    EXPECT_EQ(r.call("acquire", {false}), Value(false));
    expect_kind<mp::RuntimeError>([&] { r.call("release"); }, "RuntimeError");
  });
  other.join();
  r.call("release");
  r.call("release");
  expect_kind<mp::RuntimeError>([&] { r.call("release"); }, "RuntimeError");
}

TEST_F(ManagerTest, Semaphores) {
  mp::Proxy s = m.create("Semaphore", {2});
  EXPECT_EQ(s.call("acquire"), Value(true));
  EXPECT_EQ(s.call("acquire"), Value(true));
  EXPECT_EQ(s.call("acquire", {false}), Value(false));
  const auto start = Clock::now();
  EXPECT_EQ(s.call("acquire", {true, 0.1}), Value(false));
  EXPECT_GE(seconds_since(start), 0.099);
  s.call("release");
  s.call("release");
  s.call("release");  // an unbounded semaphore may go above its initial value
  mp::Proxy b = m.create("BoundedSemaphore", {1});
  EXPECT_EQ(b.call("acquire"), Value(true));
  b.call("release");
  expect_kind<mp::ValueError>([&] { b.call("release"); }, "ValueError");
  expect_kind<mp::RemoteError>([&] { m.create("Semaphore", {-1}); }, "RemoteError");
}

TEST_F(ManagerTest, EventAcrossProcesses) {
  mp::Proxy e = m.create("Event");
  EXPECT_EQ(e.call("is_set"), Value(false));
  EXPECT_EQ(e.call("wait", {0.05}), Value(false));
  Child setter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    e.call("set");
    return 0;
  });
  const auto start = Clock::now();
  EXPECT_EQ(e.call("wait", {10.0}), Value(true));
  EXPECT_GE(seconds_since(start), 0.09);
  EXPECT_EQ(setter.exit_code(), 0);
  e.call("clear");
  EXPECT_EQ(e.call("is_set"), Value(false));
}

TEST_F(ManagerTest, Condition) {
  mp::Proxy c = m.create("Condition");
  expect_kind<mp::RuntimeError>([&] { c.call("wait", {0.01}); }, "RuntimeError");
  expect_kind<mp::RuntimeError>([&] { c.call("notify"); }, "RuntimeError");
  std::atomic<bool> waiting{false};
  std::thread waiter([&] {
    c.call("acquire");
    waiting = true;
    EXPECT_EQ(c.call("wait", {10.0}), Value(true));
    c.call("release");
  });
  while (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  c.call("acquire");  // the waiter released it in wait
  c.call("notify");
  c.call("release");
  waiter.join();
  c.call("acquire");
  const auto start = Clock::now();
  EXPECT_EQ(c.call("wait", {0.1}), Value(false));
  EXPECT_GE(seconds_since(start), 0.099);
  c.call("release");
}

TEST_F(ManagerTest, Barrier) {
  mp::Proxy b = m.create("Barrier", {3});
  EXPECT_EQ(b.call("__getattribute__", {"parties"}), Value(3));
  EXPECT_EQ(b.call("__getattribute__", {"broken"}), Value(false));
  std::vector<std::thread> ts;
  std::atomic<std::int64_t> sum{0};
  for (int i = 0; i < 3; ++i) ts.emplace_back([&] { sum += b.call("wait").as_int(); });
  for (auto& t : ts) t.join();
  EXPECT_EQ(sum, 0 + 1 + 2);
  expect_kind<mp::BrokenBarrierError>([&] { b.call("wait", {0.05}); }, "BrokenBarrierError");
  EXPECT_EQ(b.call("__getattribute__", {"broken"}), Value(true));
  b.call("reset");
  EXPECT_EQ(b.call("__getattribute__", {"broken"}), Value(false));
  b.call("abort");
  expect_kind<mp::BrokenBarrierError>([&] { b.call("wait"); }, "BrokenBarrierError");
  expect_kind<mp::AttributeError>([&] { b.call("__getattribute__", {"nope"}); }, "AttributeError");
}

// [proxy.exposed]
TEST_F(ManagerTest, ExposedOnly) {
  mp::Proxy d = m.create("dict");
  for (const char* name : {"__init__", "_private", "nosuch", "__class__"})
    expect_kind<mp::RemoteError>([&] { d.call(name); }, "RemoteError");
  d.call("__setitem__", {"still", "usable"});
  EXPECT_EQ(d.call("__getitem__", {"still"}), Value("usable"));
  mp::Proxy c = m.create("test_custom");
  EXPECT_EQ(c.call("_h"), Value("private but exposed"));
  expect_kind<mp::RemoteError>([&] { c.call("hidden"); }, "RemoteError");
  mp::Proxy c2 = c.call_proxy("spawn");
  EXPECT_EQ(c2.call("echo", {5}), Value(5));
  expect_kind<mp::RemoteError>([&] { m.create("no such typeid"); }, "RemoteError");
  expect_kind<mp::RemoteError>([&] { m.create("test_custom", {1}); }, "RemoteError");
  expect_kind<mp::RemoteError>([&] { m.create("Iterator"); }, "RemoteError");
}

// Reference counting: the last proxy's destruction releases the referent.
TEST_F(ManagerTest, ReleasedWithLastProxy) {
  mp::Token token;
  {
    mp::Proxy l = m.create("list");
    token = l.token();
    mp::Proxy again(token, m.authkey());  // a second reference
    mp::Proxy copy = l;
    EXPECT_EQ(again.call("__len__"), Value(0));
  }
  expect_kind<mp::RemoteError>([&] { mp::Proxy p(token, m.authkey()); }, "RemoteError");
}

// [proxy.inherited] [proxy.returns_proxy.child] [manager.shared]
TEST_F(ManagerTest, ProxyInForkedChild) {
  mp::Proxy d = m.create("dict", {Value::dict({{"a", 1}, {"b", 2}})});
  d.call("__len__");  // the parent's connection exists before the fork
  Child child([&] {
    if (d.call("__getitem__", {"a"}) != Value(1)) return 1;
    d.call("__setitem__", {"child", "was here"});
    mp::Proxy it = d.call_proxy("__iter__");
    if (it.call("__next__") != Value("a")) return 2;
    mp::Proxy fresh = m.create("list", {Value::list({1})});
    return fresh.call("__len__") == Value(1) ? 0 : 3;
  });
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(d.call("__getitem__", {"child"}), Value("was here"));
}

// A child's references are its own: dropping them leaves the parent's referent alive.
TEST(ManagerLifecycle, ChildReferencesAreItsOwn) {
  mp::Manager m;
  m.start();  // the child below is forked before this process made any connection
  Child early([&] { return m.create("dict").call("__len__") == Value(0) ? 0 : 1; });
  EXPECT_EQ(early.exit_code(), 0);
  mp::Proxy d = m.create("dict");
  Child child([&] {
    d.call("__setitem__", {"k", 1});  // takes the child's reference
    {
      mp::Proxy own(d.token(), m.authkey());  // and one more, dropped at once
      own.call("__len__");
    }
    return 0;
  });
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(d.call("__getitem__", {"k"}), Value(1));
  mp::Proxy again(d.token(), m.authkey());
  EXPECT_EQ(again.call("__len__"), Value(1));
}

// [manager.dict.atomic]: concurrent updates from several processes lose nothing.
TEST_F(ManagerTest, ConcurrentUpdatesLoseNothing) {
  mp::Proxy d = m.create("dict");
  mp::Proxy counter = m.create("Value", {"i", 0});
  mp::Proxy lock = m.create("Lock");
  constexpr int kProcs = 4, kKeys = 200;
  std::vector<std::unique_ptr<Child>> children;
  for (int p = 0; p < kProcs; ++p) {
    children.push_back(std::make_unique<Child>([&, p] {
      for (int i = 0; i < kKeys; ++i) {
        const std::string k = std::to_string(p) + "-" + std::to_string(i);
        if (i % 2 == 0)
          d.call("__setitem__", {k, i});
        else
          d.call("update", {Value::dict({{k, i}})});
        lock.call("acquire");
        counter.call("set", {counter.call("get").as_int() + 1});
        lock.call("release");
      }
      return 0;
    }));
  }
  for (auto& c : children) EXPECT_EQ(c->exit_code(), 0);
  EXPECT_EQ(d.call("__len__"), Value(kProcs * kKeys));
  EXPECT_EQ(counter.call("get"), Value(kProcs * kKeys));
}

// Proxies are thread safe (one connection per thread).
TEST_F(ManagerTest, ThreadsShareAProxy) {
  mp::Proxy l = m.create("list");
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 100; ++i) l.call("append", {i});
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(l.call("__len__"), Value(400));
}

// A killed client never wedges the server; what it held stays held.
TEST_F(ManagerTest, KilledClientDoesNotWedge) {
  mp::Proxy lock = m.create("Lock");
  mp::Proxy q = m.create("Queue");
  mp_test::Pipe ready;
  Child child([&] {
    lock.call("acquire");
    ready.send('r');
    q.call("get");  // blocks until killed
    return 0;
  });
  ASSERT_TRUE(ready.receive());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(child.kill_and_reap());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the server notices
  q.call("put", {"item"});
  EXPECT_EQ(q.call("get", {true, 5.0}), Value("item"));    // the dead client's get gave up
  EXPECT_EQ(lock.call("acquire", {false}), Value(false));  // still held by the dead client
  EXPECT_EQ(m.create("dict").call("__len__"), Value(0));
}

// The server under spawn.
TEST(ManagerLifecycle, SpawnedServer) {
  mp::ManagerOptions o;
  o.start_method = mp::StartMethod::kSpawn;
  mp::Manager m(std::nullopt, std::nullopt, o);
  m.start();
  mp::Proxy d = m.create("test_shared_dict");  // registered by a static initializer
  d.call("__setitem__", {"k", "v"});
  EXPECT_EQ(m.create("test_shared_dict").call("get", {"k"}), Value("v"));
  m.shutdown();
}

// No descriptor or process is left behind by a manager's life.
TEST(ManagerLifecycle, NoLeaks) {
  {  // warm up (the first use opens lazily created descriptors of the library)
    mp::Manager m;
    m.start();
    m.create("dict").call("__len__");
  }
  mp::active_children();
  const int fds = open_fds();
  for (int i = 0; i < 3; ++i) {
    mp::Manager m;
    m.start();
    mp::Proxy d = m.create("dict");
    d.call("__setitem__", {"a", i});
    std::thread([&] { d.call("__len__"); }).join();
    m.shutdown();
  }
  EXPECT_TRUE(mp::active_children().empty());
  EXPECT_EQ(open_fds(), fds);
}

}  // namespace

int main(int argc, char** argv) {
  mp::spawn_main(argc, argv);  // runs the task and exits in a spawned child
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
