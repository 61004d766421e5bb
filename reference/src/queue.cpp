// mp::Queue, mp::JoinableQueue, mp::SimpleQueue: one shared-memory byte ring
// (see queue.hpp for the contract).
//
// Layout of the shared segment: a QueueShared header, then the ring. Positions
// (head, tail) count bytes from the queue's creation and only grow; a
// position's place in the ring is position % capacity. A record starts at an
// 8-byte boundary: a 16-byte frame (the item's length, a marker, and the
// record's sequence number: the count of records put before it), then the
// item, padded to 8. A record never wraps: where the rest of the ring is too
// short for it, a wrap frame (carrying the next record's sequence number)
// fills the rest and the record starts at the ring's beginning.
//
// Producers are ordered by a robust, process-shared glibc mutex (the put
// guard); consumers take no lock. A put is linearized at its publishing store
// of the tail, a get at its compare-exchange of the head; each is one aligned
// 64-bit atomic write, so a killed call either happened entirely or not at
// all. The records in the queue are [head, tail): a consumer sees items by
// loading the tail, a producer sees free room by loading the head. A consumer
// copies the record at the head it loaded, then moves the head past it with a
// compare-exchange; if another consumer moved it first, the copy (which a
// producer may have been overwriting meanwhile) is dropped and it starts over.
// Head positions only grow, so a compare-exchange cannot succeed on a stale
// head (no ABA).
//
// Counting. The producers keep `puts`, the number of records published. The
// number of items in the queue is 0 when head == tail, else puts minus the
// sequence number in the frame at the head (the next record to be taken):
// exact whenever the put guard is held, because only producers write frames
// and the frame at the head cannot be overwritten before the head passes it.
// Each side caches the other side's position as it last loaded it (the
// producers the head, the consumers the tail) and loads it afresh only when
// the cached one shows no room or no item: a stale head only understates the
// room and overstates the count, a stale tail only hides items.
// A put first notes in a journal the tail and count it is about to publish,
// then writes the record, stores the tail, stores `puts`, and clears the
// journal. A producer killed holding the put guard is repaired by the next one
// (EOWNERDEAD): if the tail is the journal's, the record was published and
// `puts` is rolled forward; otherwise the half-written record beyond the tail
// is ignored (rolled back). A killed consumer needs no repair: its one
// compare-exchange decides. JoinableQueue counts finished tasks (`done`) under
// the put guard: the unfinished tasks are puts - done.
//
// Sleeping. Waiters sleep on futex words (a change counter, and a "sleepers"
// bit). A waiter sets the bit with an atomic read-modify-write, then looks at
// the queue again before sleeping; a changer makes its publishing store and
// then loads the word (sequentially consistent on both sides), so either the
// waiter sees the change or the changer sees the bit and wakes it.
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

constexpr std::uint32_t kSleepers = 0x80000000u;      // a futex word's "someone may sleep" bit
constexpr std::uint32_t kRecordMarker = 0x51554555u;  // "QUEU"
constexpr std::uint32_t kWrapMarker = 0x57524150u;    // "WRAP"
constexpr std::uint64_t kFrame = 16;
// A sleeping waiter re-checks the queue at least this often, in case the
// process that changed it was killed before waking the sleepers.
constexpr std::int64_t kRecheckNs = 100'000'000;
// Before sleeping, a waiter watches the queue for about this many CPU pauses
// (some 20 ns each; no system call, no guard held): a producer and a consumer
// on two CPUs then rarely need a futex wake. It looks at the queue after 1, 2,
// 4, ... pauses, up to the waiter's cap: every look pulls a cache line that
// the other side is writing.
constexpr int kSpins = 50;
constexpr int kGetPauseCap = 8;
constexpr int kPutPauseCap = 32;

struct Frame {
  std::uint32_t length;
  std::uint32_t marker;
  std::uint64_t seq;
};
static_assert(sizeof(Frame) == kFrame);

