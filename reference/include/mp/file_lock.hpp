// -----------------------------------------------------------------------------
// File: file_lock.hpp
// -----------------------------------------------------------------------------
//
// This header defines locks named by a file path, usable between processes
// that share nothing but the path (not forked from one another, possibly
// written in other languages), with the semantics of Python's
// `fasteners.InterProcessLock` and `fasteners.InterProcessReaderWriterLock`
// minus their hazards (normative text: mpspec `spec/filelock/`):
//
//   mp::FileLock    an exclusive lock on a path.
//   mp::FileRWLock  a reader-writer lock on a path: many readers or one
//                   writer.
//
// The file is the lock; an object is a *handle* to it, and the lock is held by
// a handle. Each handle opens the file by itself (its own open file
// description) and locks it with a Linux OFD record lock (F_OFD_SETLK), so:
//
//   * two handles on one path exclude each other, also in one process and one
//     thread (fasteners' POSIX record locks belong to the process: there a
//     second handle of the holder's process "acquires" the held lock);
//   * releasing, closing or destroying one handle never frees a lock that
//     another handle holds;
//   * the kernel frees a handle's lock when the handle's process dies,
//     however it dies (kill -9 included);
//   * the locks are advisory: nothing stops anyone from opening, reading or
//     writing the file. Processes that do not use OFD locks (flock(), lockf
//     and fcntl F_SETLK callers) interoperate as follows: fcntl F_SETLK and
//     lockf record locks conflict with OFD locks; flock() locks do not.
//
// Example:
//
//   mp::FileLock lock("/run/user/1000/myapp/db.lock");  // nothing opened yet
//   if (lock.acquire(/*block=*/true, /*timeout=*/2.0)) {  // wait up to 2 s
//     ... exclusive among all processes that lock this path ...
//     lock.release();
//   }
//   {
//     std::lock_guard<mp::FileLock> guard(lock);  // blocks until held
//   }
//
//   mp::FileRWLock rw("/tmp/cache.lock");
//   {
//     std::shared_lock<mp::FileRWLock> reader(rw);  // acquire_read()
//   }
//   rw.acquire_write();
//   rw.release_write();
//
// The lock file. The first acquire of a handle creates the file if needed
// (mode 0666 minus the umask), and any missing parent directories (0777
// minus the umask), and opens it O_RDWR: the caller needs read and write
// permission. The file is never truncated, written or deleted; its content
// survives every acquire and release. A relative path is resolved against the
// current directory at the handle's first acquire.

#ifndef MP_FILE_LOCK_HPP_
#define MP_FILE_LOCK_HPP_

#include <chrono>
#include <optional>
#include <string>

#include "mp/platform/clock.hpp"
#include "mp/platform/file_lock.hpp"

namespace mp {

// mp::FileLock
//
// An exclusive lock named by a file path. A FileLock object is one handle; the
// file is opened lazily, by the first acquire, and stays open (whether the
// lock is held or not) until the object is destroyed or assigned to, so that
// later acquires cost one system call (release() costs one too).
//
// Blocking and timeouts. acquire() follows Python's `acquire(block=True,
// timeout=None)` and mp::Lock's rules (see the table at acquire()). The
// timeout is turned into one absolute CLOCK_MONOTONIC deadline when the call
// starts. A blocked caller sleeps in the kernel (fcntl F_OFD_SETLKW) and is
// woken by the release itself — there is no polling, unlike fasteners, which
// sleeps 10 ms to 100 ms between attempts. A timed wait is ended at its
// deadline by a POSIX timer whose real-time signal interrupts the sleep (see
// set_file_lock_timeout_signal()); a timed-out acquire returns false no
// earlier than `timeout` seconds after the call.
//
// Errors.
//   acquire() through the handle that holds the lock throws
//   mp::RuntimeError("lock already held by this object") — the lock is not
//   reentrant, and never succeeds silently (fasteners returns True) — and the
//   lock stays held, once.
//   release() by a handle that does not hold the lock throws
//   mp::RuntimeError("release of an unacquired lock") and changes nothing.
//   A NaN timeout (with block=true) throws mp::ValueError.
//   acquire() throws std::system_error if the file cannot be created or opened
//   (the handle then stays unopened and a later acquire tries again), and in
//   the rare cases listed at mp::platform::LockFile::lock().
//
// Fairness. None promised; it is the kernel's. A release wakes waiters that it
// may admit, and they race for the lock with each other and with newcomers,
// which may take it first. There is no FIFO order.
//
// Crashes. When the holder's process dies, the kernel closes its descriptors
// and so frees the lock; waiters are woken as by a release. A process killed
// while waiting leaves no trace. (The descriptor is opened O_CLOEXEC and is
// closed in children created by fork(), so no other process keeps the lock
// alive after its holder died.)
//
// Processes. After fork(), the child's copy of a handle is closed and holds
// nothing, even if the parent's copy holds the lock: in the child it is a new
// handle that reopens the file at its next acquire and is excluded by the
// parent's lock like any other handle.
//
// Threads. A FileLock is not thread-safe: one object must not be used by
// several threads at once. It may be used by different threads one after the
// other (the lock belongs to the handle, not to a thread: any thread may
// release it). For exclusion between the threads of a process, give each
// thread a FileLock of its own on the same path.
//
// Memory ordering. Everything a handle's holder does before release()
// happens-before everything done after the acquire() that takes the lock
// next returns true (the kernel's lock manager orders them).
//
// The members lock(), unlock(), try_lock(), try_lock_for() and
// try_lock_until() make FileLock a TimedLockable, usable with std::lock_guard,
// std::unique_lock and std::scoped_lock.
class FileLock {
 public:
  // FileLock::FileLock()
  //
  // A handle to the lock named by `path`. Opens nothing (see acquire()).
  // Throws mp::ValueError if `path` is empty.
  explicit FileLock(std::string path);

