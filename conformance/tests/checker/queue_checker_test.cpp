// Self-tests of the queue checkers (no backend needed):
//
// - the FIFO model's step rules (spec/models/queue.hpp), one clause at a time;
// - the strict checker (linearizability, conformance/checker/queue_check.hpp) on hand-written
//   histories that must pass and must fail, with and without the test's maxsize;
// - the search hints against the plain search and a brute-force oracle on small random
//   histories, and the search's speed on simulated histories of a few hundred operations;
// - the core invariant checker on hand-written histories, one invariant at a time.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "check.hpp"
#include "history.hpp"
#include "models/queue.hpp"
#include "queue_check.hpp"
#include "scenario.hpp"  // MPSPEC_CLAUSES

namespace mpspec {
namespace {

using check::Verdict;
using Json = nlohmann::json;
using Q = model::Queue;
using SQ = model::SimpleQueue;
using model::Raised;
using model::Returned;
using model::Unknown;

// ------------------------------------------------------------------ history builder

// Builds one queue's history; times are in nanoseconds.
class Hist {
 public:
  explicit Hist(const std::string& type = "Queue") { h.objects["Q"] = type; }

  Hist& put(const std::string& actor, Json v, std::int64_t t0, std::int64_t t1,
            const std::string& method = "put", Json extra = Json::object()) {
    extra["obj"] = std::move(v);
    return add(actor, method, extra, OpStatus::kOk, nullptr, "", t0, t1);
  }
  Hist& put_full(const std::string& actor, Json v, std::int64_t t0, std::int64_t t1) {
    return add(actor, "put_nowait", Json{{"obj", std::move(v)}}, OpStatus::kError, nullptr, "Full",
               t0, t1);
  }
  Hist& put_killed(const std::string& actor, Json v, std::int64_t t0) {
    return add(actor, "put", Json{{"obj", std::move(v)}}, OpStatus::kInfo, nullptr, "", t0, {});
  }
  Hist& get(const std::string& actor, Json v, std::int64_t t0, std::int64_t t1,
            const std::string& method = "get", Json args = Json::object()) {
    return add(actor, method, std::move(args), OpStatus::kOk, std::move(v), "", t0, t1);
  }
  Hist& get_empty(const std::string& actor, std::int64_t t0, std::int64_t t1) {
    return add(actor, "get_nowait", Json::object(), OpStatus::kError, nullptr, "Empty", t0, t1);
  }
  Hist& get_killed(const std::string& actor, std::int64_t t0) {
    return add(actor, "get", Json::object(), OpStatus::kInfo, nullptr, "", t0, {});
  }
  Hist& call(const std::string& actor, const std::string& method, Json value, std::int64_t t0,
             std::int64_t t1) {
    return add(actor, method, Json::object(), OpStatus::kOk, std::move(value), "", t0, t1);
  }
  Hist& raises(const std::string& actor, const std::string& method, const std::string& kind,
               std::int64_t t0, std::int64_t t1, Json args = Json::object()) {
    return add(actor, method, std::move(args), OpStatus::kError, nullptr, kind, t0, t1);
  }

  Hist& add(const std::string& actor, const std::string& method, Json args, OpStatus status,
            Json value, const std::string& kind, std::int64_t t0, std::optional<std::int64_t> t1) {
    Operation o;
    o.id = static_cast<int>(h.ops.size());
    o.process = actor;
    o.object = "Q";
    o.method = method;
    o.args = std::move(args);
    o.status = status;
    if (status == OpStatus::kOk) o.value = std::move(value);
    if (status == OpStatus::kError) o.error_kind = kind;
    o.invoke_ns = t0;
    if (status != OpStatus::kInfo) o.return_ns = t1;
    h.ops.push_back(std::move(o));
    return *this;
  }

  History h;
};

check::ObjectResult strict(const Hist& x, std::optional<std::int64_t> maxsize = std::nullopt,
                           bool hints = true) {
  check::QueueLinearizabilityOptions options;
  options.maxsize = maxsize;
  options.hints = hints;
  return check::check_queue_linearizable(x.h, "Q", options);
}

// Both searches must agree; returns the hinted result.
check::ObjectResult strict_both(const Hist& x, std::optional<std::int64_t> maxsize = std::nullopt) {
  const auto hinted = strict(x, maxsize, true);
  const auto plain = strict(x, maxsize, false);
  EXPECT_EQ(hinted.verdict, plain.verdict) << hinted.explanation << "\n---\n" << plain.explanation;
  return hinted;
}

check::QueueReport core(const Hist& x, std::optional<std::int64_t> maxsize = std::nullopt,
                        bool drained = false, std::set<std::string> killed = {}) {
  check::QueueCheckOptions options;
  options.maxsize = maxsize;
  options.drained = drained;
  options.killed = std::move(killed);
  return check::check_queue_invariants(x.h, "Q", options);
}

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ----------------------------------------------------------------------- model rules

Q::Op put_op(const std::string& v, Q::Outcome outcome = Returned<Q::Value>{},
             Q::Method m = Q::Method::kPut) {
  Q::Op op;
  op.method = m;
  op.process = "a";
  op.obj = v;
  op.outcome = std::move(outcome);
  return op;
}
Q::Op get_op(Q::Outcome outcome, Q::Method m = Q::Method::kGet) {
  Q::Op op;
  op.method = m;
  op.process = "b";
  op.outcome = std::move(outcome);
  return op;
}
Q::Op query(Q::Method m, Q::Value v, const std::string& process = "b") {
  Q::Op op;
  op.method = m;
  op.process = process;
  op.outcome = Returned<Q::Value>{std::move(v)};
  return op;
}
Q::Outcome got(const std::string& v) { return Returned<Q::Value>{Q::Value{v}}; }
Q::Outcome none() { return Returned<Q::Value>{}; }
Q::Outcome raised(const std::string& kind) { return Raised{kind}; }

// The single successor of `s` under `op` (fails the test if there is not exactly one).
Q::State only(const std::vector<Q::State>& next) {
  EXPECT_EQ(next.size(), 1u);
  return next.empty() ? Q::State{} : next.front();
}

Q::State holding(std::vector<std::string> values, std::int64_t lo = 1,
                 std::int64_t hi = Q::kNoBound) {
  Q::State s;
  for (auto& v : values) s.items.push_back(Q::Item{std::move(v), false});
  s.lo = lo;
  s.hi = hi;
  return s;
}

TEST(QueueModel, PutAppendsAndGetTakesTheHead) {
  MPSPEC_CLAUSES(
      "[queue.put.returns] [queue.get.returns] [queue.order.fifo] [queue.linearizable] "
      "[queue.construct.default]");
  Q::State s = Q::init();
  EXPECT_EQ(Q::describe(s), "empty, maxsize >= 1");
  s = only(Q::step(s, put_op("1")));
  s = only(Q::step(s, put_op("2")));
  EXPECT_EQ(s.items.size(), 2u);
  EXPECT_EQ(s.lo, 2);  // two items held: maxsize is at least 2
  EXPECT_EQ(Q::step(s, get_op(got("2"))).size(), 0u) << "LIFO is illegal";
  s = only(Q::step(s, get_op(got("1"))));
  s = only(Q::step(s, get_op(got("2"))));
  EXPECT_TRUE(s.items.empty());
  EXPECT_EQ(Q::step(s, get_op(got("2"))).size(), 0u) << "nothing left to get";
  EXPECT_EQ(Q::step(holding({"1"}), put_op("1", Returned<Q::Value>{Q::Value{true}})).size(), 0u)
      << "put returns None";
}

TEST(QueueModel, FullOnlyWhenMaxsizeItemsAreHeld) {
  MPSPEC_CLAUSES(
      "[queue.put.nonblocking] [queue.put_nowait] [queue.put.timeout.expires] "
      "[queue.put.timeout.zero] [queue.put.timeout.negative] [queue.put.blocks] "
      "[queue.capacity.full_legal] [queue.capacity.bound] [queue.construct.maxsize]");
  const Q::State two = holding({"1", "2"}, 2, 2), one = holding({"1"}, 2, 2);
  Q::Op nowait = put_op("3", raised("Full"), Q::Method::kPutNowait);
  EXPECT_EQ(only(Q::step(two, nowait)), two);
  EXPECT_EQ(Q::step(one, nowait).size(), 0u);
  Q::Op timed = put_op("3", raised("Full"));
  timed.timeout = 0.5;
  EXPECT_EQ(only(Q::step(two, timed)), two);
  timed.timeout = -1;
  EXPECT_EQ(only(Q::step(two, timed)), two);
  Q::Op nonblocking = put_op("3", raised("Full"));
  nonblocking.block = false;
  EXPECT_EQ(only(Q::step(two, nonblocking)), two);
  // A blocking put without a timeout never gives up; a put never succeeds on a full queue.
  EXPECT_EQ(Q::step(two, put_op("3", raised("Full"))).size(), 0u);
  EXPECT_EQ(Q::step(two, put_op("3")).size(), 0u);
  // Unknown maxsize: Full at one item pins it to 1, after which nothing more fits.
  Q::State s = only(Q::step(holding({"1"}), nowait));
  EXPECT_EQ(s.lo, 1);
  EXPECT_EQ(s.hi, 1);
  EXPECT_EQ(Q::step(s, put_op("4")).size(), 0u);
  EXPECT_EQ(Q::step(Q::init(), nowait).size(), 0u) << "an empty queue is never full";
}

TEST(QueueModel, EmptyOnlyWhenNothingIsHeld) {
  MPSPEC_CLAUSES(
      "[queue.get.nonblocking] [queue.get_nowait] [queue.get.timeout.expires] "
      "[queue.get.timeout.zero] [queue.get.timeout.negative] [queue.get_nowait.exact] "
      "[queue.get.blocks]");
  Q::Op nowait = get_op(raised("Empty"), Q::Method::kGetNowait);
  EXPECT_EQ(only(Q::step(Q::init(), nowait)), Q::init());
  EXPECT_EQ(Q::step(holding({"1"}), nowait).size(), 0u);
  Q::Op timed = get_op(raised("Empty"));
  timed.timeout = 0.0;
  EXPECT_EQ(only(Q::step(Q::init(), timed)), Q::init());
  EXPECT_EQ(Q::step(holding({"1"}), timed).size(), 0u);
  EXPECT_EQ(Q::step(Q::init(), get_op(raised("Empty"))).size(), 0u) << "untimed get never gives up";
  EXPECT_EQ(Q::step(Q::init(), get_op(raised("ValueError"))).size(), 0u);
}

TEST(QueueModel, SizesAreExact) {
  MPSPEC_CLAUSES(
      "[queue.size.exact] [queue.qsize.quiescent] [queue.full.quiescent] [queue.empty.drained] "
      "[queue.qsize.unsupported]");
  const Q::State s = holding({"1", "2"});
  EXPECT_EQ(Q::step(s, query(Q::Method::kQsize, std::int64_t{2})).size(), 1u);
  EXPECT_EQ(Q::step(s, query(Q::Method::kQsize, std::int64_t{1})).size(), 0u);
  EXPECT_EQ(Q::step(s, query(Q::Method::kEmpty, false)).size(), 1u);
  EXPECT_EQ(Q::step(s, query(Q::Method::kEmpty, true)).size(), 0u);
  EXPECT_EQ(Q::step(Q::init(), query(Q::Method::kEmpty, true)).size(), 1u);
  // full() narrows the unknown maxsize: True pins it, False says it is larger.
  EXPECT_EQ(only(Q::step(s, query(Q::Method::kFull, true))).hi, 2);
  EXPECT_EQ(only(Q::step(s, query(Q::Method::kFull, false))).lo, 3);
  EXPECT_EQ(Q::step(holding({"1", "2"}, 2, 2), query(Q::Method::kFull, false)).size(), 0u);
  EXPECT_EQ(Q::step(holding({"1"}, 2, 2), query(Q::Method::kFull, true)).size(), 0u);
  // [queue.qsize.unsupported] (MAY) NotImplementedError changes nothing.
  Q::Op q = query(Q::Method::kQsize, std::int64_t{0});
  q.outcome = raised("NotImplementedError");
  EXPECT_EQ(only(Q::step(s, q)), s);
  EXPECT_EQ(Q::step(s, query(Q::Method::kQsize, true)).size(), 0u) << "qsize returns an int";
}

TEST(QueueModel, KilledPutMayOrMayNotTakeEffect) {
  MPSPEC_CLAUSES("[queue.kill.put] [simple_queue.kill.put] [queue.put.uncarriable.raises]");
  const auto next = Q::step(holding({"1"}), put_op("2", Unknown{}));
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0], holding({"1"}));
  EXPECT_EQ(next[1].items.size(), 2u);
  EXPECT_EQ(next[1].items.back().value, "2");
  // No room for any maxsize still possible: it cannot have taken effect.
  EXPECT_EQ(Q::step(holding({"1"}, 1, 1), put_op("2", Unknown{})).size(), 1u);
  Q::Op bad = put_op("{\"$uncarriable\":null}", Unknown{});
  bad.uncarriable = true;
  EXPECT_EQ(Q::step(Q::init(), bad).size(), 1u);
}

