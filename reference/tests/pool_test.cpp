// Tests of mp::Pool (spec/pool/pool.md). Each test names the clauses it
// covers. Timing: lower bounds and generous liveness bounds only; every wait is
// bounded (and the per-test watchdog of test_util.hpp ends a hang).
#include "mp/pool.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if MP_HAVE_RAPIDCHECK
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#endif

#include "mp/errors.hpp"
#include "mp/process.hpp"
#include "mp/value.hpp"
#include "test_util.hpp"

namespace {

using mp::Dict;
using mp::List;
using mp::Value;
using mp_test::Clock;
using mp_test::seconds_since;

constexpr double kLive = 30.0;  // liveness bound (seconds)

// ---------------------------------------------------------------------------
// The task catalogue (spec/pool/pool.md §1), registered statically so that
// spawned workers find it. [pool.task.catalogue]
// ---------------------------------------------------------------------------

const Value* arg(const List& args, const Dict& kwds, std::size_t i, const char* name) {
  if (i < args.size()) return &args[i];
  return kwds.find(name);
}

Value t_identity(const List& a, const Dict&) { return a.at(0); }
Value t_square(const List& a, const Dict&) {
  if (a.at(0).is_float()) return a[0].as_float() * a[0].as_float();
  return a.at(0).as_int() * a.at(0).as_int();
}
Value t_add(const List& a, const Dict&) {
  if (a.at(0).is_float() || a.at(1).is_float()) {
    auto f = [](const Value& v) {
      return v.is_float() ? v.as_float() : static_cast<double>(v.as_int());
    };
    return f(a[0]) + f(a[1]);
  }
  return a[0].as_int() + a[1].as_int();
}
double as_seconds(const Value& v) {
  return v.is_float() ? v.as_float() : static_cast<double>(v.as_int());
}
Value t_sleep(const List& a, const Dict& k) {
  std::this_thread::sleep_for(std::chrono::duration<double>(as_seconds(*arg(a, k, 0, "seconds"))));
  const Value* v = arg(a, k, 1, "value");
  return v ? *v : Value();
}
Value t_slow_identity(const List& a, const Dict& k) {
  const Value* s = arg(a, k, 1, "seconds");
  std::this_thread::sleep_for(std::chrono::duration<double>(s ? as_seconds(*s) : 0.05));
  return a.at(0);
}
Value t_nonneg(const List& a, const Dict&) {
  if (a.at(0).as_int() < 0) throw mp::ValueError(std::to_string(a[0].as_int()));
  return a[0];
}
Value t_raise(const List& a, const Dict& k) {
  const Value* kind = arg(a, k, 0, "kind");
  const Value* message = arg(a, k, 1, "message");
  mp::throw_error(kind ? kind->as_string() : "ValueError", message ? message->as_string() : "");
}
Value t_crash(const List& a, const Dict& k) {
  const Value* s = arg(a, k, 0, "signal");
  const Value* delay = arg(a, k, 1, "delay");  // test-only extension
  if (delay) std::this_thread::sleep_for(std::chrono::duration<double>(as_seconds(*delay)));
  ::kill(::getpid(), s ? static_cast<int>(s->as_int()) : SIGKILL);
  std::this_thread::sleep_for(std::chrono::seconds(5));
  return Value();
}
Value t_pid(const List&, const Dict&) { return static_cast<std::int64_t>(::getpid()); }
Value g_tag;
Value t_set_tag(const List& a, const Dict&) {
  g_tag = a.at(0);
  return Value();
}
Value t_get_tag(const List&, const Dict&) { return g_tag; }
// Test-only: appends "<x>\n" to the file args[1], returns x.
Value t_record(const List& a, const Dict&) {
  const std::string line = std::to_string(a.at(0).as_int()) + "\n";
  const int fd =
      ::open(a.at(1).as_string().c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    [[maybe_unused]] const ssize_t n = ::write(fd, line.data(), line.size());
    ::close(fd);
  }
  return a[0];
}
Value t_sleep_pid(const List& a, const Dict&) {
  std::this_thread::sleep_for(std::chrono::duration<double>(as_seconds(a.at(0))));
  return static_cast<std::int64_t>(::getpid());
}
Value t_throw_std(const List&, const Dict&) { throw std::out_of_range("plain std exception"); }

const mp::PoolFunctionRegistration kRegs[] = {
    {"identity", t_identity},
    {"square", t_square},
    {"add", t_add},
    {"sleep", t_sleep},
    {"slow_identity", t_slow_identity},
    {"nonneg", t_nonneg},
    {"raise", t_raise},
    {"crash", t_crash},
    {"pid", t_pid},
    {"set_tag", t_set_tag},
    {"get_tag", t_get_tag},
    {"record", t_record},
    {"throw_std", t_throw_std},
    {"sleep_pid", t_sleep_pid},
};

mp::PoolOptions opts(int processes, std::optional<mp::StartMethod> method = std::nullopt) {
  mp::PoolOptions o;
  o.processes = processes;
  o.start_method = method;
  return o;
}

// Runs `f`, expects an mp::Error of `kind` (and `message` unless null).
template <class F>
void expect_error(F&& f, const std::string& kind, const char* message = nullptr) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected " << kind;
  } catch (const mp::Error& e) {
    EXPECT_EQ(std::string(e.kind()), kind) << e.what();
    if (message != nullptr) {
      EXPECT_EQ(std::string(e.what()), message);
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an mp::Error: " << e.what();
  }
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "mp_pool_" + std::to_string(::getpid()) + "_" + name;
}

