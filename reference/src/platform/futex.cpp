#include "mp/platform/futex.hpp"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mp::platform::futex {
namespace {

// The futex system call has no glibc wrapper.
long futex_syscall(std::atomic<std::uint32_t>& word, int op, std::uint32_t val,
                   const timespec* timeout, std::uint32_t val3,
                   std::atomic<std::uint32_t>* word2 = nullptr) noexcept {
  // The atomic is layout-compatible with a plain uint32_t (static_assert in
  // the header); the kernel accesses the word atomically itself.
  auto* address = reinterpret_cast<std::uint32_t*>(&word);
  auto* address2 = reinterpret_cast<std::uint32_t*>(word2);
  return syscall(SYS_futex, address, op, val, timeout, address2, val3);
}

[[noreturn]] void fail(const char* what, int err) noexcept {
  std::fprintf(stderr, "libmp: %s failed: %s\n", what, std::strerror(err));
  std::abort();
}

}  // namespace

WaitResult wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                const Deadline* deadline) noexcept {
  timespec abs_time;
  const timespec* timeout = nullptr;
  if (deadline != nullptr && !deadline->is_never()) {
    const std::int64_t ns = deadline->monotonic_ns();
    abs_time.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    abs_time.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    timeout = &abs_time;
  }
  // FUTEX_WAIT_BITSET without FUTEX_CLOCK_REALTIME: the timeout is an absolute
  // CLOCK_MONOTONIC time. No FUTEX_PRIVATE_FLAG: the word may be shared with
  // other processes.
  for (;;) {
    const long rc =
        futex_syscall(word, FUTEX_WAIT_BITSET, expected, timeout, FUTEX_BITSET_MATCH_ANY);
    if (rc == 0) return WaitResult::kWoken;
    switch (errno) {
      case EINTR:
        continue;  // same absolute deadline: no drift
      case EAGAIN:
        return WaitResult::kValueChanged;
      case ETIMEDOUT:
        return WaitResult::kTimedOut;
      default:
        fail("futex(FUTEX_WAIT_BITSET)", errno);
    }
  }
}

int wake(std::atomic<std::uint32_t>& word, int n) noexcept {
  const long rc = futex_syscall(word, FUTEX_WAKE, static_cast<std::uint32_t>(n), nullptr, 0);
  if (rc < 0) fail("futex(FUTEX_WAKE)", errno);
  return static_cast<int>(rc);
}

int requeue(std::atomic<std::uint32_t>& from, std::uint32_t expected, int wake_n, int requeue_n,
            std::atomic<std::uint32_t>& to) noexcept {
  // FUTEX_CMP_REQUEUE passes the requeue count in the timeout argument.
  const auto* requeue_count =
      reinterpret_cast<const timespec*>(static_cast<std::uintptr_t>(requeue_n));
  for (;;) {
    const long rc = futex_syscall(from, FUTEX_CMP_REQUEUE, static_cast<std::uint32_t>(wake_n),
                                  requeue_count, expected, &to);
    if (rc >= 0) return static_cast<int>(rc);
    if (errno == EAGAIN) return -1;
    if (errno == EINTR) continue;
    fail("futex(FUTEX_CMP_REQUEUE)", errno);
  }
}

}  // namespace mp::platform::futex
