// -----------------------------------------------------------------------------
// File: src/pool_shared.hpp
// -----------------------------------------------------------------------------
//
// INTERNAL (private to src/): the shared segment of an mp::Pool and the wire
// format of its records, used by the parent (pool.cpp) and by the worker
// process (pool_worker.cpp).
//
// Segment. One memfd, mapped by the parent and by every worker:
//
//   [SegmentHeader][SlotShared x slots]  (rounded up to a page)
//   [inbox ring 0][outbox ring 0][inbox ring 1][outbox ring 1]...
//
// Rings. Each ring is a single-producer single-consumer byte stream of
// kRingBytes (a power of two): the producer copies bytes behind `tail` and
// publishes them with one release store of `tail`; the consumer copies bytes
// from `head` and frees them with one release store of `head`. The counters
// only grow (64 bits). Records are framed in the stream (u32 length, then the
// body), so one larger than the ring passes through it in pieces.
//
// Sleeping. A side that waits (worker: for a task or for outbox space;
// parent's result thread: for a result or inbox space) stores 1 into its
// futex word, issues a full fence, re-checks its condition and then sleeps
// while the word is 1. The other side, after publishing, issues a full fence
// and wakes the sleeper only if it finds the word at 1 (exchanged to 0): the
// fences order "publish; look at the word" against "set the word; look at the
// data", so no wake-up is lost and a busy pool makes no system call.
//
// Records, parent -> worker (inbox):
//   u32 body length | u8 type | u8 mode | u16 function name length | u64 seq |
//   function name | payload
//   type kTask: mode kApply: payload = u32 n | pickle(args list) (n bytes) |
//                            pickle(kwds dict)
//               mode kMap / kStarmap: payload = u32 count | count x (u32 n |
//                            pickle(item))
//   type kStop: no name, no payload (seq 0)
// Records, worker -> parent (outbox):
//   u32 body length | u8 type | u8 0 | u16 0 | u64 seq | payload
//   type kOk:        u32 count | count x (u32 n | pickle(value))
//   type kErr:       u16 kind length | kind | message
//   type kInitFail:  as kErr (seq 0)

#ifndef MP_SRC_POOL_SHARED_HPP_
#define MP_SRC_POOL_SHARED_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "mp/platform/futex.hpp"

namespace mp::pool_detail {

inline constexpr std::uint64_t kSegmentMagic = 0x6d70706f6f6c3031ULL;  // "mppool01"
inline constexpr std::uint64_t kRingBytes = std::uint64_t{1} << 17;    // 128 KiB
inline constexpr const char* kWorkerTask = "mp.pool.worker";

enum RecordType : std::uint8_t { kTask = 1, kStop = 2, kOk = 3, kErr = 4, kInitFail = 5 };
enum TaskMode : std::uint8_t { kApply = 0, kMap = 1, kStarmap = 2 };

// Header of a record body (after the u32 length).
inline constexpr std::size_t kRecordHeader = 4 + 1 + 1 + 2 + 8;

struct SegmentHeader {
  std::uint64_t magic;
  std::uint32_t slots;
  std::uint32_t reserved;
  std::uint64_t data_offset;  // of inbox ring 0
  // The result thread's futex word (see "Sleeping").
  alignas(64) std::atomic<std::uint32_t> parent_sleeping;
  // Set by a worker that freed inbox room the parent asked for.
  std::atomic<std::uint32_t> space_freed;
};

struct SlotShared {
  // Inbox: the parent produces, the worker consumes.
  alignas(64) std::atomic<std::uint64_t> in_tail;
  alignas(64) std::atomic<std::uint64_t> in_head;
  // The seq of the task the worker runs (or last ran): stored before the run.
  std::atomic<std::uint64_t> running_seq;
  // The worker's futex word.
  alignas(64) std::atomic<std::uint32_t> worker_sleeping;
  // Set by the parent when inbox bytes wait for room: the worker, after
  // freeing room, wakes the parent.
  std::atomic<std::uint32_t> parent_wants_space;
  // Outbox: the worker produces, the parent consumes.
  alignas(64) std::atomic<std::uint64_t> out_tail;
  alignas(64) std::atomic<std::uint64_t> out_head;

