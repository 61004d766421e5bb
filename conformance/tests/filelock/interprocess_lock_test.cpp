// Scenario tests for spec/filelock/interprocess_lock.md and interprocess_rwlock.md. Each test
// names the clauses it checks. A file lock is held by a handle (one protocol object opened in
// one actor), so the tests give each actor its own objects on one path from
// Scenario::temp_path; the driver opens a file only at an actor's first call on it.
//
// Timing policy (spec/README.md): "is blocked" is a positive handshake plus a `small` grace
// period; "times out" asserts only the lower bound; "is woken" waits with the liveness bound.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "scenario.hpp"

namespace mpspec {
namespace {

using timing::huge;
using timing::kClockResolution;
using timing::small;

const Json kTry = Json{{"block", false}};
Json timed(double t) { return Json{{"block", true}, {"timeout", t}}; }

// Objects "A" and "B": two handles of an InterProcessLock on one path (file `name` in the
// scenario's temporary directory). Returns the path.
std::string two_handles(Scenario& s, const std::string& type, const std::string& name = "lock") {
  const std::string path = s.temp_path(name);
  s.object("A", type, Json{{"path", path}});
  s.object("B", type, Json{{"path", path}});
  if (type == "InterProcessLock") {
    s.needs_method(type, "acquire").needs_method(type, "release");
  } else {
    for (const char* m :
         {"acquire_read_lock", "acquire_write_lock", "release_read_lock", "release_write_lock"})
      s.needs_method(type, m);
  }
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// ------------------------------------------------------------------------ InterProcessLock

TEST(InterProcessLock, CreatesFileAndParents) {
  MPSPEC_CLAUSES("[filelock.path.created] [filelock.acquire.free] [filelock.release.held]");
  Scenario s;
  const std::string path = s.temp_path("a/b/c/lock");
  s.object("A", "InterProcessLock", Json{{"path", path}}).actor("a");
  s.needs_method("InterProcessLock", "acquire").needs_method("InterProcessLock", "release");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  EXPECT_TRUE(std::filesystem::exists(path)) << "no lock file at " << path;
  EXPECT_TRUE(s.await(s.call("a", "A", "release")).ok(nullptr));
}

TEST(InterProcessLock, KeepsFileAndContent) {
  MPSPEC_CLAUSES("[filelock.path.kept] [filelock.advisory]");
  Scenario s;
  const std::string path = two_handles(s, "InterProcessLock");
  const std::string content = "precious data\n";
  {
    std::ofstream out(path, std::ios::binary);
    out << content;
  }
  s.actor("a");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  // Advisory: this process (the suite) reads the file while another process holds the lock.
  EXPECT_EQ(read_file(path), content) << "the file was rewritten or is unreadable while held";
  ASSERT_TRUE(s.await(s.call("a", "A", "release")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  ASSERT_TRUE(s.await(s.call("a", "A", "release")).ok(nullptr));
  s.teardown();
  EXPECT_TRUE(std::filesystem::exists(path)) << "the lock file was deleted";
  EXPECT_EQ(read_file(path), content) << "the lock file's content changed";
}

TEST(InterProcessLock, ExcludesOtherProcesses) {
  MPSPEC_CLAUSES("[filelock.exclusive.processes] [filelock.acquire.nonblocking]");
  Scenario s;
  two_handles(s, "InterProcessLock");
  s.actor("a").actor("b");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "B", "acquire", kTry)).ok(false));
  EXPECT_TRUE(
      s.await(s.call("b", "B", "acquire", Json{{"block", false}, {"timeout", 5}})).ok(false))
      << "block=False must ignore the timeout";
  ASSERT_TRUE(s.await(s.call("a", "A", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "B", "acquire", kTry)).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "A", "acquire", kTry)).ok(false));
}

TEST(InterProcessLock, BlockingAcquireWaitsForRelease) {
  MPSPEC_CLAUSES("[filelock.acquire.blocks] [filelock.acquire.wakes]");
  Scenario s;
  two_handles(s, "InterProcessLock");
  s.actor("a").actor("b");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  const CallId waiter = s.call("b", "B", "acquire");
  ASSERT_FALSE(s.returns_within(waiter, small())) << "acquired while another process held it";
  const CallId release = s.call("a", "A", "release");
  ASSERT_TRUE(s.await(release).ok(nullptr));
  const auto& r = s.await(waiter);
  EXPECT_TRUE(r.ok(true)) << r;
  EXPECT_GE(r.return_ns, s.result(release).invoke_ns) << "the waiter returned before the release";
}

