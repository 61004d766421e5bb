// Property test for spec/sync/condition.md: RapidCheck generates multi-actor Condition programs
// as data, the backend runs them, and the invariant checker (condition_check.hpp) judges each
// history: at most n woken per notify(n), no lost wake-up, and wait returning with the lock.
//
// A program is a list of blocks per actor; a block takes the lock, makes one call (a wait with
// some timeout, notify(n) or notify_all) and releases the lock. Untimed waits may block for
// ever, so when nothing has moved for a while a "drain" actor runs the block
// acquire / notify_all / release (recorded and judged like every other call).
//
// The Condition is the default one (over an RLock) or one over a given Lock. The latter is
// optional for a backend ([protocol.setup.context]: the manager context may answer it
// `Unsupported`), so the test probes it once and generates it only when the backend offers it.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <deque>
#include <iostream>
#include <ostream>
#include <sstream>

#include "condition_check.hpp"
#include "scenario.hpp"

namespace mpspec {
namespace {

enum class Kind { kWait, kNotify, kNotifyAll };
enum class TimeoutClass { kNone, kZero, kYield, kSmall };

struct Block {
  Kind kind;
  TimeoutClass timeout;  // wait
  int n;                 // notify
};

struct Program {
  bool over_lock;  // Condition(Lock()) instead of the default RLock
  std::vector<std::vector<Block>> actors;
};

const char* timeout_name(TimeoutClass t) {
  static const char* names[] = {"None", "0", "yield", "small"};
  return names[static_cast<int>(t)];
}

std::string describe(const Block& b) {
  switch (b.kind) {
    case Kind::kWait:
      return std::string("wait(") + timeout_name(b.timeout) + ")";
    case Kind::kNotify:
      return "notify(" + std::to_string(b.n) + ")";
    case Kind::kNotifyAll:
      return "notify_all()";
  }
  return "?";
}

std::string describe(const Program& p) {
  std::ostringstream os;
  os << "  Condition(" << (p.over_lock ? "Lock()" : "") << "); each block is "
     << "acquire / call / release\n";
  for (size_t i = 0; i < p.actors.size(); ++i) {
    os << "  p" << i << ":";
    for (const auto& b : p.actors[i]) os << " " << describe(b) << ";";
    os << "\n";
  }
  return os.str();
}

std::pair<std::string, Json> call_of(const Block& b) {
  switch (b.kind) {
    case Kind::kWait: {
      Json t = nullptr;
      if (b.timeout == TimeoutClass::kZero) t = 0.0;
      if (b.timeout == TimeoutClass::kYield) t = timing::yield();
      if (b.timeout == TimeoutClass::kSmall) t = timing::small();
      return {"wait", Json{{"timeout", t}}};
    }
    case Kind::kNotify:
      return {"notify", Json{{"n", b.n}}};
    case Kind::kNotifyAll:
      return {"notify_all", Json::object()};
  }
  return {"?", Json::object()};
}

}  // namespace
}  // namespace mpspec

namespace rc {
template <>
struct Arbitrary<mpspec::Block> {
  static Gen<mpspec::Block> arbitrary() {
    using mpspec::Kind;
    using mpspec::TimeoutClass;
    return gen::apply(
        [](Kind k, TimeoutClass t, int n) {
          return mpspec::Block{k, t, n};
        },
        gen::weightedElement<Kind>({{5, Kind::kWait}, {4, Kind::kNotify}, {1, Kind::kNotifyAll}}),
        gen::weightedElement<TimeoutClass>({{3, TimeoutClass::kNone},
                                            {1, TimeoutClass::kZero},
                                            {1, TimeoutClass::kYield},
                                            {2, TimeoutClass::kSmall}}),
        gen::inRange(0, 4));
  }
};
}  // namespace rc

