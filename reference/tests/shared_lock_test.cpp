// Unit tests of mp::SharedLock: the two modes, ownership per (process,
// thread) and the ValueErrors it produces, writer preference, forked children
// that do not inherit holds, and randomized stress between threads and
// processes. Blocked calls are shown by a handshake plus kStaysBlocked; every
// wait is bounded and every child is reaped.
#include "mp/shared_lock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <new>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/platform/shm.hpp"
#include "test_util.hpp"

namespace {

using Mode = mp::SharedLock::Mode;
using mp_test::Child;
using mp_test::Clock;
using mp_test::kLiveness;
using mp_test::kStaysBlocked;
using mp_test::Pipe;
using std::chrono::milliseconds;

constexpr char kNotReentrant[] = "Lock not re-entrant";
constexpr char kNoUpgrade[] = "Cannot upgrade a shared lock to an exclusive lock";
constexpr char kUnheld[] = "lock released too many times";

// Asserts that `call` raises mp::ValueError with `message`.
template <class F>
void ExpectValueError(F&& call, const std::string& message) {
  try {
    call();
    ADD_FAILURE() << "expected mp::ValueError(\"" << message << "\")";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.kind(), "ValueError");
    EXPECT_EQ(std::string(e.what()), message);
  }
}

// Returns 0 if `call` raises mp::ValueError with `message`, else `code` (for
// children, which report by exit code).
template <class F>
int ValueErrorOr(int code, F&& call, const std::string& message) {
  try {
    call();
  } catch (const mp::ValueError& e) {
    return std::string(e.what()) == message ? 0 : code;
  } catch (...) {
  }
  return code;
}

// Polls `pred` every millisecond until it holds or `timeout` passes.
template <class Pred>
bool Eventually(Pred pred, milliseconds timeout = kLiveness) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

// A thread that runs `body` and records when it has finished, so that a test
// can show that it stays blocked and then that it is woken, with bounds.
class Runner {
 public:
  template <class Body>
  explicit Runner(Body body)
      : thread_([this, body] {
          started_ = true;
          body();
          done_ = true;
        }) {}
  ~Runner() {
    if (thread_.joinable()) thread_.join();
  }
  bool started() const { return started_; }
  // True if the body has not finished after `duration` (it has started).
  bool stays_blocked(milliseconds duration = kStaysBlocked) {
    if (!Eventually([&] { return started_.load(); })) return false;
    return !Eventually([&] { return done_.load(); }, duration);
  }
  bool finishes(milliseconds timeout = kLiveness) {
    return Eventually([&] { return done_.load(); }, timeout);
  }

 private:
  std::atomic<bool> started_{false}, done_{false};
  std::thread thread_;
};

// --- One thread ---------------------------------------------------------------

TEST(SharedLock, NewLockIsFreeAndBothModesWork) {
  mp::SharedLock lock;
  EXPECT_EQ(lock.mode_held(), Mode::kNone);
  EXPECT_FALSE(lock.held_by_me());
  for (int i = 0; i < 100; ++i) {
    lock.acquire(true);
    EXPECT_EQ(lock.mode_held(), Mode::kExclusive);
    EXPECT_TRUE(lock.held_by_me());
    EXPECT_TRUE(lock.rwlock().write_locked());
    lock.release();
    EXPECT_EQ(lock.mode_held(), Mode::kNone);
    lock.acquire();  // shared by default
    EXPECT_EQ(lock.mode_held(), Mode::kShared);
    EXPECT_EQ(lock.rwlock().readers(), 1);
    lock.release();
    lock.acquire(false);
    EXPECT_EQ(lock.mode_held(), Mode::kShared);
    lock.release();
  }
  EXPECT_EQ(lock.rwlock().readers(), 0);
  EXPECT_FALSE(lock.rwlock().write_locked());
}

TEST(SharedLock, ReleaseUnheldThrowsValueError) {
  mp::SharedLock lock;
  ExpectValueError([&] { lock.release(); }, kUnheld);
  lock.acquire();
  lock.release();
  ExpectValueError([&] { lock.release(); }, kUnheld);
  lock.acquire(true);
  lock.release();
  ExpectValueError([&] { lock.release(); }, kUnheld);
  EXPECT_EQ(lock.rwlock().readers(), 0);
  EXPECT_FALSE(lock.rwlock().write_locked());
}

