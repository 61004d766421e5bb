// mp::Pool, part 2: the parent side (jobs, results, dispatch, the result
// thread and the supervisor). See pool.hpp for the contract and
// pool_shared.hpp for the segment and the record format.
//
// Locking. One mutex (Core::mutex) guards the dispatch state: the pending
// tasks, each slot's list of tasks sent and not answered, the inbox producer
// side of every ring, the slots' states and the pool's state. It is never held
// while a callback runs, a process starts or a thread waits. Results are read
// from the outboxes by the result thread alone, without the mutex, and are
// decoded and delivered after it is released. Jobs are completed only by the
// result thread, so a job's bookkeeping needs no lock of its own (the waiters
// synchronise on a futex word / the iterator's mutex).
#include "mp/pool.hpp"

#include <poll.h>
#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mp/codec.hpp"
#include "mp/errors.hpp"
#include "mp/platform/clock.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/process.hpp"
#include "mp/platform/shm.hpp"
#include "pool_shared.hpp"

namespace mp {
namespace pool_detail {

// Defined in pool_worker.cpp.
std::shared_ptr<const PoolFunction> find_function(const std::string& name);
int create_segment_fd(std::size_t size);
void* map_segment(int fd, std::size_t size);
void unmap_segment(void* p, std::size_t size) noexcept;
void make_wake_pipe(int fds[2]);
void poke_pipe(int fd) noexcept;
void drain_pipe(int fd) noexcept;

namespace {

// Tasks in flight per worker (sent, not answered).
constexpr std::size_t kMaxInFlight = 64;
// How long the result thread and a waiter spin before they sleep.
constexpr std::int64_t kResultSpinNs = 50'000;
constexpr std::int64_t kGetSpinNs = 20'000;
// Safety re-check period of the result thread's and supervisor's sleeps.
constexpr double kSafetySeconds = 0.1;
// terminate(): SIGTERM, then SIGKILL after this long.
constexpr double kTerminateGraceSeconds = 1.0;

void report_callback_error(const char* which, const std::string& what) noexcept {
  try {
    const std::string text =
        std::string("mp::Pool: exception in ") + which + " (ignored): " + what + "\n";
    platform::write_stderr(text.data(), text.size());
  } catch (...) {
  }
}

std::string to_hex(const std::vector<std::byte>& data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (std::byte b : data) {
    const auto v = static_cast<unsigned>(b);
    out.push_back(kDigits[v >> 4]);
    out.push_back(kDigits[v & 15]);
  }
  return out;
}

void append_pickle(std::string& out, const Value& v) {
  const std::vector<std::byte> p = pickle_dumps(v);
  put_u32(out, static_cast<std::uint32_t>(p.size()));
  out.append(reinterpret_cast<const char*>(p.data()), p.size());
}

Value load(const char* p, std::size_t n) {
  return pickle_loads(std::span<const std::byte>(reinterpret_cast<const std::byte*>(p), n));
}

}  // namespace

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

struct Failure {
  std::string kind;
  std::string message;
};

// One apply / map job's result, shared by the AsyncResult handles.
struct ResultState {
  // 0: not ready; 1: ready; 2: not ready and someone sleeps on it.
  std::atomic<std::uint32_t> word{0};
  // Written by the result thread before `word` becomes 1.
  bool ok = false;
  Value value;
  Failure failure;

  bool ready() const noexcept { return word.load(std::memory_order_acquire) == 1; }

  // Waits until ready or `deadline`; true if ready.
  bool wait_until(const platform::Deadline& deadline) {
    if (ready()) return true;
    if (!deadline.has_passed()) {
      const std::int64_t spin_end = platform::monotonic_now_ns() + kGetSpinNs;
      for (int i = 0;; ++i) {
        spin_pause(i);
        if (ready()) return true;
        if ((i & 15) == 15 && platform::monotonic_now_ns() > spin_end) break;
      }
    }
    for (;;) {
      std::uint32_t w = word.load(std::memory_order_acquire);
      if (w == 1) return true;
      if (deadline.has_passed()) return false;
      if (w == 0 && !word.compare_exchange_strong(w, 2)) continue;
      platform::futex::wait(word, 2, &deadline);
    }
  }

  void publish() noexcept {
    if (word.exchange(1, std::memory_order_acq_rel) == 2) {
      platform::futex::wake(word, platform::futex::kWakeAll);
    }
  }
};

// One imap job's results, shared by the IMapIterator handles.
struct IMapState {
  struct Entry {
    bool ok = true;
    Value value;  // ordered: the chunk's List; unordered: one item
    Failure failure;
  };

  std::mutex mutex;
  std::condition_variable cv;
  bool ordered = true;
  std::size_t chunks = 0;
  // ordered
  std::vector<std::optional<Entry>> by_chunk;
  std::size_t next_chunk = 0;
  std::size_t next_item = 0;
  // unordered
  std::deque<Entry> queue;
  std::size_t chunks_received = 0;
};

// A job: the encoded task payloads of its chunks, and how results reach the
// handles. Called by the result thread only.
struct Job {
  std::string func;
  TaskMode mode = kApply;
  std::string payload;                   // every chunk's payload, back to back
  std::vector<std::size_t> chunk_begin;  // chunk k: [chunk_begin[k], chunk_begin[k+1])
  std::size_t chunks() const noexcept { return chunk_begin.size() - 1; }

