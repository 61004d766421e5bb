// Unit tests of mp::FileLock and mp::FileRWLock (and their platform layer,
// mp::platform::LockFile). Comments name the clauses of spec/filelock/*.md a
// test exercises (the conformance suite is what checks them normatively).
//
// Every test works in a fresh directory from mkdtemp() under $TMPDIR (or
// /tmp), removed when the test ends. Processes that must share nothing but the
// path are this test binary itself, re-executed with MP_FILE_LOCK_TEST_HELPER
// in its environment (see RunHelper()), and, where available, python3.
#include "mp/file_lock.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/platform/file_lock.hpp"
#include "mp/platform/shm.hpp"
#include "test_util.hpp"

namespace {

using mp::platform::SharedMapping;

using mp_test::Child;
using mp_test::Clock;
using mp_test::kClockResolution;
using mp_test::kLiveness;
using mp_test::kStaysBlocked;
using mp_test::Pipe;
using mp_test::seconds_since;
using std::chrono::milliseconds;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kLivenessSeconds = 10.0;

// --- Helpers ------------------------------------------------------------------

// A fresh directory, removed with everything in it by the destructor.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/mp_file_lock_test.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class FileLockTest : public testing::Test {
 protected:
  TempDir dir_;
  const std::string path_ = dir_.file("lock");
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// Asserts that `call` throws mp::RuntimeError with `message`.
template <class F>
void ExpectRuntimeError(F&& call, const std::string& message) {
  try {
    call();
    ADD_FAILURE() << "expected mp::RuntimeError(\"" << message << "\")";
  } catch (const mp::RuntimeError& e) {
    EXPECT_STREQ(e.kind(), "RuntimeError");
    EXPECT_EQ(std::string(e.what()), message);
  }
}

// Number of POSIX timers of this process (/proc/self/timers), or -1 if the
// kernel does not show them.
int CountPosixTimers() {
  std::ifstream in("/proc/self/timers");
  if (!in) return -1;
  int count = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("ID:", 0) == 0) ++count;
  }
  return count;
}

bool SignalPendingForThread(int signo) {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, signo) == 1;
}

extern "C" void EmptyHandler(int) {}

// Installs an empty handler for `signo` without SA_RESTART for its lifetime.
class ScopedHandler {
 public:
  explicit ScopedHandler(int signo) : signo_(signo) {
    struct sigaction action {};
    action.sa_handler = &EmptyHandler;
    sigemptyset(&action.sa_mask);
    sigaction(signo_, &action, &saved_);
  }
  ~ScopedHandler() { sigaction(signo_, &saved_, nullptr); }
  ScopedHandler(const ScopedHandler&) = delete;
  ScopedHandler& operator=(const ScopedHandler&) = delete;

 private:
  int signo_;
  struct sigaction saved_ {};
};

// Waits up to kLiveness for `flag`.
bool WaitFor(const std::atomic<bool>& flag) {
  const auto start = Clock::now();
  while (!flag.load() && Clock::now() - start < kLiveness) std::this_thread::yield();
  return flag.load();
}

// True if `flag` is still false after kStaysBlocked.
bool StaysFalse(const std::atomic<bool>& flag) {
  const auto start = Clock::now();
  while (!flag.load() && Clock::now() - start < kStaysBlocked) std::this_thread::yield();
  return !flag.load();
}

// --- A process that shares nothing but the path -------------------------------
//
// ExecProcess forks and execs a program whose standard input and output (or
// the descriptors given) are pipes to this process; it is a Child, so it is
// killed and reaped at the end, and bounded by the Child's watchdog (alarm()
// survives exec). Lock descriptors of this process are O_CLOEXEC and closed
// in a forked child anyway: the program inherits nothing of them.

class ExecProcess {
 public:
  ExecProcess(std::vector<std::string> argv, std::vector<std::string> extra_env, int in_fd,
              int out_fd) {
    int to_child[2];
    int from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) std::abort();
    // Everything exec needs is prepared before fork().
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
    for (auto& e : extra_env) env_strings.push_back(std::move(e));
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    child_ = std::make_unique<Child>([&] {
      // dup2() to another number clears O_CLOEXEC on the copy.
      if (dup2(to_child[0], in_fd) < 0 || dup2(from_child[1], out_fd) < 0) return 126;
      execve(args[0], args.data(), envp.data());
      return 127;
    });
    close(to_child[0]);
    close(from_child[1]);
    to_ = to_child[1];
    from_ = from_child[0];
  }
  ~ExecProcess() {
    child_.reset();  // kill and reap first
    close(to_);
    close(from_);
  }
  ExecProcess(const ExecProcess&) = delete;
  ExecProcess& operator=(const ExecProcess&) = delete;

  bool send(char c) { return write(to_, &c, 1) == 1; }

  // One byte within `timeout`, or nullopt (timeout or EOF).
  std::optional<char> receive(milliseconds timeout = kLiveness) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left < 0) return std::nullopt;
      pollfd p{from_, POLLIN, 0};
      const int rc = poll(&p, 1, static_cast<int>(left) + 1);
      if (rc < 0 && errno == EINTR) continue;
      if (rc <= 0) return std::nullopt;
      char c;
      const ssize_t n = read(from_, &c, 1);
      if (n == 1) return c;
      if (n < 0 && errno == EINTR) continue;
      return std::nullopt;
    }
  }

  Child& child() { return *child_; }

 private:
  std::unique_ptr<Child> child_;
  int to_ = -1;
  int from_ = -1;
};

// The re-executed test binary. With MP_FILE_LOCK_TEST_HELPER=<kind>:<path> in
// its environment it never reaches main(): during static initialisation it
// takes the lock on <path> — kind "lock" (FileLock), "read" or "write"
// (FileRWLock) — and reports on descriptor 101:
//   't' / 'f'  whether a first non-blocking attempt succeeded;
//   'h'        after a failed attempt, that a blocking acquire (10 s) succeeded
//              ('x' if it timed out: exit 2);
// then waits for any byte on descriptor 100 (10 s, else exit 3), releases,
// reports 'd' and exits 0.
constexpr char kHelperEnv[] = "MP_FILE_LOCK_TEST_HELPER";
constexpr int kHelperIn = 100;
constexpr int kHelperOut = 101;

