// The sequential FIFO model of Queue, SimpleQueue and JoinableQueue (spec/queue/queue.md §7,
// spec/queue/simple_queue.md §6, spec/queue/joinable_queue.md §5): the strict profile's
// linearizable queue.
//
// State: the items held, head first. Values are opaque: an item is the canonical text of its
// JSON value (the checker writes it with nlohmann::json::dump(), whose objects have sorted keys,
// so equal values have equal texts and 1, 1.0 and true differ, as their types do).
//
// maxsize. A history does not record constructor arguments, so the model, like Semaphore's with
// its initial value, does not know the bound: it keeps an interval [lo, hi] that maxsize lies
// in, narrowed by each outcome. Every outcome gives a lower bound or pins the value, because a
// queue never holds more than maxsize items: a put that returned needs maxsize > size, `full()`
// False also says maxsize > size, and `Full` or `full()` True say maxsize == size. The interval
// therefore stays an interval. A test that knows the bound pins it with the pseudo-operation
// kBound (check::check_queue_linearizable places it before the history's calls); a maxsize of
// 0 or less is an unbounded queue, whose bound is the backend's limit, at least 32767
// ([queue.construct.unbounded]). A SimpleQueue has no bound: its put never gives up.
//
// close() is process-local ([queue.close.process_local]), so the state lists the processes
// that have closed the queue and each Op names its process.
//
// Checker hints. An Op also carries facts that the checker derives from the whole history when
// each value is put once and got at most once (the tests make values unique). They only remove
// successor states from which no linearization of the history can continue, so they change no
// verdict, and they keep the search small where a plain FIFO search explodes (many puts held at
// once, drained later: every order of the concurrent puts is a different state). With their
// defaults (Op::rank -1, Op::after 0, Item::claimed false) the model is the plain FIFO model.
// See conformance/checker/queue_check.cpp for how they are computed and why they are sound.
//
// JoinableQueue (spec/queue/joinable_queue.md) is the Queue model plus `unfinished`, the count of
// unfinished tasks: a put adds its item and one unit in the same step, task_done takes a unit
// away (ValueError only at 0), join is a step legal only at 0.
//
// Every rule of `step` names the clause it makes executable.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "models/model.hpp"

namespace mpspec::model {

template <bool Simple, bool Joinable = false>
struct QueueModel {
  static_assert(!(Simple && Joinable), "a SimpleQueue has no count of tasks");
  static constexpr std::string_view kTypeName =
      Simple ? "SimpleQueue" : (Joinable ? "JoinableQueue" : "Queue");

  // The bound of a queue without one (a SimpleQueue, or hi before anything narrows it).
  static constexpr std::int64_t kNoBound = std::numeric_limits<std::int64_t>::max();
  // [queue.construct.unbounded] an unbounded Queue holds at least this many items.
  static constexpr std::int64_t kUnboundedAtLeast = 32767;
  // Op::after of a put that is explored only as not having taken effect (a hint).
  static constexpr std::uint32_t kNever = std::numeric_limits<std::uint32_t>::max();
  // As Lock: a timeout above this (or not finite) may be too large for the platform.
  static constexpr double kMayOverflowTimeout = 1e8;

  struct Item {
    std::string value;     // canonical JSON text
    bool claimed = false;  // hint: one `ok` get returns this item, so no killed get takes it
    friend bool operator==(const Item&, const Item&) = default;
  };

  struct State {
    std::vector<Item> items;                  // head first
    std::int64_t lo = Simple ? kNoBound : 1;  // maxsize >= lo
    std::int64_t hi = kNoBound;               // maxsize <= hi
    std::vector<std::string> closed;          // processes that called close(), sorted
    std::int64_t unfinished = 0;              // JoinableQueue: the count of unfinished tasks
    // Hint: which claimed values have been put, by rank, and the length of the prefix of
    // ranks all put (see Op::rank).
    std::vector<std::uint64_t> put_bits;
    std::uint32_t put_low = 0;
    friend bool operator==(const State&, const State&) = default;
  };