  void reset() noexcept {
    in_tail.store(0, std::memory_order_relaxed);
    in_head.store(0, std::memory_order_relaxed);
    running_seq.store(0, std::memory_order_relaxed);
    worker_sleeping.store(0, std::memory_order_relaxed);
    parent_wants_space.store(0, std::memory_order_relaxed);
    out_tail.store(0, std::memory_order_relaxed);
    out_head.store(0, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
};

inline std::size_t slots_offset() noexcept { return (sizeof(SegmentHeader) + 63) / 64 * 64; }

// Wakes the sleeper of `word` if it sleeps (see "Sleeping"); the caller has
// published its data and issued a seq_cst fence.
inline void wake_if_sleeping(std::atomic<std::uint32_t>& word) noexcept {
  if (word.load(std::memory_order_relaxed) != 0 && word.exchange(0) != 0) {
    platform::futex::wake(word, platform::futex::kWakeAll);
  }
}

// One step of a bounded spin: a CPU pause at first, then a yield, so that a
// spinner on an oversubscribed machine lends its CPU to the thread it waits for.
inline void spin_pause(int i) noexcept {
  if (i < 128) {
    platform::futex::cpu_relax();
  } else {
    std::this_thread::yield();
  }
}

// Copies `n` bytes into the ring at stream position `pos` (wrapping).
inline void ring_copy_in(std::byte* ring, std::uint64_t pos, const char* src,
                         std::size_t n) noexcept {
  const std::size_t at = static_cast<std::size_t>(pos & (kRingBytes - 1));
  const std::size_t first = std::min<std::size_t>(n, kRingBytes - at);
  std::memcpy(ring + at, src, first);
  if (first < n) std::memcpy(ring, src + first, n - first);
}

// Appends `n` bytes of the ring from stream position `pos` to `out`.
inline void ring_copy_out(const std::byte* ring, std::uint64_t pos, std::size_t n,
                          std::string& out) {
  const std::size_t at = static_cast<std::size_t>(pos & (kRingBytes - 1));
  const std::size_t first = std::min<std::size_t>(n, kRingBytes - at);
  out.append(reinterpret_cast<const char*>(ring + at), first);
  if (first < n) out.append(reinterpret_cast<const char*>(ring), n - first);
}

// Little helpers for the record format (native byte order: both ends are the
// same machine).
inline void put_u16(std::string& s, std::uint16_t v) {
  s.append(reinterpret_cast<const char*>(&v), 2);
}
inline void put_u32(std::string& s, std::uint32_t v) {
  s.append(reinterpret_cast<const char*>(&v), 4);
}
inline void put_u64(std::string& s, std::uint64_t v) {
  s.append(reinterpret_cast<const char*>(&v), 8);
}
inline std::uint16_t get_u16(const char* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline std::uint32_t get_u32(const char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline std::uint64_t get_u64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void set_u32(std::string& s, std::size_t at, std::uint32_t v) noexcept {
  std::memcpy(s.data() + at, &v, 4);
}

// Starts a record in `s`: reserves the length, writes the header; returns the
// record's offset for finish_record().
inline std::size_t begin_record(std::string& s, RecordType type, std::uint8_t mode,
                                std::string_view name, std::uint64_t seq) {
  const std::size_t at = s.size();
  put_u32(s, 0);
  s.push_back(static_cast<char>(type));
  s.push_back(static_cast<char>(mode));
  put_u16(s, static_cast<std::uint16_t>(name.size()));
  put_u64(s, seq);
  s.append(name);
  return at;
}
inline void finish_record(std::string& s, std::size_t at) noexcept {
  set_u32(s, at, static_cast<std::uint32_t>(s.size() - at - 4));
}

// An error record's payload.
inline void put_error(std::string& s, std::string_view kind, std::string_view message) {
  put_u16(s, static_cast<std::uint16_t>(kind.size()));
  s.append(kind);
  s.append(message);
}

}  // namespace mp::pool_detail

#endif  // MP_SRC_POOL_SHARED_HPP_