[[noreturn]] void RunHelper(const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string path = spec.substr(colon + 1);
  auto report = [](char c) {
    if (write(kHelperOut, &c, 1) != 1) _exit(4);
  };
  try {
    mp::FileLock lock(path);
    mp::FileRWLock rw(path);
    auto acquire = [&](bool block, std::optional<double> timeout) {
      if (kind == "lock") return lock.acquire(block, timeout);
      if (kind == "read") return rw.acquire_read(block, timeout);
      return rw.acquire_write(block, timeout);
    };
    const bool got = acquire(false, std::nullopt);
    report(got ? 't' : 'f');
    if (!got) {
      if (!acquire(true, kLivenessSeconds)) {
        report('x');
        _exit(2);
      }
      report('h');
    }
    pollfd p{kHelperIn, POLLIN, 0};
    int rc;
    do {
      rc = poll(&p, 1, 10'000);
    } while (rc < 0 && errno == EINTR);
    if (rc != 1) _exit(3);
    if (kind == "lock") {
      lock.release();
    } else if (kind == "read") {
      rw.release_read();
    } else {
      rw.release_write();
    }
    report('d');
    _exit(0);
  } catch (...) {
    _exit(5);
  }
}

const bool kIsHelper = [] {
  if (const char* spec = std::getenv(kHelperEnv)) RunHelper(spec);
  return false;
}();

std::unique_ptr<ExecProcess> StartHelper(const std::string& kind, const std::string& path) {
  return std::make_unique<ExecProcess>(
      std::vector<std::string>{"/proc/self/exe"},
      std::vector<std::string>{std::string(kHelperEnv) + "=" + kind + ":" + path}, kHelperIn,
      kHelperOut);
}

// --- The lock file ------------------------------------------------------------

TEST_F(FileLockTest, ConstructionOpensNothing) {
  mp::FileLock lock(path_);
  mp::FileRWLock rw(path_);
  EXPECT_EQ(lock.path(), path_);
  EXPECT_EQ(rw.path(), path_);
  EXPECT_FALSE(lock.acquired());
  EXPECT_FALSE(rw.read_acquired());
  EXPECT_FALSE(rw.write_acquired());
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(FileLockTest, EmptyPathThrowsValueError) {
  EXPECT_THROW(mp::FileLock(""), mp::ValueError);
  EXPECT_THROW(mp::FileRWLock(""), mp::ValueError);
}

// [filelock.path.created] [filelock.path.kept]
TEST_F(FileLockTest, AcquireCreatesFileAndParentDirectories) {
  const std::string nested = dir_.file("a/b//c/d.lock");
  {
    mp::FileLock lock(nested);
    ASSERT_TRUE(lock.acquire());
    EXPECT_TRUE(lock.acquired());
    EXPECT_TRUE(std::filesystem::is_directory(dir_.file("a/b/c")));
    EXPECT_TRUE(std::filesystem::is_regular_file(nested));
    lock.release();
  }
  EXPECT_TRUE(std::filesystem::is_regular_file(nested));  // never deleted
  mp::FileRWLock rw(dir_.file("x/y/rw.lock"));
  ASSERT_TRUE(rw.acquire_read());
  EXPECT_TRUE(std::filesystem::is_regular_file(dir_.file("x/y/rw.lock")));
  rw.release_read();
}

TEST_F(FileLockTest, FileModeIsReadWriteForEveryoneMinusUmask) {
  const mode_t old_umask = umask(022);
  mp::FileLock lock(path_);
  ASSERT_TRUE(lock.acquire());
  umask(old_umask);
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  lock.release();
}

// [filelock.path.kept] [filelock.advisory]
TEST_F(FileLockTest, ContentSurvivesEveryAcquireAndRelease) {
  const std::string content = "pid 1234\nsome state that must survive\n";
  WriteFile(path_, content);
  {
    mp::FileLock lock(path_);
    mp::FileRWLock rw(path_);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(lock.acquire());
      // Advisory: the holder's lock does not stop anyone from reading.
      EXPECT_EQ(ReadFile(path_), content);
      lock.release();
      ASSERT_TRUE(rw.acquire_read());
      rw.release_read();
      ASSERT_TRUE(rw.acquire_write(true, 1.0));
      rw.release_write();
    }
  }
  EXPECT_EQ(ReadFile(path_), content);
  EXPECT_EQ(std::filesystem::file_size(path_), content.size());
}

TEST_F(FileLockTest, UnopenableFileThrowsSystemErrorAndLaterAcquireRetries) {
  WriteFile(dir_.file("plain"), "not a directory");
  mp::FileLock lock(dir_.file("plain/lock"));  // a component is a regular file
  try {
    lock.acquire();
    ADD_FAILURE() << "expected std::system_error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOTDIR) << e.what();
    EXPECT_NE(std::string(e.what()).find("plain/lock"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(lock.acquired());
  EXPECT_THROW(lock.acquire(false), std::system_error);
  EXPECT_THROW(lock.release(), mp::RuntimeError);
  // Once the obstacle is gone, the same handle works.
  std::filesystem::remove(dir_.file("plain"));
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

// --- Exclusion and errors in one process --------------------------------------

// [filelock.exclusive.handles] [filelock.acquire.free] [filelock.release.held]
TEST_F(FileLockTest, TwoHandlesInOneThreadExcludeEachOther) {
  mp::FileLock a(path_);
  mp::FileLock b(path_);
  ASSERT_TRUE(a.acquire());
  EXPECT_FALSE(b.acquire(false));
  EXPECT_FALSE(b.try_lock());
  EXPECT_FALSE(b.acquire(true, 0.0));
  EXPECT_FALSE(b.acquire(true, 0.02));
  EXPECT_FALSE(b.acquired());
  a.release();
  EXPECT_FALSE(a.acquired());
  ASSERT_TRUE(b.acquire(false));
  EXPECT_FALSE(a.acquire(false));
  b.release();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(a.acquire());
    EXPECT_FALSE(b.acquire(false));
    a.release();
    ASSERT_TRUE(b.acquire(true, kLivenessSeconds));
    b.release();
  }
}

// [filelock.acquire.free]
TEST_F(FileLockTest, AcquireWithAnyArgumentsTakesFreeLock) {
  mp::FileLock lock(path_);
  for (std::optional<double> t :
       {std::optional<double>(), std::optional<double>(0.0), std::optional<double>(-1.0),
        std::optional<double>(0.5), std::optional<double>(kInf), std::optional<double>(1e20)}) {
    EXPECT_TRUE(lock.acquire(true, t));
    lock.release();
    EXPECT_TRUE(lock.acquire(false, t));
    lock.release();
  }
}

// [filelock.acquire.not_reentrant]
TEST_F(FileLockTest, AcquireThroughTheHoldingHandleThrowsRuntimeError) {
  mp::FileLock lock(path_);
  mp::FileLock other(path_);
  ASSERT_TRUE(lock.acquire());
  const std::string message = "lock already held by this object";
  ExpectRuntimeError([&] { lock.acquire(); }, message);
  ExpectRuntimeError([&] { lock.acquire(false); }, message);
  ExpectRuntimeError([&] { lock.acquire(true, 1.0); }, message);
  ExpectRuntimeError([&] { lock.acquire(true, 0.0); }, message);
  ExpectRuntimeError([&] { (void)lock.try_lock(); }, message);
  ExpectRuntimeError([&] { (void)lock.try_lock_for(milliseconds(10)); }, message);
  ExpectRuntimeError([&] { (void)lock.try_lock_until(Clock::now()); }, message);
  // Still held, once.
  EXPECT_TRUE(lock.acquired());
  EXPECT_FALSE(other.acquire(false));
  lock.release();
  EXPECT_TRUE(other.acquire(false));
  other.release();
  ExpectRuntimeError([&] { lock.release(); }, "release of an unacquired lock");
}

// [filelock.release.unheld]
TEST_F(FileLockTest, ReleaseByAHandleThatDoesNotHoldThrowsRuntimeError) {
  mp::FileLock holder(path_);
  mp::FileLock other(path_);
  const std::string message = "release of an unacquired lock";
  ExpectRuntimeError([&] { other.release(); }, message);  // never opened
  ExpectRuntimeError([&] { other.unlock(); }, message);
  ASSERT_TRUE(holder.acquire());
  EXPECT_FALSE(other.acquire(false));  // opened now, holds nothing
  ExpectRuntimeError([&] { other.release(); }, message);
  // Nothing changed: the holder still holds.
  EXPECT_TRUE(holder.acquired());
  mp::FileLock third(path_);
  EXPECT_FALSE(third.acquire(false));
  holder.release();
  ExpectRuntimeError([&] { holder.release(); }, message);
  try {
    holder.release();
  } catch (const mp::Error& e) {  // reachable through the base class
    EXPECT_STREQ(e.kind(), "RuntimeError");
  }
}

// [filelock.release.other_handle_close]
TEST_F(FileLockTest, ClosingOrDroppingAnotherHandleKeepsTheLock) {
  mp::FileLock holder(path_);
  ASSERT_TRUE(holder.acquire());
  {
    mp::FileLock other(path_);
    EXPECT_FALSE(other.acquire(false));  // opens its own description
  }  // closed: with POSIX record locks this would drop the holder's lock
  {
    mp::FileRWLock rw(path_);
    EXPECT_FALSE(rw.acquire_read(false));
    mp::FileRWLock moved = std::move(rw);
    moved = mp::FileRWLock(path_);  // assignment closes the previous handle
  }
  mp::FileLock probe(path_);
  EXPECT_FALSE(probe.acquire(false));
  EXPECT_TRUE(holder.acquired());
  holder.release();
  EXPECT_TRUE(probe.acquire(false));
  probe.release();
}

// [filelock.acquire.nonblocking]
TEST_F(FileLockTest, NonBlockingAcquireOfHeldLockFailsAtOnce) {
  mp::FileLock holder(path_);
  mp::FileLock lock(path_);
  ASSERT_TRUE(holder.acquire());
  const auto start = Clock::now();
  EXPECT_FALSE(lock.acquire(false));
  EXPECT_FALSE(lock.acquire(false, 5.0));
  EXPECT_FALSE(lock.acquire(false, kInf));
  EXPECT_FALSE(lock.acquire(false, kNaN));  // ignored, not validated
  EXPECT_FALSE(lock.try_lock());
  EXPECT_LT(seconds_since(start), 1.0);
  holder.release();
}

// [filelock.acquire.timeout] [filelock.acquire.timeout.negative]
TEST_F(FileLockTest, ZeroAndNegativeTimeoutsMakeOneAttempt) {
  mp::FileLock holder(path_);
  mp::FileLock lock(path_);
  ASSERT_TRUE(holder.acquire());
  const auto start = Clock::now();
  EXPECT_FALSE(lock.acquire(true, 0.0));
  EXPECT_FALSE(lock.acquire(true, -0.0));
  EXPECT_FALSE(lock.acquire(true, -1.0));
  EXPECT_FALSE(lock.acquire(true, -kInf));
  EXPECT_FALSE(lock.try_lock_for(milliseconds(0)));
  EXPECT_FALSE(lock.try_lock_for(milliseconds(-5)));
  EXPECT_FALSE(lock.try_lock_until(Clock::now() - std::chrono::hours(1)));
  EXPECT_FALSE(lock.try_lock_until(Clock::time_point()));
  EXPECT_LT(seconds_since(start), 1.0);
  holder.release();
  EXPECT_TRUE(lock.acquire(true, -3.0));
  lock.release();
}

TEST_F(FileLockTest, NaNTimeoutThrowsValueErrorAndTouchesNothing) {
  mp::FileLock lock(path_);
  EXPECT_THROW(lock.acquire(true, kNaN), mp::ValueError);
  EXPECT_FALSE(std::filesystem::exists(path_));  // not even opened
  ASSERT_TRUE(lock.acquire());
  ExpectRuntimeError([&] { lock.acquire(true, 1.0); }, "lock already held by this object");
  lock.release();
  mp::FileRWLock rw(path_);
  EXPECT_THROW(rw.acquire_read(true, kNaN), mp::ValueError);
  EXPECT_THROW(rw.acquire_write(true, -kNaN), mp::ValueError);
  EXPECT_FALSE(rw.read_acquired());
  EXPECT_TRUE(rw.acquire_write(false, kNaN));  // block=false ignores it
  rw.release_write();
}

// [filelock.acquire.timeout]
TEST_F(FileLockTest, TimedAcquireOfHeldLockExpiresNoEarlierThanTimeout) {
  mp::FileLock holder(path_);
  mp::FileLock lock(path_);
  ASSERT_TRUE(holder.acquire());
  for (double timeout : {0.001, 0.05, 0.2}) {
    const auto start = Clock::now();
    EXPECT_FALSE(lock.acquire(true, timeout));
    const double elapsed = seconds_since(start);
    EXPECT_GE(elapsed, timeout - 0.001) << "timeout " << timeout;
    EXPECT_LT(elapsed, kLivenessSeconds) << "timeout " << timeout;
    EXPECT_FALSE(lock.acquired());
  }
  auto start = Clock::now();
  EXPECT_FALSE(lock.try_lock_for(milliseconds(30)));
  EXPECT_GE(Clock::now() - start, milliseconds(30) - kClockResolution);
  start = Clock::now();
  EXPECT_FALSE(lock.try_lock_until(start + milliseconds(30)));
  EXPECT_GE(Clock::now() - start, milliseconds(30) - kClockResolution);
  holder.release();
  EXPECT_TRUE(lock.try_lock_for(std::chrono::seconds(1)));
  lock.unlock();
  EXPECT_TRUE(lock.try_lock_until(Clock::time_point::max()));
  lock.unlock();
}

// The timed wait's machinery: a POSIX timer per call and a real-time signal
// whose handler is empty. Hundreds of expiring waits leave no timer, no
// pending signal and no change of the signal mask behind.
TEST_F(FileLockTest, ManyTimedWaitsLeaveNoTimerOrSignalBehind) {
  mp::FileLock holder(path_);
  mp::FileLock lock(path_);
  ASSERT_TRUE(holder.acquire());
  const int signo = mp::file_lock_timeout_signal();
  EXPECT_EQ(signo, SIGRTMIN + 7);
  const int timers_before = CountPosixTimers();
  sigset_t mask_before;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask_before);
  int early = 0;
  for (int i = 0; i < 300; ++i) {
    const double timeout = (i % 3 == 0) ? 0.002 : 0.0005;
    const auto start = Clock::now();
    if (lock.acquire(true, timeout)) {
      ADD_FAILURE() << "acquired a held lock";
      lock.release();
    }
    if (seconds_since(start) < timeout - 0.001) ++early;
  }
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(lock.try_lock_for(std::chrono::microseconds(200)));
  EXPECT_EQ(early, 0);
  EXPECT_EQ(CountPosixTimers(), timers_before);
  EXPECT_FALSE(SignalPendingForThread(signo));
  sigset_t mask_after;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask_after);
  for (int s = 1; s <= SIGRTMAX; ++s) {
    EXPECT_EQ(sigismember(&mask_before, s), sigismember(&mask_after, s)) << "signal " << s;
  }
  // The handler libmp installed: not the default, and without SA_RESTART.
  struct sigaction action {};
  ASSERT_EQ(sigaction(signo, nullptr, &action), 0);
  EXPECT_NE(action.sa_handler, SIG_DFL);
  EXPECT_NE(action.sa_handler, SIG_IGN);
  EXPECT_EQ(action.sa_flags & SA_RESTART, 0);
  // Untimed and non-blocking acquires create no timer either.
  holder.release();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(lock.acquire());
    lock.release();
    ASSERT_TRUE(lock.acquire(true, 1.0));  // free: one attempt, no timer
    lock.release();
  }
  EXPECT_EQ(CountPosixTimers(), timers_before);
}

// A timed wait is interrupted by other signals too (here SIGUSR1, handled
// without SA_RESTART, sent every ~1 ms): it resumes with the same deadline.
TEST_F(FileLockTest, TimedWaitAbsorbsOtherSignals) {
  mp::FileLock holder(path_);
  mp::FileLock lock(path_);
  ASSERT_TRUE(holder.acquire());
  ScopedHandler handler(SIGUSR1);
  const pthread_t waiter = pthread_self();
  std::atomic<bool> done{false};
  std::atomic<int> sent{0};
  std::thread signaller([&] {
    while (!done.load()) {
      pthread_kill(waiter, SIGUSR1);
      sent.fetch_add(1);
      std::this_thread::sleep_for(milliseconds(1));
    }
  });
  const auto start = Clock::now();
  const bool got = lock.acquire(true, 0.2);
  const double elapsed = seconds_since(start);
  done = true;
  signaller.join();
  EXPECT_FALSE(got);
  EXPECT_GE(elapsed, 0.2 - 0.001);
  EXPECT_LT(elapsed, kLivenessSeconds);
  EXPECT_GT(sent.load(), 0);
  // An untimed wait absorbs them as well, until the release.
  std::atomic<bool> acquired{false};
  std::atomic<bool> stop{false};
  std::thread blocked([&] {
    const pthread_t self = pthread_self();
    std::thread pester([&] {
      while (!stop.load()) {
        pthread_kill(self, SIGUSR1);
        std::this_thread::sleep_for(milliseconds(1));
      }
    });
    acquired = lock.acquire();
    stop = true;
    pester.join();
  });
  EXPECT_TRUE(StaysFalse(acquired));
  holder.release();
  EXPECT_TRUE(WaitFor(acquired));
  stop = true;
  blocked.join();
  lock.release();
}

// The thread's mask blocks the timeout signal: libmp unblocks it for the
// wait (else the wait could never end) and restores the mask afterwards.
TEST_F(FileLockTest, TimedWaitEndsWhenTheSignalIsBlockedInTheThread) {
  mp::FileLock holder(path_);
  ASSERT_TRUE(holder.acquire());
  std::thread([&] {
    const int signo = mp::file_lock_timeout_signal();
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, signo);
    pthread_sigmask(SIG_BLOCK, &block, nullptr);
    mp::FileLock lock(path_);
    for (int i = 0; i < 20; ++i) {
      const auto start = Clock::now();
      EXPECT_FALSE(lock.acquire(true, 0.01));
      const double elapsed = seconds_since(start);
      EXPECT_GE(elapsed, 0.01 - 0.001);
      EXPECT_LT(elapsed, kLivenessSeconds);
    }
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, nullptr, &now);
    EXPECT_EQ(sigismember(&now, signo), 1);  // still blocked
    EXPECT_FALSE(SignalPendingForThread(signo));
  }).join();
  holder.release();
}

