// -----------------------------------------------------------------------------
// File: process.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::Process`, a child process with the life cycle of
// Python's `multiprocessing.Process` (CPython 3.11-3.13, `fork` start method),
// and the functions around it:
//
//   mp::register_task()     names a function that processes can run
//   mp::TaskRegistration    registers a task from a static initializer
//   mp::Process             a handle to one child process: start, join,
//                           is_alive, exitcode, terminate, kill, close, ...
//   mp::active_children()   the live children of the calling process
//   mp::current_process()   the calling process as a Process handle
//   mp::cpu_count()         the number of CPUs online
//
// Tasks. A process runs a *registered task*: a function registered under a
// name, looked up by that name when the process starts. (Python passes a
// callable `target`; naming it instead lets a future `spawn` start method,
// which runs a fresh program image, find the function again.) A task receives
// the process's arguments as strings and returns the process's exit status:
//
//   int copy_file(const mp::TaskArgs& args) {   // args: {"from", "to"}
//     ...
//     return 0;                                  // exit status 0
//   }
//   static const mp::TaskRegistration kCopy("copy_file", &copy_file);
//
//   mp::Process p("copy_file", {"a.txt", "b.txt"});
//   p.start();                                   // fork(); the child runs it
//   p.join();                                    // wait for the child
//   assert(p.exitcode() == 0);
//
// Exit status. The value a task returns becomes the process's exit status,
// truncated to 8 bits as by `_exit` (CPython's `sys.exit(n)`): 3 -> 3,
// 256 -> 0, -1 -> 255. A C++ exception that escapes the task is reported on
// the child's standard error, CPython style,
//
//   Process Process-1:
//   Traceback (most recent call last):
//     task 'copy_file' (C++: no stack trace)
//   ValueError: the message
//
// (the last line is `<kind>: <what>` for an mp::Error, `<type>: <what>` for
// another std::exception), and the exit status is 1. `exitcode()` reports a
// process killed by signal N as -N, as CPython does.
//
// Start method. Only `fork` exists for now: start() forks the calling
// process, and the child runs the task in a copy of the parent's memory, so
// the task sees everything the parent set up before start() (including
// libmp primitives, which the child shares). Only the thread that calls
// start() exists in the child. `spawn` and `forkserver` (a fresh program
// image that finds the task by name) are future work; that is why tasks are
// named and take strings.
//
// The child. Standard input is replaced by /dev/null. The task runs; then,
// as in CPython's bootstrap, the child terminates its own daemonic children
// and joins its other children; then it flushes the C and C++ standard
// streams and ends with `_exit` (atexit handlers and static destructors do
// not run, as in CPython <= 3.12). Threads the task leaves running die with
// it. A task may call std::exit() itself, which runs the atexit handlers the
// child inherited (including the one described under "Exit" below).
//
// Exit. When a process that started children ends through exit() (returning
// from main included), an atexit handler (registered by the first start() in
// the process) terminates (SIGTERM) its daemonic
// children that are still running, then joins every child still running,
// daemonic or not. As in CPython this can wait forever for a non-daemonic
// child that does not end. Nothing happens for a process that ends through
// _exit, a signal or abort: its children live on as orphans.
//
// Reaping. libmp reaps every child it starts: join(), is_alive(), exitcode()
// and close() reap a child that has ended, start() and active_children()
// reap every finished child of the calling process, and the exit handler
// joins the rest. A Process handle may be dropped while its child runs: the
// child stays in active_children() and is reaped there. Do not reap libmp's
// children yourself (waitpid(-1, ...), SIGCHLD set to SIG_IGN): libmp then
// cannot learn their exit status; join(), is_alive(), exitcode() and close()
// on such a process throw std::system_error (ECHILD), and active_children()
// drops it silently.
//
// Threads. The members of a Process may be called from several threads at
// once (of two concurrent start() calls, one starts the process and the other
// throws), except that close() must not race with other calls on the same
// process: it releases the sentinel that a concurrent join() may wait on.
// fork() copies only the calling thread: a lock another thread holds at that
// moment stays held in the child, as with any fork in a threaded program.
// libmp's own registries are protected against this (pthread_atfork).
//
// Errors (kinds as CPython's):
//
//   call                              condition                     kind
//   --------------------------------  ----------------------------  ---------------
//   start()                           already started               AssertionError
//   start()                           made by another process       AssertionError
//   start()                           caller is a daemonic process  AssertionError
//   start()                           no task of that name          ProcessError
//   join()                            not the creator / self        AssertionError
//   join()                            not started                   AssertionError
//   join()                            NaN timeout                   ValueError
//   is_alive()                        not the creator               AssertionError
//   set_daemon()                      already started               AssertionError
//   sentinel()                        not started                   ValueError
//   terminate(), kill()               not started                   AttributeError
//   close()                           still running                 ValueError
//   any but name/daemon/close         after close()                 ValueError
//
// System failures (fork, pidfd_open, an unexpected ECHILD) are reported as
// std::system_error.