TEST(SharedLock, ReacquireThrowsValueErrorAndKeepsTheHold) {
  mp::SharedLock lock;
  lock.acquire();
  ExpectValueError([&] { lock.acquire(); }, kNotReentrant);
  ExpectValueError([&] { lock.acquire(false); }, kNotReentrant);
  EXPECT_EQ(lock.mode_held(), Mode::kShared);
  EXPECT_EQ(lock.rwlock().readers(), 1);
  lock.release();

  lock.acquire(true);
  ExpectValueError([&] { lock.acquire(true); }, kNotReentrant);
  ExpectValueError([&] { lock.acquire(false); }, kNotReentrant);  // no downgrade
  EXPECT_EQ(lock.mode_held(), Mode::kExclusive);
  EXPECT_TRUE(lock.rwlock().write_locked());
  lock.release();
  EXPECT_FALSE(lock.rwlock().write_locked());
}

TEST(SharedLock, UpgradeThrowsValueErrorAtOnceAndKeepsTheSharedHold) {
  mp::SharedLock lock;
  lock.acquire();
  // Another shared holder, which the upgrade would have to wait for.
  std::atomic<bool> other_holds{false}, other_may_release{false};
  std::thread other([&] {
    lock.acquire();
    other_holds = true;
    Eventually([&] { return other_may_release.load(); });
    lock.release();
  });
  ASSERT_TRUE(Eventually([&] { return other_holds.load(); }));
  ExpectValueError([&] { lock.acquire(true); }, kNoUpgrade);  // does not wait
  EXPECT_EQ(lock.mode_held(), Mode::kShared);
  EXPECT_EQ(lock.rwlock().readers(), 2);
  EXPECT_FALSE(lock.rwlock().write_locked());
  other_may_release = true;
  other.join();
  ExpectValueError([&] { lock.acquire(true); }, kNoUpgrade);  // the only holder: still refused
  EXPECT_EQ(lock.rwlock().readers(), 1);
  lock.release();
  lock.acquire(true);
  lock.release();
}

TEST(SharedLock, WorksWithStandardLockGuards) {
  mp::SharedLock lock;
  {
    std::unique_lock<mp::SharedLock> write(lock);
    EXPECT_EQ(lock.mode_held(), Mode::kExclusive);
  }
  {
    std::lock_guard<mp::SharedLock> write(lock);
    EXPECT_EQ(lock.mode_held(), Mode::kExclusive);
  }
  {
    std::shared_lock<mp::SharedLock> read(lock);
    EXPECT_EQ(lock.mode_held(), Mode::kShared);
  }
  EXPECT_EQ(lock.mode_held(), Mode::kNone);
  EXPECT_EQ(lock.rwlock().readers(), 0);
  EXPECT_FALSE(lock.rwlock().write_locked());
}

TEST(SharedLock, LocksAreIndependent) {
  mp::SharedLock a, b;
  a.acquire(true);
  b.acquire(true);  // holding a does not make b's acquire a re-entry
  EXPECT_EQ(a.mode_held(), Mode::kExclusive);
  EXPECT_EQ(b.mode_held(), Mode::kExclusive);
  a.release();
  EXPECT_EQ(b.mode_held(), Mode::kExclusive);
  b.release();
}

// --- Threads ------------------------------------------------------------------

TEST(SharedLockThreads, SharedHoldersInManyThreadsHoldTogether) {
  constexpr int kThreads = 8;
  mp::SharedLock lock;
  std::atomic<int> holding{0};
  std::atomic<bool> release{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      lock.acquire();
      holding.fetch_add(1);
      Eventually([&] { return release.load(); });
      lock.release();
    });
  }
  EXPECT_TRUE(Eventually([&] { return holding.load() == kThreads; }));
  EXPECT_EQ(lock.rwlock().readers(), kThreads);
  EXPECT_EQ(lock.mode_held(), Mode::kNone);  // the main thread holds nothing
  release = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(lock.rwlock().readers(), 0);
}

