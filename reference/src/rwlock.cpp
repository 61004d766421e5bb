#include "mp/rwlock.hpp"

#include <cerrno>
#include <cmath>
#include <new>
#include <system_error>

#include "mp/errors.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/shm.hpp"

// The protocol, in brief (RWLockState documents the bits):
//
//   * Readers sleep on `word` itself, after setting kReadersWaiting; whoever
//     clears kReadersWaiting wakes all of them. Only a word that blocks
//     readers (a writer holds or waits) is slept on, so they are woken exactly
//     when kWriteLocked and kWritersWaiting go away.
//   * Writers sleep on `writer_seq`, after setting kWritersWaiting and then
//     reading the counter and re-checking the word. Every wake-up of a writer
//     is preceded by a bump of the counter, so a writer between its re-check
//     and its sleep never misses one (the futex sees the counter moved).
//   * kWritersWaiting is sticky: a release that finds it set bumps the counter
//     and wakes one writer, leaving the bit set, so no reader enters between
//     the release and the woken writer taking the lock. Only when that wake
//     finds no sleeping writer is the bit cleared (and the readers woken), and
//     only while the lock is still free. A writer that has announced itself
//     takes the lock with the bit set, since other writers may still sleep.
//   * A writer that gives up at its deadline cannot know whether it was the
//     only one waiting. It first wakes another writer, leaving the bit set; if
//     none was asleep it clears the bit, bumps the counter again (so that a
//     writer about to sleep re-announces itself) and, if still none is woken,
//     wakes the readers that it held back.
//
// Invariant behind "no lost wake-up" for writers: a writer sleeps only after
// seeing the lock held with kWritersWaiting set, having read the counter
// first. The holder's release (or the last reader's) then sees the bit and
// bumps the counter; the bit can be cleared before that only by a writer
// giving up, which also bumps the counter after clearing it, or by a release
// that finds the lock free, which is impossible while the seen holder holds.

