// -----------------------------------------------------------------------------
// File: lock.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::Lock`, a non-recursive lock shared between threads
// *and processes*, with the semantics of Python's `multiprocessing.Lock`
// (normative text: mpspec `spec/sync/lock.md`):
//
//   mp::Lock       a handle to a lock living in shared memory. A process that
//                  forks after creating it shares it with the child.
//   mp::LockState  the lock's in-memory representation, for placing a lock in
//                  shared memory that the caller manages (see Lock::attach()).
//
// A Lock is a binary semaphore, not a mutex: it has no owner. Whoever holds it
// may release it, and so may any other thread or process. Use it where Python
// code uses `multiprocessing.Lock`, or as a cheap cross-process signal (one
// side acquires, the other releases). When the holder may die while holding
// it and others must recover, use a robust lock instead (RLock, coming later):
// a Lock whose holder was killed stays held until someone releases it.
//
// Example:
//
//   mp::Lock lock;                       // free
//   pid_t pid = fork();                  // parent and child share `lock`
//   {
//     std::lock_guard<mp::Lock> guard(lock);
//     ... critical section, exclusive across both processes ...
//   }
//   if (lock.acquire(/*block=*/true, /*timeout=*/0.5)) {  // wait up to 0.5 s
//     ...
//     lock.release();
//   }

#ifndef MP_LOCK_HPP_
#define MP_LOCK_HPP_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "mp/platform/clock.hpp"

namespace mp {

namespace platform {
class SharedMapping;
}  // namespace platform

// mp::LockState
//
// The whole state of a Lock: one 32-bit futex word, alone on a 64-byte cache
// line so that unrelated data never shares (and slows down) its line.
//
//   word   meaning
//   ----   -------------------------------------------------------------
//   0      free
//   1      held; no thread or process is asleep waiting for it
//   2      held; some thread or process may be asleep waiting for it
//
// Nothing else is stored: no owner, no waiter count, no pointers. The state is
// therefore valid at any address in any process that maps the memory, and a
// process that dies at any point cannot leave it inconsistent (only held).
//
// To keep a lock in memory you manage (e.g. inside a larger shared segment),
// construct a LockState there with placement new before other processes use
// it, then use Lock::attach(). A LockState must not be copied or moved while
// in use, and must outlive every Lock attached to it.
struct LockState {
  alignas(64) std::atomic<std::uint32_t> word{0};
};
static_assert(sizeof(LockState) == 64 && alignof(LockState) == 64);

// mp::Lock
//
// A handle to a process-shared, non-recursive lock. Copying a Lock is cheap
// and yields another handle to the *same* lock. A Lock created by `Lock()`
// lives in its own anonymous shared mapping, which stays mapped in a process
// while any handle to it exists there.
//
// Blocking and timeouts. acquire() follows Python's `acquire(block=True,
// timeout=None)`: it may block until the lock is free, try once, or wait up to
// a timeout in seconds. Timeouts are measured on CLOCK_MONOTONIC (changes of
// the wall clock do not affect them): the relative timeout is turned into one
// absolute deadline when the call starts, so interruptions and spurious
// wake-ups never lengthen the wait. A timed-out acquire returns false no
// earlier than `timeout` seconds after the call.
//
// Waiting costs no CPU: a blocked caller first spins briefly (a few dozen
// reads of the word), then sleeps in the kernel (a shared futex). An
// uncontended acquire is one compare-and-swap and an uncontended release is
// one exchange; neither enters the kernel.
//
// Fairness. None. When the lock is released, any one of the waiters gets it,
// and the releaser (or a newcomer) may take it again before a woken waiter
// runs. A release with waiters always wakes one of them (no lost wake-ups).
//
// Errors. release() of a lock that is not held throws mp::ValueError. A timeout
// that is NaN throws mp::ValueError. Lock() throws std::system_error if the
// shared mapping cannot be created.
//
// Memory ordering. Everything a thread does before release() happens-before
// everything another thread (in any process) does after the acquire that takes
// the lock next returns true.
//
// Processes. After fork() the child shares the lock with the parent and
// inherits its current state: a lock the parent holds at fork() is held in the
// child too, and either may release it. (Handing a lock to an unrelated or
// spawned process is not supported yet.)
//
// Crashes. A Lock has no owner to check, so if the process or thread holding
// it dies, the lock stays held: waiters keep waiting and timed waits expire.
// Any surviving thread or process may release it, after which it works as
// before. A waiter that dies while blocked in acquire() leaves the lock
// unchanged and does not disturb the other waiters.
//
// The members lock(), unlock(), try_lock(), try_lock_for() and
// try_lock_until() make Lock a TimedLockable, usable with std::lock_guard,
// std::unique_lock and std::scoped_lock.
class Lock {
 public:
  // Lock::Lock()
  //
  // Creates a new lock, free, in a new anonymous shared mapping (one page).
  // Throws std::system_error if the mapping cannot be created.
  Lock();

