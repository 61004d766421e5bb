// mp::Queue, mp::JoinableQueue, mp::SimpleQueue: one shared-memory byte ring
// (see queue.hpp for the contract).
//
// Layout of the shared segment: a QueueShared header, then the ring. Positions
// (head, tail) count bytes from the queue's creation and only grow; a
// position's place in the ring is position % capacity. A record starts at an
// 8-byte boundary: an 8-byte frame (the item's length, and a marker), then the
// item, padded to 8. A record never wraps: where the rest of the ring is too
// short for it, a wrap frame fills the rest and the record starts at the ring's
// beginning.
//
// Every call runs under the guard (a robust, process-shared glibc mutex), so
// the calls are linearizable in the order they take it. A call that changes
// the queue first writes what it is about to do into the journal (the
// operation, the position that publishes it, and the counters' values after
// it), then makes its one publishing store (tail for a put, head for a get),
// then stores the counters, then clears the journal. When a holder dies, the
// next locker gets EOWNERDEAD and repairs: if the publishing store happened
// (the position is the journal's), it stores the journal's counters (rolls
// forward); otherwise nothing was published and it only clears the journal
// (rolls back: a half-written record beyond the tail is never read).
#include "mp/queue.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <new>
#include <system_error>

#include "mp/codec.hpp"
#include "mp/errors.hpp"
#include "mp/platform/clock.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/shm.hpp"
#include "mp/value.hpp"

namespace mp {
namespace detail {

constexpr std::uint32_t kSleepers = 0x80000000u;  // a futex word's "someone may sleep" bit
constexpr std::uint32_t kRecordMarker = 0x51554555u;  // "QUEU"
constexpr std::uint32_t kWrapMarker = 0x57524150u;    // "WRAP"
constexpr std::uint64_t kFrame = 8;
// A sleeping waiter re-checks the queue at least this often, in case the
// process that changed it was killed before waking the sleepers.
constexpr std::int64_t kRecheckNs = 100'000'000;
// Before sleeping, a waiter checks the queue this many times (no system call):
// a producer and a consumer on two CPUs then rarely need a futex wake.
constexpr int kSpins = 200;

enum class JournalOp : std::uint32_t { kNone = 0, kPut = 1, kGet = 2 };

struct QueueShared {
  pthread_mutex_t guard;
  std::uint64_t capacity = 0;  // ring bytes, a multiple of 8
  std::int64_t maxsize = 0;
  bool joinable = false;
  // The state. head/tail/count are read without the guard only as hints
  // (spinning before a sleep); every decision is made under the guard.
  std::atomic<std::uint64_t> head{0};
  std::atomic<std::uint64_t> tail{0};
  std::atomic<std::int64_t> count{0};
  std::atomic<std::int64_t> unfinished{0};
  // The journal of the call in progress (valid while op != kNone).
  std::atomic<JournalOp> op{JournalOp::kNone};
  std::atomic<std::uint64_t> journal_position{0};
  std::atomic<std::int64_t> journal_count{0};
  std::atomic<std::int64_t> journal_unfinished{0};
  // Futex words: a change counter (low 31 bits) and kSleepers.
  alignas(64) std::atomic<std::uint32_t> not_empty{0};
  alignas(64) std::atomic<std::uint32_t> not_full{0};
  alignas(64) std::atomic<std::uint32_t> all_done{0};
  alignas(64) unsigned char ring[1];  // `capacity` bytes

