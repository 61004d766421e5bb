// -----------------------------------------------------------------------------
// File: rwlock.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::RWLock`, a reader/writer lock shared between
// threads *and processes* that prefers writers. Python's `multiprocessing` has
// no reader/writer lock; the API follows mp::Lock (Python-style `acquire`
// with `block` and `timeout`) so that the two read alike:
//
//   mp::RWLock       a handle to a reader/writer lock living in shared memory.
//                    A process that forks after creating it shares it with the
//                    child.
//   mp::RWLockState  the lock's in-memory representation, for placing it in
//                    shared memory that the caller manages (see
//                    RWLock::attach()).
//
// Any number of readers may hold the lock together; a writer holds it alone.
// Like mp::Lock, an RWLock has no owner: it counts readers and knows whether
// a writer holds it, but not who. Any thread or process may release it.
//
// Example:
//
//   mp::RWLock rw;                           // free
//   pid_t pid = fork();                      // parent and child share `rw`
//   {
//     std::shared_lock<mp::RWLock> read(rw);  // together with other readers
//     ... read the shared data ...
//   }
//   {
//     std::unique_lock<mp::RWLock> write(rw); // alone
//     ... modify the shared data ...
//   }
//   if (rw.acquire_write(/*block=*/true, /*timeout=*/0.5)) {  // up to 0.5 s
//     ...
//     rw.release_write();
//   }

#ifndef MP_RWLOCK_HPP_
#define MP_RWLOCK_HPP_

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

// mp::RWLockState
//
// The whole state of an RWLock: two 32-bit futex words on one 64-byte cache
// line of their own.
//
//   word         bits    meaning
//   ----------   -----   ------------------------------------------------
//   word         0..28   number of readers holding the lock (kReaderMask)
//                29      kWriteLocked: a writer holds the lock
//                30      kReadersWaiting: a reader may be asleep on `word`
//                31      kWritersWaiting: a writer waits, or is being handed
//                        the lock; new readers do not enter while it is set
//   writer_seq   all     a counter, bumped before every wake-up of a writer;
//                        writers sleep on it (not on `word`), so that the
//                        comings and goings of readers do not wake them
//
// Nothing else is stored: no owner, no waiter counts, no pointers. The state
// is therefore valid at any address in any process that maps the memory.
//
// To keep an RWLock in memory you manage, construct an RWLockState there with
// placement new before other processes use it, then use RWLock::attach(). An
// RWLockState must not be copied or moved while in use, and must outlive
// every RWLock attached to it.
struct RWLockState {
  static constexpr std::uint32_t kReaderMask = (std::uint32_t{1} << 29) - 1;
  static constexpr std::uint32_t kWriteLocked = std::uint32_t{1} << 29;
  static constexpr std::uint32_t kReadersWaiting = std::uint32_t{1} << 30;
  static constexpr std::uint32_t kWritersWaiting = std::uint32_t{1} << 31;

  alignas(64) std::atomic<std::uint32_t> word{0};
  std::atomic<std::uint32_t> writer_seq{0};
};
static_assert(sizeof(RWLockState) == 64 && alignof(RWLockState) == 64);

