// Property test for spec/sync/rlock.md: RapidCheck generates RLock programs as data, the
// backend runs them, and the checker judges each history against the RLock model.
//
// A program is a list of calls per *lane*; a lane is one thread of one actor (two actors with
// two worker threads each, so that owners differ both by thread and by process). Each lane runs
// its calls one after another, all lanes at once. Since only the owner may release an RLock,
// a stalled program (blocking acquires waiting on a lane that has finished its list while
// owning the lock) is drained by each idle lane calling `release` itself: the owner's release
// frees a level, the others' raise AssertionError; all are recorded and judged. Calls still
// running at the end become `info`.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <iostream>
#include <ostream>
#include <sstream>

#include "scenario.hpp"

namespace mpspec {
namespace {

enum class RKind { kAcquire, kTryAcquire, kTimedAcquire, kRelease, kEnter, kExit };
enum class RTimeout { kZero, kYield };

struct RStep {
  RKind kind;
  RTimeout timeout;
};

struct RProgram {
  std::vector<std::vector<RStep>> lanes;  // lane k runs on actor p(k/2), thread k%2
};

double seconds(RTimeout c) {
  switch (c) {
    case RTimeout::kZero:
      return 0.0;
    case RTimeout::kYield:
      return timing::yield();
  }
  return 0.0;
}

std::string describe(const RStep& s) {
  switch (s.kind) {
    case RKind::kAcquire:
      return "acquire()";
    case RKind::kTryAcquire:
      return "acquire(block=False)";
    case RKind::kRelease:
      return "release()";
    case RKind::kEnter:
      return "__enter__()";
    case RKind::kExit:
      return "__exit__()";
    case RKind::kTimedAcquire: {
      static const char* names[] = {"0", "yield"};
      return std::string("acquire(timeout=") + names[static_cast<int>(s.timeout)] + ")";
    }
  }
  return "?";
}

const char* method_of(const RStep& s) {
  switch (s.kind) {
    case RKind::kRelease:
      return "release";
    case RKind::kEnter:
      return "__enter__";
    case RKind::kExit:
      return "__exit__";
    default:
      return "acquire";
  }
}

Json args_of(const RStep& s) {
  if (s.kind == RKind::kTryAcquire) return Json{{"block", false}};
  if (s.kind == RKind::kTimedAcquire) return Json{{"block", true}, {"timeout", seconds(s.timeout)}};
  return Json::object();
}

std::string lane_name(size_t k) {
  return "p" + std::to_string(k / 2) + "/" + std::to_string(k % 2);
}

std::string describe(const RProgram& p) {
  std::ostringstream os;
  for (size_t k = 0; k < p.lanes.size(); ++k) {
    os << "  " << lane_name(k) << ":";
    for (const auto& s : p.lanes[k]) os << " " << describe(s) << ";";
    os << "\n";
  }
  return os.str();
}

}  // namespace
}  // namespace mpspec

namespace rc {
template <>
struct Arbitrary<mpspec::RStep> {
  static Gen<mpspec::RStep> arbitrary() {
    using mpspec::RKind;
    using mpspec::RTimeout;
    return gen::apply(
        [](RKind k, RTimeout t) {
          return mpspec::RStep{k, t};
        },
        gen::weightedElement<RKind>({{2, RKind::kAcquire},
                                     {3, RKind::kTryAcquire},
                                     {3, RKind::kTimedAcquire},
                                     {5, RKind::kRelease},
                                     {1, RKind::kEnter},
                                     {1, RKind::kExit}}),
        gen::element(RTimeout::kZero, RTimeout::kYield));
  }
};
template <>
struct Arbitrary<mpspec::RProgram> {
  static Gen<mpspec::RProgram> arbitrary() {
    auto steps = gen::mapcat(gen::inRange(1, 7), [](int n) {
      return gen::container<std::vector<mpspec::RStep>>(static_cast<size_t>(n),
                                                        gen::arbitrary<mpspec::RStep>());
    });
    return gen::mapcat(gen::inRange(2, 5), [steps](int lanes) {
      return gen::map(
          gen::container<std::vector<std::vector<mpspec::RStep>>>(static_cast<size_t>(lanes),
                                                                  steps),
          [](std::vector<std::vector<mpspec::RStep>> l) { return mpspec::RProgram{std::move(l)}; });
    });
  }
};
}  // namespace rc

