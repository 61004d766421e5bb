#include "mp/file_lock.hpp"

#include <utility>

#include "mp/errors.hpp"

namespace mp {
namespace {

using platform::Deadline;
using platform::FileLockMode;
using platform::LockFile;

std::string checked_path(std::string path) {
  if (path.empty()) throw ValueError("lock file path must not be empty");
  return path;
}

// The deadline of a Python-style acquire(block, timeout) that starts now (one
// clock read). NaN throws mp::ValueError (only with block=true: without it,
// the timeout is ignored); <= 0 gives expired(), one attempt.
Deadline deadline_for(bool block, const std::optional<double>& timeout) {
  if (!block) return Deadline::expired();
  if (!timeout.has_value()) return Deadline::never();
  return Deadline::after(*timeout);
}

// Takes the lock in `mode` through `file`, opening it first if needed (at the
// first acquire, or in a child after fork(), where the handle was closed).
bool lock_file(const std::string& path, LockFile& file, FileLockMode mode, Deadline deadline) {
  if (!file.is_open()) file = LockFile::open(path);
  return file.lock(mode, deadline);
}

const char* mode_name(FileLockMode mode) noexcept {
  return mode == FileLockMode::kShared ? "read" : "write";
}

}  // namespace

// --- FileLock ---------------------------------------------------------------

FileLock::FileLock(std::string path) : path_(checked_path(std::move(path))) {}

bool FileLock::acquire(bool block, std::optional<double> timeout) {
  return acquire_until(deadline_for(block, timeout));
}

bool FileLock::acquire_until(Deadline deadline) {
  if (file_.held()) throw RuntimeError("lock already held by this object");
  return lock_file(path_, file_, FileLockMode::kExclusive, deadline);
}

void FileLock::release() {
  if (!file_.held()) throw RuntimeError("release of an unacquired lock");
  file_.unlock();
}

// --- FileRWLock -------------------------------------------------------------

FileRWLock::FileRWLock(std::string path) : path_(checked_path(std::move(path))) {}

bool FileRWLock::acquire_read(bool block, std::optional<double> timeout) {
  return acquire(FileLockMode::kShared, block, timeout);
}

bool FileRWLock::acquire_write(bool block, std::optional<double> timeout) {
  return acquire(FileLockMode::kExclusive, block, timeout);
}

bool FileRWLock::acquire(FileLockMode mode, bool block, std::optional<double> timeout) {
  return acquire_until(mode, deadline_for(block, timeout));
}

bool FileRWLock::acquire_until(FileLockMode mode, Deadline deadline) {
  if (const std::optional<FileLockMode> held = file_.held()) {
    if (*held == mode) {
      throw RuntimeError(std::string(mode_name(mode)) + " lock already held by this object");
    }
    throw RuntimeError(std::string("cannot acquire the ") + mode_name(mode) +
                       " lock while this object holds the " + mode_name(*held) + " lock");
  }
  return lock_file(path_, file_, mode, deadline);
}

void FileRWLock::release_read() {
  if (file_.held() != FileLockMode::kShared) {
    throw RuntimeError("release of an unacquired read lock");
  }
  file_.unlock();
}

void FileRWLock::release_write() {
  if (file_.held() != FileLockMode::kExclusive) {
    throw RuntimeError("release of an unacquired write lock");
  }
  file_.unlock();
}

// --- The timeout signal -----------------------------------------------------

void set_file_lock_timeout_signal(int signo) { platform::set_timeout_signal(signo); }

int file_lock_timeout_signal() noexcept { return platform::timeout_signal(); }

}  // namespace mp