  virtual ~Job() = default;
  // A chunk's values (one per item; apply: one) or its failure.
  virtual void deliver(std::size_t chunk, List&& values) = 0;
  virtual void fail(std::size_t chunk, const Failure& failure) = 0;
  // A job without chunks: complete it.
  virtual void complete_empty() = 0;
};

struct ResultJob : Job {
  std::shared_ptr<ResultState> state;
  ResultCallback callback;
  ErrorCallback error_callback;
  bool is_map = false;
  std::size_t chunksize = 1;
  std::size_t remaining = 0;
  List values;
  bool failed = false;

  void deliver(std::size_t chunk, List&& got) override {
    if (!is_map) {
      state->ok = true;
      state->value = got.empty() ? Value() : std::move(got.front());
      finish();
      return;
    }
    if (!failed) {
      std::size_t at = chunk * chunksize;
      for (Value& v : got) {
        if (at < values.size()) values[at++] = std::move(v);
      }
    }
    if (--remaining == 0) finish();
  }

  void fail(std::size_t, const Failure& failure) override {
    if (!failed) {
      failed = true;
      state->failure = failure;
      values.clear();
    }
    if (!is_map || --remaining == 0) finish();
  }

  void complete_empty() override { finish(); }

  void finish() {
    if (is_map) {
      state->ok = !failed;
      if (!failed) state->value = Value(std::move(values));
    } else if (failed) {
      state->ok = false;
    }
    if (state->ok && callback) {
      try {
        callback(state->value);
      } catch (const std::exception& e) {
        report_callback_error("callback", e.what());
      } catch (...) {
        report_callback_error("callback", "unknown exception");
      }
    } else if (!state->ok && error_callback) {
      try {
        throw_error(state->failure.kind, state->failure.message);
      } catch (const Error& e) {
        try {
          error_callback(e);
        } catch (const std::exception& x) {
          report_callback_error("error_callback", x.what());
        } catch (...) {
          report_callback_error("error_callback", "unknown exception");
        }
      }
    }
    callback = nullptr;
    error_callback = nullptr;
    state->publish();
  }
};

struct IMapJob : Job {
  std::shared_ptr<IMapState> state;

  void deliver(std::size_t chunk, List&& got) override {
    {
      std::lock_guard lock(state->mutex);
      if (state->ordered) {
        state->by_chunk[chunk] = IMapState::Entry{true, Value(std::move(got)), {}};
      } else {
        for (Value& v : got) state->queue.push_back(IMapState::Entry{true, std::move(v), {}});
        ++state->chunks_received;
      }
    }
    state->cv.notify_all();
  }

  void fail(std::size_t chunk, const Failure& failure) override {
    {
      std::lock_guard lock(state->mutex);
      if (state->ordered) {
        state->by_chunk[chunk] = IMapState::Entry{false, Value(), failure};
      } else {
        state->queue.push_back(IMapState::Entry{false, Value(), failure});
        ++state->chunks_received;
      }
    }
    state->cv.notify_all();
  }

  void complete_empty() override { state->cv.notify_all(); }
};

// A chunk of a job waiting to run, or sent to a worker.
struct Task {
  std::uint64_t seq = 0;
  std::shared_ptr<Job> job;
  std::size_t chunk = 0;
};

// ---------------------------------------------------------------------------
// The pool's core
// ---------------------------------------------------------------------------

enum class PoolState { kRun, kClose, kTerminate };

enum class SlotState {
  kLive,      // a worker runs (or starts) in it
  kStopping,  // told to stop (close)
  kDead,      // its worker ended; the result thread has not settled it yet
  kRespawn,   // settled: the supervisor starts a replacement
  kStopped,   // settled: no worker, none wanted
};

struct Slot {
  SlotShared* shared = nullptr;
  std::byte* inbox = nullptr;
  std::byte* outbox = nullptr;
  // Guarded by Core::mutex.
  SlotState state = SlotState::kStopped;
  std::optional<Process> process;
  std::deque<Task> sent;       // sent, not answered, in order
  std::uint64_t assigned = 0;  // tasks sent to this worker
  std::string out_buf;         // bytes not in the inbox yet
  std::size_t out_off = 0;
  std::uint64_t in_tail = 0;  // inbox produced up to here
  std::uint64_t in_head_cache = 0;
  bool dead_seen = false;  // the result thread saw kDead (drains, then settles)
  // The result thread's alone.
  std::uint64_t out_head = 0;
  std::string acc;
  std::size_t acc_pos = 0;
};

// A record received by the result thread, with the task it answers.
struct Received {
  Task task;
  RecordType type = kOk;
  std::size_t offset = 0;  // of the record body in the batch
  std::size_t size = 0;
  bool local_failure = false;
  Failure failure;
};

struct Core {
  // Fixed at construction.
  int processes = 1;
  std::optional<std::string> initializer;
  std::string initargs_hex;
  std::uint64_t max_tasks = 0;
  StartMethod method = StartMethod::kFork;
  int memfd = -1;
  std::size_t segment_size = 0;
  void* base = nullptr;
  SegmentHeader* header = nullptr;
  int wake_pipe[2] = {-1, -1};
  std::atomic<std::uint32_t> poked{0};  // other parent threads -> result thread
  std::atomic<unsigned long> worker_counter{0};