TEST(InterProcessLock, UnrelatedProcessesShareOnlyThePath) {
  // Actor "u" is a fresh execution of the backend's program: it shares no memory, descriptor
  // or object with "a", only the lock's path.
  MPSPEC_CLAUSES("[filelock.unrelated] [filelock.exclusive.processes]");
  Scenario s;
  two_handles(s, "InterProcessLock");
  s.actor("a").independent_actor("u");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("u", "B", "acquire", kTry)).ok(false))
      << "an unrelated process acquired a held lock";
  const CallId waiter = s.call("u", "B", "acquire");
  ASSERT_FALSE(s.returns_within(waiter, small()));
  ASSERT_TRUE(s.await(s.call("a", "A", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(waiter).ok(true)) << s.result(waiter);
  EXPECT_TRUE(s.await(s.call("a", "A", "acquire", kTry)).ok(false))
      << "the unrelated process's hold did not exclude the first one";
}

TEST(InterProcessLock, TimedAcquireExpires) {
  MPSPEC_CLAUSES("[filelock.acquire.timeout]");
  Scenario s;
  two_handles(s, "InterProcessLock");
  s.actor("a").actor("b");
  s.needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  const double t = small();
  const auto& r = s.await(s.call("b", "B", "acquire", timed(t)));
  EXPECT_TRUE(r.ok(false)) << r;
  EXPECT_GE(r.elapsed(), t - kClockResolution) << "timed acquire gave up early: " << r;
  EXPECT_TRUE(s.await(s.call("b", "B", "acquire", timed(0))).ok(false)) << "timeout=0";
  const CallId w = s.call("b", "B", "acquire", timed(huge()));
  ASSERT_FALSE(s.returns_within(w, small()));
  ASSERT_TRUE(s.await(s.call("a", "A", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(w).ok(true)) << s.result(w);
}

TEST(InterProcessLock, HandlesExcludeEachOtherInOneProcess) {
  MPSPEC_CLAUSES("[filelock.exclusive.handles] [filelock.release.other_handle_close]");
  Scenario s;
  two_handles(s, "InterProcessLock");
  s.object("C", "InterProcessLock", Json{{"path", s.temp_path("lock")}});
  s.actor("a").actor("b");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "B", "acquire", kTry)).ok(false))
      << "a second handle in the holder's own process acquired the held lock";
  // A third handle in the holder's process tries, then releases (or fails to: it was never
  // granted the lock); either way A's lock must survive.
  s.await(s.call("a", "C", "acquire", kTry));
  s.await(s.call("a", "C", "release"));
  EXPECT_TRUE(s.await(s.call("b", "B", "acquire", kTry)).ok(false))
      << "another handle's release in the holder's process freed the lock";
}

TEST(InterProcessLock, NotReentrant) {
  MPSPEC_CLAUSES("[filelock.acquire.not_reentrant]");
  Scenario s;
  two_handles(s, "InterProcessLock");
  s.actor("a").actor("b");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  const auto& r = s.await(s.call("a", "A", "acquire", kTry));
  EXPECT_TRUE(r.raised("RuntimeError")) << "acquire through the holding handle: " << r;
  // Held once: one release frees it.
  ASSERT_TRUE(s.await(s.call("a", "A", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "B", "acquire", kTry)).ok(true));
}

TEST(InterProcessLock, ReleaseUnheldRaisesRuntimeError) {
  MPSPEC_CLAUSES("[filelock.release.unheld]");
  Scenario s;
  two_handles(s, "InterProcessLock");
  s.actor("a").actor("b");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "A", "release")).raised("RuntimeError"));
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  const auto& r = s.await(s.call("b", "B", "release"));
  EXPECT_TRUE(r.raised("RuntimeError")) << "release by a handle that does not hold it: " << r;
  EXPECT_TRUE(s.await(s.call("b", "B", "acquire", kTry)).ok(false))
      << "a non-holder's release freed the lock";
}

TEST(InterProcessLock, ContextManager) {
  MPSPEC_CLAUSES("[filelock.context]");
  Scenario s;
  two_handles(s, "InterProcessLock");
  s.actor("a").actor("b");
  s.needs_method("InterProcessLock", "__enter__").needs_method("InterProcessLock", "__exit__");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "A", "__enter__")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "B", "acquire", kTry)).ok(false));
  const CallId waiter = s.call("b", "B", "__enter__");
  ASSERT_FALSE(s.returns_within(waiter, small()));
  EXPECT_TRUE(s.await(s.call("a", "A", "__exit__")).ok(nullptr));
  EXPECT_TRUE(s.await(waiter).ok(true)) << s.result(waiter);
}

TEST(InterProcessLock, KilledHolderReleases) {
  MPSPEC_CLAUSES("[filelock.kill.holder] [filelock.acquire.wakes]");
  Scenario s;
  two_handles(s, "InterProcessLock");
  s.actor("a").actor("b");
  s.needs_feature("kill");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  const CallId waiter = s.call("b", "B", "acquire");
  ASSERT_FALSE(s.returns_within(waiter, small()));
  s.kill("a");
  const auto& r = s.await(waiter);
  EXPECT_TRUE(r.ok(true)) << "the lock of a killed holder was not freed: " << r;
}