#ifndef MP_PROCESS_HPP_
#define MP_PROCESS_HPP_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mp {

namespace process_detail {
struct State;  // one process object; defined in process.cpp
}  // namespace process_detail

// mp::TaskArgs
//
// The arguments of a task: strings, so that a future `spawn` start method can
// pass them to a fresh program image unchanged.
using TaskArgs = std::vector<std::string>;

// mp::Task
//
// A task receives the process's arguments and returns its exit status.
using Task = std::function<int(const TaskArgs& args)>;

// mp::register_task()
//
// Registers `task` under `name` in the calling process. Processes started
// later (by this process or by its children forked later) can run it. Throws
// mp::ValueError if `name` is empty, if `task` is empty, or if a task of that
// name is already registered. Thread safe.
void register_task(std::string name, Task task);

// mp::is_task_registered()
//
// Whether a task named `name` is registered in the calling process.
bool is_task_registered(const std::string& name);

// mp::TaskRegistration
//
// Registers a task when constructed: for registering tasks from static
// initializers, so that every program image that links the definition has
// the task (as a spawn-like start method will need):
//
//   static const mp::TaskRegistration kWorker("worker", &worker);
struct TaskRegistration {
  TaskRegistration(std::string name, Task task) { register_task(std::move(name), std::move(task)); }
};

// mp::ProcessOptions
//
// Optional settings of a new Process; Python's keyword arguments.
struct ProcessOptions {
  // The process's name. Default: "Process-<identity>" (see Process::name()).
  std::optional<std::string> name{};
  // Whether the process is daemonic. Default: the daemon flag of the calling
  // process (false unless the caller is daemonic, and then start() fails).
  std::optional<bool> daemon{};
};

// mp::Process
//
// A handle to one process: not yet started, running, ended, or closed.
// Copying a Process is cheap and yields another handle to the *same* process
// (as Python's references to one Process object): a state change through one
// handle (start, close, ...) is seen through all. operator== tells whether
// two handles name the same process. Dropping every handle does not affect
// the child (see "Reaping" above).
class Process {
 public:
  // Process::Process()
  //
  // A new, unstarted process that will run the task `task` with `args`. The
  // task is looked up when the process starts, not here. Its default name
  // takes the next value of the calling process's counter (so constructing a
  // Process uses up a number even if it never starts, as in CPython).
  explicit Process(std::string task, TaskArgs args = {}, ProcessOptions options = {});

  // Copies are handles to the same process. (A moved-from Process remains a
  // valid handle: moving is copying.)
  Process(const Process&) = default;
  Process& operator=(const Process&) = default;
  ~Process() = default;

  // Process::start()
  //
  // Starts the process: reaps the caller's finished children, looks the task
  // up, forks, and runs the task in the child. Returns in the parent once the
  // child exists (it does not wait for the task to begin). The process then
  // counts among active_children() until it has ended and been reaped. The
  // process's arguments are released in the parent.
  //
  // Throws mp::ValueError("process object is closed") after close(),
  // mp::AssertionError("cannot start a process twice") if already started,
  // mp::AssertionError("can only start a process object created by current
  // process") in a process other than the one that constructed it (e.g. in
  // a forked child), mp::AssertionError("daemonic processes are not allowed
  // to have children") when the caller is a daemonic process,
  // mp::ProcessError if no task of the name is registered (the process stays
  // unstarted), std::system_error if fork() fails.
  void start();

  // Process::join()
  //
  // Waits for the process to end and reaps it:
  //
  //   timeout        behaviour
  //   -------------  ------------------------------------------------------
  //   nullopt, +inf  waits until the process ends
  //   <= 0           one check, never blocks
  //   > 0            waits up to `timeout` seconds
  //   NaN            throws mp::ValueError
  //
  // Returns nothing, as Python's join: check exitcode() (nullopt: still
  // running) or is_alive() to learn whether the process ended. Blocks on the
  // sentinel (no polling loop); the timeout becomes one CLOCK_MONOTONIC
  // deadline when the call starts, so interruptions do not stretch it. May
  // be called any number of times, from several threads at once.
  //
  // Throws mp::ValueError after close(), mp::AssertionError("can only join
  // a child process") unless the caller is the process that created this
  // one (so joining current_process() throws), mp::AssertionError("can only
  // join a started process") before start().
  void join(std::optional<double> timeout = std::nullopt);

  // Process::is_alive()
  //
  // Whether the process has started and not ended. Reaps it if it has ended.
  // True for current_process(); false before start().
  // Throws mp::ValueError after close(), mp::AssertionError("can only test
  // a child process") in a process other than its creator.
  bool is_alive();

