// Property test for spec/rwlock/rwlock.md: RapidCheck generates programs (per-actor lists of
// read/write acquires and releases) as data, the backend runs them, and the checker judges
// each history against the RWLock model: never a writer together with anyone else, no
// acquire that succeeds while its mode is unavailable, release errors only when nothing of
// that mode is held.
//
// Each actor runs its calls one after another, all actors at once. Blocking acquires can wait
// for ever, so when nothing has moved for a while a "drain" actor releases a write hold and a
// read hold (recorded and judged like every other call; a release of a mode nobody holds
// raises ValueError, which the model accepts). Calls still running at the end become `info`.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <iostream>
#include <ostream>
#include <sstream>

#include "scenario.hpp"

namespace mpspec {
namespace {

enum class RwKind { kRead, kWrite, kReleaseRead, kReleaseWrite };
enum class RwWait { kBlock, kTry, kYield, kZero };

struct RwStep {
  RwKind kind;
  RwWait wait;
};

using RwProgram = std::vector<std::vector<RwStep>>;

const char* method_of(const RwStep& s) {
  switch (s.kind) {
    case RwKind::kRead:
      return "acquire_read";
    case RwKind::kWrite:
      return "acquire_write";
    case RwKind::kReleaseRead:
      return "release_read";
    case RwKind::kReleaseWrite:
      return "release_write";
  }
  return "?";
}

bool acquiring(const RwStep& s) { return s.kind == RwKind::kRead || s.kind == RwKind::kWrite; }

Json args_of(const RwStep& s) {
  if (!acquiring(s)) return Json::object();
  switch (s.wait) {
    case RwWait::kBlock:
      return Json::object();
    case RwWait::kTry:
      return Json{{"block", false}};
    case RwWait::kYield:
      return Json{{"block", true}, {"timeout", timing::yield()}};
    case RwWait::kZero:
      return Json{{"block", true}, {"timeout", 0}};
  }
  return Json::object();
}

std::string describe(const RwProgram& p) {
  std::ostringstream os;
  for (size_t i = 0; i < p.size(); ++i) {
    os << "  p" << i << ":";
    for (const auto& s : p[i]) os << " " << method_of(s) << args_of(s).dump() << ";";
    os << "\n";
  }
  return os.str();
}

}  // namespace
}  // namespace mpspec

namespace rc {
template <>
struct Arbitrary<mpspec::RwStep> {
  static Gen<mpspec::RwStep> arbitrary() {
    using mpspec::RwKind;
    using mpspec::RwWait;
    return gen::apply(
        [](RwKind k, RwWait w) {
          return mpspec::RwStep{k, w};
        },
        gen::weightedElement<RwKind>({{4, RwKind::kRead},
                                      {3, RwKind::kWrite},
                                      {3, RwKind::kReleaseRead},
                                      {3, RwKind::kReleaseWrite}}),
        gen::weightedElement<RwWait>(
            {{1, RwWait::kBlock}, {3, RwWait::kTry}, {2, RwWait::kYield}, {1, RwWait::kZero}}));
  }
};
}  // namespace rc

namespace mpspec {
namespace {

check::Result run_program(const RwProgram& p, std::string& report) {
  Scenario s;
  s.object("R", "RWLock");
  std::vector<std::string> names;
  for (size_t i = 0; i < p.size(); ++i) {
    names.push_back("p" + std::to_string(i));
    s.actor(names.back());
  }
  s.actor("drain");
  const std::string why = s.start();
  if (!why.empty()) throw std::runtime_error("UNSUPPORTED: " + why);

  std::vector<size_t> next(p.size(), 0);
  std::vector<std::optional<CallId>> running(p.size());
  auto issue = [&](size_t i) {
    if (next[i] < p[i].size()) {
      const RwStep& st = p[i][next[i]++];
      running[i] = s.call(names[i], "R", method_of(st), args_of(st));
    } else {
      running[i].reset();
    }
  };
  for (size_t i = 0; i < p.size(); ++i) issue(i);
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
    s.await(s.call("drain", "R", "release_write"));
    s.await(s.call("drain", "R", "release_read"));
  }
  s.teardown();
  check::Result r = s.check();
  if (r.verdict != check::Verdict::kLinearizable) {
    report = r.summary();
    std::cerr << "[RWLockProp] " << check::to_string(r.verdict) << " run of\n"
              << describe(p) << report << "\n";
  }
  return r;
}

TEST(RWLockProp, HistoriesAreSafe) {
  MPSPEC_CLAUSES(
      "[rwlock.safety] [rwlock.read.shared] [rwlock.write.exclusive] "
      "[rwlock.write.excludes_readers] [rwlock.acquire.nonblocking] [rwlock.acquire.timeout]");
  Backend& b = Backend::get();
  if (!b.has_type("RWLock")) GTEST_SKIP() << "UNSUPPORTED: backend lacks type RWLock";
  for (const char* f : {"nonblocking", "timeout"})
    if (!b.has_feature(f)) GTEST_SKIP() << "UNSUPPORTED: backend lacks feature '" << f << "'";

  const bool ok = rc::check("RWLockProp", [&](void) {
    const auto program = *rc::gen::mapcat(rc::gen::inRange(2, 5), [](int count) {
      auto steps = rc::gen::mapcat(rc::gen::inRange(1, 7), [](int n) {
        return rc::gen::container<std::vector<RwStep>>(static_cast<size_t>(n),
                                                       rc::gen::arbitrary<RwStep>());
      });
      return rc::gen::container<RwProgram>(static_cast<size_t>(count), steps);
    });
    for (int run = 0; run < 2; ++run) {
      std::string report;
      check::Result r = run_program(program, report);
      if (r.verdict == check::Verdict::kUnknown) RC_DISCARD("checker budget exhausted");
      if (r.verdict == check::Verdict::kNotLinearizable)
        RC_FAIL("[rwlock.safety] run " + std::to_string(run) + " of\n" + describe(program) +
                "is not linearizable:\n" + report);
    }
  });
  EXPECT_TRUE(ok) << "see the counterexample above (seed and reproduce string at the end)";
}

}  // namespace
}  // namespace mpspec
