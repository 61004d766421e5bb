// Unit tests of libmp's platform layer (clock, futex, shared memory) and of
// the exception hierarchy.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <thread>

#include "mp/errors.hpp"
#include "mp/platform/clock.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/process.hpp"
#include "mp/platform/shm.hpp"
#include "test_util.hpp"

namespace {

using mp::platform::Deadline;
using mp::platform::monotonic_now_ns;
using mp::platform::SharedMapping;
using mp::platform::futex::WaitResult;
using mp_test::Child;
using mp_test::Clock;
using mp_test::kLiveness;
using mp_test::seconds_since;
using std::chrono::milliseconds;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::int64_t kNsPerSecond = 1'000'000'000;

// --- errors.hpp -------------------------------------------------------------

template <class E>
void ExpectKind(const char* kind) {
  try {
    throw E("message");
  } catch (const mp::Error& e) {
    EXPECT_STREQ(e.kind(), kind);
    EXPECT_STREQ(e.what(), "message");
    EXPECT_NE(dynamic_cast<const E*>(&e), nullptr);
  }
  try {
    throw E(std::string("other"));
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "other");
  }
}

TEST(Errors, KindsAndHierarchy) {
  ExpectKind<mp::ValueError>("ValueError");
  ExpectKind<mp::AssertionError>("AssertionError");
  ExpectKind<mp::TimeoutError>("TimeoutError");
  ExpectKind<mp::OwnerDied>("OwnerDied");
  static_assert(std::is_abstract_v<mp::Error>);
  static_assert(std::is_base_of_v<std::runtime_error, mp::Error>);
}

// --- clock.hpp --------------------------------------------------------------

TEST(Deadline, NaNThrowsValueError) {
  EXPECT_THROW(Deadline::after(std::numeric_limits<double>::quiet_NaN()), mp::ValueError);
}

TEST(Deadline, NonPositiveTimeoutIsExpired) {
  for (double s : {0.0, -0.0, -1e-9, -1.0, -kInf}) {
    const Deadline d = Deadline::after(s);
    EXPECT_EQ(d, Deadline::expired()) << s;
    EXPECT_TRUE(d.has_passed()) << s;
    EXPECT_FALSE(d.is_never()) << s;
  }
}

TEST(Deadline, InfiniteOrHugeTimeoutIsNever) {
  for (double s : {kInf, 1e20, Deadline::kMaxSeconds, std::numeric_limits<double>::max()}) {
    const Deadline d = Deadline::after(s);
    EXPECT_TRUE(d.is_never()) << s;
    EXPECT_FALSE(d.has_passed()) << s;
  }
  EXPECT_FALSE(Deadline::after(Deadline::kMaxSeconds / 2).is_never());
}

TEST(Deadline, AfterIsNowPlusTimeoutRoundedUp) {
  const std::int64_t before = monotonic_now_ns();
  const Deadline d = Deadline::after(1.5);
  const std::int64_t after = monotonic_now_ns();
  EXPECT_GE(d.monotonic_ns(), before + 3 * kNsPerSecond / 2);
  EXPECT_LE(d.monotonic_ns(), after + 3 * kNsPerSecond / 2 + 1);
  EXPECT_FALSE(d.has_passed());
  // A tiny positive timeout is still in the future when computed.
  const std::int64_t now = monotonic_now_ns();
  EXPECT_GT(Deadline::after(1e-12).monotonic_ns(), now);
}

TEST(Deadline, SteadyClockIsTheMonotonicClock) {
  const std::int64_t a = monotonic_now_ns();
  const auto s = Clock::now();
  const std::int64_t b = monotonic_now_ns();
  const std::int64_t steady_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(s.time_since_epoch()).count();
  EXPECT_LE(a, steady_ns);
  EXPECT_LE(steady_ns, b);

  const auto in_1s = s + std::chrono::seconds(1);
  EXPECT_EQ(Deadline::at_steady(in_1s).monotonic_ns(), steady_ns + kNsPerSecond);
  EXPECT_TRUE(Deadline::at_steady(Clock::time_point::max()).is_never());
  EXPECT_EQ(Deadline::at_steady(Clock::time_point()), Deadline::expired());
  EXPECT_EQ(Deadline::at_steady(Clock::time_point::min()), Deadline::expired());
  EXPECT_TRUE(Deadline::at_steady(s - std::chrono::seconds(1)).has_passed());
  EXPECT_TRUE(
      Deadline::at_steady(std::chrono::time_point<Clock, std::chrono::hours>::max()).is_never());
  EXPECT_EQ(Deadline::at(-5), Deadline::expired());
}

