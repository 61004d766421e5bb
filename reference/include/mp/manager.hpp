// -----------------------------------------------------------------------------
// File: manager.hpp
// -----------------------------------------------------------------------------
//
// This header defines managers and proxies with the semantics of Python's
// `multiprocessing.managers` (SyncManager, CPython 3.11 - 3.13; normative
// text: mpspec `spec/manager/manager.md` and `proxy.md`):
//
//   mp::Manager          a server process that holds objects (*referents*)
//                        and serves method calls on them from any process
//                        that knows its address and authentication key
//   mp::Proxy            a client-side handle to one referent: call(),
//                        call_proxy(), getvalue()
//   mp::Token            what names a referent: typeid, server address, id
//   mp::Referent         the interface of an object held by a server
//   mp::CallContext      what a referent learns about the call it serves
//   mp::register_typeid()  names a kind of referent that servers can create
//   mp::RemoteError      the server could not carry out a request
//   mp::StopIteration    an iterator referent has no more items
//
// Example:
//
//   mp::Manager manager;                           // AF_UNIX, the process's key
//   manager.start();                               // forks the server
//   mp::Proxy d = manager.create("dict");
//   d.call("__setitem__", {"a", 1});
//   mp::Value one = d.call("__getitem__", {"a"});  // 1
//   mp::Proxy lock = manager.create("Lock");
//   if (fork() == 0) {                             // the child has its own
//     lock.call("acquire");                        //   connection to the server
//     _exit(0);
//   }
//   ...
//   manager.shutdown();                            // also done by ~Manager
//
// Typeids. A server creates referents by *typeid*, a name registered in the
// process (mp::register_typeid) with a factory, the names of the methods that
// clients may call (*exposed*), and which of them return a new referent
// instead of a value (*method_to_typeid*, e.g. dict `__iter__` -> "Iterator").
// SyncManager's typeids are built in (see "Built-in typeids" below). The
// registry is process-wide; a server started with `fork` sees every typeid
// registered before start(), one started with `spawn` only those registered
// from static initializers (as for mp::Task) and the built-ins.
//
// Wire. One authenticated connection (mp::Listener / mp::Client, CPython's
// handshake) per client thread and server; each request (a pickled list
// `[id or None, method, args, kwds]`) gets one reply (`["#RETURN", value]`,
// `["#ERROR", [kind, message]]`, `["#TRACEBACK", message]` or
// `["#PROXY", [typeid, id, exposed]]`), CPython's message kinds. The
// messages are libmp's own: a CPython client cannot talk to a libmp server
// (values are mp::Values, tuples are lists, ids are integers). Over AF_UNIX,
// the authenticated stream is then exchanged for a SOCK_SEQPACKET socketpair
// whose client end the server passes (SCM_RIGHTS), so that a message takes
// one read. A caller checks for the reply without sleeping for up to about
// 50 us before it sleeps in the kernel, and a server thread does the same for
// its client's next request, so that back-to-back calls avoid most sleeps and
// wake-ups (at the cost of that much CPU time per call).
//
// Server threads. The server runs one thread per client connection, so a
// client blocked in a referent's method (Lock acquire, Queue get, Event wait,
// Barrier wait, ...) blocks only its own connection. Each method call runs
// under the referent's own mutex: it is atomic with respect to every other
// call on that referent. Ownership (RLock, Condition) belongs to the
// connection, i.e. to one thread of one client process, as in CPython.
//
// Clients. A process has one connection per (server, thread): a Proxy used
// from several threads uses one connection per thread (a Proxy is thread
// safe). A forked child never uses its parent's connections (it closes its
// copies at fork, so they never keep a dead parent's connection open): at
// its first call it opens its own, and takes its own reference to the
// referent (CPython's after-fork incref); the referent must still exist
// then, i.e. the parent must keep its proxy while a child may start using
// its copy. Threads' connections close when the thread ends.
//
// Reference counting. A referent lives while some process holds a proxy to
// it: creating takes one reference for the creating process, a forked child
// takes one at its first use, and the last Proxy handle of a process drops
// that process's reference (a request to the server; errors ignored). A
// process that dies without dropping its references (killed, _exit) leaves
// them counted until the server ends. Every referent is released when the
// server ends.
//
// Crashes. A client that dies closes its connections: the server thread
// serving it sees end of file and ends; one blocked in a referent's wait on
// its behalf notices within about 100 ms and gives up (the wait has no
// effect). A lock (Lock, RLock, Semaphore, Condition) that a dead client held
// stays held, as in CPython: nothing releases it (the "mp." typeids below
// report a dead RLock or Condition owner instead). After shutdown() (or a dead
// server), a proxy's calls fail at once with mp::EOFError or mp::OSError
// (never hang); the next call tries to connect again.
//
// Errors (kinds as CPython's):
//
//   call                               condition                   kind
//   ---------------------------------  --------------------------  -------------------
//   start()                            started already             ProcessError
//   start(), serve_forever()           after shutdown()            ProcessError
//   start()                            server failed to bind       OSError (as bind)
//   create(), connect()                wrong key                   AuthenticationError
//   create()                           not started nor connected   AssertionError
//   create()                           unknown typeid, or the factory threw
//                                                                  RemoteError
//   Proxy::call()                      method not exposed / unknown id
//                                                                  RemoteError
//   Proxy::call()                      the referent's method threw that error's kind
//   Proxy calls                        server gone                 EOFError / OSError
//
// Built-in typeids (the referents' methods are Python's, with Python's
// arguments by position or by keyword and Python's errors):
//
//   dict             [] or [map]: __getitem__ (KeyError), __setitem__,
//                    __delitem__ (KeyError), __len__, __contains__, get, keys,
//                    values, items (a list of [key, value] lists), update,
//                    pop (KeyError), popitem, setdefault, clear, copy,
//                    __iter__ (-> "Iterator" proxy over the keys). Keys are str
//                    (TypeError otherwise).
//   list             [] or [list]: __getitem__, __setitem__, __delitem__
//                    (IndexError), __len__, __contains__, append, extend,
//                    insert, pop (IndexError), remove, index (ValueError),
//                    count, reverse, sort (reverse=; TypeError for
//                    incomparable items)
//   Namespace        kwds: the attributes; __getattribute__ (AttributeError),
//                    __setattr__, __delattr__ (AttributeError)
//   Value            [typecode, value]: get, set (the typecode is ignored)
//   Array            [typecode, list]: __len__, __getitem__, __setitem__
//                    (IndexError; TypeError / OverflowError for an item the
//                    typecode cannot hold)
//   Queue, JoinableQueue  [maxsize]: put, get, put_nowait, get_nowait,
//                    qsize, empty, full, task_done, join (Full, Empty)
//   Lock, RLock      acquire([blocking, timeout]), release (RuntimeError)
//   Semaphore, BoundedSemaphore  [value]: acquire, release (ValueError for
//                    a BoundedSemaphore over-release)
//   Event            is_set, set, clear, wait
//   Condition        acquire, release, wait, notify, notify_all (its own RLock)
//   Barrier          [parties] (kwds timeout): wait, abort, reset,
//                    __getattribute__ of parties / n_waiting / broken
//                    (BrokenBarrierError)
//   Iterator         proxy only: __next__ (StopIteration at the end;
//                    RuntimeError if the dict changed size)
//
// The "mp." typeids: the same objects with the semantics of libmp's own
// primitives (mp::Lock, mp::RLock, mp::Semaphore, mp::BoundedSemaphore,
// mp::Condition, mp::Queue, mp::JoinableQueue; mpspec's sync and queue
// chapters) instead of Python's threading / queue.Queue, each client
// connection counting as one thread:
//
//   mp.Lock          acquire([block, timeout]), release: releasing an
//                    unlocked lock is ValueError ("semaphore or lock released
//                    too many times"); a non-blocking acquire ignores its
//                    timeout; a negative timeout counts as 0. A dead holder's
//                    lock stays held (any client may release it).
//   mp.RLock         as mp.Lock, but releasing a lock the caller does not own
//                    is AssertionError; when the owning connection closes (its
//                    process killed, its thread ended) while owning it, the
//                    next acquire by another client, blocking or not, takes it
//                    at depth 1 and fails with OwnerDied (the caller then owns
//                    it; only that acquire reports the death).
//   mp.Semaphore, mp.BoundedSemaphore  [value]: acquire (as mp.Lock),
//                    release, get_value (ValueError for a bounded over-release
//                    and for an initial value above 2147483647)
//   mp.Condition     acquire / release as mp.RLock (OwnerDied included),
//                    wait, notify, notify_all: AssertionError without the
//                    lock; a negative timeout counts as 0; a waiter whose
//                    client has gone takes no wake-up (notify skips it)
//   mp.Queue, mp.JoinableQueue  [maxsize]: as Queue, but a non-blocking put
//                    / get ignores its timeout, a negative timeout counts as 0,
//                    and a maxsize above 2147483647 is OverflowError
//
// Threads. Every member of Manager and Proxy may be called from any thread,
// concurrently. Handles (Manager, Proxy) are copied into forked children and
// work there (see "Clients"); a child cannot shutdown() or join a server it
// did not start other than by asking it to stop.

