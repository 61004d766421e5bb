#include "mp/process.hpp"

#include <cxxabi.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <system_error>
#include <typeinfo>
#include <utility>

#include "mp/errors.hpp"
#include "mp/platform/clock.hpp"
#include "mp/platform/crypto.hpp"
#include "mp/platform/process.hpp"
#include "platform/spawn.hpp"

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
  std::string authkey;
  bool authkey_set = false;  // false only for the main process before its key is drawn
  std::optional<StartMethod> start_method;  // as given; the one used once launched
  std::vector<int> pass_fds;

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() { platform::close_fd(sentinel); }
};

// The watch on the parent of the calling process (mp::parent_process()).
struct ParentWatch {
  std::string name;
  pid_t pid = 0;
  platform::ParentWatch watch;

  ParentWatch() = default;
  ParentWatch(const ParentWatch&) = delete;
  ParentWatch& operator=(const ParentWatch&) = delete;
  ~ParentWatch() { platform::close_fd(watch.fd); }
};

}  // namespace process_detail

namespace {

constexpr const char* kSpawnFlag = "--mp-spawn-child";
constexpr const char* kSpawnMagic = "mp-spawn-1";

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
  // parent_process() of this process (null in the main process).
  std::shared_ptr<const process_detail::ParentWatch> parent;
  // The default start method once set or fixed (CPython's _actual_context).
  std::optional<StartMethod> default_method;
  std::string argv0;  // recorded by spawn_main()
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

// The key of `s` (its mutex held): draws the main process's key on first use.
const std::string& authkey_locked(State& s) {
  if (!s.authkey_set) {
    s.authkey = platform::random_bytes(32);
    s.authkey_set = true;
  }
  return s.authkey;
}

StartMethod parse_method(std::string_view method) {
  if (method == "fork") return StartMethod::kFork;
  if (method == "spawn") return StartMethod::kSpawn;
  throw ValueError("cannot find context for '" + std::string(method) + "'");
}

// The default start method, fixed by this call (CPython's get_context(None)).
StartMethod fix_default_method() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (!r.default_method) r.default_method = StartMethod::kFork;
  return *r.default_method;
}

