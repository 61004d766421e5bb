// Property tests for spec/sync/semaphore.md and spec/sync/bounded_semaphore.md: RapidCheck
// generates programs (an initial value and per-actor call lists) as data, the backend runs
// them, and the checker judges each history against the Semaphore or BoundedSemaphore model.
//
// Each actor runs its calls one after another, all actors at once. Blocking acquires can wait
// for ever, so when nothing has moved for a while a "drain" actor releases once (recorded and
// judged like every other call; on a BoundedSemaphore at its bound it raises ValueError, which
// is legal). Calls still running at the end become `info`. The model does not know the initial
// value: a get_value before the program starts checks it and pins it (get_value calls and
// failed acquires during the program pin it too).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <iostream>
#include <ostream>
#include <sstream>

#include "scenario.hpp"

namespace mpspec {
namespace {

enum class SKind { kAcquire, kTryAcquire, kTimedAcquire, kRelease, kGetValue };
enum class STimeout { kZero, kNegative, kYield };

struct SStep {
  SKind kind;
  STimeout timeout;
};

struct SProgram {
  int value = 1;
  std::vector<std::vector<SStep>> actors;
};

double seconds(STimeout c) {
  switch (c) {
    case STimeout::kZero:
      return 0.0;
    case STimeout::kNegative:
      return -1.0;
    case STimeout::kYield:
      return timing::yield();
  }
  return 0.0;
}

std::string describe(const SStep& s) {
  switch (s.kind) {
    case SKind::kAcquire:
      return "acquire()";
    case SKind::kTryAcquire:
      return "acquire(block=False)";
    case SKind::kRelease:
      return "release()";
    case SKind::kGetValue:
      return "get_value()";
    case SKind::kTimedAcquire: {
      static const char* names[] = {"0", "-1", "yield"};
      return std::string("acquire(timeout=") + names[static_cast<int>(s.timeout)] + ")";
    }
  }
  return "?";
}

const char* method_of(const SStep& s) {
  if (s.kind == SKind::kRelease) return "release";
  if (s.kind == SKind::kGetValue) return "get_value";
  return "acquire";
}

Json args_of(const SStep& s) {
  if (s.kind == SKind::kTryAcquire) return Json{{"block", false}};
  if (s.kind == SKind::kTimedAcquire) return Json{{"block", true}, {"timeout", seconds(s.timeout)}};
  return Json::object();
}

std::string describe(const SProgram& p) {
  std::ostringstream os;
  os << "  value=" << p.value << "\n";
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
struct Arbitrary<mpspec::SStep> {
  static Gen<mpspec::SStep> arbitrary() {
    using mpspec::SKind;
    using mpspec::STimeout;
    return gen::apply(
        [](SKind k, STimeout t) {
          return mpspec::SStep{k, t};
        },
        gen::weightedElement<SKind>({{2, SKind::kAcquire},
                                     {3, SKind::kTryAcquire},
                                     {3, SKind::kTimedAcquire},
                                     {4, SKind::kRelease},
                                     {2, SKind::kGetValue}}),
        gen::element(STimeout::kZero, STimeout::kNegative, STimeout::kYield));
  }
};
template <>
struct Arbitrary<mpspec::SProgram> {
  static Gen<mpspec::SProgram> arbitrary() {
    auto steps = gen::mapcat(gen::inRange(1, 7), [](int n) {
      return gen::container<std::vector<mpspec::SStep>>(static_cast<size_t>(n),
                                                        gen::arbitrary<mpspec::SStep>());
    });
    auto actors = gen::mapcat(gen::inRange(2, 5), [steps](int count) {
      return gen::container<std::vector<std::vector<mpspec::SStep>>>(static_cast<size_t>(count),
                                                                     steps);
    });
    return gen::apply(
        [](int value, std::vector<std::vector<mpspec::SStep>> a) {
          return mpspec::SProgram{value, std::move(a)};
        },
        gen::inRange(0, 3), actors);
  }
};
}  // namespace rc

namespace mpspec {
namespace {

void showValue(const SProgram& p, std::ostream& os) { os << "Semaphore program:\n" << describe(p); }

check::Result run_program(const std::string& type, const SProgram& p, std::string& report) {
  Scenario s;
  s.object("S", type, Json{{"value", p.value}});
  std::vector<std::string> names;
  for (size_t i = 0; i < p.actors.size(); ++i) {
    names.push_back("p" + std::to_string(i));
    s.actor(names.back());
  }
  s.actor("drain");
  const std::string why = s.start();
  if (!why.empty()) throw std::runtime_error("UNSUPPORTED: " + why);

  // [semaphore.construct.value] The history does not carry the constructor's value, so it is
  // checked here, and the recorded get_value pins the model's initial value for the checker.
  const CallResult& initial = s.await(s.call("drain", "S", "get_value"));
  if (initial.ok() && initial.value != Json(p.value)) {
    report = type + "(" + std::to_string(p.value) + ").get_value() returned " +
             initial.value.dump() + " before any other call [semaphore.construct.value]\n";
    check::Result r;
    r.verdict = check::Verdict::kNotLinearizable;
    return r;
  }

  std::vector<size_t> next(p.actors.size(), 0);
  std::vector<std::optional<CallId>> running(p.actors.size());
  auto issue = [&](size_t i) {
    if (next[i] < p.actors[i].size()) {
      const SStep& st = p.actors[i][next[i]++];
      running[i] = s.call(names[i], "S", method_of(st), args_of(st));
    } else {
      running[i].reset();
    }
  };
  for (size_t i = 0; i < p.actors.size(); ++i) issue(i);

  // A few times the longest timed acquire of a program (`yield`), so that a stall usually
  // means that only blocking acquires are left. A drain that comes early (a slow machine) is
  // harmless: it is recorded and judged like every other call.
  const double stall = 4 * timing::yield();
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
    if (++drains > 10) break;
    s.await(s.call("drain", "S", "release"));
  }
  s.teardown();
  check::Result r = s.check();
  if (r.verdict != check::Verdict::kLinearizable) {
    report = r.summary();
    std::cerr << "[SemaphoreProp] " << type << ": " << check::to_string(r.verdict) << " run of\n"
              << describe(p) << report << "\n";
  }
  return r;
}

void check_type(const std::string& type, const std::string& clause) {
  Backend& b = Backend::get();
  for (const char* f : {"nonblocking", "timeout"})
    if (!b.has_feature(f)) GTEST_SKIP() << "UNSUPPORTED: backend lacks feature '" << f << "'";
  for (const char* m : {"acquire", "release", "get_value"})
    if (!b.has_method(type, m)) GTEST_SKIP() << "UNSUPPORTED: backend lacks " << type << "." << m;

  const bool ok = rc::check("SemaphoreProp/" + type, [&](SProgram p) {
    // A BoundedSemaphore(0) refuses every release: its programs could only stall.
    if (type == "BoundedSemaphore" && p.value == 0) p.value = 1;
    for (int run = 0; run < 2; ++run) {
      std::string report;
      check::Result r = run_program(type, p, report);
      if (r.verdict == check::Verdict::kUnknown) RC_DISCARD("checker budget exhausted");
      if (r.verdict == check::Verdict::kNotLinearizable) {
        RC_FAIL(clause + " run " + std::to_string(run) + " of\n" + describe(p) +
                "is not linearizable:\n" + report);
      }
    }
  });
  EXPECT_TRUE(ok) << "see the counterexample above (seed and reproduce string at the end)";
}

TEST(SemaphoreProp, HistoriesAreLinearizable) {
  MPSPEC_CLAUSES(
      "[semaphore.acquire.linearizable] [semaphore.acquire.counting] "
      "[semaphore.get_value.exact] [semaphore.acquire.wakes]");
  check_type("Semaphore", "[semaphore.acquire.linearizable]");
}

TEST(SemaphoreProp, BoundedHistoriesAreLinearizable) {
  MPSPEC_CLAUSES(
      "[bounded_semaphore.semaphore] [bounded_semaphore.release.above_bound] "
      "[bounded_semaphore.release.below_bound]");
  check_type("BoundedSemaphore", "[bounded_semaphore.semaphore]");
}

}  // namespace
}  // namespace mpspec