  unsigned char* at(std::uint64_t position) noexcept { return ring + position % capacity; }
};

struct QueueMemory {
  platform::SharedMapping mapping;
  ~QueueMemory() {
    // The guard is not destroyed: other processes may still use the queue.
  }
};

}  // namespace detail

namespace {

using detail::JournalOp;
using detail::kFrame;
using detail::QueueShared;

std::uint64_t padded(std::uint64_t n) noexcept { return (n + 7) & ~std::uint64_t{7}; }

platform::Deadline deadline_for(bool block, std::optional<double> timeout) {
  if (!block) return platform::Deadline::expired();
  if (!timeout.has_value()) return platform::Deadline::never();
  return platform::Deadline::after(*timeout);  // NaN -> ValueError
}

// Rolls the journal forward or back (see the file comment). Called with the
// guard held, after EOWNERDEAD.
void repair(QueueShared& q) noexcept {
  const JournalOp op = q.op.load(std::memory_order_acquire);
  const std::uint64_t position = q.journal_position.load(std::memory_order_relaxed);
  const bool published = (op == JournalOp::kPut && q.tail.load() == position) ||
                         (op == JournalOp::kGet && q.head.load() == position);
  if (published) {
    q.count.store(q.journal_count.load());
    q.unfinished.store(q.journal_unfinished.load());
  }
  q.op.store(JournalOp::kNone, std::memory_order_release);
}

// Bumps a futex word's change counter; returns whether someone may sleep on it.
bool bump(std::atomic<std::uint32_t>& word) noexcept {
  const std::uint32_t w = word.load(std::memory_order_relaxed);
  word.store((w + 1) & ~detail::kSleepers, std::memory_order_release);
  return (w & detail::kSleepers) != 0;
}

// The guard, held for a scope.
class Guard {
 public:
  explicit Guard(QueueShared& q) : q_(q) {
    const int rc = ::pthread_mutex_lock(&q_.guard);
    if (rc == EOWNERDEAD) {
      repair(q_);
      ::pthread_mutex_consistent(&q_.guard);
      // The dead holder may have changed the queue without waking anyone.
      wake_all_ = true;
    } else if (rc != 0) {
      throw std::system_error(rc, std::generic_category(), "pthread_mutex_lock");
    }
  }
  ~Guard() { unlock(); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  void unlock() noexcept {
    if (!held_) return;
    held_ = false;
    ::pthread_mutex_unlock(&q_.guard);
    if (wake_all_) {
      wake_all_ = false;
      for (auto* w : {&q_.not_empty, &q_.not_full, &q_.all_done}) {
        bump(*w);
        platform::futex::wake(*w, platform::futex::kWakeAll);
      }
    }
  }
  void lock_again() {
    Guard fresh(q_);  // takes and repairs like the constructor
    fresh.held_ = false;
    held_ = true;
    wake_all_ = wake_all_ || fresh.wake_all_;
    fresh.wake_all_ = false;
  }

 private:
  QueueShared& q_;
  bool held_ = true;
  bool wake_all_ = false;
};

// Sleeps on `word` (kSleepers set under the guard by the caller, which then
// released the guard) until woken, the deadline, or the re-check interval.
void sleep_on(std::atomic<std::uint32_t>& word, std::uint32_t expected,
              const platform::Deadline& deadline) {
  const std::int64_t recheck = platform::monotonic_now_ns() + detail::kRecheckNs;
  const platform::Deadline slice =
      deadline.is_never() || deadline.monotonic_ns() > recheck ? platform::Deadline::at(recheck)
                                                               : deadline;
  platform::futex::wait(word, expected, &slice);
}

// Marks `word` as slept on (under the guard); returns the value to sleep on.
std::uint32_t announce_sleeper(std::atomic<std::uint32_t>& word) noexcept {
  const std::uint32_t v = word.load(std::memory_order_relaxed) | detail::kSleepers;
  word.store(v, std::memory_order_relaxed);
  return v;
}

// One wait of a blocked call, with the guard held on entry and on return: while `spins` lasts,
// it gives the guard up for a moment (no system call); then it announces itself on `word` and
// sleeps there until a change, the deadline or the re-check interval.
void wait_for_change(Guard& guard, std::atomic<std::uint32_t>& word, int& spins,
                     const platform::Deadline& deadline) {
  if (spins > 0) {
    --spins;
    guard.unlock();
    platform::futex::cpu_relax();
    guard.lock_again();
    return;
  }
  const std::uint32_t expected = announce_sleeper(word);
  guard.unlock();
  sleep_on(word, expected, deadline);
  guard.lock_again();
}

// The bytes a record of `n` item bytes takes if written at `tail`, wrap
// filler included.
std::uint64_t needed_at(const QueueShared& q, std::uint64_t tail, std::uint64_t n) noexcept {
  const std::uint64_t record = kFrame + padded(n);
  const std::uint64_t left = q.capacity - tail % q.capacity;
  return record <= left ? record : left + record;
}

}  // namespace

Queue::Queue(std::int64_t maxsize, QueueOptions options) : Queue(maxsize, options, false) {}

Queue::Queue(std::int64_t maxsize, QueueOptions options, bool joinable) {
  if (maxsize > kUnbounded) throw OverflowError("Python int too large to convert to C int");
  std::uint64_t capacity = padded(std::max<std::size_t>(options.capacity_bytes, 4096));
  memory_ = std::make_shared<detail::QueueMemory>();
  memory_->mapping =
      platform::SharedMapping::anonymous(offsetof(QueueShared, ring) + capacity);
  shared_ = new (memory_->mapping.data()) QueueShared();
  shared_->capacity = capacity;
  shared_->maxsize = maxsize <= 0 ? kUnbounded : maxsize;
  shared_->joinable = joinable;
  pthread_mutexattr_t attr;
  ::pthread_mutexattr_init(&attr);
  ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  const int rc = ::pthread_mutex_init(&shared_->guard, &attr);
  ::pthread_mutexattr_destroy(&attr);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_mutex_init");
}

std::int64_t Queue::maxsize() const noexcept { return shared_->maxsize; }

void Queue::check_open() const {
  if (closed_) throw ValueError("Queue is closed");
}

void Queue::put_bytes(std::string_view item, bool block, std::optional<double> timeout) {
  put_bytes(std::as_bytes(std::span<const char>(item.data(), item.size())), block, timeout);
}

void Queue::put_bytes(std::span<const std::byte> item, bool block, std::optional<double> timeout) {
  check_open();
  QueueShared& q = *shared_;
  const std::uint64_t n = item.size();
  // The largest record an empty ring takes wherever its head is: the worst
  // case needs the record plus a wrap filler of up to capacity - 8 bytes.
  if (n > 0xffffffffu || kFrame + padded(n) > q.capacity / 2) {
    throw ValueError("item of " + std::to_string(n) + " bytes is larger than the queue can hold");
  }
  const platform::Deadline deadline = deadline_for(block, timeout);
  int spins = block ? detail::kSpins : 0;
  Guard guard(q);
  for (;;) {
    const std::uint64_t head = q.head.load(std::memory_order_relaxed);
    const std::uint64_t tail = q.tail.load(std::memory_order_relaxed);
    const std::int64_t count = q.count.load(std::memory_order_relaxed);
    const std::uint64_t need = needed_at(q, tail, n);
    if (count < q.maxsize && (tail - head) + need <= q.capacity) {
      // Journal, write, publish, count.
      const std::uint64_t new_tail = tail + need;
      q.journal_position.store(new_tail, std::memory_order_relaxed);
      q.journal_count.store(count + 1, std::memory_order_relaxed);
      q.journal_unfinished.store(q.unfinished.load() + (q.joinable ? 1 : 0),
                                 std::memory_order_relaxed);
      q.op.store(JournalOp::kPut, std::memory_order_release);
      std::uint64_t at = tail;
      if (need != kFrame + padded(n)) {  // wrap filler to the end of the ring
        const std::uint32_t frame[2] = {0, detail::kWrapMarker};
        std::memcpy(q.at(at), frame, kFrame);
        at += q.capacity - at % q.capacity;
      }
      const std::uint32_t frame[2] = {static_cast<std::uint32_t>(n), detail::kRecordMarker};
      std::memcpy(q.at(at), frame, kFrame);
      if (n > 0) std::memcpy(q.at(at) + kFrame, item.data(), n);
      q.tail.store(new_tail, std::memory_order_release);  // the item is in the queue
      q.count.store(count + 1, std::memory_order_relaxed);
      if (q.joinable) q.unfinished.store(q.journal_unfinished.load(), std::memory_order_relaxed);
      q.op.store(JournalOp::kNone, std::memory_order_release);
      const bool wake = bump(q.not_empty);
      guard.unlock();
      if (wake) platform::futex::wake(q.not_empty, platform::futex::kWakeAll);
      return;
    }
    if (deadline.has_passed()) throw Full("");
    wait_for_change(guard, q.not_full, spins, deadline);
  }
}

std::string Queue::get_bytes(bool block, std::optional<double> timeout) {
  check_open();
  QueueShared& q = *shared_;
  const platform::Deadline deadline = deadline_for(block, timeout);
  int spins = block ? detail::kSpins : 0;
  Guard guard(q);
  for (;;) {
    const std::int64_t count = q.count.load(std::memory_order_relaxed);
    if (count > 0) {
      std::uint64_t at = q.head.load(std::memory_order_relaxed);
      std::uint32_t frame[2];
      std::memcpy(frame, q.at(at), kFrame);
      if (frame[1] == detail::kWrapMarker) {
        at += q.capacity - at % q.capacity;
        std::memcpy(frame, q.at(at), kFrame);
      }
      if (frame[1] != detail::kRecordMarker) std::abort();  // the ring is corrupt: a libmp bug
      const std::uint64_t n = frame[0];
      std::string item(reinterpret_cast<const char*>(q.at(at) + kFrame), n);
      const std::uint64_t new_head = at + kFrame + padded(n);
      q.journal_position.store(new_head, std::memory_order_relaxed);
      q.journal_count.store(count - 1, std::memory_order_relaxed);
      q.journal_unfinished.store(q.unfinished.load(), std::memory_order_relaxed);
      q.op.store(JournalOp::kGet, std::memory_order_release);
      q.head.store(new_head, std::memory_order_release);  // the item is taken
      q.count.store(count - 1, std::memory_order_relaxed);
      q.op.store(JournalOp::kNone, std::memory_order_release);
      const bool wake = bump(q.not_full);
      guard.unlock();
      if (wake) platform::futex::wake(q.not_full, platform::futex::kWakeAll);
      return item;
    }
    if (deadline.has_passed()) throw Empty("");
    wait_for_change(guard, q.not_empty, spins, deadline);
  }
}

void Queue::put(const Value& value, bool block, std::optional<double> timeout) {
  check_open();
  const std::vector<std::byte> pickled = pickle_dumps(value);
  put_bytes(std::span<const std::byte>(pickled), block, timeout);
}

Value Queue::get(bool block, std::optional<double> timeout) {
  const std::string item = get_bytes(block, timeout);
  return pickle_loads(std::as_bytes(std::span<const char>(item.data(), item.size())));
}

Value Queue::get_nowait() { return get(false); }

std::int64_t Queue::qsize() const {
  Guard guard(*shared_);
  return shared_->count.load(std::memory_order_relaxed);
}

bool Queue::empty() const { return qsize() == 0; }

bool Queue::full() const { return qsize() >= shared_->maxsize; }

void Queue::join_thread() const {
  if (!closed_) throw AssertionError("Queue is not closed");
}

JoinableQueue::JoinableQueue(std::int64_t maxsize, QueueOptions options)
    : Queue(maxsize, options, true) {}

void JoinableQueue::task_done() {
  QueueShared& q = *shared_;
  Guard guard(q);
  const std::int64_t unfinished = q.unfinished.load(std::memory_order_relaxed);
  if (unfinished <= 0) throw ValueError("task_done() called too many times");
  // One store: no journal needed.
  q.unfinished.store(unfinished - 1, std::memory_order_relaxed);
  const bool wake = unfinished == 1 && bump(q.all_done);
  guard.unlock();
  if (wake) platform::futex::wake(q.all_done, platform::futex::kWakeAll);
}

bool JoinableQueue::join(std::optional<double> timeout) const {
  QueueShared& q = *shared_;
  const platform::Deadline deadline = deadline_for(true, timeout);
  Guard guard(q);
  for (;;) {
    if (q.unfinished.load(std::memory_order_relaxed) == 0) return true;
    if (deadline.has_passed()) return false;
    int no_spins = 0;
    wait_for_change(guard, q.all_done, no_spins, deadline);
  }
}

std::int64_t JoinableQueue::unfinished_tasks() const {
  Guard guard(*shared_);
  return shared_->unfinished.load(std::memory_order_relaxed);
}

void SimpleQueue::check_open() const {
  if (closed_) throw OSError("handle is closed");
}

void SimpleQueue::put_bytes(std::string_view item) {
  check_open();
  queue_.put_bytes(item);
}

std::string SimpleQueue::get_bytes() {
  check_open();
  return queue_.get_bytes();
}

void SimpleQueue::put(const Value& value) {
  check_open();
  queue_.put(value);
}

Value SimpleQueue::get() {
  check_open();
  return queue_.get();
}

bool SimpleQueue::empty() const {
  check_open();
  return queue_.empty();
}

}  // namespace mp
