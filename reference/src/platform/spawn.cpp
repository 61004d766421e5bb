#include "spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <system_error>
#include <thread>

#include "mp/errors.hpp"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace mp::platform {
namespace {

[[noreturn]] void throw_errno(int error, const char* what) {
  throw std::system_error(error, std::generic_category(), what);
}

int open_pidfd(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  return fd >= 0 ? static_cast<int>(fd) : -1;
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

bool pidfd_works() noexcept {
  static const bool works = [] {
    const int fd = open_pidfd(::getpid());
    if (fd < 0) return false;
    ::close(fd);
    return true;
  }();
  return works;
}

void flush_streams() noexcept {
  try {
    std::cout.flush();
    std::cerr.flush();
    std::clog.flush();
  } catch (...) {
  }
  std::fflush(nullptr);
}

void close_quietly(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

}  // namespace

ParentWatch watch_parent(pid_t parent) noexcept {
  if (::getppid() != parent) return {-1, true};
  const int fd = open_pidfd(parent);
  if (::getppid() != parent) {
    close_quietly(fd);
    return {-1, true};
  }
  return {fd, false};
}

bool parent_running(const ParentWatch& watch, pid_t parent) noexcept {
  if (watch.ended) return false;
  if (watch.fd < 0) return ::getppid() == parent;
  pollfd p{watch.fd, POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, 0);
  } while (rc < 0 && errno == EINTR);
  return rc == 0;
}

bool wait_parent(const ParentWatch& watch, pid_t parent, Deadline deadline) {
  if (watch.ended) return true;
  if (watch.fd >= 0) return wait_readable(watch.fd, deadline);
  for (;;) {
    if (::getppid() != parent) return true;
    if (deadline.has_passed()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void check_open_fd(int fd) {
  if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) {
    throw ValueError("pass_fds: " + std::to_string(fd) + " is not an open file descriptor");
  }
}

int data_fd(std::string_view data) {
  const int fd = ::memfd_create("mp-spawn", MFD_CLOEXEC);
  if (fd < 0) throw_errno(errno, "memfd_create");
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw_errno(error, "write");
    }
    done += static_cast<std::size_t>(n);
  }
  return fd;
}

std::string read_data_fd(int fd) {
  std::string out;
  char buf[4096];
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(errno, "pread");
    }
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
    offset += n;
  }
}

std::string program_argv0() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string first;
  if (in) std::getline(in, first, '\0');
  return first;
}

ForkedChild spawn_child(const std::vector<std::string>& argv, const std::vector<int>& keep_fds) {
  // Everything the child needs is prepared before fork: between fork and exec
  // it makes only async-signal-safe calls.
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  long open_max = ::sysconf(_SC_OPEN_MAX);
  if (open_max < 0 || open_max > 65536) open_max = 65536;
  const int max_fd = static_cast<int>(open_max);

  flush_streams();
  const bool use_pidfd = pidfd_works();
  int sentinel_pipe[2] = {-1, -1};
  int error_pipe[2] = {-1, -1};
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
  if (!use_pidfd && ::pipe2(sentinel_pipe, O_CLOEXEC) != 0) {
    const int error = errno;
    close_quietly(error_pipe[0]);
    close_quietly(error_pipe[1]);
    throw_errno(error, "pipe2");
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    for (int fd : {error_pipe[0], error_pipe[1], sentinel_pipe[0], sentinel_pipe[1]}) close_quietly(fd);
    throw_errno(error, "fork");
  }
  if (pid == 0) {
    ::close(error_pipe[0]);
    if (sentinel_pipe[0] >= 0) ::close(sentinel_pipe[0]);
    // Only the descriptors handed over survive the exec.
    long marked = -1;
#ifdef SYS_close_range
    marked = ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
#endif
    if (marked != 0) {  // before Linux 5.11
      for (int fd = 3; fd < max_fd; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    ::fcntl(error_pipe[1], F_SETFD, FD_CLOEXEC);
    for (int fd : keep_fds) ::fcntl(fd, F_SETFD, 0);
    if (sentinel_pipe[1] >= 0) ::fcntl(sentinel_pipe[1], F_SETFD, 0);
    ::execv("/proc/self/exe", cargv.data());
    const int error = errno;
    ssize_t ignored = ::write(error_pipe[1], &error, sizeof error);
    (void)ignored;
    ::_exit(127);
  }
  ::close(error_pipe[1]);
  close_quietly(sentinel_pipe[1]);
  int exec_error = 0;
  ssize_t n;
  do {
    n = ::read(error_pipe[0], &exec_error, sizeof exec_error);
  } while (n < 0 && errno == EINTR);
  ::close(error_pipe[0]);
  int sentinel = sentinel_pipe[0];
  int error = 0;
  if (n == static_cast<ssize_t>(sizeof exec_error)) {
    error = exec_error;
  } else if (use_pidfd) {
    // The child cannot have been reaped yet (only we reap it).
    sentinel = open_pidfd(pid);
    if (sentinel < 0) {
      error = errno;
      ::kill(pid, SIGKILL);
    }
  }
  if (error != 0) {
    close_quietly(sentinel_pipe[0]);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw_errno(error, use_pidfd && n != static_cast<ssize_t>(sizeof exec_error) ? "pidfd_open"
                                                                                   : "exec");
  }
  return ForkedChild{pid, sentinel, use_pidfd};
}

}  // namespace mp::platform
