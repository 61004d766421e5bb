// Property test for spec/sync/event.md: RapidCheck generates multi-actor Event programs as data,
// the backend runs them, and the checker judges each history against the Event model.
//
// Each actor runs its calls one after another, all actors at once. An untimed wait may block
// for ever, so when nothing has moved for a while a "drain" actor sets the event (recorded and
// judged like any other call). Calls still running at the end become `info`.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <ostream>
#include <sstream>

#include "scenario.hpp"

namespace mpspec {
namespace {

enum class Kind { kIsSet, kSet, kClear, kWait };
enum class TimeoutClass { kNone, kZero, kNegative, kYield, kSmall };

struct Step {
  Kind kind;
  TimeoutClass timeout;
};

struct Program {
  std::vector<std::vector<Step>> actors;
};

std::string describe(const Step& s) {
  static const char* timeouts[] = {"None", "0", "-1", "yield", "small"};
  switch (s.kind) {
    case Kind::kIsSet:
      return "is_set()";
    case Kind::kSet:
      return "set()";
    case Kind::kClear:
      return "clear()";
    case Kind::kWait:
      return std::string("wait(timeout=") + timeouts[static_cast<int>(s.timeout)] + ")";
  }
  return "?";
}

const char* method_of(const Step& s) {
  switch (s.kind) {
    case Kind::kIsSet:
      return "is_set";
    case Kind::kSet:
      return "set";
    case Kind::kClear:
      return "clear";
    case Kind::kWait:
      return "wait";
  }
  return "?";
}

Json args_of(const Step& s) {
  if (s.kind != Kind::kWait) return Json::object();
  switch (s.timeout) {
    case TimeoutClass::kNone:
      return Json{{"timeout", nullptr}};
    case TimeoutClass::kZero:
      return Json{{"timeout", 0.0}};
    case TimeoutClass::kNegative:
      return Json{{"timeout", -1.0}};
    case TimeoutClass::kYield:
      return Json{{"timeout", timing::yield()}};
    case TimeoutClass::kSmall:
      return Json{{"timeout", timing::small()}};
  }
  return Json::object();
}

std::string describe(const Program& p) {
  std::ostringstream os;
  for (size_t i = 0; i < p.actors.size(); ++i) {
    os << "  p" << i << ":";
    for (const auto& s : p.actors[i]) os << " " << describe(s) << ";";
    os << "\n";
  }
  return os.str();
}

}  // namespace
}  // namespace mpspec

namespace rc {
template <>
struct Arbitrary<mpspec::Step> {
  static Gen<mpspec::Step> arbitrary() {
    using mpspec::Kind;
    using mpspec::TimeoutClass;
    return gen::apply(
        [](Kind k, TimeoutClass t) {
          return mpspec::Step{k, t};
        },
        gen::weightedElement<Kind>(
            {{2, Kind::kIsSet}, {3, Kind::kSet}, {3, Kind::kClear}, {4, Kind::kWait}}),
        gen::weightedElement<TimeoutClass>({{1, TimeoutClass::kNone},
                                            {2, TimeoutClass::kZero},
                                            {1, TimeoutClass::kNegative},
                                            {2, TimeoutClass::kYield},
                                            {2, TimeoutClass::kSmall}}));
  }
};
template <>
struct Arbitrary<mpspec::Program> {
  static Gen<mpspec::Program> arbitrary() {
    auto steps = gen::mapcat(gen::inRange(1, 7), [](int n) {
      return gen::container<std::vector<mpspec::Step>>(static_cast<size_t>(n),
                                                       gen::arbitrary<mpspec::Step>());
    });
    return gen::mapcat(gen::inRange(2, 5), [steps](int actors) {
      return gen::map(
          gen::container<std::vector<std::vector<mpspec::Step>>>(static_cast<size_t>(actors),
                                                                 steps),
          [](std::vector<std::vector<mpspec::Step>> a) { return mpspec::Program{std::move(a)}; });
    });
  }
};
}  // namespace rc

namespace mpspec {
namespace {

void showValue(const Program& p, std::ostream& os) { os << "Event program:\n" << describe(p); }

check::Result run_program(const Program& p, std::string& report) {
  Scenario s;
  s.object("E", "Event");
  std::vector<std::string> names;
  for (size_t i = 0; i < p.actors.size(); ++i) {
    names.push_back("p" + std::to_string(i));
    s.actor(names.back());
  }
  s.actor("drain");
  const std::string why = s.start();
  if (!why.empty()) throw std::runtime_error("UNSUPPORTED: " + why);

  std::vector<size_t> next(p.actors.size(), 0);
  std::vector<std::optional<CallId>> running(p.actors.size());
  auto issue = [&](size_t i) {
    if (next[i] < p.actors[i].size()) {
      const Step& st = p.actors[i][next[i]++];
      running[i] = s.call(names[i], "E", method_of(st), args_of(st));
    } else {
      running[i].reset();
    }
  };
  for (size_t i = 0; i < p.actors.size(); ++i) issue(i);
  // A little longer than the longest timed wait: a stall then usually means untimed waits on
  // a clear event. An early drain is harmless: it is judged like every other call.
  const double stall = 1.5 * timing::small();
  int drains = 0;
  for (;;) {
    std::vector<CallId> pending;
    for (const auto& r : running)
      if (r) pending.push_back(*r);
    if (pending.empty()) break;
    if (auto done = s.await_any(pending, stall)) {
      for (size_t i = 0; i < running.size(); ++i)
        if (running[i] == *done) issue(i);
      continue;
    }
    if (++drains > 6) break;
    s.await(s.call("drain", "E", "set"));
  }
  s.teardown();
  check::Result r = s.check();
  if (r.verdict != check::Verdict::kLinearizable) report = r.summary();
  return r;
}

TEST(EventProp, HistoriesAreLinearizable) {
  MPSPEC_CLAUSES(
      "[event.linearizable] [event.wait.result] [event.wait.wakes] [event.set] "
      "[event.clear] [event.is_set]");
  Backend& b = Backend::get();
  if (!b.has_feature("timeout")) GTEST_SKIP() << "UNSUPPORTED: backend lacks feature 'timeout'";
  if (!b.has_type("Event")) GTEST_SKIP() << "UNSUPPORTED: backend lacks type Event";

  const bool ok = rc::check("EventProp/HistoriesAreLinearizable", [](const Program& p) {
    for (int run = 0; run < 2; ++run) {
      std::string report;
      check::Result r = run_program(p, report);
      if (r.verdict == check::Verdict::kUnknown) RC_DISCARD("checker budget exhausted");
      if (r.verdict == check::Verdict::kNotLinearizable) {
        RC_FAIL("[event.linearizable] run " + std::to_string(run) + " of\n" + describe(p) +
                "is not linearizable:\n" + report);
      }
    }
  });
  EXPECT_TRUE(ok) << "see the counterexample above (seed and reproduce string at the end)";
}

}  // namespace
}  // namespace mpspec
