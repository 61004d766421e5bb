// -----------------------------------------------------------------------------
// File: platform/file_lock.hpp
// -----------------------------------------------------------------------------
//
// INTERNAL: part of libmp's platform layer. Users of libmp do not include this
// header; its contents may change without notice.
//
// Whole-file advisory locks on Linux "open file description" (OFD) record
// locks: fcntl(F_OFD_SETLK / F_OFD_SETLKW) over the whole file, shared
// (F_RDLCK) or exclusive (F_WRLCK). Compared with the alternatives:
//
//   * POSIX record locks (fcntl F_SETLK, lockf; what Python's fasteners uses)
//     belong to the *process*: two handles of one process never exclude each
//     other, and closing *any* descriptor of the file drops all of the
//     process's locks on it. Unusable for a lock object.
//   * flock() belongs to the open file description like OFD locks, but it is
//     emulated with POSIX locks on some network file systems (NFS), where it
//     then has the POSIX hazards.
//   * OFD locks belong to the open file description: every open() is a lock
//     owner of its own, also inside one process and one thread; they conflict
//     with POSIX record locks, and the kernel drops them when the last
//     descriptor of the description is closed (also when the process dies).
//
// A LockFile owns one descriptor (one open file description) and the lock it
// holds. Descriptors are opened O_CLOEXEC, so a program that execs does not
// hand them on. A child created by fork() would inherit them, and with them a
// reference to the description that keeps the parent's lock alive after the
// parent died: a pthread_atfork handler therefore closes every LockFile's
// descriptor in the child (the child's LockFile objects are left closed and
// holding nothing; they can be opened again).
//
// Timed waits never poll. F_OFD_SETLKW blocks in the kernel, which wakes the
// waiter when the lock is released; for a deadline, a per-call POSIX timer on
// CLOCK_MONOTONIC (timer_create with SIGEV_THREAD_ID, armed TIMER_ABSTIME at
// the deadline) sends a real-time signal to the waiting thread. Its handler
// does nothing and is installed without SA_RESTART, so the signal makes the
// fcntl fail with EINTR; the waiter then sees that the deadline passed. See
// lock() for the details and timeout_signal() for the signal used.

#ifndef MP_PLATFORM_FILE_LOCK_HPP_
#define MP_PLATFORM_FILE_LOCK_HPP_

#include <optional>
#include <string>

#include "mp/platform/clock.hpp"

namespace mp::platform {

// The two modes of a file lock.
enum class FileLockMode {
  kShared,     // F_RDLCK: any number of descriptions at once, no exclusive one
  kExclusive,  // F_WRLCK: one description, no shared ones
};

struct LockFileNode;  // defined in file_lock.cpp

// mp::platform::LockFile
//
// One open file description of a lock file, and the whole-file OFD lock it
// holds (if any). Move-only; a default-constructed or moved-from LockFile, or
// a child's copy after fork(), is closed.
//
// Not thread-safe: one LockFile must not be used by several threads at once.
// Different LockFiles, also on one path, are independent lock owners that
// exclude each other.
class LockFile {
 public:
  // LockFile::open()
  //
  // Opens `path` read-write (O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY), creating
  // it with mode 0666 (minus the umask) if it does not exist, and creating
  // missing parent directories with mode 0777 (minus the umask). Never
  // truncates the file. A relative path is resolved against the current
  // directory at the time of the call.
  //
  // Throws std::system_error naming the path if the file cannot be opened.
  static LockFile open(const std::string& path);

  LockFile() noexcept = default;
  LockFile(LockFile&& other) noexcept;
  LockFile& operator=(LockFile&& other) noexcept;
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;
  // Closes the descriptor (see close()).
  ~LockFile();

  // Whether a descriptor is open.
  bool is_open() const noexcept;

  // The mode of the lock this description holds, or nullopt.
  std::optional<FileLockMode> held() const noexcept;

  // LockFile::try_lock()
  //
  // One F_OFD_SETLK attempt on the whole file; never blocks. Returns true if
  // the description now holds the lock in `mode`, false if another
  // description (or a process's POSIX record lock) holds a conflicting lock.
  // Requires is_open() and !held() (the caller prevents conversions). Throws
  // std::system_error on other failures (ENOLCK, or EINVAL on kernels older
  // than 3.15, which lack OFD locks).
  bool try_lock(FileLockMode mode);

