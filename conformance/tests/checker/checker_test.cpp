// Self-tests of the linearizability checker and of the Lock model (no backend needed).
//
// - the Lock model's step rules, one clause at a time;
// - every fixture under fixtures/histories (MPSPEC_FIXTURES_DIR) against its "expect";
// - malformed histories: clear std::invalid_argument, or a not-linearizable verdict when the
//   backend's outcome is impossible;
// - the search against a brute-force oracle on thousands of small random histories;
// - the budget: UNKNOWN on an adversarial history, never a verdict;
// - performance: a simulated 10,000-op, 8-actor history checked in under a second, and a
//   mutated copy rejected;
// - the mpspec-check command's exit statuses.
// Each test names the clauses it relates to in its first comment.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "check.hpp"
#include "history.hpp"
#include "linearizability.hpp"
#include "models/lock.hpp"

#ifndef MPSPEC_FIXTURES_DIR
#error "MPSPEC_FIXTURES_DIR must name fixtures/histories"
#endif

namespace mpspec {
namespace {

using check::Verdict;
using Json = nlohmann::json;
using L = model::Lock;
using model::Raised;
using model::Returned;
using model::Unknown;

// ----------------------------------------------------------------------------- helpers

Operation make_op(int id, const std::string& actor, const std::string& method, Json args,
                  OpStatus status, Json value, std::int64_t invoke, std::optional<std::int64_t> ret,
                  const std::string& object = "L") {
  Operation o;
  o.id = id;
  o.process = actor;
  o.object = object;
  o.method = method;
  o.args = std::move(args);
  o.status = status;
  if (status == OpStatus::kOk) o.value = std::move(value);
  if (status == OpStatus::kError) o.error_kind = value.get<std::string>();
  o.invoke_ns = invoke;
  if (status != OpStatus::kInfo) o.return_ns = ret;
  return o;
}
Operation ok(int id, const std::string& actor, const std::string& method, Json args, Json value,
             std::int64_t invoke, std::int64_t ret, const std::string& object = "L") {
  return make_op(id, actor, method, std::move(args), OpStatus::kOk, std::move(value), invoke, ret,
                 object);
}
Operation err(int id, const std::string& actor, const std::string& method, const std::string& kind,
              std::int64_t invoke, std::int64_t ret) {
  return make_op(id, actor, method, Json::object(), OpStatus::kError, kind, invoke, ret);
}
Operation info(int id, const std::string& actor, const std::string& method, Json args,
               std::int64_t invoke) {
  return make_op(id, actor, method, std::move(args), OpStatus::kInfo, nullptr, invoke,
                 std::nullopt);
}

History lock_history(std::vector<Operation> ops) {
  History h;
  h.objects["L"] = "Lock";
  h.ops = std::move(ops);
  return h;
}

L::Op acquire(L::Outcome outcome, bool block = true, std::optional<double> timeout = {}) {
  return L::Op{L::Method::kAcquire, block, timeout, std::move(outcome)};
}
L::Op method(L::Method m, L::Outcome outcome) { return L::Op{m, true, {}, std::move(outcome)}; }
L::Outcome returned(std::optional<bool> v) { return Returned<std::optional<bool>>{v}; }
L::Outcome raised(const std::string& kind) { return Raised{kind}; }
L::Outcome unknown() { return Unknown{}; }

const L::State kFree{false}, kHeld{true};
using States = std::vector<L::State>;

// Checks a witness linearization independently: every completed op once, real-time order
// respected, and the model accepts it (tracking every state the nondeterministic steps allow).
::testing::AssertionResult valid_witness(const std::vector<check::TimedOp<L>>& ops,
                                         const std::vector<int>& order) {
  std::map<int, const check::TimedOp<L>*> by_id;
  for (const auto& o : ops) by_id[o.id] = &o;
  std::set<int> seen;
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (!by_id.count(order[i]) || !seen.insert(order[i]).second)
      return ::testing::AssertionFailure() << "bad or repeated id " << order[i];
  }
  for (const auto& o : ops)
    if (o.return_ns && !seen.count(o.id))
      return ::testing::AssertionFailure() << "completed op " << o.id << " missing";
  // Real time: no op may return strictly before an op placed earlier was invoked.
  std::int64_t latest_invoke = std::numeric_limits<std::int64_t>::min();
  int latest_id = -1;
  for (int id : order) {
    const auto* o = by_id[id];
    if (o->return_ns && *o->return_ns < latest_invoke)
      return ::testing::AssertionFailure()
             << "op " << id << " returned before op " << latest_id << " was invoked";
    if (o->invoke_ns > latest_invoke) {
      latest_invoke = o->invoke_ns;
      latest_id = id;
    }
  }
  std::vector<L::State> states{L::init()};
  for (int id : order) {
    std::vector<L::State> next;
    for (const auto& s : states)
      for (const auto& t : L::step(s, by_id[id]->op))
        if (std::find(next.begin(), next.end(), t) == next.end()) next.push_back(t);
    if (next.empty()) return ::testing::AssertionFailure() << "model rejects op " << id;
    states = next;
  }
  return ::testing::AssertionSuccess();
}

std::vector<check::TimedOp<L>> translate_for_test(const History& h) {
  // Mirrors check.cpp's translation for the ops these tests generate.
  std::vector<check::TimedOp<L>> out;
  for (const auto& o : h.ops) {
    check::TimedOp<L> t;
    t.id = o.id;
    t.who = o.process;
    t.invoke_ns = o.invoke_ns;
    if (o.status != OpStatus::kInfo) t.return_ns = o.return_ns;
    L::Method m = o.method == "acquire"     ? L::Method::kAcquire
                  : o.method == "release"   ? L::Method::kRelease
                  : o.method == "__enter__" ? L::Method::kEnter
                                            : L::Method::kExit;
    t.op.method = m;
    t.op.block = o.args.value("block", true);
    if (o.args.contains("timeout") && o.args["timeout"].is_number())
      t.op.timeout = o.args["timeout"].get<double>();
    if (o.status == OpStatus::kOk)
      t.op.outcome = returned(o.value.is_null() ? std::nullopt : std::optional<bool>(o.value));
    else if (o.status == OpStatus::kError)
      t.op.outcome = raised(o.error_kind);
    else
      t.op.outcome = unknown();
    out.push_back(std::move(t));
  }
  return out;
}

// `pending` pairs of acquires and releases left pending by killed actors, all concurrent, then an
// op that no state allows: the search must try every subset of the pending ops to say no.
History adversarial_history(int pending) {
  History h;
  h.objects["L"] = "Lock";
  int id = 0;
  for (int i = 0; i < pending; ++i) {
    h.ops.push_back(info(id++, "k" + std::to_string(i), "acquire", Json::object(), 10 + i));
    h.ops.push_back(info(id++, "r" + std::to_string(i), "release", Json::object(), 10 + i));
  }
  h.ops.push_back(ok(id++, "z", "__enter__", Json::object(), false, 1000, 2000));
  return h;
}

// ------------------------------------------------------------------------ Lock model

TEST(LockModel, InitIsFree) {
  // [lock.construct.unlocked]
  EXPECT_EQ(L::init(), kFree);
  EXPECT_EQ(L::describe(L::init()), "free");
  EXPECT_EQ(L::describe(kHeld), "held");
}

TEST(LockModel, AcquireTrueOnlyFromFree) {
  // [lock.acquire.free] [lock.acquire.exclusive] [lock.acquire.wakes]
  // [lock.acquire.timeout.success] [lock.context.enter]
  for (const auto& op :
       {acquire(returned(true)), acquire(returned(true), false), acquire(returned(true), true, 0.1),
        acquire(returned(true), true, 0.0), method(L::Method::kEnter, returned(true))}) {
    EXPECT_EQ(L::step(kFree, op), States{kHeld}) << L::describe(op);
    EXPECT_EQ(L::step(kHeld, op), States{}) << L::describe(op);
  }
}

TEST(LockModel, AcquireFalseOnlyWhileHeldNoSpuriousFailure) {
  // [lock.acquire.nonblocking] [lock.acquire.nonblocking.timeout_ignored]
  // [lock.acquire.timeout.expires] [lock.acquire.timeout.zero] [lock.acquire.timeout.negative]
  // [lock.acquire.not_reentrant]
  for (const auto& op :
       {acquire(returned(false), false), acquire(returned(false), false, 5.0),
        acquire(returned(false), true, 0.1), acquire(returned(false), true, 0.0),
        acquire(returned(false), true, -1.0), acquire(returned(false), false, 0.0)}) {
    EXPECT_EQ(L::step(kHeld, op), States{kHeld}) << L::describe(op);
    EXPECT_EQ(L::step(kFree, op), States{}) << L::describe(op);
  }
}

TEST(LockModel, BlockingAcquireAndEnterNeverReturnFalse) {
  // [lock.acquire.blocks] [lock.acquire.timeout.none] [lock.context.enter]
  for (const auto& op : {acquire(returned(false)), method(L::Method::kEnter, returned(false))}) {
    EXPECT_EQ(L::step(kHeld, op), States{}) << L::describe(op);
    EXPECT_EQ(L::step(kFree, op), States{}) << L::describe(op);
  }
}

TEST(LockModel, AcquireResultMustBeABool) {
  // [lock.acquire.free] acquire returns a bool; None is illegal in every state.
  EXPECT_EQ(L::step(kFree, acquire(returned(std::nullopt))), States{});
  EXPECT_EQ(L::step(kHeld, acquire(returned(std::nullopt))), States{});
  EXPECT_EQ(L::step(kFree, method(L::Method::kEnter, returned(std::nullopt))), States{});
}

TEST(LockModel, AcquireErrorsOnlyForOverflowingTimeouts) {
  // [lock.acquire.timeout.nonfinite] (MAY) ValueError / OverflowError / OSError for a timeout
  // that is not finite or too large; any other error, or any error otherwise, is illegal.
  for (const char* kind : {"ValueError", "OverflowError", "OSError"}) {
    for (double t : {1e20, std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN()}) {
      EXPECT_EQ(L::step(kFree, acquire(raised(kind), true, t)), States{kFree}) << kind << t;
      EXPECT_EQ(L::step(kHeld, acquire(raised(kind), true, t)), States{kHeld}) << kind << t;
    }
    EXPECT_EQ(L::step(kHeld, acquire(raised(kind), true, 0.5)), States{}) << kind;
    EXPECT_EQ(L::step(kHeld, acquire(raised(kind))), States{}) << kind;
    EXPECT_EQ(L::step(kHeld, method(L::Method::kEnter, raised(kind))), States{}) << kind;
  }
  EXPECT_EQ(L::step(kHeld, acquire(raised("Other"), true, 1e20)), States{});
  EXPECT_EQ(L::step(kHeld, acquire(raised("TimeoutError"), true, 0.1)), States{});
}

TEST(LockModel, ReleaseFreesHeldLockWhoeverCalls) {
  // [lock.release.held] [lock.release.other_thread] [lock.release.other_process]
  // [lock.kill.release_by_survivor] [lock.context.exit] [lock.release.concurrent]
  for (auto m : {L::Method::kRelease, L::Method::kExit}) {
    EXPECT_EQ(L::step(kHeld, method(m, returned(std::nullopt))), States{kFree});
    EXPECT_EQ(L::step(kFree, method(m, returned(std::nullopt))), States{});
    EXPECT_EQ(L::step(kHeld, method(m, returned(true))), States{});
    EXPECT_EQ(L::step(kHeld, method(m, returned(false))), States{});
  }
}

TEST(LockModel, ReleaseOfFreeLockRaisesValueError) {
  // [lock.release.unheld] [lock.context.exit]
  for (auto m : {L::Method::kRelease, L::Method::kExit}) {
    EXPECT_EQ(L::step(kFree, method(m, raised("ValueError"))), States{kFree});
    EXPECT_EQ(L::step(kHeld, method(m, raised("ValueError"))), States{});
    EXPECT_EQ(L::step(kFree, method(m, raised("RuntimeError"))), States{});
    EXPECT_EQ(L::step(kFree, method(m, raised("AssertionError"))), States{});
  }
}

TEST(LockModel, UnknownOutcomeMayOrMayNotTakeEffect) {
  // [lock.kill.waiter] [lock.kill.holder] a killed actor's call: either no effect or its effect.
  for (auto m : {L::Method::kAcquire, L::Method::kEnter}) {
    EXPECT_EQ(L::step(kFree, method(m, unknown())), (States{kFree, kHeld}));
    EXPECT_EQ(L::step(kHeld, method(m, unknown())), States{kHeld});
  }
  for (auto m : {L::Method::kRelease, L::Method::kExit}) {
    EXPECT_EQ(L::step(kHeld, method(m, unknown())), (States{kHeld, kFree}));
    EXPECT_EQ(L::step(kFree, method(m, unknown())), States{kFree});
  }
}

TEST(LockModel, DescribeAndHash) {
  // [lock.acquire.exclusive] reports use the model's words.
  EXPECT_EQ(L::describe(acquire(returned(true))), "acquire() -> True");
  EXPECT_EQ(L::describe(acquire(returned(false), false)), "acquire(block=False) -> False");
  EXPECT_EQ(L::describe(acquire(returned(false), true, 0.1)), "acquire(timeout=0.1) -> False");
  EXPECT_EQ(L::describe(acquire(returned(false), false, 5)),
            "acquire(block=False, timeout=5) -> False");
  EXPECT_EQ(L::describe(method(L::Method::kRelease, returned(std::nullopt))), "release() -> None");
  EXPECT_EQ(L::describe(method(L::Method::kRelease, raised("ValueError"))),
            "release() raised ValueError");
  EXPECT_EQ(L::describe(method(L::Method::kEnter, unknown())),
            "__enter__() -> ? (outcome unknown)");
  EXPECT_EQ(L::describe(method(L::Method::kExit, returned(std::nullopt))), "__exit__() -> None");
  EXPECT_EQ(L::hash(kFree), L::hash(L::State{false}));
  EXPECT_NE(L::hash(kFree), L::hash(kHeld));
}

// --------------------------------------------------------------------------- fixtures

struct Fixture {
  std::string name, path;
};

std::vector<Fixture> list_fixtures() {
  std::vector<Fixture> out;
  const std::filesystem::path root(MPSPEC_FIXTURES_DIR);
  if (!std::filesystem::is_directory(root)) return out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (!e.is_regular_file() || e.path().extension() != ".json") continue;
    std::string name = std::filesystem::relative(e.path(), root).replace_extension().string();
    for (char& c : name)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    out.push_back(Fixture{name, e.path().string()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

void PrintTo(const Fixture& f, std::ostream* os) { *os << f.path; }

class FixtureTest : public ::testing::TestWithParam<Fixture> {};

TEST_P(FixtureTest, VerdictMatchesExpect) {
  // [lock.acquire.exclusive] each fixture's own description names the clauses it illustrates.
  std::ifstream in(GetParam().path);
  ASSERT_TRUE(in) << GetParam().path;
  const Json j = Json::parse(in);
  ASSERT_TRUE(j.contains("expect") && j.contains("description")) << GetParam().path;
  const std::string expect = j["expect"].get<std::string>();
  ASSERT_TRUE(expect == "linearizable" || expect == "not-linearizable") << expect;
  const History h = History::from_json(j);
  const auto r = check::check_history(h, std::chrono::seconds(10));
  SCOPED_TRACE(j["description"].get<std::string>() + "\n" + r.summary());
  EXPECT_EQ(r.verdict,
            expect == "linearizable" ? Verdict::kLinearizable : Verdict::kNotLinearizable);
  if (j.contains("failing_op")) {
    std::optional<int> failing;
    for (const auto& o : r.objects)
      if (o.failing_op) failing = o.failing_op;
    EXPECT_EQ(failing, std::optional<int>(j["failing_op"].get<int>()));
  }
  for (const auto& o : r.objects) {
    EXPECT_FALSE(o.explanation.empty());
    if (o.verdict == Verdict::kNotLinearizable) {
      EXPECT_TRUE(o.failing_op.has_value());
      EXPECT_NE(o.explanation.find("not linearizable"), std::string::npos);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Histories, FixtureTest, ::testing::ValuesIn(list_fixtures()),
                         [](const auto& p) { return p.param.name; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(FixtureTest);

TEST(Fixtures, DirectoryHoldsBothKinds) {
  // [lock.acquire.exclusive] guards against a wrong MPSPEC_FIXTURES_DIR silently testing nothing.
  int good = 0, bad = 0;
  for (const auto& f : list_fixtures()) {
    std::ifstream in(f.path);
    const auto expect = Json::parse(in).value("expect", "");
    good += expect == "linearizable";
    bad += expect == "not-linearizable";
  }
  EXPECT_GE(good, 8) << MPSPEC_FIXTURES_DIR;
  EXPECT_GE(bad, 6) << MPSPEC_FIXTURES_DIR;
}

// ------------------------------------------------------------------- checker behaviour

TEST(Checker, ViolationReportsPrefixFailingOpAndExplanation) {
  // [lock.acquire.exclusive] a acquires, b acquires True before a releases.
  const auto h = lock_history({ok(0, "a", "acquire", Json::object(), true, 100, 200),
                               ok(1, "b", "acquire", {{"block", false}}, true, 300, 400),
                               ok(2, "a", "release", Json::object(), nullptr, 500, 600)});
  const auto r = check::check_history(h);
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable) << r.summary();
  ASSERT_EQ(r.objects.size(), 1u);
  const auto& o = r.objects[0];
  EXPECT_EQ(o.object, "L");
  EXPECT_EQ(o.type, "Lock");
  EXPECT_EQ(o.longest_prefix, std::vector<int>{0});
  EXPECT_EQ(o.failing_op, 1);
  EXPECT_NE(o.explanation.find("#1 b/0 acquire(block=False) -> True"), std::string::npos)
      << o.explanation;
  EXPECT_NE(o.explanation.find("illegal when the Lock is held"), std::string::npos)
      << o.explanation;
  const std::string s = r.summary();
  EXPECT_NE(s.find("history: not linearizable"), std::string::npos) << s;
  EXPECT_NE(s.find("L (Lock): not linearizable"), std::string::npos) << s;
}

TEST(Checker, LinearizableResultCarriesAValidWitness) {
  // [lock.acquire.wakes] [lock.kill.waiter] the witness order must replay on the model.
  const auto h = lock_history({ok(0, "a", "acquire", Json::object(), true, 0, 100),
                               ok(1, "c", "acquire", Json::object(), true, 1, 3),
                               info(2, "d", "acquire", Json::object(), 2),
                               ok(3, "b", "acquire", {{"block", false}}, false, 5, 15),
                               ok(4, "c", "release", Json::object(), nullptr, 20, 30)});
  const auto r = check::check_history(h);
  ASSERT_EQ(r.verdict, Verdict::kLinearizable) << r.summary();
  EXPECT_TRUE(valid_witness(translate_for_test(h), r.objects[0].longest_prefix));
  EXPECT_EQ(r.objects[0].longest_prefix, (std::vector<int>{1, 3, 4, 0}));  // d left out
}

TEST(Checker, ClosedIntervalsAllowEqualTimestampsEitherWay) {
  // [lock.acquire.nonblocking] b's try invoked when a's release returns may precede it...
  auto h = lock_history({ok(0, "a", "acquire", Json::object(), true, 0, 10),
                         ok(1, "a", "release", Json::object(), nullptr, 50, 100),
                         ok(2, "b", "acquire", {{"block", false}}, false, 100, 120)});
  EXPECT_EQ(check::check_history(h).verdict, Verdict::kLinearizable);
  // ...but not when it was invoked one nanosecond later.
  h.ops[2].invoke_ns = 101;
  EXPECT_EQ(check::check_history(h).verdict, Verdict::kNotLinearizable);
}

TEST(Checker, EmptyHistoryAndObjectsWithoutOps) {
  // [lock.construct.unlocked]
  History h;
  EXPECT_EQ(check::check_history(h).verdict, Verdict::kLinearizable);
  h.objects["L"] = "Lock";
  h.objects["M"] = "Lock";
  const auto r = check::check_history(h);
  EXPECT_EQ(r.verdict, Verdict::kLinearizable);
  EXPECT_EQ(r.objects.size(), 2u);
}

TEST(Checker, OnlyInfoOpsIsLinearizable) {
  // [lock.kill.holder] [lock.kill.waiter] ops whose outcome is unknown may all be left out.
  const auto h = lock_history(
      {info(0, "a", "release", Json::object(), 10), info(1, "b", "acquire", Json::object(), 20)});
  const auto r = check::check_history(h);
  EXPECT_EQ(r.verdict, Verdict::kLinearizable);
  EXPECT_TRUE(r.objects[0].longest_prefix.empty());
}

TEST(Checker, InfoReasonIsSavedAndRead) {
  // [lock.kill.holder] why a call's outcome is unknown (killed, teardown, ...) survives saving,
  // for reports; the checker ignores it.
  Operation op = make_op(0, "a", "acquire", Json::object(), OpStatus::kInfo, Json(), 5, std::nullopt);
  op.info_reason = "killed";
  const Json j = op.to_json();
  EXPECT_EQ(j.value("reason", ""), "killed");
  EXPECT_EQ(Operation::from_json(j).info_reason, "killed");
  op.info_reason.clear();
  EXPECT_FALSE(op.to_json().contains("reason"));
}

TEST(Checker, NotLinearizableWinsOverUnknownAcrossObjects) {
  // [lock.acquire.exclusive] a definite violation on one object is reported even if another
  // object's check cannot finish within the budget.
  History h = adversarial_history(40);  // object "L": too hard for the budget
  h.objects["A"] = "Lock";
  h.ops.push_back(ok(1000, "a", "acquire", Json::object(), true, 0, 1, "A"));
  h.ops.push_back(ok(1001, "b", "acquire", Json::object(), true, 2, 3, "A"));
  const auto r = check::check_history(h, std::chrono::milliseconds(200));
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable) << r.summary();
  ASSERT_EQ(r.objects.size(), 2u);
  EXPECT_EQ(r.objects[0].object, "A");
  EXPECT_EQ(r.objects[0].verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.objects[1].verdict, Verdict::kUnknown);
  // Without the violation the answer is UNKNOWN, not linearizable.
  h.ops.pop_back();
  EXPECT_EQ(check::check_history(h, std::chrono::milliseconds(200)).verdict, Verdict::kUnknown);
}

// ----------------------------------------------------------------- malformed histories

void expect_invalid(const History& h, const std::string& needle) {
  try {
    check::check_history(h);
    ADD_FAILURE() << "no exception; wanted one mentioning '" << needle << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Malformed, UnknownTypeIsRejectedClearly) {
  // [protocol.hello.capabilities] a type without a model cannot be judged.
  History h;
  h.objects["Q"] = "Frobnicator";
  expect_invalid(h, "'Frobnicator', for which the checker has no model (it has: ");
}

TEST(Malformed, BadCallsAreInputErrors) {
  // [protocol.call.args] the history's calls must be the protocol's.
  expect_invalid(lock_history({ok(0, "a", "frob", Json::object(), true, 0, 1)}),
                 "Lock has no method 'frob'");
  expect_invalid(lock_history({ok(0, "a", "acquire", {{"block", "yes"}}, true, 0, 1)}),
                 "'block' must be a bool");
  expect_invalid(lock_history({ok(0, "a", "acquire", {{"timeout", "soon"}}, true, 0, 1)}),
                 "'timeout' must be a number or null");
  expect_invalid(lock_history({ok(0, "a", "release", {{"force", true}}, nullptr, 0, 1)}),
                 "unexpected argument 'force'");
  expect_invalid(lock_history({ok(0, "a", "acquire", Json::array(), true, 0, 1)}),
                 "args must be a JSON object");
}

TEST(Malformed, BadHistoriesAreInputErrors) {
  // [protocol.event.return] exactly one outcome per call, with its timestamps.
  expect_invalid(lock_history({ok(0, "a", "acquire", Json::object(), true, 0, 1),
                               ok(0, "b", "acquire", Json::object(), false, 2, 3)}),
                 "op id 0 appears more than once");
  expect_invalid(lock_history({ok(0, "a", "acquire", Json::object(), true, 0, 1, "M")}),
                 "undeclared object 'M'");
  auto h = lock_history({ok(0, "a", "acquire", Json::object(), true, 0, 1)});
  h.ops[0].return_ns.reset();
  expect_invalid(h, "without return_ns");
  h.ops[0].return_ns = -5;
  expect_invalid(h, "returns before it is invoked");
  EXPECT_THROW(History::from_json(Json{{"format", "other"}}), std::invalid_argument);
}

TEST(Malformed, ImpossibleOutcomeIsAViolationNotAnError) {
  // [protocol.event.return] [lock.acquire.free] acquire returning a non-bool is the backend's
  // fault: the history is not linearizable, and the explanation says why.
  const auto r =
      check::check_history(lock_history({ok(0, "a", "acquire", Json::object(), true, 0, 1),
                                         ok(1, "b", "acquire", Json::object(), 3, 2, 3)}));
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.objects[0].failing_op, 1);
  EXPECT_NE(r.objects[0].explanation.find("returned 3"), std::string::npos)
      << r.objects[0].explanation;
  // None from acquire, a bool from release, an error without a kind: same verdict.
  for (const auto& bad :
       {ok(0, "a", "acquire", Json::object(), nullptr, 0, 1),
        ok(0, "a", "release", Json::object(), true, 0, 1),
        ok(0, "a", "release", Json::object(), "done", 0, 1), err(0, "a", "release", "", 0, 1)}) {
    const auto r2 = check::check_history(lock_history({bad}));
    EXPECT_EQ(r2.verdict, Verdict::kNotLinearizable) << r2.summary();
    EXPECT_EQ(r2.objects[0].failing_op, 0);
  }
}

// ------------------------------------------------------------ brute-force cross-check

// The definition, checked by exhaustive search: some order of a subset containing every
// completed op, respecting "returned strictly before invoked", accepted by the model.
bool brute_force_linearizable(const std::vector<check::TimedOp<L>>& ops) {
  const int n = static_cast<int>(ops.size());
  std::vector<unsigned> before(n, 0);
  unsigned required = 0;
  for (int y = 0; y < n; ++y) {
    if (ops[y].return_ns) required |= 1u << y;
    for (int x = 0; x < n; ++x)
      if (x != y && ops[x].return_ns && *ops[x].return_ns < ops[y].invoke_ns) before[y] |= 1u << x;
  }
  std::set<std::pair<unsigned, bool>> seen;
  std::function<bool(unsigned, L::State)> dfs = [&](unsigned done, L::State s) {
    if ((done & required) == required) return true;
    if (!seen.insert({done, s.held}).second) return false;
    for (int y = 0; y < n; ++y) {
      if (done & (1u << y) || (before[y] & ~done) != 0) continue;
      for (const auto& t : L::step(s, ops[y].op))
        if (dfs(done | (1u << y), t)) return true;
    }
    return false;
  };
  return dfs(0, L::init());
}

// A random small history: ops with effect points on a coarse grid executed on a real lock,
// intervals drawn around them (lots of ties and overlaps), some outcomes unknown, and with
// probability 1/2 one outcome flipped.
std::vector<check::TimedOp<L>> random_small_history(std::mt19937_64& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const int n = 1 + pick(8);
  std::vector<check::TimedOp<L>> ops;
  bool held = pick(4) == 0;  // sometimes the history starts "held" by an unseen prelude
  if (held) {
    check::TimedOp<L> t;
    t.id = 100;
    t.op = acquire(returned(true));
    t.invoke_ns = 0;
    t.return_ns = pick(3);
    ops.push_back(t);
  }
  for (int i = 0; i < n; ++i) {
    check::TimedOp<L> t;
    t.id = i;
    const std::int64_t effect = 4 * (i + 1);
    t.invoke_ns = effect - pick(9);
    t.return_ns = effect + pick(9);
    const int kind = pick(6);
    if (kind <= 2) {  // acquire of some flavour, or __enter__
      const int flavour = pick(5);
      t.op = flavour == 4 ? method(L::Method::kEnter, returned(true))
                          : acquire(returned(true), flavour != 1,
                                    flavour == 2   ? std::optional<double>(0.25)
                                    : flavour == 3 ? std::optional<double>(-1)
                                                   : std::nullopt);
      if (!held) {
        held = true;
      } else if (flavour == 0 || flavour == 4) {
        t.op.outcome = returned(false);  // a blocking one that "returned" False: illegal
        if (pick(2)) t.op = acquire(returned(false), false);
      } else {
        t.op.outcome = returned(false);
      }
    } else {
      t.op = method(pick(2) ? L::Method::kRelease : L::Method::kExit, returned(std::nullopt));
      if (held) {
        held = false;
      } else {
        t.op.outcome = raised("ValueError");
      }
    }
    if (pick(6) == 0) {  // killed: unknown outcome, possibly it had no effect after all
      t.op.outcome = unknown();
      t.return_ns.reset();
      if (pick(2)) held = !held;
    }
    ops.push_back(t);
  }
  if (pick(2)) {  // flip one outcome
    auto& t = ops[pick(static_cast<int>(ops.size()))];
    if (auto* r = std::get_if<Returned<std::optional<bool>>>(&t.op.outcome)) {
      if (r->value) {
        r->value = !*r->value;
      } else {
        t.op.outcome = raised("ValueError");
      }
    } else if (std::holds_alternative<Raised>(t.op.outcome)) {
      t.op.outcome = returned(std::nullopt);
    }
  }
  return ops;
}

TEST(CrossCheck, AgreesWithBruteForceOnRandomSmallHistories) {
  // [lock.acquire.exclusive] [lock.release.unheld] [lock.kill.waiter] the search against the
  // definition, on 20,000 random histories of up to 9 ops.
  std::mt19937_64 rng(20240611);
  int linearizable = 0, violations = 0;
  for (int round = 0; round < 20000; ++round) {
    const auto ops = random_small_history(rng);
    const bool expected = brute_force_linearizable(ops);
    const auto r = check::check_linearizable<L>(ops);
    ASSERT_NE(r.verdict, Verdict::kUnknown);
    std::string listing;
    for (const auto& o : ops)
      listing += "  #" + std::to_string(o.id) + " " + L::describe(o.op) + " [" +
                 std::to_string(o.invoke_ns) + ", " +
                 (o.return_ns ? std::to_string(*o.return_ns) : "inf") + "]\n";
    ASSERT_EQ(r.verdict == Verdict::kLinearizable, expected) << "round " << round << ":\n"
                                                             << listing << r.explanation;
    if (expected) {
      ++linearizable;
      ASSERT_TRUE(valid_witness(ops, r.longest_prefix)) << listing;
    } else {
      ++violations;
      ASSERT_TRUE(r.failing_op.has_value());
    }
  }
  std::printf("cross-check: %d linearizable, %d not\n", linearizable, violations);
  EXPECT_GT(linearizable, 3000);
  EXPECT_GT(violations, 3000);
}

// ---------------------------------------------------------------------------- budget

TEST(Budget, AdversarialHistoryGivesUnknownNotAVerdict) {
  // [lock.kill.waiter] [lock.kill.holder] a search that cannot finish answers UNKNOWN.
  const auto h = adversarial_history(40);
  const auto start = std::chrono::steady_clock::now();
  const auto r = check::check_history(h, std::chrono::milliseconds(300));
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.verdict, Verdict::kUnknown) << r.summary();
  EXPECT_NE(r.objects[0].explanation.find("time budget"), std::string::npos) << r.summary();
  EXPECT_FALSE(r.objects[0].failing_op.has_value());
  EXPECT_LT(took.count(), 3000.0) << "the budget was not honoured";
  std::printf("adversarial: unknown after %.1f ms (budget 300 ms)\n", took.count());
  // The same shape, small enough to finish, gets the true verdict.
  EXPECT_EQ(check::check_history(adversarial_history(3)).verdict, Verdict::kNotLinearizable);
}

TEST(Budget, MemoryCapGivesUnknown) {
  // [lock.kill.waiter] the memory cap, like the deadline, yields UNKNOWN.
  const auto ops = translate_for_test(adversarial_history(40));
  check::SearchLimits limits;
  limits.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  limits.max_memory_bytes = 4 << 20;
  const auto r = check::check_linearizable<L>(ops, limits);
  EXPECT_EQ(r.verdict, Verdict::kUnknown);
  EXPECT_NE(r.explanation.find("memory cap"), std::string::npos) << r.explanation;
}

// ------------------------------------------------------------------------ performance

// A discrete-event simulation of `actors` processes sharing one lock: blocking, timed and
// non-blocking acquires, with-blocks, the odd stray release, random latencies, hand-off to a
// random waiter. Exactly `n_ops` ops; the lock ends held (the last op makes sure of it), and
// waiters still blocked at the end become `info`, as in a torn-down scenario.
History simulate_lock_history(int n_ops, int actors, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo + 1));
  };
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto latency = [&] { return uniform(200, 3000); };

  enum Kind { kStart, kEffect, kTimeout };
  struct Event {
    std::int64_t t;
    std::uint64_t seq;
    int actor;
    Kind kind;
    std::uint64_t gen;
    bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };
  struct Actor {
    bool holds = false, entered = false, waiting = false;
    int op = -1;
    std::uint64_t gen = 0;
  };
  std::priority_queue<Event, std::vector<Event>, std::greater<>> q;
  std::uint64_t seq = 0;
  std::vector<Actor> a(actors);
  std::vector<int> waiters;
  bool held = false;
  History h;
  h.objects["L"] = "Lock";
  std::int64_t now = 1'000'000'000;

  auto schedule = [&](std::int64_t t, int actor, Kind kind, std::uint64_t gen = 0) {
    q.push(Event{t, seq++, actor, kind, gen});
  };
  auto complete = [&](int actor, OpStatus st, Json value, std::int64_t ret) {
    Operation& o = h.ops[a[actor].op];
    o.status = st;
    if (st == OpStatus::kOk) o.value = std::move(value);
    if (st == OpStatus::kError) {
      o.error_kind = "ValueError";
      o.error_message = "semaphore or lock released too many times";
    }
    o.return_ns = ret;
    a[actor].waiting = false;
    schedule(ret + (a[actor].holds ? uniform(500, 20000) : uniform(0, 20000)), actor, kStart);
  };

  for (int i = 0; i < actors; ++i) schedule(now + uniform(0, 5000), i, kStart);
  while (!q.empty()) {
    const Event e = q.top();
    q.pop();
    now = e.t;
    Actor& me = a[e.actor];
    if (e.kind == kStart) {
      if (static_cast<int>(h.ops.size()) >= n_ops - 1) continue;  // wind down
      Operation o;
      o.id = static_cast<int>(h.ops.size());
      o.process = "a" + std::to_string(e.actor);
      o.object = "L";
      o.invoke_ns = now;
      o.args = Json::object();
      if (me.holds) {
        o.method = me.entered ? "__exit__" : "release";
      } else if (chance(0.02)) {
        o.method = "release";  // a stray release: the Lock has no owner
      } else {
        const double r = std::uniform_real_distribution<double>(0, 1)(rng);
        if (r < 0.25) {
          o.method = "acquire";
          o.args = {{"block", false}};
          if (chance(0.2)) o.args["timeout"] = 5;
        } else if (r < 0.5) {
          o.method = "acquire";
          const double p = std::uniform_real_distribution<double>(0, 1)(rng);
          o.args = {{"block", true},
                    {"timeout", p < 0.05   ? 0.0
                                : p < 0.08 ? -1.0
                                           : uniform(2, 60) * 1e-6}};
        } else if (r < 0.65) {
          o.method = "__enter__";
        } else {
          o.method = "acquire";
          if (chance(0.5)) o.args = {{"block", true}, {"timeout", nullptr}};
        }
      }
      me.op = o.id;
      h.ops.push_back(std::move(o));
      schedule(now + latency(), e.actor, kEffect);
    } else if (e.kind == kEffect) {
      const Operation& o = h.ops[me.op];
      if (o.method == "release" || o.method == "__exit__") {
        me.holds = me.entered = false;
        if (!held) {
          complete(e.actor, OpStatus::kError, nullptr, now + latency());
          continue;
        }
        if (!waiters.empty()) {  // hand the lock to a random waiter, at this very instant
          const std::size_t w = static_cast<std::size_t>(rng() % waiters.size());
          const int winner = waiters[w];
          waiters.erase(waiters.begin() + static_cast<std::ptrdiff_t>(w));
          a[winner].holds = true;
          a[winner].entered = h.ops[a[winner].op].method == "__enter__";
          complete(winner, OpStatus::kOk, true, now + latency());
        } else {
          held = false;
        }
        complete(e.actor, OpStatus::kOk, nullptr, now + latency());
        continue;
      }
      if (!held) {
        held = true;
        me.holds = true;
        me.entered = o.method == "__enter__";
        complete(e.actor, OpStatus::kOk, true, now + latency());
        continue;
      }
      const bool block = o.args.value("block", true);
      const Json timeout = o.args.value("timeout", Json());
      if (!block || (timeout.is_number() && timeout.get<double>() <= 0)) {
        complete(e.actor, OpStatus::kOk, false, now + latency());
        continue;
      }
      me.waiting = true;
      ++me.gen;
      waiters.push_back(e.actor);
      if (timeout.is_number()) {
        const auto deadline = o.invoke_ns + static_cast<std::int64_t>(timeout.get<double>() * 1e9);
        schedule(std::max(deadline, now), e.actor, kTimeout, me.gen);
      }
    } else if (me.waiting && me.gen == e.gen) {  // kTimeout
      waiters.erase(std::find(waiters.begin(), waiters.end(), e.actor));
      complete(e.actor, OpStatus::kOk, false, now + latency());
    }
  }
  // Torn down: blocked waiters' calls have unknown outcomes.
  for (int w : waiters) {
    h.ops[a[w].op].status = OpStatus::kInfo;
    h.ops[a[w].op].return_ns.reset();
  }
  // The last op leaves the lock held: a non-blocking try by an idle actor.
  int idle = 0;
  while (idle < actors && a[idle].waiting) ++idle;
  if (idle == actors) throw std::logic_error("simulation: no idle actor");
  Operation last;
  last.id = static_cast<int>(h.ops.size());
  last.process = "a" + std::to_string(idle);
  last.object = "L";
  last.method = "acquire";
  last.args = {{"block", false}};
  last.status = OpStatus::kOk;
  last.value = !held;
  last.invoke_ns = now + 1000;
  last.return_ns = now + 2000;
  h.ops.push_back(std::move(last));
  return h;
}

// A second oracle for histories too long to brute-force: a plain search over (set, state) by the
// definition (an op may come next when no op outside the set returned strictly before it was
// invoked), memoising failures on the full set. Slow, but shares no code with the checker.
bool reference_linearizable(const std::vector<check::TimedOp<L>>& ops) {
  const std::size_t n = ops.size();
  std::vector<bool> in(n, false);
  std::set<std::pair<std::vector<bool>, bool>> failed;
  std::size_t required = 0;
  for (const auto& o : ops) required += o.return_ns.has_value();
  std::function<bool(L::State, std::size_t)> dfs = [&](L::State s, std::size_t done) {
    if (done == required) return true;
    if (failed.count({in, s.held})) return false;
    std::int64_t horizon = std::numeric_limits<std::int64_t>::max();
    for (std::size_t x = 0; x < n; ++x)
      if (!in[x] && ops[x].return_ns) horizon = std::min(horizon, *ops[x].return_ns);
    for (std::size_t y = 0; y < n; ++y) {
      if (in[y] || ops[y].invoke_ns > horizon) continue;
      for (const auto& t : L::step(s, ops[y].op)) {
        in[y] = true;
        const bool found = dfs(t, done + (ops[y].return_ns ? 1 : 0));
        in[y] = false;
        if (found) return true;
      }
    }
    failed.insert({in, s.held});
    return false;
  };
  return dfs(L::init(), 0);
}

TEST(CrossCheck, AgreesWithReferenceSearchOnMidSizeHistories) {
  // [lock.acquire.exclusive] [lock.acquire.timeout.expires] [lock.release.unheld]
  // [lock.kill.waiter] 150-op simulated histories (several words of bits: the memo's frontier
  // and window cross word boundaries), some with killed calls, most with one outcome flipped.
  std::mt19937_64 rng(99);
  int linearizable = 0, violations = 0;
  for (int round = 0; round < 300; ++round) {
    History h = simulate_lock_history(150, 3 + static_cast<int>(rng() % 6), 1000 + round);
    for (int k = static_cast<int>(rng() % 3); k > 0; --k) {  // kill a few calls
      Operation& o = h.ops[rng() % h.ops.size()];
      o.status = OpStatus::kInfo;
      o.return_ns.reset();
    }
    if (rng() % 4 != 0) {  // flip one outcome
      Operation& o = h.ops[rng() % h.ops.size()];
      if (o.status == OpStatus::kOk && o.value.is_boolean()) {
        o.value = !o.value.get<bool>();
      } else if (o.status == OpStatus::kOk) {
        o.status = OpStatus::kError;
        o.error_kind = "ValueError";
      } else if (o.status == OpStatus::kError) {
        o.status = OpStatus::kOk;
        o.value = nullptr;
      }
    }
    const auto ops = translate_for_test(h);
    const bool expected = reference_linearizable(ops);
    const auto r = check::check_linearizable<L>(ops);
    ASSERT_EQ(r.verdict == Verdict::kLinearizable, expected) << "round " << round << "\n"
                                                             << r.explanation;
    if (expected) {
      ++linearizable;
      ASSERT_TRUE(valid_witness(ops, r.longest_prefix));
    } else {
      ++violations;
    }
  }
  std::printf("mid-size cross-check: %d linearizable, %d not\n", linearizable, violations);
  EXPECT_GT(linearizable, 50);
  EXPECT_GT(violations, 50);
}

TEST(Performance, TenThousandOpsEightActorsUnderOneSecond) {
  // [lock.acquire.exclusive] [lock.acquire.wakes] [lock.acquire.timeout.expires]
  // [lock.acquire.nonblocking] [lock.release.unheld] [lock.context.enter]
  const History h = simulate_lock_history(10000, 8, 42);
  ASSERT_EQ(h.ops.size(), 10000u);
  std::map<std::string, int> shape;
  for (const auto& o : h.ops) {
    const bool gave_up = o.status == OpStatus::kOk && o.value.is_boolean() && !o.value.get<bool>();
    shape[o.method + (o.status == OpStatus::kError  ? " error"
                      : o.status == OpStatus::kInfo ? " info"
                      : gave_up                     ? " false"
                                                    : "")]++;
  }
  for (const auto& [k, v] : shape) std::printf("  %-20s %d\n", k.c_str(), v);
  EXPECT_GT(shape["acquire false"], 500);  // timed-out and non-blocking failures
  EXPECT_GT(shape["release error"], 0);    // stray releases

  const auto start = std::chrono::steady_clock::now();
  const auto r = check::check_history(h, std::chrono::seconds(30));
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  std::printf("checker: %zu ops, 8 actors: %.1f ms\n", h.ops.size(), took.count());
  ASSERT_EQ(r.verdict, Verdict::kLinearizable) << r.summary();
  EXPECT_LT(took.count(), 1000.0);
  EXPECT_TRUE(valid_witness(translate_for_test(h), r.objects[0].longest_prefix));
}

TEST(Performance, MutatedReleaseIsRejected) {
  // [lock.release.held] [lock.release.unheld] one release that succeeded is made to raise
  // ValueError while the lock is held. The lock ends held, so counting successful acquires and
  // releases alone proves the mutated history has no linearization.
  History h = simulate_lock_history(10000, 8, 42);
  std::vector<int> releases;
  for (const auto& o : h.ops)
    if ((o.method == "release" || o.method == "__exit__") && o.status == OpStatus::kOk &&
        o.id > 2500 && o.id < 7500)
      releases.push_back(o.id);
  ASSERT_FALSE(releases.empty());
  std::mt19937_64 rng(7);
  Operation& victim = h.ops[releases[rng() % releases.size()]];
  victim.status = OpStatus::kError;
  victim.value = nullptr;
  victim.error_kind = "ValueError";

  const auto start = std::chrono::steady_clock::now();
  const auto r = check::check_history(h, std::chrono::seconds(60));
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  std::printf("checker: mutated %zu-op history (op #%d) rejected in %.1f ms\n", h.ops.size(),
              victim.id, took.count());
  std::printf("%s", r.summary().substr(0, 1500).c_str());
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable) << r.summary();
  EXPECT_TRUE(r.objects[0].failing_op.has_value());
  EXPECT_GT(r.objects[0].longest_prefix.size(), 1000u);
}

// ------------------------------------------------------------------------- the command

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mpspec-check-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const auto p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  static int run(const std::string& args) {
    const std::string cmd = std::string(MPSPEC_CHECK_EXE) + " " + args + " >/dev/null 2>&1";
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::filesystem::path dir_;
};

TEST_F(Cli, ExitStatusFollowsTheVerdict) {
  // [lock.acquire.exclusive] 0 linearizable, 1 not, 2 unknown, 3 bad input.
  const std::string good = std::string(MPSPEC_FIXTURES_DIR) + "/lock/sequential-ok.json";
  const std::string bad = std::string(MPSPEC_FIXTURES_DIR) + "/lock/two-sequential-holders.json";
  EXPECT_EQ(run(good), 0);
  EXPECT_EQ(run(bad + " --budget-ms 5000"), 1);
  const std::string hard = write("hard.json", adversarial_history(40).to_json().dump());
  EXPECT_EQ(run(hard + " --budget-ms 100"), 2);
  EXPECT_EQ(run(write("junk.json", "{not json")), 3);
  EXPECT_EQ(run(write("wrong.json", R"({"format": "mpspec-history/1", "objects": {"Q": "Nope"},
                                       "ops": []})")),
            3);
  EXPECT_EQ(run(write("noops.json", R"({"format": "mpspec-history/1", "objects": {}})")), 3);
  EXPECT_EQ(run((dir_ / "missing.json").string()), 3);
  EXPECT_EQ(run(good + " --budget-ms soon"), 3);
  EXPECT_EQ(run(""), 3);
}

}  // namespace
}  // namespace mpspec
