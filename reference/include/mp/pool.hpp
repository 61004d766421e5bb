// -----------------------------------------------------------------------------
// File: pool.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::Pool`, a pool of worker processes with the
// interface of Python's `multiprocessing.Pool` (CPython 3.8-3.13) and the
// strict profile of mpspec's pool chapter (normative text:
// `spec/pool/pool.md`):
//
//   mp::register_pool_function()   names a function that pool workers can run
//   mp::PoolFunctionRegistration   registers one from a static initializer
//   mp::Pool                       the pool: apply, apply_async, map,
//                                  map_async, starmap, starmap_async, imap,
//                                  imap_unordered, close, terminate, join
//   mp::AsyncResult                the handle of one apply_async / map_async
//                                  / starmap_async job
//   mp::IMapIterator               the handle of one imap / imap_unordered job
//
// Example:
//
//   mp::Value square(const mp::List& args, const mp::Dict&) {
//     const std::int64_t x = args.at(0).as_int();
//     return x * x;
//   }
//   static const mp::PoolFunctionRegistration kSquare("square", &square);
//
//   mp::Pool pool(mp::PoolOptions{.processes = 4});
//   mp::List squares = pool.map("square", {1, 2, 3});       // [1, 4, 9]
//   mp::AsyncResult r = pool.apply_async("square", {7});
//   std::int64_t v = r.get(5.0).as_int();                     // 49
//   pool.close();
//   pool.join();
//
// Functions. A task names a *pool function*: registered under a name in every
// program image that may run it (as mp::Task for mp::Process), so that workers
// started with `spawn` find it again. Its arguments and result are mp::Values
// (pickled on the way, as CPython pickles them): `apply` passes `args` and
// `kwds`; `map` calls f([item], {}); `starmap` calls f(item, {}) with each
// item a list of arguments. A function that throws an mp::Error fails its task
// with that error's kind and message; another std::exception fails it with
// mp::RuntimeError(what()); anything else with mp::RuntimeError("unknown
// exception").
//
// Workers. The pool starts `processes` daemonic worker processes
// (mp::Process, start method from PoolOptions) before the constructor returns.
// Each runs the initializer once, then tasks until it is told to stop, its
// maxtasksperchild count is reached (it then exits and the pool starts a
// replacement), or its parent dies (an idle worker notices within a second
// and exits).
//
// Transport. One memfd-backed shared segment holds, for every worker, a
// single-producer single-consumer byte ring in each direction (parent ->
// worker tasks, worker -> parent results). The parent dispatches each task to
// one worker: the least loaded live one with fewer than 64 tasks in flight;
// the others wait in the parent. Tasks and results are records in the rings;
// a side that finds its ring empty spins briefly (up to ~50 us, yielding its
// CPU after the first few hundred nanoseconds), then sleeps on a futex that
// the other side wakes only when it sleeps, so a busy pool makes no system
// call per task. A record larger than a ring passes through it in pieces.
// Each worker publishes, in the segment, the task it is about to run; that is
// how the parent tells a task that was running at a worker's death (it fails)
// from tasks that were only queued there (they are sent elsewhere).
//
// Threads. Two threads of the parent serve the pool: the *result thread* reads
// the workers' results, delivers them to their AsyncResult / IMapIterator and
// runs the callbacks; the *supervisor* waits (poll) on the workers' sentinels,
// reaps workers that ended and starts replacements. Every member of Pool,
// AsyncResult and IMapIterator may be called from any thread of the parent
// (Pool's destructor excepted, as for any object). Handles must not be used in
// a forked child of the parent.
//
// Callbacks. `callback` (with the value: for map, the whole list) or
// `error_callback` (with the error) runs once per job, in the result thread,
// before the result becomes ready (so after get() returns, the callback has
// run). A callback that throws is reported on standard error and ignored: the
// result still becomes ready and the pool keeps serving. A callback blocks the
// delivery of other results while it runs, as in CPython.
// A callback must not wait for another result of the same pool (apply, map,
// get without a timeout): it would wait for its own thread.
//
// Worker death. When a worker ends while it runs a task (a crash, a signal,
// an exit from inside the function), that task (for map, its chunk) fails with
// mp::WorkerLost; the tasks that were sent to the worker and had not started
// are run by other workers, exactly once; the pool starts a replacement. Idle
// workers may be killed at any time: the pool replaces them and keeps serving.
// (CPython's pool never completes the lost task and can deadlock.)
//
// Initializer failure. An initializer that throws makes the pool *broken*:
// the worker reports the error (kind and message) and exits, no replacement is
// started for it, and every unfinished task and every later task fails with
// that error. (CPython restarts the workers forever.) An initializer that
// crashes its worker is a worker death like any other (and repeats).
//
// Blocking and timeouts. get(), wait() and next() block until the result is
// ready, bounded by `timeout` (seconds; nullopt: no limit; <= 0: one check;
// NaN: mp::ValueError), measured from the call as one CLOCK_MONOTONIC deadline.
// apply(), map() and starmap() block without limit. close() never blocks;
// join() blocks until the result thread and the supervisor ended and every
// worker was reaped; terminate() blocks until the workers were killed (SIGTERM,
// then SIGKILL after a second) and reaped.
//
// Life cycle. A pool is *running* until close() or terminate(). After close()
// the outstanding tasks still complete, then the workers are stopped; join()
// returns once that has happened. terminate() stops at once: every result not
// ready yet fails with mp::ProcessError("pool terminated") (so that get()
// without a timeout never hangs). The destructor terminates and joins a pool
// that was not joined yet; it never throws and leaves no process, descriptor,
// thread or mapping behind.
//
// Fairness. Results of one job come in input order (map, imap) or in
// completion order (imap_unordered); jobs are dispatched in submission order.
// Nothing else is promised: a task queued behind a long one on the same worker
// waits for it.
//
// Errors (kinds as CPython's):
//
//   call                               condition                  kind
//   ---------------------------------  -------------------------  -------------
//   Pool()                             processes < 1              ValueError
//   Pool()                             maxtasksperchild < 1       ValueError
//   Pool()                             initializer unregistered   ValueError
//   any submission                     after close / terminate    ValueError
//   any submission                     func unregistered          ValueError
//   map*, starmap*                     chunksize < 1              ValueError
//   imap, imap_unordered               chunksize < 1              ValueError
//   join()                             still running              ValueError
//   get(), next()                      not ready within timeout   TimeoutError
//   get(), next(), apply, map, ...     the task failed            its kind
//   get(), next(), ...                 the worker died in it      WorkerLost
//   get(), next(), ...                 terminate()                ProcessError
//   successful()                       not ready                  ValueError
//   starmap*: an item that is not a list fails its chunk with TypeError.
//
// Worker start failures (fork, exec) are std::system_error from the
// constructor; later (replacements) they break the pool with ProcessError.

