// Property tests for spec/queue/queue.md, joinable_queue.md and simple_queue.md: RapidCheck
// generates multi-actor programs on one queue as data, the backend runs them, and the checkers
// of conformance/checker/queue_check.hpp judge each history:
//
//   *Prop.HistoriesAreLinearizable  strict: the FIFO model (with the count of unfinished tasks
//                                    for a JoinableQueue), maxsize declared by the test;
//   *Prop.CoreInvariantsHold         core: no duplication, no invention, per-producer order,
//                                    bounded occupancy and legal Full (queue.md §6, §10).
//
// A program is a list of calls per actor, every actor running its list at the same time. Every
// put carries a value of its own ([actor, step]), so each value names one item. Blocking calls
// can leave an actor waiting for ever (a get on an empty queue, a put on a full one, a join on a
// positive count); when nothing has moved for a while a "drain" actor makes room: a get_nowait,
// a put_nowait of a value of its own and, for a JoinableQueue, a task_done (a SimpleQueue: one
// put). Its calls are recorded and judged like the others. Calls still running at the end
// become `info` at teardown.
//
// Each property runs at most kPrograms programs (fewer with RC_PARAMS=max_success=N), and stops
// at its first failing run: runs are nondeterministic, so shrinking would mostly replay passing
// programs; the failing history is saved and printed instead.
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "queue_check.hpp"
#include "scenario.hpp"

namespace mpspec {
namespace {

constexpr int kPrograms = 40;

enum class Kind {
  kPut,         // put(v): blocks while full
  kPutNowait,   // put_nowait(v)
  kPutTimed,    // put(v, timeout=yield)
  kGet,         // get(): blocks while empty
  kGetNowait,   // get_nowait()
  kGetTimed,    // get(timeout=yield)
  kQsize,
  kEmpty,
  kFull,
  kTaskDone,    // JoinableQueue
  kJoin,        // JoinableQueue: blocks while the count is positive
};

enum class Type { kQueue, kJoinable, kSimple };

struct Program {
  Type type = Type::kQueue;
  int maxsize = 1;  // Queue and JoinableQueue
  std::vector<std::vector<Kind>> actors;
};

const char* type_name(Type t) {
  switch (t) {
    case Type::kQueue: return "Queue";
    case Type::kJoinable: return "JoinableQueue";
    case Type::kSimple: return "SimpleQueue";
  }
  return "?";
}

const char* method_of(Kind k) {
  switch (k) {
    case Kind::kPut:
    case Kind::kPutTimed: return "put";
    case Kind::kPutNowait: return "put_nowait";
    case Kind::kGet:
    case Kind::kGetTimed: return "get";
    case Kind::kGetNowait: return "get_nowait";
    case Kind::kQsize: return "qsize";
    case Kind::kEmpty: return "empty";
    case Kind::kFull: return "full";
    case Kind::kTaskDone: return "task_done";
    case Kind::kJoin: return "join";
  }
  return "?";
}

std::string describe(Kind k) {
  switch (k) {
    case Kind::kPut: return "put(v)";
    case Kind::kPutNowait: return "put_nowait(v)";
    case Kind::kPutTimed: return "put(v, timeout=yield)";
    case Kind::kGet: return "get()";
    case Kind::kGetNowait: return "get_nowait()";
    case Kind::kGetTimed: return "get(timeout=yield)";
    default: return std::string(method_of(k)) + "()";
  }
}

std::string describe(const Program& p) {
  std::ostringstream os;
  os << "  " << type_name(p.type);
  if (p.type != Type::kSimple) os << "(maxsize=" << p.maxsize << ")";
  os << "\n";
  for (std::size_t i = 0; i < p.actors.size(); ++i) {
    os << "  p" << i << ":";
    for (Kind k : p.actors[i]) os << " " << describe(k) << ";";
    os << "\n";
  }
  return os.str();
}

void showValue(const Program& p, std::ostream& os) { os << "queue program:\n" << describe(p); }

Json args_of(Kind k, const Json& value) {
  switch (k) {
    case Kind::kPut: return Json{{"obj", value}};
    case Kind::kPutNowait: return Json{{"obj", value}};
    case Kind::kPutTimed: return Json{{"obj", value}, {"timeout", timing::yield()}};
    case Kind::kGetTimed: return Json{{"timeout", timing::yield()}};
    default: return Json::object();
  }
}

bool is_put(Kind k) { return k == Kind::kPut || k == Kind::kPutNowait || k == Kind::kPutTimed; }

rc::Gen<Kind> gen_kind(Type t) {
  switch (t) {
    case Type::kSimple:
      return rc::gen::weightedElement<Kind>({{4, Kind::kPut}, {3, Kind::kGet}, {1, Kind::kEmpty}});
    case Type::kJoinable:
      return rc::gen::weightedElement<Kind>(
          {{3, Kind::kPut}, {2, Kind::kPutNowait}, {1, Kind::kPutTimed}, {3, Kind::kGet},
           {2, Kind::kGetNowait}, {1, Kind::kGetTimed}, {1, Kind::kQsize}, {1, Kind::kEmpty},
           {1, Kind::kFull}, {3, Kind::kTaskDone}, {1, Kind::kJoin}});
    case Type::kQueue:
      break;
  }
  return rc::gen::weightedElement<Kind>(
      {{3, Kind::kPut}, {2, Kind::kPutNowait}, {1, Kind::kPutTimed}, {3, Kind::kGet},
       {2, Kind::kGetNowait}, {1, Kind::kGetTimed}, {1, Kind::kQsize}, {1, Kind::kEmpty},
       {1, Kind::kFull}});
}

rc::Gen<Program> gen_program(Type t) {
  auto steps = rc::gen::mapcat(rc::gen::inRange(1, 7), [t](int n) {
    return rc::gen::container<std::vector<Kind>>(static_cast<std::size_t>(n), gen_kind(t));
  });
  auto actors = rc::gen::mapcat(rc::gen::inRange(2, 5), [steps](int n) {
    return rc::gen::container<std::vector<std::vector<Kind>>>(static_cast<std::size_t>(n), steps);
  });
  return rc::gen::apply(
      [t](int maxsize, std::vector<std::vector<Kind>> a) {
        return Program{t, maxsize, std::move(a)};
      },
      rc::gen::inRange(1, 4), actors);
}

// Runs `p` once and gives its history (the scenario torn down) to `judge`, which returns a report
// of what is wrong, or "" when nothing is; a report gets the path of the saved history.
std::string run_program(const Program& p,
                        const std::function<std::string(const History&)>& judge) {
  Scenario s;
  Json args = Json::object();
  if (p.type != Type::kSimple) args["maxsize"] = p.maxsize;
  s.object("Q", type_name(p.type), args);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < p.actors.size(); ++i) {
    names.push_back("p" + std::to_string(i));
    s.actor(names.back());
  }
  s.actor("drain");
  const std::string why = s.start();
  if (!why.empty()) throw std::runtime_error("UNSUPPORTED: " + why);