  enum class Method {
    kPut,
    kPutNowait,
    kGet,
    kGetNowait,
    kQsize,
    kEmpty,
    kFull,
    kClose,
    kJoinThread,
    kCancelJoinThread,
    kTaskDone,  // JoinableQueue only
    kJoin,      // JoinableQueue only
    kBound,  // not a call: the test's declaration of maxsize (see the top of this file)
  };

  // put, close, join_thread and cancel_join_thread return None, qsize an int, empty and full a
  // bool, get the canonical JSON text of the value it took.
  using Value = std::variant<std::monostate, bool, std::int64_t, std::string>;
  using Outcome = model::Outcome<Value>;

  struct Op {
    Method method = Method::kGet;
    std::string process;            // the calling process (close is process-local)
    std::string obj;                // put: canonical JSON text of the value put
    bool uncarriable = false;       // put: the value holds {"$uncarriable": null}
    bool block = true;              // put, get
    std::optional<double> timeout;  // put, get; nullopt is Python's None
    std::int64_t maxsize = 0;       // kBound: the constructor's maxsize (<= 0: unbounded)
    Outcome outcome = Unknown{};
    // Hints for a put (defaults: none). `rank` >= 0: the value is claimed (put once, returned by
    // exactly one `ok` get) and `rank` is its place among claimed values ordered by the return
    // of their get. `after`: the claimed values of ranks [0, after) must all have been put
    // before this put takes effect; kNever: the put need not take effect at all.
    std::int32_t rank = -1;
    std::uint32_t after = 0;
    friend bool operator==(const Op&, const Op&) = default;
  };

  // [queue.construct.default] [queue.construct.maxsize] [simple_queue.construct] A new queue
  // holds nothing; its bound is unknown until an outcome or kBound narrows it.
  static State init() { return State{}; }

