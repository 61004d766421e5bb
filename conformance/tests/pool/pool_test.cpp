// Scenario tests for spec/pool/pool.md. Each test names the clauses it checks.
//
// How the tests observe a pool (the chapter's introduction): a Pool is process-local
// (spec/protocol.md §6), so every call on it goes to one actor, "a", which constructs the pool
// at its first call; its workers run tasks of the pool catalogue, named by `func`. Results of
// the asynchronous calls are bound to the slots "R" (AsyncResult) and "I" (Iterator).
//
// Timing policy (spec/README.md §7): no tight durations. A task that must still be running
// sleeps for much longer than the liveness bound (`forever`) and is ended by terminate or by
// teardown; "not ready yet" is read right after a submission whose task sleeps that long;
// every result a backend might never deliver (CPython's known hangs) is read with a bounded
// `get(timeout)`, so that a hang is a FAIL with a clear message, never a hung suite.
//
// Clauses without a test of their own: [pool.task.catalogue] is checked by every test that
// runs a task.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bytes_json.hpp"
#include "scenario.hpp"
#include "value_match.hpp"

namespace mpspec {
namespace {

using timing::huge;
using timing::kClockResolution;
using timing::long_;
using timing::small;

// A sleep that never ends within a test: the task is ended by terminate or teardown.
double forever() { return 10 * huge(); }
// The bound within which a result a strict backend must deliver is awaited (bounded get).
double bound() { return 10 * long_(); }

#define SKIP_IF_UNSUPPORTED(r) \
  if ((r).raised("Unsupported")) GTEST_SKIP() << "UNSUPPORTED: " << (r).error_message

// A pool scenario: Pool "P" (with `pool_args`), the slots "R", "R2", "R3" and "I", actor "a".
void pool_setup(Scenario& s, Json pool_args = Json{{"processes", 2}}) {
  s.object("P", "Pool", std::move(pool_args))
      .object("R", "AsyncResult")
      .object("R2", "AsyncResult")
      .object("R3", "AsyncResult")
      .object("I", "Iterator")
      .actor("a");
}

const CallResult& run(Scenario& s, const std::string& object, const std::string& method,
                      Json args = Json::object()) {
  return s.await(s.call("a", object, method, std::move(args)));
}

Json task(const std::string& func, Json args = Json::array(), Json extra = Json::object()) {
  Json j = std::move(extra);
  j["func"] = func;
  j["args"] = std::move(args);
  return j;
}

Json over(const std::string& func, Json iterable, Json chunksize = nullptr) {
  Json j{{"func", func}, {"iterable", std::move(iterable)}};
  if (!chunksize.is_null()) j["chunksize"] = std::move(chunksize);
  return j;
}

Json with_slot(Json j, const std::string& slot) {
  j["as"] = slot;
  return j;
}

Json timeout(double t) { return Json{{"timeout", t}}; }

Json range(int n, int from = 0) {
  Json out = Json::array();
  for (int i = from; i < n; ++i) out.push_back(i);
  return out;
}

Json squares(const Json& xs) {
  Json out = Json::array();
  for (const auto& x : xs) out.push_back(x.get<std::int64_t>() * x.get<std::int64_t>());
  return out;
}

// Constructs the pool with a first call that must succeed (`identity(0)`), or skips.
#define POOL_READY(s)                                                       \
  do {                                                                      \
    const CallResult& first_ = run(s, "P", "apply", task("identity", {0})); \
    SKIP_IF_UNSUPPORTED(first_);                                            \
    ASSERT_TRUE(has_value(first_, 0)) << "the pool's first apply";          \
  } while (0)

// ---- §1 the task catalogue, §3 apply ----

TEST(Pool, ApplyReturnsTheTaskValue) {
  MPSPEC_CLAUSES(
      "[pool.apply.value] [pool.task.catalogue] [pool.task.identity] [pool.task.square] "
      "[pool.task.add]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  const Json values =
      Json::array({nullptr, true, -7, 1.5, "h\xc3\xa9llo", bytes_json(std::string("\x00\xff", 2)),
                   Json::array({1, Json::array({2.5})}), Json{{"k", "v"}}});
  for (const Json& v : values)
    EXPECT_TRUE(has_value(run(s, "P", "apply", task("identity", {v})), v)) << v.dump();
  EXPECT_TRUE(has_value(run(s, "P", "apply", task("square", {7})), 49));
  EXPECT_TRUE(has_value(run(s, "P", "apply", task("square", {1.5})), 2.25));
  EXPECT_TRUE(has_value(run(s, "P", "apply", task("add", {2, 3})), 5));
  EXPECT_TRUE(has_value(run(s, "P", "apply", task("add", {2}, Json{{"kwds", {{"b", 40}}}})), 42));
  EXPECT_TRUE(has_value(
      run(s, "P", "apply", task("add", Json::array(), {{"kwds", {{"a", 1}, {"b", 0.5}}}})), 1.5));
}

TEST(Pool, ApplyRaisesTheTaskError) {
  MPSPEC_CLAUSES("[pool.apply.error] [pool.task.raise] [pool.task.nonneg]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  for (const char* kind : {"ValueError", "TypeError", "RuntimeError", "OSError", "IndexError"}) {
    const CallResult& r = run(s, "P", "apply", task("raise", {kind, "from the task"}));
    EXPECT_TRUE(r.raised(kind)) << kind << ": " << r;
  }
  EXPECT_TRUE(run(s, "P", "apply", task("nonneg", {-3})).raised("ValueError"));
  EXPECT_TRUE(has_value(run(s, "P", "apply", task("nonneg", {4})), 4));
  EXPECT_TRUE(has_value(run(s, "P", "apply", task("nonneg", {0})), 0));
  // The pool is still usable after its tasks raised.
  EXPECT_TRUE(has_value(run(s, "P", "apply", task("square", {3})), 9));
}

// ---- §2 construction ----

TEST(Pool, ProcessesBelowOneIsValueError) {
  MPSPEC_CLAUSES("[pool.construct.processes]");
  for (int n : {0, -1}) {
    Scenario s;
    pool_setup(s, Json{{"processes", n}});
    MPSPEC_START(s);
    // apply_async, not apply: a backend that accepts the value must not hang the test.
    const CallResult& r = run(s, "P", "apply_async", with_slot(task("identity", {1}), "R"));
    SKIP_IF_UNSUPPORTED(r);
    EXPECT_TRUE(r.raised("ValueError")) << "processes=" << n << ": " << r;
    // The next call tries again, and fails the same way.
    EXPECT_TRUE(run(s, "P", "apply_async", with_slot(task("identity", {1}), "R"))
                    .raised("ValueError"));
  }
}

TEST(Pool, MaxtasksperchildMustBeAPositiveInt) {
  MPSPEC_CLAUSES("[pool.construct.maxtasksperchild]");
  for (const Json& m : {Json(0), Json(-1), Json(0.5)}) {
    Scenario s;
    pool_setup(s, Json{{"processes", 1}, {"maxtasksperchild", m}});
    MPSPEC_START(s);
    // apply_async, not apply: a pool that accepts 0 may restart its workers for ever.
    const CallResult& r = run(s, "P", "apply_async", with_slot(task("identity", {1}), "R"));
    SKIP_IF_UNSUPPORTED(r);
    EXPECT_TRUE(r.raised("ValueError")) << "maxtasksperchild=" << m.dump() << ": " << r;
  }
}

// The pids of the pool's live workers, or nullopt (the test is then skipped).
std::vector<std::int64_t> worker_pids(Scenario& s) {
  const CallResult& r = run(s, "P", "worker_pids");
  std::vector<std::int64_t> out;
  if (!r.ok() || !r.value.is_array()) {
    ADD_FAILURE() << "worker_pids: " << r;
    return out;
  }
  for (const auto& p : r.value) out.push_back(p.get<std::int64_t>());
  return out;
}

TEST(Pool, StartsTheRequestedNumberOfWorkers) {
  MPSPEC_CLAUSES("[pool.construct.workers] [pool.construct.default_processes]");
  {
    Scenario s;
    pool_setup(s, Json{{"processes", 3}});
    s.needs_method("Pool", "worker_pids");
    MPSPEC_START(s);
    POOL_READY(s);
    const auto pids = worker_pids(s);
    EXPECT_EQ(pids.size(), 3u);
    EXPECT_EQ(std::set<std::int64_t>(pids.begin(), pids.end()).size(), pids.size());
  }
  {
    Scenario s;
    pool_setup(s, Json{{"processes", nullptr}});
    s.object("M", "Module");
    s.needs_method("Pool", "worker_pids").needs_method("Module", "cpu_count");
    MPSPEC_START(s);
    POOL_READY(s);
    const CallResult& n = run(s, "M", "cpu_count");
    ASSERT_TRUE(n.ok() && n.value.is_number_integer()) << n;
    EXPECT_EQ(worker_pids(s).size(), n.value.get<std::size_t>());
  }
}

TEST(Pool, InitializerRunsInEveryWorkerBeforeItsTasks) {
  MPSPEC_CLAUSES("[pool.initializer.runs] [pool.task.tag]");
  {
    Scenario s;
    pool_setup(s, Json{{"processes", 2}, {"initializer", "set_tag"}, {"initargs", {"hello"}}});
    MPSPEC_START(s);
    POOL_READY(s);
    Json calls = Json::array();
    for (int i = 0; i < 12; ++i) calls.push_back(Json::array());
    const CallResult& r = run(s, "P", "starmap", over("get_tag", calls, 1));
    ASSERT_TRUE(r.ok()) << r;
    for (const auto& v : r.value) EXPECT_TRUE(same_value(v, "hello")) << r.value.dump();
  }
  {
    Scenario s;  // without an initializer nothing is tagged
    pool_setup(s);
    MPSPEC_START(s);
    POOL_READY(s);
    EXPECT_TRUE(has_value(run(s, "P", "apply", task("get_tag")), nullptr));
  }
}

// ---- §3 submission, §4 AsyncResult ----

TEST(Pool, ApplyAsyncReturnsBeforeTheTaskEnds) {
  MPSPEC_CLAUSES(
      "[pool.apply_async.nonblocking] [pool.result.ready] [pool.result.get] "
      "[pool.task.sleep]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  const CallResult& a =
      run(s, "P", "apply_async", with_slot(task("sleep", {forever(), "late"}), "R"));
  ASSERT_TRUE(a.ok(nullptr)) << a;
  EXPECT_TRUE(has_value(run(s, "R", "ready"), false));
  // A short one on the other worker: ready after get.
  ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("sleep", {small(), "soon"}), "R2")).ok());
  EXPECT_TRUE(has_value(run(s, "R2", "get"), "soon"));
  EXPECT_TRUE(has_value(run(s, "R2", "ready"), true));
  EXPECT_TRUE(has_value(run(s, "R2", "get"), "soon")) << "a second get gives the value again";
  EXPECT_TRUE(has_value(run(s, "R", "ready"), false));
}

TEST(Pool, GetTimesOutAndTheResultStaysUsable) {
  MPSPEC_CLAUSES("[pool.result.get_timeout] [pool.result.wait] [pool.task.slow_identity]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  const double slow = 3 * long_();
  ASSERT_TRUE(
      run(s, "P", "apply_async", with_slot(task("slow_identity", {7, slow}), "R")).ok(nullptr));
  const CallResult& g = run(s, "R", "get", timeout(small()));
  EXPECT_TRUE(g.raised("TimeoutError")) << g;
  EXPECT_GE(g.elapsed(), small() - kClockResolution) << "get(timeout) returned early";
  const CallResult& w = run(s, "R", "wait", timeout(small()));
  EXPECT_TRUE(w.ok(nullptr)) << "wait returns None when the time is up: " << w;
  EXPECT_GE(w.elapsed(), small() - kClockResolution);
  EXPECT_TRUE(run(s, "R", "wait", Json{{"timeout", nullptr}}).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "R", "ready"), true));
  EXPECT_TRUE(run(s, "R", "wait", timeout(0)).ok(nullptr));
  EXPECT_TRUE(has_value(run(s, "R", "get", timeout(0)), 7));
}