TEST(QueueModel, KilledGetTakesTheHeadOrNothing) {
  MPSPEC_CLAUSES("[queue.kill.get] [simple_queue.kill.get]");
  const auto next = Q::step(holding({"1", "2"}), get_op(Unknown{}));
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[1], holding({"2"}));
  EXPECT_EQ(Q::step(Q::init(), get_op(Unknown{})).size(), 1u) << "waited on an empty queue";
  // Hint: an item some `ok` get returns is not taken by a killed one.
  Q::State claimed = holding({"1"});
  claimed.items[0].claimed = true;
  EXPECT_EQ(Q::step(claimed, get_op(Unknown{})).size(), 1u);
}

TEST(QueueModel, CloseIsProcessLocal) {
  MPSPEC_CLAUSES(
      "[queue.close.put] [queue.close.get] [queue.close.process_local] [queue.close.idempotent] "
      "[queue.join_thread.unclosed] [queue.join_thread.closed] [queue.cancel_join_thread] "
      "[queue.close.queries] [simple_queue.close.ops] [simple_queue.close.idempotent]");
  Q::Op close = query(Q::Method::kClose, std::monostate{}, "a");
  Q::Op join = query(Q::Method::kJoinThread, std::monostate{}, "a");
  Q::Op join_early = join;
  join_early.outcome = raised("AssertionError");
  EXPECT_EQ(Q::step(Q::init(), join).size(), 0u);
  EXPECT_EQ(Q::step(Q::init(), join_early).size(), 1u);
  const Q::State closed = only(Q::step(holding({"1"}), close));
  EXPECT_EQ(closed.closed, std::vector<std::string>{"a"});
  EXPECT_EQ(only(Q::step(closed, close)), closed) << "idempotent";
  EXPECT_EQ(Q::step(closed, join).size(), 1u);
  EXPECT_EQ(Q::step(closed, join_early).size(), 0u);
  EXPECT_EQ(Q::step(closed, query(Q::Method::kCancelJoinThread, std::monostate{}, "a")).size(), 1u);
  // a's put and get raise ValueError and change nothing; b goes on.
  EXPECT_EQ(only(Q::step(closed, put_op("2", raised("ValueError")))), closed);
  EXPECT_EQ(Q::step(closed, put_op("2")).size(), 0u);
  Q::Op a_get = get_op(raised("ValueError"));
  a_get.process = "a";
  EXPECT_EQ(only(Q::step(closed, a_get)), closed);
  a_get.outcome = got("1");
  EXPECT_EQ(Q::step(closed, a_get).size(), 0u);
  EXPECT_EQ(Q::step(closed, get_op(got("1"))).size(), 1u);
  Q::Op a_empty = query(Q::Method::kEmpty, false, "a");
  EXPECT_EQ(Q::step(closed, a_empty).size(), 1u) << "may answer";
  a_empty.outcome = raised("OSError");
  EXPECT_EQ(Q::step(closed, a_empty).size(), 1u) << "or raise OSError";
  EXPECT_EQ(Q::step(holding({"1"}), a_empty).size(), 0u) << "but not before close()";
  // SimpleQueue: OSError from put, get and empty after close().
  SQ::Op sclose;
  sclose.method = SQ::Method::kClose;
  sclose.process = "a";
  sclose.outcome = Returned<SQ::Value>{};
  const SQ::State sclosed = SQ::step(SQ::init(), sclose).at(0);
  SQ::Op sput;
  sput.method = SQ::Method::kPut;
  sput.process = "a";
  sput.obj = "1";
  sput.outcome = Raised{"OSError"};
  EXPECT_EQ(SQ::step(sclosed, sput).size(), 1u);
  sput.outcome = Raised{"ValueError"};
  EXPECT_EQ(SQ::step(sclosed, sput).size(), 0u);
  SQ::Op sempty;
  sempty.method = SQ::Method::kEmpty;
  sempty.process = "a";
  sempty.outcome = Returned<SQ::Value>{SQ::Value{true}};
  EXPECT_EQ(SQ::step(sclosed, sempty).size(), 0u);
}

TEST(QueueModel, UncarriablePutRaisesAndChangesNothing) {
  MPSPEC_CLAUSES("[queue.put.uncarriable.raises] [simple_queue.put.uncarriable]");
  Q::Op bad = put_op("{\"$uncarriable\":null}", raised("TypeError"));
  bad.uncarriable = true;
  EXPECT_EQ(only(Q::step(holding({"1"}), bad)), holding({"1"}));
  bad.outcome = none();
  EXPECT_EQ(Q::step(holding({"1"}), bad).size(), 0u) << "strict: it never returns";
}

TEST(QueueModel, DeclaredBound) {
  MPSPEC_CLAUSES(
      "[queue.construct.maxsize] [queue.construct.maxsize.nonpositive] "
      "[queue.construct.unbounded]");
  Q::Op bound;
  bound.method = Q::Method::kBound;
  bound.maxsize = 3;
  bound.outcome = none();
  const Q::State three = only(Q::step(Q::init(), bound));
  EXPECT_EQ(three.lo, 3);
  EXPECT_EQ(three.hi, 3);
  EXPECT_EQ(Q::describe(three), "empty, maxsize 3");
  bound.maxsize = 0;
  EXPECT_EQ(only(Q::step(Q::init(), bound)).lo, 32767);
  bound.maxsize = -5;
  EXPECT_EQ(only(Q::step(Q::init(), bound)).lo, 32767);
  EXPECT_EQ(Q::step(holding({"1"}, 1, 1), bound).size(), 0u) << "already known to be 1";
}