std::map<std::int64_t, int> read_counts(const std::string& path) {
  std::map<std::int64_t, int> counts;
  std::ifstream in(path);
  std::int64_t x;
  while (in >> x) ++counts[x];
  return counts;
}

// Waits up to `seconds` for `pred`.
template <class P>
bool eventually(P pred, double seconds = kLive) {
  const auto start = Clock::now();
  while (!pred()) {
    if (seconds_since(start) > seconds) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

List range(std::int64_t n) {
  List l;
  for (std::int64_t i = 0; i < n; ++i) l.emplace_back(i);
  return l;
}

// ---------------------------------------------------------------------------
// §2 construction
// ---------------------------------------------------------------------------

// [pool.construct.processes] [pool.construct.maxtasksperchild]
TEST(PoolTest, ConstructorValidation) {
  expect_error([] { mp::Pool p(opts(0)); }, "ValueError", "Number of processes must be at least 1");
  expect_error([] { mp::Pool p(opts(-3)); }, "ValueError");
  mp::PoolOptions o = opts(1);
  o.maxtasksperchild = 0;
  expect_error([&] { mp::Pool p(o); }, "ValueError",
               "maxtasksperchild must be a positive int or None");
  o.maxtasksperchild = std::nullopt;
  o.initializer = "no_such_function";
  expect_error([&] { mp::Pool p(o); }, "ValueError");
}

// [pool.construct.default_processes] [pool.construct.workers]
TEST(PoolTest, WorkersExistAfterConstruction) {
  {
    mp::Pool pool;  // cpu_count() workers
    EXPECT_EQ(pool.processes(), mp::cpu_count());
    EXPECT_EQ(pool.worker_pids().size(), static_cast<std::size_t>(mp::cpu_count()));
  }
  mp::Pool pool(opts(3));
  const auto pids = pool.worker_pids();
  EXPECT_EQ(std::set<pid_t>(pids.begin(), pids.end()).size(), 3u);
}

// [pool.construct.processes] registry errors
TEST(PoolTest, RegistryRejectsEmptyAndDuplicateNames) {
  expect_error([] { mp::register_pool_function("", t_identity); }, "ValueError");
  expect_error([] { mp::register_pool_function("identity", t_identity); }, "ValueError");
  EXPECT_TRUE(mp::is_pool_function_registered("identity"));
  EXPECT_FALSE(mp::is_pool_function_registered("nope"));
}

// ---------------------------------------------------------------------------
// §1 tasks, §3 submission
// ---------------------------------------------------------------------------

// [pool.task.identity] [pool.task.square] [pool.task.add] [pool.task.sleep]
// [pool.task.slow_identity] [pool.task.nonneg] [pool.task.raise] [pool.task.pid]
// [pool.apply.value] [pool.apply.error]
TEST(PoolTest, ApplyValuesAndErrors) {
  mp::Pool pool(opts(2));
  EXPECT_EQ(pool.apply("identity", {Value::list({1, "x", nullptr})}),
            Value::list({1, "x", nullptr}));
  EXPECT_EQ(pool.apply("square", {7}), Value(49));
  EXPECT_EQ(pool.apply("square", {1.5}), Value(2.25));
  EXPECT_EQ(pool.apply("add", {2, 3}), Value(5));
  EXPECT_EQ(pool.apply("sleep", {0.01, "done"}), Value("done"));
  EXPECT_EQ(pool.apply("sleep", {0}, Dict{{"value", 4}}), Value(4));
  EXPECT_EQ(pool.apply("slow_identity", {"s"}, Dict{{"seconds", 0.01}}), Value("s"));
  EXPECT_EQ(pool.apply("nonneg", {3}), Value(3));
  expect_error([&] { pool.apply("nonneg", {-5}); }, "ValueError", "-5");
  expect_error(
      [&] {
        pool.apply("raise", {"IndexError", "out of range"});
      },
      "IndexError", "out of range");
  expect_error(
      [&] {
        pool.apply("raise", {}, Dict{{"kind", "WorkerLost"}, {"message", "m"}});
      },
      "WorkerLost", "m");
  expect_error([&] { pool.apply("raise", {"NoSuchKind", "odd"}); }, "RuntimeError", "odd");
  expect_error([&] { pool.apply("throw_std"); }, "RuntimeError", "plain std exception");
  const Value pid = pool.apply("pid");
  const auto pids = pool.worker_pids();
  EXPECT_NE(std::find(pids.begin(), pids.end(), static_cast<pid_t>(pid.as_int())), pids.end());
  expect_error([&] { pool.apply("not_registered"); }, "ValueError");
}

// [pool.apply.value] values larger than a ring (128 KiB) pass in pieces
TEST(PoolTest, LargeValuesPassThroughTheRings) {
  mp::Pool pool(opts(2));
  const Value big = Value::bytes(std::string(3 << 20, 'q'));
  EXPECT_EQ(pool.apply("identity", {big}), big);
  List many;
  for (int i = 0; i < 8; ++i)
    many.push_back(Value(std::string(200'000, static_cast<char>('a' + i))));
  EXPECT_EQ(pool.map("identity", many, 1), many);
}

// [pool.apply_async.nonblocking] [pool.result.get] [pool.result.get_timeout]
// [pool.result.wait] [pool.result.ready] [pool.result.successful] [pool.result.error]
TEST(PoolTest, AsyncResultLifecycle) {
  mp::Pool pool(opts(2));
  const auto start = Clock::now();
  mp::AsyncResult r = pool.apply_async("sleep", {0.5, "late"});
  EXPECT_LT(seconds_since(start), 0.5);  // returned before the task could end
  EXPECT_FALSE(r.ready());
  expect_error([&] { r.successful(); }, "ValueError");
  expect_error([&] { r.get(0.01); }, "TimeoutError");
  r.wait(0.01);                            // returns although not ready
  EXPECT_EQ(r.get(kLive), Value("late"));  // still usable after a timeout
  EXPECT_GE(seconds_since(start), 0.5);
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  r.wait();
  mp::AsyncResult bad = pool.apply_async("raise", {"TypeError", "bad"});
  bad.wait(kLive);
  EXPECT_TRUE(bad.ready());
  EXPECT_FALSE(bad.successful());
  expect_error([&] { bad.get(); }, "TypeError", "bad");
  expect_error([&] { bad.get(); }, "TypeError", "bad");  // again
}

// [pool.map.order] [pool.map.empty] [pool.starmap.unpack]
TEST(PoolTest, MapOrderAnyChunksize) {
  mp::Pool pool(opts(3));
  const List input = range(101);
  List squares;
  for (const Value& v : input) squares.emplace_back(v.as_int() * v.as_int());
  EXPECT_EQ(pool.map("square", input), squares);
  for (long cs : {1L, 2L, 7L, 100L, 1000L}) {
    EXPECT_EQ(pool.map("square", input, cs), squares) << cs;
    EXPECT_EQ(pool.map_async("square", input, cs).get(kLive), Value(squares)) << cs;
  }
  EXPECT_EQ(pool.map("square", {}), List{});
  EXPECT_EQ(pool.map_async("square", {}).get(kLive), Value(List{}));
  List pairs;
  for (std::int64_t i = 0; i < 20; ++i) pairs.push_back(Value::list({i, 10 * i}));
  List sums;
  for (std::int64_t i = 0; i < 20; ++i) sums.emplace_back(11 * i);
  EXPECT_EQ(pool.starmap("add", pairs, 3), sums);
  EXPECT_EQ(pool.starmap_async("add", pairs).get(kLive), Value(sums));
  expect_error([&] { pool.starmap("add", {5}); }, "TypeError");  // an item that is not a list
  expect_error([&] { pool.map("square", input, 0); }, "ValueError");
}

// [pool.map.error]
TEST(PoolTest, MapRaisesAFailingItemsError) {
  mp::Pool pool(opts(2));
  for (long cs : {1L, 2L, 3L}) {
    try {
      pool.map("nonneg", {1, -2, 3, -4, 5}, cs);
      ADD_FAILURE() << "no error";
    } catch (const mp::ValueError& e) {
      const std::string what = e.what();
      EXPECT_TRUE(what == "-2" || what == "-4") << what;
    }
  }
  // Only one failing item: exactly its error.
  List one = range(30);
  one[17] = Value(-17);
  expect_error([&] { pool.map("nonneg", one, 4); }, "ValueError", "-17");
  expect_error(
      [&] {
        pool.starmap("raise", {Value::list({"IndexError", "i"})});
      },
      "IndexError", "i");
}

// [pool.map.no_failfast] precisely: the failing chunk is first to finish, the
// result is not ready until the slow chunk finished too.
TEST(PoolTest, MapNoFailFast) {
  mp::Pool pool(opts(2));
  const auto start = Clock::now();
  // starmap of raise / sleep: chunk 0 sleeps 0.5 s, chunk 1 raises at once.
  mp::AsyncResult r = pool.starmap_async("sleep", {Value::list({0.5}), Value::list({"x"})}, 1);
  expect_error([&] { r.get(kLive); }, "TypeError");  // sleep("x") -> as_int on a str: TypeError
  EXPECT_GE(seconds_since(start), 0.5);
  // The error is the first failing chunk in completion order.
  mp::AsyncResult two = pool.starmap_async(
      "raise", {Value::list({"IndexError", "late"}), Value::list({"KeyError", "x"})}, 1);
  two.wait(kLive);
  EXPECT_FALSE(two.successful());
}

// [pool.imap.order] [pool.imap_unordered.permutation] [pool.imap.end]
TEST(PoolTest, ImapOrderAndUnordered) {
  mp::Pool pool(opts(3));
  const List input = range(57);
  for (long cs : {1L, 4L, 100L}) {
    mp::IMapIterator it = pool.imap("square", input, cs);
    for (std::int64_t i = 0; i < 57; ++i) {
      auto v = it.next(kLive);
      ASSERT_TRUE(v.has_value());
      EXPECT_EQ(*v, Value(i * i));
    }
    EXPECT_FALSE(it.next(kLive).has_value());
    EXPECT_FALSE(it.next().has_value());  // again
    EXPECT_FALSE(it.next(0).has_value());
    mp::IMapIterator un = pool.imap_unordered("square", input, cs);
    std::multiset<std::int64_t> seen;
    for (int i = 0; i < 57; ++i) {
      auto v = un.next(kLive);
      ASSERT_TRUE(v.has_value());
      seen.insert(v->as_int());
    }
    EXPECT_FALSE(un.next(kLive).has_value());
    EXPECT_FALSE(un.next().has_value());
    std::multiset<std::int64_t> want;
    for (std::int64_t i = 0; i < 57; ++i) want.insert(i * i);
    EXPECT_EQ(seen, want);
  }
  mp::IMapIterator empty = pool.imap("square", {});
  EXPECT_FALSE(empty.next(kLive).has_value());
  EXPECT_FALSE(empty.next().has_value());
}

// [pool.imap.error] [pool.imap.chunksize]
TEST(PoolTest, ImapErrorsAtTheirPosition) {
  mp::Pool pool(opts(2));
  mp::IMapIterator it = pool.imap("nonneg", {1, -2, 3, -4, 5});
  EXPECT_EQ(it.next(kLive), Value(1));
  expect_error([&] { it.next(kLive); }, "ValueError", "-2");
  EXPECT_EQ(it.next(kLive), Value(3));
  expect_error([&] { it.next(kLive); }, "ValueError", "-4");
  EXPECT_EQ(it.next(kLive), Value(5));
  EXPECT_FALSE(it.next(kLive).has_value());
  mp::IMapIterator un = pool.imap_unordered("nonneg", {1, -2, 3});
  int errors = 0;
  std::set<std::int64_t> values;
  for (int i = 0; i < 3; ++i) {
    try {
      values.insert(un.next(kLive)->as_int());
    } catch (const mp::ValueError& e) {
      EXPECT_EQ(std::string(e.what()), "-2");
      ++errors;
    }
  }
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(values, (std::set<std::int64_t>{1, 3}));
  EXPECT_FALSE(un.next(kLive).has_value());
  expect_error([&] { pool.imap("square", {1}, 0); }, "ValueError", "Chunksize must be 1+, not 0");
  expect_error([&] { pool.imap_unordered("square", {1}, -1); }, "ValueError",
               "Chunksize must be 1+, not -1");
}

// [pool.imap.timeout]
TEST(PoolTest, ImapNextTimeoutKeepsIteratorUsable) {
  mp::Pool pool(opts(2));
  mp::IMapIterator slow = pool.imap("sleep", {0.6, 0.0}, 1);
  const auto start = Clock::now();
  expect_error([&] { slow.next(0.05); }, "TimeoutError");
  EXPECT_GE(seconds_since(start), 0.05);
  EXPECT_EQ(slow.next(kLive), Value());  // sleep returns None
  EXPECT_EQ(slow.next(kLive), Value());
  EXPECT_FALSE(slow.next(kLive).has_value());
  mp::IMapIterator un = pool.imap_unordered("sleep", {0.6}, 1);
  expect_error([&] { un.next(0.05); }, "TimeoutError");
  EXPECT_EQ(un.next(kLive), Value());
  EXPECT_FALSE(un.next(0).has_value());
}

// [pool.concurrency] two long tasks run at once on two workers
TEST(PoolTest, TasksRunConcurrentlyOnDistinctWorkers) {
  mp::Pool pool(opts(2));
  // Two long tasks submitted together run on two workers at once.
  mp::AsyncResult a = pool.apply_async("sleep_pid", {0.4});
  mp::AsyncResult b = pool.apply_async("sleep_pid", {0.4});
  EXPECT_NE(a.get(kLive), b.get(kLive));
}

// ---------------------------------------------------------------------------
// §5 callbacks
// ---------------------------------------------------------------------------

// [pool.callback.once] [pool.callback.error]
TEST(PoolTest, CallbacksRunOnceBeforeReady) {
  mp::Pool pool(opts(2));
  std::mutex mu;
  std::vector<std::string> log;
  std::atomic<int> calls{0};
  auto cb = [&](const Value& v) {
    std::lock_guard lock(mu);
    log.push_back("cb:" + v.repr());
    ++calls;
  };
  auto ecb = [&](const mp::Error& e) {
    std::lock_guard lock(mu);
    log.push_back(std::string("ecb:") + e.kind() + ":" + e.what());
    ++calls;
  };
  mp::AsyncResult r = pool.apply_async("square", {6}, {}, cb, ecb);
  EXPECT_EQ(r.get(kLive), Value(36));
  {
    std::lock_guard lock(mu);  // ready implies the callback ran
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0], "cb:36");
  }
  mp::AsyncResult m = pool.map_async("square", {1, 2, 3}, 1, cb, ecb);
  m.wait(kLive);
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[1], "cb:[1, 4, 9]");  // the whole list, once
  }
  mp::AsyncResult e = pool.apply_async("nonneg", {-7}, {}, cb, ecb);
  e.wait(kLive);
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(log[2], "ecb:ValueError:-7");
  }
  mp::AsyncResult me = pool.map_async("nonneg", {1, -1, -2}, 1, cb, ecb);
  me.wait(kLive);
  pool.close();
  pool.join();
  std::lock_guard lock(mu);
  EXPECT_EQ(calls.load(), 4);  // exactly once each, also after join
  ASSERT_EQ(log.size(), 4u);
  EXPECT_TRUE(log[3] == "ecb:ValueError:-1" || log[3] == "ecb:ValueError:-2") << log[3];
}