TEST(SharedLockThreads, AnotherThreadIsAnotherCaller) {
  mp::SharedLock lock;
  lock.acquire();
  std::thread([&] {
    EXPECT_EQ(lock.mode_held(), Mode::kNone);
    ExpectValueError([&] { lock.release(); }, kUnheld);  // not its hold
    lock.acquire();                                      // not a re-entry
    EXPECT_EQ(lock.rwlock().readers(), 2);
    lock.release();
  }).join();
  EXPECT_EQ(lock.mode_held(), Mode::kShared);
  EXPECT_EQ(lock.rwlock().readers(), 1);
  lock.release();

  lock.acquire(true);
  std::thread([&] { ExpectValueError([&] { lock.release(); }, kUnheld); }).join();
  EXPECT_TRUE(lock.rwlock().write_locked());
  EXPECT_EQ(lock.mode_held(), Mode::kExclusive);
  lock.release();
}

TEST(SharedLockThreads, ExclusiveWaitsForEverySharedHolder) {
  mp::SharedLock lock;
  lock.acquire();
  std::atomic<bool> second_holds{false}, second_may_release{false};
  std::thread second([&] {
    lock.acquire();
    second_holds = true;
    Eventually([&] { return second_may_release.load(); });
    lock.release();
  });
  ASSERT_TRUE(Eventually([&] { return second_holds.load(); }));
  Runner writer([&] {
    lock.acquire(true);
    lock.release();
  });
  EXPECT_TRUE(writer.stays_blocked()) << "exclusive acquire got in past two shared holders";
  lock.release();
  EXPECT_TRUE(writer.stays_blocked()) << "exclusive acquire got in past one shared holder";
  second_may_release = true;
  EXPECT_TRUE(writer.finishes());
  second.join();
}

TEST(SharedLockThreads, ExclusiveHolderExcludesBothModes) {
  mp::SharedLock lock;
  lock.acquire(true);
  Runner reader([&] {
    lock.acquire();
    lock.release();
  });
  Runner writer([&] {
    lock.acquire(true);
    lock.release();
  });
  EXPECT_TRUE(reader.stays_blocked());
  EXPECT_TRUE(writer.stays_blocked());
  lock.release();
  EXPECT_TRUE(reader.finishes());
  EXPECT_TRUE(writer.finishes());
}

TEST(SharedLockThreads, WaitingExclusiveHoldsBackNewSharedAcquirers) {
  mp::SharedLock lock;
  lock.acquire();
  std::atomic<bool> writer_holds{false}, writer_may_release{false};
  Runner writer([&] {
    lock.acquire(true);
    writer_holds = true;
    Eventually([&] { return writer_may_release.load(); });
    lock.release();
  });
  ASSERT_TRUE(writer.stays_blocked());
  std::atomic<bool> reader_holds{false};
  Runner reader([&] {
    lock.acquire();
    reader_holds = true;
    lock.release();
  });
  EXPECT_TRUE(reader.stays_blocked()) << "a new shared acquirer passed a waiting exclusive one";
  lock.release();
  ASSERT_TRUE(Eventually([&] { return writer_holds.load(); }));
  EXPECT_FALSE(reader_holds.load()) << "shared and exclusive holds at once";
  writer_may_release = true;
  EXPECT_TRUE(writer.finishes());
  EXPECT_TRUE(reader.finishes());
}

TEST(SharedLockThreads, ThreadThatExitsHoldingLeavesItsHold) {
  mp::SharedLock lock;
  std::thread([&] { lock.acquire(true); }).join();
  EXPECT_TRUE(lock.rwlock().write_locked());
  ExpectValueError([&] { lock.release(); }, kUnheld);  // nobody else may release it
  EXPECT_TRUE(lock.rwlock().write_locked());
}