#ifndef MP_MANAGER_HPP_
#define MP_MANAGER_HPP_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mp/connection.hpp"
#include "mp/errors.hpp"
#include "mp/process.hpp"
#include "mp/value.hpp"

namespace mp {

using List = Value::List;

// mp::RemoteError
//
// A manager server could not carry out a request: the method is not exposed,
// the object or typeid is unknown, the request was malformed. The proxy stays
// usable. Kind "RemoteError" (CPython's multiprocessing.managers.RemoteError).
class RemoteError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::StopIteration
//
// An iterator referent has no more items (Python's StopIteration). Kind
// "StopIteration".
class StopIteration final : public Error {
 public:
  StopIteration() : Error("") {}
  using Error::Error;
  const char* kind() const noexcept override;
};

namespace manager_detail {
class Clients;  // the server's table of open client connections
}  // namespace manager_detail

// mp::CallContext
//
// What a referent's method learns about the call it serves (passed to
// Referent::call). Used only by the server thread that serves the call.
class CallContext {
 public:
  using Clock = std::chrono::steady_clock;

  // CallContext::client()
  //
  // The id of the client connection the call came on: one thread of one
  // client process. The owner of an RLock or Condition, as CPython's server
  // thread is.
  std::uint64_t client() const noexcept { return client_; }