struct QueueShared {
  std::uint64_t capacity = 0;  // ring bytes, a multiple of 8
  std::int64_t maxsize = 0;
  bool joinable = false;
  // The producers' side, written under put_guard: its own cache line, which
  // consumers never touch.
  alignas(64) pthread_mutex_t put_guard;
  std::atomic<std::int64_t> puts{0};  // records published since creation
  std::atomic<std::int64_t> done{0};  // JoinableQueue: task_done() calls
  // The head as a producer last loaded it (<= head): room it shows is there
  // without touching the consumers' cache lines.
  std::atomic<std::uint64_t> cached_head{0};
  // The journal of the put in progress (valid while put_pending).
  std::atomic<std::uint32_t> put_pending{0};
  std::atomic<std::uint64_t> journal_tail{0};
  std::atomic<std::int64_t> journal_puts{0};
  // Written by producers, read by consumers: a line of its own, so that a
  // consumer's look at it does not take the put guard's line away.
  alignas(64) std::atomic<std::uint64_t> tail{0};
  // The consumers' side. The tail as a consumer last loaded it (<= tail, or
  // behind the head when stale): records between the head and it are published.
  alignas(64) std::atomic<std::uint64_t> cached_tail{0};
  // Written by consumers, read by producers (as the tail).
  alignas(64) std::atomic<std::uint64_t> head{0};
  // Futex words: a change counter (low 31 bits) and kSleepers.
  alignas(64) std::atomic<std::uint32_t> not_empty{0};
  alignas(64) std::atomic<std::uint32_t> not_full{0};
  alignas(64) std::atomic<std::uint32_t> all_done{0};
  alignas(64) unsigned char ring[1];  // `capacity` bytes

  unsigned char* at(std::uint64_t position) noexcept { return ring + position % capacity; }
  const unsigned char* at(std::uint64_t position) const noexcept {
    return ring + position % capacity;
  }
};

struct QueueMemory {
  platform::SharedMapping mapping;
  ~QueueMemory() {
    // The guards are not destroyed: other processes may still use the queue.
  }
};

}  // namespace detail