// [pool.callback.raise] STRICT
TEST(PoolTest, ThrowingCallbackIsReportedAndIgnored) {
  mp::Pool pool(opts(2));
  testing::internal::CaptureStderr();
  mp::AsyncResult r = pool.apply_async(
      "identity", {1}, {}, [](const Value&) { throw mp::RuntimeError("callback failed"); });
  mp::AsyncResult e = pool.apply_async(
      "nonneg", {-1}, {}, {}, [](const mp::Error&) { throw std::runtime_error("ecb failed"); });
  EXPECT_EQ(r.get(kLive), Value(1));
  expect_error([&] { e.get(kLive); }, "ValueError", "-1");
  // Later jobs still complete.
  EXPECT_EQ(pool.apply("square", {3}), Value(9));
  EXPECT_EQ(pool.map("square", range(10), 2).size(), 10u);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("callback failed"), std::string::npos) << err;
  EXPECT_NE(err.find("ecb failed"), std::string::npos) << err;
}

// ---------------------------------------------------------------------------
// §6 life cycle
// ---------------------------------------------------------------------------

// [pool.close.completes] [pool.join.running] [pool.submit.not_running]
TEST(PoolTest, CloseLetsWorkFinishThenJoin) {
  mp::Pool pool(opts(2));
  expect_error([&] { pool.join(); }, "ValueError", "Pool is still running");
  mp::AsyncResult slow = pool.apply_async("sleep", {0.3, "slow"});
  mp::AsyncResult m = pool.map_async("slow_identity", range(6), 1);
  mp::IMapIterator it = pool.imap("square", range(5));
  const auto pids = pool.worker_pids();
  pool.close();
  pool.close();  // idempotent
  for (auto submit : std::vector<std::function<void()>>{
           [&] { pool.apply("identity", {1}); },
           [&] { pool.apply_async("identity", {1}); },
           [&] { pool.map("identity", {1}); },
           [&] { pool.map_async("identity", {1}); },
           [&] {
             pool.starmap("add", {Value::list({1, 2})});
           },
           [&] {
             pool.starmap_async("add", {Value::list({1, 2})});
           },
           [&] { pool.imap("identity", {1}); },
           [&] { pool.imap_unordered("identity", {1}); },
       }) {
    expect_error(submit, "ValueError", "Pool not running");
  }
  pool.join();
  EXPECT_TRUE(slow.ready());
  EXPECT_EQ(slow.get(0), Value("slow"));
  EXPECT_EQ(m.get(0), Value(range(6)));
  for (std::int64_t i = 0; i < 5; ++i) EXPECT_EQ(it.next(0), Value(i * i));
  EXPECT_FALSE(it.next(0).has_value());
  EXPECT_TRUE(pool.worker_pids().empty());
  for (pid_t pid : pids) EXPECT_NE(::kill(pid, 0), 0);  // ended and reaped
  pool.join();                                          // again
}