// The timer targets the waiting thread (SIGEV_THREAD_ID): concurrent timed
// waits in several threads each end at their own deadline.
TEST_F(FileLockTest, TimedWaitsInSeveralThreadsEachExpire) {
  mp::FileLock holder(path_);
  ASSERT_TRUE(holder.acquire());
  constexpr int kThreads = 4;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      mp::FileLock lock(path_);
      for (int i = 0; i < 20; ++i) {
        const double timeout = 0.001 * (1 + (t + i) % 5);
        const auto start = Clock::now();
        if (lock.acquire(true, timeout)) bad.fetch_add(1000);
        if (seconds_since(start) < timeout - 0.001) bad.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  holder.release();
}

// [filelock.acquire.blocks] [filelock.acquire.wakes] between threads, each
// with a handle of its own.
TEST_F(FileLockTest, BlockedAcquireInAnotherThreadIsWokenByRelease) {
  for (const bool timed : {false, true}) {
    mp::FileLock holder(path_);
    ASSERT_TRUE(holder.acquire());
    std::atomic<bool> started{false};
    std::atomic<bool> done{false};
    std::atomic<bool> result{false};
    std::thread waiter([&] {
      mp::FileLock lock(path_);
      started = true;
      result = timed ? lock.acquire(true, kLivenessSeconds) : lock.acquire();
      done = true;
      if (result) lock.release();
    });
    ASSERT_TRUE(WaitFor(started));
    EXPECT_TRUE(StaysFalse(done)) << "acquire returned while the lock was held";
    holder.release();
    waiter.join();
    EXPECT_TRUE(result) << (timed ? "timed" : "blocking");
  }
}

// A handle has no owner thread: another thread may release it.
TEST_F(FileLockTest, AnotherThreadMayReleaseTheHandle) {
  mp::FileLock lock(path_);
  ASSERT_TRUE(lock.acquire());
  std::thread([&] { lock.release(); }).join();
  EXPECT_FALSE(lock.acquired());
  mp::FileLock other(path_);
  EXPECT_TRUE(other.acquire(false));
  other.release();
}

// One FileLock per thread on one path: mutual exclusion between threads.
TEST_F(FileLockTest, HandlesPerThreadGiveMutualExclusion) {
  constexpr int kThreads = 3;
  constexpr int kIterations = 2000;
  std::int64_t counter = 0;  // guarded by the file lock
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      mp::FileLock lock(path_);
      for (int i = 0; i < kIterations; ++i) {
        const bool timed = (i + t) % 2 == 0;
        if (!(timed ? lock.acquire(true, kLivenessSeconds) : lock.acquire())) {
          overlaps.fetch_add(1000000);
          continue;
        }
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        ++counter;
        inside.fetch_sub(1);
        lock.release();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, std::int64_t{kThreads} * kIterations);
}

// [filelock.context]
TEST_F(FileLockTest, WorksWithStandardLockGuards) {
  mp::FileLock lock(path_);
  mp::FileLock other(path_);
  {
    std::lock_guard<mp::FileLock> guard(lock);
    EXPECT_TRUE(lock.acquired());
    EXPECT_FALSE(other.try_lock());
  }
  EXPECT_FALSE(lock.acquired());
  {
    std::unique_lock<mp::FileLock> ul(lock, std::try_to_lock);
    EXPECT_TRUE(ul.owns_lock());
    std::unique_lock<mp::FileLock> second(other, std::defer_lock);
    EXPECT_FALSE(second.try_lock_for(milliseconds(1)));
    EXPECT_FALSE(second.try_lock_until(Clock::now() + milliseconds(1)));
  }
  {
    std::scoped_lock guard(lock);
    EXPECT_FALSE(other.try_lock());
  }
  try {
    std::lock_guard<mp::FileLock> guard(lock);
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(other.try_lock());
  other.unlock();
}

TEST_F(FileLockTest, MovingTransfersTheHandleAndItsHold) {
  mp::FileLock a(path_);
  ASSERT_TRUE(a.acquire());
  mp::FileLock b = std::move(a);
  EXPECT_TRUE(b.acquired());
  EXPECT_FALSE(a.acquired());  // NOLINT(bugprone-use-after-move): documented state
  mp::FileLock probe(path_);
  EXPECT_FALSE(probe.acquire(false));
  b.release();
  ASSERT_TRUE(b.acquire());
  b = mp::FileLock(path_);  // assigning over a held handle releases it
  EXPECT_FALSE(b.acquired());
  EXPECT_TRUE(probe.acquire(false));
  probe.release();
}

// --- Processes ------------------------------------------------------------------

// [filelock.exclusive.processes] [filelock.acquire.blocks] [filelock.acquire.wakes]
TEST_F(FileLockTest, ExclusionBetweenProcesses) {
  for (const bool timed : {false, true}) {
    mp::FileLock lock(path_);
    ASSERT_TRUE(lock.acquire());
    Pipe to_parent;
    Pipe to_child;
    Child child([&] {
      mp::FileLock mine(path_);
      if (mine.acquire(false)) return 2;
      if (mine.acquire(true, 0.02)) return 3;
      if (!to_parent.send('r')) return 4;
      const bool got = timed ? mine.acquire(true, kLivenessSeconds) : mine.acquire();
      if (!got) return 5;
      if (!to_parent.send('g')) return 6;
      if (to_child.receive() != 'q') return 7;
      mine.release();
      return 0;
    });
    ASSERT_EQ(to_parent.receive(), 'r');
    EXPECT_EQ(to_parent.receive(kStaysBlocked), std::nullopt) << "child not blocked";
    lock.release();
    EXPECT_EQ(to_parent.receive(), 'g');
    EXPECT_FALSE(lock.acquire(false));  // the child holds it now
    EXPECT_FALSE(lock.acquire(true, 0.02));
    to_child.send('q');
    EXPECT_EQ(child.exit_code(), 0) << (timed ? "timed" : "blocking");
    EXPECT_TRUE(lock.acquire(true, kLivenessSeconds));
    lock.release();
  }
}

// A handle copied into a child by fork() is closed there and holds nothing,
// even when the parent's copy holds the lock; the child's copy is excluded
// like any other handle, and using or dropping it never frees the parent's
// lock.
TEST_F(FileLockTest, ForkedChildsCopyOfAHandleHoldsNothing) {
  mp::FileLock lock(path_);
  ASSERT_TRUE(lock.acquire());
  Pipe to_parent;
  Pipe to_child;
  Child child([&] {
    if (lock.acquired()) return 2;
    try {
      lock.release();
      return 3;
    } catch (const mp::RuntimeError&) {
    }
    if (lock.acquire(false)) return 4;  // reopens: a new handle, excluded
    if (!to_parent.send('r')) return 5;
    if (!lock.acquire(true, kLivenessSeconds)) return 6;
    if (!to_parent.send('g')) return 7;
    if (to_child.receive() != 'q') return 8;
    lock.release();
    return 0;
  });
  ASSERT_EQ(to_parent.receive(), 'r');
  EXPECT_TRUE(lock.acquired());
  mp::FileLock probe(path_);
  EXPECT_FALSE(probe.acquire(false));  // the child's attempts freed nothing
  EXPECT_EQ(to_parent.receive(kStaysBlocked), std::nullopt) << "child not blocked";
  lock.release();
  EXPECT_EQ(to_parent.receive(), 'g');
  EXPECT_FALSE(lock.acquire(false));
  to_child.send('q');
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_TRUE(lock.acquire(true, kLivenessSeconds));
  lock.release();
}

// The fork handler closes inherited lock descriptors in the child: a process
// that forked while holding the lock and then died does not leave the lock
// held through the surviving child's inherited descriptor (the open file
// description would otherwise live on, and its lock with it).
TEST_F(FileLockTest, SurvivingForkedChildDoesNotKeepADeadHoldersLock) {
  // Become the reaper of the orphaned grandchild, so that it is reaped here.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  auto mapping = SharedMapping::anonymous(sizeof(std::atomic<pid_t>));
  auto* grandchild_pid = ::new (mapping.data()) std::atomic<pid_t>(0);
  Pipe to_parent;
  Pipe to_grandchild;
  struct ReapGrandchild {
    std::atomic<pid_t>* pid;
    ~ReapGrandchild() {
      const pid_t p = pid->load();
      if (p > 0) {
        kill(p, SIGKILL);
        int status;
        while (waitpid(p, &status, 0) < 0 && errno == EINTR) {
        }
      }
      prctl(PR_SET_CHILD_SUBREAPER, 0);
    }
  } reap{grandchild_pid};
  Child middle([&] {
    mp::FileLock lock(path_);
    if (!lock.acquire()) return 2;
    const pid_t grandchild = fork();
    if (grandchild < 0) return 3;
    if (grandchild == 0) {
      alarm(20);
      (void)to_grandchild.receive();  // lives until told to go (or 10 s)
      _exit(0);
    }
    grandchild_pid->store(grandchild);
    to_parent.send('h');
    for (;;) pause();  // until killed
  });
  ASSERT_EQ(to_parent.receive(), 'h');
  const pid_t grandchild = grandchild_pid->load();
  mp::FileLock probe(path_);
  EXPECT_FALSE(probe.acquire(false));
  ASSERT_TRUE(middle.kill_and_reap());
  EXPECT_TRUE(probe.acquire(true, kLivenessSeconds));
  EXPECT_EQ(kill(grandchild, 0), 0) << "the grandchild should still be alive";
  probe.release();
  to_grandchild.send('q');
  int status = 0;
  pid_t reaped;
  while ((reaped = waitpid(grandchild, &status, 0)) < 0 && errno == EINTR) {
  }
  EXPECT_EQ(reaped, grandchild);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  grandchild_pid->store(0);
}

// [filelock.kill.holder]
TEST_F(FileLockTest, KilledHolderFreesTheLock) {
  Pipe to_parent;
  Child holder([&] {
    mp::FileLock lock(path_);
    if (!lock.acquire(false)) return 2;
    to_parent.send('h');
    for (;;) pause();  // until killed (or the watchdog fires)
  });
  ASSERT_EQ(to_parent.receive(), 'h');
  mp::FileLock lock(path_);
  EXPECT_FALSE(lock.acquire(false));
  // A waiter in another process, blocked when the holder dies, is admitted.
  Pipe to_parent2;
  Child waiter([&] {
    mp::FileLock mine(path_);
    to_parent2.send('r');
    if (!mine.acquire(true, kLivenessSeconds)) return 2;
    to_parent2.send('g');
    mine.release();
    return 0;
  });
  ASSERT_EQ(to_parent2.receive(), 'r');
  EXPECT_EQ(to_parent2.receive(kStaysBlocked), std::nullopt) << "waiter not blocked";
  ASSERT_TRUE(holder.kill_and_reap());
  EXPECT_EQ(to_parent2.receive(), 'g');
  EXPECT_EQ(waiter.exit_code(), 0);
  EXPECT_TRUE(lock.acquire(true, kLivenessSeconds));
  lock.release();
}

// [filelock.kill.waiter]
TEST_F(FileLockTest, KilledWaiterLeavesNoTrace) {
  mp::FileLock lock(path_);
  ASSERT_TRUE(lock.acquire());
  for (const bool timed : {false, true}) {
    Pipe to_parent;
    Child doomed([&] {
      mp::FileLock mine(path_);
      to_parent.send('r');
      if (timed) {
        mine.acquire(true, kLivenessSeconds);
      } else {
        mine.acquire();
      }
      return 3;  // must not get here: killed while blocked
    });
    ASSERT_EQ(to_parent.receive(), 'r');
    EXPECT_TRUE(doomed.still_running_after(kStaysBlocked));
    ASSERT_TRUE(doomed.kill_and_reap());
  }
  EXPECT_TRUE(lock.acquired());
  Pipe to_parent;
  Child waiter([&] {
    mp::FileLock mine(path_);
    to_parent.send('r');
    if (!mine.acquire(true, kLivenessSeconds)) return 2;
    to_parent.send('g');
    mine.release();
    return 0;
  });
  ASSERT_EQ(to_parent.receive(), 'r');
  EXPECT_EQ(to_parent.receive(kStaysBlocked), std::nullopt);
  lock.release();
  EXPECT_EQ(to_parent.receive(), 'g');
  EXPECT_EQ(waiter.exit_code(), 0);
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

// [filelock.unrelated]: the other process is this binary, exec'd afresh; it
// shares nothing with this one but the path.
TEST_F(FileLockTest, ExclusionWithAnUnrelatedProcess) {
  mp::FileLock lock(path_);
  // It takes the free lock; this process is excluded and admitted later.
  {
    auto helper = StartHelper("lock", path_);
    ASSERT_EQ(helper->receive(), 't');
    EXPECT_FALSE(lock.acquire(false));
    EXPECT_FALSE(lock.acquire(true, 0.02));
    helper->send('r');
    EXPECT_EQ(helper->receive(), 'd');
    EXPECT_EQ(helper->child().exit_code(), 0);
    EXPECT_TRUE(lock.acquire(false));
    lock.release();
  }
  // This process holds the lock; it is excluded, blocks, and is admitted by
  // the release.
  {
    ASSERT_TRUE(lock.acquire());
    auto helper = StartHelper("lock", path_);
    ASSERT_EQ(helper->receive(), 'f');
    EXPECT_EQ(helper->receive(kStaysBlocked), std::nullopt) << "helper not blocked";
    lock.release();
    EXPECT_EQ(helper->receive(), 'h');
    EXPECT_FALSE(lock.acquire(false));
    helper->send('r');
    EXPECT_EQ(helper->receive(), 'd');
    EXPECT_EQ(helper->child().exit_code(), 0);
  }
  // Killed while holding: the kernel frees the lock.
  {
    auto helper = StartHelper("lock", path_);
    ASSERT_EQ(helper->receive(), 't');
    EXPECT_FALSE(lock.acquire(false));
    ASSERT_TRUE(helper->child().kill_and_reap());
    EXPECT_TRUE(lock.acquire(true, kLivenessSeconds));
    lock.release();
  }
}

// [filelock.unrelated] with a process in another language: Python's
// fcntl(F_OFD_SETLK[W]) on its own descriptor. Skipped without python3 (or
// with a Python older than 3.9, which lacks the F_OFD_* constants).
TEST_F(FileLockTest, ExclusionWithPythonOfdLocks) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  const std::string script = R"PY(
import fcntl, os, struct, sys
if not hasattr(fcntl, "F_OFD_SETLK"):
    sys.stdout.write("n"); sys.stdout.flush(); sys.exit(0)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)
req = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)  # struct flock
try:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, req)
    got = True