TEST(Pool, SuccessfulIsValueErrorUntilReady) {
  MPSPEC_CLAUSES("[pool.result.successful] [pool.result.error]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("sleep", {forever()}), "R")).ok());
  EXPECT_TRUE(run(s, "R", "successful").raised("ValueError"));
  ASSERT_TRUE(
      run(s, "P", "apply_async", with_slot(task("raise", {"TypeError", "bad"}), "R2")).ok());
  EXPECT_TRUE(run(s, "R2", "get").raised("TypeError"));
  EXPECT_TRUE(has_value(run(s, "R2", "successful"), false));
  EXPECT_TRUE(run(s, "R2", "get").raised("TypeError")) << "the error again on a second get";
  ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("identity", {1}), "R2")).ok());
  EXPECT_TRUE(has_value(run(s, "R2", "get"), 1));
  EXPECT_TRUE(has_value(run(s, "R2", "successful"), true));
}

TEST(Pool, MapKeepsTheInputOrder) {
  MPSPEC_CLAUSES("[pool.map.order] [pool.starmap.unpack] [pool.result.get]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  const Json xs = range(41);
  for (const Json& chunk : {Json(nullptr), Json(1), Json(3), Json(7), Json(100)}) {
    EXPECT_TRUE(has_value(run(s, "P", "map", over("square", xs, chunk)), squares(xs)))
        << "chunksize " << chunk.dump();
    ASSERT_TRUE(run(s, "P", "map_async", with_slot(over("square", xs, chunk), "R")).ok());
    EXPECT_TRUE(has_value(run(s, "R", "get"), squares(xs))) << "map_async " << chunk.dump();
    Json pairs = Json::array(), sums = Json::array();
    for (int i = 0; i < 23; ++i) {
      pairs.push_back(Json::array({i, 10 * i}));
      sums.push_back(11 * i);
    }
    EXPECT_TRUE(has_value(run(s, "P", "starmap", over("add", pairs, chunk)), sums));
    ASSERT_TRUE(run(s, "P", "starmap_async", with_slot(over("add", pairs, chunk), "R")).ok());
    EXPECT_TRUE(has_value(run(s, "R", "get"), sums));
  }
  // Tasks of uneven length: the order is still the input's.
  Json slow = Json::array();
  for (int i = 0; i < 6; ++i) slow.push_back(Json::array({i, (i % 2) * small()}));
  EXPECT_TRUE(has_value(run(s, "P", "starmap", over("slow_identity", slow, 1)), range(6)));
}

TEST(Pool, MapOfNothingIsEmpty) {
  MPSPEC_CLAUSES("[pool.map.empty] [pool.imap.end]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  const Json none = Json::array();
  EXPECT_TRUE(has_value(run(s, "P", "map", over("square", none)), none));
  EXPECT_TRUE(has_value(run(s, "P", "starmap", over("add", none)), none));
  ASSERT_TRUE(run(s, "P", "map_async", with_slot(over("square", none), "R")).ok());
  EXPECT_TRUE(has_value(run(s, "R", "get"), none));
  ASSERT_TRUE(run(s, "P", "starmap_async", with_slot(over("add", none), "R")).ok());
  EXPECT_TRUE(has_value(run(s, "R", "get"), none));
  for (const char* m : {"imap", "imap_unordered"}) {
    ASSERT_TRUE(run(s, "P", m, with_slot(over("square", none), "I")).ok()) << m;
    EXPECT_TRUE(has_value(run(s, "I", "next"), Json{{"done", true}})) << m;
  }
}

TEST(Pool, MapRaisesTheErrorOfAFailingItem) {
  MPSPEC_CLAUSES("[pool.map.error] [pool.task.nonneg] [pool.result.error]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  const Json xs = Json::array({1, 2, -3, 4, 5, -6, 7});
  for (const Json& chunk : {Json(nullptr), Json(1), Json(2)}) {
    EXPECT_TRUE(run(s, "P", "map", over("nonneg", xs, chunk)).raised("ValueError"));
    ASSERT_TRUE(run(s, "P", "map_async", with_slot(over("nonneg", xs, chunk), "R")).ok());
    EXPECT_TRUE(run(s, "R", "get").raised("ValueError"));
    EXPECT_TRUE(has_value(run(s, "R", "successful"), false));
  }
  Json pairs = Json::array({Json::array({1, 2}), Json::array({"x", 2})});
  EXPECT_TRUE(run(s, "P", "starmap", over("add", pairs, 1)).raised("TypeError"));
}

TEST(Pool, AMapResultIsReadyOnlyAfterEveryChunk) {
  MPSPEC_CLAUSES("[pool.map.no_failfast] [pool.task.nonneg]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  // Two chunks: the first fails at once, the second takes `slow`.
  const double slow = 3 * long_();
  const Json items = Json::array({Json::array({-1}), Json::array({2, slow})});
  ASSERT_TRUE(run(s, "P", "starmap_async", with_slot(over("nonneg", items, 1), "R")).ok());
  // One more task after them: once it has returned, the failing chunk (submitted before it, on
  // the one worker the slow chunk leaves free) has finished too.
  EXPECT_TRUE(has_value(run(s, "P", "apply", task("identity", {9})), 9));
  const CallResult& ready = run(s, "R", "ready");
  EXPECT_TRUE(has_value(ready, false)) << "ready while a chunk still runs";
  const CallResult& g = run(s, "R", "get");
  EXPECT_TRUE(g.raised("ValueError")) << g;
  EXPECT_TRUE(has_value(run(s, "R", "ready"), true));
}

TEST(Pool, ImapYieldsInTheInputOrder) {
  MPSPEC_CLAUSES("[pool.imap.order] [pool.imap.end]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  const Json xs = range(25);
  for (int chunk : {1, 4}) {
    ASSERT_TRUE(run(s, "P", "imap", with_slot(over("square", xs, chunk), "I")).ok());
    for (const auto& want : squares(xs))
      EXPECT_TRUE(has_value(run(s, "I", "next"), Json{{"value", want}})) << "chunksize " << chunk;
    for (int i = 0; i < 2; ++i) EXPECT_TRUE(has_value(run(s, "I", "next"), Json{{"done", true}}));
  }
}

TEST(Pool, ImapUnorderedYieldsEachResultOnce) {
  MPSPEC_CLAUSES("[pool.imap_unordered.permutation] [pool.imap.end]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  const Json xs = range(25);
  for (int chunk : {1, 3}) {
    ASSERT_TRUE(run(s, "P", "imap_unordered", with_slot(over("square", xs, chunk), "I")).ok());
    std::multiset<std::int64_t> got;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const CallResult& r = run(s, "I", "next");
      ASSERT_TRUE(r.ok() && r.value.contains("value")) << r;
      got.insert(r.value["value"].get<std::int64_t>());
    }
    std::multiset<std::int64_t> want;
    for (const auto& v : squares(xs)) want.insert(v.get<std::int64_t>());
    EXPECT_EQ(got, want) << "chunksize " << chunk;
    EXPECT_TRUE(has_value(run(s, "I", "next"), Json{{"done", true}}));
  }
}

TEST(Pool, ImapRaisesAtTheFailingPosition) {
  MPSPEC_CLAUSES("[pool.imap.error] [pool.task.nonneg]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  ASSERT_TRUE(run(s, "P", "imap", with_slot(over("nonneg", Json::array({1, -2, 3}), 1), "I")).ok());
  EXPECT_TRUE(has_value(run(s, "I", "next"), Json{{"value", 1}}));
  EXPECT_TRUE(run(s, "I", "next").raised("ValueError"));
  EXPECT_TRUE(has_value(run(s, "I", "next"), Json{{"value", 3}}));
  EXPECT_TRUE(has_value(run(s, "I", "next"), Json{{"done", true}}));

  ASSERT_TRUE(
      run(s, "P", "imap_unordered", with_slot(over("nonneg", Json::array({1, -2, 3, -4}), 1), "I"))
          .ok());
  int errors = 0;
  std::multiset<std::int64_t> got;
  for (int i = 0; i < 4; ++i) {
    const CallResult& r = run(s, "I", "next");
    if (r.raised("ValueError")) {
      ++errors;
    } else {
      ASSERT_TRUE(r.ok() && r.value.contains("value")) << r;
      got.insert(r.value["value"].get<std::int64_t>());
    }
  }
  EXPECT_EQ(errors, 2);
  EXPECT_EQ(got, (std::multiset<std::int64_t>{1, 3}));
  EXPECT_TRUE(has_value(run(s, "I", "next"), Json{{"done", true}}));
}

TEST(Pool, ImapChunksizeBelowOneIsValueError) {
  MPSPEC_CLAUSES("[pool.imap.chunksize]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  for (const char* m : {"imap", "imap_unordered"})
    for (int c : {0, -1}) {
      const CallResult& r = run(s, "P", m, with_slot(over("square", Json::array({1, 2}), c), "I"));
      EXPECT_TRUE(r.raised("ValueError")) << m << " chunksize " << c << ": " << r;
    }
}

TEST(Pool, ImapNextTimesOutAndGoesOn) {
  MPSPEC_CLAUSES("[pool.imap.timeout] [pool.task.sleep]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  const double slow = 3 * long_();
  ASSERT_TRUE(run(s, "P", "imap", with_slot(over("sleep", Json::array({slow}), 1), "I")).ok());
  const CallResult& t = run(s, "I", "next", timeout(small()));
  EXPECT_TRUE(t.raised("TimeoutError")) << t;
  EXPECT_GE(t.elapsed(), small() - kClockResolution);
  EXPECT_TRUE(has_value(run(s, "I", "next"), Json{{"value", nullptr}}));
  EXPECT_TRUE(has_value(run(s, "I", "next", timeout(small())), Json{{"done", true}}));
}

// ---- §6 life cycle ----

// Every submission method, on a pool that is not running: ValueError.
void expect_submissions_refused(Scenario& s, const std::string& when) {
  const Json xs = Json::array({1, 2});
  const std::vector<std::pair<std::string, Json>> calls = {
      {"apply", task("identity", {1})},
      {"apply_async", with_slot(task("identity", {1}), "R2")},
      {"map", over("square", xs)},
      {"map_async", with_slot(over("square", xs), "R2")},
      {"starmap", over("add", Json::array({Json::array({1, 2})}))},
      {"starmap_async", with_slot(over("add", Json::array({Json::array({1, 2})})), "R2")},
      {"imap", with_slot(over("square", xs), "I")},
      {"imap_unordered", with_slot(over("square", xs), "I")},
  };
  for (const auto& [method, args] : calls) {
    const CallResult& r = run(s, "P", method, args);
    EXPECT_TRUE(r.raised("ValueError")) << method << " after " << when << ": " << r;
  }
}

TEST(Pool, SubmissionsAfterCloseOrTerminateAreValueError) {
  MPSPEC_CLAUSES("[pool.submit.not_running]");
  for (const char* stop : {"close", "terminate"}) {
    Scenario s;
    pool_setup(s);
    MPSPEC_START(s);
    POOL_READY(s);
    ASSERT_TRUE(run(s, "P", stop).ok(nullptr)) << stop;
    expect_submissions_refused(s, stop);
  }
}

TEST(Pool, JoinWhileRunningIsValueError) {
  MPSPEC_CLAUSES("[pool.join.running]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  EXPECT_TRUE(run(s, "P", "join").raised("ValueError"));
  EXPECT_TRUE(has_value(run(s, "P", "apply", task("identity", {5})), 5)) << "still running";
}

TEST(Pool, CloseLetsOutstandingWorkFinish) {
  MPSPEC_CLAUSES("[pool.close.completes]");
  Scenario s;
  pool_setup(s);
  s.needs_method("Pool", "worker_pids");
  MPSPEC_START(s);
  POOL_READY(s);
  ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("slow_identity", {3, long_()}), "R")).ok());
  Json xs = range(8);
  ASSERT_TRUE(run(s, "P", "map_async", with_slot(over("slow_identity", xs, 1), "R2")).ok());
  ASSERT_TRUE(run(s, "P", "close").ok(nullptr));
  const CallResult& j = run(s, "P", "join");
  EXPECT_TRUE(j.ok(nullptr)) << j;
  EXPECT_TRUE(has_value(run(s, "R", "ready"), true)) << "join returned before the work finished";
  EXPECT_TRUE(has_value(run(s, "R", "get", timeout(0)), 3));
  EXPECT_TRUE(has_value(run(s, "R2", "get", timeout(0)), xs));
  EXPECT_TRUE(worker_pids(s).empty()) << "workers left after join";
}

TEST(Pool, TerminateEndsRunningTasks) {
  MPSPEC_CLAUSES("[pool.terminate.prompt]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("sleep", {forever()}), "R")).ok());
  ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("sleep", {forever()}), "R2")).ok());
  ASSERT_TRUE(run(s, "P", "terminate").ok(nullptr));
  const CallResult& j = run(s, "P", "join");  // the liveness bound of await is the watchdog
  EXPECT_TRUE(j.ok(nullptr)) << j;
}

TEST(Pool, WithBlockTerminatesAtItsEnd) {
  MPSPEC_CLAUSES("[pool.context.exit] [pool.context.enter]");
  {
    Scenario s;
    pool_setup(s);
    MPSPEC_START(s);
    const CallResult& e = run(s, "P", "__enter__");
    SKIP_IF_UNSUPPORTED(e);
    ASSERT_TRUE(e.ok()) << e;
    ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("sleep", {forever()}), "R")).ok());
    ASSERT_TRUE(run(s, "P", "__exit__").ok(nullptr));
    EXPECT_TRUE(run(s, "P", "apply", task("identity", {1})).raised("ValueError"));
    EXPECT_TRUE(run(s, "P", "join").ok(nullptr)) << "join after the with block";
    // The pending task was not finished: its result is not ready, or ready without success
    // (what becomes of unfinished work at terminate is unspecified otherwise).
    const CallResult& ready = run(s, "R", "ready");
    ASSERT_TRUE(ready.ok() && ready.value.is_boolean()) << ready;
    if (ready.value.get<bool>()) {
      EXPECT_TRUE(has_value(run(s, "R", "successful"), false));
    }
  }
  {
    Scenario s;
    pool_setup(s);
    MPSPEC_START(s);
    POOL_READY(s);
    ASSERT_TRUE(run(s, "P", "close").ok(nullptr));
    EXPECT_TRUE(run(s, "P", "__enter__").raised("ValueError"));
  }
}

TEST(Pool, MaxtasksperchildReplacesWorkers) {
  MPSPEC_CLAUSES("[pool.maxtasksperchild.replace] [pool.task.pid]");
  Scenario s;
  pool_setup(s, Json{{"processes", 1}, {"maxtasksperchild", 1}});
  MPSPEC_START(s);
  std::set<std::int64_t> pids;
  for (int i = 0; i < 4; ++i) {
    const CallResult& r = run(s, "P", "apply", task("pid"));
    SKIP_IF_UNSUPPORTED(r);
    ASSERT_TRUE(r.ok() && r.value.is_number_integer()) << r;
    pids.insert(r.value.get<std::int64_t>());
  }
  EXPECT_EQ(pids.size(), 4u) << "each task must run in a new worker";
  const Json xs = range(6);
  EXPECT_TRUE(has_value(run(s, "P", "map", over("square", xs, 1)), squares(xs)));
}

// ---- §5 callbacks ----

TEST(Pool, CallbackRunsOnceBeforeTheResultIsReady) {
  MPSPEC_CLAUSES("[pool.callback.once]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  const Json both{{"callback", "record"}, {"error_callback", "record"}};
  ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("identity", {5}, both), "R")).ok());
  EXPECT_TRUE(has_value(run(s, "R", "get"), 5));
  const Json once = Json::array({Json{{"callback", "callback"}, {"value", 5}}});
  EXPECT_TRUE(has_value(run(s, "R", "callbacks"), once)) << "when get returned";
  Json m = over("square", range(4));
  m.update(both);
  ASSERT_TRUE(run(s, "P", "map_async", with_slot(m, "R2")).ok());
  EXPECT_TRUE(has_value(run(s, "R2", "get"), squares(range(4))));
  EXPECT_TRUE(
      has_value(run(s, "R2", "callbacks"),
                Json::array({Json{{"callback", "callback"}, {"value", squares(range(4))}}})));
  // Later results do not call the earlier callbacks again.
  EXPECT_TRUE(has_value(run(s, "P", "map", over("square", range(10), 1)), squares(range(10))));
  EXPECT_TRUE(has_value(run(s, "R", "callbacks"), once));
}