  static std::vector<State> step(const State& s, const Op& op) {
    const bool closed = std::binary_search(s.closed.begin(), s.closed.end(), op.process);
    // The kind a closed process's calls raise: [queue.close.put] [queue.close.get] ValueError;
    // [simple_queue.close.ops] OSError.
    const std::string_view closed_kind = Simple ? "OSError" : "ValueError";
    const auto* raised = std::get_if<Raised>(&op.outcome);
    const bool unknown = std::holds_alternative<Unknown>(op.outcome);
    const Value* value = raised || unknown ? nullptr : &std::get<Returned<Value>>(op.outcome).value;

    switch (op.method) {
      case Method::kBound:
        if (Simple) return {s};
        return bound(s, op.maxsize);

      case Method::kPut:
      case Method::kPutNowait: {
        // May give up with Full: put_nowait, block=False, or a timeout.
        // [queue.put.blocks] [queue.put.timeout.none] an untimed blocking put never does.
        const bool may_give_up =
            !Simple && (op.method == Method::kPutNowait || !op.block || op.timeout);
        if (unknown) {
          // [queue.kill.put] [simple_queue.kill.put] a killed put took effect entirely or not at
          // all. [queue.put.uncarriable.raises] an uncarriable value, and [queue.close.put] a
          // closed process's put, add nothing.
          std::vector<State> out{s};
          if (!op.uncarriable && !closed) {
            if (auto t = add(s, op)) out.push_back(std::move(*t));
          }
          return out;
        }
        if (raised) {
          // [queue.put.uncarriable.raises] [simple_queue.put.uncarriable] a value the queue
          // cannot carry raises (any kind) before the queue changes.
          if (op.uncarriable) return {s};
          // [queue.close.put] [simple_queue.close.ops] after close() in this process.
          if (closed) return raised->kind == closed_kind ? std::vector<State>{s} : none();
          // [queue.put.nonblocking] [queue.put.nonblocking.timeout_ignored] [queue.put_nowait]
          // [queue.put.timeout.expires] [queue.put.timeout.zero] [queue.put.timeout.negative]
          // [queue.capacity.full_legal] [queue.linearizable] Full only when maxsize items are
          // held, and then nothing changes.
          if (raised->kind == "Full" && may_give_up) {
            if (auto t = pin_full(s)) return {std::move(*t)};
            return {};
          }
          // [queue.put.timeout.nonfinite] (MAY) a timeout too large for the platform.
          if (!Simple && op.method == Method::kPut && op.block && may_overflow(op.timeout) &&
              overflow_kind(raised->kind)) {
            return {s};
          }
          return {};
        }
        // [queue.put.returns] put returns None.
        if (!std::holds_alternative<std::monostate>(*value)) return {};
        // [queue.put.uncarriable.raises] [simple_queue.put.uncarriable] never returns for an
        // uncarriable value; [queue.close.put] [simple_queue.close.ops] nor after close().
        if (op.uncarriable || closed) return {};
        // [queue.put.returns] [queue.put.room] [queue.put.wakes] [queue.put.timeout.success]
        // [queue.put.visible] [queue.capacity.bound] [simple_queue.put.returns]
        // [simple_queue.put.visible] the item goes to the tail, only while the queue has room.
        if (auto t = add(s, op)) return {std::move(*t)};
        return {};
      }

      case Method::kGet:
      case Method::kGetNowait: {
        // [queue.get.blocks] [queue.get.timeout.none] [simple_queue.get.blocks] only a
        // non-blocking or timed get gives up.
        const bool may_give_up =
            !Simple && (op.method == Method::kGetNowait || !op.block || op.timeout);
        if (unknown) {
          // [queue.kill.get] [simple_queue.kill.get] a killed get took nothing, or exactly the
          // head, which is then gone. A claimed item is returned by an `ok` get, so no killed
          // get took it (hint).
          std::vector<State> out{s};
          if (!closed && !s.items.empty() && !s.items.front().claimed) out.push_back(pop(s));
          return out;
        }
        if (raised) {
          // [queue.close.get] [simple_queue.close.ops] after close() in this process.
          if (closed) return raised->kind == closed_kind ? std::vector<State>{s} : none();
          // [queue.get.nonblocking] [queue.get.nonblocking.timeout_ignored] [queue.get_nowait]
          // [queue.get.timeout.expires] [queue.get.timeout.zero] [queue.get.timeout.negative]
          // [queue.get_nowait.exact] Empty only when nothing is held.
          if (raised->kind == "Empty" && may_give_up) {
            if (s.items.empty()) return {s};
            return {};
          }
          // [simple_queue.get.eof] (MAY) EOFError instead of waiting on an empty queue.
          if (Simple && raised->kind == "EOFError" && s.items.empty()) return {s};
          // [queue.get.timeout.nonfinite] (MAY) as put.
          if (!Simple && op.method == Method::kGet && op.block && may_overflow(op.timeout) &&
              overflow_kind(raised->kind)) {
            return {s};
          }
          return {};
        }
        // [queue.get.returns] [queue.get.wakes] [queue.get.timeout.success] [queue.order.fifo]
        // [queue.linearizable] [simple_queue.get.returns] [simple_queue.linearizable] get
        // removes the head and returns its value.
        const std::string* got = std::get_if<std::string>(value);
        if (!got || closed || s.items.empty() || s.items.front().value != *got) return {};
        return {pop(s)};
      }

      case Method::kQsize:
        if (unknown) return {s};
        if (raised) {
          // [queue.qsize.unsupported] (MAY) NotImplementedError, changing nothing;
          // [queue.close.queries] (MAY) after close() it may raise.
          if (raised->kind == "NotImplementedError" || closed) return {s};
          return {};
        }
        // [queue.size.exact] [queue.qsize.quiescent] the number of items held.
        if (const std::int64_t* n = std::get_if<std::int64_t>(value)) {
          if (*n == static_cast<std::int64_t>(s.items.size())) return {s};
        }
        return {};

      case Method::kEmpty:
        if (unknown) return {s};
        if (raised) {
          // [queue.close.queries] (MAY) OSError after close(); [simple_queue.close.ops] (MUST).
          if (closed && raised->kind == "OSError") return {s};
          return {};
        }
        // [simple_queue.close.ops] a closed process's empty() raises.
        if (Simple && closed) return {};
        // [queue.size.exact] [queue.empty.drained] [simple_queue.empty.quiescent]
        // [simple_queue.put.visible] [simple_queue.linearizable] whether nothing is held.
        if (const bool* b = std::get_if<bool>(value)) {
          if (*b == s.items.empty()) return {s};
        }
        return {};

      case Method::kFull:
        if (unknown) return {s};
        if (raised) {
          // [queue.close.queries] (MAY) after close() it may raise.
          if (closed) return {s};
          return {};
        }
        // [queue.size.exact] [queue.full.quiescent] whether maxsize items are held.
        if (const bool* b = std::get_if<bool>(value)) {
          auto t = *b ? pin_full(s) : not_full(s);
          if (t) return {std::move(*t)};
        }
        return {};

      case Method::kClose: {
        State c = s;
        if (!closed)
          c.closed.insert(std::upper_bound(c.closed.begin(), c.closed.end(), op.process),
                          op.process);
        // A killed close may or may not have taken effect.
        if (unknown) return closed ? std::vector<State>{s} : std::vector<State>{s, c};
        // [queue.close.idempotent] [simple_queue.close.idempotent] close returns None, also
        // when the process has already closed the queue.
        if (raised || !std::holds_alternative<std::monostate>(*value)) return {};
        return {std::move(c)};
      }

      case Method::kJoinThread:
        if (unknown) return {s};
        // [queue.join_thread.unclosed] AssertionError before close() in this process.
        if (raised)
          return raised->kind == "AssertionError" && !closed ? std::vector<State>{s} : none();
        // [queue.join_thread.closed] None after it (in strict nothing to wait for).
        if (closed && std::holds_alternative<std::monostate>(*value)) return {s};
        return {};

      case Method::kCancelJoinThread:
        // [queue.cancel_join_thread] returns None at any time.
        if (unknown) return {s};
        if (!raised && std::holds_alternative<std::monostate>(*value)) return {s};
        return {};

      case Method::kTaskDone: {
        if (!Joinable) return {};
        State t = s;
        --t.unfinished;
        // [joinable_queue.kill.task_done] a killed task_done took one unit away or none.
        if (unknown) return s.unfinished > 0 ? std::vector<State>{s, t} : std::vector<State>{s};
        // [joinable_queue.task_done.too_many] [joinable_queue.task_done.concurrent]
        // [joinable_queue.construct] ValueError only when the count is 0, which it stays.
        if (raised)
          return raised->kind == "ValueError" && s.unfinished == 0 ? std::vector<State>{s}
                                                                   : none();
        // [joinable_queue.task_done.decrements] [joinable_queue.count.calls] one unit away.
        if (s.unfinished > 0 && std::holds_alternative<std::monostate>(*value)) return {t};
        return {};
      }

      case Method::kJoin:
        if (!Joinable) return {};
        // [joinable_queue.kill.joiner] a killed join changes nothing.
        if (unknown) return {s};
        // [joinable_queue.join.zero] [joinable_queue.join.blocks] [joinable_queue.join.wakes]
        // [joinable_queue.join.instant] join returns None only at an instant the count is 0.
        if (!raised && s.unfinished == 0 && std::holds_alternative<std::monostate>(*value))
          return {s};
        return {};
    }
    return {};
  }

