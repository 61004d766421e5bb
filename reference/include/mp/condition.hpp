// -----------------------------------------------------------------------------
// File: condition.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::Condition`, a condition variable shared between
// threads and processes, with the semantics of Python's
// `multiprocessing.Condition` (normative text: mpspec `spec/sync/condition.md`).
//
// A Condition is always used together with a lock, the *condition's lock*: an
// mp::RLock (the default, as in Python) or an mp::Lock given by the caller.
// wait() atomically releases the lock and sleeps until notified; it reacquires
// the lock before returning. notify(n) wakes up to n waiters; notify_all()
// wakes them all. Both wait and notify require the lock to be held.
//
// Example (a one-slot mailbox between two processes):
//
//   mp::Condition cv;                     // over a new mp::RLock
//   // consumer
//   cv.acquire();
//   cv.wait_for([&] { return box.full(); });
//   take(box);
//   cv.release();
//   // producer (another process)
//   cv.acquire();
//   fill(box);
//   cv.notify();
//   cv.release();

#ifndef MP_CONDITION_HPP_
#define MP_CONDITION_HPP_

#include <atomic>
#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <variant>

#include "mp/lock.hpp"
#include "mp/platform/clock.hpp"
#include "mp/rlock.hpp"

namespace mp {

namespace platform {
class SharedMapping;
}  // namespace platform

// mp::ConditionState
//
// The condition's own state (the lock lives elsewhere): a table of waiter
// slots and a ticket counter. A waiter claims a free slot, records its
// process id and a ticket (arrival order), and sleeps on the slot's futex
// word. notify(n) marks the n oldest waiting slots as notified and wakes each
// one; a waiter whose timeout expires withdraws its slot with one
// compare-and-swap (or, losing that race, learns that it was notified).
// A waiter marks its slot "sleeping" just before its futex wait; a notify()
// that chooses a waiter not yet asleep only marks the slot (no system call:
// the waiter sees the mark before it would sleep, then takes the lock as any
// acquirer does). A sleeping waiter must be woken: over an mp::Lock, notify()
// does not wake it but moves it onto the lock's futex word (FUTEX_CMP_REQUEUE,
// "wait morphing"): it wakes when the notifier releases the lock, instead of
// waking at once only to find the lock held and sleep again.
// Everything is lock-free atomics: a process killed while waiting leaves its
// slot in use until a notify() that must tell it from a live waiter (to pass
// the notification on) sees that the process is gone, or until a wait() that
// finds the table full reclaims the slots of dead processes; one killed in the
// few instructions between claiming a slot and publishing it leaks that slot
// for the condition's lifetime.
struct ConditionState {
  static constexpr int kSlots = 240;  // the table fits in one 4 KiB page

  struct Slot {
    std::atomic<std::uint32_t> state{0};  // futex word: the waiter's state (condition.cpp)
    std::atomic<std::int32_t> pid{0};     // the waiter's process
    std::atomic<std::uint64_t> ticket{0};
  };