// [pool.terminate.prompt] [pool.submit.not_running]
TEST(PoolTest, TerminateKillsRunningTasksAndFailsResults) {
  mp::Pool pool(opts(2));
  mp::AsyncResult forever = pool.apply_async("sleep", {3600});
  mp::AsyncResult queued = pool.map_async("sleep", {3600, 3600, 3600}, 1);
  mp::IMapIterator it = pool.imap("sleep", {3600});
  ASSERT_TRUE(eventually([&] { return pool.worker_pids().size() == 2; }));
  const auto start = Clock::now();
  pool.terminate();
  pool.join();
  EXPECT_LT(seconds_since(start), kLive);
  expect_error([&] { forever.get(); }, "ProcessError", "pool terminated");
  expect_error([&] { queued.get(); }, "ProcessError", "pool terminated");
  expect_error([&] { it.next(); }, "ProcessError", "pool terminated");
  EXPECT_FALSE(it.next(0).has_value());
  EXPECT_TRUE(pool.worker_pids().empty());
  expect_error([&] { pool.apply_async("identity", {1}); }, "ValueError", "Pool not running");
  pool.terminate();  // idempotent
}

// [pool.context.exit] the destructor terminates (bounded, no leftovers)
TEST(PoolTest, DestructorTerminatesAndReaps) {
  std::vector<pid_t> pids;
  mp::AsyncResult r;
  const auto start = Clock::now();
  {
    mp::Pool pool(opts(2));
    r = pool.apply_async("sleep", {3600});
    pids = pool.worker_pids();
  }
  EXPECT_LT(seconds_since(start), kLive);
  expect_error([&] { r.get(); }, "ProcessError");
  for (pid_t pid : pids) EXPECT_NE(::kill(pid, 0), 0);  // reaped: gone
  EXPECT_TRUE(mp::active_children().empty());
}