TEST(QueueModel, SimpleQueueHasNoBound) {
  MPSPEC_CLAUSES(
      "[simple_queue.construct] [simple_queue.put.returns] [simple_queue.get.returns] "
      "[simple_queue.get.blocks] [simple_queue.get.eof] [simple_queue.linearizable]");
  SQ::Op put;
  put.method = SQ::Method::kPut;
  put.process = "a";
  put.obj = "1";
  put.outcome = Returned<SQ::Value>{};
  SQ::State s = SQ::init();
  EXPECT_EQ(SQ::describe(s), "empty");
  for (int i = 0; i < 100; ++i) s = SQ::step(s, put).at(0);
  EXPECT_EQ(s.items.size(), 100u);
  SQ::Op get;
  get.method = SQ::Method::kGet;
  get.process = "b";
  get.outcome = Raised{"Empty"};
  EXPECT_EQ(SQ::step(SQ::init(), get).size(), 0u) << "a SimpleQueue's get never gives up";
  get.outcome = Raised{"EOFError"};
  EXPECT_EQ(SQ::step(SQ::init(), get).size(), 1u) << "(MAY) EOFError on an empty queue";
  EXPECT_EQ(SQ::step(s, get).size(), 0u);
}

TEST(QueueModel, HintsOrderClaimedPuts) {
  MPSPEC_CLAUSES("[queue.order.fifo] [queue.linearizable]");
  // Value "b" has rank 1 and must follow rank 0 ("a").
  Q::Op b = put_op("\"b\"");
  b.rank = 1;
  b.after = 1;
  EXPECT_EQ(Q::step(Q::init(), b).size(), 0u);
  Q::Op a = put_op("\"a\"");
  a.rank = 0;
  const Q::State s = only(Q::step(Q::init(), a));
  EXPECT_EQ(s.put_low, 1u);
  EXPECT_EQ(only(Q::step(s, b)).put_low, 2u);
}

TEST(QueueModel, Describe) {
  MPSPEC_CLAUSES("[queue.linearizable]");
  Q::Op put = put_op("[1,\"x\"]", none(), Q::Method::kPut);
  put.block = false;
  put.timeout = 0.5;
  EXPECT_EQ(Q::describe(put), "put([1,\"x\"], block=False, timeout=0.5) -> None");
  EXPECT_EQ(Q::describe(get_op(got("7"), Q::Method::kGetNowait)), "get_nowait() -> 7");
  EXPECT_EQ(Q::describe(get_op(Unknown{})), "get() -> ? (outcome unknown)");
  EXPECT_EQ(Q::describe(put_op("1", raised("Full"), Q::Method::kPutNowait)),
            "put_nowait(1) raised Full");
  EXPECT_EQ(Q::describe(query(Q::Method::kQsize, std::int64_t{3})), "qsize() -> 3");
  EXPECT_EQ(Q::describe(holding({"1", "2"}, 2, 4)),
            "holding 2 items [1, 2] (head first), maxsize >= 2 and <= 4");
  EXPECT_NE(Q::hash(holding({"1", "2"})), Q::hash(holding({"2", "1"})));
  EXPECT_EQ(Q::hash(holding({"1", "2"})), Q::hash(holding({"1", "2"})));
}

// ------------------------------------------------------------------ strict checker

TEST(QueueStrict, FifoHistoriesPass) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.order.fifo] [queue.put.visible]");
  Hist x;
  x.put("a", 1, 0, 10).put("a", 2, 20, 30).get("b", 1, 40, 50).get("b", 2, 60, 70);
  EXPECT_EQ(strict_both(x).verdict, Verdict::kLinearizable);
  // Concurrent puts may be ordered either way.
  Hist y;
  y.put("a", 1, 0, 100).put("c", 2, 10, 90).get("b", 2, 200, 210).get("b", 1, 220, 230);
  EXPECT_EQ(strict_both(y).verdict, Verdict::kLinearizable);
  // Through check_history, as Scenario::check() does.
  const auto r = check::check_history(y.h);
  EXPECT_EQ(r.verdict, Verdict::kLinearizable) << r.summary();
}

TEST(QueueStrict, LifoHistoryFails) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.order.fifo]");
  Hist x;
  x.put("a", 1, 0, 10).put("a", 2, 20, 30).get("b", 2, 40, 50).get("b", 1, 60, 70);
  const auto r = strict_both(x);
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.failing_op, 2);
  // Explained in the model's terms (the plain search's account).
  EXPECT_TRUE(mentions(r.explanation, "get() -> 2")) << r.explanation;
  EXPECT_TRUE(mentions(r.explanation, "holding 2 items [1, 2]")) << r.explanation;
  EXPECT_EQ(check::check_history(x.h).verdict, Verdict::kNotLinearizable);
}

TEST(QueueStrict, FifoAcrossProducers) {
  MPSPEC_CLAUSES("[queue.order.fifo] [queue.linearizable]");
  // b's put returned before c's was invoked: b's item comes out first, whoever put it.
  Hist x;
  x.put("b", "x", 0, 10).put("c", "y", 20, 30).get("d", "y", 40, 50).get("d", "x", 60, 70);
  EXPECT_EQ(strict_both(x).verdict, Verdict::kNotLinearizable);
}

TEST(QueueStrict, DuplicatedItemFails) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.no_duplication] [queue.kill.committed]");
  Hist x;
  x.put("a", 1, 0, 10).get("b", 1, 20, 30).get("c", 1, 40, 50);
  EXPECT_EQ(strict_both(x).verdict, Verdict::kNotLinearizable);
  Hist y;  // concurrent gets: still only one copy
  y.put("a", 1, 0, 10).get("b", 1, 20, 60).get("c", 1, 30, 50);
  EXPECT_EQ(strict_both(y).verdict, Verdict::kNotLinearizable);
}

TEST(QueueStrict, ItemGotBeforeItsPutFails) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.no_invention]");
  Hist x;
  x.get("b", 1, 0, 10).put("a", 1, 20, 30);
  EXPECT_EQ(strict_both(x).verdict, Verdict::kNotLinearizable);
  Hist y;  // overlapping: the put may take effect first
  y.get("b", 1, 0, 25).put("a", 1, 20, 30);
  EXPECT_EQ(strict_both(y).verdict, Verdict::kLinearizable);
  Hist z;  // a value never put
  z.put("a", 1, 0, 10).get("b", 2, 20, 30);
  EXPECT_EQ(strict_both(z).verdict, Verdict::kNotLinearizable);
}

TEST(QueueStrict, FullWhenNotFullFails) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.capacity.full_legal] [queue.put.nonblocking]");
  Hist x;  // maxsize 2, one item held, Full
  x.put("a", 1, 0, 10).put_full("a", 2, 20, 30);
  EXPECT_EQ(strict_both(x, 2).verdict, Verdict::kNotLinearizable);
  // Without the bound the model infers maxsize 1, which explains it.
  EXPECT_EQ(strict_both(x).verdict, Verdict::kLinearizable);
  // ... unless another outcome says the queue had room for more.
  Hist y = x;
  y.put("a", 3, 40, 50).put("a", 4, 60, 70);  // 3 held after a Full at 1
  EXPECT_EQ(strict_both(y).verdict, Verdict::kNotLinearizable);
  Hist z;  // a Full while two are held: legal at maxsize 2
  z.put("a", 1, 0, 10).put("a", 2, 20, 30).put_full("a", 3, 40, 50).get("b", 1, 60, 70);
  EXPECT_EQ(strict_both(z, 2).verdict, Verdict::kLinearizable);
  EXPECT_EQ(strict_both(z, 3).verdict, Verdict::kNotLinearizable);
  // An unbounded queue raises Full only beyond 32767 items.
  EXPECT_EQ(strict_both(z, 0).verdict, Verdict::kNotLinearizable);
}

TEST(QueueStrict, OverfilledQueueFailsWithTheDeclaredBound) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.capacity.bound] [queue.construct.maxsize]");
  Hist x;
  x.put("a", 1, 0, 10).put("a", 2, 20, 30).put("a", 3, 40, 50);
  EXPECT_EQ(strict_both(x, 2).verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(strict_both(x, 3).verdict, Verdict::kLinearizable);
  EXPECT_EQ(strict_both(x).verdict, Verdict::kLinearizable);
  // A get overlapping the third put frees a slot first.
  Hist y = x;
  y.get("b", 1, 35, 45);
  EXPECT_EQ(strict_both(y, 2).verdict, Verdict::kLinearizable);
}

TEST(QueueStrict, EmptyWhenAnItemWasSurelyHeldFails) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.get_nowait.exact] [queue.put.visible]");
  Hist x;
  x.put("a", 1, 0, 10).get_empty("b", 20, 30).get("b", 1, 40, 50);
  EXPECT_EQ(strict_both(x).verdict, Verdict::kNotLinearizable);
  // CPython's lag (bug 11): the same with empty() -> True right after put.
  Hist e;
  e.put("a", 1, 0, 10).call("b", "empty", true, 20, 30).get("b", 1, 40, 50);
  EXPECT_EQ(strict_both(e).verdict, Verdict::kNotLinearizable);
  // Empty while the put is still running is fine.
  Hist y;
  y.put("a", 1, 0, 50).get_empty("b", 20, 30).get("b", 1, 60, 70);
  EXPECT_EQ(strict_both(y).verdict, Verdict::kLinearizable);
  // Empty after the item was taken is fine.
  Hist z;
  z.put("a", 1, 0, 10).get("c", 1, 15, 25).get_empty("b", 20, 30);
  EXPECT_EQ(strict_both(z).verdict, Verdict::kLinearizable);
}

