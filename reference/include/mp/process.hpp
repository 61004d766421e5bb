// -----------------------------------------------------------------------------
// File: process.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::Process`, a child process with the life cycle of
// Python's `multiprocessing.Process` (CPython 3.11-3.13, `fork` and `spawn`
// start methods), and the functions around it:
//
//   mp::register_task()     names a function that processes can run
//   mp::TaskRegistration    registers a task from a static initializer
//   mp::Process             a handle to one child process: start, join,
//                           is_alive, exitcode, terminate, kill, close, ...
//   mp::active_children()   the live children of the calling process
//   mp::current_process()   the calling process as a Process handle
//   mp::parent_process()    the process that started the calling one
//   mp::cpu_count()         the number of CPUs online
//   mp::spawn_main()        the entry point of a spawned child (call it first
//                           in main())
//   mp::set_start_method(), mp::get_start_method(), mp::get_context()
//                           the default start method (Python's contexts)
//
// Tasks. A process runs a *registered task*: a function registered under a
// name, looked up by that name when the process starts. (Python passes a
// callable `target`; naming it instead lets the `spawn` start method, which
// runs a fresh program image, find the function again.) A task receives
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
// Start methods. `fork` (the default) forks the calling process, and the
// child runs the task in a copy of the parent's memory, so the task sees
// everything the parent set up before start() (including libmp primitives,
// which the child shares). Only the thread that calls start() exists in the
// child. `spawn` starts a fresh execution of the program image instead (see
// "Spawn" below): the child shares nothing with the parent but the task's
// name, its string arguments, the descriptors listed in
// ProcessOptions::pass_fds, and the process's name, daemon flag, identity and
// authentication key. Exit codes, names, daemon flags, parent_process(),
// authkey(), sentinels, join, terminate and kill behave the same under both.
//
// Spawn. The program must cooperate: its main() calls mp::spawn_main(argc,
// argv) first, before anything that must not run in a spawned child (as
// Python's `if __name__ == '__main__'` guard). In the program started by
// the user, spawn_main() returns at once; in a spawned child it runs the
// task and ends the process (never returns). A spawned child is
// /proc/self/exe run with argv {argv[0] of the parent, "--mp-spawn-child",
// "<fd>"}; the fd is an inherited memfd holding the start-up data (the
// authentication key among it, which is therefore never on the command
// line). Tasks must be registered in the child before spawn_main() runs its
// task: register them from static initializers (mp::TaskRegistration).
// Descriptors other than 0, 1, 2 and those in pass_fds are closed by the
// exec (except, on kernels without pidfds, the write end of libmp's sentinel
// pipe); standard input is /dev/null as under fork. The task learns the numbers of the passed ones from its arguments,
// e.g. {"conn_fd=7"} — the caller puts them there.
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
//   start() (spawn)                   a pass_fds entry not open     ValueError
//   join()                            not the creator / self        AssertionError
//   join()                            not started                   AssertionError
//   join()                            NaN timeout                   ValueError
//   is_alive()                        not the creator               AssertionError
//   set_daemon()                      already started               AssertionError
//   sentinel()                        not started                   ValueError
//   terminate(), kill()               not started                   AttributeError
//   close()                           still running                 ValueError
//   any but name/daemon/close/authkey after close()                 ValueError
//   set_start_method()                already set, no force         RuntimeError
//   set_start_method(), get_context() unknown method                ValueError
//   ParentProcess::join()             NaN timeout                   ValueError
//
// System failures (fork, exec, memfd_create, pidfd_open, an unexpected ECHILD)
// are reported as std::system_error.

#ifndef MP_PROCESS_HPP_
#define MP_PROCESS_HPP_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mp {

namespace process_detail {
struct State;        // one process object; defined in process.cpp
struct ParentWatch;  // the watch on a parent process; defined in process.cpp
}  // namespace process_detail

// mp::TaskArgs
//
// The arguments of a task: strings, so that the `spawn` start method can pass
// them to a fresh program image unchanged.
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
//
// Under `spawn` this is the way to register: a spawned child runs its task
// from mp::spawn_main(), before main() could register anything else.
struct TaskRegistration {
  TaskRegistration(std::string name, Task task) { register_task(std::move(name), std::move(task)); }
};

// mp::StartMethod
//
// How start() creates the child (see "Start methods" above).
enum class StartMethod {
  kFork,   // "fork": a copy of the caller (the default)
  kSpawn,  // "spawn": a fresh execution of the program image
};

// mp::start_method_name()
//
// "fork" or "spawn".
const char* start_method_name(StartMethod method) noexcept;

// mp::ProcessOptions
//
// Optional settings of a new Process; Python's keyword arguments.
struct ProcessOptions {
  // The process's name. Default: "Process-<identity>" (see Process::name()).
  std::optional<std::string> name{};
  // Whether the process is daemonic. Default: the daemon flag of the calling
  // process (false unless the caller is daemonic, and then start() fails).
  std::optional<bool> daemon{};
  // How start() creates the child. Default: the default start method when
  // start() runs (mp::get_start_method(): fork unless set_start_method()
  // chose another).
  std::optional<StartMethod> start_method{};
  // Under spawn: descriptors of the caller that the child receives under the
  // same numbers (each must be open when start() runs, else start() throws
  // mp::ValueError); every other descriptor above 2 is closed in the child.
  // The caller tells the task the numbers through its arguments. Under fork
  // this is ignored: a forked child inherits every descriptor.
  std::vector<int> pass_fds{};
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
  // up, forks, and runs the task in the child. Under spawn the child first
  // execs the program image; start() returns once the exec has succeeded
  // (the child may still be setting up). Under fork it returns once the
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
  // unstarted; under spawn the task must be registered in the parent too),
  // mp::ValueError if a pass_fds entry is not open (spawn), and
  // std::system_error if fork(), exec() or the start-up data fail.
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