// [pool.maxtasksperchild.replace]
TEST(PoolTest, MaxTasksPerChildReplacesWorkers) {
  mp::PoolOptions o = opts(2);
  o.maxtasksperchild = 1;
  mp::Pool pool(o);
  std::vector<mp::AsyncResult> rs;
  for (int i = 0; i < 8; ++i) rs.push_back(pool.apply_async("pid"));
  std::set<std::int64_t> pids;
  for (auto& r : rs) pids.insert(r.get(kLive).as_int());
  EXPECT_EQ(pids.size(), 8u);                   // each task in a new worker
  const List m = pool.map("pid", range(6), 1);  // a chunk is one task
  std::set<std::int64_t> chunk_pids;
  for (const Value& v : m) chunk_pids.insert(v.as_int());
  EXPECT_EQ(chunk_pids.size(), 6u);
  o.maxtasksperchild = 3;
  mp::Pool three(o);
  EXPECT_EQ(three.map("square", range(50), 1).size(), 50u);
}

// ---------------------------------------------------------------------------
// §7 worker death, initializer
// ---------------------------------------------------------------------------

// [pool.death.fails_task] [pool.death.others_complete] [pool.death.keeps_serving] [pool.task.crash]
TEST(PoolTest, WorkerDeathFailsItsTaskOnly) {
  const std::string path = temp_path("death");
  ::unlink(path.c_str());
  mp::Pool pool(opts(2));
  // The crash runs first on one worker (after 0.2 s); the record tasks are
  // queued on both workers behind it, and those behind the crash move.
  mp::AsyncResult crash = pool.apply_async("crash", {SIGKILL, 0.2});
  List items;
  for (std::int64_t i = 0; i < 40; ++i) items.push_back(Value::list({i, path}));
  mp::AsyncResult rec = pool.starmap_async("record", items, 1);
  expect_error([&] { crash.get(kLive); }, "WorkerLost");
  List want;
  for (std::int64_t i = 0; i < 40; ++i) want.emplace_back(i);
  EXPECT_EQ(rec.get(kLive), Value(want));
  const auto counts = read_counts(path);
  EXPECT_EQ(counts.size(), 40u);
  for (const auto& [x, n] : counts) EXPECT_EQ(n, 1) << "item " << x << " ran " << n << " times";
  // Keeps serving, with a replacement worker.
  EXPECT_EQ(pool.map_async("square", range(20), 1).get(kLive).as_list().size(), 20u);
  EXPECT_TRUE(eventually([&] { return pool.worker_pids().size() == 2; }));
  // A crash inside a map chunk fails the map with WorkerLost.
  expect_error([&] { pool.starmap_async("crash", {Value::list({SIGTERM})}).get(kLive); },
               "WorkerLost");
  EXPECT_EQ(pool.apply_async("identity", {"after"}).get(kLive), Value("after"));
  ::unlink(path.c_str());
}

