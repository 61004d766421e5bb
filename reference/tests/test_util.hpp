// Helpers for libmp's unit tests: bounded waits, forked children that are
// always reaped, pipe handshakes. Nothing here sleeps to synchronise; the only
// sleeps are the 1 ms steps of bounded polling loops.
#ifndef MP_TESTS_TEST_UTIL_HPP_
#define MP_TESTS_TEST_UTIL_HPP_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <thread>
#include <utility>

namespace mp_test {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Upper bound for anything that "must happen": generous on a noisy VM.
inline constexpr milliseconds kLiveness{10'000};
// How long a call must stay blocked for the test to call it "blocked".
inline constexpr milliseconds kStaysBlocked{100};
// Slack for the clock's resolution in lower-bound checks.
inline constexpr milliseconds kClockResolution{1};

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Every test of a binary that includes this header runs under a watchdog: the
// process dies of SIGALRM if one test takes longer than kTestWatchdogSeconds,
// so a hang becomes a failure instead of a stuck CTest run.
inline constexpr unsigned kTestWatchdogSeconds = 60;

class WatchdogPerTest : public testing::EmptyTestEventListener {
  void OnTestStart(const testing::TestInfo&) override { alarm(kTestWatchdogSeconds); }
  void OnTestEnd(const testing::TestInfo&) override { alarm(0); }
};

inline const bool kWatchdogInstalled = [] {
  testing::UnitTest::GetInstance()->listeners().Append(new WatchdogPerTest);
  return true;
}();

// A pipe for one-byte handshakes between a parent and its forked child.
class Pipe {
 public:
  Pipe() {
    if (pipe2(fds_, O_CLOEXEC) != 0) {
      std::perror("pipe2");
      std::abort();
    }
  }
  ~Pipe() {
    close(fds_[0]);
    close(fds_[1]);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  bool send(char c) { return write(fds_[1], &c, 1) == 1; }

  // Waits up to `timeout` for one byte; nullopt on timeout or EOF.
  std::optional<char> receive(milliseconds timeout = kLiveness) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left < 0) return std::nullopt;
      pollfd p{fds_[0], POLLIN, 0};
      const int rc = poll(&p, 1, static_cast<int>(left) + 1);
      if (rc < 0 && errno == EINTR) continue;
      if (rc <= 0) return std::nullopt;
      char c;
      const ssize_t n = read(fds_[0], &c, 1);
      if (n == 1) return c;
      if (n < 0 && errno == EINTR) continue;
      return std::nullopt;
    }
  }

 private:
  int fds_[2];
};

// A forked child process. The child runs `body`, which returns its exit code;
// an exception exits with 100. The child dies if the parent dies, and of
// SIGALRM after `watchdog_seconds`. The destructor kills (SIGKILL) and reaps a
// child that is still running, so no test leaves a child behind.
class Child {
 public:
  template <class Body>
  explicit Child(Body&& body, unsigned watchdog_seconds = 20) {
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) {
      std::perror("fork");
      std::abort();
    }
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(101);  // the parent died before prctl
      alarm(watchdog_seconds);
      int code = 100;
      try {
        code = std::forward<Body>(body)();
      } catch (...) {
      }
      _exit(code);  // never return into the test framework
    }
  }
  ~Child() {
    if (!reaped_) {
      kill(pid_, SIGKILL);
      int status;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  // Waits up to `timeout` for the child to end; returns its wait status, or
  // nullopt if it is still running.
  std::optional<int> wait_for(milliseconds timeout = kLiveness) {
    if (reaped_) return status_;
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      int status;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        status_ = status;
        return status;
      }
      if (r < 0 && errno != EINTR) return std::nullopt;
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(milliseconds(1));
    }
  }

  // True if the child is still running after `duration`.
  bool still_running_after(milliseconds duration) { return !wait_for(duration).has_value(); }

  // Waits for the child to exit; returns its exit code, or -signal if killed,
  // or 1000 if it did not end in time.
  int exit_code(milliseconds timeout = kLiveness) {
    const auto status = wait_for(timeout);
    if (!status) return 1000;
    if (WIFEXITED(*status)) return WEXITSTATUS(*status);
    if (WIFSIGNALED(*status)) return -WTERMSIG(*status);
    return 1001;
  }

  // Sends SIGKILL and reaps; returns true if the child died of it.
  bool kill_and_reap() {
    kill(pid_, SIGKILL);
    return exit_code() == -SIGKILL;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

}  // namespace mp_test

#endif  // MP_TESTS_TEST_UTIL_HPP_