except OSError:
    got = False
sys.stdout.write("t" if got else "f"); sys.stdout.flush()
if not got:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, req)
    sys.stdout.write("h"); sys.stdout.flush()
sys.stdin.read(1)
)PY";
  auto run = [&] {
    return std::make_unique<ExecProcess>(
        std::vector<std::string>{"/usr/bin/python3", "-c", script, path_},
        std::vector<std::string>{}, 0, 1);
  };
  mp::FileLock lock(path_);
  {
    auto python = run();
    const auto first = python->receive();
    if (first == 'n') GTEST_SKIP() << "python3 has no fcntl.F_OFD_SETLK";
    ASSERT_EQ(first, 't');
    EXPECT_FALSE(lock.acquire(false));
    python->send('x');
    EXPECT_EQ(python->child().exit_code(), 0);
    EXPECT_TRUE(lock.acquire(true, kLivenessSeconds));  // closing its fd freed it
  }
  {
    auto python = run();
    ASSERT_EQ(python->receive(), 'f');
    EXPECT_EQ(python->receive(kStaysBlocked), std::nullopt);
    lock.release();
    EXPECT_EQ(python->receive(), 'h');
    EXPECT_FALSE(lock.acquire(false));
    python->send('x');
    EXPECT_EQ(python->child().exit_code(), 0);
    EXPECT_TRUE(lock.acquire(true, kLivenessSeconds));
    lock.release();
  }
}