// [pool.death.idle] STRICT
TEST(PoolTest, KillingAllIdleWorkersKeepsThePoolServing) {
  mp::Pool pool(opts(2));
  EXPECT_EQ(pool.map_async("square", range(10)).get(kLive).as_list().size(), 10u);
  for (int round = 0; round < 2; ++round) {
    const auto pids = pool.worker_pids();
    ASSERT_EQ(pids.size(), 2u);
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    EXPECT_EQ(pool.map_async("square", range(10), 1).get(kLive).as_list().size(), 10u);
    EXPECT_EQ(pool.apply_async("square", {4}).get(kLive), Value(16));
    ASSERT_TRUE(eventually([&] {
      const auto now = pool.worker_pids();
      return now.size() == 2 && std::none_of(now.begin(), now.end(), [&](pid_t p) {
               return std::find(pids.begin(), pids.end(), p) != pids.end();
             });
    }));
  }
}

// [pool.initializer.runs] [pool.task.tag]
TEST(PoolTest, InitializerRunsInEachWorker) {
  mp::PoolOptions o = opts(2);
  o.initializer = "set_tag";
  o.initargs = {"tagged"};
  mp::Pool pool(o);
  const List tags = pool.map("get_tag", range(20), 1);
  for (const Value& t : tags) EXPECT_EQ(t, Value("tagged"));
  mp::Pool plain(opts(1));
  EXPECT_EQ(plain.apply("get_tag"), Value());  // never set in this worker
}