TEST(QueueStrict, SizesMustMatchAnInstant) {
  MPSPEC_CLAUSES("[queue.size.exact] [queue.linearizable]");
  Hist x;
  x.put("a", 1, 0, 10).put("a", 2, 20, 30).call("b", "qsize", 2, 40, 50).get("b", 1, 60, 70);
  x.call("b", "qsize", 1, 80, 90).call("b", "full", false, 100, 110);
  EXPECT_EQ(strict_both(x, 2).verdict, Verdict::kLinearizable);
  Hist y = x;
  y.call("b", "qsize", 2, 120, 130);
  EXPECT_EQ(strict_both(y, 2).verdict, Verdict::kNotLinearizable);
  Hist z;  // full() True at one item when maxsize is 2
  z.put("a", 1, 0, 10).call("b", "full", true, 20, 30);
  EXPECT_EQ(strict_both(z, 2).verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(strict_both(z, 1).verdict, Verdict::kLinearizable);
}

TEST(QueueStrict, KilledPutMayOrMayNotHaveHappened) {
  MPSPEC_CLAUSES("[queue.kill.put] [queue.kill.committed] [queue.linearizable]");
  Hist took;  // its item arrives
  took.put_killed("a", 1, 0).get("b", 1, 20, 30).get_empty("b", 40, 50);
  EXPECT_EQ(strict_both(took).verdict, Verdict::kLinearizable);
  Hist not_taken;  // it never arrives
  not_taken.put_killed("a", 1, 0).get_empty("b", 20, 30).put("c", 2, 40, 50).get("b", 2, 60, 70);
  EXPECT_EQ(strict_both(not_taken).verdict, Verdict::kLinearizable);
  Hist late;  // it took effect late, after an Empty
  late.put_killed("a", 1, 0).get_empty("b", 20, 30).get("b", 1, 40, 50);
  EXPECT_EQ(strict_both(late).verdict, Verdict::kLinearizable);
  Hist counted;  // qsize saw it, then it stayed
  counted.put_killed("a", 1, 0).call("b", "qsize", 1, 20, 30).call("b", "empty", false, 40, 50);
  EXPECT_EQ(strict_both(counted).verdict, Verdict::kLinearizable);
  Hist half;  // seen by qsize, then gone without a get: no partial effect
  half.put_killed("a", 1, 0).call("b", "qsize", 1, 20, 30).get_empty("b", 40, 50);
  EXPECT_EQ(strict_both(half).verdict, Verdict::kNotLinearizable);
  Hist twice;  // got twice
  twice.put_killed("a", 1, 0).get("b", 1, 20, 30).get("c", 1, 40, 50);
  EXPECT_EQ(strict_both(twice).verdict, Verdict::kNotLinearizable);
  Hist before;  // got before the killed put was invoked
  before.get("b", 1, 0, 10).put_killed("a", 1, 20);
  EXPECT_EQ(strict_both(before).verdict, Verdict::kNotLinearizable);
  Hist blocked;  // a killed put on a full queue took a slot that a later Full shows is not free
  blocked.put("a", 1, 0, 10).put_killed("c", 2, 20).put_full("a", 3, 40, 50).get("b", 1, 60, 70);
  blocked.get("b", 2, 80, 90);
  EXPECT_EQ(strict_both(blocked, 2).verdict, Verdict::kLinearizable);
  EXPECT_EQ(strict_both(blocked, 3).verdict, Verdict::kNotLinearizable);
}

TEST(QueueStrict, KilledGetTakesTheHeadOrNothing) {
  MPSPEC_CLAUSES("[queue.kill.get] [queue.kill.committed] [queue.linearizable]");
  Hist took;  // the killed get took 1
  took.put("a", 1, 0, 10).put("a", 2, 20, 30).get_killed("k", 40).get("b", 2, 60, 70);
  took.get_empty("b", 80, 90);
  EXPECT_EQ(strict_both(took).verdict, Verdict::kLinearizable);
  Hist nothing;  // it took nothing
  nothing.put("a", 1, 0, 10).get_killed("k", 20).get("b", 1, 40, 50).get_empty("b", 60, 70);
  EXPECT_EQ(strict_both(nothing).verdict, Verdict::kLinearizable);
  Hist not_head;  // it cannot have taken 2 while 1 was ahead
  not_head.put("a", 1, 0, 10).put("a", 2, 20, 30).get_killed("k", 40).get("b", 2, 60, 70);
  not_head.get("b", 1, 80, 90);
  EXPECT_EQ(strict_both(not_head).verdict, Verdict::kNotLinearizable);
  Hist two;  // one killed get takes one item, not two
  two.put("a", 1, 0, 10).put("a", 2, 20, 30).get_killed("k", 40).get_empty("b", 60, 70);
  EXPECT_EQ(strict_both(two).verdict, Verdict::kNotLinearizable);
  Hist early;  // killed while waiting on an empty queue that stayed empty: it took nothing
  early.get_killed("k", 0).get_empty("b", 10, 20).put("a", 1, 30, 40).get("b", 1, 50, 60);
  EXPECT_EQ(strict_both(early).verdict, Verdict::kLinearizable);
}

TEST(QueueStrict, LostItemFails) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.kill.committed] [queue.no_loss]");
  Hist x;  // 1 committed, then the queue drains to Empty without it
  x.put("a", 1, 0, 10).put("a", 2, 20, 30).get("b", 2, 40, 50).get_empty("b", 60, 70);
  EXPECT_EQ(strict_both(x).verdict, Verdict::kNotLinearizable);
  Hist y;
  y.put("a", 1, 0, 10).call("b", "qsize", 0, 20, 30);
  EXPECT_EQ(strict_both(y).verdict, Verdict::kNotLinearizable);
}

TEST(QueueStrict, ClosedProcessesRaise) {
  MPSPEC_CLAUSES("[queue.close.put] [queue.close.get] [queue.close.process_local]");
  Hist x;
  x.put("a", 1, 0, 10).call("a", "close", nullptr, 20, 30);
  x.raises("a", "put", "ValueError", 40, 50, Json{{"obj", 2}});
  x.raises("a", "get", "ValueError", 60, 70).get("b", 1, 80, 90);
  EXPECT_EQ(strict_both(x).verdict, Verdict::kLinearizable);
  Hist y;  // ValueError from a process that did not close
  y.put("a", 1, 0, 10).call("a", "close", nullptr, 20, 30);
  y.raises("b", "get", "ValueError", 40, 50);
  EXPECT_EQ(strict_both(y).verdict, Verdict::kNotLinearizable);
}

TEST(QueueStrict, SimpleQueue) {
  MPSPEC_CLAUSES(
      "[simple_queue.linearizable] [simple_queue.put.visible] [simple_queue.kill.get] "
      "[simple_queue.kill.put]");
  Hist x("SimpleQueue");
  x.put("a", 1, 0, 10).call("b", "empty", false, 20, 30).get("b", 1, 40, 50);
  x.call("b", "empty", true, 60, 70);
  EXPECT_EQ(strict_both(x).verdict, Verdict::kLinearizable);
  EXPECT_EQ(check::check_history(x.h).verdict, Verdict::kLinearizable);
  Hist lifo("SimpleQueue");
  lifo.put("a", 1, 0, 10).put("a", 2, 20, 30).get("b", 2, 40, 50).get("b", 1, 60, 70);
  EXPECT_EQ(strict_both(lifo).verdict, Verdict::kNotLinearizable);
  Hist killed("SimpleQueue");
  killed.put_killed("a", 1, 0).put("c", 2, 10, 20).get_killed("k", 30).get("b", 2, 40, 50);
  EXPECT_EQ(strict_both(killed).verdict, Verdict::kLinearizable);
  Hist nowait("SimpleQueue");  // SimpleQueue has no get_nowait
  nowait.get_empty("b", 0, 10);
  EXPECT_THROW(strict(nowait), std::invalid_argument);
}

TEST(QueueStrict, MalformedCallsAreRejected) {
  MPSPEC_CLAUSES("[queue.linearizable]");
  Hist x;
  x.call("a", "task_done", nullptr, 0, 10);
  EXPECT_THROW(strict(x), std::invalid_argument);
  Hist y;
  y.add("a", "put", Json::object(), OpStatus::kOk, nullptr, "", 0, 10);  // no obj
  EXPECT_THROW(strict(y), std::invalid_argument);
  Hist z;
  z.put("a", 1, 0, 10, "put", Json{{"block", "yes"}});
  EXPECT_THROW(strict(z), std::invalid_argument);
  // A result outside the method's domain is the backend's fault: not linearizable.
  Hist w;
  w.call("a", "qsize", "three", 0, 10);
  EXPECT_EQ(strict(w).verdict, Verdict::kNotLinearizable);
  EXPECT_THROW(check::check_queue_linearizable(x.h, "nope"), std::invalid_argument);
}

// ------------------------------------------------- simulated histories and the oracle

// A real FIFO queue run by producers and consumers whose calls overlap: each call takes effect
// at a point inside its interval (so the history is linearizable), then is optionally mutated.
struct SimOptions {
  int producers = 3, consumers = 2, ops_per_actor = 40;
  std::int64_t maxsize = 0;  // 0: unbounded
  double nowait = 0.3;       // share of put_nowait / get_nowait
  double queries = 0.1;      // share of qsize / empty / full
  double kill = 0.0;         // chance that an actor is killed at a call
  std::int64_t latency = 1000, gap = 300;
  bool drain = true;  // a final sequential drain until Empty
};

