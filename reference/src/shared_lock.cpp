#include "mp/shared_lock.hpp"

#include "mp/errors.hpp"

// A SharedLock is an RWLock plus, per (process, thread), the mode that caller
// holds. Only the caller changes its own record, so reading it needs no
// synchronisation with other threads; a forked child starts with no records
// (mp::local forgets them), hence holds nothing.
//
// Order of work: the checks and the record's allocation come before the
// RWLock is touched, and the record is updated only after the RWLock call
// succeeded, so every exception leaves both as they were.

namespace mp {

void SharedLock::acquire(bool exclusive) {
  Mode& held = held_.value_or_emplace(Mode::kNone);  // may allocate: before taking anything
  // Seed 000 checks the upgrade first, then re-entry
  // ([shared_lock.acquire.no_upgrade], [shared_lock.acquire.not_reentrant]).
  if (exclusive && held == Mode::kShared) {
    throw ValueError("Cannot upgrade a shared lock to an exclusive lock");
  }
  if (held != Mode::kNone) throw ValueError("Lock not re-entrant");
  if (exclusive) {
    lock_.lock();
    held = Mode::kExclusive;
  } else {
    lock_.lock_shared();  // std::system_error(EAGAIN) beyond kMaxReaders
    held = Mode::kShared;
  }
}

void SharedLock::release() {
  Mode* held = held_.get_if();
  // [shared_lock.release.unheld]: another thread's or another process's hold
  // is not ours to release.
  if (held == nullptr || *held == Mode::kNone) throw ValueError("lock released too many times");
  if (*held == Mode::kExclusive) {
    lock_.release_write();
  } else {
    lock_.release_read();
  }
  *held = Mode::kNone;
}

SharedLock::Mode SharedLock::mode_held() const noexcept {
  const Mode* held = held_.get_if();
  return held != nullptr ? *held : Mode::kNone;
}

}  // namespace mp
