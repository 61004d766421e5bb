#include "mp/semaphore.hpp"

#include <bit>
#include <cmath>
#include <new>

#include "mp/errors.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/shm.hpp"

namespace mp {
namespace {

constexpr std::uint64_t kValueMask = 0xffffffffu;
constexpr std::uint64_t kOneWaiter = std::uint64_t{1} << 32;

static_assert(std::endian::native == std::endian::little,
              "the futex word is the low half of the 64-bit state word");

std::uint32_t value_of(std::uint64_t d) { return static_cast<std::uint32_t>(d & kValueMask); }

// The 32-bit futex word inside the 64-bit state word: its low half, the value.
std::atomic<std::uint32_t>& value_word(std::atomic<std::uint64_t>& word) {
  return *reinterpret_cast<std::atomic<std::uint32_t>*>(&word);
}

}  // namespace

void Semaphore::init(SemaphoreState& state, std::int64_t value, std::int64_t bound) {
  if (value < 0) throw ValueError("semaphore initial value must be >= 0");
  if (value > kMaxValue) throw ValueError("semaphore initial value is too large");
  if (bound < value || bound > kMaxValue) throw ValueError("semaphore bound is out of range");
  state.bound = static_cast<std::uint32_t>(bound);
  state.word.store(static_cast<std::uint64_t>(value), std::memory_order_release);
}

Semaphore::Semaphore(std::int64_t value) : Semaphore(value, kMaxValue) {}

Semaphore::Semaphore(std::int64_t value, std::int64_t bound) {
  auto mapping = std::make_shared<platform::SharedMapping>(
      platform::SharedMapping::anonymous(sizeof(SemaphoreState)));
  auto* state = ::new (mapping->data()) SemaphoreState{};
  init(*state, value, bound);
  state_ = state;
  mapping_ = std::move(mapping);
}

Semaphore Semaphore::attach(SemaphoreState& state) noexcept { return Semaphore(nullptr, &state); }

bool Semaphore::acquire_blocking(std::optional<double> timeout) {
  if (!timeout.has_value()) return acquire_until(platform::Deadline::never());
  if (std::isnan(*timeout)) throw ValueError("timeout must not be NaN");
  // The deadline is read from the clock once, here, for the whole call.
  return acquire_until(platform::Deadline::after(*timeout));
}

bool Semaphore::acquire_until(platform::Deadline deadline) {
  if (try_lock()) return true;
  if (deadline.has_passed()) return false;
  return acquire_slow(deadline);
}

// The waiter registers in the high half of the word, so that a release that
// adds a unit after the registration sees it and wakes someone; both live in
// one word, so no store-load reordering can hide one from the other.
bool Semaphore::acquire_slow(platform::Deadline deadline) {
  std::atomic<std::uint64_t>& word = state_->word;
  const platform::Deadline* limit = deadline.is_never() ? nullptr : &deadline;
  std::uint64_t d = word.fetch_add(kOneWaiter, std::memory_order_acquire) + kOneWaiter;
  for (;;) {
    while (value_of(d) != 0) {
      // Take a unit and deregister in one step.
      if (word.compare_exchange_weak(d, d - 1 - kOneWaiter, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
        return true;
      }
    }
    if (platform::futex::wait(value_word(word), 0, limit) ==
        platform::futex::WaitResult::kTimedOut) {
      // The kernel last saw the value at 0: the semaphore was unavailable.
      word.fetch_sub(kOneWaiter, std::memory_order_relaxed);
      return false;
    }
    d = word.load(std::memory_order_relaxed);
  }
}

void Semaphore::wake_one() noexcept { platform::futex::wake(value_word(state_->word), 1); }

void Semaphore::release_slow() {
  std::atomic<std::uint64_t>& word = state_->word;
  const std::uint32_t bound = state_->bound;
  std::uint64_t d = word.load(std::memory_order_relaxed);
  do {
    if (value_of(d) >= bound) {
      throw ValueError(bound == kMaxValue ? "semaphore value would overflow"
                                          : "semaphore or lock released too many times");
    }
  } while (
      !word.compare_exchange_weak(d, d + 1, std::memory_order_release, std::memory_order_relaxed));
  if ((d >> 32) != 0) platform::futex::wake(value_word(word), 1);
}

std::int64_t Semaphore::get_value() const noexcept {
  return value_of(state_->word.load(std::memory_order_relaxed));
}

}  // namespace mp
