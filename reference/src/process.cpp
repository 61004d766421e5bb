#include "mp/process.hpp"

#include <cxxabi.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <system_error>
#include <typeinfo>
#include <utility>

#include "mp/errors.hpp"
#include "mp/platform/clock.hpp"
#include "mp/platform/process.hpp"

namespace mp {
namespace process_detail {

// One process object, shared by every handle to it. In a forked child, the
// child's copy of its own State is its current_process().
struct State {
  // Set at construction, never changed: readable without the mutex.
  pid_t creator_pid = 0;                // 0 for the main process
  std::vector<unsigned long> identity;  // empty for the main process

  // Lock order: a State's mutex, then the registry's (never the reverse, and
  // never two States' mutexes at once). Never held across a blocking wait,
  // except the short waitid() in Process::join() described there.
  mutable std::mutex mutex;
  std::string task;
  TaskArgs args;  // released once started
  std::string name;
  bool daemon = false;
  bool launched = false;  // start() forked (only in the parent's copy)
  bool closed = false;
  pid_t pid = 0;
  int sentinel = -1;
  bool sentinel_is_pidfd = false;
  std::optional<int> returncode;  // set when reaped

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() { platform::close_fd(sentinel); }
};

}  // namespace process_detail

namespace {

using process_detail::State;
using StatePtr = std::shared_ptr<State>;

constexpr const char* kClosed = "process object is closed";

// The per-process bookkeeping: tasks, children, the current process, the
// name counter. Never destroyed: the exit handler and threads may still use
// it while static objects are being destroyed.
struct Registry {
  std::mutex mutex;
  std::map<std::string, Task, std::less<>> tasks;
  // The process whose children `children` lists: a child made by a plain
  // fork() finds its parent's pid here and starts with no children.
  pid_t owner = 0;
  std::vector<StatePtr> children;  // started and not known to be reaped
  StatePtr current;                // null until first needed
  StatePtr main;                   // the "MainProcess" object
  unsigned long counter = 0;       // the last number handed out
  bool exit_handler_registered = false;
  bool exiting = false;
};

void before_fork() noexcept;
void after_fork() noexcept;

Registry& registry() noexcept {
  static Registry* const r = [] {
    auto* created = new Registry;
    // Keeps the mutex consistent in a child forked while another thread holds
    // it. (pthread_atfork fails only for lack of memory.)
    ::pthread_atfork(&before_fork, &after_fork, &after_fork);
    return created;
  }();
  return *r;
}

void before_fork() noexcept { registry().mutex.lock(); }
void after_fork() noexcept { registry().mutex.unlock(); }

// The children list of the calling process (registry mutex held).
std::vector<StatePtr>& children_locked(Registry& r) {
  const pid_t self = platform::self_pid();
  if (r.owner != self) {
    r.children.clear();  // another process's children (plain fork)
    r.owner = self;
  }
  return r.children;
}

// The current process (registry mutex held).
const StatePtr& current_locked(Registry& r) {
  if (!r.current) {
    if (!r.main) {
      auto main = std::make_shared<State>();
      main->name = "MainProcess";
      r.main = std::move(main);
    }
    r.current = r.main;
  }
  return r.current;
}

StatePtr current_state() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return current_locked(r);
}

bool is_current(const StatePtr& state) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return current_locked(r) == state;
}

void remove_child(const StatePtr& state) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto& children = children_locked(r);
  children.erase(std::remove(children.begin(), children.end(), state), children.end());
}

std::string default_name(const std::vector<unsigned long>& identity) {
  std::string name = "Process-";
  for (std::size_t i = 0; i < identity.size(); ++i) {
    if (i > 0) name += ':';
    name += std::to_string(identity[i]);
  }
  return name;
}

// Polls the child of `s` (its mutex held): reaps it if it has ended. True
// once it has ended. Never reaps in a process other than the creator.
bool poll_locked(State& s) {
  if (s.returncode) return true;
  if (!s.launched || s.creator_pid != platform::self_pid()) return false;
  const platform::ReapResult r = platform::reap_child(s.pid);
  switch (r.status) {
    case platform::ReapResult::Status::kRunning:
      return false;
    case platform::ReapResult::Status::kReaped:
      s.returncode = r.exitcode;
      return true;
    case platform::ReapResult::Status::kNotChild:
      break;
  }
  throw std::system_error(
      ECHILD, std::generic_category(),
      "process " + std::to_string(s.pid) + " (a child started by libmp) was reaped outside libmp");
}

bool poll(State& s) {
  std::lock_guard lock(s.mutex);
  return poll_locked(s);
}

// The type of an exception, for the child's report.
std::string type_name(const std::type_info& type) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = (status == 0 && demangled != nullptr) ? demangled : type.name();
  std::free(demangled);
  return name;
}

// Reports an exception that escaped a task, as CPython reports one that
// escaped run().
void report_exception(const std::string& process_name, const std::string& task,
                      const std::string& type, const char* what) noexcept {
  try {
    std::string text = "Process " + process_name +
                       ":\nTraceback (most recent call last):\n  task '" + task +
                       "' (C++: no stack trace)\n" + type;
    if (what != nullptr && *what != '\0') {
      text += ": ";
      text += what;
    }
    text += '\n';
    platform::write_stderr(text.data(), text.size());
  } catch (...) {
    static constexpr char kFallback[] = "Process: a task ended with an exception\n";
    platform::write_stderr(kFallback, sizeof kFallback - 1);
  }
}

