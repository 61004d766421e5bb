// -----------------------------------------------------------------------------
// File: platform/process.hpp
// -----------------------------------------------------------------------------
//
// Process identity and liveness probes for libmp's crash-robust primitives,
// and the system calls behind mp::Process (fork, sentinels, reaping,
// signals). Internal to libmp (the platform layer): the public types use
// these to tell a waiter or owner that died from one that is merely slow, and
// to start and reap child processes.

#ifndef MP_PLATFORM_PROCESS_HPP_
#define MP_PLATFORM_PROCESS_HPP_

#include <sys/types.h>

#include <cstddef>

#include "mp/platform/clock.hpp"

namespace mp::platform {

// The calling process's id. Cached: glibc's getpid() is a system call. The
// cache is cleared in a child created by fork() (an atfork handler); a child
// created by a raw clone() system call that skips the handlers would see its
// parent's id, which libmp never does.
pid_t self_pid() noexcept;

// Whether the process `pid` has exited, including an exited process that its
// parent has not reaped yet (a zombie). Uses a pidfd where the kernel has
// pidfd_open (Linux 5.3), else kill(pid, 0) (which counts a zombie as alive).
// One or two system calls: not for a fast path.
bool process_exited(pid_t pid) noexcept;

// Whether `pid` names a process that has not ended: one kill(pid, 0), and
// when that finds the pid, process_exited() as well, so that a zombie (ended,
// not yet reaped: its parent may never reap it) counts as dead. A process of
// another user counts as alive. A pid <= 0 is never alive. Not for a fast
// path (up to four system calls).
bool process_alive(pid_t pid) noexcept;

// ---------------------------------------------------------------------------
// Child processes (mp::Process). Every system call of mp::Process is here.
// ---------------------------------------------------------------------------

// A child created by fork_child().
struct ForkedChild {
  // In the parent: the child's pid. In the child: 0.
  pid_t pid = 0;
  // In the parent: the child's sentinel, a close-on-exec descriptor that
  // becomes readable when the child ends and stays readable. It is a pidfd
  // where the kernel has pidfd_open (Linux 5.3), else the read end of a pipe
  // whose write end only the child holds (that end closes when the child and
  // every process it handed the descriptor to have exited). -1 in the child.
  int sentinel = -1;
  // Whether `sentinel` is a pidfd (then signals go through it, immune to pid
  // reuse).
  bool sentinel_is_pidfd = false;
};

// For tests: while set, fork_child() uses pipe sentinels even where pidfds
// work, so that the fallback path runs on a modern kernel too.
void force_pipe_sentinels_for_testing(bool force) noexcept;

// Flushes the C and C++ standard streams (so that buffered output is not
// written twice), then fork()s. Returns in both processes, like fork(). Throws
// std::system_error if the child cannot be created or its sentinel cannot be
// opened (the child is then killed and reaped before the throw).
ForkedChild fork_child();

// Waits until `fd` is readable or `deadline` passes; true if readable. An
// expired deadline polls once. Interruptions (EINTR) resume the wait against
// the same deadline. Throws std::system_error if poll fails otherwise.
bool wait_readable(int fd, Deadline deadline);

// Blocks until the child `pid` has ended, without reaping it (waitid with
// WNOWAIT). Returns at once if it has already ended or is not a child of the
// caller.
void wait_child_ended(pid_t pid) noexcept;

// The outcome of reap_child().
struct ReapResult {
  enum class Status {
    kRunning,   // still running: nothing reaped
    kReaped,    // ended and reaped now; `exitcode` holds the result
    kNotChild,  // ECHILD: not a child of the caller, or already reaped
  };
  Status status = Status::kRunning;
  // Python's convention: the exit status (0..255), or -N if killed by signal N.
  int exitcode = 0;
};

// One waitpid(pid, WNOHANG): reaps the child if it has ended. Never blocks.
// Throws std::system_error for failures other than ECHILD.
ReapResult reap_child(pid_t pid);

// Sends `signal` to the child `pid`, through `pidfd` (pidfd_send_signal) if
// it is >= 0, else with kill(). Returns false if the process no longer exists
// (ESRCH); throws std::system_error on other failures.
bool signal_child(pid_t pid, int pidfd, int signal);

// close() that ignores errors (descriptors < 0 are ignored).
void close_fd(int fd) noexcept;

// Replaces standard input (descriptor 0) with /dev/null, as a child started by
// CPython's multiprocessing has it. Failures are ignored.
void stdin_from_devnull() noexcept;

// Writes `text` to standard error (descriptor 2) unbuffered, ignoring errors.
void write_stderr(const char* text, std::size_t size) noexcept;

// Flushes the C and C++ standard streams and ends the process at once with
// `status` (_exit: no atexit handlers, no static destructors).
[[noreturn]] void exit_now(int status) noexcept;

// The number of CPUs online (sysconf(_SC_NPROCESSORS_ONLN)), or 0 if unknown.
int online_cpu_count() noexcept;

}  // namespace mp::platform

#endif  // MP_PLATFORM_PROCESS_HPP_