  alignas(64) std::atomic<std::uint64_t> next_ticket{0};
  std::atomic<std::uint32_t> high_water{0};  // slots at and above this index were never used
  alignas(64) Slot slots[kSlots];
};
static_assert(sizeof(ConditionState) <= 4096);

// mp::Condition
//
// A handle to a process-shared condition variable. Copies are handles to the
// same condition (and the same lock). A Condition created here lives in its
// own anonymous shared mapping; processes forked afterwards share it.
//
// The lock. Condition() creates a new mp::RLock; Condition(lock) uses the
// given mp::Lock or mp::RLock (a handle to it: the caller may keep using it
// directly). acquire(), release(), lock() and unlock() act on that lock, so a
// Condition is a Lockable usable with std::unique_lock.
//
// Holding the lock. wait(), wait_for() and notify() throw mp::AssertionError
// when the lock is not held. For an RLock this is exact: the caller must be
// the owning thread. An mp::Lock has no owner, so the check can only be
// "held by someone": a caller that does not hold it while another thread
// does is not detected (and must not rely on the call being safe).
//
// wait(timeout). Releases the lock completely (all levels of an RLock, which
// are restored afterwards), sleeps until notified or until `timeout` seconds
// (nullopt or +inf: no limit; <= 0: no sleep) pass on CLOCK_MONOTONIC,
// reacquires the lock (without a time limit, as Python does) and returns true
// if it was notified, false if the timeout expired. There are no spurious
// wake-ups: wait() returns true only if a notify() chose this waiter.
//
// notify(n). Wakes up to n of the waiters that are waiting when it is called,
// oldest first; each returns true. Later waiters are not affected. Never
// blocks: it does not wait for the woken waiters to run (CPython's does, and
// hangs when one of them died, gh-75158). notify_all() wakes every waiter.
//
// wait_for(pred, timeout). Returns pred() at once if it is truthy; otherwise
// waits and re-evaluates it after every wake-up until it is truthy or the one
// deadline computed at the start passes. Returns the last value of pred().
//
// Limits. At most ConditionState::kSlots (240) waiters at a time; one more
// throws std::system_error(EAGAIN).
//
// Crashes. A waiter killed while waiting is skipped by later notifies: it
// neither blocks them nor swallows their wake-ups (a process id reused by a
// new process before a notify runs could still swallow one). A process killed
// while holding the lock leaves an mp::Lock held; an mp::RLock reports
// mp::OwnerDied to the next waiter that reacquires it (wait() then throws
// OwnerDied holding the lock, with the depth restored).
class Condition {
 public:
  using LockHandle = std::variant<RLock, Lock>;

  // Condition::Condition()
  //
  // A condition over a new RLock.
  Condition();
  // A condition over `lock` (shared: the condition keeps a handle to it).
  explicit Condition(Lock lock);
  explicit Condition(RLock lock);

  Condition(const Condition&) = default;
  Condition& operator=(const Condition&) = default;
  ~Condition() = default;

  // The lock, as a Python Condition delegates acquire/release to it.
  bool acquire(bool block = true, std::optional<double> timeout = std::nullopt) {
    return std::visit([&](auto& l) { return l.acquire(block, timeout); }, lock_);
  }
  void release() {
    std::visit([](auto& l) { l.release(); }, lock_);
  }
  void lock() { acquire(); }
  void unlock() { release(); }
  const LockHandle& underlying_lock() const noexcept { return lock_; }

  // Condition::wait()
  //
  // See the class comment. Throws mp::AssertionError if the lock is not held,
  // mp::ValueError for a NaN timeout.
  bool wait(std::optional<double> timeout = std::nullopt);

  // Condition::wait_for()
  //
  // Waits until `pred()` is truthy, up to `timeout` seconds; returns the last
  // value pred() returned. pred runs with the lock held.
  template <class Pred>
  auto wait_for(Pred pred, std::optional<double> timeout = std::nullopt) -> decltype(pred()) {
    auto result = pred();
    if (result) return result;
    const platform::Deadline deadline = deadline_after(timeout);
    while (!result) {
      if (deadline.has_passed()) break;
      wait_until(deadline);
      result = pred();
    }
    return result;
  }

  // Condition::notify()
  //
  // Wakes up to `n` waiters (none if n <= 0). Throws mp::AssertionError if
  // the lock is not held. Never blocks.
  void notify(int n = 1);

  // Condition::notify_all()
  //
  // Wakes every waiter. Throws mp::AssertionError if the lock is not held.
  void notify_all() { notify(INT_MAX); }

 private:
  static platform::Deadline deadline_after(std::optional<double> timeout);
  bool wait_until(platform::Deadline deadline);  // checks that the lock is held
  bool wait_held(platform::Deadline deadline);   // the caller checked
  void check_held(const char* what);

  std::shared_ptr<platform::SharedMapping> mapping_;
  ConditionState* state_ = nullptr;
  LockHandle lock_;
};

}  // namespace mp

#endif  // MP_CONDITION_HPP_
