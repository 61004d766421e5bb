// Scenario tests for spec/rwlock/rwlock.md. Each test names the clauses it checks; tests whose
// histories the model can judge also check them against the RWLock model ([rwlock.safety]).
//
// Timing policy (spec/README.md): "is blocked" is a positive handshake plus a `small` grace
// period; "times out" asserts only the lower bound; "is woken" waits with the liveness bound.
#include <gtest/gtest.h>

#include "scenario.hpp"

namespace mpspec {
namespace {

using timing::huge;
using timing::kClockResolution;
using timing::small;

const Json kTry = Json{{"block", false}};
Json timed(double t) { return Json{{"block", true}, {"timeout", t}}; }

void expect_linearizable(Scenario& s) {
  auto r = s.check();
  if (r.verdict == check::Verdict::kUnknown)
    GTEST_SKIP() << "UNRESOLVED: the checker ran out of budget:\n" << r.summary();
  EXPECT_EQ(r.verdict, check::Verdict::kLinearizable)
      << "[rwlock.safety] history is not linearizable:\n"
      << r.summary();
}

void rw_scenario(Scenario& s, std::initializer_list<const char*> actors) {
  s.object("R", "RWLock");
  for (const char* m : {"acquire_read", "acquire_write", "release_read", "release_write"})
    s.needs_method("RWLock", m);
  for (const char* a : actors) s.actor(a);
}

TEST(RWLock, ConstructFree) {
  MPSPEC_CLAUSES("[rwlock.construct.free] [rwlock.release.write]");
  Scenario s;
  rw_scenario(s, {"a"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire_write", kTry)).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "R", "release_write")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire_write", kTry)).ok(true));
  expect_linearizable(s);
}

TEST(RWLock, ReadersShare) {
  MPSPEC_CLAUSES("[rwlock.read.shared] [rwlock.release.read] [rwlock.process.shared]");
  Scenario s;
  rw_scenario(s, {"a", "b", "c"});
  MPSPEC_START(s);
  for (const char* a : {"a", "b", "c"}) {
    const auto& r = s.await(s.call(a, "R", "acquire_read"));
    EXPECT_TRUE(r.ok(true)) << a << ": a read acquire waited for other readers: " << r;
  }
  for (const char* a : {"a", "b", "c"})
    EXPECT_TRUE(s.await(s.call(a, "R", "release_read")).ok(nullptr));
  expect_linearizable(s);
}

TEST(RWLock, WriterExcludesEveryone) {
  MPSPEC_CLAUSES("[rwlock.write.exclusive] [rwlock.acquire.nonblocking] [rwlock.safety]");
  Scenario s;
  rw_scenario(s, {"a", "b"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire_write")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire_read", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire_write", kTry)).ok(false));
  EXPECT_TRUE(
      s.await(s.call("b", "R", "acquire_read", Json{{"block", false}, {"timeout", 5}})).ok(false))
      << "block=False must ignore the timeout";
  ASSERT_TRUE(s.await(s.call("a", "R", "release_write")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire_read", kTry)).ok(true));
  expect_linearizable(s);
}

TEST(RWLock, ReaderExcludesWriter) {
  MPSPEC_CLAUSES("[rwlock.write.excludes_readers] [rwlock.acquire.nonblocking]");
  Scenario s;
  rw_scenario(s, {"a", "b"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire_read")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire_write", kTry)).ok(false));
  ASSERT_TRUE(s.await(s.call("a", "R", "release_read")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire_write", kTry)).ok(true));
  expect_linearizable(s);
}

TEST(RWLock, WriterWaitsForLastReader) {
  MPSPEC_CLAUSES("[rwlock.acquire.blocks] [rwlock.acquire.wakes] [rwlock.write.excludes_readers]");
  Scenario s;
  rw_scenario(s, {"a", "b", "w"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire_read")).ok(true));
  ASSERT_TRUE(s.await(s.call("b", "R", "acquire_read")).ok(true));
  const CallId writer = s.call("w", "R", "acquire_write");
  ASSERT_FALSE(s.returns_within(writer, small())) << "writer got in past two readers";
  ASSERT_TRUE(s.await(s.call("a", "R", "release_read")).ok(nullptr));
  ASSERT_FALSE(s.returns_within(writer, small())) << "writer got in past one reader";
  const CallId last = s.call("b", "R", "release_read");
  ASSERT_TRUE(s.await(last).ok(nullptr));
  const auto& r = s.await(writer);
  EXPECT_TRUE(r.ok(true)) << r;
  EXPECT_GE(r.return_ns, s.result(last).invoke_ns) << "the writer returned before the release";
  expect_linearizable(s);
}

TEST(RWLock, ReadersWaitForWriter) {
  MPSPEC_CLAUSES("[rwlock.acquire.blocks] [rwlock.acquire.wakes] [rwlock.write.exclusive]");
  Scenario s;
  rw_scenario(s, {"w", "a", "b"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("w", "R", "acquire_write")).ok(true));
  const CallId ra = s.call("a", "R", "acquire_read");
  const CallId rb = s.call("b", "R", "acquire_read");
  ASSERT_FALSE(s.returns_within(ra, small())) << "a reader got in past the writer";
  ASSERT_FALSE(s.returned(rb)) << "a reader got in past the writer";
  ASSERT_TRUE(s.await(s.call("w", "R", "release_write")).ok(nullptr));
  EXPECT_TRUE(s.await(ra).ok(true)) << s.result(ra);
  EXPECT_TRUE(s.await(rb).ok(true)) << s.result(rb);
  expect_linearizable(s);
}

TEST(RWLock, TimedAcquiresExpire) {
  MPSPEC_CLAUSES("[rwlock.acquire.timeout]");
  Scenario s;
  rw_scenario(s, {"a", "b"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire_write")).ok(true));
  const double t = small();
  for (const char* m : {"acquire_read", "acquire_write"}) {
    const auto& r = s.await(s.call("b", "R", m, timed(t)));
    EXPECT_TRUE(r.ok(false)) << m << ": " << r;
    EXPECT_GE(r.elapsed(), t - kClockResolution) << m << " gave up early: " << r;
    EXPECT_TRUE(s.await(s.call("b", "R", m, timed(0))).ok(false)) << m << "(timeout=0)";
  }
  ASSERT_TRUE(s.await(s.call("a", "R", "release_write")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire_write", timed(0))).ok(true));
  ASSERT_TRUE(s.await(s.call("b", "R", "release_write")).ok(nullptr));
  // A timed acquire that can succeed within its timeout does.
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire_write")).ok(true));
  const CallId w = s.call("b", "R", "acquire_read", timed(huge()));
  ASSERT_FALSE(s.returns_within(w, small()));
  ASSERT_TRUE(s.await(s.call("a", "R", "release_write")).ok(nullptr));
  EXPECT_TRUE(s.await(w).ok(true)) << s.result(w);
  expect_linearizable(s);
}

TEST(RWLock, NoUpgradeNoDowngrade) {
  MPSPEC_CLAUSES("[rwlock.acquire.no_upgrade] [rwlock.acquire.not_reentrant]");
  Scenario s;
  rw_scenario(s, {"a"});
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire_read")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire_write", kTry)).ok(false))
      << "the only reader was upgraded to writer";
  const double t = small();
  const auto& r = s.await(s.call("a", "R", "acquire_write", timed(t)));
  EXPECT_TRUE(r.ok(false)) << r;
  EXPECT_GE(r.elapsed(), t - kClockResolution) << r;
  // The read hold is intact: a release works once, and then the lock is free.
  ASSERT_TRUE(s.await(s.call("a", "R", "release_read")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire_write")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire_read", kTry)).ok(false)) << "writer downgraded";
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire_write", kTry)).ok(false)) << "writer re-entered";
  expect_linearizable(s);
}

TEST(RWLock, ReleaseByAnotherProcess) {
  MPSPEC_CLAUSES("[rwlock.release.other_process]");
  Scenario s;
  rw_scenario(s, {"a", "b"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire_write")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "R", "release_write")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "R", "acquire_write", kTry)).ok(true));
  expect_linearizable(s);
}

TEST(RWLock, ReleaseUnheldRaisesValueError) {
  MPSPEC_CLAUSES("[rwlock.release.read.unheld] [rwlock.release.write.unheld]");
  Scenario s;
  rw_scenario(s, {"a"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "R", "release_read")).raised("ValueError"));
  EXPECT_TRUE(s.await(s.call("a", "R", "release_write")).raised("ValueError"));
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire_read")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "R", "release_write")).raised("ValueError"))
      << "release_write of a read-held lock";
  ASSERT_TRUE(s.await(s.call("a", "R", "release_read")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "R", "acquire_write")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "R", "release_read")).raised("ValueError"))
      << "release_read of a write-held lock";
  // Nothing changed: still write-held.
  EXPECT_TRUE(s.await(s.call("a", "R", "acquire_read", kTry)).ok(false));
  expect_linearizable(s);
}

TEST(RWLock, WaitingWriterIsPreferred) {
  MPSPEC_CLAUSES("[rwlock.fair.writer_preferred]");
  Scenario s;
  rw_scenario(s, {"r1", "w", "r2"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("r1", "R", "acquire_read")).ok(true));
  const CallId writer = s.call("w", "R", "acquire_write");
  ASSERT_FALSE(s.returns_within(writer, small())) << "writer got in past a reader";
  // A stream of new readers while the writer waits: none may get in.
  for (int i = 0; i < 5; ++i) {
    const auto& r = s.await(s.call("r2", "R", "acquire_read", kTry));
    EXPECT_TRUE(r.ok(false)) << "a new reader entered while a writer waited (round " << i
                             << "): a stream of readers could starve the writer: " << r;
    if (r.ok(true)) s.await(s.call("r2", "R", "release_read"));
  }
  ASSERT_TRUE(s.await(s.call("r1", "R", "release_read")).ok(nullptr));
  EXPECT_TRUE(s.await(writer).ok(true)) << s.result(writer);
}

TEST(RWLock, KilledWaitingWriterDoesNotBlockReaders) {
  MPSPEC_CLAUSES("[rwlock.kill.waiter]");
  Scenario s;
  rw_scenario(s, {"r1", "w", "r2"});
  s.needs_feature("kill");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("r1", "R", "acquire_read")).ok(true));
  const CallId writer = s.call("w", "R", "acquire_write");
  ASSERT_FALSE(s.returns_within(writer, small()));
  const CallId reader = s.call("r2", "R", "acquire_read");  // queued behind the writer
  s.kill("w");
  ASSERT_TRUE(s.await(s.call("r1", "R", "release_read")).ok(nullptr));
  const auto& r = s.await(reader);
  EXPECT_TRUE(r.ok(true)) << "a reader stayed blocked behind a dead writer: " << r;
  // And the lock is usable afterwards in both modes.
  ASSERT_TRUE(s.await(s.call("r2", "R", "release_read")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("r1", "R", "acquire_write")).ok(true));
  EXPECT_TRUE(s.await(s.call("r1", "R", "release_write")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("r2", "R", "acquire_read")).ok(true));
  expect_linearizable(s);
}

TEST(RWLock, KilledWaitingReaderLeavesNoTrace) {
  MPSPEC_CLAUSES("[rwlock.kill.waiter]");
  Scenario s;
  rw_scenario(s, {"w", "r", "w2"});
  s.needs_feature("kill");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("w", "R", "acquire_write")).ok(true));
  const CallId reader = s.call("r", "R", "acquire_read");
  ASSERT_FALSE(s.returns_within(reader, small()));
  s.kill("r");
  ASSERT_TRUE(s.await(s.call("w", "R", "release_write")).ok(nullptr));
  // The dead reader did not take a read hold with it: a writer gets in.
  const auto& r = s.await(s.call("w2", "R", "acquire_write"));
  EXPECT_TRUE(r.ok(true)) << "a writer was kept out after a waiting reader died: " << r;
  expect_linearizable(s);
}

}  // namespace
}  // namespace mpspec

namespace mpspec {
namespace {

TEST(RWLock, KilledWriterHolderKeepsSurvivorsSafe) {
  // [rwlock.kill.holder] is a MAY: the dead writer's hold may stay or be recovered. Either way
  // the survivors' outcomes must fit the model, and a recovered lock must be fully usable.
  MPSPEC_CLAUSES("[rwlock.kill.holder]");
  Scenario s;
  s.object("R", "RWLock");
  for (const char* m : {"acquire_read", "acquire_write", "release_read", "release_write"})
    s.needs_method("RWLock", m);
  s.actor("w").actor("a").actor("b");
  s.needs_feature("kill").needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("w", "R", "acquire_write")).ok(true));
  s.kill("w");
  const Json t = Json{{"block", true}, {"timeout", timing::small()}};
  const auto& r = s.await(s.call("a", "R", "acquire_read", t));
  ASSERT_TRUE(r.ok()) << r;
  if (r.ok(true)) {
    // Recovered: readers share, and a writer waits for them.
    EXPECT_TRUE(s.await(s.call("b", "R", "acquire_read", t)).ok(true));
    EXPECT_TRUE(s.await(s.call("b", "R", "acquire_write", Json{{"block", false}})).ok(false));
  } else {
    // Kept: nobody gets in, in either mode.
    EXPECT_TRUE(s.await(s.call("b", "R", "acquire_write", Json{{"block", false}})).ok(false));
  }
  auto c = s.check();
  if (c.verdict == check::Verdict::kUnknown) GTEST_SKIP() << "UNRESOLVED:\n" << c.summary();
  EXPECT_EQ(c.verdict, check::Verdict::kLinearizable) << c.summary();
}

}  // namespace
}  // namespace mpspec