// [filelock.exclusive.processes] under load: two processes, a counter in
// shared memory, every entry point.
TEST_F(FileLockTest, MutualExclusionAcrossProcesses) {
  constexpr int kIterations = 3000;
  struct Shared {
    std::int64_t counter;
    std::atomic<int> inside;
    std::atomic<int> overlaps;
  };
  auto mapping = SharedMapping::anonymous(sizeof(Shared));
  auto* shared = ::new (mapping.data()) Shared{0, {0}, {0}};
  auto work = [&] {
    mp::FileLock lock(path_);
    for (int i = 0; i < kIterations; ++i) {
      bool got;
      switch (i % 3) {
        case 0:
          got = lock.acquire();
          break;
        case 1:
          got = lock.acquire(true, kLivenessSeconds);
          break;
        default:
          got = lock.try_lock();
          break;
      }
      if (!got) continue;  // only try_lock may fail
      if (shared->inside.fetch_add(1) != 0) shared->overlaps.fetch_add(1);
      shared->counter = shared->counter + 1;
      shared->inside.fetch_sub(1);
      lock.release();
    }
  };
  Child child([&] {
    work();
    return 0;
  });
  work();
  ASSERT_EQ(child.exit_code(), 0);
  EXPECT_EQ(shared->overlaps.load(), 0);
  EXPECT_GE(shared->counter, 2 * (kIterations * 2 / 3));
}

