#include "mp/event.hpp"

#include <cmath>
#include <new>

#include "mp/errors.hpp"
#include "mp/platform/clock.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/shm.hpp"

namespace mp {
namespace {

constexpr std::uint32_t kSet = kEventSet;
constexpr std::uint32_t kWaiters = 2;

}  // namespace

Event::Event() {
  auto mapping = std::make_shared<platform::SharedMapping>(
      platform::SharedMapping::anonymous(sizeof(EventState)));
  state_ = ::new (mapping->data()) EventState{};
  mapping_ = std::move(mapping);
}

Event Event::attach(EventState& state) noexcept { return Event(nullptr, &state); }

void Event::set() noexcept {
  std::atomic<std::uint32_t>& word = state_->word;
  // Already set and nobody announced a sleep: nothing to do, and the line is
  // not written (set() in a loop stays cheap).
  if (word.load(std::memory_order_relaxed) == kSet) return;
  // One atomic step raises the flag and takes the WAITERS announcement; every
  // sleeper announced itself before this exchange, so wake-all reaches it. A
  // later sleeper sees SET in its compare-and-swap and does not sleep.
  const std::uint32_t previous = word.exchange(kSet, std::memory_order_acq_rel);
  if (previous & kWaiters) platform::futex::wake(word, platform::futex::kWakeAll);
}

void Event::clear() noexcept { state_->word.fetch_and(~kSet, std::memory_order_relaxed); }

bool Event::wait_slow(std::optional<double> timeout) {
  platform::Deadline deadline = platform::Deadline::never();
  if (timeout) {
    if (std::isnan(*timeout)) throw ValueError("timeout must not be NaN");
    if (*timeout <= 0.0) return is_set();  // one look, no wait
    deadline = platform::Deadline::after(*timeout);
  }
  std::atomic<std::uint32_t>& word = state_->word;
  const platform::Deadline* limit = deadline.is_never() ? nullptr : &deadline;
  for (;;) {
    std::uint32_t v = word.load(std::memory_order_acquire);
    if (v & kSet) return true;
    if (!(v & kWaiters)) {
      // Announce the sleep; fails (and we look again) if set() got there first.
      if (!word.compare_exchange_weak(v, v | kWaiters, std::memory_order_acquire,
                                      std::memory_order_acquire)) {
        continue;
      }
      v |= kWaiters;
    }
    if (platform::futex::wait(word, v, limit) == platform::futex::WaitResult::kTimedOut) {
      return is_set();  // [event.wait.result] the flag when the wait ends
    }
  }
}

}  // namespace mp