  // CallContext::wait()
  //
  // Waits on `cv` (with `lock` held on entry and on return, as
  // std::condition_variable::wait_until) until `ready()` is true or
  // `deadline` passes (nullopt: no limit); returns ready()'s last value. While
  // waiting it checks, at least every 100 ms, that the client is still
  // connected and the server is not stopping, and once more when ready()
  // becomes true after a wait; if not, it throws mp::EOFError (the server then
  // abandons the call, so a dead client's wait takes nothing: no lock, no
  // semaphore unit, no item). Referents should use it for every wait that may
  // be long, so that a dead client or a shutdown never leaves a server thread
  // blocked; a referent whose waiters may give up this way should wake all of
  // them (notify_all), not one.
  template <class Pred>
  bool wait(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
            std::optional<Clock::time_point> deadline, Pred ready) {
    while (!ready()) {
      auto until = Clock::now() + std::chrono::milliseconds(100);
      if (deadline && *deadline < until) until = *deadline;
      cv.wait_until(lock, until);
      check();
      if (ready()) return true;
      if (deadline && Clock::now() >= *deadline) return ready();
    }
    return true;
  }

  // CallContext::check()
  //
  // Throws mp::EOFError if the client has gone (its connection closed) or
  // the server is stopping.
  void check() const;