  // Copying is deleted: a copy would be another handle, which excludes this
  // one, and that is better spelled FileLock(other.path()). A moved-to
  // object takes over the handle (and the lock, if held); a moved-from object
  // is closed and holds nothing: it may only be assigned to or destroyed.
  // Assigning to a handle that holds the lock releases it first.
  FileLock(FileLock&& other) noexcept = default;
  FileLock& operator=(FileLock&& other) noexcept = default;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // Releases the lock if this handle holds it, and closes the file.
  ~FileLock() = default;

  // FileLock::acquire()
  //
  // Takes the lock, Python style. Returns true if this handle now holds it.
  //
  //   block   timeout         behaviour
  //   -----   -------------   -----------------------------------------------
  //   false   (ignored)       one attempt; false at once if the lock is held
  //   true    nullopt, +inf   waits until the lock is taken; returns true
  //   true    <= 0            one attempt, like block=false (a negative
  //                           timeout counts as 0, as for mp::Lock)
  //   true    > 0             waits up to `timeout` seconds; false on expiry
  //   true    NaN             throws mp::ValueError (nothing is touched)
  //
  // Timeouts of 4e9 seconds or more mean no limit. Throws mp::RuntimeError if
  // this handle already holds the lock.
  bool acquire(bool block = true, std::optional<double> timeout = std::nullopt);

  // FileLock::release()
  //
  // Frees the lock and wakes its waiters. Any thread may call it (not only
  // the one that acquired); never blocks. The file stays open. Throws
  // mp::RuntimeError("release of an unacquired lock") if this handle does not
  // hold the lock.
  void release();

  // FileLock::acquired()
  //
  // Whether this handle holds the lock. (Whether *another* handle holds it
  // cannot be asked without racing; try acquire(false).)
  bool acquired() const noexcept { return file_.held().has_value(); }

  // The path given to the constructor.
  const std::string& path() const noexcept { return path_; }

  // FileLock::lock()
  //
  // Same as acquire(): blocks until this handle holds the lock.
  void lock() { acquire(); }

  // FileLock::unlock()
  //
  // Same as release().
  void unlock() { release(); }

  // FileLock::try_lock()
  //
  // One attempt, never blocks: same as acquire(false). Unlike mp::Lock's, it
  // may throw (see acquire()).
  [[nodiscard]] bool try_lock() { return acquire(false); }

  // FileLock::try_lock_for()
  //
  // Waits up to `rel_time` for the lock: same as acquire(true, seconds). A
  // zero or negative duration makes one attempt.
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& rel_time) {
    return acquire(true, std::chrono::duration<double>(rel_time).count());
  }

  // FileLock::try_lock_until()
  //
  // Waits until `abs_time` (on std::chrono::steady_clock, i.e. CLOCK_MONOTONIC)
  // for the lock. A time point that has passed makes one attempt.
  template <class Duration>
  [[nodiscard]] bool try_lock_until(
      const std::chrono::time_point<std::chrono::steady_clock, Duration>& abs_time) {
    return acquire_until(platform::Deadline::at_steady(abs_time));
  }

 private:
  bool acquire_until(platform::Deadline deadline);

  std::string path_;
  platform::LockFile file_;  // closed until the first acquire
};