  // Lock::attach()
  //
  // Returns a handle to the lock whose state is `state`, e.g. a LockState the
  // caller placed in shared memory of its own. The handle does not own the
  // memory: `state` must outlive every handle to it.
  static Lock attach(LockState& state) noexcept;

  // Copies are handles to the same lock. (A moved-from Lock also remains a
  // valid handle: moving is copying.)
  Lock(const Lock&) = default;
  Lock& operator=(const Lock&) = default;
  ~Lock() = default;

  // Lock::acquire()
  //
  // Takes the lock, Python style. Returns true if the caller now holds it.
  //
  //   block   timeout         behaviour
  //   -----   -------------   -----------------------------------------------
  //   false   (ignored)       one attempt; false at once if the lock is held
  //   true    nullopt, +inf   waits until the lock is taken; returns true
  //   true    <= 0            one attempt, like block=false
  //   true    > 0             waits up to `timeout` seconds; false on expiry
  //   true    NaN             throws mp::ValueError (the lock is not touched)
  //
  // The lock is not recursive: if the caller already holds it, a
  // non-blocking or timed acquire returns false and a blocking one waits until
  // someone else releases it. Timeouts of 4e9 seconds (~126 years) or more
  // mean no limit.
  bool acquire(bool block = true, std::optional<double> timeout = std::nullopt);

  // Lock::release()
  //
  // Frees the lock and wakes one waiter, if any. Any thread of any process may
  // release the lock, not only the one that acquired it. Never blocks.
  //
  // Throws mp::ValueError("semaphore or lock released too many times") if the
  // lock is not held, and leaves it free. The check and the release are one
  // atomic step: when several callers release one held lock concurrently,
  // exactly one succeeds and the others throw.
  void release();

  // Lock::lock()
  //
  // Same as acquire(): blocks until the caller holds the lock.
  void lock();

  // Lock::unlock()
  //
  // Same as release(), including the mp::ValueError if the lock is not held
  // (note that std::lock_guard's destructor turns that into std::terminate).
  void unlock() { release(); }

  // Lock::try_lock()
  //
  // One attempt, never blocks: same as acquire(false).
  [[nodiscard]] bool try_lock() noexcept;

  // Lock::try_lock_for()
  //
  // Waits up to `rel_time` for the lock: same as acquire(true, seconds). A
  // zero or negative duration makes one attempt.
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& rel_time) {
    return acquire(true, std::chrono::duration<double>(rel_time).count());
  }

  // Lock::try_lock_until()
  //
  // Waits until `abs_time` (on std::chrono::steady_clock, i.e. CLOCK_MONOTONIC)
  // for the lock. A time point that has passed makes one attempt.
  template <class Duration>
  [[nodiscard]] bool try_lock_until(
      const std::chrono::time_point<std::chrono::steady_clock, Duration>& abs_time) {
    return acquire_until(platform::Deadline::at_steady(abs_time));
  }

  // Two handles are equal when they refer to the same lock (in this process).
  friend bool operator==(const Lock& a, const Lock& b) noexcept { return a.state_ == b.state_; }

 private:
  friend class Condition;

  Lock(std::shared_ptr<platform::SharedMapping> mapping, LockState* state) noexcept
      : mapping_(std::move(mapping)), state_(state) {}

  // For Condition's wait morphing: a notifier that holds the lock moves the
  // waiter it wakes from the waiter's own futex word onto the lock's word, so
  // the waiter sleeps on until the lock is released instead of waking only to
  // find it held. prepare_requeue() marks a held lock as possibly awaited (so
  // that its release wakes a sleeper) and returns its futex word, or returns
  // nullptr if the lock is free. lock_after_requeue() acquires the lock on
  // behalf of a waiter that may have been moved: it keeps the lock marked as
  // awaited, since other moved waiters may still sleep on the word.
  std::atomic<std::uint32_t>* prepare_requeue() noexcept;
  void lock_after_requeue();

  bool acquire_timed(double seconds);
  bool acquire_until(platform::Deadline deadline);
  // Waits for the lock; returns false only if `deadline` (nullptr: none) passed.
  bool acquire_contended(const platform::Deadline* deadline);
  void release_slow(std::uint32_t previous);

  // Keeps the lock's mapping alive; null for attached locks.
  std::shared_ptr<platform::SharedMapping> mapping_;
  // Never null.
  LockState* state_;
};

// Fast paths, inline: one atomic instruction, no call, no system call.

inline bool Lock::try_lock() noexcept {
  std::uint32_t expected = 0;
  return state_->word.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                              std::memory_order_relaxed);
}

inline void Lock::lock() {
  if (!try_lock()) acquire_contended(nullptr);
}

inline bool Lock::acquire(bool block, std::optional<double> timeout) {
  if (!block) return try_lock();
  if (!timeout.has_value()) {
    lock();
    return true;
  }
  return acquire_timed(*timeout);
}

inline void Lock::release() {
  const std::uint32_t previous = state_->word.exchange(0, std::memory_order_release);
  if (previous != 1) release_slow(previous);
}

}  // namespace mp

#endif  // MP_LOCK_HPP_