History simulate(const SimOptions& o, std::mt19937_64& rng) {
  auto uniform = [&rng](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  auto chance = [&rng](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  History h;
  h.objects["Q"] = "Queue";
  std::deque<Json> queue;
  struct Actor {
    std::string name;
    bool producer;
    int done = 0, seq = 0;
    std::int64_t free = 0;
    bool killed = false;
  };
  std::vector<Actor> actors;
  for (int i = 0; i < o.producers; ++i) actors.push_back({"p" + std::to_string(i), true});
  for (int i = 0; i < o.consumers; ++i) actors.push_back({"c" + std::to_string(i), false});
  struct Pending {
    std::int64_t lin;
    int actor;
    Operation op;
    bool operator>(const Pending& other) const { return lin > other.lin; }
  };
  std::priority_queue<Pending, std::vector<Pending>, std::greater<>> pending;
  int id = 0;
  auto plan = [&](int a) {
    Actor& act = actors[a];
    if (act.killed || act.done >= o.ops_per_actor) return;
    Operation op;
    op.process = act.name;
    op.object = "Q";
    op.invoke_ns = act.free;
    if (chance(o.queries)) {
      const int k = static_cast<int>(uniform(0, 2));
      op.method = k == 0 ? "qsize" : k == 1 ? "empty" : "full";
    } else if (act.producer) {
      op.method = chance(o.nowait) ? "put_nowait" : "put";
      op.args = Json{{"obj", Json::array({act.name, act.seq++})}};
    } else {
      op.method = chance(o.nowait) ? "get_nowait" : "get";
    }
    pending.push(Pending{op.invoke_ns + uniform(0, o.latency), a, std::move(op)});
  };
  for (std::size_t a = 0; a < actors.size(); ++a) {
    actors[a].free = uniform(0, o.gap);
    plan(static_cast<int>(a));
  }
  const auto full = [&] {
    return o.maxsize > 0 && static_cast<std::int64_t>(queue.size()) >= o.maxsize;
  };
  while (!pending.empty()) {
    Pending p = pending.top();
    pending.pop();
    Actor& act = actors[p.actor];
    Operation& op = p.op;
    const bool kill = chance(o.kill);
    const bool blocking = op.method == "put" || op.method == "get";
    // A blocking call on a full or empty queue waits: try again later, unless nobody can
    // ever wake it (then it is torn down).
    const bool waits = (op.method == "put" && full()) || (op.method == "get" && queue.empty());
    if (waits && !kill) {
      // Someone of the other role may still change the queue: wait; else it is torn down.
      bool others = false;
      for (const Actor& other : actors)
        if (!other.killed && other.done < o.ops_per_actor && other.producer != act.producer)
          others = true;
      if (others) {
        p.lin += uniform(1, o.latency);
        pending.push(std::move(p));
        continue;
      }
      op.status = OpStatus::kInfo;
      op.id = id++;
      h.ops.push_back(std::move(op));
      act.killed = true;
      continue;
    }
    op.id = id++;
    const bool effect = !kill || chance(0.5);
    if (op.method == "put" || op.method == "put_nowait") {
      if (full() && !blocking) {
        op.status = OpStatus::kError;
        op.error_kind = "Full";
      } else if (full()) {
        op.status = OpStatus::kInfo;  // killed while waiting
      } else {
        if (effect) queue.push_back(op.args["obj"]);
        op.status = OpStatus::kOk;
        op.value = nullptr;
      }
    } else if (op.method == "get" || op.method == "get_nowait") {
      if (queue.empty() && !blocking) {
        op.status = OpStatus::kError;
        op.error_kind = "Empty";
      } else if (queue.empty()) {
        op.status = OpStatus::kInfo;
      } else {
        op.status = OpStatus::kOk;
        op.value = queue.front();
        if (effect) queue.pop_front();
      }
    } else {
      op.status = OpStatus::kOk;
      op.value = op.method == "qsize"   ? Json(static_cast<std::int64_t>(queue.size()))
                 : op.method == "empty" ? Json(queue.empty())
                                        : Json(full());
    }
    if (kill) {
      // Killed: the outcome is unknown; with `effect` false nothing happened.
      op.status = OpStatus::kInfo;
      op.value = nullptr;
      op.error_kind.clear();
      act.killed = true;
    } else {
      op.return_ns = p.lin + uniform(0, o.latency);
      act.free = *op.return_ns + uniform(0, o.gap);
      ++act.done;
    }
    h.ops.push_back(std::move(op));
    plan(p.actor);
  }
  if (o.drain) {
    std::int64_t t = 0;
    for (const Operation& op : h.ops) t = std::max(t, op.return_ns.value_or(op.invoke_ns));
    for (;;) {
      Operation op;
      op.id = id++;
      op.process = "drain";
      op.object = "Q";
      op.method = "get_nowait";
      op.invoke_ns = t + 10;
      op.return_ns = t + 20;
      t += 20;
      if (queue.empty()) {
        op.status = OpStatus::kError;
        op.error_kind = "Empty";
        h.ops.push_back(std::move(op));
        break;
      }
      op.status = OpStatus::kOk;
      op.value = queue.front();
      queue.pop_front();
      h.ops.push_back(std::move(op));
    }
  }
  return h;
}

// The plain model by brute force: every order of the ops that respects real time, each `info`
// op taking effect or not.
bool oracle(const History& h, std::optional<std::int64_t> maxsize) {
  std::vector<Q::Op> ops;
  std::vector<const Operation*> src;
  for (const Operation& o : h.ops) {
    // Translate through the checker on a one-op history to get exactly its Op.
    Q::Op op;
    if (o.method == "put" || o.method == "put_nowait") {
      op.method = o.method == "put" ? Q::Method::kPut : Q::Method::kPutNowait;
      op.obj = o.args["obj"].dump();
    } else if (o.method == "get" || o.method == "get_nowait") {
      op.method = o.method == "get" ? Q::Method::kGet : Q::Method::kGetNowait;
    } else {
      op.method = o.method == "qsize"   ? Q::Method::kQsize
                  : o.method == "empty" ? Q::Method::kEmpty
                                        : Q::Method::kFull;
    }
    op.process = o.process;
    if (o.status == OpStatus::kInfo) {
      op.outcome = Unknown{};
    } else if (o.status == OpStatus::kError) {
      op.outcome = Raised{o.error_kind};
    } else if (op.method == Q::Method::kGet || op.method == Q::Method::kGetNowait) {
      op.outcome = Returned<Q::Value>{Q::Value{o.value.dump()}};
    } else if (o.value.is_boolean()) {
      op.outcome = Returned<Q::Value>{Q::Value{o.value.get<bool>()}};
    } else if (o.value.is_number_integer()) {
      op.outcome = Returned<Q::Value>{Q::Value{o.value.get<std::int64_t>()}};
    } else {
      op.outcome = Returned<Q::Value>{};
    }
    ops.push_back(op);
    src.push_back(&o);
  }
  Q::State init = Q::init();
  if (maxsize) {
    Q::Op bound;
    bound.method = Q::Method::kBound;
    bound.maxsize = *maxsize;
    bound.outcome = Returned<Q::Value>{};
    init = Q::step(init, bound).at(0);
  }
  const std::size_t n = ops.size();
  std::vector<bool> used(n, false);
  std::function<bool(const Q::State&, std::size_t)> dfs = [&](const Q::State& s,
                                                              std::size_t placed) -> bool {
    bool all_done = true;
    for (std::size_t i = 0; i < n; ++i)
      if (!used[i] && src[i]->status != OpStatus::kInfo) all_done = false;
    if (all_done) return true;
    (void)placed;
    for (std::size_t i = 0; i < n; ++i) {
      if (used[i]) continue;
      // i may go next only if no other unplaced completed op returned before i was invoked.
      bool minimal = true;
      for (std::size_t j = 0; j < n && minimal; ++j)
        if (j != i && !used[j] && src[j]->return_ns && *src[j]->return_ns < src[i]->invoke_ns)
          minimal = false;
      if (!minimal) continue;
      used[i] = true;
      for (const Q::State& t : Q::step(s, ops[i]))
        if (dfs(t, placed + 1)) {
          used[i] = false;
          return true;
        }
      used[i] = false;
    }
    return false;
  };
  return dfs(init, 0);
}

void mutate(History& h, std::mt19937_64& rng) {
  auto pick = [&rng](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  Operation& o = h.ops[pick(h.ops.size())];
  switch (rng() % 5) {
    case 0: {  // another get's value
      std::vector<Json> values;
      for (const Operation& x : h.ops)
        if (x.method.rfind("put", 0) == 0) values.push_back(x.args["obj"]);
      if (!values.empty() && o.method.rfind("get", 0) == 0) {
        o.status = OpStatus::kOk;
        o.value = values[pick(values.size())];
        o.error_kind.clear();
        if (!o.return_ns) o.return_ns = o.invoke_ns + 100;
      }
      break;
    }
    case 1:  // a definite outcome becomes unknown
      o.status = OpStatus::kInfo;
      o.return_ns.reset();
      break;
    case 2:  // a successful call gives up
      if (o.method.rfind("put", 0) == 0 && o.status == OpStatus::kOk) {
        o.method = "put_nowait";
        o.status = OpStatus::kError;
        o.error_kind = "Full";
      } else if (o.method.rfind("get", 0) == 0 && o.status == OpStatus::kOk) {
        o.method = "get_nowait";
        o.status = OpStatus::kError;
        o.error_kind = "Empty";
      }
      break;
    case 3:  // a query's answer changes
      if (o.method == "qsize" && o.status == OpStatus::kOk) o.value = o.value.get<int>() + 1;
      if ((o.method == "empty" || o.method == "full") && o.status == OpStatus::kOk)
        o.value = !o.value.get<bool>();
      break;
    default:  // a give-up succeeds
      if (o.method == "get_nowait" && o.status == OpStatus::kError) {
        o.status = OpStatus::kOk;
        o.value = Json::array({"p0", 0});
      }
      break;
  }
}

TEST(QueueStrict, HintsAgreeWithPlainSearchAndBruteForce) {
  MPSPEC_CLAUSES(
      "[queue.linearizable] [queue.kill.put] [queue.kill.get] [queue.get_nowait.exact] "
      "[queue.capacity.full_legal] [queue.size.exact]");
  std::mt19937_64 rng(6);
  int linearizable = 0, violations = 0;
  for (int round = 0; round < 2000; ++round) {
    SimOptions o;
    o.producers = 1 + static_cast<int>(rng() % 2);
    o.consumers = 1 + static_cast<int>(rng() % 2);
    o.ops_per_actor = 1 + static_cast<int>(rng() % 3);
    o.maxsize = static_cast<std::int64_t>(rng() % 3);
    o.kill = round % 3 == 0 ? 0.2 : 0.0;
    o.queries = 0.2;
    o.drain = rng() % 2 == 0;
    History h = simulate(o, rng);
    if (h.ops.size() > 8) continue;  // the oracle is exponential
    if (rng() % 3 != 0) mutate(h, rng);
    Hist x;
    x.h = h;
    const std::optional<std::int64_t> maxsize =
        rng() % 3 == 0 ? std::nullopt : std::optional<std::int64_t>(o.maxsize);
    const bool expected = oracle(h, maxsize);
    const auto hinted = strict(x, maxsize, true);
    const auto plain = strict(x, maxsize, false);
    ASSERT_EQ(hinted.verdict == Verdict::kLinearizable, expected) << "round " << round << "\n"
                                                                  << h.to_json().dump(1) << "\n"
                                                                  << hinted.explanation;
    ASSERT_EQ(plain.verdict == Verdict::kLinearizable, expected) << "round " << round << "\n"
                                                                 << h.to_json().dump(1) << "\n"
                                                                 << plain.explanation;
    (expected ? linearizable : violations)++;
  }
  std::printf("queue cross-check: %d linearizable, %d not\n", linearizable, violations);
  EXPECT_GT(linearizable, 100);
  EXPECT_GT(violations, 100);
}

TEST(QueueStrict, MidSizeHintsAgreeWithPlainSearch) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.kill.put] [queue.kill.get]");
  std::mt19937_64 rng(11);
  int agreed = 0, unknown = 0, violations = 0;
  for (int round = 0; round < 200; ++round) {
    SimOptions o;
    o.producers = 2;
    o.consumers = 2;
    o.ops_per_actor = 6;
    o.maxsize = static_cast<std::int64_t>(rng() % 4);
    o.kill = round % 2 == 0 ? 0.05 : 0.0;
    History h = simulate(o, rng);
    if (rng() % 2 == 0) mutate(h, rng);
    Hist x;
    x.h = h;
    check::QueueLinearizabilityOptions opt;
    opt.maxsize = o.maxsize;
    opt.budget = std::chrono::milliseconds(2000);
    const auto hinted = check::check_queue_linearizable(h, "Q", opt);
    opt.hints = false;
    const auto plain = check::check_queue_linearizable(h, "Q", opt);
    ASSERT_NE(hinted.verdict, Verdict::kUnknown) << h.to_json().dump(1);
    if (plain.verdict == Verdict::kUnknown) {
      ++unknown;
      continue;
    }
    ASSERT_EQ(hinted.verdict, plain.verdict) << "round " << round << "\n" << h.to_json().dump(1);
    ++agreed;
    violations += hinted.verdict == Verdict::kNotLinearizable;
  }
  std::printf("mid-size: %d agreed (%d violations), %d plain searches ran out of time\n", agreed,
              violations, unknown);
  EXPECT_GT(agreed, 150);
  EXPECT_GT(violations, 20);
}

double time_ms(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

TEST(QueuePerformance, SimulatedHistoriesOfAFewHundredOps) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.kill.committed]");
  std::mt19937_64 rng(2024);
  double worst = 0;
  for (int round = 0; round < 20; ++round) {
    SimOptions o;
    o.producers = 4;
    o.consumers = 3;
    o.ops_per_actor = 60;
    o.maxsize = round % 2 == 0 ? 8 : 0;
    o.kill = round % 4 == 1 ? 0.01 : 0.0;
    const History h = simulate(o, rng);
    check::ObjectResult r;
    const double ms = time_ms([&] {
      check::QueueLinearizabilityOptions opt;
      opt.maxsize = o.maxsize;
      opt.budget = std::chrono::seconds(30);
      r = check::check_queue_linearizable(h, "Q", opt);
    });
    worst = std::max(worst, ms);
    ASSERT_EQ(r.verdict, Verdict::kLinearizable) << r.explanation;
    if (round < 3) std::printf("  %zu ops: %.1f ms\n", h.ops.size(), ms);
  }
  std::printf("simulated 7-actor histories: worst %.1f ms\n", worst);
  EXPECT_LT(worst, 5000.0);
}