TEST(Pool, ErrorCallbackRunsOnceWithTheError) {
  MPSPEC_CLAUSES("[pool.callback.error]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  const Json both{{"callback", "record"}, {"error_callback", "record"}};
  ASSERT_TRUE(
      run(s, "P", "apply_async", with_slot(task("raise", {"TypeError", "t"}, both), "R")).ok());
  EXPECT_TRUE(run(s, "R", "get").raised("TypeError"));
  const CallResult& c = run(s, "R", "callbacks");
  ASSERT_TRUE(c.ok() && c.value.is_array()) << c;
  ASSERT_EQ(c.value.size(), 1u) << c.value.dump();
  EXPECT_EQ(c.value[0]["callback"], "error_callback") << c.value.dump();
  EXPECT_EQ(c.value[0]["value"]["kind"], "TypeError") << c.value.dump();
  Json m = over("nonneg", Json::array({1, -1, 2}), 1);
  m.update(both);
  ASSERT_TRUE(run(s, "P", "map_async", with_slot(m, "R2")).ok());
  EXPECT_TRUE(run(s, "R2", "get").raised("ValueError"));
  const CallResult& c2 = run(s, "R2", "callbacks");
  ASSERT_TRUE(c2.ok() && c2.value.is_array() && c2.value.size() == 1u) << c2;
  EXPECT_EQ(c2.value[0]["callback"], "error_callback") << c2.value.dump();
  EXPECT_EQ(c2.value[0]["value"]["kind"], "ValueError") << c2.value.dump();
}

TEST(Pool, ARaisingCallbackDoesNotStopOtherResults) {
  MPSPEC_CLAUSES("[pool.callback.raise]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  ASSERT_TRUE(
      run(s, "P", "apply_async", with_slot(task("identity", {1}, {{"callback", "raise"}}), "R"))
          .ok());
  ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("identity", {2}), "R2")).ok());
  const CallResult& later = run(s, "R2", "get", timeout(bound()));
  ASSERT_TRUE(has_value(later, 2))
      << "a result submitted after a raising callback never arrived within " << bound() << " s";
  EXPECT_TRUE(has_value(run(s, "R", "get", timeout(bound())), 1))
      << "the result whose callback raised";
  EXPECT_TRUE(has_value(run(s, "P", "map", over("square", range(5), 1)), squares(range(5))));
}

