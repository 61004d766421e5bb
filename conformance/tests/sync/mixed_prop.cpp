// A property mixing types in one program: an Event and a Lock shared by the same actors. The
// checker partitions the history by object and judges each against its own model, so one
// program exercises both models and the per-object partitioning of the checker.
//
// Each actor runs its calls one after another, all at once. When nothing has moved for a
// while (blocking acquires, untimed waits), a "drain" actor sets E and releases L (recorded and
// judged like any other call; a drain's release of a free lock raises ValueError, which the
// Lock model allows).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <ostream>
#include <sstream>

#include "scenario.hpp"

namespace mpspec {
namespace {

enum class Op {
  kAcquire,
  kTryAcquire,
  kTimedAcquire,
  kRelease,
  kIsSet,
  kSet,
  kClear,
  kWait,
  kTimedWait
};

struct Step {
  Op op;
};

struct Program {
  std::vector<std::vector<Step>> actors;
};

struct Call {
  const char* object;
  const char* method;
  Json args;
  std::string text;
};

Call call_of(const Step& s) {
  switch (s.op) {
    case Op::kAcquire:
      return {"L", "acquire", Json::object(), "L.acquire()"};
    case Op::kTryAcquire:
      return {"L", "acquire", Json{{"block", false}}, "L.acquire(block=False)"};
    case Op::kTimedAcquire:
      return {"L", "acquire", Json{{"timeout", timing::yield()}}, "L.acquire(timeout=yield)"};
    case Op::kRelease:
      return {"L", "release", Json::object(), "L.release()"};
    case Op::kIsSet:
      return {"E", "is_set", Json::object(), "E.is_set()"};
    case Op::kSet:
      return {"E", "set", Json::object(), "E.set()"};
    case Op::kClear:
      return {"E", "clear", Json::object(), "E.clear()"};
    case Op::kWait:
      return {"E", "wait", Json::object(), "E.wait()"};
    case Op::kTimedWait:
      return {"E", "wait", Json{{"timeout", timing::yield()}}, "E.wait(timeout=yield)"};
  }
  return {"?", "?", Json::object(), "?"};
}

std::string describe(const Program& p) {
  std::ostringstream os;
  for (size_t i = 0; i < p.actors.size(); ++i) {
    os << "  p" << i << ":";
    for (const auto& s : p.actors[i]) os << " " << call_of(s).text << ";";
    os << "\n";
  }
  return os.str();
}

}  // namespace
}  // namespace mpspec

namespace rc {
template <>
struct Arbitrary<mpspec::Program> {
  static Gen<mpspec::Program> arbitrary() {
    using mpspec::Op;
    auto step = gen::map(gen::weightedElement<Op>({{1, Op::kAcquire},
                                                   {2, Op::kTryAcquire},
                                                   {2, Op::kTimedAcquire},
                                                   {3, Op::kRelease},
                                                   {2, Op::kIsSet},
                                                   {2, Op::kSet},
                                                   {2, Op::kClear},
                                                   {1, Op::kWait},
                                                   {2, Op::kTimedWait}}),
                         [](Op o) { return mpspec::Step{o}; });
    auto steps = gen::mapcat(gen::inRange(1, 7), [step](int n) {
      return gen::container<std::vector<mpspec::Step>>(static_cast<size_t>(n), step);
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

void showValue(const Program& p, std::ostream& os) {
  os << "Event + Lock program:\n" << describe(p);
}

check::Result run_program(const Program& p, std::string& report) {
  Scenario s;
  s.object("E", "Event").object("L", "Lock");
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
      const Call c = call_of(p.actors[i][next[i]++]);
      running[i] = s.call(names[i], c.object, c.method, c.args);
    } else {
      running[i].reset();
    }
  };
  for (size_t i = 0; i < p.actors.size(); ++i) issue(i);
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
    s.await(s.call("drain", "L", "release"));
  }
  s.teardown();
  check::Result r = s.check();
  if (r.verdict != check::Verdict::kLinearizable) report = r.summary();
  return r;
}

TEST(MixedProp, EventAndLockHistoriesAreLinearizable) {
  MPSPEC_CLAUSES("[event.linearizable] [lock.acquire.exclusive]");
  Backend& b = Backend::get();
  for (const char* f : {"nonblocking", "timeout"})
    if (!b.has_feature(f)) GTEST_SKIP() << "UNSUPPORTED: backend lacks feature '" << f << "'";
  for (const char* t : {"Event", "Lock"})
    if (!b.has_type(t)) GTEST_SKIP() << "UNSUPPORTED: backend lacks type " << t;

  const bool ok = rc::check("MixedProp/EventAndLockHistoriesAreLinearizable", [](const Program& p) {
    std::string report;
    check::Result r = run_program(p, report);
    if (r.verdict == check::Verdict::kUnknown) RC_DISCARD("checker budget exhausted");
    if (r.verdict == check::Verdict::kNotLinearizable)
      RC_FAIL("program\n" + describe(p) + "is not linearizable:\n" + report);
  });
  EXPECT_TRUE(ok) << "see the counterexample above (seed and reproduce string at the end)";
}

}  // namespace
}  // namespace mpspec