// mp::FileRWLock
//
// A reader-writer lock named by a file path: any number of handles may hold
// it in read (shared) mode at once, or one handle in write (exclusive) mode.
// A FileRWLock on a path also excludes, and is excluded by, FileLocks on the
// same path (a FileLock is a handle that only writes).
//
// Everything mp::FileLock says about the file, lazy opening, blocking and
// timeouts, crashes, fork(), threads, moving and memory ordering holds here
// too, for both modes.
//
// One handle, one mode. A handle holds at most one mode at a time. Asking for
// a mode while holding one throws mp::RuntimeError and leaves the hold as it
// was: there is no upgrade or downgrade (fasteners converts a read hold into a
// write hold in place; the kernel would do the same and, for an upgrade, drop
// the read hold while it waits). To change modes, release and acquire again.
//
// Errors.
//   acquire_read()/acquire_write() while this handle holds the same mode:
//     mp::RuntimeError("read lock already held by this object"), or "write
//     lock ...";
//   while it holds the other mode: mp::RuntimeError("cannot acquire the write
//     lock while this object holds the read lock"), or the reverse;
//   release_read()/release_write() when this handle does not hold that mode:
//     mp::RuntimeError("release of an unacquired read lock"), or "write lock";
//   NaN timeout: mp::ValueError; file errors: std::system_error (as FileLock).
//
// Fairness. The kernel's, and it is *not* writer-preferring: Linux grants a
// read lock whenever no write lock is held, even while writers wait, so a
// steady stream of overlapping readers can starve a writer indefinitely.
// Waiters woken by a release race for the lock, as for FileLock.
//
// lock()/unlock()/try_lock*() (write mode) make FileRWLock a TimedLockable;
// lock_shared()/unlock_shared()/try_lock_shared*() (read mode) make it a
// SharedTimedLockable, usable with std::shared_lock.
class FileRWLock {
 public:
  // FileRWLock::FileRWLock()
  //
  // A handle to the reader-writer lock named by `path`. Opens nothing. Throws
  // mp::ValueError if `path` is empty.
  explicit FileRWLock(std::string path);

  // Move-only, as FileLock.
  FileRWLock(FileRWLock&& other) noexcept = default;
  FileRWLock& operator=(FileRWLock&& other) noexcept = default;
  FileRWLock(const FileRWLock&) = delete;
  FileRWLock& operator=(const FileRWLock&) = delete;
  ~FileRWLock() = default;

  // FileRWLock::acquire_read()
  //
  // Takes the lock in read mode; `block` and `timeout` as FileLock::acquire().
  // Returns true if this handle now holds read mode.
  bool acquire_read(bool block = true, std::optional<double> timeout = std::nullopt);

  // FileRWLock::acquire_write()
  //
  // Takes the lock in write mode; `block` and `timeout` as
  // FileLock::acquire(). Returns true if this handle now holds write mode.
  bool acquire_write(bool block = true, std::optional<double> timeout = std::nullopt);

  // FileRWLock::release_read()
  //
  // Gives up this handle's read mode. Throws mp::RuntimeError if it does not
  // hold read mode.
  void release_read();

  // FileRWLock::release_write()
  //
  // Gives up this handle's write mode. Throws mp::RuntimeError if it does not
  // hold write mode.
  void release_write();

  // Whether this handle holds read mode, write mode.
  bool read_acquired() const noexcept { return file_.held() == platform::FileLockMode::kShared; }
  bool write_acquired() const noexcept {
    return file_.held() == platform::FileLockMode::kExclusive;
  }

  // The path given to the constructor.
  const std::string& path() const noexcept { return path_; }

  // Write mode, for std::unique_lock and friends.
  void lock() { acquire_write(); }
  void unlock() { release_write(); }
  [[nodiscard]] bool try_lock() { return acquire_write(false); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& rel_time) {
    return acquire_write(true, std::chrono::duration<double>(rel_time).count());
  }
  template <class Duration>
  [[nodiscard]] bool try_lock_until(
      const std::chrono::time_point<std::chrono::steady_clock, Duration>& abs_time) {
    return acquire_until(platform::FileLockMode::kExclusive,
                         platform::Deadline::at_steady(abs_time));
  }

  // Read mode, for std::shared_lock.
  void lock_shared() { acquire_read(); }
  void unlock_shared() { release_read(); }
  [[nodiscard]] bool try_lock_shared() { return acquire_read(false); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& rel_time) {
    return acquire_read(true, std::chrono::duration<double>(rel_time).count());
  }
  template <class Duration>
  [[nodiscard]] bool try_lock_shared_until(
      const std::chrono::time_point<std::chrono::steady_clock, Duration>& abs_time) {
    return acquire_until(platform::FileLockMode::kShared, platform::Deadline::at_steady(abs_time));
  }

 private:
  bool acquire(platform::FileLockMode mode, bool block, std::optional<double> timeout);
  bool acquire_until(platform::FileLockMode mode, platform::Deadline deadline);

  std::string path_;
  platform::LockFile file_;  // closed until the first acquire
};

// mp::set_file_lock_timeout_signal()
//
// Selects the real-time signal that ends timed waits of FileLock and
// FileRWLock (default SIGRTMIN + 7). libmp installs an empty handler for it,
// without SA_RESTART, the first time a timed wait needs it, provided its
// disposition is then SIG_DFL; if the application has installed a handler for
// that signal (or ignores it), timed waits throw std::system_error(EBUSY)
// instead of waiting forever. The signal is sent only to a thread that is in a
// timed wait, only after its deadline. Call this before the first timed
// acquire if the program already uses SIGRTMIN + 7. Throws mp::ValueError if
// `signo` is not between SIGRTMIN and SIGRTMAX. Untimed and non-blocking
// acquires use no signal.
void set_file_lock_timeout_signal(int signo);

// mp::file_lock_timeout_signal()
//
// The signal selected for timed file-lock waits.
int file_lock_timeout_signal() noexcept;

}  // namespace mp

#endif  // MP_FILE_LOCK_HPP_