// CPython's util._exit_function: terminate the daemonic children, then join
// every child. Runs once per process.
void exit_function() {
  Registry& r = registry();
  {
    std::lock_guard lock(r.mutex);
    if (r.exiting) return;
    r.exiting = true;
  }
  for (Process& p : active_children()) {
    try {
      if (p.daemon()) p.terminate();
    } catch (...) {
    }
  }
  for (Process& p : active_children()) {
    try {
      p.join();
    } catch (...) {
    }
  }
}

void exit_handler() noexcept {
  try {
    exit_function();
  } catch (...) {
  }
}

}  // namespace

// Access to Process internals for the free functions of this file.
struct ProcessAccess {
  static Process make(StatePtr state) noexcept { return Process(std::move(state)); }
  static const StatePtr& state(const Process& p) noexcept { return p.state_; }

  // The child's side of start(): never returns.
  [[noreturn]] static void run_child(const StatePtr& self, const Task& task) noexcept {
    Registry& r = registry();
    std::string name;
    std::string task_name;
    TaskArgs args;
    int code = 1;
    try {
      {
        std::lock_guard lock(r.mutex);
        r.current = self;
        r.children.clear();  // the parent's children are not ours
        r.owner = platform::self_pid();
        r.counter = 0;
        r.exiting = false;
      }
      {
        std::lock_guard lock(self->mutex);
        name = self->name;
        task_name = self->task;
        args = self->args;
      }
      platform::stdin_from_devnull();
      try {
        code = task(args);
      } catch (const Error& e) {
        report_exception(name, task_name, e.kind(), e.what());
        code = 1;
      } catch (const std::exception& e) {
        report_exception(name, task_name, type_name(typeid(e)), e.what());
        code = 1;
      } catch (...) {
        report_exception(name, task_name, "unknown exception", nullptr);
        code = 1;
      }
      exit_function();
    } catch (...) {
      code = 1;
    }
    platform::exit_now(static_cast<int>(static_cast<unsigned>(code) & 0xFFu));
  }
};

// ---------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------

void register_task(std::string name, Task task) {
  if (name.empty()) throw ValueError("task name must not be empty");
  if (!task) throw ValueError("task '" + name + "' has no function");
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const auto [it, inserted] = r.tasks.try_emplace(std::move(name), std::move(task));
  if (!inserted) throw ValueError("task '" + it->first + "' is already registered");
}

bool is_task_registered(const std::string& name) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return r.tasks.find(name) != r.tasks.end();
}

// ---------------------------------------------------------------------------
// Process
// ---------------------------------------------------------------------------

Process::Process(std::string task, TaskArgs args, ProcessOptions options) {
  auto state = std::make_shared<State>();
  state->creator_pid = platform::self_pid();
  StatePtr current;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    current = current_locked(r);
    state->identity = current->identity;
    state->identity.push_back(++r.counter);
  }
  bool daemonic;
  if (options.daemon) {
    daemonic = *options.daemon;
  } else {
    std::lock_guard lock(current->mutex);
    daemonic = current->daemon;
  }
  state->task = std::move(task);
  state->args = std::move(args);
  state->name = options.name ? std::move(*options.name) : default_name(state->identity);
  state->daemon = daemonic;
  state_ = std::move(state);
}

void Process::start() {
  State& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    if (s.closed) throw ValueError(kClosed);
    if (s.launched) throw AssertionError("cannot start a process twice");
    if (s.creator_pid != platform::self_pid()) {
      throw AssertionError("can only start a process object created by current process");
    }
  }
  {
    const StatePtr current = current_state();
    std::lock_guard lock(current->mutex);
    if (current->daemon) {
      throw AssertionError("daemonic processes are not allowed to have children");
    }
  }
  active_children();  // reaps the finished ones (CPython's _cleanup)

  std::unique_lock lock(s.mutex);
  if (s.closed) throw ValueError(kClosed);
  if (s.launched) throw AssertionError("cannot start a process twice");
  Task task;
  {
    Registry& r = registry();
    std::lock_guard registry_lock(r.mutex);
    const auto it = r.tasks.find(s.task);
    if (it == r.tasks.end()) throw ProcessError("no task named '" + s.task + "' is registered");
    task = it->second;
    if (!r.exit_handler_registered) {
      if (std::atexit(&exit_handler) != 0) {
        throw std::system_error(ENOMEM, std::generic_category(), "atexit");
      }
      r.exit_handler_registered = true;
    }
  }
  // fork() with this State's mutex held: concurrent calls on this process
  // wait until it is launched. The child, which is this thread, unlocks its
  // copy and never returns.
  const platform::ForkedChild child = platform::fork_child();
  if (child.pid == 0) {
    lock.unlock();
    ProcessAccess::run_child(state_, task);
  }
  s.launched = true;
  s.pid = child.pid;
  s.sentinel = child.sentinel;
  s.sentinel_is_pidfd = child.sentinel_is_pidfd;
  TaskArgs().swap(s.args);  // CPython drops its references to the arguments
  lock.unlock();

  Registry& r = registry();
  std::lock_guard registry_lock(r.mutex);
  children_locked(r).push_back(state_);
}

