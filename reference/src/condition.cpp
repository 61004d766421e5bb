#include "mp/condition.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <new>
#include <system_error>
#include <vector>

#include "mp/errors.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/shm.hpp"

namespace mp {
namespace {

using Slot = ConditionState::Slot;

constexpr std::uint32_t kFree = 0;
constexpr std::uint32_t kClaimed = 1;   // being filled in by a waiter
constexpr std::uint32_t kWaiting = 2;   // a waiter sleeps on it
constexpr std::uint32_t kNotified = 3;  // chosen by notify(); the waiter will free it

// Whether process `pid` may still be running. A process that has exited and
// been reaped is gone; a zombie not yet reaped still counts as alive (the
// only cost is one wasted notification until its parent reaps it).
// TODO(platform): move next to the futex wrapper once the platform layer has
// a process module.
bool process_alive(std::int32_t pid) {
  if (pid <= 0) return false;
  if (pid == static_cast<std::int32_t>(::getpid())) return true;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

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
  return wait_until(deadline_after(timeout));
}

bool Condition::wait_until(platform::Deadline deadline) {
  check_held("wait");
  // Claim a slot while the lock is still held, so that a notify() issued
  // after we release it sees us ([condition.notify.no_lost_wakeup]).
  Slot* slot = nullptr;
  for (int attempt = 0; attempt < 2 && !slot; ++attempt) {
    for (Slot& s : state_->slots) {
      std::uint32_t expected = kFree;
      if (s.state.compare_exchange_strong(expected, kClaimed, std::memory_order_acquire,
                                          std::memory_order_relaxed)) {
        slot = &s;
        break;
      }
    }
    if (!slot) {
      // Full: reclaim slots of processes that died, then look again.
      for (Slot& s : state_->slots) {
        std::uint32_t st = s.state.load(std::memory_order_acquire);
        if ((st == kWaiting || st == kNotified) &&
            !process_alive(s.pid.load(std::memory_order_relaxed))) {
          s.state.compare_exchange_strong(st, kFree, std::memory_order_acq_rel);
        }
      }
    }
  }
  if (!slot) throw std::system_error(EAGAIN, std::generic_category(), "too many Condition waiters");
  slot->pid.store(static_cast<std::int32_t>(::getpid()), std::memory_order_relaxed);
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

  bool notified = false;
  const platform::Deadline* limit = deadline.is_never() ? nullptr : &deadline;
  for (;;) {
    if (slot->state.load(std::memory_order_acquire) == kNotified) {
      notified = true;
      break;
    }
    if (deadline.has_passed() || platform::futex::wait(slot->state, kWaiting, limit) ==
                                     platform::futex::WaitResult::kTimedOut) {
      // Withdraw. Losing this race means a notify chose us first: we count
      // as woken, so that no notification is lost.
      std::uint32_t expected = kWaiting;
      notified = !slot->state.compare_exchange_strong(expected, kFree, std::memory_order_acq_rel);
      break;
    }
  }
  if (notified) slot->state.store(kFree, std::memory_order_release);

  // [condition.wait.reacquires] Reacquire without a time limit.
  if (auto* r = std::get_if<RLock>(&lock_)) {
    r->acquire_restore(depth);
  } else {
    std::get<Lock>(lock_).lock();
  }
  return notified;
}

void Condition::notify(int n) {
  check_held("notify");
  if (n <= 0) return;
  // [condition.notify.at_most_n] Choose among the slots waiting now, oldest
  // ticket first.
  std::vector<std::pair<std::uint64_t, Slot*>> waiting;
  for (Slot& s : state_->slots) {
    if (s.state.load(std::memory_order_acquire) == kWaiting)
      waiting.emplace_back(s.ticket.load(std::memory_order_relaxed), &s);
  }
  std::sort(waiting.begin(), waiting.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  int woken = 0;
  for (auto& [ticket, s] : waiting) {
    if (woken >= n) break;
    std::uint32_t expected = kWaiting;
    if (!process_alive(s->pid.load(std::memory_order_relaxed))) {
      // [condition.kill.waiter] A dead waiter takes no notification.
      s->state.compare_exchange_strong(expected, kFree, std::memory_order_acq_rel);
      continue;
    }
    if (s->state.compare_exchange_strong(expected, kNotified, std::memory_order_acq_rel)) {
      platform::futex::wake(s->state, 1);
      ++woken;
    }
  }
}

}  // namespace mp