TEST(SharedLockThreads, RandomizedStressKeepsExclusiveAlone) {
  constexpr int kThreads = 6;
  constexpr int kOps = 3000;
  mp::SharedLock lock;
  std::atomic<bool> go{false};
  std::atomic<int> shared_inside{0}, exclusive_inside{0}, violations{0};
  std::atomic<std::int64_t> exclusive_count{0};
  std::int64_t data = 0;  // guarded by exclusive mode
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) + 1);
      Eventually([&] { return go.load(); });
      for (int i = 0; i < kOps; ++i) {
        const bool exclusive = rng() % 4 == 0;
        lock.acquire(exclusive);
        if (lock.mode_held() != (exclusive ? Mode::kExclusive : Mode::kShared)) {
          violations.fetch_add(1);
        }
        if (exclusive) {
          if (exclusive_inside.fetch_add(1) != 0 || shared_inside.load() != 0) {
            violations.fetch_add(1);
          }
          data = data + 1;
          exclusive_count.fetch_add(1);
          exclusive_inside.fetch_sub(1);
        } else {
          shared_inside.fetch_add(1);
          if (exclusive_inside.load() != 0) violations.fetch_add(1);
          if (rng() % 16 == 0) std::this_thread::yield();
          shared_inside.fetch_sub(1);
        }
        lock.release();
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(data, exclusive_count.load());
  EXPECT_EQ(lock.rwlock().readers(), 0);
  EXPECT_FALSE(lock.rwlock().write_locked());
}

// --- Processes (fork) ---------------------------------------------------------

TEST(SharedLockProcesses, SharedHoldersInTwoProcessesHoldTogether) {
  mp::SharedLock lock;
  Pipe to_parent, to_child;
  Child child([&] {
    lock.acquire();
    if (!to_parent.send('h')) return 2;
    if (to_child.receive() != 'x') return 3;
    lock.release();
    return 0;
  });
  ASSERT_EQ(to_parent.receive(), 'h');
  lock.acquire();  // beside the child's shared hold
  EXPECT_EQ(lock.rwlock().readers(), 2);
  lock.release();
  ExpectValueError([&] { lock.release(); }, kUnheld);  // the child's hold is not ours
  EXPECT_EQ(lock.rwlock().readers(), 1);
  to_child.send('x');
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(lock.rwlock().readers(), 0);
}

TEST(SharedLockProcesses, ExclusiveInOneProcessExcludesTheOther) {
  for (const bool parent_exclusive : {false, true}) {
    SCOPED_TRACE(parent_exclusive ? "parent exclusive, child shared"
                                  : "parent shared, child exclusive");
    mp::SharedLock lock;
    lock.acquire(parent_exclusive);
    Pipe to_parent;
    Child child([&] {
      if (lock.held_by_me()) return 2;
      if (!to_parent.send('r')) return 3;
      lock.acquire(!parent_exclusive);
      if (!to_parent.send('g')) return 4;
      lock.release();
      return 0;
    });
    ASSERT_EQ(to_parent.receive(), 'r');
    EXPECT_TRUE(child.still_running_after(kStaysBlocked)) << "child not blocked";
    lock.release();
    EXPECT_EQ(to_parent.receive(), 'g');
    EXPECT_EQ(child.exit_code(), 0);
    lock.acquire(true);  // free again
    lock.release();
  }
}

TEST(SharedLockProcesses, ChildDoesNotInheritParentsSharedHold) {
  mp::SharedLock lock;
  lock.acquire();
  Child child([&] {
    if (lock.mode_held() != Mode::kNone) return 2;
    if (int c = ValueErrorOr(
            3, [&] { lock.release(); }, kUnheld))
      return c;
    if (lock.rwlock().readers() != 1) return 4;  // the parent's hold is intact
    lock.acquire();                              // not a re-entry
    if (lock.rwlock().readers() != 2) return 5;
    lock.release();
    if (int c = ValueErrorOr(
            6, [&] { lock.release(); }, kUnheld))
      return c;
    return 0;
  });
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(lock.mode_held(), Mode::kShared);
  EXPECT_EQ(lock.rwlock().readers(), 1);
  lock.release();
  EXPECT_EQ(lock.rwlock().readers(), 0);
}