TEST(QueuePerformance, KillInjectionTrials) {
  MPSPEC_CLAUSES(
      "[queue.kill.put] [queue.kill.get] [queue.kill.committed] [queue.kill.usable] "
      "[queue.linearizable]");
  // The shape of the kill-injection test: 200 trials, producers and consumers killed at random
  // calls (half of the killed calls take effect), survivors finish, one actor drains the queue.
  std::mt19937_64 rng(77);
  double total = 0, worst = 0;
  int killed_calls = 0, ops = 0;
  for (int trial = 0; trial < 200; ++trial) {
    SimOptions o;
    o.producers = 3;
    o.consumers = 3;
    o.ops_per_actor = 25;
    o.maxsize = trial % 2 == 0 ? 4 : 0;
    o.kill = 0.04;
    o.queries = 0.05;
    const History h = simulate(o, rng);
    for (const Operation& op : h.ops) killed_calls += op.status == OpStatus::kInfo;
    ops += static_cast<int>(h.ops.size());
    check::ObjectResult r;
    const double ms = time_ms([&] {
      check::QueueLinearizabilityOptions opt;
      opt.maxsize = o.maxsize;
      opt.budget = std::chrono::seconds(30);
      r = check::check_queue_linearizable(h, "Q", opt);
    });
    total += ms;
    worst = std::max(worst, ms);
    ASSERT_EQ(r.verdict, Verdict::kLinearizable) << h.to_json().dump() << "\n" << r.explanation;
  }
  std::printf("200 kill trials: %d ops, %d killed calls, total %.1f ms, worst %.1f ms\n", ops,
              killed_calls, total, worst);
  EXPECT_GT(killed_calls, 200);
  EXPECT_LT(worst, 5000.0);
}

TEST(QueuePerformance, FillThenDrainWithKills) {
  MPSPEC_CLAUSES("[queue.kill.put] [queue.kill.get] [queue.kill.committed]");
  // As FillThenDrain, with killed producers (their last put's effect unknown; half took
  // effect) and two consumers killed in get during the drain.
  std::mt19937_64 rng(8);
  for (int round = 0; round < 5; ++round) {
    Hist x;
    std::vector<std::pair<std::int64_t, Json>> lin;
    for (int p = 0; p < 6; ++p) {
      std::int64_t t = static_cast<std::int64_t>(rng() % 100);
      const int n = 20 + static_cast<int>(rng() % 20);
      for (int i = 0; i < n; ++i) {
        const std::int64_t len = 500 + static_cast<std::int64_t>(rng() % 1000);
        const Json v = Json::array({p, i});
        const std::string actor = "p" + std::to_string(p);
        if (p % 2 == 1 && i == n - 1) {  // killed in its last put
          x.put_killed(actor, v, t);
          if (rng() % 2 == 0) lin.emplace_back(t + static_cast<std::int64_t>(rng() % len), v);
          break;
        }
        x.put(actor, v, t, t + len);
        lin.emplace_back(t + static_cast<std::int64_t>(rng() % len), v);
        t += len + static_cast<std::int64_t>(rng() % 50);
      }
    }
    std::sort(lin.begin(), lin.end());
    std::int64_t t = 1'000'000;
    for (std::size_t i = 0; i < lin.size(); ++i) {
      if (i == lin.size() / 3 || i == 2 * lin.size() / 3) {
        // Killed in get: took this item. Invoked during the drain, or (odd rounds) long before,
        // while the producers ran, which leaves its linearization point free over the whole run.
        x.get_killed("k" + std::to_string(i), round % 2 == 0 ? t : 5000);
        t += 10;
        continue;
      }
      x.get("d", lin[i].second, t, t + 5, "get_nowait");
      t += 10;
    }
    x.get_empty("d", t, t + 5);
    check::ObjectResult r;
    const double ms = time_ms([&] { r = strict(x, 0); });
    std::printf("fill then drain with kills, %zu ops: %.1f ms\n", x.h.ops.size(), ms);
    ASSERT_EQ(r.verdict, Verdict::kLinearizable) << r.explanation;
    EXPECT_LT(ms, 5000.0);
  }
}