namespace mpspec {
namespace {

void showValue(const RProgram& p, std::ostream& os) { os << "RLock program:\n" << describe(p); }

check::Result run_program(const RProgram& p, std::string& report) {
  Scenario s;
  s.object("R", "RLock");
  const size_t actors = (p.lanes.size() + 1) / 2;
  for (size_t a = 0; a < actors; ++a) s.actor("p" + std::to_string(a), 2);
  const std::string why = s.start();
  if (!why.empty()) throw std::runtime_error("UNSUPPORTED: " + why);

  const size_t n = p.lanes.size();
  std::vector<size_t> next(n, 0);
  std::vector<std::optional<CallId>> running(n);
  auto call = [&](size_t k, const char* method, Json args) {
    running[k] =
        s.call("p" + std::to_string(k / 2), "R", method, std::move(args), static_cast<int>(k % 2));
  };
  auto issue = [&](size_t k) {
    if (next[k] < p.lanes[k].size()) {
      const RStep& st = p.lanes[k][next[k]++];
      call(k, method_of(st), args_of(st));
    } else {
      running[k].reset();
    }
  };
  for (size_t k = 0; k < n; ++k) issue(k);

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
      for (size_t k = 0; k < n; ++k)
        if (running[k] == *done) issue(k);
      continue;
    }
    if (++drains > 10) break;  // leave the rest blocked: they become `info`
    // Every idle lane releases once: the owner among them frees a level.
    for (size_t k = 0; k < n; ++k) {
      if (running[k]) continue;
      s.await(s.call("p" + std::to_string(k / 2), "R", "release", Json::object(),
                     static_cast<int>(k % 2)));
    }
  }
  s.teardown();
  check::Result r = s.check();
  if (r.verdict != check::Verdict::kLinearizable) {
    report = r.summary();
    std::cerr << "[RLockProp] " << check::to_string(r.verdict) << " run of\n"
              << describe(p) << report << "\n";
  }
  return r;
}

TEST(RLockProp, HistoriesAreLinearizable) {
  MPSPEC_CLAUSES(
      "[rlock.acquire.exclusive] [rlock.acquire.recursive] [rlock.release.depth] "
      "[rlock.release.other_thread] [rlock.release.other_process] "
      "[rlock.acquire.nonblocking] [rlock.acquire.timeout.expires]");
  Backend& b = Backend::get();
  for (const char* f : {"nonblocking", "timeout", "threads"})
    if (!b.has_feature(f)) GTEST_SKIP() << "UNSUPPORTED: backend lacks feature '" << f << "'";
  if (!b.has_type("RLock")) GTEST_SKIP() << "UNSUPPORTED: backend lacks type RLock";

  const bool ok = rc::check("RLockProp/HistoriesAreLinearizable", [](const RProgram& p) {
    for (int run = 0; run < 2; ++run) {
      std::string report;
      check::Result r = run_program(p, report);
      if (r.verdict == check::Verdict::kUnknown) RC_DISCARD("checker budget exhausted");
      if (r.verdict == check::Verdict::kNotLinearizable) {
        RC_FAIL("[rlock.acquire.exclusive] run " + std::to_string(run) + " of\n" + describe(p) +
                "is not linearizable:\n" + report);
      }
    }
  });
  EXPECT_TRUE(ok) << "see the counterexample above (seed and reproduce string at the end)";
}

}  // namespace
}  // namespace mpspec