  // Process::exitcode()
  //
  // nullopt before start() and while running (and for current_process());
  // once ended: the exit status (0..255), or -N if killed by signal N (e.g.
  // -15 after terminate(), -9 after kill()). Reaps the process if it has
  // ended. Called in a process other than the creator, it never reaps and
  // reports only what the creator had learnt before the fork.
  // Throws mp::ValueError after close().
  std::optional<int> exitcode();

  // Process::pid()
  //
  // The process id; nullopt before start(). For current_process(), the
  // caller's pid. Also known as `ident`. Throws mp::ValueError after close().
  std::optional<pid_t> pid() const;

  // Process::name()
  //
  // The name: the one given in ProcessOptions or set with set_name(), else
  // "Process-<i1>:<i2>:...", where the numbers are the process's *identity*:
  // the creating process's identity plus the next value of the creating
  // process's counter, which starts at 1 in every process libmp starts (so
  // the first processes a program constructs are Process-1, Process-2, and
  // the first one constructed inside Process-2 is Process-2:1). The main
  // process is "MainProcess". Works after close().
  std::string name() const;

  // Process::set_name()
  //
  // Renames the process, at any time (the child keeps the name it had when
  // it started).
  void set_name(std::string name);

  // Process::daemon()
  //
  // Whether the process is daemonic. Works after close().
  bool daemon() const;

  // Process::set_daemon()
  //
  // Sets the daemon flag. Throws mp::AssertionError("process has already
  // started") once started (and not closed). A daemonic process cannot
  // start children of its own, and is terminated when its parent exits (see
  // "Exit" above).
  void set_daemon(bool daemonic);

  // Process::sentinel()
  //
  // A file descriptor that becomes readable when the process ends, and stays
  // readable: for poll()/select()/epoll alongside other descriptors. It is a
  // pidfd (Linux 5.3+), else the read end of a pipe (which also waits for
  // any process that inherited the pipe's write end, e.g. one forked by
  // another thread at the same moment). It belongs to the Process: do not
  // close it; close() does, and so does dropping the last handle once the
  // child has been reaped. Readability does not reap: call join() or
  // is_alive() afterwards.
  // Throws mp::ValueError after close(), mp::ValueError("process not
  // started") before start() (and for current_process()).
  int sentinel() const;

  // Process::terminate()
  //
  // Sends SIGTERM; does nothing once the process has been reaped. (The child
  // dies at once unless it handles or blocks SIGTERM; no cleanup of the task
  // runs, its children are orphaned, and libmp primitives it held stay held.)
  // Throws mp::ValueError after close(), mp::AttributeError before start()
  // (as CPython, whose behaviour here is an accident).
  void terminate();

  // Process::kill()
  //
  // As terminate(), with SIGKILL.
  void kill();

  // Process::close()
  //
  // Releases the process's resources (its sentinel and its place among the
  // children). Afterwards every member except name(), daemon(), set_name(),
  // set_daemon() and close() throws mp::ValueError("process object is
  // closed"). Idempotent; closing an unstarted process is allowed.
  // Throws mp::ValueError("Cannot close a process while it is still
  // running. You should first call join() or terminate().") if the process
  // is running (it reaps the process if it has ended).
  void close();

  // Two handles are equal when they refer to the same process object.
  friend bool operator==(const Process& a, const Process& b) noexcept {
    return a.state_ == b.state_;
  }

 private:
  friend struct ProcessAccess;
  using State = process_detail::State;

  explicit Process(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}

  void send_signal(int signal, const char* what);

  std::shared_ptr<State> state_;  // never null
};

// mp::active_children()
//
// The children of the calling process that were started and have not been
// found ended: reaps every child that has ended (and drops it from the list),
// then returns handles to the rest, oldest first. Children of a process are
// not the children of its own children: a child forked by libmp starts with
// none.
std::vector<Process> active_children();

// mp::current_process()
//
// The calling process. In the main process (and in a child made by a plain
// fork() of it), a handle named "MainProcess", not daemonic, with no parent.
// In a process libmp started (and in a plain fork() of it), a handle to that
// Process object, i.e. the child's copy of it: it compares equal to the
// parent's handles to it that the child inherited, and has its name and
// daemon flag. For it, is_alive() is true, pid() is the
// caller's pid, exitcode() is nullopt, and join(), start(), sentinel()
// throw as described above.
Process current_process();

// mp::cpu_count()
//
// The number of CPUs online (`os.cpu_count()`), at least 1. Throws
// mp::NotImplementedError("cannot determine number of cpus") if the system
// cannot tell.
int cpu_count();

}  // namespace mp

#endif  // MP_PROCESS_HPP_
