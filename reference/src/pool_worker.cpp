// mp::Pool, part 1: the pool function registry, the shared segment's system
// calls, and the worker process (the registered task "mp.pool.worker").
//
// The segment's memfd / mmap calls live here rather than in src/platform: they
// serve only the pool, and src/shared_memory.cpp sets the precedent.
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "mp/codec.hpp"
#include "mp/errors.hpp"
#include "mp/platform/clock.hpp"
#include "mp/platform/futex.hpp"
#include "mp/platform/process.hpp"
#include "mp/pool.hpp"
#include "mp/process.hpp"
#include "pool_shared.hpp"

namespace mp {
namespace pool_detail {

// ---------------------------------------------------------------------------
// Registry of pool functions
// ---------------------------------------------------------------------------

namespace {

struct FunctionRegistry {
  std::mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<const PoolFunction>> functions;
};

FunctionRegistry* registry_instance = nullptr;

// A forked worker looks functions up: the registry's mutex must not be held
// by another thread of the parent at the fork.
void registry_before_fork() { registry_instance->mutex.lock(); }
void registry_after_fork() { registry_instance->mutex.unlock(); }

FunctionRegistry& function_registry() {
  static FunctionRegistry* const r = [] {
    registry_instance = new FunctionRegistry;  // never destroyed (static init/exit order)
    ::pthread_atfork(&registry_before_fork, &registry_after_fork, &registry_after_fork);
    return registry_instance;
  }();
  return *r;
}

}  // namespace

std::shared_ptr<const PoolFunction> find_function(const std::string& name) {
  FunctionRegistry& r = function_registry();
  std::lock_guard lock(r.mutex);
  const auto it = r.functions.find(name);
  return it == r.functions.end() ? nullptr : it->second;
}

// ---------------------------------------------------------------------------
// The segment
// ---------------------------------------------------------------------------

namespace {
[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}
}  // namespace

int create_segment_fd(std::size_t size) {
  const int fd = ::memfd_create("mp-pool", MFD_CLOEXEC);
  if (fd < 0) throw_errno("memfd_create");
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    throw_errno("ftruncate");
  }
  return fd;
}

void* map_segment(int fd, std::size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw_errno("mmap");
  return p;
}

void unmap_segment(void* p, std::size_t size) noexcept {
  if (p != nullptr) ::munmap(p, size);
}

// A self-pipe (non-blocking, close-on-exec) for waking the supervisor.
void make_wake_pipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw_errno("pipe2");
}

void poke_pipe(int fd) noexcept {
  const char c = 1;
  [[maybe_unused]] const ssize_t n = ::write(fd, &c, 1);  // full: a wake-up is pending anyway
}

void drain_pipe(int fd) noexcept {
  char buffer[64];
  while (::read(fd, buffer, sizeof buffer) > 0) {
  }
}

// ---------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------

namespace {

// How long a side spins on its ring before it sleeps.
constexpr std::int64_t kWorkerSpinNs = 50'000;
// A sleeping worker checks that its parent lives this often.
constexpr double kParentCheckSeconds = 0.25;

std::string from_hex(const std::string& hex) {
  std::string out;
  out.reserve(hex.size() / 2);
  auto digit = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(digit(hex[i]) * 16 + digit(hex[i + 1])));
  }
  return out;
}

std::span<const std::byte> bytes_of(const char* p, std::size_t n) {
  return {reinterpret_cast<const std::byte*>(p), n};
}

void append_pickle(std::string& out, const Value& v) {
  const std::vector<std::byte> p = pickle_dumps(v);
  put_u32(out, static_cast<std::uint32_t>(p.size()));
  out.append(reinterpret_cast<const char*>(p.data()), p.size());
}

class Worker {
 public:
  Worker(SegmentHeader* header, SlotShared* slot, std::byte* inbox, std::byte* outbox)
      : header_(header), slot_(slot), inbox_(inbox), outbox_(outbox) {}

  // Runs tasks until told to stop or `max_tasks` (0: no limit) are done.
  int run(std::uint64_t max_tasks) {
    std::uint64_t done = 0;
    for (;;) {
      if (!next_record()) return 0;  // the parent died
      const char* rec = acc_.data() + pos_ + 4;
      const std::uint32_t body = get_u32(acc_.data() + pos_);
      pos_ += 4 + body;
      const auto type = static_cast<RecordType>(rec[0]);
      if (type == kStop) return 0;
      if (type != kTask) continue;
      run_task(rec, body);
      if (max_tasks != 0 && ++done >= max_tasks) return 0;
    }
  }

  // Sends an initializer failure.
  void send_init_failure(std::string_view kind, std::string_view message) {
    out_.clear();
    const std::size_t at = begin_record(out_, kInitFail, 0, {}, 0);
    put_error(out_, kind, message);
    finish_record(out_, at);
    send(out_);
  }

