// -----------------------------------------------------------------------------
// File: semaphore.hpp
// -----------------------------------------------------------------------------
//
// This header defines counting semaphores shared between threads and
// processes, with the semantics of Python's `multiprocessing.Semaphore` and
// `multiprocessing.BoundedSemaphore` (normative text: mpspec
// `spec/sync/semaphore.md` and `spec/sync/bounded_semaphore.md`):
//
//   mp::Semaphore         a counter that acquire() decrements (waiting while it
//                         is 0) and release() increments, without limit.
//   mp::BoundedSemaphore  the same, except that release() refuses to raise the
//                         counter above its initial value.
//   mp::SemaphoreState    the in-memory representation of either.
//
// A semaphore has no owner: any thread of any process may release it.
//
// Example:
//
//   mp::BoundedSemaphore slots(4);        // at most four at a time
//   if (slots.acquire(/*block=*/true, /*timeout=*/2.0)) {
//     ... use one of the four slots ...
//     slots.release();
//   }
//   slots.release();                      // throws mp::ValueError: above 4

#ifndef MP_SEMAPHORE_HPP_
#define MP_SEMAPHORE_HPP_

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

// mp::SemaphoreState
//
// One 64-bit atomic word, alone on its cache line, plus the bound:
//
//   bits  0..31   the value (the futex word waiters sleep on)
//   bits 32..63   how many threads are in (or entering) the slow path of
//                 acquire(); release() enters the kernel only when it is > 0
//
// `bound` is the largest value release() may produce: the initial value for
// a BoundedSemaphore, kMaxValue for a Semaphore. A waiter killed while asleep
// leaves the waiter count one too high forever; that costs releases a
// needless wake-up system call but never correctness.
struct SemaphoreState {
  alignas(64) std::atomic<std::uint64_t> word{0};
  std::uint32_t bound = 0;
};

// mp::Semaphore
//
// A handle to a process-shared counting semaphore; copies are handles to the
// same semaphore. The constructor places it in its own anonymous shared
// mapping, shared with every child forked afterwards.
//
// Blocking and timeouts: as mp::Lock. acquire(block, timeout) takes one unit
// if the value is > 0; otherwise it tries once (block=false or timeout <= 0),
// waits (timeout nullopt or >= 4e9 s) or waits up to `timeout` seconds
// measured on CLOCK_MONOTONIC from one deadline fixed at the start of the call.
// A NaN timeout throws mp::ValueError.
//
// Errors. The constructor throws mp::ValueError for a negative value or one
// above kMaxValue. release() throws mp::ValueError when the value would exceed
// the bound (kMaxValue for a Semaphore, the initial value for a
// BoundedSemaphore) and then changes nothing; the check and the increment are
// one atomic step.
//
// Memory ordering: everything before a release() happens-before everything
// after the acquire() that takes the unit it added.
//
// Fairness: none; a release with waiters wakes one of them.
class Semaphore {
 public:
  // The largest value a semaphore can hold (SEM_VALUE_MAX on Linux).
  static constexpr std::int64_t kMaxValue = 0x7fffffff;

  // Semaphore::Semaphore()
  //
  // A new semaphore holding `value` (0 <= value <= kMaxValue).
  explicit Semaphore(std::int64_t value = 1);

  // Semaphore::attach()
  //
  // A handle to the semaphore whose state the caller placed in memory it
  // manages (see SemaphoreState; initialise it with init()).
  static Semaphore attach(SemaphoreState& state) noexcept;

  // Semaphore::init()
  //
  // Initialises `state` to hold `value`, with the given bound (kMaxValue for
  // an unbounded semaphore). Throws mp::ValueError like the constructor.
  static void init(SemaphoreState& state, std::int64_t value, std::int64_t bound);

  Semaphore(const Semaphore&) = default;
  Semaphore& operator=(const Semaphore&) = default;
  ~Semaphore() = default;

  // Semaphore::acquire()
  //
  // Python's `acquire(block=True, timeout=None)`: true if a unit was taken.
  bool acquire(bool block = true, std::optional<double> timeout = std::nullopt);

  // Semaphore::release()
  //
  // Adds one unit and wakes one waiter, if any. Never blocks. Throws
  // mp::ValueError above the bound.
  void release();

  // Semaphore::get_value()
  //
  // The current value (a snapshot; it may change at once).
  std::int64_t get_value() const noexcept;

  // TimedLockable members, for std::lock_guard and friends.
  void lock() { acquire(true, std::nullopt); }
  void unlock() { release(); }
  [[nodiscard]] bool try_lock() noexcept;

  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& rel_time) {
    return acquire(true, std::chrono::duration<double>(rel_time).count());
  }

  template <class Duration>
  [[nodiscard]] bool try_lock_until(
      const std::chrono::time_point<std::chrono::steady_clock, Duration>& abs_time) {
    return acquire_until(platform::Deadline::at_steady(abs_time));
  }

  friend bool operator==(const Semaphore& a, const Semaphore& b) noexcept {
    return a.state_ == b.state_;
  }

 protected:
  Semaphore(std::int64_t value, std::int64_t bound);

 private:
  Semaphore(std::shared_ptr<platform::SharedMapping> mapping, SemaphoreState* state) noexcept
      : mapping_(std::move(mapping)), state_(state) {}

  bool acquire_until(platform::Deadline deadline);
  // acquire() once a first attempt failed.
  bool acquire_blocking(std::optional<double> timeout);
  bool acquire_slow(platform::Deadline deadline);
  void release_slow();
  void wake_one() noexcept;

  std::shared_ptr<platform::SharedMapping> mapping_;
  SemaphoreState* state_;
};

// mp::BoundedSemaphore
//
// A Semaphore whose release() throws mp::ValueError instead of raising the
// value above the initial one.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::int64_t value = 1) : Semaphore(value, value) {}
};

inline bool Semaphore::try_lock() noexcept {
  std::uint64_t d = state_->word.load(std::memory_order_relaxed);
  while ((d & 0xffffffffu) != 0) {
    if (state_->word.compare_exchange_weak(d, d - 1, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

// Fast paths, inline: one compare-and-swap, no call, no system call.

inline bool Semaphore::acquire(bool block, std::optional<double> timeout) {
  // A NaN timeout is refused even when a unit is available (as mp::Lock does).
  if (block && timeout.has_value() && *timeout != *timeout) return acquire_blocking(timeout);
  if (try_lock()) return true;
  if (!block) return false;
  return acquire_blocking(timeout);
}

inline void Semaphore::release() {
  std::uint64_t d = state_->word.load(std::memory_order_relaxed);
  if ((d & 0xffffffffu) < state_->bound &&
      state_->word.compare_exchange_weak(d, d + 1, std::memory_order_release,
                                         std::memory_order_relaxed)) {
    if ((d >> 32) != 0) wake_one();  // some thread may be asleep in acquire()
    return;
  }
  release_slow();
}

}  // namespace mp

#endif  // MP_SEMAPHORE_HPP_