  static std::uint64_t hash(const State& s) {
    std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over the items, then the rest mixed in
    for (const Item& item : s.items) {
      for (unsigned char c : item.value) h = (h ^ c) * 0x100000001b3ULL;
      h = (h ^ 0xffU) * 0x100000001b3ULL;
    }
    h ^= static_cast<std::uint64_t>(s.lo) * 0x9e3779b97f4a7c15ULL;
    h ^= static_cast<std::uint64_t>(s.hi) * 0xbf58476d1ce4e5b9ULL;
    h ^= static_cast<std::uint64_t>(s.closed.size()) * 0x94d049bb133111ebULL;
    h ^= static_cast<std::uint64_t>(s.put_low) * 0x2545f4914f6cdd1dULL;
    h ^= static_cast<std::uint64_t>(s.unfinished) * 0xd6e8feb86659fd93ULL;
    return h;
  }

  static std::string describe(const State& s) {
    std::string out;
    if (s.items.empty()) {
      out = "empty";
    } else {
      out = "holding " + std::to_string(s.items.size()) +
            (s.items.size() == 1 ? " item" : " items") + " [";
      const std::size_t n = s.items.size();
      for (std::size_t i = 0; i < n; ++i) {
        if (n > 10 && i == 6) {
          out += ", ...";
          i = n - 3;
        }
        out += (i == 0 ? "" : ", ") + abridge(s.items[i].value);
      }
      out += "] (head first)";
    }
    if (!Simple) {
      if (s.lo == s.hi) {
        out += s.hi == kNoBound ? ", unbounded" : ", maxsize " + std::to_string(s.hi);
      } else {
        out += ", maxsize >= " + std::to_string(s.lo);
        if (s.hi != kNoBound) out += " and <= " + std::to_string(s.hi);
      }
    }
    if (Joinable) out += ", " + std::to_string(s.unfinished) + " unfinished task(s)";
    if (!s.closed.empty()) {
      out += ", closed in";
      for (const std::string& p : s.closed) out += " " + p;
    }
    return out;
  }