// ---- §7 worker death ----

TEST(Pool, AWorkerThatDiesFailsItsTask) {
  MPSPEC_CLAUSES("[pool.death.fails_task]");
  for (int sig : {SIGKILL, SIGTERM}) {
    Scenario s;
    pool_setup(s);
    MPSPEC_START(s);
    POOL_READY(s);
    ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("crash", {sig}), "R")).ok());
    const CallResult& g = run(s, "R", "get", timeout(bound()));
    ASSERT_TRUE(g.raised("WorkerLost"))
        << "signal " << sig << ": the task of a worker that died must fail with WorkerLost "
        << "within " << bound() << " s; got " << g;
    // A map whose chunk dies fails as a whole.
    ASSERT_TRUE(run(s, "P", "starmap_async",
                    with_slot(over("crash", Json::array({Json::array({sig})}), 1), "R2"))
                    .ok());
    EXPECT_TRUE(run(s, "R2", "get", timeout(bound())).raised("WorkerLost"));
  }
}

TEST(Pool, AfterAWorkerDiesThePoolKeepsServing) {
  MPSPEC_CLAUSES("[pool.death.keeps_serving] [pool.task.crash]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("crash", {9}), "R")).ok());
  // Whatever becomes of the crashed task, new work still runs, on two workers again.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(run(s, "P", "map_async", with_slot(over("slow_identity", range(6), 1), "R2")).ok());
    EXPECT_TRUE(has_value(run(s, "R2", "get", timeout(bound())), range(6)));
  }
}

