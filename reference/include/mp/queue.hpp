// -----------------------------------------------------------------------------
// File: queue.hpp
// -----------------------------------------------------------------------------
//
// This header defines first-in first-out queues shared between processes,
// with the interface of Python's `multiprocessing` queues and the strict
// profile of mpspec's queue chapters (normative text: `spec/queue/queue.md`,
// `simple_queue.md`, `joinable_queue.md`):
//
//   mp::Queue          a bounded or unbounded FIFO queue of byte strings or
//                      values (mp::Value, pickled), with blocking, timed and
//                      non-blocking put / get, exact qsize / empty / full
//   mp::SimpleQueue    the same without a bound, timeouts or size queries
//   mp::JoinableQueue  a Queue that counts unfinished tasks (task_done, join)
//
// All three live in one shared-memory byte ring: each item is a record (its
// length and sequence number, then its bytes) written behind the last
// published record and then published by one store of the ring's tail; a get
// copies the record at the head and then advances the head by one
// compare-exchange. Producers are ordered by a robust process-shared guard (a
// glibc robust mutex); consumers take no lock, so a producer and a consumer
// never wait for each other. Waits for "not empty", "not full" and "all tasks
// done" spin for about a microsecond, then sleep on futex words, without
// holding the guard.
//
// Unlike CPython's Queue there is no feeder thread and no per-process buffer:
// when put() returns the item is in the queue, visible to every process
// (`empty()` is false at once), and a process may exit at any time without
// losing or flushing anything; join_thread() has nothing to wait for.
//
// Example:
//
//   mp::Queue q(100);                 // at most 100 items
//   if (fork() == 0) {                // the child shares `q`
//     q.put(mp::Value(42));
//     _exit(0);
//   }
//   mp::Value v = q.get(true, 5.0);   // waits up to 5 s; mp::Empty after that
//
// Blocking and timeouts. put() waits while the queue is full, get() while it
// is empty. `block == false` tries once; otherwise `timeout` (seconds) bounds
// the wait: nullopt waits without limit, a value <= 0 tries once, NaN throws
// mp::ValueError. A wait that expires throws mp::Full / mp::Empty. Waits sleep
// in the kernel; they re-check the queue at least every 100 ms, so that a
// process killed between changing the queue and waking the sleepers delays a
// waiter by at most that long.
//
// Fairness. None is promised: when several processes wait, whichever looks
// first after a change proceeds. Items are strictly FIFO (one
// global order, linearizable).
//
// Capacity. Besides `maxsize` (items), the ring has a byte capacity (4 MiB by
// default, QueueOptions). An item needs its length rounded up to 8 bytes plus
// 16; a put that does not fit waits as on a full queue. An item larger than an
// empty ring can ever hold throws mp::ValueError at once.
//
// Crashes. A process killed at any instant, even while holding the guard,
// neither loses nor duplicates a committed item, and leaves the queue usable:
// the next producer to take the put guard repairs the count from a journal of
// the put in progress (a get needs no repair: its one compare-exchange
// decides). A put killed before its publishing store leaves no item, after it
// the item is in the queue exactly once; a get killed before its compare-exchange
// leaves the item at the head, after it the item is gone (its bytes die with
// the process). The same holds for JoinableQueue's count of unfinished tasks.
//
// Processes. A queue is shared with processes forked after it was created
// (the memory is an anonymous shared mapping). Handles are cheap to copy;
// copies refer to the same queue. close() is per handle, as in CPython
// (per process object).

#ifndef MP_QUEUE_HPP_
#define MP_QUEUE_HPP_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mp {

class Value;

namespace detail {
struct QueueShared;
struct QueueMemory;
}  // namespace detail

// Options of a queue's shared ring.
struct QueueOptions {
  // The ring's size in bytes (rounded up to 8; at least 4 KiB). Items queued
  // at one time take at most this much, including 16 bytes of framing each.
  std::size_t capacity_bytes = std::size_t{4} << 20;
};

// mp::Queue
//
// A handle to a process-shared FIFO queue. See the file comment for blocking,
// capacity and crash behaviour.
class Queue {
 public:
  // The bound of an "unbounded" queue (CPython's SEM_VALUE_MAX on Linux).
  static constexpr std::int64_t kUnbounded = 2147483647;

  // Queue::Queue()
  //
  // `maxsize` <= 0 means unbounded (kUnbounded items). Throws
  // mp::OverflowError if maxsize > kUnbounded (as CPython on Linux), and
  // std::system_error if the shared memory cannot be mapped.
  explicit Queue(std::int64_t maxsize = 0, QueueOptions options = {});