TEST(InterProcessLock, KilledWaiterLeavesNoTrace) {
  MPSPEC_CLAUSES("[filelock.kill.waiter]");
  Scenario s;
  two_handles(s, "InterProcessLock");
  s.object("C", "InterProcessLock", Json{{"path", s.temp_path("lock")}});
  s.actor("a").actor("b").actor("c");
  s.needs_feature("kill").needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  const CallId dead = s.call("b", "B", "acquire");
  const CallId live = s.call("c", "C", "acquire");
  ASSERT_FALSE(s.returns_within(dead, small()));
  ASSERT_FALSE(s.returned(live));
  s.kill("b");
  ASSERT_TRUE(s.await(s.call("a", "A", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(live).ok(true)) << s.result(live);
}

// ------------------------------------------------------------ InterProcessReaderWriterLock

TEST(InterProcessReaderWriterLock, ReadersShareWriterExcludes) {
  MPSPEC_CLAUSES(
      "[filerwlock.read.shared] [filerwlock.write.excludes_readers] "
      "[filerwlock.acquire.nonblocking]");
  Scenario s;
  two_handles(s, "InterProcessReaderWriterLock");
  s.actor("a").actor("b");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire_read_lock")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "B", "acquire_read_lock", kTry)).ok(true))
      << "readers in two processes did not share";
  ASSERT_TRUE(s.await(s.call("b", "B", "release_read_lock")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "B", "acquire_write_lock", kTry)).ok(false))
      << "a writer got in while another process read";
  ASSERT_TRUE(s.await(s.call("a", "A", "release_read_lock")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "B", "acquire_write_lock", kTry)).ok(true));
}

TEST(InterProcessReaderWriterLock, WriterExcludesBothModes) {
  MPSPEC_CLAUSES(
      "[filerwlock.write.exclusive] [filerwlock.acquire.timeout] [filerwlock.acquire.wakes]");
  Scenario s;
  two_handles(s, "InterProcessReaderWriterLock");
  s.actor("a").actor("b");
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire_write_lock")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "B", "acquire_read_lock", kTry)).ok(false));
  const double t = small();
  const auto& r = s.await(s.call("b", "B", "acquire_write_lock", timed(t)));
  EXPECT_TRUE(r.ok(false)) << r;
  EXPECT_GE(r.elapsed(), t - kClockResolution) << r;
  const CallId w = s.call("b", "B", "acquire_read_lock");
  ASSERT_FALSE(s.returns_within(w, small()));
  ASSERT_TRUE(s.await(s.call("a", "A", "release_write_lock")).ok(nullptr));
  EXPECT_TRUE(s.await(w).ok(true)) << s.result(w);
}

TEST(InterProcessReaderWriterLock, NoSilentConversion) {
  MPSPEC_CLAUSES("[filerwlock.mode.no_conversion]");
  Scenario s;
  two_handles(s, "InterProcessReaderWriterLock");
  s.actor("a").actor("b");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  // The only reader asks for write mode through its own handle: refused (RuntimeError) or
  // queued behind its own read hold (False), never granted in place.
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire_read_lock")).ok(true));
  const auto& sole = s.await(s.call("a", "A", "acquire_write_lock", kTry));
  EXPECT_TRUE(sole.raised("RuntimeError") || sole.ok(false))
      << "the sole reader's handle was silently converted to a writer: " << sole;
  // Its read hold is intact: another process still reads, and does not write.
  EXPECT_TRUE(s.await(s.call("b", "B", "acquire_read_lock", kTry)).ok(true))
      << "the reader's hold changed mode";
  const auto& other = s.await(s.call("a", "A", "acquire_write_lock", kTry));
  EXPECT_FALSE(other.ok(true)) << "a reader became a writer while another process read: " << other;
  EXPECT_TRUE(other.raised("RuntimeError") || other.ok(false)) << other;
}

TEST(InterProcessReaderWriterLock, ReleaseUnheldRaisesRuntimeError) {
  MPSPEC_CLAUSES("[filerwlock.release.unheld]");
  Scenario s;
  two_handles(s, "InterProcessReaderWriterLock");
  s.actor("a");
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "A", "release_read_lock")).raised("RuntimeError"));
  EXPECT_TRUE(s.await(s.call("a", "A", "release_write_lock")).raised("RuntimeError"));
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire_read_lock")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "A", "release_write_lock")).raised("RuntimeError"))
      << "release_write_lock by a reader";
}

TEST(InterProcessReaderWriterLock, KilledHolderReleases) {
  MPSPEC_CLAUSES("[filerwlock.kill.holder]");
  Scenario s;
  two_handles(s, "InterProcessReaderWriterLock");
  s.actor("a").actor("b");
  s.needs_feature("kill");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire_read_lock")).ok(true));
  const CallId writer = s.call("b", "B", "acquire_write_lock");
  ASSERT_FALSE(s.returns_within(writer, small()));
  s.kill("a");
  EXPECT_TRUE(s.await(writer).ok(true))
      << "a killed reader's hold was not freed: " << s.result(writer);
}

}  // namespace
}  // namespace mpspec
