#include "mp/barrier.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <ctime>
#include <exception>
#include <new>
#include <system_error>

#include "mp/platform/clock.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/process.hpp"
#include "mp/platform/shm.hpp"

namespace mp {

using platform::process_exited;
using platform::self_pid;

const char* BrokenBarrierError::kind() const noexcept { return "BrokenBarrierError"; }

namespace {

[[noreturn]] void throw_errno(int rc, const char* what) {
  throw std::system_error(rc, std::generic_category(), what);
}

// Outcome of a waiter's slot.
constexpr std::uint32_t kPending = 0;
constexpr std::uint32_t kReleased = 1;
constexpr std::uint32_t kBroken = 2;

std::int64_t interval_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Barrier::kDeathCheckInterval).count();
}

}  // namespace

// One waiting party: its process, the generation it waits in, and how its
// wait ended (written by whoever ends the generation). Guarded by `guard`.
// A waiter reads its own outcome, and frees its slot, without the guard.
struct BarrierSlot {
  std::atomic<pid_t> pid{0};  // 0: free
  std::uint32_t generation = 0;
  std::atomic<std::uint32_t> outcome{kPending};
};

// The shared representation. Every field but the atomics is read and written
// only under `guard`; the atomics are written under it too, except that a
// waiter frees its own slot (pid = 0) without it.
struct BarrierState {
  explicit BarrierState(std::uint32_t parties_, std::uint32_t nslots_,
                        std::optional<double> timeout) {
    pthread_mutexattr_t attr;
    int rc = ::pthread_mutexattr_init(&attr);
    if (rc != 0) throw_errno(rc, "pthread_mutexattr_init");
    ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    ::pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    rc = ::pthread_mutex_init(&guard, &attr);
    ::pthread_mutexattr_destroy(&attr);
    if (rc != 0) throw_errno(rc, "pthread_mutex_init");
    parties = parties_;
    nslots = nslots_;
    has_default_timeout = timeout.has_value();
    default_timeout = timeout.value_or(0.0);
  }

  BarrierSlot* slots() { return reinterpret_cast<BarrierSlot*>(this + 1); }

  pthread_mutex_t guard;
  std::uint32_t parties = 0;
  std::uint32_t nslots = 0;
  std::uint32_t count = 0;  // parties arrived in the current generation
  std::atomic<bool> broken{false};
  bool has_default_timeout = false;
  double default_timeout = 0.0;
  // Bumped whenever a generation ends (completed, broken, reset); the waiters
  // of that generation sleep on it.
  alignas(64) std::atomic<std::uint32_t> generation{0};
  // Bumped whenever a slot is freed; arrivals that found the table full sleep
  // on it (rare: needs released waiters that have not run yet).
  alignas(64) std::atomic<std::uint32_t> slot_freed{0};
  // Arrivals currently waiting for a free slot (a leaving waiter wakes them).
  std::atomic<std::uint32_t> slot_waiters{0};
};

// Holds the guard; on a dead previous holder breaks the barrier and repairs
// the mutex, so that the caller always sees a consistent (maybe broken) state.
class Barrier::Guard {
 public:
  explicit Guard(BarrierState* s) : s_(s) { lock(); }
  ~Guard() {
    if (held_) ::pthread_mutex_unlock(&s_->guard);
  }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  void lock() {
    const int rc = ::pthread_mutex_lock(&s_->guard);
    if (rc == EDEADLK) throw AssertionError("a Barrier was used from its own action");
    if (rc != 0 && rc != EOWNERDEAD) throw_errno(rc, "pthread_mutex_lock");
    held_ = true;
    if (rc == EOWNERDEAD) {
      // [barrier.kill.action] the holder died inside a critical section or its
      // action: the cycle cannot be trusted, break it for everyone.
      break_locked(s_);
      ::pthread_mutex_consistent(&s_->guard);
    }
  }
  void unlock() {
    held_ = false;
    ::pthread_mutex_unlock(&s_->guard);
  }

  // Ends the current generation with `outcome` for its waiters.
  static void end_generation(BarrierState* s, std::uint32_t outcome) {
    const std::uint32_t g = s->generation.load(std::memory_order_relaxed);
    BarrierSlot* slots = s->slots();
    for (std::uint32_t i = 0; i < s->nslots; ++i) {
      if (slots[i].pid.load() != 0 && slots[i].generation == g &&
          slots[i].outcome.load(std::memory_order_relaxed) == kPending)
        slots[i].outcome.store(outcome, std::memory_order_release);
    }
    s->count = 0;
    s->generation.store(g + 1, std::memory_order_release);
    platform::futex::wake(s->generation, platform::futex::kWakeAll);
  }

  static void break_locked(BarrierState* s) {
    s->broken = true;
    end_generation(s, kBroken);
  }

 private:
  BarrierState* s_;
  bool held_ = false;
};

Barrier::Barrier(std::size_t parties, Action action, std::optional<double> timeout) {
  if (parties == 0) throw ValueError("parties must be > 0");
  if (parties > kMaxParties) throw ValueError("parties must be at most 65536");
  if (timeout && std::isnan(*timeout)) throw ValueError("timeout must not be NaN");
  // Room for every waiter of one cycle plus some released waiters of the
  // previous cycle that have not yet run.
  const auto nslots = static_cast<std::uint32_t>(parties + 8);
  auto mapping = std::make_shared<platform::SharedMapping>(
      platform::SharedMapping::anonymous(sizeof(BarrierState) + nslots * sizeof(BarrierSlot)));
  state_ =
      ::new (mapping->data()) BarrierState(static_cast<std::uint32_t>(parties), nslots, timeout);
  for (std::uint32_t i = 0; i < nslots; ++i) ::new (&state_->slots()[i]) BarrierSlot{};
  mapping_ = std::move(mapping);
  parties_ = parties;
  if (action) action_ = std::make_shared<const Action>(std::move(action));
}