// mp::RWLock
//
// A handle to a process-shared, non-recursive reader/writer lock. Copying an
// RWLock is cheap and yields another handle to the *same* lock. An RWLock
// created by `RWLock()` lives in its own anonymous shared mapping, which stays
// mapped in a process while any handle to it exists there.
//
// Blocking and timeouts. acquire_read() and acquire_write() follow mp::Lock's
// acquire(block=True, timeout=None): they may block until the lock can be
// taken in that mode, try once, or wait up to a timeout in seconds. Timeouts
// are measured on CLOCK_MONOTONIC from one absolute deadline fixed when the
// call starts, so interruptions and spurious wake-ups never lengthen the wait.
// A timed-out acquire returns false no earlier than `timeout` seconds after
// the call.
//
//   a reader waits while   a writer holds the lock, or a writer waits for it
//   a writer waits while   a writer or any reader holds the lock
//
// Waiting costs no CPU: a blocked caller first spins briefly (a few dozen
// reads of the word), then sleeps in the kernel (a shared futex). Uncontended,
// each of acquire_read(), release_read(), acquire_write() and release_write()
// is one compare-and-swap (acquire_read() and release_read() need a second
// one when other readers hold the lock); none enters the kernel.
//
// Fairness: writers first. A reader does not enter while a writer holds the
// lock *or waits for it*, so a continuous stream of readers cannot starve a
// writer: once a writer waits, the readers inside drain and the writer gets
// the lock next. When the last reader leaves and a writer waits, one writer
// is woken; when a writer releases, one waiting writer is woken if there is
// one, and otherwise every waiting reader. Consequently a continuous stream
// of writers can starve readers. Among writers there is no order (the lock may
// go to a newcomer before a woken writer runs). A release that makes the lock
// available to a waiter always wakes one (no lost wake-ups), and so does a
// writer that gives up at its deadline: the readers it was holding back are
// let in, unless another writer still waits. (One narrow race weakens the
// preference without breaking it: when a release finds no writer asleep
// because the only one is between announcing itself and going to sleep, or
// when a writer gives up just as another announces itself, readers woken at
// that moment may enter first; the writer then waits for those readers only.)
//
// Not reentrant, no upgrade, no downgrade. Counts are all the lock keeps:
//   * A reader that asks for a second read while a writer waits deadlocks:
//     the writer waits for the first read to end, the second read waits for
//     the writer. (Without a waiting writer the second read succeeds and must
//     be released separately.)
//   * acquire_write() while the caller holds a read waits for every reader,
//     including the caller: it blocks forever unless block=false (returns
//     false at once) or timed (returns false at the deadline, after which
//     the readers it held back are let in again). Release the read first.
//   * There is no atomic downgrade either: release_write() then
//     acquire_read() lets a waiting writer in between.
//
// Errors. release_read() when no reader holds the lock (it is free or
// write-held) and release_write() when it is not write-held throw
// mp::ValueError and change nothing. A NaN timeout throws mp::ValueError.
// A read beyond kMaxReaders concurrent readers throws
// std::system_error(EAGAIN). RWLock() throws std::system_error if the shared
// mapping cannot be created.
//
// Memory ordering. Everything a writer does before release_write()
// happens-before everything done after any later acquire (read or write)
// returns true; everything a reader does before release_read() happens-before
// everything done after a later acquire_write() returns true.
//
// Processes. After fork() the child shares the lock with the parent and
// inherits its current state: reads or a write the parent holds at fork() are
// held in the child too, and either may release them. (Handing a lock to an
// unrelated or spawned process is not supported yet.)
//
// Crashes. The lock is not robust. If a process or thread dies holding a read
// or the write, the lock stays held: writers (and, for a write, readers) keep
// waiting and timed waits expire; any survivor may release on its behalf. A
// waiter that dies while asleep disappears from the kernel's queue and takes
// no wake-up with it. A writer killed while waiting leaves the writers-waiting
// bit set, so readers that arrive meanwhile wait as they would for a live
// writer, until the lock's next release finds no writer asleep and clears it.
// (Readers are woken all at once, so a dead reader never swallows another's
// wake-up. A writer killed at the very instant the lock is handed to it can:
// as with mp::Lock, the lock is then left free but still marked as awaited by
// a writer, and waiters stay asleep until another writer takes and releases
// it; timed waits expire normally.)
//
// Standard library. lock()/unlock()/try_lock()/try_lock_for()/
// try_lock_until() (write mode) and lock_shared()/unlock_shared()/
// try_lock_shared()/try_lock_shared_for()/try_lock_shared_until() (read mode)
// make RWLock a SharedTimedMutex in all but ownership, usable with
// std::unique_lock, std::lock_guard and std::shared_lock.
class RWLock {
 public:
  // The largest number of readers that may hold the lock at once (2^29 - 1).
  static constexpr int kMaxReaders = static_cast<int>(RWLockState::kReaderMask);

  // RWLock::RWLock()
  //
  // Creates a new lock, free, in a new anonymous shared mapping (one page).
  // Throws std::system_error if the mapping cannot be created.
  RWLock();

  // RWLock::attach()
  //
  // Returns a handle to the lock whose state is `state`, e.g. an RWLockState
  // the caller placed in shared memory of its own. The handle does not own
  // the memory: `state` must outlive every handle to it.
  static RWLock attach(RWLockState& state) noexcept;

  // Copies are handles to the same lock. (A moved-from RWLock also remains a
  // valid handle: moving is copying.)
  RWLock(const RWLock&) = default;
  RWLock& operator=(const RWLock&) = default;
  ~RWLock() = default;