  // CallContext::client_alive()
  //
  // Whether the client connection `client` (an id client() gave) is still
  // open. False as soon as its thread or process has closed its end (ended,
  // exited, was killed), even before the server thread serving it has
  // noticed; false for an id the server no longer serves. Never blocks (one
  // poll(2)). A robust referent uses it to tell a dead owner or waiter from a
  // live one at the moment it matters (see Referent::client_gone()).
  bool client_alive(std::uint64_t client) const;

  // For the server (manager_server.cpp).
  CallContext(std::uint64_t client, int fd, const std::atomic<bool>* stopping,
              const manager_detail::Clients* clients = nullptr) noexcept
      : client_(client), fd_(fd), stopping_(stopping), clients_(clients) {}
  // Whether check() has thrown (the server then sends no reply).
  bool abandoned() const noexcept { return abandoned_; }

 private:
  std::uint64_t client_;
  int fd_;
  const std::atomic<bool>* stopping_;
  const manager_detail::Clients* clients_;
  mutable bool abandoned_ = false;
};

// mp::Referent
//
// An object held by a manager server. Implementations dispatch calls by
// method name; they must be safe to call from several server threads at once
// (one per client), typically with a std::mutex of their own, and must use
// CallContext::wait for waits that may block.
class Referent {
 public:
  virtual ~Referent() = default;

  // Referent::call()
  //
  // Runs `method` (only names the typeid exposes reach it) and returns its
  // value. Throw an mp::Error to fail the call: the client's Proxy::call
  // throws an error of the same kind() and message. Another std::exception
  // reaches the client as mp::RuntimeError(what()).
  virtual Value call(CallContext& ctx, std::string_view method, const List& args,
                     const Dict& kwds) = 0;

  // Referent::call_referent()
  //
  // Runs `method`, one the typeid lists in method_to_typeid, and returns the
  // new referent, which the server registers under that typeid and the
  // client receives as a Proxy. Default: throws mp::TypeError.
  virtual std::shared_ptr<Referent> call_referent(CallContext& ctx, std::string_view method,
                                                  const List& args, const Dict& kwds);

  // Referent::value()
  //
  // A copy of the object as a Value (Proxy::getvalue, CPython's
  // `_getvalue()`). Default: throws mp::TypeError.
  virtual Value value() const;