 private:
  // Makes a whole record available at acc_[pos_]; false if the parent died.
  bool next_record() {
    for (;;) {
      const std::size_t have = acc_.size() - pos_;
      if (have >= 4) {
        const std::uint32_t body = get_u32(acc_.data() + pos_);
        if (have >= 4 + std::size_t{body}) return true;
      }
      if (pos_ > 0) {  // keep the partial record only
        acc_.erase(0, pos_);
        pos_ = 0;
      }
      if (!receive()) return false;
    }
  }

  // Moves every available inbox byte to acc_, waiting for some.
  bool receive() {
    std::uint64_t tail = slot_->in_tail.load(std::memory_order_acquire);
    if (tail == head_) {
      const std::int64_t spin_end = platform::monotonic_now_ns() + kWorkerSpinNs;
      for (int i = 0;; ++i) {
        spin_pause(i);
        tail = slot_->in_tail.load(std::memory_order_acquire);
        if (tail != head_) break;
        if ((i & 15) == 15 && platform::monotonic_now_ns() > spin_end) break;
      }
    }
    while (tail == head_) {
      slot_->worker_sleeping.store(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      tail = slot_->in_tail.load(std::memory_order_acquire);
      if (tail != head_) {
        slot_->worker_sleeping.store(0, std::memory_order_relaxed);
        break;
      }
      const platform::Deadline deadline = platform::Deadline::after(kParentCheckSeconds);
      const auto r = platform::futex::wait(slot_->worker_sleeping, 1, &deadline);
      tail = slot_->in_tail.load(std::memory_order_acquire);
      if (tail == head_ && r == platform::futex::WaitResult::kTimedOut && !parent_alive()) {
        return false;
      }
    }
    const std::size_t n = static_cast<std::size_t>(tail - head_);
    ring_copy_out(inbox_, head_, n, acc_);
    head_ = tail;
    slot_->in_head.store(head_, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (slot_->parent_wants_space.load(std::memory_order_relaxed) != 0 &&
        slot_->parent_wants_space.exchange(0) != 0) {
      header_->space_freed.store(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      wake_if_sleeping(header_->parent_sleeping);
    }
    return true;
  }

  static bool parent_alive() {
    const auto parent = parent_process();
    return !parent || parent->is_alive();
  }

  const PoolFunction* lookup(const std::string& name) {
    const auto it = cache_.find(name);
    if (it != cache_.end()) return it->second.get();
    auto fn = find_function(name);
    if (!fn) return nullptr;
    const PoolFunction* raw = fn.get();
    cache_.emplace(name, std::move(fn));
    return raw;
  }

  void run_task(const char* rec, std::uint32_t body) {
    const auto mode = static_cast<TaskMode>(rec[1]);
    const std::uint16_t name_len = get_u16(rec + 2);
    const std::uint64_t seq = get_u64(rec + 4);
    const char* p = rec + 12;
    const char* end = rec + body;
    name_.assign(p, name_len);
    p += name_len;
    // Published before the function runs: if the worker dies from here on,
    // the parent fails this task instead of sending it elsewhere.
    slot_->running_seq.store(seq, std::memory_order_seq_cst);
    out_.clear();
    const std::size_t at = begin_record(out_, kOk, 0, {}, seq);
    const std::size_t payload = out_.size();
    try {
      const PoolFunction* fn = lookup(name_);
      if (fn == nullptr) throw ValueError("no pool function named '" + name_ + "'");
      if (mode == kApply) {
        const std::uint32_t n = get_u32(p);
        const Value args = pickle_loads(bytes_of(p + 4, n));
        const Value kwds =
            pickle_loads(bytes_of(p + 4 + n, static_cast<std::size_t>(end - p - 4 - n)));
        const Value result = (*fn)(args.as_list(), kwds.as_dict());
        put_u32(out_, 1);
        append_pickle(out_, result);
      } else {
        const std::uint32_t count = get_u32(p);
        p += 4;
        put_u32(out_, count);
        for (std::uint32_t i = 0; i < count; ++i) {
          const std::uint32_t n = get_u32(p);
          Value item = pickle_loads(bytes_of(p + 4, n));
          p += 4 + n;
          Value result;
          if (mode == kMap) {
            List args;
            args.push_back(std::move(item));
            result = (*fn)(args, empty_kwds_);
          } else {
            if (!item.is_list()) {
              throw TypeError(std::string("starmap item must be a list, not ") + item.type_name());
            }
            result = (*fn)(item.as_list(), empty_kwds_);
          }
          append_pickle(out_, result);
        }
      }
    } catch (const Error& e) {
      fail(at, payload, e.kind(), e.what());
    } catch (const std::exception& e) {
      fail(at, payload, "RuntimeError", e.what());
    } catch (...) {
      fail(at, payload, "RuntimeError", "unknown exception");
    }
    finish_record(out_, at);
    send(out_);
  }

  void fail(std::size_t at, std::size_t payload, std::string_view kind, std::string_view message) {
    out_.resize(payload);
    out_[at + 4] = static_cast<char>(kErr);
    put_error(out_, kind, message);
  }

  // Writes `data` to the outbox, waiting for room as needed.
  void send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      std::uint64_t free = kRingBytes - (tail_ - out_head_cache_);
      if (free == 0) {
        out_head_cache_ = slot_->out_head.load(std::memory_order_acquire);
        free = kRingBytes - (tail_ - out_head_cache_);
      }
      if (free == 0) {
        wait_for_room();
        continue;
      }
      const std::size_t n = std::min<std::size_t>(data.size() - off, free);
      ring_copy_in(outbox_, tail_, data.data() + off, n);
      tail_ += n;
      off += n;
      slot_->out_tail.store(tail_, std::memory_order_release);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      wake_if_sleeping(header_->parent_sleeping);
    }
  }

  void wait_for_room() {
    for (;;) {
      slot_->worker_sleeping.store(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      out_head_cache_ = slot_->out_head.load(std::memory_order_acquire);
      if (tail_ - out_head_cache_ < kRingBytes) {
        slot_->worker_sleeping.store(0, std::memory_order_relaxed);
        return;
      }
      const platform::Deadline deadline = platform::Deadline::after(kParentCheckSeconds);
      const auto r = platform::futex::wait(slot_->worker_sleeping, 1, &deadline);
      if (r == platform::futex::WaitResult::kTimedOut && !parent_alive()) platform::exit_now(0);
    }
  }

  SegmentHeader* header_;
  SlotShared* slot_;
  std::byte* inbox_;
  std::byte* outbox_;
  std::uint64_t head_ = 0;            // inbox consumed up to here
  std::uint64_t tail_ = 0;            // outbox produced up to here
  std::uint64_t out_head_cache_ = 0;  // last outbox head seen
  std::string acc_;                   // inbox bytes received, from pos_
  std::size_t pos_ = 0;
  std::string out_;
  std::string name_;
  const Dict empty_kwds_;
  std::unordered_map<std::string, std::shared_ptr<const PoolFunction>> cache_;
};

// args: {memfd, segment size, slot, max tasks (0: none), initializer name or
// "", hex pickle of initargs}.
int worker_main(const TaskArgs& args) {
  const int fd = std::stoi(args.at(0));
  const auto size = static_cast<std::size_t>(std::stoull(args.at(1)));
  const auto index = static_cast<std::size_t>(std::stoull(args.at(2)));
  const std::uint64_t max_tasks = std::stoull(args.at(3));
  const std::string& initializer = args.at(4);
  void* base = map_segment(fd, size);
  ::close(fd);
  auto* header = static_cast<SegmentHeader*>(base);
  if (header->magic != kSegmentMagic || index >= header->slots) return 1;
  auto* slots = reinterpret_cast<SlotShared*>(static_cast<std::byte*>(base) + slots_offset());
  std::byte* rings = static_cast<std::byte*>(base) + header->data_offset;
  Worker worker(header, &slots[index], rings + index * 2 * kRingBytes,
                rings + index * 2 * kRingBytes + kRingBytes);
  if (!initializer.empty()) {
    std::string kind, message;
    try {
      const auto fn = find_function(initializer);
      if (!fn) throw ValueError("no pool function named '" + initializer + "'");
      const std::string initargs = from_hex(args.at(5));
      const Value a = pickle_loads(bytes_of(initargs.data(), initargs.size()));
      (*fn)(a.as_list(), Dict{});
    } catch (const Error& e) {
      kind = e.kind();
      message = e.what();
    } catch (const std::exception& e) {
      kind = "RuntimeError";
      message = e.what();
    } catch (...) {
      kind = "RuntimeError";
      message = "unknown exception";
    }
    if (!kind.empty()) {
      worker.send_init_failure(kind, message);
      return 1;
    }
  }
  return worker.run(max_tasks);
}

const TaskRegistration kWorkerRegistration(kWorkerTask, &worker_main);

}  // namespace
}  // namespace pool_detail

void register_pool_function(std::string name, PoolFunction fn) {
  if (name.empty()) throw ValueError("pool function name must not be empty");
  if (!fn) throw ValueError("pool function '" + name + "' is empty");
  auto& r = pool_detail::function_registry();
  std::lock_guard lock(r.mutex);
  if (r.functions.count(name) != 0) {
    throw ValueError("a pool function named '" + name + "' is already registered");
  }
  r.functions.emplace(std::move(name), std::make_shared<const PoolFunction>(std::move(fn)));
}

bool is_pool_function_registered(const std::string& name) {
  return pool_detail::find_function(name) != nullptr;
}

PoolFunctionRegistration::PoolFunctionRegistration(std::string name, PoolFunction fn) {
  register_pool_function(std::move(name), std::move(fn));
}

}  // namespace mp
