#include "mp/rlock.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <ctime>
#include <new>
#include <system_error>

#include "mp/errors.hpp"
#include "mp/platform/shm.hpp"

namespace mp {
namespace {

// The kernel thread id of the calling thread, cached per thread. A child made
// by fork() runs on a new thread id while inheriting the parent's
// thread_local values, so the cache of the forking thread is cleared in the
// child by an atfork handler (registered when the library is loaded). A child
// made by a raw clone() system call, which runs no atfork handlers, would keep
// its parent's id: libmp supports fork() (and spawning) only.
thread_local pid_t cached_tid = 0;

void clear_cached_tid() noexcept { cached_tid = 0; }

// Registered when the library is loaded, before any thread can use an RLock.
const bool kAtforkRegistered = ::pthread_atfork(nullptr, nullptr, &clear_cached_tid) == 0;

pid_t self_tid() noexcept {
  if (cached_tid == 0) cached_tid = ::gettid();
  return cached_tid;
}

[[noreturn]] void throw_errno(int rc, const char* what) {
  throw std::system_error(rc, std::generic_category(), what);
}

}  // namespace

RLockState::RLockState() {
  pthread_mutexattr_t attr;
  int rc = ::pthread_mutexattr_init(&attr);
  if (rc != 0) throw_errno(rc, "pthread_mutexattr_init");
  ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  ::pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  rc = ::pthread_mutex_init(&mutex, &attr);
  ::pthread_mutexattr_destroy(&attr);
  if (rc != 0) throw_errno(rc, "pthread_mutex_init");
}

RLockState::~RLockState() { ::pthread_mutex_destroy(&mutex); }

RLock::RLock() {
  auto mapping = std::make_shared<platform::SharedMapping>(
      platform::SharedMapping::anonymous(sizeof(RLockState)));
  state_ = ::new (mapping->data()) RLockState();
  mapping_ = std::move(mapping);
}

RLock RLock::attach(RLockState& state) noexcept { return RLock(nullptr, &state); }

// The mutex itself is only ever locked once by its owner: recursion is counted
// in `depth` alone, so that a recursive acquire or an inner release costs no
// call into the mutex.
bool RLock::took(int rc) {
  const pid_t me = self_tid();
  if (rc == 0) {
    state_->owner_tid.store(me, std::memory_order_relaxed);
    state_->depth = 1;
    return true;
  }
  if (rc == EOWNERDEAD) {
    // The owner died holding the lock; the kernel handed it to us. Make the
    // mutex usable again and report the death, owning the lock at depth 1.
    ::pthread_mutex_consistent(&state_->mutex);
    state_->owner_tid.store(me, std::memory_order_relaxed);
    state_->depth = 1;
    throw OwnerDied("the owner of the RLock died while holding it; the caller now owns it");
  }
  throw_errno(rc, "pthread_mutex_lock");
}

bool RLock::acquire(bool block, std::optional<double> timeout) {
  (void)kAtforkRegistered;
  if (!block) return acquire_until(platform::Deadline::expired());
  if (!timeout.has_value()) return acquire_until(platform::Deadline::never());
  if (std::isnan(*timeout)) throw ValueError("timeout must not be NaN");
  return acquire_until(platform::Deadline::after(*timeout));
}

bool RLock::acquire_until(platform::Deadline deadline) {
  if (state_->owner_tid.load(std::memory_order_relaxed) == self_tid()) {
    // Already ours: one more level. Only the owner writes these fields while
    // it owns the lock, so no other thread can change them under us.
    if (state_->depth == UINT32_MAX) throw ValueError("RLock recursion depth exceeded");
    ++state_->depth;
    return true;
  }
  int rc;
  if (deadline.is_never()) {
    rc = ::pthread_mutex_lock(&state_->mutex);
  } else if (deadline == platform::Deadline::expired()) {
    rc = ::pthread_mutex_trylock(&state_->mutex);
    if (rc == EBUSY) return false;
  } else {
    const std::int64_t ns = deadline.monotonic_ns();
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(ns / 1000000000);
    ts.tv_nsec = static_cast<long>(ns % 1000000000);
    rc = ::pthread_mutex_clocklock(&state_->mutex, CLOCK_MONOTONIC, &ts);
    if (rc == ETIMEDOUT) return false;
  }
  return took(rc);
}

void RLock::release() {
  if (state_->owner_tid.load(std::memory_order_relaxed) != self_tid()) {
    throw AssertionError("cannot release un-acquired lock");
  }
  if (--state_->depth != 0) return;
  state_->owner_tid.store(0, std::memory_order_relaxed);
  const int rc = ::pthread_mutex_unlock(&state_->mutex);
  if (rc != 0) throw_errno(rc, "pthread_mutex_unlock");
}

bool RLock::is_owned() const noexcept {
  return state_->owner_tid.load(std::memory_order_relaxed) == self_tid();
}

std::uint32_t RLock::depth() const noexcept { return is_owned() ? state_->depth : 0; }

std::uint32_t RLock::release_all() {
  if (!is_owned()) throw AssertionError("cannot release un-acquired lock");
  const std::uint32_t levels = state_->depth;
  for (std::uint32_t i = 0; i < levels; ++i) release();
  return levels;
}

void RLock::acquire_restore(std::uint32_t levels) {
  bool owner_died = false;
  try {
    lock();
  } catch (const OwnerDied&) {
    owner_died = true;
  }
  for (std::uint32_t i = 1; i < levels; ++i) lock();
  if (owner_died)
    throw OwnerDied("the owner of the RLock died while holding it; the caller now owns it");
}

}  // namespace mp