  // Referent::client_gone()
  //
  // Called once for every referent of the server when the client connection
  // `client` has closed (its thread or process ended or was killed), after
  // its last call has returned or been abandoned, from the server thread that
  // served it. A robust lock marks itself "owner died" here when `client` held
  // it (the "mp." typeids). Must not block for long. Default: does nothing.
  virtual void client_gone(std::uint64_t client);
};

// mp::ReferentFactory
//
// Makes a referent from create()'s arguments. It may return the same object
// several times (e.g. one server-global dict): the server then hands out
// proxies to one referent, counted together.
using ReferentFactory =
    std::function<std::shared_ptr<Referent>(const List& args, const Dict& kwds)>;

// mp::TypeidSpec
//
// A registered typeid: its factory (empty for a typeid that only methods
// return, like "Iterator"), the methods clients may call, and the methods
// that return a new referent, with its typeid. Names in method_to_typeid are
// exposed too.
struct TypeidSpec {
  ReferentFactory factory;
  std::vector<std::string> exposed;
  std::map<std::string, std::string> method_to_typeid;
};

// mp::register_typeid()
//
// Registers `spec` under `name` in the calling process (see "Typeids").
// Throws mp::ValueError for an empty name or one that is registered already
// (the built-ins included). Thread safe.
void register_typeid(std::string name, TypeidSpec spec);

// mp::typeid_spec()
//
// A copy of the typeid registered under `name` (e.g. to register a variant
// of a built-in with another factory), or nullopt.
std::optional<TypeidSpec> typeid_spec(std::string_view name);

// mp::make_referent()
//
// A new referent of the registered typeid `name` made by its factory (e.g. a
// built-in "dict" for a custom factory to hand out). Throws mp::ValueError for
// an unknown typeid or one without a factory, and what the factory throws.
std::shared_ptr<Referent> make_referent(std::string_view name, const List& args = {},
                                        const Dict& kwds = {});

// mp::TypeidRegistration
//
// Registers a typeid when constructed, for static initializers.
struct TypeidRegistration {
  TypeidRegistration(std::string name, TypeidSpec spec) {
    register_typeid(std::move(name), std::move(spec));
  }
};

// mp::Token
//
// What names a referent: its typeid, its server's address, its id there.
struct Token {
  std::string typeid_name;
  Address address = Address::unix_socket("");
  std::uint64_t id = 0;
};

namespace manager_detail {
struct ProxyState;    // manager.cpp
struct ManagerState;  // manager.cpp
}  // namespace manager_detail

// mp::Proxy
//
// A handle to one referent. Copies are cheap and share one reference to the
// referent (see "Reference counting"). Every call is one request / reply
// round trip on the calling thread's connection to the server; calls block
// until the reply comes (a blocking method of the referent blocks the caller
// as long). Thread safe; usable in forked children.
class Proxy {
 public:
  // Proxy::Proxy(token, authkey)
  //
  // A new proxy to the referent `token` names, in the server that accepts
  // `authkey` (e.g. a token sent by another process): takes a reference,
  // connecting to the server. Throws as call().
  Proxy(const Token& token, std::string authkey);

  // Proxy::call()
  //
  // Calls `method` of the referent with `args` and `kwds` and returns its
  // value (a copy). Throws an error of the kind the referent's method threw
  // (mp::KeyError, mp::IndexError, ...; a kind libmp has no class for comes
  // as an mp::Error with that kind()), mp::RemoteError if the method is not
  // exposed (the proxy stays usable), mp::TypeError if the method returns a
  // proxy (use call_proxy; the new referent is released), and mp::EOFError /
  // mp::OSError when the server is gone or the connection failed.
  Value call(std::string_view method, List args = {}, Dict kwds = {}) const;

  // Proxy::call_proxy()
  //
  // Calls `method`, one that returns a referent (e.g. dict `__iter__`), and
  // returns a Proxy to it. Works in any process that can reach the server
  // (CPython's gh-99595 does not apply). Throws as call(), and mp::TypeError
  // if the method returns a value.
  Proxy call_proxy(std::string_view method, List args = {}, Dict kwds = {}) const;

  // Proxy::getvalue()
  //
  // A copy of the referent (CPython's `_getvalue()`). Throws as call();
  // mp::TypeError from a referent that has no value form.
  Value getvalue() const;

  // The referent's token, and the names the server lets clients call.
  const Token& token() const noexcept;
  const std::vector<std::string>& exposed() const noexcept;

