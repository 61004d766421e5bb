#include "mp/platform/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <system_error>

namespace mp::platform {
namespace {

std::atomic<pid_t> cached_pid{0};

void clear_cached_pid() noexcept { cached_pid.store(0, std::memory_order_relaxed); }

}  // namespace

pid_t self_pid() noexcept {
  static const bool registered = [] {
    ::pthread_atfork(nullptr, nullptr, &clear_cached_pid);
    return true;
  }();
  (void)registered;
  pid_t pid = cached_pid.load(std::memory_order_relaxed);
  if (pid == 0) {
    pid = ::getpid();
    cached_pid.store(pid, std::memory_order_relaxed);
  }
  return pid;
}

bool process_exited(pid_t pid) noexcept {
  if (pid <= 0) return true;
#ifdef SYS_pidfd_open
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    // A pidfd becomes readable when its process exits.
    pollfd p{static_cast<int>(fd), POLLIN, 0};
    int rc;
    do {
      rc = ::poll(&p, 1, 0);
    } while (rc < 0 && errno == EINTR);
    ::close(static_cast<int>(fd));
    return rc > 0;
  }
  if (errno == ESRCH) return true;
#endif
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

bool process_alive(pid_t pid) noexcept {
  if (pid <= 0) return false;
  if (pid == self_pid()) return true;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  // kill() also finds a zombie, which has ended: ask the pidfd.
  return !process_exited(pid);
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

namespace {

[[noreturn]] void throw_errno(int error, const char* what) {
  throw std::system_error(error, std::generic_category(), what);
}

// Whether pidfd_open works here (Linux 5.3+, not filtered by seccomp). Probed
// once, on the caller's own pid.
bool pidfd_supported() noexcept {
  static const bool supported = [] {
#ifdef SYS_pidfd_open
    const long fd = ::syscall(SYS_pidfd_open, ::getpid(), 0);
    if (fd >= 0) {
      ::close(static_cast<int>(fd));
      return true;
    }
#endif
    return false;
  }();
  return supported;
}

std::atomic<bool> force_pipe_sentinels{false};

void flush_standard_streams() noexcept {
  try {
    std::cout.flush();
    std::cerr.flush();
    std::clog.flush();
  } catch (...) {
  }
  std::fflush(nullptr);
}

// Status from waitpid() -> Python's exitcode convention.
int exitcode_from_status(int status) noexcept {
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 0;  // not reachable without WUNTRACED / WCONTINUED
}

}  // namespace

void force_pipe_sentinels_for_testing(bool force) noexcept {
  force_pipe_sentinels.store(force, std::memory_order_relaxed);
}

ForkedChild fork_child() {
  flush_standard_streams();
  const bool use_pidfd = pidfd_supported() && !force_pipe_sentinels.load(std::memory_order_relaxed);
  int pipe_fds[2] = {-1, -1};
  if (!use_pidfd && ::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    close_fd(pipe_fds[0]);
    close_fd(pipe_fds[1]);
    throw_errno(error, "fork");
  }
  if (pid == 0) {
    // The child keeps only the write end: it closes when the child exits.
    close_fd(pipe_fds[0]);
    return ForkedChild{};
  }
  if (!use_pidfd) {
    close_fd(pipe_fds[1]);
    return ForkedChild{pid, pipe_fds[0], false};
  }
#ifdef SYS_pidfd_open
  // The child cannot have been reaped yet (only we reap it), so its pid still
  // names it, also if it has already exited.
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) return ForkedChild{pid, static_cast<int>(fd), true};
  const int error = errno;
#else
  const int error = ENOSYS;
#endif
  ::kill(pid, SIGKILL);
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  throw_errno(error, "pidfd_open");
}

bool wait_readable(int fd, Deadline deadline) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int rc;
    bool last_attempt = false;
    if (deadline.is_never()) {
      rc = ::ppoll(&p, 1, nullptr, nullptr);
    } else {
      std::int64_t left = deadline.monotonic_ns() - monotonic_now_ns();
      if (left <= 0) {
        left = 0;
        last_attempt = true;
      }
      const timespec ts{static_cast<time_t>(left / 1'000'000'000),
                        static_cast<long>(left % 1'000'000'000)};
      rc = ::ppoll(&p, 1, &ts, nullptr);
    }
    if (rc > 0) {
      if (p.revents & POLLNVAL) throw_errno(EBADF, "poll on a process sentinel");
      return true;  // POLLIN, or POLLHUP/POLLERR: the end of a pipe sentinel
    }
    if (rc < 0 && errno != EINTR) throw_errno(errno, "poll");
    if (rc == 0 && last_attempt) return false;
    // Interrupted, or woke a little before the deadline: wait again.
  }
}

void wait_child_ended(pid_t pid) noexcept {
  siginfo_t info;
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
}

ReapResult reap_child(pid_t pid) {
  for (;;) {
    int status = 0;
    const pid_t rc = ::waitpid(pid, &status, WNOHANG);
    if (rc == pid) return ReapResult{ReapResult::Status::kReaped, exitcode_from_status(status)};
    if (rc == 0) return ReapResult{ReapResult::Status::kRunning, 0};
    if (errno == EINTR) continue;
    if (errno == ECHILD) return ReapResult{ReapResult::Status::kNotChild, 0};
    throw_errno(errno, "waitpid");
  }
}

bool signal_child(pid_t pid, int pidfd, int signal) {
  long rc;
#ifdef SYS_pidfd_send_signal
  if (pidfd >= 0) {
    rc = ::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0);
  } else {
    rc = ::kill(pid, signal);
  }
#else
  (void)pidfd;
  rc = ::kill(pid, signal);
#endif
  if (rc == 0) return true;
  if (errno == ESRCH) return false;
  throw_errno(errno, "kill");
}

void close_fd(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

void stdin_from_devnull() noexcept {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (fd != STDIN_FILENO) {
    ::dup2(fd, STDIN_FILENO);  // dup2 clears close-on-exec on descriptor 0
    ::close(fd);
  } else {
    ::fcntl(STDIN_FILENO, F_SETFD, 0);
  }
}

void write_stderr(const char* text, std::size_t size) noexcept {
  while (size > 0) {
    const ssize_t n = ::write(STDERR_FILENO, text, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text += n;
    size -= static_cast<std::size_t>(n);
  }
}

void exit_now(int status) noexcept {
  flush_standard_streams();
  ::_exit(status);
}

int online_cpu_count() noexcept {
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 0;
}

}  // namespace mp::platform
