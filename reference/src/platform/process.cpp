#include "mp/platform/process.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

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
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

}  // namespace mp::platform