  // RWLock::acquire_read()
  //
  // Takes the lock for reading, Python style. Returns true if the caller now
  // holds a read.
  //
  //   block   timeout         behaviour
  //   -----   -------------   -----------------------------------------------
  //   false   (ignored)       one attempt; false at once if a writer holds or
  //                           waits for the lock
  //   true    nullopt, +inf   waits until the read is taken; returns true
  //   true    <= 0            one attempt, like block=false
  //   true    > 0             waits up to `timeout` seconds; false on expiry
  //   true    NaN             throws mp::ValueError (the lock is not touched)
  //
  // Timeouts of 4e9 seconds (~126 years) or more mean no limit. Throws
  // std::system_error(EAGAIN) instead of becoming the (kMaxReaders + 1)-th
  // reader.
  bool acquire_read(bool block = true, std::optional<double> timeout = std::nullopt);

  // RWLock::acquire_write()
  //
  // Takes the lock for writing, with the same `block` and `timeout` rules as
  // acquire_read(). Returns true if the caller now holds the write. While it
  // waits, new readers wait too. A writer that gives up at its deadline lets
  // the readers it held back in again (unless another writer still waits).
  bool acquire_write(bool block = true, std::optional<double> timeout = std::nullopt);

  // RWLock::release_read()
  //
  // Ends one read. If it was the last one and a writer waits, wakes a writer.
  // Any thread of any process may release a read, not only one that acquired
  // it. Never blocks.
  //
  // Throws mp::ValueError("release_read: no reader holds the lock") if no
  // reader holds the lock (it is free or write-held), and changes nothing.
  void release_read();

  // RWLock::release_write()
  //
  // Ends the write. Wakes one waiting writer if there is one, otherwise every
  // waiting reader. Any thread of any process may release it. Never blocks.
  //
  // Throws mp::ValueError("release_write: the lock is not held for writing")
  // if no writer holds the lock, and changes nothing. Of several concurrent
  // releases of one write, exactly one succeeds.
  void release_write();

  // Write mode for std::unique_lock and std::lock_guard: lock() is
  // acquire_write(), unlock() is release_write(), try_lock() is
  // acquire_write(false).
  void lock();
  void unlock() { release_write(); }
  [[nodiscard]] bool try_lock() noexcept;

  // RWLock::try_lock_for()
  //
  // Waits up to `rel_time` for the write: acquire_write(true, seconds). A
  // zero or negative duration makes one attempt.
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& rel_time) {
    return acquire_write(true, std::chrono::duration<double>(rel_time).count());
  }

  // RWLock::try_lock_until()
  //
  // Waits until `abs_time` (on std::chrono::steady_clock, i.e.
  // CLOCK_MONOTONIC) for the write. A time point that has passed makes one
  // attempt.
  template <class Duration>
  [[nodiscard]] bool try_lock_until(
      const std::chrono::time_point<std::chrono::steady_clock, Duration>& abs_time) {
    return acquire_write_until(platform::Deadline::at_steady(abs_time));
  }

  // Read mode for std::shared_lock: lock_shared() is acquire_read(),
  // unlock_shared() is release_read(), try_lock_shared() is
  // acquire_read(false). try_lock_shared() throws only std::system_error
  // (EAGAIN) beyond kMaxReaders readers.
  void lock_shared();
  void unlock_shared() { release_read(); }
  [[nodiscard]] bool try_lock_shared();

  // RWLock::try_lock_shared_for() / try_lock_shared_until()
  //
  // As try_lock_for() / try_lock_until(), for a read.
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& rel_time) {
    return acquire_read(true, std::chrono::duration<double>(rel_time).count());
  }
  template <class Duration>
  [[nodiscard]] bool try_lock_shared_until(
      const std::chrono::time_point<std::chrono::steady_clock, Duration>& abs_time) {
    return acquire_read_until(platform::Deadline::at_steady(abs_time));
  }

  // RWLock::readers()
  //
  // The number of reads held (0 when free or write-held). A snapshot for
  // tests and debugging: it may be stale as soon as it returns.
  int readers() const noexcept {
    return static_cast<int>(state_->word.load(std::memory_order_relaxed) &
                            RWLockState::kReaderMask);
  }

  // RWLock::write_locked()
  //
  // Whether a writer holds the lock. A snapshot, like readers().
  bool write_locked() const noexcept {
    return (state_->word.load(std::memory_order_relaxed) & RWLockState::kWriteLocked) != 0;
  }

  // Two handles are equal when they refer to the same lock (in this process).
  friend bool operator==(const RWLock& a, const RWLock& b) noexcept { return a.state_ == b.state_; }

 private:
  static constexpr std::uint32_t kReaderMask = RWLockState::kReaderMask;
  static constexpr std::uint32_t kWriteLocked = RWLockState::kWriteLocked;
  static constexpr std::uint32_t kReadersWaiting = RWLockState::kReadersWaiting;
  static constexpr std::uint32_t kWritersWaiting = RWLockState::kWritersWaiting;
  // A reader may enter only when none of these is set.
  static constexpr std::uint32_t kBlocksReaders = kWriteLocked | kWritersWaiting;
  static constexpr std::uint32_t kWaiters = kReadersWaiting | kWritersWaiting;

  RWLock(std::shared_ptr<platform::SharedMapping> mapping, RWLockState* state) noexcept
      : mapping_(std::move(mapping)), state_(state) {}

  bool acquire_read_timed(double seconds);
  bool acquire_write_timed(double seconds);
  bool acquire_read_until(platform::Deadline deadline);
  bool acquire_write_until(platform::Deadline deadline);
  // Wait for the lock; return false only if `deadline` (nullptr: none) passed.
  bool acquire_read_contended(const platform::Deadline* deadline);
  bool acquire_write_contended(const platform::Deadline* deadline);
  void release_write_slow(std::uint32_t word);
  // Called with the word a release left behind, when the lock became free
  // and waiters may need a wake-up.
  void wake_waiters(std::uint32_t word) noexcept;
  // Called by a writer that gives up at its deadline.
  void writer_gave_up() noexcept;
  [[noreturn]] static void throw_too_many_readers();
  [[noreturn]] static void throw_release_read_unheld();

  // Keeps the lock's mapping alive; null for attached locks.
  std::shared_ptr<platform::SharedMapping> mapping_;
  // Never null.
  RWLockState* state_;
};

