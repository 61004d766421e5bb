#include "mp/condition.hpp"

#include <algorithm>
#include <cerrno>
#include <new>
#include <system_error>

#include "mp/errors.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/process.hpp"
#include "mp/platform/shm.hpp"

namespace mp {
namespace {

using Slot = ConditionState::Slot;

constexpr std::uint32_t kFree = 0;
constexpr std::uint32_t kClaimed = 1;   // being filled in by a waiter
constexpr std::uint32_t kWaiting = 2;   // published; the waiter is not asleep yet
constexpr std::uint32_t kNotified = 3;  // chosen by notify() (and woken); the waiter frees it
constexpr std::uint32_t kMoved = 4;     // chosen by notify() and moved onto the lock's word
constexpr std::uint32_t kSleeping = 5;  // the waiter sleeps (or is about to) on the slot's word

// A waiter goes kWaiting -> kSleeping itself, just before its futex wait, so
// that a notify() that finds it still kWaiting knows that it has not gone to
// sleep: marking it kNotified is enough (it sees the mark before sleeping), and
// no system call is needed. Only a kSleeping waiter must be woken or moved.

using platform::process_alive;

}  // namespace

Condition::Condition() : Condition(RLock()) {}

Condition::Condition(Lock lock) : lock_(std::move(lock)) {
  auto mapping = std::make_shared<platform::SharedMapping>(
      platform::SharedMapping::anonymous(sizeof(ConditionState)));
  state_ = ::new (mapping->data()) ConditionState{};
  mapping_ = std::move(mapping);
}

Condition::Condition(RLock lock) : lock_(std::move(lock)) {
  auto mapping = std::make_shared<platform::SharedMapping>(
      platform::SharedMapping::anonymous(sizeof(ConditionState)));
  state_ = ::new (mapping->data()) ConditionState{};
  mapping_ = std::move(mapping);
}

platform::Deadline Condition::deadline_after(std::optional<double> timeout) {
  if (!timeout) return platform::Deadline::never();
  return platform::Deadline::after(*timeout);  // NaN -> ValueError; <= 0 -> expired
}

void Condition::check_held(const char* what) {
  // [condition.wait.unheld] [condition.notify.unheld]
  if (auto* r = std::get_if<RLock>(&lock_)) {
    if (!r->is_owned())
      throw AssertionError(std::string("must acquire() condition before using ") + what);
    return;
  }
  // An mp::Lock has no owner: the best check is "held by someone". If a try
  // succeeds it was free; give it back and complain.
  Lock& l = std::get<Lock>(lock_);
  if (l.try_lock()) {
    l.release();
    throw AssertionError(std::string("must acquire() condition before using ") + what);
  }
}

bool Condition::wait(std::optional<double> timeout) {
  check_held("wait");
  return wait_held(deadline_after(timeout));
}

bool Condition::wait_until(platform::Deadline deadline) {
  check_held("wait");
  return wait_held(deadline);
}

bool Condition::wait_held(platform::Deadline deadline) {
  // Claim a slot while the lock is still held, so that a notify() issued
  // after we release it sees us ([condition.notify.no_lost_wakeup]).
  Slot* slot = nullptr;
  for (int attempt = 0; attempt < 2 && !slot; ++attempt) {
    for (int i = 0; i < ConditionState::kSlots; ++i) {
      Slot& s = state_->slots[i];
      std::uint32_t expected = kFree;
      // Read before the CAS: a slot in use is skipped without taking its line.
      if (s.state.load(std::memory_order_relaxed) != kFree) continue;
      if (s.state.compare_exchange_strong(expected, kClaimed, std::memory_order_acquire,
                                          std::memory_order_relaxed)) {
        slot = &s;
        const auto used = static_cast<std::uint32_t>(i + 1);
        std::uint32_t hw = state_->high_water.load(std::memory_order_relaxed);
        while (hw < used &&
               !state_->high_water.compare_exchange_weak(hw, used, std::memory_order_relaxed)) {
        }
        break;
      }
    }
    if (!slot) {
      // Full: reclaim slots of processes that died, then look again.
      for (Slot& s : state_->slots) {
        std::uint32_t st = s.state.load(std::memory_order_acquire);
        if ((st == kWaiting || st == kSleeping || st == kNotified || st == kMoved) &&
            !process_alive(s.pid.load(std::memory_order_relaxed))) {
          s.state.compare_exchange_strong(st, kFree, std::memory_order_acq_rel);
        }
      }
    }
  }
  if (!slot) throw std::system_error(EAGAIN, std::generic_category(), "too many Condition waiters");
  slot->pid.store(static_cast<std::int32_t>(platform::self_pid()), std::memory_order_relaxed);
  slot->ticket.store(state_->next_ticket.fetch_add(1, std::memory_order_relaxed),
                     std::memory_order_relaxed);
  slot->state.store(kWaiting, std::memory_order_release);

  // [condition.wait.releases] Release the lock completely.
  std::uint32_t depth = 0;
  if (auto* r = std::get_if<RLock>(&lock_)) {
    depth = r->release_all();
  } else {
    std::get<Lock>(lock_).release();
  }

  // How the wait ended: kNotified or kMoved when chosen by a notify(), kFree
  // when withdrawn at the deadline.
  std::uint32_t outcome = kFree;
  const platform::Deadline* limit = deadline.is_never() ? nullptr : &deadline;
  for (;;) {
    std::uint32_t st = slot->state.load(std::memory_order_acquire);
    if (st == kNotified || st == kMoved) {
      outcome = st;
      break;
    }
    // Announce the sleep. Losing this race means a notify chose us meanwhile.
    if (st == kWaiting &&
        !slot->state.compare_exchange_strong(st, kSleeping, std::memory_order_acq_rel)) {
      continue;
    }
    // Once moved onto the lock's word this sleep ends at a release of the
    // lock (or at the deadline); the loop then sees kMoved.
    if (deadline.has_passed() || platform::futex::wait(slot->state, kSleeping, limit) ==
                                     platform::futex::WaitResult::kTimedOut) {
      // Withdraw. Losing this race means a notify chose us first: we count
      // as woken, so that no notification is lost.
      std::uint32_t expected = slot->state.load(std::memory_order_acquire);
      while ((expected == kWaiting || expected == kSleeping) &&
             !slot->state.compare_exchange_weak(expected, kFree, std::memory_order_acq_rel)) {
      }
      if (expected == kNotified || expected == kMoved) outcome = expected;
      break;
    }
  }
  if (outcome != kFree) slot->state.store(kFree, std::memory_order_release);

  // [condition.wait.reacquires] Reacquire without a time limit.
  if (auto* r = std::get_if<RLock>(&lock_)) {
    r->acquire_restore(depth);
  } else if (outcome == kMoved) {
    std::get<Lock>(lock_).lock_after_requeue();
  } else {
    std::get<Lock>(lock_).lock();
  }
  return outcome != kFree;
}

void Condition::notify(int n) {
  check_held("notify");
  if (n <= 0) return;
  // [condition.notify.at_most_n] Choose among the slots waiting now, oldest
  // ticket first.
  // Left uninitialised (trivial type): only the first `count` entries are used.
  struct Candidate {
    std::uint64_t ticket;
    Slot* slot;
  };
  Candidate waiting[ConditionState::kSlots];
  std::size_t count = 0;
  const auto used = std::min<std::uint32_t>(state_->high_water.load(std::memory_order_acquire),
                                            ConditionState::kSlots);
  for (std::uint32_t i = 0; i < used; ++i) {
    Slot& s = state_->slots[i];
    const std::uint32_t st = s.state.load(std::memory_order_acquire);
    if (st == kWaiting || st == kSleeping)
      waiting[count++] = Candidate{s.ticket.load(std::memory_order_relaxed), &s};
  }
  if (count == 0) return;
  if (count > 1) {
    std::sort(waiting, waiting + count,
              [](const Candidate& a, const Candidate& b) { return a.ticket < b.ticket; });
  }

  // A chosen waiter that has not gone to sleep yet (kWaiting) is only marked
  // kNotified: it sees the mark before sleeping, and takes the lock normally.
  // One that sleeps (kSleeping) must be woken. Over an mp::Lock (held:
  // checked above), it is moved onto the lock's word instead; it wakes when
  // the lock is released. An RLock is a pthread mutex, onto which a futex
  // cannot be moved: its waiters are woken directly.
  Lock* morph = std::get_if<Lock>(&lock_);
  std::atomic<std::uint32_t>* lock_word = nullptr;  // prepared on first use

  int woken = 0;
  for (std::size_t k = 0; k < count && woken < n; ++k) {
    Slot* s = waiting[k].slot;
    std::uint32_t expected = s->state.load(std::memory_order_acquire);
    int reached = 0;
    std::uint32_t mark = kNotified;
    if (expected == kWaiting) {
      if (!s->state.compare_exchange_strong(expected, kNotified, std::memory_order_acq_rel) &&
          expected != kSleeping) {
        continue;  // withdrew at its deadline meanwhile
      }
    }
    if (expected == kSleeping) {
      if (morph && !lock_word) {
        lock_word = morph->prepare_requeue();
        if (!lock_word) morph = nullptr;  // the lock is free (misuse): wake directly
      }
      mark = lock_word ? kMoved : kNotified;
      if (!s->state.compare_exchange_strong(expected, mark, std::memory_order_acq_rel)) {
        continue;  // withdrew at its deadline meanwhile
      }
      reached = lock_word ? platform::futex::requeue(s->state, kMoved, 0, 1, *lock_word)
                          : platform::futex::wake(s->state, 1);
    } else if (expected != kWaiting) {
      continue;  // not waiting any more (withdrew)
    }
    // A waiter the kernel moved or woke is alive, and so is one that has
    // already seen the mark (reached < 0: the word changed). One the kernel
    // did not find, or one marked before it slept (reached == 0 too), is
    // either about to sleep or check its mark, or dead.
    // Whether it is dead matters only if counting it would end the loop
    // while other candidates remain: only then ask the kernel (a system
    // call). Otherwise a dead waiter's marked slot is left for the reclaim
    // pass of a full table, which frees marked slots of dead processes too.
    // (The common case: the only waiter, preempted on one CPU between
    // releasing the lock and sleeping. No kill(pid, 0) for it.)
    const bool more_remain = k + 1 < count && woken + 1 >= n;
    if (reached == 0 && more_remain && !process_alive(s->pid.load(std::memory_order_relaxed))) {
      // [condition.kill.waiter] A dead waiter takes no notification.
      std::uint32_t marked = mark;
      s->state.compare_exchange_strong(marked, kFree, std::memory_order_acq_rel);
      continue;
    }
    ++woken;
  }
}

}  // namespace mp
