// -----------------------------------------------------------------------------
// File: shared_lock.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::SharedLock`, the lock of
// `multiprocessing_utils.SharedLock` (normative text: mpspec
// `spec/rwlock/shared_lock.md`): a lock shared between threads *and
// processes* that a caller takes in one of two modes,
//
//   shared      any number of callers at once, in any threads and processes;
//   exclusive   one caller alone.
//
// It is an mp::RWLock (shared = read, exclusive = write) that knows its
// holders. A *caller* is one thread of one process, and a hold belongs to the
// caller that took it; the lock remembers, per (process, thread), which mode
// the caller holds (in an mp::local). That knowledge turns misuse into an
// mp::ValueError instead of a deadlock or a corrupted count: acquiring again
// while holding, upgrading a shared hold, releasing a hold one does not have.
//
// Example:
//
//   mp::SharedLock lock;                   // free
//   pid_t pid = fork();                    // parent and child share `lock`
//
//   lock.acquire();                        // shared, together with others
//   ... read the shared data ...
//   lock.release();
//
//   lock.acquire(/*exclusive=*/true);      // alone
//   ... modify the shared data ...
//   lock.release();
//
//   {
//     std::shared_lock<mp::SharedLock> read(lock);   // scoped shared hold
//   }
//   {
//     std::unique_lock<mp::SharedLock> write(lock);  // scoped exclusive hold
//   }

#ifndef MP_SHARED_LOCK_HPP_
#define MP_SHARED_LOCK_HPP_

#include "mp/local.hpp"
#include "mp/rwlock.hpp"

namespace mp {

// mp::SharedLock
//
// A process-shared, non-reentrant lock with a shared and an exclusive mode,
// and per-(process, thread) ownership.
//
// Blocking. acquire() always blocks until the mode it asks for is granted;
// like the seed, there is no timed or non-blocking form.
//
//   a shared acquirer waits while     a caller holds the lock exclusively, or
//                                     an exclusive acquirer waits for it
//   an exclusive acquirer waits while any other caller holds the lock
//
// Waiting costs no CPU (a futex, see mp::RWLock).
//
// Fairness: writers first, as mp::RWLock. While an exclusive acquirer waits,
// new shared acquirers wait too, so the shared holders drain and a stream of
// them cannot starve it. Among exclusive acquirers there is no order, and a
// stream of them can starve shared acquirers.
//
// Ownership. A hold belongs to the (process, thread) that took it. Another
// thread of the same process is another caller: it shares a shared hold,
// waits for an exclusive one, and cannot release either. A child created by
// fork() while a caller of the parent holds the lock does not hold it (in no
// thread): it cannot release the parent's hold, and its acquire waits for it
// like any other caller's (a shared acquire succeeds beside the parent's
// shared hold). The parent's hold stays in place, and the parent releases it.
//
// Errors, all mp::ValueError, each thrown at once (never after waiting) and
// changing nothing:
//
//   acquire(true) while this caller holds a shared hold
//       "Cannot upgrade a shared lock to an exclusive lock"
//   any other acquire() while this caller holds the lock
//       "Lock not re-entrant"
//   release() while this caller holds nothing
//       "lock released too many times"
//
// (the messages are seed 000's). acquire() of a shared hold beyond
// mp::RWLock::kMaxReaders concurrent ones throws std::system_error(EAGAIN);
// SharedLock() throws std::system_error if the lock's shared mapping cannot
// be created, and acquire() may throw std::bad_alloc the first time a thread
// uses the lock (its ownership record); in each case the caller holds
// nothing.
//
// Memory ordering: as mp::RWLock's, exclusive for write and shared for read.
//
// Crashes. The lock is not robust. If a process dies holding the lock, its
// hold stays in place for ever: exclusive acquirers (and, for an exclusive
// hold, everyone) wait for ever, and no other caller may release it on its
// behalf. The same holds for a thread that exits while holding: its
// ownership record is destroyed with the thread, and its hold remains. A
// waiter that dies leaves no trace (see mp::RWLock).
//
// Threads. acquire(), release() and the queries may be called by any number
// of threads at once. The SharedLock object itself is neither copyable nor
// movable: the ownership records belong to the object (copies would be
// different callers' records for the same lock); share it by reference, and
// with a child by fork().
//
// Standard library. lock()/unlock() (exclusive) and lock_shared()/
// unlock_shared() (shared) make SharedLock usable with std::unique_lock,
// std::lock_guard and std::shared_lock; both unlocks are release(). There is
// no try_lock: the seed offers no non-blocking acquire.
class SharedLock {
 public:
  // The mode in which the calling (process, thread) holds the lock.
  enum class Mode { kNone, kShared, kExclusive };

  // SharedLock::SharedLock()
  //
  // Creates a new lock, free, in a new anonymous shared mapping. Throws
  // std::system_error if the mapping cannot be created.
  SharedLock() = default;

  SharedLock(const SharedLock&) = delete;
  SharedLock& operator=(const SharedLock&) = delete;
  ~SharedLock() = default;

  // SharedLock::acquire()
  //
  // Takes the lock in shared mode, or in exclusive mode when `exclusive` is
  // true, waiting as long as needed. Throws mp::ValueError at once, without
  // waiting, if the calling thread of this process already holds the lock
  // (see Errors above).
  void acquire(bool exclusive = false);

  // SharedLock::release()
  //
  // Gives back the calling thread's hold, in the mode it took. Throws
  // mp::ValueError("lock released too many times") if the calling thread of
  // this process holds nothing. Never blocks.
  void release();

  // SharedLock::mode_held()
  //
  // The mode in which the calling thread of this process holds the lock
  // (kNone if it holds nothing). Exact for the caller: only it changes it.
  Mode mode_held() const noexcept;

  // SharedLock::held_by_me()
  //
  // Whether the calling thread of this process holds the lock, in any mode.
  bool held_by_me() const noexcept { return mode_held() != Mode::kNone; }

  // Exclusive mode for std::unique_lock and std::lock_guard, shared mode for
  // std::shared_lock. unlock() and unlock_shared() are release().
  void lock() { acquire(true); }
  void unlock() { release(); }
  void lock_shared() { acquire(false); }
  void unlock_shared() { release(); }

  // SharedLock::rwlock()
  //
  // The underlying reader/writer lock (shared = read, exclusive = write), for
  // tests and debugging: readers() and write_locked() show the holds of every
  // caller. Acquiring or releasing it directly bypasses the ownership records.
  const RWLock& rwlock() const noexcept { return lock_; }

 private:
  RWLock lock_;
  // Per (process, thread): the mode held. A record, once created for a
  // thread, stays (kNone when nothing is held), so that acquire() allocates
  // only on a thread's first use.
  local<Mode> held_;
};

}  // namespace mp

#endif  // MP_SHARED_LOCK_HPP_