std::size_t Barrier::wait(std::optional<double> timeout) {
  BarrierState* s = state_;
  if (timeout && std::isnan(*timeout)) throw ValueError("timeout must not be NaN");
  if (!timeout && s->has_default_timeout) timeout = s->default_timeout;
  const platform::Deadline deadline =
      timeout ? platform::Deadline::after(*timeout) : platform::Deadline::never();

  Guard guard(s);
  const pid_t me = self_pid();
  BarrierSlot* slot = nullptr;
  std::int64_t next_check = platform::monotonic_now_ns() + interval_ns();
  for (;;) {
    if (s->broken) throw BrokenBarrierError("the barrier is broken");
    if (s->count + 1 == s->parties) {
      // [barrier.action.once] The last arrival: run the action, then release.
      const std::size_t index = s->count;
      if (action_) {
        try {
          (*action_)();
        } catch (...) {
          // [barrier.action.raises] The others get BrokenBarrierError; we get
          // the action's own exception.
          Guard::break_locked(s);
          throw;
        }
      }
      Guard::end_generation(s, kReleased);
      return index;
    }
    // Not the last: take a slot, then sleep until the generation ends.
    BarrierSlot* slots = s->slots();
    for (std::uint32_t i = 0; i < s->nslots && !slot; ++i)
      if (slots[i].pid == 0) slot = &slots[i];
    if (slot) break;
    // Full: free the slots of dead processes, else wait for one to be freed.
    bool freed = false;
    for (std::uint32_t i = 0; i < s->nslots; ++i) {
      if (slots[i].outcome.load(std::memory_order_relaxed) != kPending &&
          process_exited(slots[i].pid)) {
        slots[i].pid = 0;
        freed = true;
      }
    }
    if (freed) continue;
    // Announce ourselves, then look once more (a leaver that missed the
    // announcement freed its slot before it, and the scan sees that).
    s->slot_waiters.fetch_add(1);
    const std::uint32_t seen = s->slot_freed.load();
    for (std::uint32_t i = 0; i < s->nslots && !slot; ++i)
      if (slots[i].pid.load() == 0) slot = &slots[i];
    if (slot) {
      s->slot_waiters.fetch_sub(1);
      break;
    }
    guard.unlock();
    const platform::Deadline slice = platform::Deadline::at(
        std::min(deadline.monotonic_ns(), platform::monotonic_now_ns() + interval_ns()));
    platform::futex::wait(s->slot_freed, seen, &slice);
    s->slot_waiters.fetch_sub(1);
    guard.lock();
    if (deadline.has_passed()) {
      Guard::break_locked(s);
      throw BrokenBarrierError("the barrier timed out");
    }
  }
  const std::uint32_t generation = s->generation.load(std::memory_order_relaxed);
  const std::size_t index = s->count++;
  slot->generation = generation;
  slot->outcome.store(kPending, std::memory_order_relaxed);
  slot->pid.store(me);

  // Frees our slot; needs no guard.
  auto leave = [&] {
    slot->pid.store(0);
    if (s->slot_waiters.load() != 0) {
      s->slot_freed.fetch_add(1);
      platform::futex::wake(s->slot_freed, platform::futex::kWakeAll);
    }
  };
  auto broken_out = [&]() -> BrokenBarrierError {
    return BrokenBarrierError(s->broken.load() ? "the barrier is broken"
                                               : "the barrier was reset while waiting");
  };

  for (;;) {
    guard.unlock();
    const std::int64_t now = platform::monotonic_now_ns();
    const platform::Deadline slice =
        platform::Deadline::at(std::min(deadline.monotonic_ns(), std::max(next_check, now)));
    platform::futex::wait(s->generation, generation, &slice);
    // The common case, without the guard: the generation ended.
    std::uint32_t outcome = slot->outcome.load(std::memory_order_acquire);
    if (outcome == kPending) {
      guard.lock();
      outcome = slot->outcome.load(std::memory_order_acquire);
    }
    if (outcome == kReleased) {
      leave();
      return index;
    }
    if (outcome == kBroken) {
      leave();
      throw broken_out();
    }
    if (deadline.has_passed()) {
      // [barrier.wait.timeout.expires] A timeout breaks the barrier for everyone.
      Guard::break_locked(s);
      leave();
      throw BrokenBarrierError("the barrier timed out");
    }
    if (platform::monotonic_now_ns() >= next_check) {
      // [barrier.kill.waiter] Did a waiter of this generation die?
      bool dead_waiter = false;
      BarrierSlot* slots = s->slots();
      for (std::uint32_t i = 0; i < s->nslots; ++i) {
        if (slots[i].pid == 0 || slots[i].pid == me) continue;
        if (!process_exited(slots[i].pid)) continue;
        if (slots[i].outcome.load(std::memory_order_relaxed) == kPending) dead_waiter = true;
        slots[i].pid = 0;
      }
      if (dead_waiter) {
        Guard::break_locked(s);
        leave();
        throw BrokenBarrierError("a party died while waiting at the barrier");
      }
      next_check = platform::monotonic_now_ns() + interval_ns();
    }
  }
}

void Barrier::reset() {
  Guard guard(state_);
  // [barrier.reset.waiters] Waiters of the current generation are broken out.
  Guard::end_generation(state_, kBroken);
  state_->broken = false;
}

void Barrier::abort() {
  Guard guard(state_);
  Guard::break_locked(state_);
}

std::size_t Barrier::n_waiting() const {
  Guard guard(state_);
  return state_->broken ? 0 : state_->count;
}

bool Barrier::broken() const {
  Guard guard(state_);
  return state_->broken;
}

}  // namespace mp