  static std::string describe(const Op& op) {
    std::string out;
    const auto options = [&op](std::string args) {
      if (!op.block) args += std::string(args.empty() ? "" : ", ") + "block=False";
      if (op.timeout)
        args += std::string(args.empty() ? "" : ", ") + "timeout=" + number(*op.timeout);
      return args;
    };
    switch (op.method) {
      case Method::kPut:
        out = "put(" + options(op.uncarriable ? "<uncarriable>" : abridge(op.obj)) + ")";
        break;
      case Method::kPutNowait:
        out =
            "put_nowait(" + (op.uncarriable ? std::string("<uncarriable>") : abridge(op.obj)) + ")";
        break;
      case Method::kGet:
        out = "get(" + options("") + ")";
        break;
      case Method::kGetNowait:
        out = "get_nowait()";
        break;
      case Method::kQsize:
        out = "qsize()";
        break;
      case Method::kEmpty:
        out = "empty()";
        break;
      case Method::kFull:
        out = "full()";
        break;
      case Method::kClose:
        out = "close()";
        break;
      case Method::kJoinThread:
        out = "join_thread()";
        break;
      case Method::kCancelJoinThread:
        out = "cancel_join_thread()";
        break;
      case Method::kTaskDone:
        out = "task_done()";
        break;
      case Method::kJoin:
        out = "join()";
        break;
      case Method::kBound:
        return op.maxsize > 0 ? "<maxsize declared by the test: " + std::to_string(op.maxsize) + ">"
                              : std::string("<declared unbounded by the test>");
    }
    if (std::holds_alternative<Unknown>(op.outcome)) return out + " -> ? (outcome unknown)";
    if (const auto* r = std::get_if<Raised>(&op.outcome)) return out + " raised " + r->kind;
    const Value& v = std::get<Returned<Value>>(op.outcome).value;
    if (const bool* b = std::get_if<bool>(&v)) return out + " -> " + (*b ? "True" : "False");
    if (const std::int64_t* n = std::get_if<std::int64_t>(&v))
      return out + " -> " + std::to_string(*n);
    if (const std::string* text = std::get_if<std::string>(&v))
      return out + " -> " + abridge(*text);
    return out + " -> None";
  }

