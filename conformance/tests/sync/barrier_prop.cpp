// Property test for spec/sync/barrier.md: RapidCheck generates Barrier programs as data (a
// number of parties, an optional counting action, and per party actor a list of waits with
// random timeouts, resets, aborts and attribute reads); the backend runs them, and the Barrier
// invariant checker (conformance/checker/barrier_check.hpp) judges each history, together with
// the attributes' domains and the number of times the action ran.
//
// Exactly `parties` actors wait (the checker's assumption). A program can leave parties
// blocked for ever (their peers have no more waits); when nothing has moved for a while, a
// "drain" actor resets the barrier, which breaks them out (recorded like any other call).
//
// An action is optional for a backend ([protocol.setup.context]: the manager context may answer
// it `Unsupported`), so the test probes it once and generates it only when the backend offers it.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <iostream>
#include <ostream>
#include <sstream>

#include "barrier_check.hpp"
#include "scenario.hpp"

namespace mpspec {
namespace {

enum class BKind { kWait, kReset, kAbort, kNWaiting, kBroken, kParties };
// Timeouts of a wait: none (the default, none here), `huge`, `small`, 0, negative.
enum class BTimeout { kNone, kHuge, kSmall, kZero, kNegative };

struct BStep {
  BKind kind;
  BTimeout timeout;
};

struct BProgram {
  int parties = 2;
  bool action = false;
  std::vector<std::vector<BStep>> actors;  // size == parties
};

const char* method_of(BKind k) {
  switch (k) {
    case BKind::kWait:
      return "wait";
    case BKind::kReset:
      return "reset";
    case BKind::kAbort:
      return "abort";
    case BKind::kNWaiting:
      return "n_waiting";
    case BKind::kBroken:
      return "broken";
    case BKind::kParties:
      return "parties";
  }
  return "?";
}

Json args_of(const BStep& s) {
  if (s.kind != BKind::kWait) return Json::object();
  switch (s.timeout) {
    case BTimeout::kNone:
      return Json::object();
    case BTimeout::kHuge:
      return Json{{"timeout", timing::huge()}};
    case BTimeout::kSmall:
      return Json{{"timeout", timing::small()}};
    case BTimeout::kZero:
      return Json{{"timeout", 0}};
    case BTimeout::kNegative:
      return Json{{"timeout", -1}};
  }
  return Json::object();
}

std::string describe(const BStep& s) {
  if (s.kind != BKind::kWait) return std::string(method_of(s.kind)) + "()";
  static const char* names[] = {"", "timeout=huge", "timeout=small", "timeout=0", "timeout=-1"};
  return std::string("wait(") + names[static_cast<int>(s.timeout)] + ")";
}

std::string describe(const BProgram& p) {
  std::ostringstream os;
  os << "  Barrier(parties=" << p.parties << (p.action ? ", action=S.release" : "") << ")\n";
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
struct Arbitrary<mpspec::BStep> {
  static Gen<mpspec::BStep> arbitrary() {
    using mpspec::BKind;
    using mpspec::BTimeout;
    return gen::apply(
        [](BKind k, BTimeout t) {
          return mpspec::BStep{k, t};
        },
        gen::weightedElement<BKind>({{12, BKind::kWait},
                                     {1, BKind::kReset},
                                     {1, BKind::kAbort},
                                     {1, BKind::kNWaiting},
                                     {1, BKind::kBroken},
                                     {1, BKind::kParties}}),
        gen::weightedElement<BTimeout>({{4, BTimeout::kNone},
                                        {3, BTimeout::kHuge},
                                        {1, BTimeout::kSmall},
                                        {1, BTimeout::kZero},
                                        {1, BTimeout::kNegative}}));
  }
};
}  // namespace rc

namespace mpspec {
namespace {

void showValue(const BProgram& p, std::ostream& os) { os << "Barrier program:\n" << describe(p); }

// Programs of 2 to 4 parties. A Barrier action is optional for a backend (the manager context
// may answer it `Unsupported`, [protocol.setup.context]), so programs have one only when
// `action_supported` (see probe_setup).
rc::Gen<BProgram> gen_program(bool action_supported) {
  auto steps = rc::gen::mapcat(rc::gen::inRange(1, 7), [](int n) {
    return rc::gen::container<std::vector<BStep>>(static_cast<size_t>(n),
                                                  rc::gen::arbitrary<BStep>());
  });
  const rc::Gen<bool> action = action_supported ? rc::gen::arbitrary<bool>() : rc::gen::just(false);
  return rc::gen::mapcat(rc::gen::inRange(2, 5), [steps, action](int parties) {
    return rc::gen::apply(
        [parties](bool a, std::vector<std::vector<BStep>> actors) {
          return BProgram{parties, a, std::move(actors)};
        },
        action,
        rc::gen::container<std::vector<std::vector<BStep>>>(static_cast<size_t>(parties), steps));
  });
}

// The objects of a program: the Semaphore S the action releases, and B.
void add_barrier(Scenario& s, int parties, bool action) {
  s.object("S", "Semaphore", Json{{"value", 0}});
  s.object("B", "Barrier",
           Json{{"parties", parties},
                {"action", action ? Json{{"$call", Json::array({"S", "release"})}} : Json()},
                {"timeout", nullptr}});
}

// Starts (and tears down) a minimal setup with the objects of a program: "" when the backend
// can run it, or why it cannot (an `Unsupported` setup). Any other setup failure throws, which
// fails the test.
std::string probe_setup(bool action) {
  Scenario s;
  add_barrier(s, 2, action);
  s.actor("p0");
  return s.start();
}

// Runs `p` once; returns "" or the description of a violation.
std::string run_program(const BProgram& p) {
  Scenario s;
  add_barrier(s, p.parties, p.action);
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
  std::vector<std::pair<CallId, BKind>> attribute_calls;
  auto issue = [&](size_t i) {
    if (next[i] < p.actors[i].size()) {
      const BStep& st = p.actors[i][next[i]++];
      running[i] = s.call(names[i], "B", method_of(st.kind), args_of(st));
      if (st.kind != BKind::kWait && st.kind != BKind::kReset && st.kind != BKind::kAbort)
        attribute_calls.emplace_back(*running[i], st.kind);
    } else {
      running[i].reset();
    }
  };
  for (size_t i = 0; i < p.actors.size(); ++i) issue(i);

  const double stall = 1.2 * timing::small();
  int drains = 0;
  bool all_done = false;
  for (;;) {
    std::vector<CallId> pending;
    for (const auto& r : running)
      if (r) pending.push_back(*r);
    if (pending.empty()) {
      all_done = true;
      break;
    }
    if (auto done = s.await_any(pending, stall)) {
      for (size_t i = 0; i < running.size(); ++i)
        if (running[i] == *done) issue(i);
      continue;
    }
    if (++drains > 8) break;  // leave the rest blocked: they become `info`
    s.await(s.call("drain", "B", "reset"));
  }
  std::optional<std::int64_t> action_runs;
  if (all_done) {
    const auto& r = s.await(s.call("drain", "S", "get_value"));
    if (r.ok() && r.value.is_number_integer()) action_runs = r.value.get<std::int64_t>();
  }
  s.teardown();

  std::string out;
  const History h = s.history();
  const check::BarrierReport report = check::check_barrier(h, "B", p.parties);
  if (!report.ok) out += report.explanation;
  for (const auto& [id, kind] : attribute_calls) {
    const CallResult& r = s.result(id);
    if (r.status == OpStatus::kInfo) continue;
    const std::string what = std::string(method_of(kind)) + " -> " + r.describe();
    const bool good =
        r.ok() &&
        (kind == BKind::kBroken    ? r.value.is_boolean()
         : kind == BKind::kParties ? r.value == p.parties
                                   : r.value.is_number_integer() && r.value.get<long long>() >= 0 &&
                                         r.value.get<long long>() < p.parties);
    if (!good)
      out += "[barrier.attr.parties] [barrier.attr.n_waiting] [barrier.attr.broken] " + what + "\n";
  }
  // The action: once per completed cycle ([barrier.action.once]).
  bool any_unknown = false;
  for (const auto& o : h.ops)
    if (o.object == "B" && o.status == OpStatus::kInfo) any_unknown = true;
  if (p.action && action_runs && !any_unknown && *action_runs != report.cycles) {
    out += "[barrier.action.once] the action ran " + std::to_string(*action_runs) + " times for " +
           std::to_string(report.cycles) + " completed cycles\n";
  }
  if (!p.action && action_runs && *action_runs != 0) out += "no action, yet S was released\n";
  if (!out.empty()) out += "history: " + s.save_history("barrier-prop") + "\n";
  return out;
}

TEST(BarrierProp, InvariantsHold) {
  MPSPEC_CLAUSES(
      "[barrier.wait.blocks] [barrier.wait.index] [barrier.wait.releases] "
      "[barrier.action.once] [barrier.attr.n_waiting]");
  Backend& b = Backend::get();
  if (!b.has_feature("timeout")) GTEST_SKIP() << "UNSUPPORTED: backend lacks feature 'timeout'";
  for (const char* t : {"Barrier", "Semaphore"})
    if (!b.has_type(t)) GTEST_SKIP() << "UNSUPPORTED: backend lacks type " << t;

  // The Barrier without an action must be supported (UNSUPPORTED otherwise, as MPSPEC_START);
  // an action is optional: without it the programs have none.
  if (const std::string why = probe_setup(false); !why.empty())
    GTEST_SKIP() << "UNSUPPORTED: " << why;
  const std::string why_no_action = probe_setup(true);
  const bool action = why_no_action.empty();
  RecordProperty("barrier_action",
                 action ? std::string("supported") : "unsupported: " + why_no_action);
  std::cout << "Barrier action: "
            << (action ? std::string("supported; programs have one or none")
                       : "unsupported by this backend (" + why_no_action +
                             "); programs have no action")
            << std::endl;

  const rc::Gen<BProgram> programs = gen_program(action);
  auto property = [&programs] {
    const BProgram p = *programs;
    RC_CLASSIFY(p.action, "a Barrier action");
    for (int run = 0; run < 2; ++run) {
      const std::string report = run_program(p);
      if (!report.empty())
        RC_FAIL("run " + std::to_string(run) + " of\n" + describe(p) + "violates:\n" + report);
    }
  };
  const bool ok = rc::check("BarrierProp/InvariantsHold", property);
  EXPECT_TRUE(ok) << "see the counterexample above (seed and reproduce string at the end)";
}

}  // namespace
}  // namespace mpspec