// [filelock.acquire.handoff], liveness only (the latency itself is measured
// by bench/file_lock_bench.cpp): a waiter blocked in another process returns
// soon after the release, many times in a row.
TEST_F(FileLockTest, BlockedWaiterInAnotherProcessIsWokenByEachRelease) {
  constexpr int kRounds = 50;
  mp::FileLock lock(path_);
  Pipe to_parent;
  Pipe to_child;
  Child child([&] {
    mp::FileLock mine(path_);
    for (int i = 0; i < kRounds; ++i) {
      if (to_child.receive() != 'w') return 2;
      if (!to_parent.send('r')) return 3;
      const bool got = (i % 2 == 0) ? mine.acquire() : mine.acquire(true, kLivenessSeconds);
      if (!got) return 4;
      mine.release();
      if (!to_parent.send('g')) return 5;
    }
    return 0;
  });
  double worst = 0;
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(lock.acquire());
    to_child.send('w');
    ASSERT_EQ(to_parent.receive(), 'r');
    const auto released = Clock::now();
    lock.release();
    ASSERT_EQ(to_parent.receive(), 'g');
    worst = std::max(worst, seconds_since(released));
  }
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_LT(worst, kLivenessSeconds);
  RecordProperty("worst_handoff_us", static_cast<int>(worst * 1e6));
}

// --- The timeout signal ---------------------------------------------------------

TEST_F(FileLockTest, TimeoutSignalMustBeRealTime) {
  const int original = mp::file_lock_timeout_signal();
  EXPECT_THROW(mp::set_file_lock_timeout_signal(SIGUSR1), mp::ValueError);
  EXPECT_THROW(mp::set_file_lock_timeout_signal(0), mp::ValueError);
  EXPECT_THROW(mp::set_file_lock_timeout_signal(SIGRTMAX + 1), mp::ValueError);
  EXPECT_THROW(mp::set_file_lock_timeout_signal(SIGRTMIN - 1), mp::ValueError);
  EXPECT_EQ(mp::file_lock_timeout_signal(), original);
}

