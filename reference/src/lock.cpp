#include "mp/lock.hpp"

#include <cmath>
#include <new>

#include "mp/errors.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/shm.hpp"

namespace mp {
namespace {

constexpr std::uint32_t kFree = 0;
constexpr std::uint32_t kHeld = 1;
constexpr std::uint32_t kHeldContended = 2;

// Reads of the word before going to sleep, about 1 us with PAUSE on the
// project's VM. A trade-off measured with bench/lock_bench.cpp: when the two
// sides run on different CPUs the spin often catches a release and saves a
// cross-CPU wake-up (ping-pong round trip ~25-50 us instead of ~50 us); when
// they share one CPU the holder cannot run meanwhile and the spin is wasted
// (~1 us per round trip). Keep it short.
constexpr int kSpinReads = 40;

}  // namespace

Lock::Lock() {
  auto mapping = std::make_shared<platform::SharedMapping>(
      platform::SharedMapping::anonymous(sizeof(LockState)));
  // The mapping is zero-filled and page aligned: construct the state at its
  // start (free, on its own cache line).
  state_ = ::new (mapping->data()) LockState{};
  mapping_ = std::move(mapping);
}

Lock Lock::attach(LockState& state) noexcept { return Lock(nullptr, &state); }

bool Lock::acquire_timed(double seconds) {
  if (std::isnan(seconds)) throw ValueError("timeout must not be NaN");
  if (seconds <= 0.0) return try_lock();  // Python: a negative timeout is 0
  if (try_lock()) return true;
  // The deadline is read from the clock once, here, for the whole call.
  const platform::Deadline deadline = platform::Deadline::after(seconds);
  return acquire_contended(deadline.is_never() ? nullptr : &deadline);
}

bool Lock::acquire_until(platform::Deadline deadline) {
  if (try_lock()) return true;
  if (deadline.has_passed()) return false;
  return acquire_contended(deadline.is_never() ? nullptr : &deadline);
}

// The contended path of the classic three-state futex lock (Drepper, "Futexes
// Are Tricky", mutex #3). A sleeper always leaves the word at 2 when it takes
// the lock, since it cannot know whether other sleepers remain; the cost is at
// most one needless wake() per release.
bool Lock::acquire_contended(const platform::Deadline* deadline) {
  std::atomic<std::uint32_t>& word = state_->word;
  std::uint32_t c = word.load(std::memory_order_relaxed);
  // Brief spin while the lock is held without sleepers: the holder may be
  // about to release it. Only reads, so the line is not stolen from the holder.
  for (int i = 0; i < kSpinReads && c == kHeld; ++i) {
    platform::futex::cpu_relax();
    c = word.load(std::memory_order_relaxed);
  }
  if (c == kFree && word.compare_exchange_strong(c, kHeld, std::memory_order_acquire,
                                                 std::memory_order_relaxed)) {
    return true;
  }
  // Announce a sleeper. If the exchange finds the lock free, we took it.
  if (c != kHeldContended) c = word.exchange(kHeldContended, std::memory_order_acquire);
  while (c != kFree) {
    if (platform::futex::wait(word, kHeldContended, deadline) ==
        platform::futex::WaitResult::kTimedOut) {
      // The deadline passed, and the kernel last saw the word at 2: the lock
      // was held at that point of this call.
      return false;
    }
    c = word.exchange(kHeldContended, std::memory_order_acquire);
  }
  return true;
}

std::atomic<std::uint32_t>* Lock::prepare_requeue() noexcept {
  std::atomic<std::uint32_t>& word = state_->word;
  std::uint32_t c = word.load(std::memory_order_relaxed);
  while (c == kHeld && !word.compare_exchange_weak(c, kHeldContended, std::memory_order_relaxed)) {
  }
  return c == kFree ? nullptr : &word;
}

void Lock::lock_after_requeue() {
  std::atomic<std::uint32_t>& word = state_->word;
  std::uint32_t c = word.exchange(kHeldContended, std::memory_order_acquire);
  while (c != kFree) {
    platform::futex::wait(word, kHeldContended, nullptr);
    c = word.exchange(kHeldContended, std::memory_order_acquire);
  }
}

void Lock::release_slow(std::uint32_t previous) {
  if (previous == kFree) {
    // The exchange stored 0 over 0: the lock is left free, as it was.
    throw ValueError("semaphore or lock released too many times");
  }
  // previous == kHeldContended: somebody may be asleep; wake one.
  platform::futex::wake(state_->word, 1);
}

}  // namespace mp