TEST(Pool, TasksBesideADyingWorkerCompleteOnce) {
  MPSPEC_CLAUSES("[pool.death.others_complete]");
  Scenario s;
  pool_setup(s);
  MPSPEC_START(s);
  POOL_READY(s);
  // Queued work on both sides of a crash: slow tasks, then a crash, then more slow tasks.
  Json before = Json::array(), after = Json::array();
  for (int i = 0; i < 10; ++i) before.push_back(Json::array({i, 0.02}));
  for (int i = 10; i < 20; ++i) after.push_back(Json::array({i, 0.02}));
  ASSERT_TRUE(run(s, "P", "starmap_async", with_slot(over("slow_identity", before, 1), "R")).ok());
  ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("crash", {9}), "R3")).ok());
  ASSERT_TRUE(run(s, "P", "starmap_async", with_slot(over("slow_identity", after, 1), "R2")).ok());
  EXPECT_TRUE(has_value(run(s, "R", "get", timeout(bound())), range(10)));
  EXPECT_TRUE(has_value(run(s, "R2", "get", timeout(bound())), range(20, 10)));
}

// Whether process `pid` descends from process `ancestor` (read from /proc): the suite kills
// only processes of the driver it started.
bool descends_from(std::int64_t pid, pid_t ancestor) {
  for (int depth = 0; depth < 64 && pid > 1; ++depth) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    std::int64_t ppid = -1;
    while (std::getline(status, line))
      if (line.rfind("PPid:", 0) == 0) ppid = std::strtoll(line.c_str() + 5, nullptr, 10);
    if (ppid == ancestor) return true;
    pid = ppid;
  }
  return false;
}