namespace {

using detail::Frame;
using detail::kFrame;
using detail::QueueShared;

std::uint64_t padded(std::uint64_t n) noexcept { return (n + 7) & ~std::uint64_t{7}; }

platform::Deadline deadline_for(bool block, std::optional<double> timeout) {
  if (!block) return platform::Deadline::expired();
  if (!timeout.has_value()) return platform::Deadline::never();
  return platform::Deadline::after(*timeout);  // NaN -> ValueError
}

Frame frame_at(const QueueShared& q, std::uint64_t position) noexcept {
  Frame f;
  std::memcpy(&f, q.at(position), kFrame);
  return f;
}

// The number of items in the queue, given the head and the tail; exact when
// the put guard is held (see the file comment).
std::int64_t items(const QueueShared& q, std::uint64_t head, std::uint64_t tail) noexcept {
  if (head == tail) return 0;
  return q.puts.load(std::memory_order_relaxed) - static_cast<std::int64_t>(frame_at(q, head).seq);
}

// Rolls the put journal forward or back. Called with the put guard held,
// after EOWNERDEAD.
void repair_puts(QueueShared& q) noexcept {
  if (q.put_pending.load(std::memory_order_acquire) == 0) return;
  if (q.tail.load(std::memory_order_relaxed) == q.journal_tail.load(std::memory_order_relaxed)) {
    q.puts.store(q.journal_puts.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
  q.put_pending.store(0, std::memory_order_release);
}

// Bumps a futex word's change counter and clears its sleepers bit; returns
// whether the bit was set.
bool bump(std::atomic<std::uint32_t>& word) noexcept {
  std::uint32_t w = word.load(std::memory_order_relaxed);
  while (!word.compare_exchange_weak(w, (w + 1) & ~detail::kSleepers, std::memory_order_seq_cst,
                                     std::memory_order_relaxed)) {
  }
  return (w & detail::kSleepers) != 0;
}

// After a publishing store (sequentially consistent): wakes the sleepers of
// `word`, if there may be any.
void wake_sleepers(std::atomic<std::uint32_t>& word) noexcept {
  if ((word.load(std::memory_order_seq_cst) & detail::kSleepers) == 0) return;
  if (bump(word)) platform::futex::wake(word, platform::futex::kWakeAll);
}

// Wakes every sleeper of the queue (after a repair: the dead process may have
// changed the queue without waking anyone).
void wake_everyone(QueueShared& q) noexcept {
  for (auto* w : {&q.not_empty, &q.not_full, &q.all_done}) {
    bump(*w);
    platform::futex::wake(*w, platform::futex::kWakeAll);
  }
}

// The put guard, held for a scope.
class Guard {
 public:
  explicit Guard(QueueShared& q) : q_(q) { lock(); }
  ~Guard() { unlock(); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  void lock() {
    const int rc = ::pthread_mutex_lock(&q_.put_guard);
    if (rc == EOWNERDEAD) {
      repair_puts(q_);
      ::pthread_mutex_consistent(&q_.put_guard);
      repaired_ = true;
    } else if (rc != 0) {
      throw std::system_error(rc, std::generic_category(), "pthread_mutex_lock");
    }
    held_ = true;
  }
  void unlock() noexcept {
    if (!held_) return;
    held_ = false;
    ::pthread_mutex_unlock(&q_.put_guard);
    if (repaired_) {
      repaired_ = false;
      wake_everyone(q_);
    }
  }

 private:
  QueueShared& q_;
  bool held_ = false;
  bool repaired_ = false;
};

// One wait of a blocked call, with the guard held on entry and on return,
// until `watched` (the tail, the head, or the count of finished tasks) may
// have moved on from `seen`. First, while `spins` lasts, it watches without
// the guard and without a system call, until `watched` has moved `batch` past
// `seen` (a full queue's producer waits for a quarter of the queue to be
// taken rather than one item, so that producer and consumer work on distant
// parts of the ring instead of taking turns on the same cache lines; only the
// timing of a blocked call changes). If it has moved at all by then, it
// returns; otherwise it announces itself on the futex word, looks once more,
// and sleeps until a change, the deadline or the re-check interval.
template <typename Watched>
void wait_for_change(Guard* guard, const std::atomic<Watched>& watched, Watched seen, Watched batch,
                     int pause_cap, std::atomic<std::uint32_t>& word, int& spins,
                     const platform::Deadline& deadline) {
  if (guard != nullptr) guard->unlock();
  if (spins > 0) {
    int pauses = 1;
    while (spins > 0 && watched.load(std::memory_order_acquire) - seen < batch) {
      for (int i = 0; i < pauses; ++i) platform::futex::cpu_relax();
      spins -= pauses;
      pauses = std::min(pauses * 2, pause_cap);
    }
    if (watched.load(std::memory_order_acquire) != seen) {
      if (guard != nullptr) guard->lock();
      return;
    }
  }
  const std::uint32_t expected =
      word.fetch_or(detail::kSleepers, std::memory_order_seq_cst) | detail::kSleepers;
  if (watched.load(std::memory_order_seq_cst) == seen) {
    const std::int64_t recheck = platform::monotonic_now_ns() + detail::kRecheckNs;
    const platform::Deadline slice = deadline.is_never() || deadline.monotonic_ns() > recheck
                                         ? platform::Deadline::at(recheck)
                                         : deadline;
    platform::futex::wait(word, expected, &slice);
  }
  if (guard != nullptr) guard->lock();
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
  memory_->mapping = platform::SharedMapping::anonymous(offsetof(QueueShared, ring) + capacity);
  shared_ = new (memory_->mapping.data()) QueueShared();
  shared_->capacity = capacity;
  shared_->maxsize = maxsize <= 0 ? kUnbounded : maxsize;
  shared_->joinable = joinable;
  pthread_mutexattr_t attr;
  ::pthread_mutexattr_init(&attr);
  ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  const int rc = ::pthread_mutex_init(&shared_->put_guard, &attr);
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
    const std::uint64_t tail = q.tail.load(std::memory_order_relaxed);
    const std::uint64_t need = needed_at(q, tail, n);
    // The cached head is <= the head, so the room and the count it shows are
    // conservative; only a fresh head decides that there is no room.
    std::uint64_t head = q.cached_head.load(std::memory_order_relaxed);
    bool fits = items(q, head, tail) < q.maxsize && (tail - head) + need <= q.capacity;
    if (!fits) {
      head = q.head.load(std::memory_order_acquire);
      q.cached_head.store(head, std::memory_order_relaxed);
      fits = items(q, head, tail) < q.maxsize && (tail - head) + need <= q.capacity;
    }
    if (fits) {
      const std::int64_t puts = q.puts.load(std::memory_order_relaxed);
      const std::uint64_t new_tail = tail + need;
      // Journal, write, publish, count.
      q.journal_tail.store(new_tail, std::memory_order_relaxed);
      q.journal_puts.store(puts + 1, std::memory_order_relaxed);
      q.put_pending.store(1, std::memory_order_release);
      std::uint64_t at = tail;
      const auto seq = static_cast<std::uint64_t>(puts);
      if (need != kFrame + padded(n)) {  // wrap filler to the end of the ring
        const Frame wrap{0, detail::kWrapMarker, seq};
        std::memcpy(q.at(at), &wrap, kFrame);
        at += q.capacity - at % q.capacity;
      }
      const Frame frame{static_cast<std::uint32_t>(n), detail::kRecordMarker, seq};
      std::memcpy(q.at(at), &frame, kFrame);
      if (n > 0) std::memcpy(q.at(at) + kFrame, item.data(), n);
      q.tail.store(new_tail, std::memory_order_seq_cst);  // the item is in the queue
      q.puts.store(puts + 1, std::memory_order_relaxed);
      q.put_pending.store(0, std::memory_order_release);
      guard.unlock();
      wake_sleepers(q.not_empty);
      return;
    }
    if (deadline.has_passed()) throw Full("");
    wait_for_change(&guard, q.head, head, std::max<std::uint64_t>((tail - head) / 4, 1),
                    detail::kPutPauseCap, q.not_full, spins, deadline);
  }
}

std::string Queue::get_bytes(bool block, std::optional<double> timeout) {
  std::string item;
  get_bytes_into(item, block, timeout);
  return item;
}

void Queue::get_bytes_into(std::string& item, bool block, std::optional<double> timeout) {
  check_open();
  QueueShared& q = *shared_;
  const platform::Deadline deadline = deadline_for(block, timeout);
  int spins = block ? detail::kSpins : 0;
  for (;;) {
    const std::uint64_t head = q.head.load(std::memory_order_acquire);
    std::uint64_t tail = q.cached_tail.load(std::memory_order_acquire);
    if (head >= tail) {  // the cached tail shows nothing: look at the tail itself
      tail = q.tail.load(std::memory_order_acquire);
      q.cached_tail.store(tail, std::memory_order_release);
    }
    if (head < tail) {
      // Read the record at `head` without a lock. If another consumer takes it meanwhile, a
      // producer may already be overwriting these bytes: the compare-exchange below then fails
      // and whatever was read is thrown away (the reads are checked before they are trusted).
      std::uint64_t at = head;
      Frame frame = frame_at(q, at);
      if (frame.marker == detail::kWrapMarker) {
        at += q.capacity - at % q.capacity;
        frame = frame_at(q, at);
      }
      const std::uint64_t n = frame.length;
      const bool sane = frame.marker == detail::kRecordMarker &&
                        at % q.capacity + kFrame + padded(n) <= q.capacity;
      if (!sane) {
        if (q.head.load(std::memory_order_acquire) != head) continue;  // overtaken: try again
        std::abort();  // the ring is corrupt: a libmp bug
      }
      item.assign(reinterpret_cast<const char*>(q.at(at) + kFrame), n);
      std::uint64_t expected = head;
      if (!q.head.compare_exchange_strong(expected, at + kFrame + padded(n),
                                          std::memory_order_seq_cst)) {
        continue;  // another consumer took it first
      }
      // The item is taken.
      wake_sleepers(q.not_full);
      return;
    }
    if (deadline.has_passed()) throw Empty("");
    wait_for_change(nullptr, q.tail, tail, std::uint64_t{1}, detail::kGetPauseCap, q.not_empty,
                    spins, deadline);
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
  QueueShared& q = *shared_;
  Guard guard(q);
  return items(q, q.head.load(std::memory_order_acquire), q.tail.load(std::memory_order_relaxed));
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
  const std::int64_t done = q.done.load(std::memory_order_relaxed);
  const std::int64_t puts = q.puts.load(std::memory_order_relaxed);
  if (done >= puts) throw ValueError("task_done() called too many times");
  // One store: no journal needed.
  q.done.store(done + 1, std::memory_order_seq_cst);
  guard.unlock();
  if (done + 1 == puts) wake_sleepers(q.all_done);
}

bool JoinableQueue::join(std::optional<double> timeout) const {
  QueueShared& q = *shared_;
  const platform::Deadline deadline = deadline_for(true, timeout);
  Guard guard(q);
  for (;;) {
    const std::int64_t done = q.done.load(std::memory_order_relaxed);
    if (q.puts.load(std::memory_order_relaxed) == done) return true;
    if (deadline.has_passed()) return false;
    int no_spins = 0;
    wait_for_change(&guard, q.done, done, std::int64_t{1}, 1, q.all_done, no_spins, deadline);
  }
}

std::int64_t JoinableQueue::unfinished_tasks() const {
  QueueShared& q = *shared_;
  Guard guard(q);
  return q.puts.load(std::memory_order_relaxed) - q.done.load(std::memory_order_relaxed);
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