  // LockFile::lock()
  //
  // Waits in F_OFD_SETLKW until the description holds the lock in `mode` or
  // `deadline` (absolute, CLOCK_MONOTONIC) passes; returns false only in the
  // latter case. Deadline::never() waits without limit. An expired deadline
  // makes one attempt. Requires is_open() and !held().
  //
  // Signals that interrupt the wait (EINTR) are absorbed: the wait resumes,
  // with the same deadline. A timed wait (a deadline other than never()):
  //
  //   1. makes one F_OFD_SETLK attempt, and returns if it succeeds or if the
  //      deadline has passed;
  //   2. makes sure that the handler of timeout_signal() is installed (see
  //      there) and that the signal is not blocked in the calling thread
  //      (unblocking it for the duration of the call if it is);
  //   3. creates a POSIX timer on CLOCK_MONOTONIC that sends the signal to the
  //      calling thread (SIGEV_THREAD_ID), armed with TIMER_ABSTIME to expire
  //      at the deadline and then every millisecond;
  //   4. blocks in F_OFD_SETLKW. The kernel wakes it when the lock is free;
  //      the timer's signal makes it return EINTR, after which the deadline
  //      has passed and the call returns false;
  //   5. deletes the timer and restores the signal mask on every way out,
  //      exceptions included.
  //
  // The 1 ms repetition closes the one race of the scheme: if the deadline
  // passes between the last check of the deadline and the moment the thread
  // sleeps in the kernel, the first signal is handled before the fcntl and
  // cannot interrupt it; the next one, 1 ms later, does. Before the deadline
  // the timer sends nothing, so the wait costs no wake-ups. A signal that
  // arrives after the fcntl returned runs the empty handler and changes
  // nothing; any signal still pending when the timer is deleted is delivered
  // (to the empty handler) before the call returns, because the signal is
  // unblocked until then.
  //
  // Throws std::system_error if the timer cannot be created or armed (e.g.
  // EAGAIN: RLIMIT_SIGPENDING reached), if the signal's disposition belongs to
  // the application (EBUSY, see timeout_signal()), or on fcntl failures other
  // than a conflict or EINTR. The description holds nothing after a throw.
  bool lock(FileLockMode mode, const Deadline& deadline);

  // LockFile::unlock()
  //
  // Releases the lock (F_OFD_SETLK with F_UNLCK). Never blocks and never
  // fails: should the kernel refuse the unlock, the descriptor is closed
  // instead, which drops the description's lock as well. No-op if no lock is
  // held.
  void unlock() noexcept;

  // LockFile::close()
  //
  // Releases any lock explicitly (so that no other reference to the
  // description can keep it alive) and closes the descriptor. No-op if
  // closed.
  void close() noexcept;

  // The descriptor, or -1 when closed. For tests and benchmarks.
  int fd() const noexcept;

 private:
  explicit LockFile(LockFileNode* node) noexcept : node_(node) {}

  // Owned; heap-allocated so that the fork handler's registry can point at it
  // while the handle moves. Null when closed by close() or never opened.
  LockFileNode* node_ = nullptr;
};

// mp::platform::timeout_signal()
//
// The signal that interrupts timed waits for file locks: by default
// SIGRTMIN + 7, a real-time signal (so that it is never merged with the
// standard signals a program uses). Its handler, installed on first need by
// LockFile::lock() when the signal's disposition is SIG_DFL, is an empty
// function without SA_RESTART and with an empty sa_mask. If the disposition is
// anything else that libmp did not install (the application uses the signal,
// or ignores it), timed waits throw std::system_error(EBUSY) rather than wait
// forever: choose another signal with set_timeout_signal(). The default can
// also be changed when building libmp, by defining
// MP_FILE_LOCK_SIGRTMIN_OFFSET to the offset from SIGRTMIN.
int timeout_signal() noexcept;

// mp::platform::set_timeout_signal()
//
// Selects the signal for the timed waits that start afterwards. `signo` must be
// a real-time signal, SIGRTMIN <= signo <= SIGRTMAX; otherwise throws
// mp::ValueError. Does not change any disposition itself.
void set_timeout_signal(int signo);

}  // namespace mp::platform

#endif  // MP_PLATFORM_FILE_LOCK_HPP_
