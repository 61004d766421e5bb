// Scenario tests for spec/rwlock/shared_lock.md. SharedLock has no model yet: each test judges its
// scenario by its assertions.
//
// Timing policy (spec/README.md): SharedLock has no non-blocking or timed acquire, so "X is
// blocked" is a handshake (the holders' acquires have returned before X is called) plus X not
// returning within a `small` grace period; "is woken" waits with the liveness bound. Where a
// late invocation would make a "blocked" check vacuous, the test reports UNRESOLVED.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "scenario.hpp"

namespace mpspec {
namespace {

using timing::small;

const Json kShared = Json::object();  // acquire(): shared by default
const Json kSharedArg = Json{{"exclusive", false}};
const Json kExclusive = Json{{"exclusive", true}};

void sl_scenario(Scenario& s, std::initializer_list<const char*> actors, int threads = 1) {
  s.object("S", "SharedLock");
  for (const char* m : {"acquire", "release"}) s.needs_method("SharedLock", m);
  for (const char* a : actors) s.actor(a, threads);
  if (threads > 1) s.needs_feature("threads");
}

// A call that must stay blocked was invoked only after `release` was: the grace period proved
// nothing (timing policy, rule 6).
#define MPSPEC_UNRESOLVED_IF_LATE(s, blocked, release)                                     \
  do {                                                                                     \
    if ((s).result(blocked).invoke_ns > (s).result(release).invoke_ns)                     \
      GTEST_SKIP() << "UNRESOLVED: the blocked call was invoked after the release it was " \
                      "meant to wait for";                                                 \
  } while (0)

TEST(SharedLock, ConstructFreeAndBothModes) {
  MPSPEC_CLAUSES(
      "[shared_lock.construct.free] [shared_lock.acquire.returns_none] "
      "[shared_lock.release.holder]");
  Scenario s;
  sl_scenario(s, {"a"});
  MPSPEC_START(s);
  auto r = s.await(s.call("a", "S", "acquire", kExclusive));
  EXPECT_TRUE(r.ok(nullptr)) << "acquire(exclusive=True) of a new lock: " << r;
  EXPECT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  // The holder may acquire again after its release, in either mode.
  for (const Json& args : {kShared, kSharedArg, kExclusive, kShared}) {
    r = s.await(s.call("a", "S", "acquire", args));
    EXPECT_TRUE(r.ok(nullptr)) << "acquire(" << args.dump() << "): " << r;
    r = s.await(s.call("a", "S", "release"));
    EXPECT_TRUE(r.ok(nullptr)) << "release after acquire(" << args.dump() << "): " << r;
  }
}

TEST(SharedLock, SharedHoldersShare) {
  MPSPEC_CLAUSES(
      "[shared_lock.shared.concurrent] [shared_lock.process.shared] "
      "[shared_lock.acquire.returns_none]");
  Scenario s;
  sl_scenario(s, {"a", "b", "c"});
  MPSPEC_START(s);
  // Each shared acquire returns although the previous callers still hold the lock.
  for (const char* a : {"a", "b"}) {
    const auto& r = s.await(s.call(a, "S", "acquire"));
    EXPECT_TRUE(r.ok(nullptr)) << a << ": a shared acquire waited for other shared holders: " << r;
  }
  const auto& r = s.await(s.call("c", "S", "acquire", kSharedArg));
  EXPECT_TRUE(r.ok(nullptr)) << "c: acquire(exclusive=False) beside two shared holders: " << r;
  for (const char* a : {"a", "b", "c"})
    EXPECT_TRUE(s.await(s.call(a, "S", "release")).ok(nullptr)) << a;
}

TEST(SharedLock, ExclusiveWaitsForEveryHolder) {
  MPSPEC_CLAUSES("[shared_lock.exclusive.waits] [shared_lock.process.shared]");
  Scenario s;
  sl_scenario(s, {"a", "b", "w"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("b", "S", "acquire")).ok(nullptr));
  const CallId writer = s.call("w", "S", "acquire", kExclusive);
  ASSERT_FALSE(s.returns_within(writer, small()))
      << "an exclusive acquire returned past two shared holders: " << s.result(writer);
  const CallId first = s.call("a", "S", "release");
  ASSERT_TRUE(s.await(first).ok(nullptr));
  ASSERT_FALSE(s.returns_within(writer, small()))
      << "an exclusive acquire returned past a shared holder: " << s.result(writer);
  const CallId last = s.call("b", "S", "release");
  ASSERT_TRUE(s.await(last).ok(nullptr));
  const auto r = s.await(writer);
  EXPECT_TRUE(r.ok(nullptr)) << r;
  MPSPEC_UNRESOLVED_IF_LATE(s, writer, first);
  EXPECT_GE(r.return_ns, s.result(last).invoke_ns)
      << "the exclusive acquire returned before the last holder released";
  // The new exclusive holder excludes the former ones too.
  const CallId reader = s.call("a", "S", "acquire");
  EXPECT_FALSE(s.returns_within(reader, small())) << s.result(reader);
  ASSERT_TRUE(s.await(s.call("w", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(reader).ok(nullptr)) << s.result(reader);
}

TEST(SharedLock, ExclusiveExcludesBothModes) {
  MPSPEC_CLAUSES("[shared_lock.exclusive.excludes] [shared_lock.process.shared]");
  Scenario s;
  sl_scenario(s, {"w", "a", "b"});
  MPSPEC_START(s);
  // Shared waiters behind an exclusive holder are all let in by its release.
  ASSERT_TRUE(s.await(s.call("w", "S", "acquire", kExclusive)).ok(nullptr));
  const CallId ra = s.call("a", "S", "acquire");
  const CallId rb = s.call("b", "S", "acquire", kSharedArg);
  ASSERT_FALSE(s.returns_within(ra, small())) << "a shared acquire passed an exclusive holder";
  ASSERT_FALSE(s.returned(rb)) << "a shared acquire passed an exclusive holder";
  const CallId release = s.call("w", "S", "release");
  ASSERT_TRUE(s.await(release).ok(nullptr));
  EXPECT_TRUE(s.await(ra).ok(nullptr)) << s.result(ra);
  EXPECT_TRUE(s.await(rb).ok(nullptr)) << s.result(rb);
  MPSPEC_UNRESOLVED_IF_LATE(s, ra, release);
  EXPECT_GE(s.result(ra).return_ns, s.result(release).invoke_ns);
  EXPECT_GE(s.result(rb).return_ns, s.result(release).invoke_ns);
  ASSERT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("b", "S", "release")).ok(nullptr));
  // An exclusive waiter behind an exclusive holder.
  ASSERT_TRUE(s.await(s.call("w", "S", "acquire", kExclusive)).ok(nullptr));
  const CallId wb = s.call("b", "S", "acquire", kExclusive);
  ASSERT_FALSE(s.returns_within(wb, small())) << "two exclusive holders at once";
  const CallId release2 = s.call("w", "S", "release");
  ASSERT_TRUE(s.await(release2).ok(nullptr));
  EXPECT_TRUE(s.await(wb).ok(nullptr)) << s.result(wb);
  MPSPEC_UNRESOLVED_IF_LATE(s, wb, release2);
  EXPECT_GE(s.result(wb).return_ns, s.result(release2).invoke_ns);
}

TEST(SharedLock, WaitingExclusiveHoldsBackNewSharedAcquirers) {
  MPSPEC_CLAUSES("[shared_lock.fair.writer_preferred]");
  Scenario s;
  sl_scenario(s, {"r1", "w", "r2", "r3"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("r1", "S", "acquire")).ok(nullptr));
  const CallId writer = s.call("w", "S", "acquire", kExclusive);
  ASSERT_FALSE(s.returns_within(writer, small())) << "exclusive acquire passed a shared holder";
  // New shared acquirers while the exclusive one waits: none may get in before it.
  const CallId r2 = s.call("r2", "S", "acquire");
  const CallId r3 = s.call("r3", "S", "acquire");
  (void)s.returns_within(r2, small());
  if (s.returned(r2) || s.returned(r3)) {
    // Find out when the exclusive acquirer was invoked: let everyone out, then let it in.
    (void)s.returns_within(r3, small());
    (void)s.returns_within(r2, small());
    std::int64_t first_reader_ns = INT64_MAX;
    for (const auto& [actor, id] : {std::pair{"r2", r2}, std::pair{"r3", r3}}) {
      if (!s.returned(id)) continue;
      first_reader_ns = std::min(first_reader_ns, s.result(id).invoke_ns);
      if (s.result(id).ok()) s.await(s.call(actor, "S", "release"));
    }
    s.await(s.call("r1", "S", "release"));
    const auto w = s.await(writer);
    if (w.invoke_ns > first_reader_ns)
      GTEST_SKIP() << "UNRESOLVED: the exclusive acquire was invoked after the new shared ones";
    ADD_FAILURE() << "a new shared acquirer got in while an exclusive acquirer waited: a stream "
                     "of them could starve it: "
                  << (s.returned(r2) ? s.result(r2) : s.result(r3));
    return;
  }
  ASSERT_TRUE(s.await(s.call("r1", "S", "release")).ok(nullptr));
  const auto w = s.await(writer);
  ASSERT_TRUE(w.ok(nullptr)) << w;
  EXPECT_FALSE(s.returned(r2) && s.result(r2).return_ns < w.return_ns)
      << "a shared acquirer got in before the waiting exclusive acquirer";
  const CallId release = s.call("w", "S", "release");
  ASSERT_TRUE(s.await(release).ok(nullptr));
  EXPECT_TRUE(s.await(r2).ok(nullptr)) << s.result(r2);
  EXPECT_TRUE(s.await(r3).ok(nullptr)) << s.result(r3);
  EXPECT_GE(s.result(r2).return_ns, s.result(release).invoke_ns);
  EXPECT_GE(s.result(r3).return_ns, s.result(release).invoke_ns);
}

TEST(SharedLock, ReacquireByHolderRaisesValueError) {
  MPSPEC_CLAUSES("[shared_lock.acquire.not_reentrant]");
  Scenario s;
  sl_scenario(s, {"a", "b"});
  MPSPEC_START(s);
  // A shared holder asks again, in shared mode.
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire")).ok(nullptr));
  auto r = s.await(s.call("a", "S", "acquire"));
  EXPECT_TRUE(r.raised("ValueError")) << "shared re-acquire by a shared holder: " << r;
  r = s.await(s.call("a", "S", "acquire", kSharedArg));
  EXPECT_TRUE(r.raised("ValueError")) << "shared re-acquire by a shared holder: " << r;
  // Its hold is unchanged: one shared hold, which keeps an exclusive acquirer out until released.
  const CallId wb = s.call("b", "S", "acquire", kExclusive);
  ASSERT_FALSE(s.returns_within(wb, small())) << "the shared hold was lost by the failed acquire";
  ASSERT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  ASSERT_TRUE(s.await(wb).ok(nullptr)) << s.result(wb);
  EXPECT_TRUE(s.await(s.call("a", "S", "release")).raised("ValueError"))
      << "a had two shared holds after a refused re-acquire";
  // An exclusive holder asks again, in either mode: refused at once (not a deadlock).
  r = s.await(s.call("b", "S", "acquire", kExclusive));
  EXPECT_TRUE(r.raised("ValueError")) << "exclusive re-acquire by the exclusive holder: " << r;
  r = s.await(s.call("b", "S", "acquire"));
  EXPECT_TRUE(r.raised("ValueError")) << "shared acquire by the exclusive holder: " << r;
  // Still exclusive: a shared acquirer waits until b releases.
  const CallId ra = s.call("a", "S", "acquire");
  ASSERT_FALSE(s.returns_within(ra, small())) << "the exclusive hold was lost or downgraded";
  ASSERT_TRUE(s.await(s.call("b", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(ra).ok(nullptr)) << s.result(ra);
}

TEST(SharedLock, UpgradeRaisesValueError) {
  MPSPEC_CLAUSES("[shared_lock.acquire.no_upgrade]");
  Scenario s;
  sl_scenario(s, {"a", "b", "c"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("b", "S", "acquire")).ok(nullptr));
  // With another shared holder present: refused at once, no waiting for b.
  auto r = s.await(s.call("a", "S", "acquire", kExclusive));
  EXPECT_TRUE(r.raised("ValueError")) << "upgrade beside another shared holder: " << r;
  ASSERT_TRUE(s.await(s.call("b", "S", "release")).ok(nullptr));
  // As the only holder: refused too.
  r = s.await(s.call("a", "S", "acquire", kExclusive));
  EXPECT_TRUE(r.raised("ValueError")) << "upgrade by the only shared holder: " << r;
  // a still holds exactly one shared hold: b shares it, c's exclusive acquire waits for it.
  ASSERT_TRUE(s.await(s.call("b", "S", "acquire")).ok(nullptr)) << "a's hold became exclusive";
  ASSERT_TRUE(s.await(s.call("b", "S", "release")).ok(nullptr));
  const CallId wc = s.call("c", "S", "acquire", kExclusive);
  ASSERT_FALSE(s.returns_within(wc, small())) << "a's shared hold was lost by the failed upgrade";
  ASSERT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(wc).ok(nullptr)) << s.result(wc);
  EXPECT_TRUE(s.await(s.call("a", "S", "release")).raised("ValueError"));
}

TEST(SharedLock, ReleaseUnheldRaisesValueError) {
  MPSPEC_CLAUSES("[shared_lock.release.unheld]");
  Scenario s;
  sl_scenario(s, {"a", "b"}, 2);
  MPSPEC_START(s);
  // Free.
  auto r = s.await(s.call("a", "S", "release"));
  EXPECT_TRUE(r.raised("ValueError")) << "release of a free lock: " << r;
  // Held exclusively by a's thread 0: neither another process nor another thread may release.
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire", kExclusive)).ok(nullptr));
  r = s.await(s.call("b", "S", "release"));
  EXPECT_TRUE(r.raised("ValueError")) << "release by another process: " << r;
  r = s.await(s.call("a", "S", "release", Json::object(), 1));
  EXPECT_TRUE(r.raised("ValueError")) << "release by another thread of the holder's process: " << r;
  const CallId rb = s.call("b", "S", "acquire");
  ASSERT_FALSE(s.returns_within(rb, small())) << "a failed release freed the exclusive hold";
  ASSERT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  ASSERT_TRUE(s.await(rb).ok(nullptr)) << s.result(rb);
  // Held in shared mode by b's thread 0: the same.
  r = s.await(s.call("a", "S", "release"));
  EXPECT_TRUE(r.raised("ValueError")) << "release of another process's shared hold: " << r;
  r = s.await(s.call("b", "S", "release", Json::object(), 1));
  EXPECT_TRUE(r.raised("ValueError")) << "release of another thread's shared hold: " << r;
  const CallId wa = s.call("a", "S", "acquire", kExclusive);
  ASSERT_FALSE(s.returns_within(wa, small())) << "a failed release freed the shared hold";
  ASSERT_TRUE(s.await(s.call("b", "S", "release")).ok(nullptr));
  ASSERT_TRUE(s.await(wa).ok(nullptr)) << s.result(wa);
  ASSERT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  // Released twice.
  r = s.await(s.call("a", "S", "release"));
  EXPECT_TRUE(r.raised("ValueError")) << "a second release: " << r;
}

TEST(SharedLock, OwnershipIsPerThread) {
  MPSPEC_CLAUSES("[shared_lock.owner.thread]");
  Scenario s;
  sl_scenario(s, {"a"}, 2);
  MPSPEC_START(s);
  // Thread 1 shares thread 0's shared hold: its acquire is not a re-entry.
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire", Json::object(), 0)).ok(nullptr));
  auto r = s.await(s.call("a", "S", "acquire", Json::object(), 1));
  EXPECT_TRUE(r.ok(nullptr)) << "thread 1's acquire beside thread 0's shared hold: " << r;
  if (r.ok()) {
    ASSERT_TRUE(s.await(s.call("a", "S", "release", Json::object(), 1)).ok(nullptr));
  }
  r = s.await(s.call("a", "S", "release", Json::object(), 1));
  EXPECT_TRUE(r.raised("ValueError")) << "thread 1 released thread 0's hold: " << r;
  ASSERT_TRUE(s.await(s.call("a", "S", "release", Json::object(), 0)).ok(nullptr));
  // Thread 1 waits for thread 0's exclusive hold.
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire", kExclusive, 0)).ok(nullptr));
  const CallId t1 = s.call("a", "S", "acquire", Json::object(), 1);
  ASSERT_FALSE(s.returns_within(t1, small()))
      << "thread 1 got in past thread 0's exclusive hold: " << s.result(t1);
  const CallId release = s.call("a", "S", "release", Json::object(), 0);
  ASSERT_TRUE(s.await(release).ok(nullptr));
  EXPECT_TRUE(s.await(t1).ok(nullptr)) << s.result(t1);
  MPSPEC_UNRESOLVED_IF_LATE(s, t1, release);
}

TEST(SharedLock, ChildDoesNotHoldParentsSharedHold) {
  MPSPEC_CLAUSES("[shared_lock.process.not_inherited]");
  Scenario s;
  sl_scenario(s, {"a"}, 2);
  s.prelude("S", "acquire").needs_feature("prelude");
  MPSPEC_START(s);
  // The driver process acquired S (shared) before starting the actor.
  for (int thread : {0, 1}) {
    const auto r = s.await(s.call("a", "S", "release", Json::object(), thread));
    EXPECT_TRUE(r.raised("ValueError"))
        << "thread " << thread << " of a child released its parent's hold: " << r;
  }
  auto r = s.await(s.call("a", "S", "acquire"));
  EXPECT_TRUE(r.ok(nullptr)) << "a child's shared acquire beside its parent's shared hold: " << r;
  EXPECT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  // The parent's hold is still there: an exclusive acquire waits for it.
  const CallId w = s.call("a", "S", "acquire", kExclusive, 1);
  EXPECT_FALSE(s.returns_within(w, small()))
      << "the parent's shared hold was released by the child: " << s.result(w);
}

TEST(SharedLock, ChildDoesNotHoldParentsExclusiveHold) {
  MPSPEC_CLAUSES("[shared_lock.process.not_inherited]");
  Scenario s;
  sl_scenario(s, {"a"});
  s.prelude("S", "acquire", kExclusive).needs_feature("prelude");
  MPSPEC_START(s);
  auto r = s.await(s.call("a", "S", "release"));
  EXPECT_TRUE(r.raised("ValueError")) << "a child released its parent's exclusive hold: " << r;
  // Not a re-entry: the child waits for the parent's hold like any other caller.
  const CallId c = s.call("a", "S", "acquire");
  EXPECT_FALSE(s.returns_within(c, small()))
      << "a child's acquire did not wait for its parent's exclusive hold: " << s.result(c);
}

}  // namespace
}  // namespace mpspec