  std::mutex mutex;
  PoolState state = PoolState::kRun;
  std::vector<Slot> slots;
  std::deque<Task> pending;
  std::vector<std::pair<Task, Failure>> to_fail;
  std::vector<std::shared_ptr<Job>> empty_jobs;
  std::uint64_t next_seq = 1;
  std::size_t outstanding = 0;  // tasks not delivered yet
  std::optional<Failure> broken;
  bool quit = false;  // the result thread has ended
  bool stop_sent = false;

  std::mutex join_mutex;
  std::thread result_thread;
  std::thread supervisor;

  Core() = default;
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;
  ~Core() {
    unmap_segment(base, segment_size);
    platform::close_fd(memfd);
    platform::close_fd(wake_pipe[0]);
    platform::close_fd(wake_pipe[1]);
  }

  // --- wake-ups -----------------------------------------------------------
  void poke_result_thread() noexcept {
    poked.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake_if_sleeping(header->parent_sleeping);
  }
  void poke_supervisor() noexcept { poke_pipe(wake_pipe[1]); }

  // --- workers -------------------------------------------------------------
  // Starts a worker in slot `i` (its shared block reset). Not under the mutex.
  Process start_worker(std::size_t i) {
    slots[i].shared->reset();
    ProcessOptions options;
    const unsigned long n = ++worker_counter;
    options.name =
        std::string(method == StartMethod::kSpawn ? "SpawnPoolWorker-" : "ForkPoolWorker-") +
        std::to_string(n);
    options.daemon = true;
    options.start_method = method;
    options.pass_fds = {memfd};
    Process p(kWorkerTask,
              {std::to_string(memfd), std::to_string(segment_size), std::to_string(i),
               std::to_string(max_tasks), initializer.value_or(""), initargs_hex},
              options);
    p.start();
    return p;
  }

  // --- dispatch (under the mutex) --------------------------------------------
  void encode_task(const Task& t, std::string& out) {
    const Job& job = *t.job;
    const std::size_t at = begin_record(out, kTask, job.mode, job.func, t.seq);
    out.append(job.payload, job.chunk_begin[t.chunk],
               job.chunk_begin[t.chunk + 1] - job.chunk_begin[t.chunk]);
    finish_record(out, at);
  }