// Start-up data of a spawned child: length-prefixed strings.
void put(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  std::string get() {
    const std::size_t colon = data_.find(':', pos_);
    if (colon == std::string_view::npos) throw ValueError("bad start-up data");
    const std::string_view digits = data_.substr(pos_, colon - pos_);
    if (digits.empty() || digits.size() > 12) throw ValueError("bad start-up data");
    std::size_t n = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') throw ValueError("bad start-up data");
      n = n * 10 + static_cast<std::size_t>(c - '0');
    }
    if (n > data_.size() - colon - 1) throw ValueError("bad start-up data");
    std::string field(data_.substr(colon + 1, n));
    pos_ = colon + 1 + n;
    return field;
  }
  unsigned long number() {
    const std::string f = get();
    if (f.empty() || f.find_first_not_of("0123456789") != std::string::npos)
      throw ValueError("bad start-up data");
    return std::stoul(f);
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

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
  static ParentProcess make_parent(std::shared_ptr<const process_detail::ParentWatch> w) noexcept {
    return ParentProcess(std::move(w));
  }

  // The child's side of start(): never returns.
  // `task` null: not registered here (a spawned child), reported as an
  // error of the task.
  [[noreturn]] static void run_child(const StatePtr& self, const Task* task,
                                     const std::string& parent_name, pid_t parent_pid) noexcept {
    Registry& r = registry();
    std::string name;
    std::string task_name;
    TaskArgs args;
    int code = 1;
    try {
      auto parent = std::make_shared<process_detail::ParentWatch>();
      parent->name = parent_name;
      parent->pid = parent_pid;
      parent->watch = platform::watch_parent(parent_pid);
      std::shared_ptr<const process_detail::ParentWatch> old_parent;
      {
        std::lock_guard lock(r.mutex);
        r.current = self;
        r.children.clear();  // the parent's children are not ours
        r.owner = platform::self_pid();
        r.counter = 0;
        r.exiting = false;
        old_parent = std::exchange(r.parent, std::move(parent));
      }
      old_parent.reset();  // our copy of the grandparent's watch
      {
        std::lock_guard lock(self->mutex);
        name = self->name;
        task_name = self->task;
        args = self->args;
      }
      platform::stdin_from_devnull();
      try {
        if (task == nullptr) throw ProcessError("no task named '" + task_name + "' is registered");
        code = (*task)(args);
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
  {
    std::lock_guard lock(current->mutex);
    daemonic = options.daemon ? *options.daemon : current->daemon;
    state->authkey = authkey_locked(*current);  // CPython copies its creator's config
    state->authkey_set = true;
  }
  state->start_method = options.start_method;
  state->pass_fds = std::move(options.pass_fds);
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
  std::string parent_name;  // the child's parent_process().name()
  {
    const StatePtr current = current_state();
    std::lock_guard lock(current->mutex);
    if (current->daemon) {
      throw AssertionError("daemonic processes are not allowed to have children");
    }
    parent_name = current->name;
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
  const StartMethod method = s.start_method ? *s.start_method : fix_default_method();
  const pid_t parent_pid = platform::self_pid();
  platform::ForkedChild child;
  if (method == StartMethod::kSpawn) {
    for (int fd : s.pass_fds) platform::check_open_fd(fd);
    std::string data;
    put(data, kSpawnMagic);
    put(data, s.task);
    put(data, std::to_string(s.args.size()));
    for (const std::string& a : s.args) put(data, a);
    put(data, s.name);
    put(data, s.daemon ? "1" : "0");
    put(data, std::to_string(s.identity.size()));
    for (unsigned long n : s.identity) put(data, std::to_string(n));
    put(data, s.authkey);
    put(data, parent_name);
    put(data, std::to_string(parent_pid));
    std::string argv0;
    {
      Registry& r = registry();
      std::lock_guard registry_lock(r.mutex);
      put(data, r.default_method ? start_method_name(*r.default_method) : "");
      argv0 = r.argv0;
    }
    if (argv0.empty()) argv0 = platform::program_argv0();
    const int fd = platform::data_fd(data);
    std::vector<int> keep = s.pass_fds;
    keep.push_back(fd);
    try {
      child = platform::spawn_child({argv0, kSpawnFlag, std::to_string(fd)}, keep);
    } catch (...) {
      platform::close_fd(fd);
      throw;
    }
    platform::close_fd(fd);
  } else {
    // fork() with this State's mutex held: concurrent calls on this process
    // wait until it is launched. The child, which is this thread, unlocks its
    // copy and never returns.
    child = platform::fork_child();
    if (child.pid == 0) {
      lock.unlock();
      ProcessAccess::run_child(state_, &task, parent_name, parent_pid);
    }
  }
  s.start_method = method;
  s.launched = true;
  s.pid = child.pid;
  s.sentinel = child.sentinel;
  s.sentinel_is_pidfd = child.sentinel_is_pidfd;
  TaskArgs().swap(s.args);  // CPython drops its references to the arguments
  std::vector<int>().swap(s.pass_fds);
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

std::string Process::authkey() const {
  std::lock_guard lock(state_->mutex);
  return authkey_locked(*state_);
}

void Process::set_authkey(std::string key) {
  std::lock_guard lock(state_->mutex);
  state_->authkey = std::move(key);
  state_->authkey_set = true;
}

std::optional<StartMethod> Process::start_method() const {
  std::lock_guard lock(state_->mutex);
  return state_->start_method;
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

const char* start_method_name(StartMethod method) noexcept {
  return method == StartMethod::kSpawn ? "spawn" : "fork";
}

// ---------------------------------------------------------------------------
// parent_process
// ---------------------------------------------------------------------------

const std::string& ParentProcess::name() const noexcept { return watch_->name; }

pid_t ParentProcess::pid() const noexcept { return watch_->pid; }

bool ParentProcess::is_alive() const { return platform::parent_running(watch_->watch, watch_->pid); }

void ParentProcess::join(std::optional<double> timeout) const {
  const platform::Deadline deadline =
      timeout ? platform::Deadline::after(*timeout) : platform::Deadline::never();
  platform::wait_parent(watch_->watch, watch_->pid, deadline);
}

int ParentProcess::sentinel() const noexcept { return watch_->watch.fd; }

std::optional<ParentProcess> parent_process() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  // A plain fork() of the main process has no parent either (r.parent stays
  // null there); one of a libmp child keeps its creator's.
  if (!r.parent) return std::nullopt;
  return ProcessAccess::make_parent(r.parent);
}

// ---------------------------------------------------------------------------
// Start methods
// ---------------------------------------------------------------------------

void set_start_method(std::string_view method, bool force) {
  const StartMethod m = parse_method(method);
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (r.default_method && !force) throw RuntimeError("context has already been set");
  r.default_method = m;
}

StartMethod get_start_method() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return r.default_method.value_or(StartMethod::kFork);
}

StartMethod get_context(std::optional<std::string_view> method) {
  if (method) return parse_method(*method);
  return fix_default_method();
}

// ---------------------------------------------------------------------------
// spawn_main
// ---------------------------------------------------------------------------

void spawn_main(int argc, char** argv) {
  if (argc < 3 || argv == nullptr || std::strcmp(argv[1], kSpawnFlag) != 0) {
    if (argc >= 1 && argv != nullptr && argv[0] != nullptr) {
      Registry& r = registry();
      std::lock_guard lock(r.mutex);
      r.argv0 = argv[0];
    }
    return;
  }
  std::string parent_name;
  pid_t parent_pid = 0;
  auto self = std::make_shared<State>();
  const Task* task = nullptr;
  Task found;
  try {
    const std::string fd_text = argv[2];
    if (fd_text.empty() || fd_text.find_first_not_of("0123456789") != std::string::npos)
      throw ValueError("bad start-up descriptor");
    const int fd = std::stoi(fd_text);
    const std::string data = platform::read_data_fd(fd);
    platform::close_fd(fd);
    Reader in(data);
    if (in.get() != kSpawnMagic) throw ValueError("bad start-up data");
    self->task = in.get();
    for (unsigned long n = in.number(); n > 0; --n) self->args.push_back(in.get());
    self->name = in.get();
    self->daemon = in.get() == "1";
    for (unsigned long n = in.number(); n > 0; --n) self->identity.push_back(in.number());
    self->authkey = in.get();
    self->authkey_set = true;
    parent_name = in.get();
    parent_pid = static_cast<pid_t>(in.number());
    const std::string method = in.get();
    self->creator_pid = parent_pid;
    self->start_method = StartMethod::kSpawn;
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    if (!method.empty()) r.default_method = parse_method(method);
    r.argv0 = argv[0] != nullptr ? argv[0] : "";
    const auto it = r.tasks.find(self->task);
    if (it != r.tasks.end()) {
      found = it->second;
      task = &found;
    }
  } catch (const std::exception& e) {
    report_exception(self->name.empty() ? "(spawned)" : self->name, self->task, "ProcessError",
                     e.what());
    platform::exit_now(1);
  }
  ProcessAccess::run_child(self, task, parent_name, parent_pid);
}

int cpu_count() {
  const int n = platform::online_cpu_count();
  if (n < 1) throw NotImplementedError("cannot determine number of cpus");
  return n;
}

}  // namespace mp