TEST(QueuePerformance, FillThenDrain) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.order.fifo] [queue.no_loss]");
  // 8 producers put 40 items each with long, overlapping calls and nothing is got until one
  // consumer drains the queue: every order of the concurrent puts is a different state, and
  // only the drain tells which one happened.
  std::mt19937_64 rng(5);
  Hist x;
  std::vector<std::pair<std::int64_t, Json>> lin;  // linearization point, value
  for (int p = 0; p < 8; ++p) {
    std::int64_t t = static_cast<std::int64_t>(rng() % 100);
    for (int i = 0; i < 40; ++i) {
      const std::int64_t len = 500 + static_cast<std::int64_t>(rng() % 1000);
      const Json v = Json::array({p, i});
      x.put("p" + std::to_string(p), v, t, t + len);
      lin.emplace_back(t + static_cast<std::int64_t>(rng() % len), v);
      t += len + static_cast<std::int64_t>(rng() % 50);
    }
  }
  std::sort(lin.begin(), lin.end());
  std::int64_t t = 1'000'000;
  for (const auto& [when, v] : lin) {
    x.get("d", v, t, t + 5, "get_nowait");
    t += 10;
  }
  x.get_empty("d", t, t + 5);
  check::ObjectResult r;
  const double ms = time_ms([&] { r = strict(x, 0); });
  std::printf("fill then drain, %zu ops: %.1f ms\n", x.h.ops.size(), ms);
  ASSERT_EQ(r.verdict, Verdict::kLinearizable) << r.explanation;
  EXPECT_LT(ms, 5000.0);
  // Without the hints the same search runs out of its budget.
  check::QueueLinearizabilityOptions plain;
  plain.hints = false;
  plain.budget = std::chrono::milliseconds(300);
  EXPECT_EQ(check::check_queue_linearizable(x.h, "Q", plain).verdict, Verdict::kUnknown);
  // Swap two drained values of one producer: rejected as fast.
  Hist y = x;
  std::vector<Operation*> drained;
  for (Operation& o : y.h.ops)
    if (o.process == "d" && o.status == OpStatus::kOk && o.value[0] == 3) drained.push_back(&o);
  std::swap(drained[10]->value, drained[11]->value);
  const double bad_ms = time_ms([&] { r = strict(y, 0); });
  std::printf("fill then drain with two items of one producer swapped: %.1f ms\n%s\n", bad_ms,
              r.explanation.c_str());
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable) << r.explanation;
  EXPECT_LT(bad_ms, 5000.0);
  // The plain search cannot explain it in time: the hint that stopped the search is named,
  // with the puts it waited for.
  EXPECT_TRUE(mentions(r.explanation, "found with the checker's FIFO hints")) << r.explanation;
  EXPECT_TRUE(mentions(r.explanation, "whose puts had not taken effect")) << r.explanation;
}

TEST(QueuePerformance, MutatedSimulatedHistoryIsRejected) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.no_duplication]");
  std::mt19937_64 rng(99);
  SimOptions o;
  o.producers = 4;
  o.consumers = 3;
  o.ops_per_actor = 60;
  o.maxsize = 8;
  History h = simulate(o, rng);
  // A get in the middle returns the value of an earlier get: one item got twice.
  std::vector<Operation*> gets;
  for (Operation& op : h.ops)
    if (op.method.rfind("get", 0) == 0 && op.status == OpStatus::kOk) gets.push_back(&op);
  ASSERT_GT(gets.size(), 40u);
  gets[gets.size() / 2]->value = gets[gets.size() / 2 - 10]->value;
  Hist x;
  x.h = h;
  check::ObjectResult r;
  const double ms = time_ms([&] { r = strict(x, 8); });
  std::printf("mutated %zu-op history rejected in %.1f ms\n%s\n", h.ops.size(), ms,
              r.explanation.substr(0, 2000).c_str());
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_LT(ms, 5000.0);
  // The core checker names the duplicate.
  const auto c = core(x, 8, true);
  EXPECT_FALSE(c.ok);
  EXPECT_TRUE(mentions(c.explanation, "[queue.no_duplication]")) << c.explanation;
}

// ---------------------------------------------------------------------- core checker

TEST(QueueCore, CleanHistoryPasses) {
  MPSPEC_CLAUSES(
      "[queue.no_duplication] [queue.no_invention] [queue.order.producer] [queue.no_loss] "
      "[queue.capacity.bound] [queue.capacity.full_legal]");
  Hist x;
  x.put("a", 1, 0, 10).put("a", 2, 20, 30).put("c", 3, 5, 25).get("b", 3, 40, 50);
  x.get("b", 1, 60, 70).get("d", 2, 65, 80).get_empty("b", 90, 100);
  const auto r = core(x, 3, true);
  EXPECT_TRUE(r.ok) << r.explanation;
  EXPECT_EQ(r.committed, 3);
  EXPECT_EQ(r.got, 3);
  EXPECT_TRUE(r.skipped.empty());
}

TEST(QueueCore, CPythonLagPassesCoreNotStrict) {
  MPSPEC_CLAUSES("[queue.get.lag] [queue.size.approximate] [queue.put.visible]");
  // put returns, empty() says True and get_nowait raises Empty, then the item arrives.
  Hist x;
  x.put("a", 1, 0, 10).call("b", "empty", true, 20, 30).get_empty("b", 40, 50);
  x.get("b", 1, 60, 70);
  EXPECT_TRUE(core(x, 0, true).ok);
  EXPECT_EQ(strict(x).verdict, Verdict::kNotLinearizable);
}

TEST(QueueCore, DuplicatedItem) {
  MPSPEC_CLAUSES("[queue.no_duplication]");
  Hist x;
  x.put("a", 1, 0, 10).get("b", 1, 20, 30).get("c", 1, 40, 50);
  const auto r = core(x);
  ASSERT_FALSE(r.ok);
  EXPECT_TRUE(
      mentions(r.explanation, "[queue.no_duplication] 1 was returned by 2 gets but put by 1"))
      << r.explanation;
  EXPECT_TRUE(mentions(r.explanation, "op #1 (b/0 get() -> 1")) << r.explanation;
  // Two puts of the same value may be got twice.
  Hist y = x;
  y.put("a", 1, 15, 16);
  EXPECT_TRUE(core(y).ok) << core(y).explanation;
}

TEST(QueueCore, ItemGotBeforeItsPut) {
  MPSPEC_CLAUSES("[queue.no_invention]");
  Hist x;
  x.get("b", 1, 0, 10).put("a", 1, 20, 30);
  auto r = core(x);
  ASSERT_FALSE(r.ok);
  EXPECT_TRUE(mentions(r.explanation, "[queue.no_invention] op #0 (b/0 get() -> 1"))
      << r.explanation;
  EXPECT_TRUE(mentions(r.explanation, "was invoked at +20 ns")) << r.explanation;
  Hist overlap;  // the put was invoked before the get returned: fine
  overlap.get("b", 1, 0, 25).put("a", 1, 20, 30);
  EXPECT_TRUE(core(overlap).ok);
  Hist never;  // a value no put carried (the only put of it raised Full)
  never.put_full("a", 1, 0, 10).get("b", 1, 20, 30);
  r = core(never, 1);
  ASSERT_FALSE(r.ok);
  EXPECT_TRUE(mentions(r.explanation, "which no put carried")) << r.explanation;
}

TEST(QueueCore, ReorderedPerProducerItems) {
  MPSPEC_CLAUSES("[queue.order.producer] [queue.order.across]");
  Hist lifo;  // one producer, one consumer, LIFO
  lifo.put("a", 1, 0, 10).put("a", 2, 20, 30).get("b", 2, 40, 50).get("b", 1, 60, 70);
  const auto r = core(lifo);
  ASSERT_FALSE(r.ok);
  EXPECT_TRUE(mentions(r.explanation, "[queue.order.producer] process a put 1 before 2"))
      << r.explanation;
  Hist consumers = lifo;  // two consumers: still a violation (the get of 1 began after)
  consumers.h.ops[3].process = "c";
  EXPECT_FALSE(core(consumers).ok);
  Hist overlapping_gets;  // the gets overlap: either may have taken its item first
  overlapping_gets.put("a", 1, 0, 10).put("a", 2, 20, 30).get("b", 2, 40, 70).get("c", 1, 50, 60);
  EXPECT_TRUE(core(overlapping_gets).ok) << core(overlapping_gets).explanation;
  Hist overlapping_puts;  // the puts overlap: no order between them
  overlapping_puts.put("a", 1, 0, 25, "put")
      .add("a", "put", Json{{"obj", 2}}, OpStatus::kOk, nullptr, "", 20, 30);
  overlapping_puts.h.ops[1].thread = 1;
  overlapping_puts.get("b", 2, 40, 50).get("b", 1, 60, 70);
  EXPECT_TRUE(core(overlapping_puts).ok) << core(overlapping_puts).explanation;
  Hist across;  // two producers: core allows any order
  across.put("a", 1, 0, 10).put("c", 2, 20, 30).get("b", 2, 40, 50).get("b", 1, 60, 70);
  EXPECT_TRUE(core(across).ok);
  EXPECT_EQ(strict(across).verdict, Verdict::kNotLinearizable);
  Hist far;  // the earlier put is several puts back
  far.put("a", 1, 0, 10).put("a", 2, 20, 30).put("a", 3, 40, 50);
  far.get("b", 2, 60, 70).get("b", 3, 80, 90).get("b", 1, 100, 110);
  const auto f = core(far);
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.violations.size(), 2u) << f.explanation;  // 1 before 2, 1 before 3
}

TEST(QueueCore, LostItemAtQuiescence) {
  MPSPEC_CLAUSES("[queue.no_loss] [simple_queue.no_loss] [queue.exit.abrupt]");
  Hist x;
  x.put("a", 1, 0, 10).put("a", 2, 20, 30).get("b", 2, 40, 50).get_empty("b", 60, 70);
  auto r = core(x, std::nullopt, true);
  ASSERT_FALSE(r.ok);
  EXPECT_TRUE(mentions(r.explanation,
                       "[queue.no_loss] the history ended drained, but 1 committed "
                       "item was never got:\n    op #0 (a/0 put(1) -> null"))
      << r.explanation;
  EXPECT_TRUE(core(x, std::nullopt, false).ok) << "not drained: nothing to say";
  // A killed get may have taken it.
  Hist k = x;
  k.get_killed("c", 35);
  EXPECT_TRUE(core(k, std::nullopt, true).ok);
  // Core Queue: after a kill, loss is allowed ([queue.exit.abrupt], [queue.kill.corrupt]).
  r = core(x, 2, true, {"a"});
  EXPECT_TRUE(r.ok);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_TRUE(mentions(r.skipped[0], "[queue.no_loss] not checked")) << r.skipped[0];
  // SimpleQueue: a committed item survives its killed producer.
  Hist s("SimpleQueue");
  s.put("a", 1, 0, 10).put("a", 2, 20, 30).get("b", 2, 40, 50);
  r = core(s, std::nullopt, true, {"a"});
  ASSERT_FALSE(r.ok);
  EXPECT_TRUE(mentions(r.explanation, "[simple_queue.no_loss]")) << r.explanation;
  // A killed put's item is not committed.
  Hist kp;
  kp.put_killed("a", 1, 0).put("c", 2, 20, 30).get("b", 2, 40, 50).get_empty("b", 60, 70);
  EXPECT_TRUE(core(kp, std::nullopt, true).ok);
}