  // Moves what fits of the slot's out_buf into its inbox and wakes the worker.
  // Returns true if everything went in.
  bool flush(Slot& s) {
    bool wrote = false;
    for (;;) {
      const std::size_t left = s.out_buf.size() - s.out_off;
      if (left == 0) break;
      std::uint64_t free = kRingBytes - (s.in_tail - s.in_head_cache);
      if (free < left) {
        s.in_head_cache = s.shared->in_head.load(std::memory_order_acquire);
        free = kRingBytes - (s.in_tail - s.in_head_cache);
      }
      const std::size_t n = std::min<std::size_t>(left, free);
      if (n > 0) {
        ring_copy_in(s.inbox, s.in_tail, s.out_buf.data() + s.out_off, n);
        s.in_tail += n;
        s.out_off += n;
        s.shared->in_tail.store(s.in_tail, std::memory_order_release);
        wrote = true;
        continue;
      }
      // Full: ask the worker to tell us when it frees room, then look again
      // (it may have freed some before it could see the request).
      s.shared->parent_wants_space.store(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (s.shared->in_head.load(std::memory_order_acquire) == s.in_head_cache) break;
    }
    const bool all = s.out_off == s.out_buf.size();
    if (all) {
      s.out_buf.clear();
      s.out_off = 0;
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (wrote) wake_if_sleeping(s.shared->worker_sleeping);
    return all;
  }

  void dispatch() {
    if (broken) {
      while (!pending.empty()) {
        to_fail.emplace_back(std::move(pending.front()), *broken);
        pending.pop_front();
      }
      if (!to_fail.empty()) poke_result_thread();
      return;
    }
    if (state == PoolState::kTerminate) return;
    while (!pending.empty()) {
      Slot* best = nullptr;
      for (Slot& s : slots) {
        if (s.state != SlotState::kLive || s.sent.size() >= kMaxInFlight) continue;
        if (max_tasks != 0 && s.assigned >= max_tasks) continue;
        if (best == nullptr || s.sent.size() < best->sent.size()) best = &s;
      }
      if (best == nullptr) break;
      // Fill the chosen worker up to the next worker's load (a batch).
      std::size_t limit = kMaxInFlight;
      for (Slot& s : slots) {
        if (&s != best && s.state == SlotState::kLive) limit = std::min(limit, s.sent.size() + 1);
      }
      limit = std::max(limit, best->sent.size() + 1);
      while (!pending.empty() && best->sent.size() < limit &&
             (max_tasks == 0 || best->assigned < max_tasks)) {
        encode_task(pending.front(), best->out_buf);
        best->sent.push_back(std::move(pending.front()));
        pending.pop_front();
        ++best->assigned;
      }
      flush(*best);
    }
  }

  // Tells every live worker to stop once nothing is outstanding (close()).
  void maybe_stop_workers() {
    if (state != PoolState::kClose || outstanding != 0 || stop_sent) return;
    stop_sent = true;
    for (Slot& s : slots) {
      if (s.state != SlotState::kLive) continue;
      const std::size_t at = begin_record(s.out_buf, kStop, 0, {}, 0);
      finish_record(s.out_buf, at);
      flush(s);
      s.state = SlotState::kStopping;
    }
  }

  bool all_stopped() const {
    return std::all_of(slots.begin(), slots.end(),
                       [](const Slot& s) { return s.state == SlotState::kStopped; });
  }

  // --- the result thread -----------------------------------------------------
  // Appends the complete records of slot `i`'s outbox to `batch`.
  bool drain(std::size_t i, std::string& batch, std::vector<Received>& got,
             std::vector<std::size_t>& from) {
    Slot& s = slots[i];
    const std::uint64_t tail = s.shared->out_tail.load(std::memory_order_acquire);
    if (tail == s.out_head) return false;
    ring_copy_out(s.outbox, s.out_head, static_cast<std::size_t>(tail - s.out_head), s.acc);
    s.out_head = tail;
    s.shared->out_head.store(tail, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake_if_sleeping(s.shared->worker_sleeping);
    for (;;) {
      const std::size_t have = s.acc.size() - s.acc_pos;
      if (have < 4) break;
      const std::uint32_t body = get_u32(s.acc.data() + s.acc_pos);
      if (have < 4 + std::size_t{body}) break;
      Received r;
      r.type = static_cast<RecordType>(s.acc[s.acc_pos + 4]);
      r.offset = batch.size();
      r.size = body;
      batch.append(s.acc, s.acc_pos + 4, body);
      got.push_back(std::move(r));
      from.push_back(i);
      s.acc_pos += 4 + body;
    }
    if (s.acc_pos == s.acc.size()) {
      s.acc.clear();
      s.acc_pos = 0;
    }
    return true;
  }

  void result_loop() {
    std::string batch;
    std::vector<Received> got;
    std::vector<std::size_t> from;
    std::vector<std::shared_ptr<Job>> empties;
    std::vector<std::size_t> readable;
    {
      std::lock_guard lock(mutex);
      for (std::size_t i = 0; i < slots.size(); ++i) readable.push_back(i);
    }
    bool finished = false;
    while (!finished) {
      bool active = false;
      for (std::size_t i : readable) active |= drain(i, batch, got, from);
      if (poked.load(std::memory_order_relaxed) != 0) {
        poked.store(0, std::memory_order_relaxed);
        active = true;
      }
      if (active) {
        std::lock_guard lock(mutex);
        // Match results to the tasks sent.
        for (std::size_t k = 0; k < got.size(); ++k) {
          Slot& s = slots[from[k]];
          Received& r = got[k];
          if (r.type == kInitFail) {
            const char* p = batch.data() + r.offset;
            const std::uint16_t kind_len = get_u16(p + kRecordHeader - 4);
            Failure f{std::string(p + kRecordHeader - 2, kind_len),
                      std::string(p + kRecordHeader - 2 + kind_len,
                                  r.size - (kRecordHeader - 2) - kind_len)};
            if (!broken) broken = f;
            continue;
          }
          const std::uint64_t seq = get_u64(batch.data() + r.offset + 4);
          if (s.sent.empty() || s.sent.front().seq != seq) continue;  // cannot happen
          r.task = std::move(s.sent.front());
          s.sent.pop_front();
          --outstanding;
        }
        // Settle the workers that ended (their outbox was drained above, after
        // they were found dead).
        for (std::size_t i = 0; i < slots.size(); ++i) {
          Slot& s = slots[i];
          if (s.state != SlotState::kDead) continue;
          if (!s.dead_seen) {
            s.dead_seen = true;  // drain once more, then settle
            poked.store(1, std::memory_order_relaxed);
            continue;
          }
          settle_dead(s);
        }
        dispatch();
        for (Slot& s : slots) {
          if (s.out_off < s.out_buf.size() &&
              (s.state == SlotState::kLive || s.state == SlotState::kStopping)) {
            flush(s);
          }
        }
        if (state == PoolState::kTerminate) {
          const Failure f{"ProcessError", "pool terminated"};
          for (Task& t : pending) to_fail.emplace_back(std::move(t), f);
          pending.clear();
          for (Slot& s : slots) {
            for (Task& t : s.sent) to_fail.emplace_back(std::move(t), f);
            s.sent.clear();
          }
          finished = true;
        }
        for (auto& [task, failure] : to_fail) {
          Received r;
          r.task = std::move(task);
          r.local_failure = true;
          r.failure = std::move(failure);
          got.push_back(std::move(r));
          --outstanding;
        }
        to_fail.clear();
        empties.swap(empty_jobs);
        maybe_stop_workers();
        if (state == PoolState::kClose && outstanding == 0 && all_stopped() && empties.empty()) {
          finished = true;
        }
        if (finished) quit = true;
        readable.clear();
        for (std::size_t i = 0; i < slots.size(); ++i) {
          const SlotState st = slots[i].state;
          if (st == SlotState::kLive || st == SlotState::kStopping || st == SlotState::kDead) {
            readable.push_back(i);
          }
        }
      }
      // Deliver, without the mutex.
      for (Received& r : got) deliver(r, batch);
      for (auto& job : empties) job->complete_empty();
      got.clear();
      from.clear();
      batch.clear();
      empties.clear();
      if (finished) break;
      if (!active) wait_for_work(readable);
    }
    poke_supervisor();
  }

  // A worker ended (kDead, its outbox drained): fail its running task, send
  // the others elsewhere, and decide whether to replace it.
  void settle_dead(Slot& s) {
    const std::uint64_t running = s.shared->running_seq.load(std::memory_order_acquire);
    std::deque<Task> requeue;
    for (Task& t : s.sent) {
      if (broken) {
        to_fail.emplace_back(std::move(t), *broken);
      } else if (t.seq <= running) {
        to_fail.emplace_back(
            std::move(t),
            Failure{"WorkerLost", "the pool worker running the task ended before it returned"});
      } else {
        requeue.push_back(std::move(t));
      }
    }
    s.sent.clear();
    while (!requeue.empty()) {
      pending.push_front(std::move(requeue.back()));
      requeue.pop_back();
    }
    s.out_buf.clear();
    s.out_off = 0;
    s.in_tail = 0;
    s.in_head_cache = 0;
    s.out_head = 0;
    s.acc.clear();
    s.acc_pos = 0;
    s.dead_seen = false;
    s.assigned = 0;
    const bool wanted =
        !broken && state != PoolState::kTerminate && (state == PoolState::kRun || outstanding > 0);
    s.state = wanted ? SlotState::kRespawn : SlotState::kStopped;
    if (wanted) poke_supervisor();
  }

  void deliver(Received& r, const std::string& batch) {
    if (!r.task.job) return;  // an initializer failure (no task)
    Job& job = *r.task.job;
    if (r.local_failure) {
      job.fail(r.task.chunk, r.failure);
      return;
    }
    const char* body = batch.data() + r.offset;
    const char* p = body + kRecordHeader - 4;  // after the header
    const char* end = body + r.size;
    if (r.type == kErr) {
      const std::uint16_t kind_len = get_u16(p);
      job.fail(
          r.task.chunk,
          Failure{std::string(p + 2, kind_len),
                  std::string(p + 2 + kind_len, static_cast<std::size_t>(end - p - 2 - kind_len))});
      return;
    }
    try {
      const std::uint32_t count = get_u32(p);
      p += 4;
      List values;
      values.reserve(count);
      for (std::uint32_t i = 0; i < count; ++i) {
        const std::uint32_t n = get_u32(p);
        values.push_back(load(p + 4, n));
        p += 4 + n;
      }
      job.deliver(r.task.chunk, std::move(values));
    } catch (const Error& e) {
      job.fail(r.task.chunk, Failure{e.kind(), e.what()});
    }
  }

  void wait_for_work(const std::vector<std::size_t>& readable) {
    auto any = [&] {
      if (poked.load(std::memory_order_relaxed) != 0) return true;
      if (header->space_freed.load(std::memory_order_relaxed) != 0) {
        header->space_freed.store(0, std::memory_order_relaxed);
        poked.store(1, std::memory_order_relaxed);
        return true;
      }
      for (std::size_t i : readable) {
        if (slots[i].shared->out_tail.load(std::memory_order_acquire) != slots[i].out_head)
          return true;
      }
      return false;
    };
    const std::int64_t spin_end = platform::monotonic_now_ns() + kResultSpinNs;
    for (int i = 0;; ++i) {
      if (any()) return;
      spin_pause(i);
      if ((i & 15) == 15 && platform::monotonic_now_ns() > spin_end) break;
    }
    std::atomic<std::uint32_t>& word = header->parent_sleeping;
    word.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (any()) {
      word.store(0, std::memory_order_relaxed);
      return;
    }
    const platform::Deadline deadline = platform::Deadline::after(kSafetySeconds);
    platform::futex::wait(word, 1, &deadline);
    // A timeout: re-check everything (and the slots' states) once.
    poked.store(1, std::memory_order_relaxed);
  }

  // --- the supervisor --------------------------------------------------------
  void supervisor_loop() {
    std::vector<pollfd> fds;
    std::vector<std::size_t> owner;
    for (;;) {
      std::vector<std::size_t> respawn;
      {
        std::lock_guard lock(mutex);
        if (state == PoolState::kTerminate) break;
        fds.clear();
        owner.clear();
        fds.push_back(pollfd{wake_pipe[0], POLLIN, 0});
        owner.push_back(SIZE_MAX);
        bool any_alive = false;
        for (std::size_t i = 0; i < slots.size(); ++i) {
          Slot& s = slots[i];
          if (s.state == SlotState::kRespawn) respawn.push_back(i);
          if ((s.state == SlotState::kLive || s.state == SlotState::kStopping) && s.process) {
            fds.push_back(pollfd{s.process->sentinel(), POLLIN, 0});
            owner.push_back(i);
            any_alive = true;
          }
          if (s.state == SlotState::kDead) any_alive = true;
        }
        if (quit && !any_alive && respawn.empty()) return;
      }
      for (std::size_t i : respawn) {
        std::optional<Process> p;
        std::optional<Failure> failure;
        try {
          p = start_worker(i);
        } catch (const Error& e) {
          failure = Failure{"ProcessError", std::string("cannot start a pool worker: ") + e.what()};
        } catch (const std::exception& e) {
          failure = Failure{"ProcessError", std::string("cannot start a pool worker: ") + e.what()};
        }
        std::lock_guard lock(mutex);
        Slot& s = slots[i];
        if (p) {
          s.process = std::move(p);
          s.state = SlotState::kLive;
          if (state == PoolState::kClose && stop_sent) {
            const std::size_t at = begin_record(s.out_buf, kStop, 0, {}, 0);
            finish_record(s.out_buf, at);
            s.state = SlotState::kStopping;
          }
          dispatch();
          flush(s);
        } else {
          if (!broken) broken = failure;
          s.state = SlotState::kStopped;
          dispatch();
        }
        poke_result_thread();
      }
      if (!respawn.empty()) continue;  // rebuild the poll set
      const int rc = ::poll(fds.data(), fds.size(), 1000);
      if (rc <= 0) continue;
      if (fds[0].revents != 0) drain_pipe(wake_pipe[0]);
      for (std::size_t k = 1; k < fds.size(); ++k) {
        if (fds[k].revents == 0) continue;
        const std::size_t i = owner[k];
        Process p = *slots[i].process;  // only the supervisor replaces it
        try {
          p.join();
        } catch (...) {
        }
        std::lock_guard lock(mutex);
        slots[i].state = SlotState::kDead;
        slots[i].dead_seen = false;
        poke_result_thread();
      }
    }
    // terminate(): SIGTERM, then SIGKILL, and reap every worker.
    std::vector<Process> procs;
    {
      std::lock_guard lock(mutex);
      for (Slot& s : slots) {
        if (s.process) procs.push_back(*s.process);
      }
    }
    for (Process& p : procs) {
      try {
        p.terminate();
      } catch (...) {
      }
    }
    const platform::Deadline grace = platform::Deadline::after(kTerminateGraceSeconds);
    for (Process& p : procs) {
      try {
        const double left =
            static_cast<double>(grace.monotonic_ns() - platform::monotonic_now_ns()) / 1e9;
        p.join(std::max(left, 0.0));
        if (!p.exitcode()) {
          p.kill();
          p.join();
        }
      } catch (...) {
      }
    }
    std::lock_guard lock(mutex);
    for (Slot& s : slots) s.state = SlotState::kStopped;
  }
};

}  // namespace pool_detail

using pool_detail::Core;
using pool_detail::Failure;
using pool_detail::IMapJob;
using pool_detail::IMapState;
using pool_detail::Job;
using pool_detail::ResultJob;
using pool_detail::ResultState;

// ---------------------------------------------------------------------------
// AsyncResult, IMapIterator
// ---------------------------------------------------------------------------

namespace {

platform::Deadline deadline_of(std::optional<double> timeout) {
  return timeout ? platform::Deadline::after(*timeout) : platform::Deadline::never();
}

}  // namespace

Value AsyncResult::get(std::optional<double> timeout) {
  if (!state_) throw ValueError("AsyncResult has no result");
  const platform::Deadline deadline = deadline_of(timeout);
  if (!state_->wait_until(deadline)) throw TimeoutError("");
  if (!state_->ok) throw_error(state_->failure.kind, state_->failure.message);
  return state_->value;
}

void AsyncResult::wait(std::optional<double> timeout) {
  if (!state_) throw ValueError("AsyncResult has no result");
  const platform::Deadline deadline = deadline_of(timeout);
  state_->wait_until(deadline);
}

bool AsyncResult::ready() const {
  if (!state_) throw ValueError("AsyncResult has no result");
  return state_->ready();
}

bool AsyncResult::successful() const {
  if (!ready()) throw ValueError("result is not ready");
  return state_->ok;
}

std::optional<Value> IMapIterator::next(std::optional<double> timeout) {
  if (!state_) throw ValueError("IMapIterator has no results");
  const platform::Deadline deadline = deadline_of(timeout);
  IMapState& st = *state_;
  std::unique_lock lock(st.mutex);
  for (;;) {
    if (st.ordered) {
      if (st.next_chunk >= st.chunks) return std::nullopt;
      auto& slot = st.by_chunk[st.next_chunk];
      if (slot) {
        if (!slot->ok) {
          const Failure f = slot->failure;
          slot.reset();
          ++st.next_chunk;
          st.next_item = 0;
          lock.unlock();
          throw_error(f.kind, f.message);
        }
        List& items = slot->value.as_list();
        if (st.next_item < items.size()) {
          Value v = std::move(items[st.next_item++]);
          if (st.next_item >= items.size()) {
            slot.reset();
            ++st.next_chunk;
            st.next_item = 0;
          }
          return v;
        }
        slot.reset();  // an empty chunk (cannot happen)
        ++st.next_chunk;
        st.next_item = 0;
        continue;
      }
    } else {
      if (!st.queue.empty()) {
        IMapState::Entry e = std::move(st.queue.front());
        st.queue.pop_front();
        if (!e.ok) {
          lock.unlock();
          throw_error(e.failure.kind, e.failure.message);
        }
        return std::move(e.value);
      }
      if (st.chunks_received >= st.chunks) return std::nullopt;
    }
    if (deadline.is_never()) {
      st.cv.wait(lock);
    } else {
      if (deadline.has_passed()) throw TimeoutError("");
      const auto until =
          std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline.monotonic_ns()));
      st.cv.wait_until(lock, until);
    }
  }
}

// ---------------------------------------------------------------------------
// Pool
// ---------------------------------------------------------------------------

Pool::Pool(PoolOptions options) {
  auto core = std::make_shared<Core>();
  const int processes = options.processes ? *options.processes : cpu_count();
  if (processes < 1) throw ValueError("Number of processes must be at least 1");
  if (options.maxtasksperchild && *options.maxtasksperchild < 1) {
    throw ValueError("maxtasksperchild must be a positive int or None");
  }
  if (options.initializer && !is_pool_function_registered(*options.initializer)) {
    throw ValueError("initializer must be a registered pool function: '" + *options.initializer +
                     "'");
  }
  core->processes = processes;
  core->initializer = options.initializer;
  core->initargs_hex = pool_detail::to_hex(pickle_dumps(Value(options.initargs)));
  core->max_tasks =
      options.maxtasksperchild ? static_cast<std::uint64_t>(*options.maxtasksperchild) : 0;
  core->method = options.start_method ? *options.start_method : get_start_method();

  const auto n = static_cast<std::size_t>(processes);
  const std::size_t page = platform::page_size();
  const std::size_t data_offset =
      (pool_detail::slots_offset() + n * sizeof(pool_detail::SlotShared) + page - 1) / page * page;
  core->segment_size = data_offset + n * 2 * pool_detail::kRingBytes;
  core->memfd = pool_detail::create_segment_fd(core->segment_size);
  core->base = pool_detail::map_segment(core->memfd, core->segment_size);
  core->header = new (core->base) pool_detail::SegmentHeader();
  core->header->magic = pool_detail::kSegmentMagic;
  core->header->slots = static_cast<std::uint32_t>(n);
  core->header->data_offset = data_offset;
  auto* shared = reinterpret_cast<pool_detail::SlotShared*>(static_cast<std::byte*>(core->base) +
                                                            pool_detail::slots_offset());
  std::byte* rings = static_cast<std::byte*>(core->base) + data_offset;
  core->slots.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    pool_detail::Slot& s = core->slots[i];
    s.shared = new (&shared[i]) pool_detail::SlotShared();
    s.inbox = rings + i * 2 * pool_detail::kRingBytes;
    s.outbox = s.inbox + pool_detail::kRingBytes;
  }
  pool_detail::make_wake_pipe(core->wake_pipe);