// Fast paths, inline: a compare-and-swap that guesses the word's usual value
// (the lock free, or held by the caller alone), then, if the guess was wrong,
// a loop of compare-and-swaps on the value that the failed one loaded. No
// separate load: the cache line is fetched once, for writing. No system call.

inline bool RWLock::try_lock_shared() {
  std::uint32_t w = 0;  // first guess: free
  if (state_->word.compare_exchange_strong(w, 1, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
    return true;
  }
  while ((w & kBlocksReaders) == 0) {
    if ((w & kReaderMask) == kReaderMask) throw_too_many_readers();
    if (state_->word.compare_exchange_weak(w, w + 1, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

inline void RWLock::lock_shared() {
  if (!try_lock_shared()) acquire_read_contended(nullptr);
}

inline bool RWLock::acquire_read(bool block, std::optional<double> timeout) {
  if (!block) return try_lock_shared();
  if (!timeout.has_value()) {
    lock_shared();
    return true;
  }
  return acquire_read_timed(*timeout);
}

inline void RWLock::release_read() {
  std::uint32_t w = 1;  // first guess: the only reader, nobody waiting
  for (;;) {
    if ((w & kReaderMask) == 0) throw_release_read_unheld();
    if (state_->word.compare_exchange_weak(w, w - 1, std::memory_order_release,
                                           std::memory_order_relaxed)) {
      break;
    }
  }
  // The last reader left and someone may be waiting.
  if ((w & kReaderMask) == 1 && (w & kWaiters) != 0) {
    wake_waiters(w - 1);
  }
}

inline bool RWLock::try_lock() noexcept {
  std::uint32_t w = 0;  // first guess: free
  // Free, possibly with waiter bits (kept as they are).
  while ((w & (kReaderMask | kWriteLocked)) == 0) {
    if (state_->word.compare_exchange_weak(w, w | kWriteLocked, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

inline void RWLock::lock() {
  if (!try_lock()) acquire_write_contended(nullptr);
}

inline bool RWLock::acquire_write(bool block, std::optional<double> timeout) {
  if (!block) return try_lock();
  if (!timeout.has_value()) {
    lock();
    return true;
  }
  return acquire_write_timed(*timeout);
}

inline void RWLock::release_write() {
  std::uint32_t w = kWriteLocked;
  if (!state_->word.compare_exchange_strong(w, 0, std::memory_order_release,
                                            std::memory_order_relaxed)) {
    release_write_slow(w);
  }
}

}  // namespace mp

#endif  // MP_RWLOCK_HPP_