// --- futex.hpp --------------------------------------------------------------

TEST(Futex, WaitReturnsAtOnceWhenValueDiffers) {
  std::atomic<std::uint32_t> word{7};
  EXPECT_EQ(mp::platform::futex::wait(word, 8, nullptr), WaitResult::kValueChanged);
  const Deadline d = Deadline::after(10.0);
  EXPECT_EQ(mp::platform::futex::wait(word, 0, &d), WaitResult::kValueChanged);
}

TEST(Futex, WaitTimesOutNoEarlierThanDeadline) {
  std::atomic<std::uint32_t> word{0};
  for (double timeout : {0.001, 0.05}) {
    const auto start = Clock::now();
    const Deadline d = Deadline::after(timeout);
    WaitResult r;
    do {  // a spurious kWoken is allowed; the deadline stays the same
      r = mp::platform::futex::wait(word, 0, &d);
    } while (r == WaitResult::kWoken);
    EXPECT_EQ(r, WaitResult::kTimedOut);
    const double elapsed = seconds_since(start);
    EXPECT_GE(elapsed, timeout - 0.001);
    EXPECT_LT(elapsed, 10.0);
  }
}

TEST(Futex, ExpiredDeadlineReturnsAtOnce) {
  std::atomic<std::uint32_t> word{0};
  const auto start = Clock::now();
  const Deadline d = Deadline::expired();
  EXPECT_EQ(mp::platform::futex::wait(word, 0, &d), WaitResult::kTimedOut);
  const Deadline passed = Deadline::at(monotonic_now_ns() - kNsPerSecond);
  EXPECT_EQ(mp::platform::futex::wait(word, 0, &passed), WaitResult::kTimedOut);
  EXPECT_LT(seconds_since(start), 1.0);
}

TEST(Futex, WakeWithoutSleepersWakesNobody) {
  std::atomic<std::uint32_t> word{0};
  EXPECT_EQ(mp::platform::futex::wake(word, 1), 0);
  EXPECT_EQ(mp::platform::futex::wake(word, mp::platform::futex::kWakeAll), 0);
}

// Calls wake(word, 1) until it reports having woken somebody, which proves a
// sleeper was queued on the word. Bounded by kLiveness.
bool WakeOneSleeper(std::atomic<std::uint32_t>& word) {
  const auto start = Clock::now();
  while (Clock::now() - start < kLiveness) {
    if (mp::platform::futex::wake(word, 1) == 1) return true;
    std::this_thread::yield();
  }
  return false;
}

TEST(Futex, WakeWakesSleepingThread) {
  std::atomic<std::uint32_t> word{0};
  std::atomic<int> result{-1};
  std::thread sleeper([&] {
    const Deadline d = Deadline::after(10.0);
    result = static_cast<int>(mp::platform::futex::wait(word, 0, &d));
  });
  EXPECT_TRUE(WakeOneSleeper(word));
  sleeper.join();
  EXPECT_EQ(result.load(), static_cast<int>(WaitResult::kWoken));
}

TEST(Futex, WakeAllWakesEverySleeper) {
  std::atomic<std::uint32_t> word{0};
  std::atomic<int> woken{0};
  std::thread a([&] {
    while (word.load() == 0) mp::platform::futex::wait(word, 0, nullptr);
    woken.fetch_add(1);
  });
  std::thread b([&] {
    while (word.load() == 0) mp::platform::futex::wait(word, 0, nullptr);
    woken.fetch_add(1);
  });
  word.store(1);
  mp::platform::futex::wake(word, mp::platform::futex::kWakeAll);
  a.join();
  b.join();
  EXPECT_EQ(woken.load(), 2);
}