#ifndef MP_POOL_HPP_
#define MP_POOL_HPP_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mp/errors.hpp"
#include "mp/process.hpp"
#include "mp/value.hpp"

namespace mp {

// mp::List
//
// A list of values (Python's list; the list alternative of mp::Value).
using List = Value::List;

namespace pool_detail {
struct ResultState;  // one apply / map job; defined in pool.cpp
struct IMapState;    // one imap job; defined in pool.cpp
struct Core;         // one pool; defined in pool.cpp
}  // namespace pool_detail

// mp::PoolFunction
//
// A function that pool workers run: positional arguments and keyword
// arguments in, one value out (or an exception, see "Functions" above).
using PoolFunction = std::function<Value(const List& args, const Dict& kwds)>;

// mp::register_pool_function()
//
// Registers `fn` under `name` in the calling process: workers started later
// (forked from it, or spawned from a program image that registers it
// statically) can run it. Throws mp::ValueError if `name` is empty, `fn` is
// empty, or the name is taken. Thread safe.
void register_pool_function(std::string name, PoolFunction fn);

// mp::is_pool_function_registered()
//
// Whether a pool function named `name` is registered in the calling process.
bool is_pool_function_registered(const std::string& name);

// mp::PoolFunctionRegistration
//
// Registers a pool function when constructed, for static initializers (the
// way to register under `spawn`):
//
//   static const mp::PoolFunctionRegistration kSquare("square", &square);
struct PoolFunctionRegistration {
  PoolFunctionRegistration(std::string name, PoolFunction fn);
};

// mp::PoolOptions
//
// Python's Pool(processes, initializer, initargs, maxtasksperchild, context).
struct PoolOptions {
  // The number of workers. nullopt: mp::cpu_count(). < 1: mp::ValueError.
  std::optional<int> processes{};
  // A registered pool function each worker runs once, with `initargs`,
  // before its first task (its value is ignored). See "Initializer failure".
  std::optional<std::string> initializer{};
  List initargs{};
  // A worker exits after this many tasks (a map chunk is one task) and is
  // replaced. nullopt: unlimited. < 1: mp::ValueError.
  std::optional<long> maxtasksperchild{};
  // How workers start. nullopt: mp::get_start_method() when the pool is made.
  std::optional<StartMethod> start_method{};
};

// mp::ResultCallback, mp::ErrorCallback
//
// Called in the result thread (see "Callbacks").
using ResultCallback = std::function<void(const Value&)>;
using ErrorCallback = std::function<void(const Error&)>;

// mp::AsyncResult
//
// The result of apply_async, map_async or starmap_async. Copies are handles
// to the same result. A default-constructed handle has no result: its members
// throw mp::ValueError.
class AsyncResult {
 public:
  AsyncResult() = default;