void Process::join(std::optional<double> timeout) {
  State& s = *state_;
  int sentinel;
  {
    std::lock_guard lock(s.mutex);
    if (s.closed) throw ValueError(kClosed);
    if (s.creator_pid != platform::self_pid()) {
      throw AssertionError("can only join a child process");
    }
    if (!s.launched) throw AssertionError("can only join a started process");
    sentinel = s.sentinel;
  }
  const platform::Deadline deadline =
      timeout ? platform::Deadline::after(*timeout) : platform::Deadline::never();

  bool ended = poll(s);
  while (!ended && !deadline.has_passed()) {
    if (!platform::wait_readable(sentinel, deadline)) {
      ended = poll(s);
      break;
    }
    // The process has ended, or (a pipe sentinel) is about to: a process
    // closes its descriptors a moment before it becomes reapable. Wait for
    // that moment without reaping, with the mutex held so that nobody else
    // reaps the child (and frees its pid for reuse) meanwhile.
    std::lock_guard lock(s.mutex);
    if (!s.returncode) platform::wait_child_ended(s.pid);
    ended = poll_locked(s);
  }
  if (ended) remove_child(state_);
}

bool Process::is_alive() {
  State& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    if (s.closed) throw ValueError(kClosed);
  }
  if (is_current(state_)) return true;
  {
    std::lock_guard lock(s.mutex);
    if (s.creator_pid != platform::self_pid()) {
      throw AssertionError("can only test a child process");
    }
    if (!s.launched) return false;
    if (!poll_locked(s)) return true;
  }
  remove_child(state_);
  return false;
}

std::optional<int> Process::exitcode() {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  if (s.closed) throw ValueError(kClosed);
  if (!s.launched) return std::nullopt;
  poll_locked(s);
  return s.returncode;
}

std::optional<pid_t> Process::pid() const {
  const State& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    if (s.closed) throw ValueError(kClosed);
    if (s.launched) return s.pid;
  }
  if (is_current(state_)) return platform::self_pid();
  return std::nullopt;
}

std::string Process::name() const {
  std::lock_guard lock(state_->mutex);
  return state_->name;
}

void Process::set_name(std::string name) {
  std::lock_guard lock(state_->mutex);
  state_->name = std::move(name);
}

bool Process::daemon() const {
  std::lock_guard lock(state_->mutex);
  return state_->daemon;
}

void Process::set_daemon(bool daemonic) {
  std::lock_guard lock(state_->mutex);
  if (state_->launched && !state_->closed) throw AssertionError("process has already started");
  state_->daemon = daemonic;
}

int Process::sentinel() const {
  std::lock_guard lock(state_->mutex);
  if (state_->closed) throw ValueError(kClosed);
  if (!state_->launched) throw ValueError("process not started");
  return state_->sentinel;
}

void Process::send_signal(int signal, const char* what) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  if (s.closed) throw ValueError(kClosed);
  if (!s.launched) throw AttributeError(std::string("cannot ") + what + " a process not started");
  if (s.returncode) return;  // reaped: its pid may name another process now
  platform::signal_child(s.pid, s.sentinel_is_pidfd ? s.sentinel : -1, signal);
}

void Process::terminate() { send_signal(SIGTERM, "terminate"); }

void Process::kill() { send_signal(SIGKILL, "kill"); }

void Process::close() {
  State& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    if (s.closed) return;
    if (s.launched) {
      if (!poll_locked(s)) {
        throw ValueError(
            "Cannot close a process while it is still running. You should first call join() or "
            "terminate().");
      }
      platform::close_fd(s.sentinel);
      s.sentinel = -1;
    }
    s.closed = true;
  }
  remove_child(state_);
}

// ---------------------------------------------------------------------------
// Free functions
// ---------------------------------------------------------------------------

std::vector<Process> active_children() {
  std::vector<StatePtr> snapshot;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    snapshot = children_locked(r);
  }
  std::vector<Process> alive;
  std::vector<StatePtr> ended;
  for (StatePtr& state : snapshot) {
    bool has_ended;
    try {
      has_ended = poll(*state);
    } catch (const std::system_error&) {
      has_ended = true;  // reaped outside libmp: gone, status unknown
    }
    if (has_ended) {
      ended.push_back(std::move(state));
    } else {
      alive.push_back(ProcessAccess::make(std::move(state)));
    }
  }
  if (!ended.empty()) {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    auto& children = children_locked(r);
    std::erase_if(children, [&](const StatePtr& c) {
      return std::find(ended.begin(), ended.end(), c) != ended.end();
    });
  }
  return alive;
}

Process current_process() { return ProcessAccess::make(current_state()); }

int cpu_count() {
  const int n = platform::online_cpu_count();
  if (n < 1) throw NotImplementedError("cannot determine number of cpus");
  return n;
}

}  // namespace mp