// A signal the application handles itself is not taken over: timed waits
// report EBUSY instead of hanging; another signal can be selected.
TEST_F(FileLockTest, TimeoutSignalOwnedByTheApplicationIsNotTakenOver) {
  const int original = mp::file_lock_timeout_signal();
  const int taken = SIGRTMIN + 9;
  const int spare = SIGRTMIN + 10;
  struct Restore {
    int original;
    ~Restore() { mp::set_file_lock_timeout_signal(original); }
  } restore{original};
  ScopedHandler application(taken);
  mp::FileLock holder(path_);
  mp::FileLock lock(path_);
  ASSERT_TRUE(holder.acquire());
  mp::set_file_lock_timeout_signal(taken);
  EXPECT_EQ(mp::file_lock_timeout_signal(), taken);
  try {
    lock.acquire(true, 0.01);
    ADD_FAILURE() << "expected std::system_error(EBUSY)";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBUSY) << e.what();
  }
  EXPECT_FALSE(lock.acquired());
  struct sigaction action {};
  sigaction(taken, nullptr, &action);
  EXPECT_EQ(action.sa_handler, &EmptyHandler);  // untouched
  // Non-blocking acquires need no signal.
  EXPECT_FALSE(lock.acquire(false));
  EXPECT_FALSE(lock.acquire(true, 0.0));
  // Another (default) signal works.
  struct sigaction spare_saved {};
  sigaction(spare, nullptr, &spare_saved);
  ASSERT_EQ(spare_saved.sa_handler, SIG_DFL);
  mp::set_file_lock_timeout_signal(spare);
  const auto start = Clock::now();
  EXPECT_FALSE(lock.acquire(true, 0.01));
  EXPECT_GE(seconds_since(start), 0.01 - 0.001);
  sigaction(spare, &spare_saved, nullptr);  // back to SIG_DFL
  holder.release();
}

// --- FileRWLock -------------------------------------------------------------------

// [filerwlock.read.shared]
TEST_F(FileLockTest, ReadersShare) {
  mp::FileRWLock a(path_);
  mp::FileRWLock b(path_);
  mp::FileRWLock c(path_);
  ASSERT_TRUE(a.acquire_read());
  EXPECT_TRUE(a.read_acquired());
  EXPECT_FALSE(a.write_acquired());
  EXPECT_TRUE(b.acquire_read(false));
  EXPECT_TRUE(c.acquire_read(true, 0.01));
  // And across processes.
  Child child([&] {
    mp::FileRWLock mine(path_);
    mp::FileRWLock writer(path_);
    if (!mine.acquire_read(false)) return 2;
    if (writer.acquire_write(false)) return 3;
    mine.release_read();
    return 0;
  });
  EXPECT_EQ(child.exit_code(), 0);
  a.release_read();
  b.release_read();
  c.release_read();
  EXPECT_FALSE(a.read_acquired());
}

// [filerwlock.write.exclusive] [filerwlock.write.excludes_readers]
// [filerwlock.acquire.nonblocking] [filerwlock.acquire.timeout]
TEST_F(FileLockTest, WriterExcludesEveryoneAndReadersExcludeWriters) {
  mp::FileRWLock writer(path_);
  mp::FileRWLock other(path_);
  mp::FileLock exclusive(path_);
  ASSERT_TRUE(writer.acquire_write());
  EXPECT_TRUE(writer.write_acquired());
  EXPECT_FALSE(other.acquire_read(false));
  EXPECT_FALSE(other.acquire_write(false));
  EXPECT_FALSE(exclusive.acquire(false));  // a FileLock is a writer too
  for (double timeout : {0.001, 0.05}) {
    auto start = Clock::now();
    EXPECT_FALSE(other.acquire_read(true, timeout));
    EXPECT_GE(seconds_since(start), timeout - 0.001);
    start = Clock::now();
    EXPECT_FALSE(other.acquire_write(true, timeout));
    EXPECT_GE(seconds_since(start), timeout - 0.001);
  }
  writer.release_write();
  ASSERT_TRUE(other.acquire_read());
  EXPECT_FALSE(writer.acquire_write(false));
  EXPECT_FALSE(exclusive.acquire(false));
  const auto start = Clock::now();
  EXPECT_FALSE(writer.acquire_write(true, 0.05));
  EXPECT_GE(seconds_since(start), 0.05 - 0.001);
  EXPECT_TRUE(writer.acquire_read(false));  // readers still share
  writer.release_read();
  other.release_read();
  EXPECT_TRUE(exclusive.acquire(false));
  EXPECT_FALSE(other.acquire_read(false));  // and a FileLock excludes readers
  exclusive.release();
}

// [filerwlock.mode.no_conversion]
TEST_F(FileLockTest, AskingForTheOtherModeThrowsAndKeepsTheHold) {
  mp::FileRWLock rw(path_);
  mp::FileRWLock reader(path_);
  ASSERT_TRUE(rw.acquire_read());
  ExpectRuntimeError([&] { rw.acquire_write(); },
                     "cannot acquire the write lock while this object holds the read lock");
  ExpectRuntimeError([&] { rw.acquire_write(false); },
                     "cannot acquire the write lock while this object holds the read lock");
  ExpectRuntimeError([&] { (void)rw.try_lock_for(milliseconds(5)); },
                     "cannot acquire the write lock while this object holds the read lock");
  ExpectRuntimeError([&] { rw.acquire_read(true, 1.0); }, "read lock already held by this object");
  EXPECT_TRUE(rw.read_acquired());
  EXPECT_TRUE(reader.acquire_read(false));  // still a read hold, not converted
  reader.release_read();
  rw.release_read();

  ASSERT_TRUE(rw.acquire_write());
  ExpectRuntimeError([&] { rw.acquire_read(); },
                     "cannot acquire the read lock while this object holds the write lock");
  ExpectRuntimeError([&] { (void)rw.try_lock_shared(); },
                     "cannot acquire the read lock while this object holds the write lock");
  ExpectRuntimeError([&] { rw.acquire_write(false); }, "write lock already held by this object");
  EXPECT_TRUE(rw.write_acquired());
  EXPECT_FALSE(reader.acquire_read(false));  // still a write hold
  rw.release_write();
  EXPECT_TRUE(reader.acquire_read(false));
  reader.release_read();
}

// [filerwlock.release.unheld]
TEST_F(FileLockTest, ReleasingAModeNotHeldThrows) {
  mp::FileRWLock rw(path_);
  ExpectRuntimeError([&] { rw.release_read(); }, "release of an unacquired read lock");
  ExpectRuntimeError([&] { rw.release_write(); }, "release of an unacquired write lock");
  ASSERT_TRUE(rw.acquire_read());
  ExpectRuntimeError([&] { rw.release_write(); }, "release of an unacquired write lock");
  ExpectRuntimeError([&] { rw.unlock(); }, "release of an unacquired write lock");
  EXPECT_TRUE(rw.read_acquired());
  rw.release_read();
  ASSERT_TRUE(rw.acquire_write());
  ExpectRuntimeError([&] { rw.release_read(); }, "release of an unacquired read lock");
  ExpectRuntimeError([&] { rw.unlock_shared(); }, "release of an unacquired read lock");
  EXPECT_TRUE(rw.write_acquired());
  rw.release_write();
  ExpectRuntimeError([&] { rw.release_write(); }, "release of an unacquired write lock");
}