  std::vector<std::size_t> next(p.actors.size(), 0);
  std::vector<std::optional<CallId>> running(p.actors.size());
  auto issue = [&](std::size_t i) {
    if (next[i] < p.actors[i].size()) {
      const std::size_t step = next[i]++;
      const Kind k = p.actors[i][step];
      const Json value = Json::array({names[i], static_cast<int>(step)});
      running[i] = s.call(names[i], "Q", method_of(k), args_of(k, value));
    } else {
      running[i].reset();
    }
  };
  for (std::size_t i = 0; i < p.actors.size(); ++i) issue(i);

  // Longer than the longest timed call, so that a stall usually means that only blocking calls
  // are left; an early drain is harmless (judged like every other call).
  const double stall = 4 * timing::yield();
  int drains = 0;
  for (;;) {
    std::vector<CallId> pending;
    for (const auto& r : running)
      if (r) pending.push_back(*r);
    if (pending.empty()) break;
    if (auto done = s.await_any(pending, stall)) {
      for (std::size_t i = 0; i < running.size(); ++i)
        if (running[i] == *done) issue(i);
      continue;
    }
    if (++drains > 6) break;  // leave the rest blocked: they become `info`
    const Json filler = Json::array({"drain", drains});
    if (p.type == Type::kSimple) {
      s.await(s.call("drain", "Q", "put", Json{{"obj", filler}}));
      continue;
    }
    s.await(s.call("drain", "Q", "get_nowait"));
    s.await(s.call("drain", "Q", "put_nowait", Json{{"obj", filler}}));
    if (p.type == Type::kJoinable) s.await(s.call("drain", "Q", "task_done"));
  }
  s.teardown();
  std::string report = judge(s.history());
  if (!report.empty()) report += "\n  history saved: " + s.save_history();
  return report;
}

// rc::check with at most kPrograms programs (unless RC_PARAMS asks to reproduce a failure).
template <typename Testable>
bool check_bounded(const std::string& name, Testable&& testable) {
  const char* env = std::getenv("RC_PARAMS");
  if (env != nullptr && std::string(env).find("reproduce") != std::string::npos)
    return rc::check(name, std::forward<Testable>(testable));
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.maxSuccess = std::min(params.maxSuccess, kPrograms);
  std::cerr << "\n- " << name << " (at most " << params.maxSuccess << " programs)\n";
  rc::detail::TestMetadata metadata;
  metadata.id = name;
  metadata.description = name;
  const auto result =
      rc::detail::checkTestable(std::forward<Testable>(testable), metadata, params);
  rc::detail::printResultMessage(result, std::cerr);
  std::cerr << "\n";
  return result.template is<rc::detail::SuccessResult>();
}

std::optional<std::int64_t> maxsize_of(const Program& p) {
  if (p.type == Type::kSimple) return std::nullopt;
  return p.maxsize;
}

bool backend_offers(Type t, bool needs_nonblocking) {
  Backend& b = Backend::get();
  if (!b.has_type(type_name(t))) return false;
  if (needs_nonblocking && !(b.has_feature("nonblocking") && b.has_feature("timeout"))) return false;
  return true;
}

// The strict property of type `t`: every history is linearizable for the program's maxsize.
void histories_are_linearizable(Type t) {
  if (!backend_offers(t, t != Type::kSimple))
    GTEST_SKIP() << "UNSUPPORTED: backend lacks " << type_name(t) << " or nonblocking/timeout";
  const std::string name = std::string(type_name(t)) + "Prop/HistoriesAreLinearizable";
  bool failed = false;  // stop at the first failing run (see the top of this file)
  std::string first_report;
  const bool ok = check_bounded(name, [&] {
    if (failed) RC_DISCARD("a run failed already");
    const Program p = *gen_program(t);
    bool unknown = false;
    const std::string report = run_program(p, [&](const History& h) -> std::string {
      const auto r = check::check_queue_linearizable(h, "Q", {.maxsize = maxsize_of(p)});
      unknown = r.verdict == check::Verdict::kUnknown;
      return r.verdict == check::Verdict::kNotLinearizable ? r.explanation : std::string();
    });
    if (unknown) RC_DISCARD("checker budget exhausted");
    if (!report.empty()) {
      failed = true;
      first_report = describe(p) + report;
      std::cerr << "[" << name << "] not linearizable:\n" << first_report << "\n";
      RC_FAIL("not linearizable:\n" + first_report);
    }
  });
  EXPECT_TRUE(ok) << "a history was not linearizable:\n" << first_report;
}

// The core property of type `t`: the invariants of queue.md §6.
void core_invariants_hold(Type t) {
  if (!backend_offers(t, t != Type::kSimple))
    GTEST_SKIP() << "UNSUPPORTED: backend lacks " << type_name(t) << " or nonblocking/timeout";
  const std::string name = std::string(type_name(t)) + "Prop/CoreInvariantsHold";
  bool failed = false;
  std::string first_report;
  const bool ok = check_bounded(name, [&] {
    if (failed) RC_DISCARD("a run failed already");
    const Program p = *gen_program(t);
    const std::string report = run_program(p, [&](const History& h) -> std::string {
      check::QueueCheckOptions options;
      options.maxsize = maxsize_of(p);
      const check::QueueReport r = check::check_queue_invariants(h, "Q", options);
      return r.ok ? std::string() : r.explanation;
    });
    if (!report.empty()) {
      failed = true;
      first_report = describe(p) + report;
      std::cerr << "[" << name << "] invariants violated:\n" << first_report << "\n";
      RC_FAIL("invariants violated:\n" + first_report);
    }
  });
  EXPECT_TRUE(ok) << "a history broke the core invariants:\n" << first_report;
}

TEST(QueueProp, HistoriesAreLinearizable) {
  MPSPEC_CLAUSES("[queue.linearizable] [queue.size.exact] [queue.order.fifo]");
  histories_are_linearizable(Type::kQueue);
}

TEST(QueueProp, CoreInvariantsHold) {
  MPSPEC_CLAUSES(
      "[queue.capacity.bound] [queue.capacity.full_legal] [queue.no_duplication]"
      " [queue.no_invention] [queue.order.producer]");
  core_invariants_hold(Type::kQueue);
}

TEST(JoinableQueueProp, HistoriesAreLinearizable) {
  MPSPEC_CLAUSES("[joinable_queue.linearizable] [joinable_queue.queue.strict]");
  histories_are_linearizable(Type::kJoinable);
}

TEST(SimpleQueueProp, HistoriesAreLinearizable) {
  MPSPEC_CLAUSES("[simple_queue.linearizable]");
  histories_are_linearizable(Type::kSimple);
}

TEST(SimpleQueueProp, CoreInvariantsHold) {
  MPSPEC_CLAUSES(
      "[simple_queue.no_invention] [simple_queue.no_duplication] [simple_queue.order.producer]");
  core_invariants_hold(Type::kSimple);
}

}  // namespace
}  // namespace mpspec