namespace mp {
namespace {

// Reads of the word before going to sleep, as in mp::Lock (see lock.cpp): a
// holder about to release is often caught without a sleep and a wake-up.
constexpr int kSpinReads = 40;

// Neither a reader nor a writer holds the lock (waiter bits may be set).
constexpr bool is_free(std::uint32_t w) {
  return (w & (RWLockState::kReaderMask | RWLockState::kWriteLocked)) == 0;
}

}  // namespace

RWLock::RWLock() {
  auto mapping = std::make_shared<platform::SharedMapping>(
      platform::SharedMapping::anonymous(sizeof(RWLockState)));
  // The mapping is zero-filled and page aligned: construct the state at its
  // start (free, on its own cache line).
  state_ = ::new (mapping->data()) RWLockState{};
  mapping_ = std::move(mapping);
}

RWLock RWLock::attach(RWLockState& state) noexcept { return RWLock(nullptr, &state); }

void RWLock::throw_too_many_readers() {
  throw std::system_error(EAGAIN, std::generic_category(), "acquire_read: too many readers");
}

void RWLock::throw_release_read_unheld() {
  throw ValueError("release_read: no reader holds the lock");
}

// --- Timeouts -----------------------------------------------------------------

bool RWLock::acquire_read_timed(double seconds) {
  if (std::isnan(seconds)) throw ValueError("timeout must not be NaN");
  if (seconds <= 0.0) return try_lock_shared();  // Python: a negative timeout is 0
  if (try_lock_shared()) return true;
  // The deadline is read from the clock once, here, for the whole call.
  const platform::Deadline deadline = platform::Deadline::after(seconds);
  return acquire_read_contended(deadline.is_never() ? nullptr : &deadline);
}

bool RWLock::acquire_write_timed(double seconds) {
  if (std::isnan(seconds)) throw ValueError("timeout must not be NaN");
  if (seconds <= 0.0) return try_lock();
  if (try_lock()) return true;
  const platform::Deadline deadline = platform::Deadline::after(seconds);
  return acquire_write_contended(deadline.is_never() ? nullptr : &deadline);
}

bool RWLock::acquire_read_until(platform::Deadline deadline) {
  if (try_lock_shared()) return true;
  if (deadline.has_passed()) return false;
  return acquire_read_contended(deadline.is_never() ? nullptr : &deadline);
}

bool RWLock::acquire_write_until(platform::Deadline deadline) {
  if (try_lock()) return true;
  if (deadline.has_passed()) return false;
  return acquire_write_contended(deadline.is_never() ? nullptr : &deadline);
}

// --- Readers ------------------------------------------------------------------

bool RWLock::acquire_read_contended(const platform::Deadline* deadline) {
  std::atomic<std::uint32_t>& word = state_->word;
  std::uint32_t w = word.load(std::memory_order_relaxed);
  // Brief spin while a writer holds the lock and nobody waits for it: it may
  // be about to release. Only reads, so the line is not stolen from it.
  for (int i = 0; i < kSpinReads && (w & (kBlocksReaders | kReadersWaiting)) == kWriteLocked; ++i) {
    platform::futex::cpu_relax();
    w = word.load(std::memory_order_relaxed);
  }
  for (;;) {
    if ((w & kBlocksReaders) == 0) {
      if ((w & kReaderMask) == kReaderMask) throw_too_many_readers();
      if (word.compare_exchange_weak(w, w + 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
        return true;
      }
      continue;
    }
    // Announce a sleeping reader, so that whoever unblocks readers wakes us.
    if ((w & kReadersWaiting) == 0) {
      if (!word.compare_exchange_weak(w, w | kReadersWaiting, std::memory_order_relaxed,
                                      std::memory_order_relaxed)) {
        continue;
      }
      w |= kReadersWaiting;
    }
    if (platform::futex::wait(word, w, deadline) == platform::futex::WaitResult::kTimedOut) {
      // The kernel last saw a word that blocks readers. kReadersWaiting stays
      // set: at worst it costs a later release one needless wake-up.
      return false;
    }
    w = word.load(std::memory_order_relaxed);
  }
}

// --- Writers ------------------------------------------------------------------

bool RWLock::acquire_write_contended(const platform::Deadline* deadline) {
  std::atomic<std::uint32_t>& word = state_->word;
  std::atomic<std::uint32_t>& seq = state_->writer_seq;
  std::uint32_t w = word.load(std::memory_order_relaxed);
  // Brief spin while the lock is held and nobody sleeps.
  for (int i = 0; i < kSpinReads && !is_free(w) && (w & kWaiters) == 0; ++i) {
    platform::futex::cpu_relax();
    w = word.load(std::memory_order_relaxed);
  }
  // Once this writer has announced itself it takes the lock with
  // kWritersWaiting set: other writers may be asleep, and the bit makes the
  // release wake one of them.
  std::uint32_t keep = 0;
  for (;;) {
    if (is_free(w)) {
      if (word.compare_exchange_weak(w, w | kWriteLocked | keep, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
        return true;
      }
      continue;
    }
    if ((w & kWritersWaiting) == 0 &&
        !word.compare_exchange_weak(w, w | kWritersWaiting, std::memory_order_relaxed,
                                    std::memory_order_relaxed)) {
      continue;
    }
    keep = kWritersWaiting;
    // Read the counter, then re-check the word: a release after the re-check
    // bumps the counter, which makes the wait below return at once.
    const std::uint32_t ticket = seq.load(std::memory_order_acquire);
    w = word.load(std::memory_order_relaxed);
    if (is_free(w) || (w & kWritersWaiting) == 0) continue;
    if (platform::futex::wait(seq, ticket, deadline) == platform::futex::WaitResult::kTimedOut) {
      writer_gave_up();
      return false;
    }
    w = word.load(std::memory_order_relaxed);
  }
}

void RWLock::writer_gave_up() noexcept {
  std::atomic<std::uint32_t>& word = state_->word;
  std::atomic<std::uint32_t>& seq = state_->writer_seq;
  // 1. If another writer sleeps, it inherits the wait: wake it to re-check,
  //    with kWritersWaiting left set so that readers keep waiting for it.
  seq.fetch_add(1, std::memory_order_release);
  if (platform::futex::wake(seq, 1) > 0) return;
  // 2. None sleeps: this writer may have been the only one. Clear the bit,
  //    then bump the counter again, so that a writer between its re-check and
  //    its sleep does not sleep on (it sees the bit gone and re-announces
  //    itself, or the counter moved).
  std::uint32_t w = word.load(std::memory_order_relaxed);
  while ((w & kWritersWaiting) != 0) {
    if (word.compare_exchange_weak(w, w & ~kWritersWaiting, std::memory_order_relaxed,
                                   std::memory_order_relaxed)) {
      w &= ~kWritersWaiting;
      seq.fetch_add(1, std::memory_order_release);
      if (platform::futex::wake(seq, 1) > 0) return;  // it re-announces itself
      break;
    }
  }
  // 3. Let in the readers this writer held back, unless a writer holds the
  //    lock (its release wakes them) or announced itself meanwhile.
  while ((w & kReadersWaiting) != 0 && (w & kBlocksReaders) == 0) {
    if (word.compare_exchange_weak(w, w & ~kReadersWaiting, std::memory_order_relaxed,
                                   std::memory_order_relaxed)) {
      platform::futex::wake(word, platform::futex::kWakeAll);
      return;
    }
  }
}

void RWLock::release_write_slow(std::uint32_t w) {
  std::atomic<std::uint32_t>& word = state_->word;
  for (;;) {
    if ((w & kWriteLocked) == 0)
      throw ValueError("release_write: the lock is not held for writing");
    if (word.compare_exchange_weak(w, w & ~kWriteLocked, std::memory_order_release,
                                   std::memory_order_relaxed)) {
      break;
    }
  }
  w &= ~kWriteLocked;
  if ((w & kWaiters) != 0) wake_waiters(w);
}

// `w` is the word as the release left it: free, with some waiter bit set.
void RWLock::wake_waiters(std::uint32_t w) noexcept {
  std::atomic<std::uint32_t>& word = state_->word;
  std::atomic<std::uint32_t>& seq = state_->writer_seq;
  if ((w & kWritersWaiting) != 0) {
    // Writers first. Hand the lock to one with kWritersWaiting left set, so
    // that no reader enters before the woken writer takes it.
    seq.fetch_add(1, std::memory_order_release);
    if (platform::futex::wake(seq, 1) > 0) return;
    // No writer sleeps: the ones that waited gave up or died, or are between
    // their re-check and their sleep (they see the counter moved). Stop
    // holding readers back, but only while the lock is free: a writer that
    // took it meanwhile wakes the next one at its release.
    w = word.load(std::memory_order_relaxed);
    while ((w & kWritersWaiting) != 0) {
      if (!is_free(w)) return;
      if (word.compare_exchange_weak(w, w & ~kWaiters, std::memory_order_relaxed,
                                     std::memory_order_relaxed)) {
        if ((w & kReadersWaiting) != 0) platform::futex::wake(word, platform::futex::kWakeAll);
        return;
      }
    }
  }
  // No writer waits: wake every reader.
  while ((w & kReadersWaiting) != 0 && (w & kBlocksReaders) == 0) {
    if (word.compare_exchange_weak(w, w & ~kReadersWaiting, std::memory_order_relaxed,
                                   std::memory_order_relaxed)) {
      platform::futex::wake(word, platform::futex::kWakeAll);
      return;
    }
  }
}

}  // namespace mp