TEST(QueueCore, CapacityBound) {
  MPSPEC_CLAUSES("[queue.capacity.bound] [queue.construct.maxsize]");
  Hist x;
  x.put("a", 1, 0, 10).put("a", 2, 20, 30).put("a", 3, 40, 50).get("b", 1, 60, 70);
  auto r = core(x, 2);
  ASSERT_FALSE(r.ok);
  EXPECT_TRUE(mentions(r.explanation, "[queue.capacity.bound] at +50 ns")) << r.explanation;
  EXPECT_TRUE(mentions(r.explanation, "held 3 items, more than maxsize 2")) << r.explanation;
  EXPECT_TRUE(core(x, 3).ok);
  EXPECT_TRUE(core(x, 0).ok) << "unbounded";
  // A get invoked (not yet returned) before the third put returned frees a slot.
  Hist y;
  y.put("a", 1, 0, 10).put("a", 2, 20, 30).get("b", 1, 35, 70).put("a", 3, 40, 50);
  EXPECT_TRUE(core(y, 2).ok) << core(y, 2).explanation;
  // Without maxsize the check is skipped, and says so.
  r = core(x);
  EXPECT_TRUE(r.ok);
  EXPECT_FALSE(r.skipped.empty());
}

TEST(QueueCore, FullWhenNotFull) {
  MPSPEC_CLAUSES("[queue.capacity.full_legal] [queue.put.nonblocking]");
  Hist x;
  x.put("a", 1, 0, 10).put_full("a", 2, 20, 30);
  auto r = core(x, 2);
  ASSERT_FALSE(r.ok);
  EXPECT_TRUE(mentions(r.explanation,
                       "[queue.capacity.full_legal] op #1 (a/0 put_nowait(2) "
                       "raised Full"))
      << r.explanation;
  EXPECT_TRUE(mentions(r.explanation, "at most 1")) << r.explanation;
  EXPECT_TRUE(core(x, 1).ok);
  EXPECT_FALSE(core(x, 0).ok) << "an unbounded queue holds 32767";
  // A concurrent put (still running) may have taken the last slot.
  Hist y;
  y.put("a", 1, 0, 10).put("c", 3, 15, 100).put_full("a", 2, 20, 30);
  EXPECT_TRUE(core(y, 2).ok) << core(y, 2).explanation;
  // A get that returned before the Full freed a slot: the Full cannot be explained.
  Hist z;
  z.put("a", 1, 0, 10).put("c", 3, 11, 12).get("b", 1, 13, 14).put_full("a", 2, 20, 30);
  EXPECT_FALSE(core(z, 2).ok);
  // CPython's Full counts slots taken by puts whose items are still in the feeder's buffer:
  // the puts count from their invocation, whether or not a get could see their items.
  Hist lag;
  lag.put("a", 1, 0, 10).put("a", 2, 20, 30).get_empty("b", 35, 36).put_full("c", 3, 40, 50);
  EXPECT_TRUE(core(lag, 2).ok);
}

TEST(QueueCore, Uncarriable) {
  MPSPEC_CLAUSES("[queue.put.uncarriable] [queue.put.uncarriable.silent] [queue.no_invention]");
  const Json bad = Json{{"$uncarriable", nullptr}};
  Hist x;  // CPython: the put returns, nothing is delivered, the next item arrives
  x.put("a", bad, 0, 10).put("a", 2, 20, 30).get("b", 2, 40, 50).get_empty("b", 60, 70);
  EXPECT_TRUE(core(x, 1, true).ok) << core(x, 1, true).explanation;
  Hist y;  // an uncarriable object must never come out
  y.put("a", bad, 0, 10).get("b", bad, 40, 50);
  const auto r = core(y);
  ASSERT_FALSE(r.ok);
  EXPECT_TRUE(mentions(r.explanation, "[queue.no_invention]")) << r.explanation;
  // Strict: the put must raise.
  EXPECT_EQ(strict(x).verdict, Verdict::kNotLinearizable);
  Hist z;
  z.raises("a", "put", "TypeError", 0, 10, Json{{"obj", bad}}).put("a", 2, 20, 30);
  z.get("b", 2, 40, 50);
  EXPECT_EQ(strict(z).verdict, Verdict::kLinearizable);
}

TEST(QueueCore, JoinableQueueAndLabels) {
  MPSPEC_CLAUSES("[joinable_queue.queue.core] [simple_queue.no_duplication]");
  Hist j("JoinableQueue");
  j.put("a", 1, 0, 10).get("b", 1, 20, 30).call("b", "task_done", nullptr, 40, 50);
  j.call("c", "join", nullptr, 0, 60);
  EXPECT_TRUE(core(j).ok);
  Hist s("SimpleQueue");
  s.put("a", 1, 0, 10).get("b", 1, 20, 30).get("c", 1, 40, 50);
  const auto r = core(s);
  ASSERT_FALSE(r.ok);
  EXPECT_TRUE(mentions(r.explanation, "[simple_queue.no_duplication]")) << r.explanation;
  Hist lock;
  lock.h.objects["Q"] = "Lock";
  EXPECT_THROW(core(lock), std::invalid_argument);
}

// ------------------------------------------------------------------ JoinableQueue (strict)

TEST(JoinableQueueStrict, CountRules) {
  MPSPEC_CLAUSES("[joinable_queue.linearizable]");
  Hist ok("JoinableQueue");
  ok.put("a", 1, 0, 10).raises("b", "put_nowait", "Full", 20, 30, Json{{"obj", 2}});
  ok.call("b", "task_done", nullptr, 40, 50).raises("b", "task_done", "ValueError", 60, 70);
  ok.call("c", "join", nullptr, 80, 90).get("c", 1, 100, 110);
  EXPECT_EQ(strict_both(ok, 1).verdict, Verdict::kLinearizable) << strict(ok, 1).explanation;

  // join returned while a unit was counted (the put returned before the join was invoked).
  Hist early("JoinableQueue");
  early.put("a", 1, 0, 10).call("c", "join", nullptr, 20, 30);
  const auto r = strict_both(early);
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_NE(r.explanation.find("unfinished"), std::string::npos) << r.explanation;

  // task_done raised ValueError on a positive count.
  Hist too_many("JoinableQueue");
  too_many.put("a", 1, 0, 10).raises("b", "task_done", "ValueError", 20, 30);
  EXPECT_EQ(strict_both(too_many).verdict, Verdict::kNotLinearizable);

  // Concurrent task_done calls on a count of 1: one returns, the other raises.
  Hist both("JoinableQueue");
  both.put("a", 1, 0, 10).call("b", "task_done", nullptr, 20, 40);
  both.raises("c", "task_done", "ValueError", 25, 35);
  EXPECT_EQ(strict_both(both).verdict, Verdict::kLinearizable);
  Hist two("JoinableQueue");
  two.put("a", 1, 0, 10).call("b", "task_done", nullptr, 20, 40);
  two.call("c", "task_done", nullptr, 25, 35);
  EXPECT_EQ(strict_both(two).verdict, Verdict::kNotLinearizable);

  // A join overlapping the task_done that brings the count to 0 may return.
  Hist overlap("JoinableQueue");
  overlap.put("a", 1, 0, 10).call("c", "join", nullptr, 20, 60);
  overlap.call("b", "task_done", nullptr, 30, 40).put("a", 2, 45, 50);
  EXPECT_EQ(strict_both(overlap).verdict, Verdict::kLinearizable);
}

TEST(JoinableQueueStrict, KilledCalls) {
  MPSPEC_CLAUSES("[joinable_queue.kill.put] [joinable_queue.kill.task_done]");
  // A killed put may not have taken effect: join may then return.
  Hist none("JoinableQueue");
  none.put_killed("a", 1, 0).call("c", "join", nullptr, 20, 30);
  EXPECT_EQ(strict_both(none).verdict, Verdict::kLinearizable);
  // ... but when its item was got, its unit was counted too.
  Hist both("JoinableQueue");
  both.put_killed("a", 1, 0).get("b", 1, 10, 20).call("c", "join", nullptr, 30, 40);
  EXPECT_EQ(strict_both(both).verdict, Verdict::kNotLinearizable);
  // A killed task_done took one unit away or none, never two.
  Hist one("JoinableQueue");
  one.put("a", 1, 0, 10).add("k", "task_done", Json::object(), OpStatus::kInfo, nullptr, "", 20,
                             {});
  one.call("c", "join", nullptr, 30, 40);
  EXPECT_EQ(strict_both(one).verdict, Verdict::kLinearizable);
  Hist more("JoinableQueue");
  more.put("a", 1, 0, 10).add("k", "task_done", Json::object(), OpStatus::kInfo, nullptr, "", 20,
                              {});
  more.call("b", "task_done", nullptr, 30, 40).call("b", "task_done", nullptr, 50, 60);
  EXPECT_EQ(strict_both(more).verdict, Verdict::kNotLinearizable);
  // check_history knows the type too.
  EXPECT_EQ(check::check_history(both.h).verdict, Verdict::kNotLinearizable);
}

}  // namespace
}  // namespace mpspec