  // AsyncResult::get()
  //
  // Waits up to `timeout` (see "Blocking and timeouts") and returns the value
  // (map: the list of results in input order). Throws mp::TimeoutError if the
  // result is not ready in time (the result stays usable), or the task's
  // error: same kind and message (mp::WorkerLost, mp::ProcessError as above).
  Value get(std::optional<double> timeout = std::nullopt);

  // AsyncResult::wait()
  //
  // Waits up to `timeout` for the result to be ready; returns either way.
  void wait(std::optional<double> timeout = std::nullopt);

  // AsyncResult::ready()
  //
  // Whether the result is ready (its callback, if any, has run). Never blocks.
  bool ready() const;

  // AsyncResult::successful()
  //
  // Whether the job succeeded. Throws mp::ValueError("<result> not ready")
  // while it is not ready.
  bool successful() const;

 private:
  friend class Pool;
  explicit AsyncResult(std::shared_ptr<pool_detail::ResultState> state) noexcept
      : state_(std::move(state)) {}
  std::shared_ptr<pool_detail::ResultState> state_;
};

// mp::IMapIterator
//
// The results of imap (input order) or imap_unordered (completion order).
// Copies are handles to the same iterator.
class IMapIterator {
 public:
  IMapIterator() = default;

  // IMapIterator::next()
  //
  // Waits up to `timeout` for the next result and returns it; nullopt once
  // every result was returned (and again on every later call). Throws
  // mp::TimeoutError if the next result is not ready in time (nothing is
  // consumed: the iterator stays usable), and a failing item's error at that
  // item's position (the next call goes on with the following item). With
  // chunksize > 1 a failing chunk yields its error once, in place of its
  // items.
  std::optional<Value> next(std::optional<double> timeout = std::nullopt);

 private:
  friend class Pool;
  explicit IMapIterator(std::shared_ptr<pool_detail::IMapState> state) noexcept
      : state_(std::move(state)) {}
  std::shared_ptr<pool_detail::IMapState> state_;
};

// mp::Pool
//
// A pool of worker processes; see the file comment.
class Pool {
 public:
  // Pool::Pool()
  //
  // Starts the workers (they exist when the constructor returns) and the
  // pool's threads. Throws mp::ValueError("Number of processes must be at
  // least 1"), mp::ValueError("maxtasksperchild must be a positive int or
  // None"), mp::ValueError for an unregistered initializer, and
  // std::system_error if the shared memory or a worker cannot be made.
  explicit Pool(PoolOptions options = {});