// [pool.initializer.fails] STRICT
TEST(PoolTest, InitializerFailureBreaksThePoolWithoutRespawning) {
  mp::PoolOptions o = opts(2);
  o.initializer = "raise";
  o.initargs = {"OSError", "init failed"};
  mp::Pool pool(o);
  mp::AsyncResult r = pool.apply_async("identity", {1});
  expect_error([&] { r.get(kLive); }, "OSError", "init failed");
  expect_error([&] { pool.map("square", range(10), 1); }, "OSError", "init failed");
  mp::IMapIterator it = pool.imap("square", {1});
  expect_error([&] { it.next(kLive); }, "OSError", "init failed");
  // No respawn loop: the workers are gone and stay gone.
  ASSERT_TRUE(eventually([&] { return pool.worker_pids().empty(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(pool.worker_pids().empty());
  expect_error([&] { pool.apply("identity", {1}); }, "OSError", "init failed");
  pool.close();
  pool.join();
}

// ---------------------------------------------------------------------------
// spawn
// ---------------------------------------------------------------------------

// [pool.apply.value] [pool.map.order] [pool.initializer.runs] [pool.death.fails_task] under spawn
TEST(PoolTest, SpawnStartMethod) {
  mp::PoolOptions o = opts(2, mp::StartMethod::kSpawn);
  o.initializer = "set_tag";
  o.initargs = {"spawned"};
  mp::Pool pool(o);
  for (pid_t pid : pool.worker_pids()) {  // really spawned: a fresh image
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
    const std::string cmdline((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    EXPECT_NE(cmdline.find("--mp-spawn-child"), std::string::npos) << cmdline;
  }
  EXPECT_EQ(pool.apply("square", {12}), Value(144));
  const List input = range(200);
  List squares;
  for (const Value& v : input) squares.emplace_back(v.as_int() * v.as_int());
  EXPECT_EQ(pool.map("square", input, 1), squares);
  EXPECT_EQ(pool.map("square", input), squares);
  EXPECT_EQ(pool.apply("get_tag"), Value("spawned"));
  expect_error([&] { pool.apply("crash", {SIGKILL}); }, "WorkerLost");
  EXPECT_EQ(pool.apply("identity", {"again"}), Value("again"));
  pool.close();
  pool.join();
}

int open_fd_count() {
  int n = 0;
  for (int fd = 0; fd < 4096; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1) ++n;
  }
  return n;
}

// No leaks: descriptors, processes, threads' pools all gone after the
// destructor (fork and spawn, after deaths and replacements). [pool.context.exit]
TEST(PoolTest, NoDescriptorOrProcessLeaks) {
  const int before = open_fd_count();
  for (auto method : {mp::StartMethod::kFork, mp::StartMethod::kSpawn}) {
    mp::Pool pool(opts(2, method));
    EXPECT_EQ(pool.map("square", range(100), 3).size(), 100u);
    expect_error([&] { pool.apply("crash", {SIGKILL}); }, "WorkerLost");
    EXPECT_EQ(pool.apply("square", {2}), Value(4));
  }
  {
    mp::Pool pool(opts(2));
    pool.close();
    pool.join();
  }
  EXPECT_EQ(open_fd_count(), before);
  EXPECT_TRUE(mp::active_children().empty());
}

// Throughput smoke: many small tasks through the rings (and their flow control).
// [pool.map.order]
TEST(PoolTest, ManySmallTasks) {
  mp::Pool pool(opts(2));
  const List input = range(20000);
  EXPECT_EQ(pool.map("identity", input, 1), input);
  mp::IMapIterator it = pool.imap_unordered("identity", input, 1);
  std::int64_t sum = 0;
  for (int i = 0; i < 20000; ++i) sum += it.next(kLive)->as_int();
  EXPECT_EQ(sum, 20000LL * 19999 / 2);
}

#if MP_HAVE_RAPIDCHECK
// [pool.map.order] [pool.map.error] [pool.imap_unordered.permutation] [pool.imap.error]
// Random task mixes on one pool: values in order, errors at the right places.
TEST(PoolTest, RandomTaskMixesProperty) {
  mp::Pool pool(opts(2));
  const bool ok = rc::check("pool results match a sequential run", [&] {
    const auto xs = *rc::gen::container<std::vector<int>>(rc::gen::inRange(-3, 50));
    const long cs = *rc::gen::inRange(1, 6);
    List input;
    for (int x : xs) input.emplace_back(x);
    bool any_negative = false;
    List want;
    for (int x : xs) {
      if (x < 0) any_negative = true;
      want.emplace_back(x);
    }
    // map: in order, or the error of a failing item.
    try {
      const List got = pool.map("nonneg", input, cs);
      RC_ASSERT(!any_negative);
      RC_ASSERT(got == want);
    } catch (const mp::ValueError& e) {
      RC_ASSERT(any_negative);
      RC_ASSERT(std::stoi(e.what()) < 0);
    }
    // imap (chunksize 1): each position yields its value or its error.
    mp::IMapIterator it = pool.imap("nonneg", input, 1);
    for (int x : xs) {
      try {
        const auto v = it.next(kLive);
        RC_ASSERT(v.has_value());
        RC_ASSERT(x >= 0);
        RC_ASSERT(v->as_int() == x);
      } catch (const mp::ValueError& e) {
        RC_ASSERT(x < 0);
        RC_ASSERT(std::string(e.what()) == std::to_string(x));
      }
    }
    RC_ASSERT(!it.next(kLive).has_value());
    // imap_unordered: a permutation of the values plus one error per negative.
    mp::IMapIterator un = pool.imap_unordered("nonneg", input, 1);
    std::multiset<std::int64_t> got_values, want_values;
    std::multiset<std::string> got_errors, want_errors;
    for (int x : xs) {
      if (x >= 0)
        want_values.insert(x);
      else
        want_errors.insert(std::to_string(x));
    }
    for (std::size_t i = 0; i < xs.size(); ++i) {
      try {
        got_values.insert(un.next(kLive)->as_int());
      } catch (const mp::ValueError& e) {
        got_errors.insert(e.what());
      }
    }
    RC_ASSERT(!un.next(kLive).has_value());
    RC_ASSERT(got_values == want_values);
    RC_ASSERT(got_errors == want_errors);
  });
  EXPECT_TRUE(ok);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  mp::spawn_main(argc, argv);  // runs the worker and exits in a spawned child
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
