// Tests of mp::Process, mp::active_children(), mp::current_process() and
// mp::cpu_count(): CPython's rules for start, join, is_alive, exitcode,
// terminate/kill, sentinel, close and daemon, plus reaping (no zombies).
//
// Every child runs a bounded task (the longest sleeps 30 s and is killed long
// before). Each test's children are killed and joined by the fixture even
// when the test fails, and the fixture then checks that the test process has
// no child left at all, not even a zombie (waitpid(-1) -> ECHILD).
#include "mp/process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/platform/process.hpp"
#include "test_util.hpp"

namespace {

using mp_test::Clock;
using mp_test::kClockResolution;
using mp_test::kLiveness;
using mp_test::milliseconds;
using mp_test::seconds_since;

// A generous upper bound for calls that must not block.
constexpr double kQuick = 5.0;
// Tasks that "run until stopped" sleep this long at most.
constexpr const char* kLongSleep = "30";

// ---------------------------------------------------------------------------
// Tasks, registered once per test binary (fork children inherit them).
// ---------------------------------------------------------------------------

int task_exit_with(const mp::TaskArgs& args) { return std::stoi(args.at(0)); }

int task_sleep(const mp::TaskArgs& args) {
  const double seconds = std::min(std::stod(args.at(0)), 60.0);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return 0;
}

// args: {"mp" | "std" | "other", path}. Sends standard error to `path`, then
// throws.
int task_throw(const mp::TaskArgs& args) {
  const int fd = ::open(args.at(1).c_str(), O_WRONLY | O_TRUNC);
  if (fd < 0 || ::dup2(fd, STDERR_FILENO) < 0) return 50;
  ::close(fd);
  if (args.at(0) == "mp") throw mp::ValueError("boom");
  if (args.at(0) == "std") throw std::runtime_error("bang");
  throw 42;
}

// args: {signal number}. Sends the signal to itself.
int task_signal_self(const mp::TaskArgs& args) {
  ::kill(::getpid(), std::stoi(args.at(0)));
  std::this_thread::sleep_for(std::chrono::seconds(10));
  return 99;
}

// args: {expected daemon flag "0"/"1"}. Checks current_process() in a child.
int task_check_current(const mp::TaskArgs& args) {
  mp::Process self = mp::current_process();
  if (!(self == mp::current_process())) return 10;
  if (self.name().rfind("Process-", 0) != 0) return 11;
  if (self.pid() != ::getpid()) return 12;
  if (!self.is_alive()) return 13;
  if (self.exitcode().has_value()) return 14;
  if (self.daemon() != (args.at(0) == "1")) return 15;
  try {
    self.join();
    return 16;
  } catch (const mp::AssertionError& e) {
    if (std::string(e.what()) != "can only join a child process") return 17;
  }
  try {
    self.join(0.0);
    return 18;
  } catch (const mp::AssertionError&) {
  }
  try {
    (void)self.sentinel();
    return 19;
  } catch (const mp::ValueError& e) {
    if (std::string(e.what()) != "process not started") return 20;
  }
  try {
    self.start();
    return 21;
  } catch (const mp::AssertionError& e) {
    if (std::string(e.what()) != "can only start a process object created by current process") {
      return 22;
    }
  }
  return 0;
}

// A non-daemonic child: has no children of its own at first, numbers its
// processes from 1, and can start, list, kill and join grandchildren (exit
// status 5 from the last one).
int task_start_grandchild(const mp::TaskArgs&) {
  if (!mp::active_children().empty()) return 30;
  mp::Process child("exit_with", {"5"});
  if (child.name() != mp::current_process().name() + ":1") return 31;
  if (child.daemon()) return 32;
  mp::Process sleeper("sleep", {kLongSleep});
  if (sleeper.name() != mp::current_process().name() + ":2") return 35;
  sleeper.start();
  const std::vector<mp::Process> children = mp::active_children();
  if (children.size() != 1 || !(children[0] == sleeper)) return 33;
  sleeper.kill();
  sleeper.join(20.0);
  if (sleeper.exitcode() != -SIGKILL) return 36;
  child.start();
  child.join(20.0);
  const auto code = child.exitcode();
  if (!code) return 34;
  return *code;
}

// In a daemonic process: starting a child fails (inherited daemon flag, or
// not), and exits 7 if both attempts threw the expected AssertionError.
int task_start_in_daemon(const mp::TaskArgs&) {
  mp::Process inherits("exit_with", {"0"});
  if (!inherits.daemon()) return 40;
  mp::Process explicit_flag("exit_with", {"0"}, {.daemon = false});
  for (mp::Process* p : {&inherits, &explicit_flag}) {
    try {
      p->start();
      p->join(20.0);
      return 41;
    } catch (const mp::AssertionError& e) {
      if (std::string(e.what()) != "daemonic processes are not allowed to have children") {
        return 42;
      }
    }
  }
  return 7;
}

// args: {write fd, read fd}. Starts a daemonic sleeper, sends its pid, waits
// for one byte, then returns (the child's exit path must terminate it).
int task_daemon_then_return(const mp::TaskArgs& args) {
  const int out = std::stoi(args.at(0));
  const int in = std::stoi(args.at(1));
  mp::Process sleeper("sleep", {kLongSleep}, {.daemon = true});
  sleeper.start();
  const pid_t pid = *sleeper.pid();
  if (::write(out, &pid, sizeof pid) != static_cast<ssize_t>(sizeof pid)) return 60;
  pollfd p{in, POLLIN, 0};
  if (::poll(&p, 1, 20'000) != 1) return 61;
  return 0;
}

// Standard input of a child is /dev/null.
int task_check_stdin(const mp::TaskArgs&) {
  char target[64] = {};
  if (::readlink("/proc/self/fd/0", target, sizeof target - 1) < 0) return 70;
  if (std::string(target) != "/dev/null") return 71;
  pollfd p{STDIN_FILENO, POLLIN, 0};
  if (::poll(&p, 1, 5'000) != 1) return 72;
  char c;
  if (::read(STDIN_FILENO, &c, 1) != 0) return 73;
  return 0;
}

// Lowercase hex of a byte string.
std::string hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// Writes all of `text` to `fd`; false on failure.
bool write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// args: {fd}. Writes one line describing the child as it sees itself:
// name|daemon|pid|authkey (hex)|parent name|parent pid|parent alive|stdin
int task_report_self(const mp::TaskArgs& args) {
  const int fd = std::stoi(args.at(0));
  mp::Process self = mp::current_process();
  const auto parent = mp::parent_process();
  char target[64] = {};
  const ssize_t n = ::readlink("/proc/self/fd/0", target, sizeof target - 1);
  std::string line = self.name() + "|" + (self.daemon() ? "1" : "0") + "|" +
                     std::to_string(::getpid()) + "|" + hex(self.authkey()) + "|";
  if (parent) {
    line += parent->name() + "|" + std::to_string(parent->pid()) + "|" +
            (parent->is_alive() ? "1" : "0");
  } else {
    line += "||";
  }
  line += std::string("|") + (n > 0 ? target : "?") + "\n";
  return write_all(fd, line) ? 0 : 80;
}

// args: {fd}. Reports parent_process().is_alive() ('1'/'0'), joins the parent
// (no limit), then reports is_alive() again.
int task_watch_parent(const mp::TaskArgs& args) {
  const int fd = std::stoi(args.at(0));
  const auto parent = mp::parent_process();
  if (!parent) return 81;
  if (!write_all(fd, parent->is_alive() ? "1" : "0")) return 82;
  parent->join();
  return write_all(fd, parent->is_alive() ? "1" : "0") ? 0 : 83;
}

// args: {pid fd, watcher fd, "fork" | "spawn"}. Starts a non-daemonic
// watch_parent grandchild with the given start method, writes its pid to the
// pid fd, then sleeps until killed.
int task_start_watcher(const mp::TaskArgs& args) {
  const int pid_fd = std::stoi(args.at(0));
  const int watcher_fd = std::stoi(args.at(1));
  mp::ProcessOptions options;
  options.start_method = args.at(2) == "spawn" ? mp::StartMethod::kSpawn : mp::StartMethod::kFork;
  options.pass_fds = {watcher_fd};
  mp::Process watcher("watch_parent", {args.at(1)}, options);
  watcher.start();
  const pid_t pid = *watcher.pid();
  if (::write(pid_fd, &pid, sizeof pid) != static_cast<ssize_t>(sizeof pid)) return 84;
  std::this_thread::sleep_for(std::chrono::seconds(30));
  return 85;
}

// args: {fd}. Exit status 0 if `fd` is closed in this process, else 3.
int task_check_fd_closed(const mp::TaskArgs& args) {
  return ::fcntl(std::stoi(args.at(0)), F_GETFD) < 0 && errno == EBADF ? 0 : 3;
}

const mp::TaskRegistration kTasks[] = {
    {"exit_with", &task_exit_with},
    {"sleep", &task_sleep},
    {"throw", &task_throw},
    {"signal_self", &task_signal_self},
    {"check_current", &task_check_current},
    {"start_grandchild", &task_start_grandchild},
    {"start_in_daemon", &task_start_in_daemon},
    {"daemon_then_return", &task_daemon_then_return},
    {"check_stdin", &task_check_stdin},
    {"report_self", &task_report_self},
    {"watch_parent", &task_watch_parent},
    {"start_watcher", &task_start_watcher},
    {"check_fd_closed", &task_check_fd_closed},
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

// Expects `call` to throw exception type E with message `message`.
template <class E, class F>
void expect_throw(F&& call, const std::string& message, const char* kind) {
  try {
    call();
    ADD_FAILURE() << "no exception; expected " << kind << ": " << message;
  } catch (const E& e) {
    EXPECT_STREQ(e.kind(), kind);
    EXPECT_EQ(std::string(e.what()), message);
  }
}

#define EXPECT_MP_THROW(statement, Type, message) \
  expect_throw<mp::Type>([&] { statement; }, message, #Type)

// Polls `fd` for readability, waiting up to `timeout`.
bool readable_within(int fd, milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    const int rc = ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

// Whether `pid` is no child of ours (ended and reaped), checked without
// reaping it.
bool not_a_child(pid_t pid) {
  siginfo_t info;
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == -1 &&
         errno == ECHILD;
}

// A pipe whose descriptors children inherit through fork().
struct RawPipe {
  RawPipe() { EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0); }
  ~RawPipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  RawPipe(const RawPipe&) = delete;
  RawPipe& operator=(const RawPipe&) = delete;
  int read_end() const { return fds[0]; }
  int write_end() const { return fds[1]; }
  // Reads one pid, waiting up to kLiveness; -1 on failure.
  pid_t read_pid() const {
    if (!readable_within(fds[0], kLiveness)) return -1;
    pid_t pid = -1;
    if (::read(fds[0], &pid, sizeof pid) != static_cast<ssize_t>(sizeof pid)) return -1;
    return pid;
  }
  int fds[2] = {-1, -1};
};

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// The numeric part of a default name "Process-N".
long name_number(const std::string& name) {
  EXPECT_EQ(name.rfind("Process-", 0), 0u) << name;
  return std::stol(name.substr(8));
}

// Kills and joins every process a test made, even when the test fails, and
// then checks that the test process has no child left (zombies included).
class ProcessTest : public ::testing::Test {
 protected:
  // A new Process that the fixture cleans up.
  mp::Process make(std::string task, mp::TaskArgs args = {}, mp::ProcessOptions options = {}) {
    processes_.emplace_back(std::move(task), std::move(args), std::move(options));
    return processes_.back();
  }

  void TearDown() override {
    reap_everything();
    errno = 0;
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child is left";
    EXPECT_EQ(errno, ECHILD);
  }

  ~ProcessTest() override { reap_everything(); }

 private:
  static void stop(mp::Process& p) {
    try {
      if (p.pid() && p.is_alive()) {
        p.kill();
        p.join(10.0);
      }
    } catch (const std::exception&) {
      // closed, unstarted or not ours: nothing to reap
    }
  }

  void reap_everything() {
    for (mp::Process& p : processes_) stop(p);
    try {
      for (mp::Process& p : mp::active_children()) stop(p);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "active_children(): " << e.what();
    }
  }

  std::vector<mp::Process> processes_;
};

// ---------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------

TEST_F(ProcessTest, RegisterTaskRejectsDuplicatesAndEmptyNames) {
  EXPECT_TRUE(mp::is_task_registered("exit_with"));
  EXPECT_FALSE(mp::is_task_registered("no such task"));
  EXPECT_THROW(mp::register_task("exit_with", &task_exit_with), mp::ValueError);
  EXPECT_THROW(mp::register_task("", &task_exit_with), mp::ValueError);
  EXPECT_THROW(mp::register_task("empty function", mp::Task{}), mp::ValueError);
  EXPECT_FALSE(mp::is_task_registered("empty function"));
}

TEST_F(ProcessTest, UnknownTaskFailsAtStartAndLeavesProcessUnstarted) {
  static int round = 0;  // a new name for each --gtest_repeat round
  const std::string name = "registered late " + std::to_string(++round);
  mp::Process p = make(name, {"4"});  // no check at construction
  EXPECT_MP_THROW(p.start(), ProcessError, "no task named '" + name + "' is registered");
  EXPECT_FALSE(p.pid().has_value());
  EXPECT_FALSE(p.is_alive());
  mp::register_task(name, &task_exit_with);
  p.start();
  p.join(kLiveness.count() / 1000.0);
  EXPECT_EQ(p.exitcode(), 4);
}

TEST_F(ProcessTest, TaskArgumentsReachTheChild) {
  mp::Process p = make("exit_with", {"42"});
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 42);
}

// ---------------------------------------------------------------------------
// Exit codes
// ---------------------------------------------------------------------------

TEST_F(ProcessTest, ExitCodeIsTheTaskResultTruncatedTo8Bits) {
  const std::pair<const char*, int> cases[] = {{"0", 0},   {"3", 3},   {"255", 255},
                                               {"256", 0}, {"257", 1}, {"-1", 255}};
  for (const auto& [arg, expected] : cases) {
    mp::Process p = make("exit_with", {arg});
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), expected) << "task returned " << arg;
    EXPECT_FALSE(p.is_alive());
    EXPECT_TRUE(not_a_child(*p.pid()));
  }
}

TEST_F(ProcessTest, ExceptionInTaskPrintsTracebackAndExits1) {
  char path[] = "/tmp/mp_process_test_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  const std::pair<const char*, const char*> cases[] = {
      {"mp", "ValueError: boom"},
      {"std", "std::runtime_error: bang"},
      {"other", "unknown exception"},
  };
  for (const auto& [which, last_line] : cases) {
    mp::Process p = make("throw", {which, path});
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 1) << which;
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    const std::string expected = "Process " + p.name() +
                                 ":\nTraceback (most recent call last):\n  task 'throw' (C++: "
                                 "no stack trace)\n" +
                                 last_line + "\n";
    EXPECT_EQ(text.str(), expected) << which;
  }
  ::unlink(path);
}

TEST_F(ProcessTest, KilledBySignalGivesMinusSignalNumber) {
  for (const int sig : {SIGKILL, SIGUSR1, SIGTERM}) {
    mp::Process p = make("signal_self", {std::to_string(sig)});
    p.start();
    p.join(kLiveness.count() / 1000.0);
    EXPECT_EQ(p.exitcode(), -sig) << "signal " << sig;
  }
}

// ---------------------------------------------------------------------------
// Unstarted processes, names, start
// ---------------------------------------------------------------------------

TEST_F(ProcessTest, UnstartedProcessRules) {
  mp::Process p = make("exit_with", {"0"});
  EXPECT_FALSE(p.pid().has_value());
  EXPECT_FALSE(p.exitcode().has_value());
  EXPECT_FALSE(p.is_alive());
  EXPECT_FALSE(p.daemon());
  EXPECT_MP_THROW(p.join(), AssertionError, "can only join a started process");
  EXPECT_MP_THROW(p.join(0.0), AssertionError, "can only join a started process");
  EXPECT_MP_THROW((void)p.sentinel(), ValueError, "process not started");
  EXPECT_THROW(p.terminate(), mp::AttributeError);
  EXPECT_THROW(p.kill(), mp::AttributeError);
  p.set_daemon(true);  // allowed before start
  EXPECT_TRUE(p.daemon());
}

TEST_F(ProcessTest, DefaultNamesCountUpAndCustomNamesStick) {
  mp::Process a = make("exit_with", {"0"});
  mp::Process b = make("exit_with", {"0"});
  EXPECT_EQ(name_number(b.name()), name_number(a.name()) + 1);
  mp::Process c = make("exit_with", {"0"}, {.name = "worker"});
  EXPECT_EQ(c.name(), "worker");
  mp::Process d = make("exit_with", {"0"});
  EXPECT_EQ(name_number(d.name()), name_number(a.name()) + 3);  // c used a number too
  d.set_name("renamed");
  EXPECT_EQ(d.name(), "renamed");
  mp::Process copy = d;  // a handle to the same process
  EXPECT_TRUE(copy == d);
  EXPECT_FALSE(copy == a);
  copy.set_name("again");
  EXPECT_EQ(d.name(), "again");
}

TEST_F(ProcessTest, StartingTwiceIsAnAssertionError) {
  mp::Process p = make("sleep", {kLongSleep});
  p.start();
  EXPECT_MP_THROW(p.start(), AssertionError, "cannot start a process twice");
  p.kill();
  p.join();
  EXPECT_MP_THROW(p.start(), AssertionError, "cannot start a process twice");
}

TEST_F(ProcessTest, ChildStandardInputIsDevNull) {
  mp::Process p = make("check_stdin");
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

// ---------------------------------------------------------------------------
// join
// ---------------------------------------------------------------------------

TEST_F(ProcessTest, JoinWithoutTimeoutWaitsForTheEnd) {
  const auto start = Clock::now();
  mp::Process p = make("sleep", {"0.3"});
  p.start();
  p.join();
  EXPECT_GE(seconds_since(start), 0.3);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_FALSE(p.is_alive());
  p.join();  // again: returns at once
  p.join(0.0);
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(ProcessTest, JoinWithPositiveTimeoutReturnsWhenTheProcessEnds) {
  mp::Process p = make("sleep", {"0.2"});
  p.start();
  const auto start = Clock::now();
  p.join(kLiveness.count() / 1000.0);
  EXPECT_LT(seconds_since(start), kLiveness.count() / 1000.0);
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(ProcessTest, JoinTimeoutsOnARunningProcess) {
  mp::Process p = make("sleep", {kLongSleep});
  p.start();

  for (const double t : {0.0, -1.0, -std::numeric_limits<double>::infinity()}) {
    const auto start = Clock::now();
    p.join(t);  // polls
    EXPECT_LT(seconds_since(start), kQuick) << t;
    EXPECT_TRUE(p.is_alive());
    EXPECT_FALSE(p.exitcode().has_value());
  }

  const auto start = Clock::now();
  p.join(0.2);
  EXPECT_GE(seconds_since(start), 0.2 - std::chrono::duration<double>(kClockResolution).count());
  EXPECT_TRUE(p.is_alive());
  EXPECT_FALSE(p.exitcode().has_value());

  EXPECT_MP_THROW(p.join(std::nan("")), ValueError, "timeout must not be NaN");

  p.kill();
  p.join(std::numeric_limits<double>::infinity());
  EXPECT_EQ(p.exitcode(), -SIGKILL);
}

TEST_F(ProcessTest, JoiningTheCurrentProcessIsAnAssertionError) {
  EXPECT_MP_THROW(mp::current_process().join(), AssertionError, "can only join a child process");
  EXPECT_MP_THROW(mp::current_process().join(0.0), AssertionError, "can only join a child process");
}

TEST_F(ProcessTest, ConcurrentJoinsAndPollsAgree) {
  mp::Process p = make("sleep", {"0.3"});
  p.start();
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    p.join();
    ++done;
  });
  threads.emplace_back([&] {
    p.join(kLiveness.count() / 1000.0);
    ++done;
  });
  threads.emplace_back([&] {
    const auto deadline = Clock::now() + kLiveness;
    while (p.is_alive() && Clock::now() < deadline) {
      (void)mp::active_children();
      (void)p.exitcode();
      std::this_thread::sleep_for(milliseconds(1));
    }
    ++done;
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(done.load(), 3);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_TRUE(not_a_child(*p.pid()));
}

// ---------------------------------------------------------------------------
// terminate, kill, sentinel
// ---------------------------------------------------------------------------

TEST_F(ProcessTest, TerminateAndKill) {
  const std::pair<void (mp::Process::*)(), int> cases[] = {{&mp::Process::terminate, SIGTERM},
                                                           {&mp::Process::kill, SIGKILL}};
  for (const auto& [method, sig] : cases) {
    mp::Process p = make("sleep", {kLongSleep});
    p.start();
    EXPECT_TRUE(p.is_alive());
    const auto start = Clock::now();
    (p.*method)();
    p.join(kLiveness.count() / 1000.0);
    EXPECT_LT(seconds_since(start), kLiveness.count() / 1000.0);
    EXPECT_EQ(p.exitcode(), -sig);
    EXPECT_FALSE(p.is_alive());
    // Once reaped: no-ops, the exit code stays.
    p.terminate();
    p.kill();
    EXPECT_EQ(p.exitcode(), -sig);
  }
}

TEST_F(ProcessTest, SentinelBecomesReadableWhenTheProcessEnds) {
  mp::Process p = make("sleep", {kLongSleep});
  p.start();
  const int fd = p.sentinel();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(p.sentinel(), fd);  // stable
  const int flags = ::fcntl(fd, F_GETFD);
  ASSERT_GE(flags, 0);
  EXPECT_TRUE(flags & FD_CLOEXEC);
  EXPECT_FALSE(readable_within(fd, milliseconds(50)));
  p.terminate();
  EXPECT_TRUE(readable_within(fd, kLiveness));
  // Readable does not reap; join does, and the sentinel stays readable.
  p.join(kQuick);
  EXPECT_EQ(p.exitcode(), -SIGTERM);
  EXPECT_TRUE(readable_within(fd, milliseconds(0)));

  mp::Process q = make("exit_with", {"0"});
  q.start();
  EXPECT_TRUE(readable_within(q.sentinel(), kLiveness));  // without any join
  q.join(0.0);
  EXPECT_EQ(q.exitcode(), 0);
}

// ---------------------------------------------------------------------------
// close
// ---------------------------------------------------------------------------

TEST_F(ProcessTest, CloseRules) {
  mp::Process p = make("sleep", {kLongSleep}, {.name = "closing"});
  p.start();
  EXPECT_MP_THROW(p.close(), ValueError,
                  "Cannot close a process while it is still running. You should first call "
                  "join() or terminate().");
  EXPECT_TRUE(p.is_alive());  // still usable
  p.kill();
  p.join();
  const int fd = p.sentinel();
  p.close();
  errno = 0;
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // the sentinel is closed
  EXPECT_EQ(errno, EBADF);

  const std::string closed = "process object is closed";
  EXPECT_MP_THROW((void)p.pid(), ValueError, closed);
  EXPECT_MP_THROW((void)p.exitcode(), ValueError, closed);
  EXPECT_MP_THROW((void)p.is_alive(), ValueError, closed);
  EXPECT_MP_THROW(p.join(), ValueError, closed);
  EXPECT_MP_THROW(p.join(0.0), ValueError, closed);
  EXPECT_MP_THROW(p.terminate(), ValueError, closed);
  EXPECT_MP_THROW(p.kill(), ValueError, closed);
  EXPECT_MP_THROW((void)p.sentinel(), ValueError, closed);
  EXPECT_MP_THROW(p.start(), ValueError, closed);
  EXPECT_EQ(p.name(), "closing");
  EXPECT_FALSE(p.daemon());
  p.set_daemon(true);  // as in CPython: allowed again once closed
  p.close();           // idempotent

  mp::Process unstarted = make("exit_with", {"0"});
  unstarted.close();
  EXPECT_MP_THROW(unstarted.start(), ValueError, closed);
  EXPECT_FALSE(mp::active_children().size() > 0);
}

// ---------------------------------------------------------------------------
// daemon
// ---------------------------------------------------------------------------

TEST_F(ProcessTest, DaemonFlagRules) {
  mp::Process p = make("sleep", {kLongSleep});
  EXPECT_FALSE(p.daemon());  // inherited from the main process
  p.set_daemon(true);
  p.start();
  EXPECT_TRUE(p.daemon());
  EXPECT_MP_THROW(p.set_daemon(false), AssertionError, "process has already started");
  EXPECT_TRUE(p.daemon());
  mp::Process q = make("exit_with", {"0"}, {.daemon = true});
  EXPECT_TRUE(q.daemon());
}

TEST_F(ProcessTest, DaemonicProcessCannotStartChildren) {
  mp::Process p = make("start_in_daemon", {}, {.daemon = true});
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 7);
}

TEST_F(ProcessTest, ChildEndTerminatesItsDaemonicChildren) {
  RawPipe to_parent;
  RawPipe to_child;
  mp::Process p = make("daemon_then_return", {std::to_string(to_parent.write_end()),
                                              std::to_string(to_child.read_end())});
  p.start();
  const pid_t grandchild = to_parent.read_pid();
  ASSERT_GT(grandchild, 0);
  const int pidfd = pidfd_open(grandchild);
  ASSERT_GE(pidfd, 0) << "the daemonic grandchild ended too early";
  EXPECT_FALSE(readable_within(pidfd, milliseconds(50)));  // it sleeps
  const char ack = 'x';
  ASSERT_EQ(::write(to_child.write_end(), &ack, 1), 1);
  const auto start = Clock::now();
  p.join(kLiveness.count() / 1000.0);
  EXPECT_LT(seconds_since(start), kLiveness.count() / 1000.0);
  EXPECT_EQ(p.exitcode(), 0);
  // The child terminated and reaped its daemonic child before it exited.
  EXPECT_TRUE(readable_within(pidfd, milliseconds(0)));
  ::close(pidfd);
}

TEST_F(ProcessTest, ExitHandlerTerminatesDaemonsAndJoinsTheRest) {
  RawPipe pids;
  mp_test::Pipe ack;
  mp_test::Child parent([&] {
    mp::Process daemonic("sleep", {kLongSleep}, {.daemon = true});
    mp::Process plain("sleep", {"0.3"});
    daemonic.start();
    plain.start();
    const pid_t both[2] = {*daemonic.pid(), *plain.pid()};
    if (::write(pids.write_end(), both, sizeof both) != static_cast<ssize_t>(sizeof both)) {
      return 2;
    }
    if (!ack.receive()) return 3;
    std::exit(0);  // runs the atexit handler
  });
  ASSERT_TRUE(readable_within(pids.read_end(), kLiveness));
  pid_t both[2] = {-1, -1};
  ASSERT_EQ(::read(pids.read_end(), both, sizeof both), static_cast<ssize_t>(sizeof both));
  const int daemonic = pidfd_open(both[0]);
  const int plain = pidfd_open(both[1]);
  ASSERT_GE(daemonic, 0);
  ASSERT_GE(plain, 0);  // sleeps 0.3 s from its start
  EXPECT_FALSE(readable_within(daemonic, milliseconds(0)));
  ASSERT_TRUE(ack.send('g'));
  EXPECT_EQ(parent.exit_code(), 0);
  // Both had ended when their parent exited: the daemonic one terminated (it
  // would have slept 30 s), the other joined.
  EXPECT_TRUE(readable_within(daemonic, milliseconds(0)));
  EXPECT_TRUE(readable_within(plain, milliseconds(0)));
  ::close(daemonic);
  ::close(plain);
}

// ---------------------------------------------------------------------------
// current_process, active_children, foreign processes
// ---------------------------------------------------------------------------

TEST_F(ProcessTest, CurrentProcessInTheMainProcess) {
  mp::Process self = mp::current_process();
  EXPECT_TRUE(self == mp::current_process());
  EXPECT_EQ(self.name(), "MainProcess");
  EXPECT_EQ(self.pid(), ::getpid());
  EXPECT_TRUE(self.is_alive());
  EXPECT_FALSE(self.exitcode().has_value());
  EXPECT_FALSE(self.daemon());
  EXPECT_MP_THROW((void)self.sentinel(), ValueError, "process not started");
  EXPECT_MP_THROW(self.start(), AssertionError,
                  "can only start a process object created by current process");
}

TEST_F(ProcessTest, CurrentProcessInAChild) {
  for (const bool daemonic : {false, true}) {
    mp::Process p = make("check_current", {daemonic ? "1" : "0"}, {.daemon = daemonic});
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0) << "daemon " << daemonic;
  }
}

TEST_F(ProcessTest, ChildStartsWithNoChildrenAndNumbersFromOne) {
  mp::Process sibling = make("sleep", {kLongSleep});
  sibling.start();  // a child of ours, not of the next one
  mp::Process p = make("start_grandchild");
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 5);
}

TEST_F(ProcessTest, ActiveChildrenListsLiveChildrenAndReapsTheRest) {
  mp::Process a = make("sleep", {kLongSleep});
  mp::Process b = make("sleep", {kLongSleep});
  mp::Process c = make("exit_with", {"0"});
  a.start();
  b.start();
  c.start();
  ASSERT_TRUE(readable_within(c.sentinel(), kLiveness));
  const pid_t c_pid = *c.pid();
  EXPECT_FALSE(not_a_child(c_pid));  // ended, not reaped yet

  std::vector<mp::Process> children = mp::active_children();
  ASSERT_EQ(children.size(), 2u);
  EXPECT_TRUE(children[0] == a);
  EXPECT_TRUE(children[1] == b);
  EXPECT_TRUE(not_a_child(c_pid));  // reaped by active_children()
  EXPECT_EQ(c.exitcode(), 0);
  EXPECT_FALSE(c.is_alive());

  a.kill();
  a.join();
  children = mp::active_children();
  ASSERT_EQ(children.size(), 1u);
  EXPECT_TRUE(children[0] == b);
}

TEST_F(ProcessTest, DroppedHandlesAreReapedByActiveChildrenAndStart) {
  pid_t dropped_pid;
  int sentinel;
  {
    mp::Process dropped("exit_with", {"0"});  // not kept by the fixture
    dropped.start();
    dropped_pid = *dropped.pid();
    sentinel = dropped.sentinel();  // stays open while libmp tracks the child
  }
  ASSERT_TRUE(readable_within(sentinel, kLiveness));
  EXPECT_FALSE(not_a_child(dropped_pid));
  EXPECT_TRUE(mp::active_children().empty());
  EXPECT_TRUE(not_a_child(dropped_pid));

  {
    mp::Process dropped("exit_with", {"0"});
    dropped.start();
    dropped_pid = *dropped.pid();
    sentinel = dropped.sentinel();
  }
  ASSERT_TRUE(readable_within(sentinel, kLiveness));
  mp::Process next = make("exit_with", {"0"});
  next.start();  // reaps finished children first
  EXPECT_TRUE(not_a_child(dropped_pid));
  next.join();
}

TEST_F(ProcessTest, ForeignProcessRules) {
  mp::Process unstarted = make("exit_with", {"0"});
  mp::Process running = make("sleep", {kLongSleep});
  running.start();
  mp_test::Child other([&] {
    int failures = 0;
    try {
      unstarted.start();
      failures |= 1;
    } catch (const mp::AssertionError& e) {
      if (std::string(e.what()) != "can only start a process object created by current process") {
        failures |= 1;
      }
    }
    try {
      running.join(0.0);
      failures |= 2;
    } catch (const mp::AssertionError& e) {
      if (std::string(e.what()) != "can only join a child process") failures |= 2;
    }
    try {
      (void)running.is_alive();
      failures |= 4;
    } catch (const mp::AssertionError& e) {
      if (std::string(e.what()) != "can only test a child process") failures |= 4;
    }
    if (running.exitcode().has_value()) failures |= 8;  // never reaps here
    if (!mp::active_children().empty()) failures |= 16;
    if (mp::current_process().name() != "MainProcess") failures |= 32;
    return failures;
  });
  EXPECT_EQ(other.exit_code(), 0);
  EXPECT_TRUE(running.is_alive());  // the foreign process did not touch it
}

TEST_F(ProcessTest, NoZombiesAfterManyChildren) {
  std::vector<mp::Process> ps;
  for (int i = 0; i < 8; ++i) {
    ps.push_back(make("exit_with", {std::to_string(i)}));
    ps.back().start();
  }
  for (int i = 0; i < 8; ++i) {
    ps[static_cast<std::size_t>(i)].join();
    EXPECT_EQ(ps[static_cast<std::size_t>(i)].exitcode(), i);
  }
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

// The fallback for kernels without pidfd_open: a pipe whose write end only
// the child holds.
TEST_F(ProcessTest, PipeSentinelFallback) {
  struct Force {
    Force() { mp::platform::force_pipe_sentinels_for_testing(true); }
    ~Force() { mp::platform::force_pipe_sentinels_for_testing(false); }
  } force;
  for (int round = 0; round < 20; ++round) {  // EOF comes just before the zombie
    mp::Process p = make("exit_with", {"3"});
    p.start();
    p.join();
    ASSERT_EQ(p.exitcode(), 3);
  }
  mp::Process q = make("exit_with", {"4"});
  q.start();
  ASSERT_TRUE(readable_within(q.sentinel(), kLiveness));
  q.join(kQuick);
  EXPECT_EQ(q.exitcode(), 4);

  mp::Process p = make("sleep", {kLongSleep});
  p.start();
  const int fd = p.sentinel();
  EXPECT_FALSE(readable_within(fd, milliseconds(50)));
  const auto start = Clock::now();
  p.join(0.2);
  EXPECT_GE(seconds_since(start), 0.2 - std::chrono::duration<double>(kClockResolution).count());
  EXPECT_TRUE(p.is_alive());
  p.terminate();
  EXPECT_TRUE(readable_within(fd, kLiveness));
  p.join(kLiveness.count() / 1000.0);
  EXPECT_EQ(p.exitcode(), -SIGTERM);
  p.kill();  // reaped: no-op
  p.close();
}

TEST_F(ProcessTest, DroppedProcessesReleaseTheirSentinels) {
  const auto open_fds = [] {
    int n = 0;
    for (int fd = 0; fd < 1024; ++fd) n += ::fcntl(fd, F_GETFD) >= 0;
    return n;
  };
  const int before = open_fds();
  {
    std::vector<mp::Process> ps;
    for (int i = 0; i < 5; ++i) {
      ps.emplace_back("exit_with", mp::TaskArgs{"0"});
      ps.back().start();
    }
    for (auto& p : ps) p.join();
    EXPECT_EQ(open_fds(), before + 5);
  }
  EXPECT_EQ(open_fds(), before);
}

// ---------------------------------------------------------------------------
// parent_process, authkey, spawn, start methods
// ---------------------------------------------------------------------------

// Reads one '\n'-terminated line from `fd`, waiting up to kLiveness; "" on
// failure.
std::string read_line(int fd) {
  std::string line;
  char c;
  while (readable_within(fd, kLiveness) && ::read(fd, &c, 1) == 1) {
    if (c == '\n') return line;
    line += c;
  }
  return "";
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out(1);
  for (char c : text) {
    if (c == sep) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

mp::ProcessOptions with_method(mp::StartMethod method, std::vector<int> pass_fds = {},
                               std::optional<bool> daemon = std::nullopt) {
  mp::ProcessOptions o;
  o.start_method = method;
  o.pass_fds = std::move(pass_fds);
  o.daemon = daemon;
  return o;
}

constexpr mp::StartMethod kMethods[] = {mp::StartMethod::kFork, mp::StartMethod::kSpawn};

TEST_F(ProcessTest, ParentProcessInTheMainProcessIsNone) {
  EXPECT_FALSE(mp::parent_process().has_value());
}

TEST_F(ProcessTest, AuthkeyOfTheMainProcess) {
  const std::string key = mp::current_process().authkey();
  EXPECT_EQ(key.size(), 32u);
  EXPECT_EQ(mp::current_process().authkey(), key) << "drawn once";
  mp::Process p = make("exit_with", {"0"});
  EXPECT_EQ(p.authkey(), key) << "a new Process copies its creator's key";
  p.set_authkey("other");
  EXPECT_EQ(p.authkey(), "other");
  EXPECT_EQ(mp::current_process().authkey(), key);
}

TEST_F(ProcessTest, ChildDescribesItselfAndItsParent) {
  const std::string main_key = mp::current_process().authkey();
  for (mp::StartMethod method : kMethods) {
    for (bool daemonic : {false, true}) {
      SCOPED_TRACE(std::string(mp::start_method_name(method)) + (daemonic ? " daemon" : ""));
      RawPipe pipe;
      mp::Process p = make("report_self", {std::to_string(pipe.write_end())},
                           with_method(method, {pipe.write_end()}, daemonic));
      p.set_name(std::string("child-") + mp::start_method_name(method));
      if (daemonic) p.set_authkey(std::string("k\0y", 3));
      p.start();
      EXPECT_EQ(p.start_method(), method);
      const std::vector<std::string> f = split(read_line(pipe.read_end()), '|');
      ASSERT_EQ(f.size(), 8u);
      EXPECT_EQ(f[0], p.name());
      EXPECT_EQ(f[1], daemonic ? "1" : "0");
      EXPECT_EQ(f[2], std::to_string(*p.pid()));
      EXPECT_EQ(f[3], hex(daemonic ? std::string("k\0y", 3) : main_key));
      EXPECT_EQ(f[4], "MainProcess");
      EXPECT_EQ(f[5], std::to_string(::getpid()));
      EXPECT_EQ(f[6], "1") << "the parent is alive";
      EXPECT_EQ(f[7], "/dev/null");
      p.join(kLiveness.count() / 1000.0);
      EXPECT_EQ(p.exitcode(), 0);
    }
  }
}

TEST_F(ProcessTest, ParentProcessJoinWaitsForTheParentToEnd) {
  for (mp::StartMethod child_method : kMethods) {
    for (mp::StartMethod grandchild_method : kMethods) {
      SCOPED_TRACE(std::string(mp::start_method_name(child_method)) + " then " +
                   mp::start_method_name(grandchild_method));
      RawPipe pids;
      RawPipe watch;
      mp::Process child = make("start_watcher",
                               {std::to_string(pids.write_end()), std::to_string(watch.write_end()),
                                mp::start_method_name(grandchild_method)},
                               with_method(child_method, {pids.write_end(), watch.write_end()}));
      child.start();
      const pid_t grandchild = pids.read_pid();
      ASSERT_GT(grandchild, 0);
      char c = 0;
      ASSERT_TRUE(readable_within(watch.read_end(), kLiveness));
      ASSERT_EQ(::read(watch.read_end(), &c, 1), 1);
      EXPECT_EQ(c, '1') << "parent_process().is_alive() while the parent runs";
      EXPECT_FALSE(readable_within(watch.read_end(), milliseconds(100)))
          << "parent_process().join() returned while the parent runs";
      child.kill();
      child.join(kLiveness.count() / 1000.0);
      EXPECT_EQ(child.exitcode(), -SIGKILL);
      ASSERT_TRUE(readable_within(watch.read_end(), kLiveness))
          << "parent_process().join() did not return after the parent ended";
      ASSERT_EQ(::read(watch.read_end(), &c, 1), 1);
      EXPECT_EQ(c, '0') << "parent_process().is_alive() after the parent ended";
      // The orphan has returned from its task; make sure it is gone.
      const int fd = pidfd_open(grandchild);
      if (fd >= 0) {
        EXPECT_TRUE(readable_within(fd, kLiveness)) << "the grandchild did not end";
        ::close(fd);
      }
    }
  }
}

TEST_F(ProcessTest, SpawnExitCodes) {
  const mp::ProcessOptions spawn = with_method(mp::StartMethod::kSpawn);
  for (const char* status : {"0", "3", "255", "256"}) {
    mp::Process p = make("exit_with", {status}, spawn);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), std::stoi(status) & 0xFF) << status;
  }
  const std::string path = ::testing::TempDir() + "mp_spawn_throw_stderr.txt";
  std::ofstream(path).close();
  mp::Process thrower = make("throw", {"mp", path}, spawn);
  thrower.start();
  thrower.join();
  EXPECT_EQ(thrower.exitcode(), 1);
  std::stringstream report;
  report << std::ifstream(path).rdbuf();
  EXPECT_NE(report.str().find("Process " + thrower.name() + ":\n"), std::string::npos)
      << report.str();
  EXPECT_NE(report.str().find("ValueError: boom"), std::string::npos) << report.str();
  std::remove(path.c_str());

  mp::Process crash = make("signal_self", {std::to_string(SIGKILL)}, spawn);
  crash.start();
  crash.join();
  EXPECT_EQ(crash.exitcode(), -SIGKILL);
}

TEST_F(ProcessTest, SpawnTerminateKillSentinelAndActiveChildren) {
  const mp::ProcessOptions spawn = with_method(mp::StartMethod::kSpawn);
  mp::Process a = make("sleep", {kLongSleep}, spawn);
  mp::Process b = make("sleep", {kLongSleep}, spawn);
  a.start();
  b.start();
  EXPECT_TRUE(a.is_alive());
  EXPECT_FALSE(a.exitcode().has_value());
  const auto children = mp::active_children();
  EXPECT_EQ(children.size(), 2u);
  EXPECT_FALSE(readable_within(a.sentinel(), milliseconds(50)));
  const auto t0 = Clock::now();
  a.join(0.2);
  EXPECT_GE(seconds_since(t0), 0.2 - std::chrono::duration<double>(kClockResolution).count());
  EXPECT_TRUE(a.is_alive());
  a.terminate();
  b.kill();
  EXPECT_TRUE(readable_within(a.sentinel(), kLiveness));
  a.join();
  b.join();
  EXPECT_EQ(a.exitcode(), -SIGTERM);
  EXPECT_EQ(b.exitcode(), -SIGKILL);
  EXPECT_TRUE(mp::active_children().empty());
  a.close();
  EXPECT_MP_THROW(a.join(), ValueError, "process object is closed");
}

TEST_F(ProcessTest, SpawnPassesOnlyTheGivenDescriptors) {
  RawPipe kept;
  RawPipe other;
  // Not CLOEXEC: a forked child would inherit it, a spawned one must not.
  ASSERT_EQ(::fcntl(other.write_end(), F_SETFD, 0), 0);
  mp::Process closed = make("check_fd_closed", {std::to_string(other.write_end())},
                            with_method(mp::StartMethod::kSpawn, {kept.write_end()}));
  closed.start();
  closed.join();
  EXPECT_EQ(closed.exitcode(), 0) << "an fd not in pass_fds reached the spawned child";
  mp::Process open = make("check_fd_closed", {std::to_string(kept.write_end())},
                          with_method(mp::StartMethod::kSpawn, {kept.write_end()}));
  open.start();
  open.join();
  EXPECT_EQ(open.exitcode(), 3) << "an fd in pass_fds did not reach the spawned child";

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  ::close(fds[1]);
  mp::Process bad = make("exit_with", {"0"}, with_method(mp::StartMethod::kSpawn, {fds[0]}));
  EXPECT_MP_THROW(bad.start(), ValueError,
                  "pass_fds: " + std::to_string(fds[0]) + " is not an open file descriptor");
  EXPECT_FALSE(bad.pid().has_value()) << "the process stays unstarted";
}

TEST_F(ProcessTest, SpawnOfAnUnregisteredTaskFailsInTheParent) {
  mp::Process p = make("no_such_task", {}, with_method(mp::StartMethod::kSpawn));
  EXPECT_MP_THROW(p.start(), ProcessError, "no task named 'no_such_task' is registered");
}

TEST_F(ProcessTest, StartMethodsAndContexts) {
  EXPECT_MP_THROW(mp::set_start_method("forkserver-x", true), ValueError,
                  "cannot find context for 'forkserver-x'");
  EXPECT_MP_THROW((void)mp::get_context("x"), ValueError, "cannot find context for 'x'");
  EXPECT_EQ(mp::get_context("spawn"), mp::StartMethod::kSpawn);
  EXPECT_EQ(mp::get_context("fork"), mp::StartMethod::kFork);
  mp::set_start_method("fork", true);
  EXPECT_MP_THROW(mp::set_start_method("spawn"), RuntimeError, "context has already been set");
  EXPECT_EQ(mp::get_start_method(), mp::StartMethod::kFork);
  mp::set_start_method("spawn", true);
  EXPECT_EQ(mp::get_start_method(), mp::StartMethod::kSpawn);
  EXPECT_EQ(mp::get_context(), mp::StartMethod::kSpawn);
  RawPipe pipe;
  mp::ProcessOptions defaults;
  defaults.pass_fds = {pipe.write_end()};
  mp::Process q = make("exit_with", {"4"}, defaults);
  EXPECT_FALSE(q.start_method().has_value());
  q.start();
  EXPECT_EQ(q.start_method(), mp::StartMethod::kSpawn) << "the default start method";
  q.join();
  EXPECT_EQ(q.exitcode(), 4);
  mp::set_start_method("fork", true);
  EXPECT_EQ(mp::start_method_name(mp::get_start_method()), std::string("fork"));
}

TEST_F(ProcessTest, CpuCount) {
  EXPECT_GE(mp::cpu_count(), 1);
  EXPECT_EQ(mp::cpu_count(), static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
}

}  // namespace

int main(int argc, char** argv) {
  mp::spawn_main(argc, argv);  // runs the task and exits in a spawned child
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