// Signals interrupting the sleep do not end a timed wait early.
TEST(Futex, SignalsDoNotShortenTimedWait) {
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the futex call sees EINTR
  struct sigaction old {};
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  std::atomic<std::uint32_t> word{0};
  std::atomic<bool> done{false};
  std::atomic<int> result{-1};
  const auto start = Clock::now();
  std::thread sleeper([&] {
    const Deadline d = Deadline::after(0.2);
    WaitResult r;
    do {
      r = mp::platform::futex::wait(word, 0, &d);
    } while (r == WaitResult::kWoken);
    result = static_cast<int>(r);
    done = true;
  });
  const pthread_t handle = sleeper.native_handle();
  while (!done && Clock::now() - start < kLiveness) {
    pthread_kill(handle, SIGUSR1);
    std::this_thread::sleep_for(milliseconds(5));
  }
  sleeper.join();
  const double elapsed = seconds_since(start);
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_EQ(result.load(), static_cast<int>(WaitResult::kTimedOut));
  EXPECT_GE(elapsed, 0.2 - 0.001);
}

// The futex is SHARED: a wake in the parent reaches a sleeper in a child
// (a private futex would key the child's wait by its own address space).
TEST(Futex, SharedBetweenProcesses) {
  auto mapping = SharedMapping::anonymous(sizeof(std::atomic<std::uint32_t>));
  auto* word = ::new (mapping.data()) std::atomic<std::uint32_t>(0);
  Child child([&] {
    const Deadline d = Deadline::after(10.0);
    return mp::platform::futex::wait(*word, 0, &d) == WaitResult::kWoken ? 0 : 2;
  });
  EXPECT_TRUE(WakeOneSleeper(*word));
  EXPECT_EQ(child.exit_code(), 0);
}

// --- shm.hpp ----------------------------------------------------------------

TEST(SharedMapping, RoundsUpToPagesAndIsZeroFilled) {
  const std::size_t page = mp::platform::page_size();
  ASSERT_GT(page, 0u);
  auto m = SharedMapping::anonymous(1);
  ASSERT_TRUE(m);
  EXPECT_EQ(m.size(), page);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m.data()) % page, 0u);
  const auto* bytes = static_cast<const unsigned char*>(m.data());
  for (std::size_t i = 0; i < m.size(); ++i) ASSERT_EQ(bytes[i], 0) << i;
  EXPECT_EQ(SharedMapping::anonymous(page + 1).size(), 2 * page);
}

TEST(SharedMapping, ZeroSizeThrowsValueError) {
  EXPECT_THROW(SharedMapping::anonymous(0), mp::ValueError);
}

TEST(SharedMapping, HugeSizeThrowsSystemError) {
  EXPECT_THROW(SharedMapping::anonymous(std::numeric_limits<std::size_t>::max()),
               std::system_error);
}

TEST(SharedMapping, SharedWithForkedChild) {
  auto m = SharedMapping::anonymous(64);
  auto* value = static_cast<volatile int*>(m.data());
  *value = 1;
  Child child([&] {
    if (*value != 1) return 2;  // inherited contents
    *value = 42;
    return 0;
  });
  ASSERT_EQ(child.exit_code(), 0);
  EXPECT_EQ(*value, 42);
}

TEST(SharedMapping, MoveTransfersOwnershipAndDestructionUnmaps) {
  auto a = SharedMapping::anonymous(100);
  void* p = a.data();
  const std::size_t size = a.size();
  SharedMapping b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.data(), p);
  SharedMapping c;
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(msync(p, size, MS_ASYNC), 0);  // mapped
  c = SharedMapping();
  errno = 0;
  EXPECT_EQ(msync(p, size, MS_ASYNC), -1);  // unmapped
  EXPECT_EQ(errno, ENOMEM);
}

}  // namespace

// A zombie (ended, not yet reaped) is not alive: the dead-waiter checks of Condition rely on
// it, since the parent of a killed process may reap it late or never.
TEST(Process, ZombieIsNotAlive) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!mp::platform::process_exited(child) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(mp::platform::process_exited(child));
  EXPECT_FALSE(mp::platform::process_alive(child)) << "a zombie counts as alive";
  EXPECT_TRUE(mp::platform::process_alive(::getpid()));
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_FALSE(mp::platform::process_alive(child));
}