  // Pool::~Pool()
  //
  // terminate() and join() unless joined already. Never throws.
  ~Pool();

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Pool::apply()
  //
  // Runs func(args, kwds) in a worker and returns its value: apply_async()
  // then get(). Throws the task's error.
  Value apply(const std::string& func, List args = {}, Dict kwds = {});

  // Pool::apply_async()
  //
  // Submits func(args, kwds) and returns at once.
  AsyncResult apply_async(const std::string& func, List args = {}, Dict kwds = {},
                          ResultCallback callback = {}, ErrorCallback error_callback = {});

  // Pool::map()
  //
  // func([item]) for every item, in chunks of `chunksize` items (nullopt:
  // ceil(len / (4 * processes))), results in input order. Blocks until every
  // chunk has finished; throws the error of the first chunk that failed (in
  // completion order).
  List map(const std::string& func, const List& iterable,
           std::optional<long> chunksize = std::nullopt);

  // Pool::map_async()
  //
  // As map(), without waiting. The result is ready once every chunk has
  // finished; its value is the list of results.
  AsyncResult map_async(const std::string& func, const List& iterable,
                        std::optional<long> chunksize = std::nullopt, ResultCallback callback = {},
                        ErrorCallback error_callback = {});

  // Pool::starmap(), Pool::starmap_async()
  //
  // As map() / map_async() with func(item) (each item a list of arguments).
  List starmap(const std::string& func, const List& iterable,
               std::optional<long> chunksize = std::nullopt);
  AsyncResult starmap_async(const std::string& func, const List& iterable,
                            std::optional<long> chunksize = std::nullopt,
                            ResultCallback callback = {}, ErrorCallback error_callback = {});

  // Pool::imap(), Pool::imap_unordered()
  //
  // Submits func([item]) for every item in chunks of `chunksize` (>= 1) and
  // returns an iterator over the results: in input order, or in completion
  // order.
  IMapIterator imap(const std::string& func, const List& iterable, long chunksize = 1);
  IMapIterator imap_unordered(const std::string& func, const List& iterable, long chunksize = 1);

  // Pool::close()
  //
  // Stops accepting tasks; the outstanding ones complete, then the workers
  // exit. Never blocks. Idempotent (no effect after terminate()).
  void close();

  // Pool::terminate()
  //
  // Stops accepting tasks, kills the workers (SIGTERM, SIGKILL after a
  // second) and reaps them, fails every result not ready yet with
  // mp::ProcessError("pool terminated"), and ends the pool's threads.
  // Idempotent.
  void terminate();

  // Pool::join()
  //
  // Waits until the workers have exited and the pool's threads have ended,
  // after close() or terminate(). Throws mp::ValueError("Pool is still
  // running") before.
  void join();

  // Pool::running()
  //
  // Whether the pool accepts tasks: true until close() or terminate(). (Python's
  // `with Pool() as p` refuses a pool that is not running; a C++ scope holds
  // the Pool itself, whose destructor terminates it.)
  bool running() const;

  // Pool::processes()
  //
  // The number of workers the pool keeps.
  int processes() const;

  // Pool::worker_pids()
  //
  // The pids of the workers alive now (a worker that ended and was not
  // replaced yet is not listed).
  std::vector<pid_t> worker_pids() const;

 private:
  AsyncResult submit_map(const std::string& func, const List& iterable,
                         std::optional<long> chunksize, bool star, ResultCallback callback,
                         ErrorCallback error_callback);
  IMapIterator submit_imap(const std::string& func, const List& iterable, long chunksize,
                           bool ordered);

  std::shared_ptr<pool_detail::Core> core_;
};

}  // namespace mp

#endif  // MP_POOL_HPP_