  // Process::authkey()
  //
  // The process's authentication key (bytes in a std::string): a copy of its
  // creator's key taken at construction, or the one set with set_authkey().
  // The main process draws 32 random bytes (OpenSSL RAND_bytes) the first
  // time its key is needed. A child's current_process().authkey() equals the
  // key its Process had when it started (under fork and spawn alike). Works
  // after close(). Throws mp::OSError if the random generator fails.
  std::string authkey() const;

  // Process::set_authkey()
  //
  // Replaces the key, at any time (a started child keeps the key it had at
  // start; processes constructed afterwards by the one whose key this is
  // copy the new key).
  void set_authkey(std::string key);

  // Process::start_method()
  //
  // The start method the process was started with, or for an unstarted one
  // the one it was given (nullopt: the default at start()).
  std::optional<StartMethod> start_method() const;

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

// mp::ParentProcess
//
// The process that started the calling one, as mp::parent_process() returns
// it: a read-only description. Copies share one watch on the parent.
class ParentProcess {
 public:
  // The parent's name (its current_process().name() when it called start())
  // and pid.
  const std::string& name() const noexcept;
  pid_t pid() const noexcept;

  // ParentProcess::is_alive()
  //
  // Whether the parent still runs: a check that never blocks. A parent that
  // has exited counts as ended even before it is reaped (a zombie).
  bool is_alive() const;

  // ParentProcess::join()
  //
  // Waits until the parent has ended, or until `timeout` seconds have passed
  // (nullopt, +inf: no limit; <= 0: one check; NaN: mp::ValueError). Returns
  // nothing, as Python's: check is_alive() afterwards. Blocks on the
  // parent's pidfd (Linux 5.3+); on older kernels it checks getppid() every
  // 5 ms instead. It does not reap: the parent is not the caller's child.
  void join(std::optional<double> timeout = std::nullopt) const;

  // ParentProcess::sentinel()
  //
  // A descriptor readable once the parent has ended (a pidfd that belongs to
  // libmp: do not close it), or -1 where pidfds are unavailable or the parent
  // had already ended when the watch was made.
  int sentinel() const noexcept;

 private:
  friend struct ProcessAccess;
  using Watch = process_detail::ParentWatch;
  explicit ParentProcess(std::shared_ptr<const Watch> watch) noexcept : watch_(std::move(watch)) {}
  std::shared_ptr<const Watch> watch_;  // never null
};

// mp::parent_process()
//
// In a process libmp started (fork or spawn): its parent, the process that
// called start(). The watch on the parent is opened when the child begins,
// robustly against pid reuse (a pidfd of the parent, kept only if the
// parent was still the child's parent after it was opened), so is_alive()
// stays correct after the parent's pid has been reused. In the main process,
// and in a plain fork() of it: nullopt. In a plain fork() of a process libmp
// started: that process's parent (so is_alive() there reports the
// grandparent). Never throws.
std::optional<ParentProcess> parent_process();

// mp::spawn_main()
//
// The entry point of a spawned child; call it first in main():
//
//   int main(int argc, char** argv) {
//     mp::spawn_main(argc, argv);  // never returns in a spawned child
//     ...
//   }
//
// In a spawned child (argv is {argv0, "--mp-spawn-child", "<fd>"}), it reads
// the start-up data, becomes the child's current_process(), runs the task
// registered under the process's task name, and ends the process as a
// forked child ends (see "The child"); an unregistered task (or unreadable
// start-up data) is reported on standard error and gives exit status 1.
// Otherwise it records argv[0] (spawned children get the same argv[0]) and
// returns. A program that never calls it can still spawn, but its spawned
// children then run main() from the start with those arguments.
void spawn_main(int argc, char** argv);

// mp::set_start_method()
//
// Sets the default start method of the calling process, by name ("fork" or
// "spawn"; Python's multiprocessing.set_start_method). Throws
// mp::RuntimeError("context has already been set") if the default has been
// set already (by an earlier call, or fixed by the first start() of a
// Process without a start method, as CPython fixes its default context),
// unless `force`; throws mp::ValueError("cannot find context for 'x'") for an
// unknown name. A forked child inherits the setting; a spawned child starts
// with its parent's. Thread safe.
void set_start_method(std::string_view method, bool force = false);

// mp::get_start_method()
//
// The default start method (without fixing it): fork unless
// set_start_method() chose another.
StartMethod get_start_method();

// mp::get_context()
//
// The start method of the context named `method` (nullopt: the default
// context, which this fixes, as CPython's get_context(None) does). Throws
// mp::ValueError("cannot find context for 'x'") for an unknown name.
StartMethod get_context(std::optional<std::string_view> method = std::nullopt);

// mp::cpu_count()
//
// The number of CPUs online (`os.cpu_count()`), at least 1. Throws
// mp::NotImplementedError("cannot determine number of cpus") if the system
// cannot tell.
int cpu_count();

}  // namespace mp

#endif  // MP_PROCESS_HPP_