 private:
  friend struct ProxyAccess;
  explicit Proxy(std::shared_ptr<manager_detail::ProxyState> state) noexcept
      : state_(std::move(state)) {}
  std::shared_ptr<manager_detail::ProxyState> state_;  // never null
};

// mp::ManagerOptions
//
// Settings of a Manager (Python's keyword arguments).
struct ManagerOptions {
  // How start() starts the server. Default: mp::get_start_method() at start().
  std::optional<StartMethod> start_method{};
  // How long shutdown() waits for the server to end after asking it, before
  // it terminates (SIGTERM) and then kills (SIGKILL) it; CPython's
  // shutdown_timeout.
  double shutdown_timeout = 1.0;
};

// mp::Manager
//
// A manager: starts (or connects to, or is) a server and creates referents
// in it. States: initial -> started (start(), connect()) -> shut down
// (shutdown(); also after serve_forever() returns). Not copyable or movable;
// every member is thread safe, but the Manager must outlive a serve_forever()
// that runs in another thread.
class Manager {
 public:
  // Manager::Manager()
  //
  // An unstarted manager. `address`: where the server listens (start(),
  // serve_forever()) or is (connect()); nullopt: a fresh abstract AF_UNIX
  // name chosen at start(). An inet address with port 0 gets a free port at
  // start(). `authkey`: the key clients must prove (nullopt: the calling
  // process's mp::current_process().authkey(), taken now).
  explicit Manager(std::optional<Address> address = std::nullopt,
                   std::optional<std::string> authkey = std::nullopt, ManagerOptions options = {});
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Shuts the server down if this process started it (bounded as
  // shutdown()); never throws.
  ~Manager();

  // Manager::start()
  //
  // Starts the server in a new daemonic child process (named
  // "SyncManager-<n>") and waits until it listens; address() then gives the
  // bound address. The server ignores SIGINT; SIGTERM stops it cleanly.
  // Throws mp::ProcessError("Already started server") when started or
  // connected, mp::ProcessError("Manager has shut down") after shutdown(),
  // the bind's error (mp::OSError) if the server could not listen, and
  // mp::ProcessError if it did not report within 30 s.
  void start();

  // Manager::connect()
  //
  // Connects to a running server at address() and checks the key (one
  // request). Throws mp::AuthenticationError for a wrong key, mp::OSError
  // when nothing listens there, mp::ProcessError when started or shut down.
  void connect();

  // Manager::serve_forever()
  //
  // Runs the server in the calling process, on the calling thread (plus one
  // thread per client), until a client asks it to shut down (a Manager's
  // shutdown() or request_shutdown()); then stops serving (clients' calls
  // fail from then on), releases every referent and returns. address() is
  // valid from the moment the server listens. Throws as start() for the
  // state and for the bind.
  void serve_forever();

  // Manager::shutdown()
  //
  // Started by this process: asks the server to stop, waits up to
  // shutdown_timeout for it to end, then terminates it, then kills it, and
  // reaps it (bounded: a few times shutdown_timeout at most). Connected, or
  // started by another process (a forked child's copy): asks the server to
  // stop (bounded wait for the answer). Initial: does nothing but change the
  // state. Idempotent; never throws for a server that is gone already.
  // Afterwards the proxies' calls fail; start() and create() fail.
  void shutdown();

  // Manager::create()
  //
  // Creates a referent of `typeid_name` with `args` and `kwds` in the server
  // and returns a Proxy to it (holding the one reference). Throws
  // mp::AssertionError("server not yet started") before start() / connect()
  // or serve_forever(), mp::RemoteError for an unknown typeid or when the
  // factory throws (as CPython; the message names the factory's error kind,
  // e.g. "ValueError: semaphore initial value must be >= 0"), and as
  // Proxy::call.
  Proxy create(std::string_view typeid_name, List args = {}, Dict kwds = {});

  // Manager::address()
  //
  // The server's address: as constructed until the server listens, then the
  // bound one (the real port, the chosen abstract name).
  Address address() const;

  // Manager::authkey()
  std::string authkey() const;

  // Manager::pid()
  //
  // The server process's pid when this manager started it, else nullopt.
  std::optional<pid_t> pid() const;

  // Manager::started()
  //
  // Whether the manager is started (or connected, or serving) and not shut
  // down.
  bool started() const;

 private:
  std::shared_ptr<manager_detail::ManagerState> state_;  // never null
};

// mp::request_shutdown()
//
// Asks the server at `address` (key `authkey`) to stop, and waits up to
// `timeout` seconds for its answer. Throws mp::AuthenticationError for a
// wrong key, mp::OSError / mp::EOFError when it cannot be reached.
void request_shutdown(const Address& address, const std::string& authkey, double timeout = 5.0);

}  // namespace mp

#endif  // MP_MANAGER_HPP_