namespace mpspec {
namespace {

void showValue(const Program& p, std::ostream& os) { os << "Condition program:\n" << describe(p); }

// Programs of 2 to 4 actors. A Condition over a given Lock is optional for a backend (the
// manager context may answer it `Unsupported`, [protocol.setup.context]), so programs use it
// only when `over_lock_supported` (see probe_setup); otherwise the default RLock.
rc::Gen<Program> gen_program(bool over_lock_supported) {
  auto blocks = rc::gen::mapcat(rc::gen::inRange(1, 5), [](int n) {
    return rc::gen::container<std::vector<Block>>(static_cast<size_t>(n),
                                                  rc::gen::arbitrary<Block>());
  });
  const rc::Gen<bool> over_lock =
      over_lock_supported ? rc::gen::arbitrary<bool>() : rc::gen::just(false);
  return rc::gen::mapcat(rc::gen::inRange(2, 5), [blocks, over_lock](int actors) {
    return rc::gen::apply(
        [](bool o, std::vector<std::vector<Block>> a) {
          return Program{o, std::move(a)};
        },
        over_lock,
        rc::gen::container<std::vector<std::vector<Block>>>(static_cast<size_t>(actors), blocks));
  });
}

// The objects of a program: C, over L when `over_lock`.
void add_condition(Scenario& s, bool over_lock) {
  if (over_lock) {
    s.object("L", "Lock");
    s.object("C", "Condition", Json{{"lock", Json{{"$ref", "L"}}}});
  } else {
    s.object("C", "Condition", Json{{"lock", nullptr}});
  }
}

// Starts (and tears down) a minimal setup with the objects of a program: "" when the backend
// can run it, or why it cannot (an `Unsupported` setup). Any other setup failure throws, which
// fails the test.
std::string probe_setup(bool over_lock) {
  Scenario s;
  add_condition(s, over_lock);
  s.actor("p0");
  return s.start();
}

check::ConditionResult run_program(const Program& p) {
  Scenario s;
  add_condition(s, p.over_lock);
  // Actor i runs its blocks as a queue of calls; the last "actor" is the drain.
  struct Queue {
    std::string name;
    std::deque<std::pair<std::string, Json>> calls;
    std::optional<CallId> running;
  };
  std::vector<Queue> q;
  for (size_t i = 0; i < p.actors.size(); ++i) {
    Queue a{"p" + std::to_string(i), {}, std::nullopt};
    for (const Block& b : p.actors[i]) {
      a.calls.emplace_back("acquire", Json::object());
      a.calls.push_back(call_of(b));
      a.calls.emplace_back("release", Json::object());
    }
    q.push_back(std::move(a));
  }
  q.push_back(Queue{"drain", {}, std::nullopt});
  for (const auto& a : q) s.actor(a.name);
  const std::string why = s.start();
  if (!why.empty()) throw std::runtime_error("UNSUPPORTED: " + why);

  auto issue = [&](Queue& a) {
    if (a.calls.empty()) {
      a.running.reset();
      return;
    }
    auto [method, args] = a.calls.front();
    a.calls.pop_front();
    a.running = s.call(a.name, "C", method, args);
  };
  for (auto& a : q) issue(a);
  const double stall = 1.5 * timing::small();
  int drains = 0;
  for (;;) {
    std::vector<CallId> pending;
    for (const auto& a : q)
      if (a.running) pending.push_back(*a.running);
    if (pending.empty()) break;
    if (auto done = s.await_any(pending, stall)) {
      for (auto& a : q)
        if (a.running == *done) issue(a);
      continue;
    }
    Queue& drain = q.back();
    if (drain.running || ++drains > 6) break;  // a drain that cannot get the lock: give up
    drain.calls = {
        {"acquire", Json::object()}, {"notify_all", Json::object()}, {"release", Json::object()}};
    issue(drain);
  }
  s.teardown();
  auto r = check::check_condition(s.history(), "C");
  if (r.verdict == check::Verdict::kNotLinearizable)
    r.explanation += "\nhistory saved at " + s.save_history("-condition");
  return r;
}

TEST(ConditionProp, InvariantsHold) {
  MPSPEC_CLAUSES(
      "[condition.notify.at_most_n] [condition.notify.no_lost_wakeup] "
      "[condition.wait.reacquires] [condition.wait.releases] [condition.notify_all]");
  Backend& b = Backend::get();
  if (!b.has_feature("timeout")) GTEST_SKIP() << "UNSUPPORTED: backend lacks feature 'timeout'";
  for (const char* t : {"Condition", "Lock"})
    if (!b.has_type(t)) GTEST_SKIP() << "UNSUPPORTED: backend lacks type " << t;

  // The default Condition must be supported (UNSUPPORTED otherwise, as MPSPEC_START); a
  // Condition over a given Lock is optional: without it the programs use the default RLock only.
  if (const std::string why = probe_setup(false); !why.empty())
    GTEST_SKIP() << "UNSUPPORTED: " << why;
  const std::string why_not_over_lock = probe_setup(true);
  const bool over_lock = why_not_over_lock.empty();
  RecordProperty("condition_over_lock",
                 over_lock ? std::string("supported") : "unsupported: " + why_not_over_lock);
  std::cout << "Condition over a given lock: "
            << (over_lock ? std::string("supported; programs use it and the default RLock")
                          : "unsupported by this backend (" + why_not_over_lock +
                                "); programs use the default RLock only")
            << std::endl;

  const rc::Gen<Program> programs = gen_program(over_lock);
  const bool ok = rc::check("ConditionProp/InvariantsHold", [&programs] {
    const Program p = *programs;
    RC_CLASSIFY(p.over_lock, "Condition over a given Lock");
    // One run per program (a program takes about 0.15 s; RapidCheck's 100 programs keep the
    // property near 25 s): the invariants make each run count.
    for (int run = 0; run < 1; ++run) {
      const auto r = run_program(p);
      if (r.verdict == check::Verdict::kUnknown) RC_DISCARD("checker budget exhausted");
      if (r.verdict == check::Verdict::kNotLinearizable)
        RC_FAIL("run " + std::to_string(run) + " of\n" + describe(p) + "breaks an invariant:\n" +
                r.explanation);
    }
  });
  EXPECT_TRUE(ok) << "see the counterexample above (seed and reproduce string at the end)";
}

}  // namespace
}  // namespace mpspec