TEST(SharedLockProcesses, ChildDoesNotInheritParentsExclusiveHold) {
  mp::SharedLock lock;
  lock.acquire(true);
  Pipe to_parent;
  Child child([&] {
    if (lock.mode_held() != Mode::kNone) return 2;
    if (int c = ValueErrorOr(
            3, [&] { lock.release(); }, kUnheld))
      return c;
    if (!lock.rwlock().write_locked()) return 4;
    if (!to_parent.send('r')) return 5;
    lock.acquire();  // waits for the parent, like any other caller
    if (!to_parent.send('g')) return 6;
    lock.release();
    return 0;
  });
  ASSERT_EQ(to_parent.receive(), 'r');
  EXPECT_TRUE(child.still_running_after(kStaysBlocked)) << "child took a shared hold";
  EXPECT_EQ(lock.mode_held(), Mode::kExclusive);
  lock.release();
  EXPECT_EQ(to_parent.receive(), 'g');
  EXPECT_EQ(child.exit_code(), 0);
}

TEST(SharedLockProcesses, ChildMayNotReleaseParentsHold) {
  for (const bool exclusive : {false, true}) {
    SCOPED_TRACE(exclusive ? "exclusive" : "shared");
    mp::SharedLock lock;
    // The child starts before the parent acquires: it is another caller too.
    Pipe to_parent, to_child;
    Child child([&] {
      if (to_child.receive() != 'h') return 2;
      if (int c = ValueErrorOr(
              3, [&] { lock.release(); }, kUnheld))
        return c;
      return to_parent.send('d') ? 0 : 4;
    });
    lock.acquire(exclusive);
    to_child.send('h');
    EXPECT_EQ(to_parent.receive(), 'd');
    EXPECT_EQ(child.exit_code(), 0);
    EXPECT_EQ(lock.rwlock().write_locked(), exclusive);
    EXPECT_EQ(lock.rwlock().readers(), exclusive ? 0 : 1);
    lock.release();
  }
}

TEST(SharedLockProcesses, RandomizedStressAcrossProcesses) {
  constexpr int kThreadsPerProcess = 3;
  constexpr int kOps = 2000;
  struct Shared {
    std::atomic<bool> go;
    std::atomic<int> shared_inside;
    std::atomic<int> exclusive_inside;
    std::atomic<int> violations;
    std::atomic<std::int64_t> exclusive_count;
    std::int64_t data;  // guarded by exclusive mode
  };
  auto mapping = mp::platform::SharedMapping::anonymous(sizeof(Shared));
  auto* shared = ::new (mapping.data()) Shared{{false}, {0}, {0}, {0}, {0}, 0};
  mp::SharedLock lock;
  auto work = [&](unsigned seed) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreadsPerProcess; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(seed + static_cast<unsigned>(t));
        Eventually([&] { return shared->go.load(); });
        for (int i = 0; i < kOps; ++i) {
          const bool exclusive = rng() % 4 == 0;
          lock.acquire(exclusive);
          if (exclusive) {
            if (shared->exclusive_inside.fetch_add(1) != 0 || shared->shared_inside.load() != 0) {
              shared->violations.fetch_add(1);
            }
            shared->data = shared->data + 1;
            shared->exclusive_count.fetch_add(1);
            shared->exclusive_inside.fetch_sub(1);
          } else {
            shared->shared_inside.fetch_add(1);
            if (shared->exclusive_inside.load() != 0) shared->violations.fetch_add(1);
            if (rng() % 16 == 0) std::this_thread::yield();
            shared->shared_inside.fetch_sub(1);
          }
          lock.release();
        }
      });
    }
    for (auto& th : threads) th.join();
  };
  Child child(
      [&] {
        work(100);
        return 0;
      },
      /*watchdog_seconds=*/50);
  shared->go = true;
  work(200);
  ASSERT_EQ(child.exit_code(milliseconds(45'000)), 0);
  EXPECT_EQ(shared->violations.load(), 0);
  EXPECT_EQ(shared->data, shared->exclusive_count.load());
  EXPECT_EQ(lock.rwlock().readers(), 0);
  EXPECT_FALSE(lock.rwlock().write_locked());
}

}  // namespace
