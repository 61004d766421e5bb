// -----------------------------------------------------------------------------
// File: rlock.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::RLock`, a recursive lock shared between threads and
// processes, with the semantics of Python's `multiprocessing.RLock` (normative
// text: mpspec `spec/sync/rlock.md`), plus one thing CPython lacks: it is
// *robust*. If the thread holding it dies (its process is killed, say), the
// next thread to acquire it gets the lock together with an mp::OwnerDied
// exception instead of waiting forever.
//
//   mp::RLock       a handle to a recursive lock living in shared memory.
//   mp::RLockState  the lock's in-memory representation, for placing an RLock
//                   in shared memory that the caller manages.
//
// Unlike mp::Lock, an RLock has an owner: the thread (of one process) that
// acquired it. The owner may acquire it again without blocking; each acquire
// must be matched by one release, and only the owner may release it. A child
// created by fork() is a different thread: it does not own an RLock its parent
// holds, cannot release it, and waits for it like any other thread. (Create
// children with fork(): a raw clone() system call skips the pthread_atfork
// handler through which libmp learns that the child's thread id changed.)
//
// Example:
//
//   mp::RLock rlock;
//   {
//     std::lock_guard<mp::RLock> outer(rlock);
//     std::lock_guard<mp::RLock> inner(rlock);   // same thread: no deadlock
//   }
//   try {
//     rlock.acquire();
//   } catch (const mp::OwnerDied&) {
//     // The previous owner died holding the lock. We hold it now (depth 1);
//     // repair whatever it protects, then go on as usual.
//   }
//   rlock.release();

#ifndef MP_RLOCK_HPP_
#define MP_RLOCK_HPP_

#include <pthread.h>
#include <sys/types.h>

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

// mp::RLockState
//
// The whole state of an RLock: a glibc mutex that is process-shared, robust
// and recursive (the kernel's robust-futex list lets the next locker learn
// that the owner died), plus two fields that only the owner writes:
//
//   owner_tid   kernel thread id of the owner (0 when free). Thread ids are
//               unique across processes, so it names the (process, thread).
//   depth       the owner's recursion depth. The mutex is locked once per
//               ownership; further levels only count here, so a recursive
//               acquire or an inner release never calls into the mutex.
//
// (If an owner dies and the kernel gives its thread id to a new thread before
// anyone acquires the RLock, that new thread would pass for the owner. Linux
// hands out thread ids cyclically from a large space, so this needs the id
// space to wrap around meanwhile.)
//
// To keep an RLock in memory you manage, construct an RLockState there (its
// constructor initialises the mutex) before other processes use it, then use
// RLock::attach(). It must not be copied, moved or destroyed while in use.
struct RLockState {
  RLockState();
  ~RLockState();
  RLockState(const RLockState&) = delete;
  RLockState& operator=(const RLockState&) = delete;

  alignas(64) pthread_mutex_t mutex;
  std::atomic<pid_t> owner_tid{0};
  std::uint32_t depth = 0;
};

// mp::RLock
//
// A handle to a process-shared, recursive, robust lock. Copies are handles to
// the same lock. `RLock()` creates one in its own anonymous shared mapping,
// shared with every child forked afterwards.
//
// Blocking and timeouts: as mp::Lock. acquire(block, timeout) waits at most
// `timeout` seconds, measured on CLOCK_MONOTONIC from one deadline fixed when
// the call starts; a NaN timeout throws mp::ValueError; <= 0 makes one
// attempt; +inf or >= 4e9 s waits without limit. If the caller already owns
// the lock, every form of acquire succeeds at once and increments the depth.
//
// Errors.
//   release() by a thread that does not own the lock (including when the lock
//   is free) throws mp::AssertionError and changes nothing.
//   acquire() (any form) throws mp::OwnerDied when the owner died while holding
//   the lock. The caller then OWNS the lock with depth 1 — whatever depth the
//   dead owner had — and must release it once. The protected data may be
//   inconsistent; the lock itself is fully usable again.
//   acquire() throws mp::ValueError if the depth would exceed 2^32 - 1.
//   RLock() throws std::system_error if the shared mapping cannot be created.
//
// Memory ordering: as mp::Lock (release happens-before the next acquire).
//
// Fairness: none, as mp::Lock.
//
// lock(), unlock(), try_lock(), try_lock_for() and try_lock_until() make an
// RLock a TimedLockable (std::lock_guard, std::unique_lock, std::scoped_lock);
// note that lock() and try_lock*() report a dead owner by throwing OwnerDied
// like acquire().
class RLock {
 public:
  // RLock::RLock()
  //
  // Creates a new, free RLock in a new anonymous shared mapping.
  RLock();

  // RLock::attach()
  //
  // A handle to the RLock whose (constructed) state is `state`. The handle does
  // not own the memory.
  static RLock attach(RLockState& state) noexcept;

  RLock(const RLock&) = default;
  RLock& operator=(const RLock&) = default;
  ~RLock() = default;

  // RLock::acquire()
  //
  // Python's `acquire(block=True, timeout=None)`. Returns true if the caller
  // now owns the lock (one more level if it already did), false if it gave up.
  // Throws mp::OwnerDied (caller owns the lock, depth 1) or mp::ValueError.
  bool acquire(bool block = true, std::optional<double> timeout = std::nullopt);

  // RLock::release()
  //
  // Drops one level of the caller's ownership; at depth 0 the lock is free and
  // one waiter (if any) is woken. Throws mp::AssertionError if the calling
  // thread does not own the lock.
  void release();

  // RLock::lock() / unlock() / try_lock(): acquire(), release(),
  // acquire(false).
  void lock() { acquire(true, std::nullopt); }
  void unlock() { release(); }
  [[nodiscard]] bool try_lock() { return acquire(false); }

  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& rel_time) {
    return acquire(true, std::chrono::duration<double>(rel_time).count());
  }

  template <class Duration>
  [[nodiscard]] bool try_lock_until(
      const std::chrono::time_point<std::chrono::steady_clock, Duration>& abs_time) {
    return acquire_until(platform::Deadline::at_steady(abs_time));
  }

  // RLock::is_owned()
  //
  // Whether the calling thread owns the lock.
  bool is_owned() const noexcept;

  // RLock::depth()
  //
  // The calling thread's recursion depth: 0 if it does not own the lock.
  std::uint32_t depth() const noexcept;

  // RLock::release_all()
  //
  // Releases every level the caller holds at once and returns how many there
  // were (for condition variables: Python's `_release_save`). Throws
  // mp::AssertionError if the caller does not own the lock.
  std::uint32_t release_all();

  // RLock::acquire_restore()
  //
  // Blocks until the caller owns the lock, then sets its depth to `depth`
  // (>= 1): the inverse of release_all(). If the previous owner died, the
  // depth is still restored and mp::OwnerDied is thrown afterwards.
  void acquire_restore(std::uint32_t depth);

  friend bool operator==(const RLock& a, const RLock& b) noexcept { return a.state_ == b.state_; }

 private:
  RLock(std::shared_ptr<platform::SharedMapping> mapping, RLockState* state) noexcept
      : mapping_(std::move(mapping)), state_(state) {}

  bool acquire_until(platform::Deadline deadline);
  // Records the caller as owner after pthread_mutex_*lock returned `rc`
  // (0 or EOWNERDEAD); returns true, or throws OwnerDied.
  bool took(int rc);

  std::shared_ptr<platform::SharedMapping> mapping_;
  RLockState* state_;
};

}  // namespace mp

#endif  // MP_RLOCK_HPP_