 private:
  static std::vector<State> none() { return {}; }

  // The state after `op` puts its value at the tail, if the queue may have room.
  static std::optional<State> add(const State& s, const Op& op) {
    if (op.after > s.put_low) return std::nullopt;  // hint: claimed values due before it
    const auto size = static_cast<std::int64_t>(s.items.size());
    if (size >= s.hi) return std::nullopt;  // full for every maxsize still possible
    State t = s;
    t.lo = std::max(t.lo, size + 1);
    // [joinable_queue.count.put] [joinable_queue.kill.put] [joinable_queue.linearizable] the item
    // and its unit of count are added in one step.
    if (Joinable) ++t.unfinished;
    t.items.push_back(Item{op.obj, op.rank >= 0});
    if (op.rank >= 0) {
      const auto r = static_cast<std::size_t>(op.rank);
      if (t.put_bits.size() <= r / 64) t.put_bits.resize(r / 64 + 1, 0);
      t.put_bits[r / 64] |= std::uint64_t{1} << (r % 64);
      while (t.put_low / 64 < t.put_bits.size() &&
             (t.put_bits[t.put_low / 64] >> (t.put_low % 64) & 1U) != 0) {
        ++t.put_low;
      }
    }
    return t;
  }

  static State pop(const State& s) {
    State t = s;
    t.items.erase(t.items.begin());
    return t;
  }

  // The state if the queue is full now (maxsize == size).
  static std::optional<State> pin_full(const State& s) {
    const auto size = static_cast<std::int64_t>(s.items.size());
    if (size < s.lo || size > s.hi) return std::nullopt;
    State t = s;
    t.lo = t.hi = size;
    return t;
  }

  // The state if the queue is not full now (maxsize > size).
  static std::optional<State> not_full(const State& s) {
    const auto size = static_cast<std::int64_t>(s.items.size());
    if (size >= s.hi) return std::nullopt;
    State t = s;
    t.lo = std::max(t.lo, size + 1);
    return t;
  }

  // kBound: the test's maxsize.
  static std::vector<State> bound(const State& s, std::int64_t maxsize) {
    State t = s;
    if (maxsize > 0) {
      // [queue.construct.maxsize] [queue.construct.maxsize.range] the bound is maxsize.
      if (maxsize < s.lo || maxsize > s.hi) return {};
      t.lo = t.hi = maxsize;
    } else {
      // [queue.construct.maxsize.nonpositive] [queue.construct.unbounded] 0 or less: the
      // backend's limit, at least 32767.
      t.lo = std::max(t.lo, kUnboundedAtLeast);
      if (t.lo > t.hi) return {};
    }
    return {std::move(t)};
  }

  static bool may_overflow(const std::optional<double>& timeout) {
    return timeout && (!std::isfinite(*timeout) || *timeout > kMayOverflowTimeout);
  }
  static bool overflow_kind(const std::string& kind) {
    return kind == "ValueError" || kind == "OverflowError" || kind == "OSError";
  }

  static std::string number(double x) {
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, x);
    return std::string(buf, res.ptr);
  }

  static std::string abridge(const std::string& text) {
    if (text.size() <= 40) return text;
    return text.substr(0, 30) + "...(" + std::to_string(text.size()) + " chars)";
  }
};

using Queue = QueueModel<false>;
using SimpleQueue = QueueModel<true>;
using JoinableQueue = QueueModel<false, true>;

static_assert(Model<Queue>);
static_assert(Model<SimpleQueue>);
static_assert(Model<JoinableQueue>);

}  // namespace mpspec::model