TEST(Pool, KillingIdleWorkersDoesNotWedgeThePool) {
  MPSPEC_CLAUSES("[pool.death.idle]");
  Scenario s;
  pool_setup(s);
  s.needs_method("Pool", "worker_pids");
  MPSPEC_START(s);
  POOL_READY(s);
  EXPECT_TRUE(has_value(run(s, "P", "map", over("square", range(4), 1)), squares(range(4))));
  const auto pids = worker_pids(s);
  ASSERT_EQ(pids.size(), 2u);
  const pid_t driver = Backend::get().driver().pid();
  for (std::int64_t pid : pids) {
    ASSERT_TRUE(descends_from(pid, driver)) << "worker pid " << pid << " is not the driver's";
    ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0) << "kill " << pid;
  }
  ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("identity", {5}), "R")).ok());
  const CallResult& g = run(s, "R", "get", timeout(bound()));
  ASSERT_TRUE(has_value(g, 5)) << "a task submitted after idle workers were killed";
  ASSERT_TRUE(run(s, "P", "map_async", with_slot(over("square", range(8), 1), "R2")).ok());
  EXPECT_TRUE(has_value(run(s, "R2", "get", timeout(bound())), squares(range(8))));
}

TEST(Pool, AFailingInitializerIsReportedNotRetried) {
  MPSPEC_CLAUSES("[pool.initializer.fails]");
  Scenario s;
  pool_setup(s, Json{{"processes", 2},
                     {"initializer", "raise"},
                     {"initargs", {"TypeError", "initializer failed"}}});
  s.needs_method("Pool", "worker_pids");
  MPSPEC_START(s);
  const CallResult& a = run(s, "P", "apply_async", with_slot(task("identity", {1}), "R"));
  SKIP_IF_UNSUPPORTED(a);
  ASSERT_TRUE(a.ok()) << a;
  const CallResult& g = run(s, "R", "get", timeout(bound()));
  ASSERT_TRUE(g.raised("TypeError"))
      << "a task of a pool whose initializer fails must fail with the initializer's error within "
      << bound() << " s; got " << g;
  // No endless restarts: the set of workers stops changing (a lower bound of `long_` between
  // two looks; CPython replaces its failing workers hundreds of times a second).
  const auto first = worker_pids(s);
  std::this_thread::sleep_for(std::chrono::duration<double>(long_()));
  const auto second = worker_pids(s);
  EXPECT_EQ(std::set<std::int64_t>(first.begin(), first.end()),
            std::set<std::int64_t>(second.begin(), second.end()))
      << "workers are still being restarted";
  ASSERT_TRUE(run(s, "P", "apply_async", with_slot(task("sleep", {small()}), "R2")).ok());
  EXPECT_TRUE(run(s, "R2", "get", timeout(bound())).raised("TypeError")) << "a later task";
}

}  // namespace
}  // namespace mpspec