  try {
    for (std::size_t i = 0; i < n; ++i) {
      core->slots[i].process = core->start_worker(i);
      core->slots[i].state = pool_detail::SlotState::kLive;
    }
  } catch (...) {
    for (auto& s : core->slots) {
      if (!s.process) continue;
      try {
        s.process->kill();
        s.process->join();
      } catch (...) {
      }
    }
    throw;
  }
  core->result_thread = std::thread([c = core.get()] { c->result_loop(); });
  core->supervisor = std::thread([c = core.get()] { c->supervisor_loop(); });
  core_ = std::move(core);
}

Pool::~Pool() {
  try {
    terminate();
  } catch (...) {
  }
}

namespace {

void check_running(Core& core) {
  if (core.state != pool_detail::PoolState::kRun) throw ValueError("Pool not running");
}

void check_function(const std::string& func) {
  if (!is_pool_function_registered(func)) {
    throw ValueError("no pool function named '" + func + "' is registered");
  }
}

// Queues `job`'s chunks and dispatches what it can.
void submit(Core& core, const std::shared_ptr<Job>& job) {
  std::lock_guard lock(core.mutex);
  check_running(core);
  const std::size_t chunks = job->chunks();
  if (chunks == 0) {
    core.empty_jobs.push_back(job);
    core.poke_result_thread();
    return;
  }
  for (std::size_t k = 0; k < chunks; ++k) {
    core.pending.push_back(pool_detail::Task{core.next_seq++, job, k});
  }
  core.outstanding += chunks;
  core.dispatch();
}

// Encodes items [begin, end) as a map chunk payload.
void encode_chunks(Job& job, const List& items, std::size_t chunksize) {
  job.payload.clear();
  job.chunk_begin.clear();
  job.chunk_begin.reserve(items.size() / chunksize + 2);
  for (std::size_t i = 0; i < items.size(); i += chunksize) {
    job.chunk_begin.push_back(job.payload.size());
    const std::size_t end = std::min(items.size(), i + chunksize);
    pool_detail::put_u32(job.payload, static_cast<std::uint32_t>(end - i));
    for (std::size_t j = i; j < end; ++j) pool_detail::append_pickle(job.payload, items[j]);
  }
  job.chunk_begin.push_back(job.payload.size());
}

}  // namespace

Value Pool::apply(const std::string& func, List args, Dict kwds) {
  return apply_async(func, std::move(args), std::move(kwds)).get();
}

AsyncResult Pool::apply_async(const std::string& func, List args, Dict kwds,
                              ResultCallback callback, ErrorCallback error_callback) {
  {
    std::lock_guard lock(core_->mutex);
    check_running(*core_);
  }
  check_function(func);
  auto job = std::make_shared<ResultJob>();
  job->func = func;
  job->mode = pool_detail::kApply;
  {
    const std::vector<std::byte> a = pickle_dumps(Value(std::move(args)));
    const std::vector<std::byte> k = pickle_dumps(Value(std::move(kwds)));
    job->payload.reserve(4 + a.size() + k.size());
    pool_detail::put_u32(job->payload, static_cast<std::uint32_t>(a.size()));
    job->payload.append(reinterpret_cast<const char*>(a.data()), a.size());
    job->payload.append(reinterpret_cast<const char*>(k.data()), k.size());
  }
  job->chunk_begin = {0, job->payload.size()};
  job->state = std::make_shared<ResultState>();
  job->callback = std::move(callback);
  job->error_callback = std::move(error_callback);
  job->remaining = 1;
  AsyncResult result(job->state);
  submit(*core_, job);
  return result;
}

AsyncResult Pool::submit_map(const std::string& func, const List& iterable,
                             std::optional<long> chunksize, bool star, ResultCallback callback,
                             ErrorCallback error_callback) {
  {
    std::lock_guard lock(core_->mutex);
    check_running(*core_);
  }
  if (chunksize && *chunksize < 1) {
    throw ValueError("Chunksize must be 1+, not " + std::to_string(*chunksize));
  }
  check_function(func);
  std::size_t cs = 0;
  if (chunksize) {
    cs = static_cast<std::size_t>(*chunksize);
  } else {
    const std::size_t d = static_cast<std::size_t>(core_->processes) * 4;
    cs = (iterable.size() + d - 1) / d;
    if (cs == 0) cs = 1;
  }
  auto job = std::make_shared<ResultJob>();
  job->func = func;
  job->mode = star ? pool_detail::kStarmap : pool_detail::kMap;
  encode_chunks(*job, iterable, cs);
  job->state = std::make_shared<ResultState>();
  job->callback = std::move(callback);
  job->error_callback = std::move(error_callback);
  job->is_map = true;
  job->chunksize = cs;
  job->remaining = job->chunks();
  job->values.resize(iterable.size());
  AsyncResult result(job->state);
  submit(*core_, job);
  return result;
}

List Pool::map(const std::string& func, const List& iterable, std::optional<long> chunksize) {
  return std::move(map_async(func, iterable, chunksize).get().as_list());
}

AsyncResult Pool::map_async(const std::string& func, const List& iterable,
                            std::optional<long> chunksize, ResultCallback callback,
                            ErrorCallback error_callback) {
  return submit_map(func, iterable, chunksize, false, std::move(callback),
                    std::move(error_callback));
}

List Pool::starmap(const std::string& func, const List& iterable, std::optional<long> chunksize) {
  return std::move(starmap_async(func, iterable, chunksize).get().as_list());
}

AsyncResult Pool::starmap_async(const std::string& func, const List& iterable,
                                std::optional<long> chunksize, ResultCallback callback,
                                ErrorCallback error_callback) {
  return submit_map(func, iterable, chunksize, true, std::move(callback),
                    std::move(error_callback));
}

IMapIterator Pool::submit_imap(const std::string& func, const List& iterable, long chunksize,
                               bool ordered) {
  {
    std::lock_guard lock(core_->mutex);
    check_running(*core_);
  }
  if (chunksize < 1) throw ValueError("Chunksize must be 1+, not " + std::to_string(chunksize));
  check_function(func);
  auto job = std::make_shared<IMapJob>();
  job->func = func;
  job->mode = pool_detail::kMap;
  encode_chunks(*job, iterable, static_cast<std::size_t>(chunksize));
  job->state = std::make_shared<IMapState>();
  job->state->ordered = ordered;
  job->state->chunks = job->chunks();
  if (ordered) job->state->by_chunk.resize(job->chunks());
  IMapIterator it(job->state);
  submit(*core_, job);
  return it;
}

IMapIterator Pool::imap(const std::string& func, const List& iterable, long chunksize) {
  return submit_imap(func, iterable, chunksize, true);
}

IMapIterator Pool::imap_unordered(const std::string& func, const List& iterable, long chunksize) {
  return submit_imap(func, iterable, chunksize, false);
}

void Pool::close() {
  std::lock_guard lock(core_->mutex);
  if (core_->state != pool_detail::PoolState::kRun) return;
  core_->state = pool_detail::PoolState::kClose;
  core_->poke_result_thread();
  core_->poke_supervisor();
}

void Pool::terminate() {
  {
    std::lock_guard lock(core_->mutex);
    core_->state = pool_detail::PoolState::kTerminate;
  }
  core_->poke_result_thread();
  core_->poke_supervisor();
  join();
}

void Pool::join() {
  {
    std::lock_guard lock(core_->mutex);
    if (core_->state == pool_detail::PoolState::kRun) throw ValueError("Pool is still running");
  }
  std::lock_guard lock(core_->join_mutex);
  const auto self = std::this_thread::get_id();
  if (core_->result_thread.joinable() && core_->result_thread.get_id() != self) {
    core_->result_thread.join();
  }
  if (core_->supervisor.joinable() && core_->supervisor.get_id() != self) core_->supervisor.join();
}

int Pool::processes() const { return core_->processes; }

bool Pool::running() const {
  std::lock_guard lock(core_->mutex);
  return core_->state == pool_detail::PoolState::kRun;
}

std::vector<pid_t> Pool::worker_pids() const {
  std::vector<Process> procs;
  {
    std::lock_guard lock(core_->mutex);
    for (const auto& s : core_->slots) {
      if (s.process && (s.state == pool_detail::SlotState::kLive ||
                        s.state == pool_detail::SlotState::kStopping)) {
        procs.push_back(*s.process);
      }
    }
  }
  std::vector<pid_t> pids;
  for (Process& p : procs) {
    try {
      if (p.is_alive()) pids.push_back(*p.pid());
    } catch (...) {
    }
  }
  return pids;
}

}  // namespace mp
