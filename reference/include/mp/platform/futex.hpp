// -----------------------------------------------------------------------------
// File: platform/futex.hpp
// -----------------------------------------------------------------------------
//
// INTERNAL: part of libmp's platform layer. Users of libmp do not include this
// header; its contents may change without notice.
//
// The parking primitive every blocking algorithm in libmp is written against:
// "sleep while this 32-bit word still holds this value, until this deadline"
// and "wake up to n sleepers on this word". On Linux it is a futex:
//
//   * shared (no FUTEX_PRIVATE_FLAG): the kernel keys the wait queue by the
//     page backing the word, so processes that map the same shared memory at
//     different addresses meet on the same queue;
//   * FUTEX_WAIT_BITSET with an *absolute* CLOCK_MONOTONIC deadline, so
//     retries after EINTR or spurious wake-ups never extend a timed wait;
//   * no per-waiter bookkeeping in user memory: a waiter that is killed simply
//     disappears from the kernel's queue and can never swallow a wake-up.

#ifndef MP_PLATFORM_FUTEX_HPP_
#define MP_PLATFORM_FUTEX_HPP_

#include <atomic>
#include <climits>
#include <cstdint>

#include "mp/platform/clock.hpp"

namespace mp::platform::futex {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "a futex word must be a plain lock-free 32-bit word");

// Why futex::wait() returned. Callers must re-check their word in every case:
// kWoken may be spurious.
enum class WaitResult {
  kWoken,         // woken by wake() (or spuriously)
  kValueChanged,  // the word did not hold `expected` when the kernel looked
  kTimedOut,      // the deadline passed while the word still held `expected`
};

// futex::wait()
//
// Atomically checks that `word` holds `expected` and, if so, sleeps until
// woken by wake() on the same word or until `*deadline` (absolute,
// CLOCK_MONOTONIC) passes. `deadline == nullptr` or `deadline->is_never()`
// waits without limit. An already passed deadline still checks the value
// (kValueChanged) before reporting kTimedOut. Signals that interrupt the sleep
// (EINTR) are absorbed: the wait resumes with the same absolute deadline.
//
// Aborts the process on errors that can only come from a bug (EFAULT: the word
// is not mapped; EINVAL; ENOSYS).
WaitResult wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                const Deadline* deadline) noexcept;

// Passed to wake() to wake every sleeper.
inline constexpr int kWakeAll = INT_MAX;

// futex::wake()
//
// Wakes up to `n` threads (in any process) sleeping in wait() on `word`.
// Returns how many were woken. Aborts on errors that can only come from a bug.
int wake(std::atomic<std::uint32_t>& word, int n) noexcept;

// futex::cpu_relax()
//
// A hint to the CPU inside a bounded spin loop (PAUSE on x86, YIELD on Arm).
// Wakes up to `wake_n` threads waiting on `from` and moves up to `requeue_n`
// further waiters from `from` to `to` (they then sleep on `to` and are woken
// by a wake() of `to`), provided `from` still holds `expected`
// (FUTEX_CMP_REQUEUE). Returns the number woken plus the number moved, or -1
// when `from` no longer held `expected` (nothing was done). Both words may be
// in memory shared between processes.
int requeue(std::atomic<std::uint32_t>& from, std::uint32_t expected, int wake_n, int requeue_n,
            std::atomic<std::uint32_t>& to) noexcept;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace mp::platform::futex

#endif  // MP_PLATFORM_FUTEX_HPP_