  // put_bytes() / put()
  //
  // Appends `item` (put(): the value's pickle). Blocks while the queue is
  // full (see the file comment for `block` and `timeout`); throws mp::Full
  // when it gives up, mp::ValueError if this handle is closed ("Queue is
  // closed") or the item can never fit, mp::ValueError for a NaN timeout.
  // When it returns, the item is in the queue.
  void put_bytes(std::span<const std::byte> item, bool block = true,
                 std::optional<double> timeout = std::nullopt);
  void put_bytes(std::string_view item, bool block = true,
                 std::optional<double> timeout = std::nullopt);
  void put(const Value& value, bool block = true, std::optional<double> timeout = std::nullopt);
  void put_nowait(const Value& value) { put(value, false); }

  // get_bytes() / get()
  //
  // Removes and returns the item at the head (get(): unpickled). Blocks while
  // the queue is empty; throws mp::Empty when it gives up, mp::ValueError if
  // this handle is closed or for a NaN timeout.
  std::string get_bytes(bool block = true, std::optional<double> timeout = std::nullopt);
  // The same into `out`, whose contents it replaces and whose capacity it
  // reuses (no allocation once `out` is large enough: a consumer's loop can
  // keep one buffer). When it throws, `out` may hold anything.
  void get_bytes_into(std::string& out, bool block = true,
                      std::optional<double> timeout = std::nullopt);
  Value get(bool block = true, std::optional<double> timeout = std::nullopt);
  Value get_nowait();

  // The number of items held, exactly, at one instant during the call.
  std::int64_t qsize() const;
  // qsize() == 0, and qsize() == maxsize(), at one instant during the call.
  bool empty() const;
  bool full() const;
  // The bound given at construction (kUnbounded for <= 0).
  std::int64_t maxsize() const noexcept;

  // close()
  //
  // This handle no longer puts or gets: later calls throw
  // mp::ValueError("Queue is closed"). Other handles and processes are not
  // affected; items stay in the queue. Idempotent.
  void close() noexcept { closed_ = true; }
  bool closed() const noexcept { return closed_; }

  // join_thread()
  //
  // CPython waits here for its feeder thread; libmp has none, so this returns
  // at once. Throws mp::AssertionError if this handle is not closed (as
  // CPython). cancel_join_thread() does nothing.
  void join_thread() const;
  void cancel_join_thread() const noexcept {}

 protected:
  Queue(std::int64_t maxsize, QueueOptions options, bool joinable);
  std::shared_ptr<detail::QueueMemory> memory_;
  detail::QueueShared* shared_ = nullptr;
  bool closed_ = false;

 private:
  void check_open() const;
};

// mp::JoinableQueue
//
// A Queue that counts unfinished tasks: every put adds one, task_done()
// removes one, join() waits until the count is 0.
class JoinableQueue : public Queue {
 public:
  explicit JoinableQueue(std::int64_t maxsize = 0, QueueOptions options = {});

  // task_done()
  //
  // Marks one task done. Throws mp::ValueError("task_done() called too many
  // times") if no task is unfinished (the count stays 0). Wakes join()ers
  // when the count reaches 0. Allowed on a closed handle.
  void task_done();

  // join()
  //
  // Waits until the count of unfinished tasks is 0 (at once if it is), or
  // until `timeout` seconds pass: returns whether the count was 0 (CPython's
  // join() has no timeout; this overload's nullopt is the same wait).
  bool join(std::optional<double> timeout = std::nullopt) const;

  // The count of unfinished tasks, at one instant during the call.
  std::int64_t unfinished_tasks() const;
};

// mp::SimpleQueue
//
// An unbounded queue with only put, get, empty and close (CPython's
// SimpleQueue): get() blocks without a timeout; put() never blocks for room
// in the item count (it may wait for room in the ring's bytes). After close(),
// put(), get() and empty() on this handle throw mp::OSError("handle is
// closed"), as CPython's (whose SimpleQueue closes its pipe ends).
class SimpleQueue {
 public:
  explicit SimpleQueue(QueueOptions options = {}) : queue_(0, options) {}

  void put_bytes(std::string_view item);
  std::string get_bytes();
  void put(const Value& value);
  Value get();
  bool empty() const;
  void close() noexcept { closed_ = true; }
  bool closed() const noexcept { return closed_; }

 private:
  void check_open() const;
  Queue queue_;
  bool closed_ = false;
};

}  // namespace mp

#endif  // MP_QUEUE_HPP_