// [filerwlock.acquire.wakes]: a writer in another process waits for the last
// reader; a reader waits for the writer.
TEST_F(FileLockTest, WriterIsAdmittedWhenTheLastReaderLeaves) {
  mp::FileRWLock r1(path_);
  mp::FileRWLock r2(path_);
  ASSERT_TRUE(r1.acquire_read());
  ASSERT_TRUE(r2.acquire_read());
  Pipe to_parent;
  Pipe to_child;
  Child writer([&] {
    mp::FileRWLock mine(path_);
    to_parent.send('r');
    if (!mine.acquire_write(true, kLivenessSeconds)) return 2;
    to_parent.send('g');
    if (to_child.receive() != 'q') return 3;
    mine.release_write();
    return 0;
  });
  ASSERT_EQ(to_parent.receive(), 'r');
  EXPECT_EQ(to_parent.receive(kStaysBlocked), std::nullopt);
  r1.release_read();
  EXPECT_EQ(to_parent.receive(kStaysBlocked), std::nullopt) << "one reader is left";
  r2.release_read();
  EXPECT_EQ(to_parent.receive(), 'g');
  // A reader now waits for the writer.
  std::atomic<bool> done{false};
  std::thread reader([&] {
    EXPECT_TRUE(r1.acquire_read());
    done = true;
  });
  EXPECT_TRUE(StaysFalse(done));
  to_child.send('q');
  EXPECT_TRUE(WaitFor(done));
  reader.join();
  r1.release_read();
  EXPECT_EQ(writer.exit_code(), 0);
}

// [filerwlock.kill.holder]
TEST_F(FileLockTest, KilledReaderOrWriterFreesItsHold) {
  for (const bool write : {false, true}) {
    Pipe to_parent;
    Child holder([&] {
      mp::FileRWLock mine(path_);
      if (!(write ? mine.acquire_write(false) : mine.acquire_read(false))) return 2;
      to_parent.send('h');
      for (;;) pause();
    });
    ASSERT_EQ(to_parent.receive(), 'h');
    mp::FileRWLock writer(path_);
    EXPECT_FALSE(writer.acquire_write(false));
    ASSERT_TRUE(holder.kill_and_reap());
    EXPECT_TRUE(writer.acquire_write(true, kLivenessSeconds));
    writer.release_write();
  }
}

// [filelock.unrelated] for the reader-writer form.
TEST_F(FileLockTest, ReadersAndWritersInAnUnrelatedProcess) {
  mp::FileRWLock rw(path_);
  {
    auto helper = StartHelper("read", path_);
    ASSERT_EQ(helper->receive(), 't');
    EXPECT_TRUE(rw.acquire_read(false));
    rw.release_read();
    EXPECT_FALSE(rw.acquire_write(false));
    helper->send('r');
    EXPECT_EQ(helper->receive(), 'd');
    EXPECT_EQ(helper->child().exit_code(), 0);
    EXPECT_TRUE(rw.acquire_write(false));
    rw.release_write();
  }
  {
    ASSERT_TRUE(rw.acquire_read());
    auto helper = StartHelper("write", path_);
    ASSERT_EQ(helper->receive(), 'f');
    EXPECT_EQ(helper->receive(kStaysBlocked), std::nullopt);
    rw.release_read();
    EXPECT_EQ(helper->receive(), 'h');
    EXPECT_FALSE(rw.acquire_read(false));
    helper->send('r');
    EXPECT_EQ(helper->receive(), 'd');
    EXPECT_EQ(helper->child().exit_code(), 0);
  }
}

TEST_F(FileLockTest, FileRWLockWorksWithStandardGuards) {
  mp::FileRWLock rw(path_);
  mp::FileRWLock other(path_);
  {
    std::shared_lock<mp::FileRWLock> reader(rw);
    EXPECT_TRUE(rw.read_acquired());
    std::shared_lock<mp::FileRWLock> second(other, std::try_to_lock);
    EXPECT_TRUE(second.owns_lock());
  }
  {
    std::unique_lock<mp::FileRWLock> writer(rw);
    EXPECT_TRUE(rw.write_acquired());
    std::shared_lock<mp::FileRWLock> reader(other, std::defer_lock);
    EXPECT_FALSE(reader.try_lock_for(milliseconds(1)));
    EXPECT_FALSE(reader.try_lock_until(Clock::now() + milliseconds(1)));
    std::unique_lock<mp::FileRWLock> writer2(other, std::defer_lock);
    EXPECT_FALSE(writer2.try_lock_for(milliseconds(1)));
    EXPECT_FALSE(writer2.try_lock_until(Clock::now() + milliseconds(1)));
  }
  EXPECT_FALSE(rw.write_acquired());
  EXPECT_TRUE(other.try_lock());
  other.unlock();
}

// --- The platform layer -----------------------------------------------------------

TEST_F(FileLockTest, PlatformLockFileBasics) {
  using mp::platform::FileLockMode;
  using mp::platform::LockFile;
  LockFile closed;
  EXPECT_FALSE(closed.is_open());
  EXPECT_EQ(closed.fd(), -1);
  EXPECT_FALSE(closed.held().has_value());
  closed.unlock();  // no-ops
  closed.close();

  LockFile a = LockFile::open(path_);
  LockFile b = LockFile::open(path_);
  ASSERT_TRUE(a.is_open());
  EXPECT_GE(a.fd(), 0);
  EXPECT_NE(a.fd(), b.fd());
  EXPECT_EQ(fcntl(a.fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(fcntl(a.fd(), F_GETFL) & O_ACCMODE, O_RDWR);
  EXPECT_TRUE(a.try_lock(FileLockMode::kShared));
  EXPECT_EQ(a.held(), FileLockMode::kShared);
  EXPECT_TRUE(b.try_lock(FileLockMode::kShared));
  b.unlock();
  EXPECT_FALSE(b.held().has_value());
  EXPECT_FALSE(b.try_lock(FileLockMode::kExclusive));
  EXPECT_FALSE(b.lock(FileLockMode::kExclusive, mp::platform::Deadline::expired()));
  EXPECT_FALSE(b.lock(FileLockMode::kExclusive, mp::platform::Deadline::after(0.01)));
  // A POSIX record lock of this process conflicts with OFD locks too.
  struct flock posix {};
  posix.l_type = F_WRLCK;
  posix.l_whence = SEEK_SET;
  const int raw = open(path_.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  EXPECT_EQ(fcntl(raw, F_SETLK, &posix), -1);
  a.unlock();
  EXPECT_EQ(fcntl(raw, F_SETLK, &posix), 0);
  EXPECT_FALSE(a.try_lock(FileLockMode::kShared));
  posix.l_type = F_UNLCK;
  EXPECT_EQ(fcntl(raw, F_SETLK, &posix), 0);
  close(raw);
  EXPECT_TRUE(b.lock(FileLockMode::kExclusive, mp::platform::Deadline::never()));
  LockFile moved = std::move(b);
  EXPECT_FALSE(b.is_open());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(moved.held(), FileLockMode::kExclusive);
  moved.close();  // releases
  EXPECT_FALSE(moved.is_open());
  EXPECT_TRUE(a.try_lock(FileLockMode::kExclusive));
}

}  // namespace
