// Linearizability of one object's history with respect to a sequential model.
//
// A history is linearizable when some total order of its operations (1) contains every
// operation that completed (`ok` or `error`) and any subset of those whose outcome is unknown
// (`info`: they may or may not have taken effect), (2) puts X before Y whenever X returned
// strictly before Y was invoked, and (3) is accepted by the model step by step from init().
// Intervals are closed: an operation invoked at the very nanosecond another returned may be
// ordered either way (a monotonic clock can read the same value twice).
//
// The search is Wing & Gong's, with Lowe's memoisation, written from the papers' ideas:
//
//   - Every operation gives a call entry at invoke_ns and, unless its outcome is unknown, a
//     return entry at return_ns. Entries are sorted by time, calls before returns on equal
//     times, and kept in a doubly linked list. An `info` operation has no return entry: it
//     returns at +infinity, so it never forces anything to happen before it.
//   - The search walks the list from its head. At a call entry it tries to linearize that
//     operation now: for each state the model allows after it, if the configuration (set of
//     linearized operations, state) was never seen, it removes the operation's entries from the
//     list, pushes a frame on an explicit stack and starts again from the head. Otherwise it
//     moves on to the next entry.
//   - Reaching a return entry means that operation cannot be linearized before it returns in
//     the current configuration: pop the last frame, put its entries back, and try its next
//     successor state, then the entries after it. An empty stack there means no order exists.
//   - The history is linearizable as soon as every operation with a known outcome is
//     linearized: the `info` ones left over are the ones that did not take effect. For the
//     same reason an `info` operation is never linearized as a no-op (leaving it out is the
//     same, and cheaper).
//   - Memoisation: a configuration is hashed by the XOR of a random 64-bit word per linearized
//     operation (updated incrementally on every push and pop) mixed with the model's hash of
//     the state. Hits are confirmed exactly. The set is stored compactly: every completed
//     operation before the first one not yet linearized is in it, so it is kept as that
//     frontier plus the bit words after it (few: they are operations concurrent with the
//     frontier's) and the bit words of the `info` operations.
//   - A deadline and a memory cap bound the search; when either is reached the answer is
//     kUnknown, never a guess.
//
// On a violation the result gives the longest linearizable prefix the search found, the
// operation at which that attempt broke (the one whose return could not be reached), and an
// explanation in the model's words. Partitioning a history by object is the caller's job
// (check.hpp): each object's sub-history is checked on its own.
#pragma once

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/model.hpp"

namespace mpspec::check {

enum class Verdict { kLinearizable, kNotLinearizable, kUnknown };

const char* to_string(Verdict v);

// One operation of one object's history, translated for model M.
template <model::Model M>
struct TimedOp {
  int id = 0;       // the history's op id, for reports
  std::string who;  // "actor/thread", for reports
  typename M::Op op{};
  std::int64_t invoke_ns = 0;
  std::optional<std::int64_t> return_ns;  // nullopt: outcome unknown (`info`), returns at +inf
};

struct SearchLimits {
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::size_t max_memory_bytes = std::size_t{1} << 30;  // memo table and stack
};

struct SearchResult {
  Verdict verdict = Verdict::kUnknown;
  // Linearizable: a complete linearization (op ids in order; the `info` ops that took effect
  // included, the others left out). Otherwise: the longest linearizable prefix found.
  std::vector<int> longest_prefix;
  // Not linearizable: the op at which the longest attempt broke.
  std::optional<int> failing_op;
  std::string explanation;
  std::uint64_t configurations = 0;  // distinct configurations visited
};

namespace detail {

// "+1.234 ms" style offset of `ns` from the start of the history.
std::string format_offset(std::int64_t ns);
// "[+1.000 us, +2.500 us]", or "[+1.000 us, never returned]" for an `info` op.
std::string format_interval(std::int64_t invoke_ns, const std::optional<std::int64_t>& return_ns,
                            std::int64_t origin_ns);

inline std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Set of explored configurations: open addressing on the configuration hash, each hit
// confirmed against the stored set and state.
template <typename State>
class Memo {
 public:
  // The current configuration's set of linearized operations, as a view (see the file comment).
  struct Key {
    std::uint64_t hash = 0;
    std::uint32_t frontier = 0;             // first completed op (call order) not linearized
    std::uint32_t count = 0;                // completed ops linearized
    const std::uint64_t* window = nullptr;  // completed-op bit words from word frontier / 64
    std::uint32_t window_words = 0;
    const std::uint64_t* info = nullptr;  // `info`-op bit words, trailing zero words trimmed
    std::uint32_t info_words = 0;
  };

  // Adds the configuration unless it is present; returns whether it was new.
  bool insert(const Key& key, const State& state) {
    if ((entries_.size() + 1) * 2 > table_.size()) grow();
    std::size_t i = key.hash & mask_;
    while (table_[i] != 0) {
      const Entry& e = entries_[table_[i] - 1];
      if (e.hash == key.hash && same(e, key, state)) return false;
      i = (i + 1) & mask_;
    }
    std::uint64_t* words = allocate(std::size_t{key.window_words} + key.info_words);
    std::copy_n(key.window, key.window_words, words);
    std::copy_n(key.info, key.info_words, words + key.window_words);
    entries_.push_back(
        Entry{key.hash, key.frontier, key.count, key.window_words, key.info_words, words, state});
    if (entries_.size() >= 0xffffffffULL) throw std::length_error("memo table full");
    table_[i] = static_cast<std::uint32_t>(entries_.size());
    return true;
  }

  std::size_t size() const { return entries_.size(); }

  std::size_t bytes() const {
    return entries_.size() * sizeof(Entry) + table_.capacity() * sizeof(std::uint32_t) +
           block_total_ * sizeof(std::uint64_t) + big_words_ * sizeof(std::uint64_t);
  }

 private:
  static constexpr std::size_t kBlockWords = std::size_t{1} << 16;

  struct Entry {
    std::uint64_t hash;
    std::uint32_t frontier, count, window_words, info_words;
    const std::uint64_t* words;
    State state;
  };

  static bool same(const Entry& e, const Key& k, const State& state) {
    return e.frontier == k.frontier && e.count == k.count && e.window_words == k.window_words &&
           e.info_words == k.info_words &&
           std::equal(k.window, k.window + k.window_words, e.words) &&
           std::equal(k.info, k.info + k.info_words, e.words + e.window_words) && e.state == state;
  }

  void grow() {
    const std::size_t size = std::max<std::size_t>(1024, table_.size() * 2);
    table_.assign(size, 0);
    mask_ = size - 1;
    for (std::size_t n = 0; n < entries_.size(); ++n) {
      std::size_t i = entries_[n].hash & mask_;
      while (table_[i] != 0) i = (i + 1) & mask_;
      table_[i] = static_cast<std::uint32_t>(n + 1);
    }
  }

  // Word storage in blocks (growing to kBlockWords): never moves, never one huge reallocation.
  std::uint64_t* allocate(std::size_t n) {
    if (n == 0) return nullptr;
    if (n > kBlockWords / 4) {
      big_.push_back(std::make_unique_for_overwrite<std::uint64_t[]>(n));
      big_words_ += n;
      return big_.back().get();
    }
    if (blocks_.empty() || used_ + n > block_words_) {
      const std::size_t grown = blocks_.empty() ? 1024 : 2 * block_words_;
      block_words_ = std::min(kBlockWords, std::max(grown, 4 * n));
      blocks_.push_back(std::make_unique_for_overwrite<std::uint64_t[]>(block_words_));
      block_total_ += block_words_;
      used_ = 0;
    }
    std::uint64_t* p = blocks_.back().get() + used_;
    used_ += n;
    return p;
  }

  std::deque<Entry> entries_;
  std::vector<std::uint32_t> table_;  // 0: empty; otherwise entry index + 1
  std::size_t mask_ = 0;
  std::vector<std::unique_ptr<std::uint64_t[]>> blocks_, big_;
  std::size_t used_ = 0, block_words_ = 0, block_total_ = 0, big_words_ = 0;
};

template <model::Model M>
class Search {
 public:
  using State = typename M::State;

  Search(const std::vector<TimedOp<M>>& history, const SearchLimits& limits)
      : h_(history), limits_(limits), state_(M::init()) {
    build();
  }

  SearchResult run() {
    SearchResult result;
    if (remaining_ == 0) return finish_linearizable(result);
    if (std::chrono::steady_clock::now() >= limits_.deadline) return finish_unknown(result, false);

    int node = nodes_[kHead].next;
    std::size_t resume = 0;  // first successor to try at `node` (after a backtrack)
    for (std::uint64_t steps = 1;; ++steps) {
      if ((steps & 1023) == 0) {
        if (std::chrono::steady_clock::now() >= limits_.deadline)
          return finish_unknown(result, false);
        if (memo_.bytes() + stack_.capacity() * sizeof(Frame) > limits_.max_memory_bytes)
          return finish_unknown(result, true);
      }
      if (node == tail_) throw std::logic_error("linearizability search ran off the list");
      const Node& nd = nodes_[node];
      if (nd.call) {
        const int op = nd.op;
        const std::vector<State> next = M::step(state_, h_[op].op);
        bool lifted = false;
        for (std::size_t j = resume; j < next.size() && !lifted; ++j) {
          if (info_[op] && next[j] == state_) continue;  // a no-op `info`: same as leaving it out
          mark(op);
          if (memo_.insert(key(next[j]), next[j])) {
            stack_.push_back(Frame{op, state_, j});
            state_ = next[j];
            lift(op);
            lifted = true;
          } else {
            unmark(op);
          }
        }
        resume = 0;
        if (lifted) {
          if (remaining_ == 0) return finish_linearizable(result);
          node = nodes_[kHead].next;
        } else {
          node = nd.next;
        }
        continue;
      }
      // A return entry: its op must be linearized before it, and nothing pending can be.
      record_dead_end(node);
      if (stack_.empty()) return finish_not_linearizable(result);
      const Frame f = stack_.back();
      stack_.pop_back();
      best_valid_ = std::min(best_valid_, stack_.size());
      state_ = f.before;
      unlift(f.op);
      unmark(f.op);
      node = call_node_[f.op];
      resume = f.successor + 1;
    }
  }

 private:
  static constexpr int kHead = 0;

  struct Node {
    int op = -1;
    bool call = false;
    int prev = -1, next = -1;
  };
  struct Frame {
    int op;
    State before;
    std::size_t successor;  // index in M::step(before, op) that was taken
  };

  void build() {
    const std::size_t n = h_.size();
    info_.resize(n);
    for (std::size_t i = 0; i < n; ++i) info_[i] = !h_[i].return_ns.has_value();

    struct Entry {
      std::int64_t t;
      int kind;  // 0 call, 1 return: calls first on equal times (closed intervals)
      int id;
      int op;
    };
    std::vector<Entry> entries;
    entries.reserve(2 * n);
    for (std::size_t i = 0; i < n; ++i) {
      const int op = static_cast<int>(i);
      entries.push_back(Entry{h_[i].invoke_ns, 0, h_[i].id, op});
      if (!info_[i]) entries.push_back(Entry{*h_[i].return_ns, 1, h_[i].id, op});
    }
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      if (a.t != b.t) return a.t < b.t;
      if (a.kind != b.kind) return a.kind < b.kind;
      return a.id < b.id;
    });

    // Node 0 is the head, node entries.size() + 1 the tail.
    nodes_.resize(entries.size() + 2);
    tail_ = static_cast<int>(entries.size()) + 1;
    call_node_.assign(n, -1);
    return_node_.assign(n, -1);
    slot_.assign(n, 0);
    std::uint32_t completed = 0, unknown = 0;
    for (std::size_t e = 0; e < entries.size(); ++e) {
      const int node = static_cast<int>(e) + 1;
      nodes_[node].op = entries[e].op;
      nodes_[node].call = entries[e].kind == 0;
      if (nodes_[node].call) {
        call_node_[entries[e].op] = node;
        slot_[entries[e].op] = info_[entries[e].op] ? unknown++ : completed++;
      } else {
        return_node_[entries[e].op] = node;
      }
    }
    for (int node = 0; node <= tail_; ++node) {
      nodes_[node].prev = node - 1;
      nodes_[node].next = node == tail_ ? -1 : node + 1;
    }
    completed_ = completed;
    remaining_ = completed;
    completed_bits_.assign(completed / 64 + 1, 0);
    info_bits_.assign(unknown / 64 + 1, 0);

    std::uint64_t seed = 0x6d70737065632d6cULL;  // fixed: runs are reproducible
    random_.resize(n);
    for (auto& r : random_) r = splitmix64(seed);
    origin_ns_ = n == 0 ? 0 : h_[0].invoke_ns;
    for (const auto& o : h_) origin_ns_ = std::min(origin_ns_, o.invoke_ns);
  }

  // Removes op's entries from the list / puts them back (strictly in reverse order).
  void lift(int op) {
    unlink(call_node_[op]);
    if (!info_[op]) unlink(return_node_[op]);
  }
  void unlift(int op) {
    if (!info_[op]) relink(return_node_[op]);
    relink(call_node_[op]);
  }
  void unlink(int node) {
    nodes_[nodes_[node].prev].next = nodes_[node].next;
    nodes_[nodes_[node].next].prev = nodes_[node].prev;
  }
  void relink(int node) {
    nodes_[nodes_[node].prev].next = node;
    nodes_[nodes_[node].next].prev = node;
  }

  // Adds op to / removes it from the set of linearized operations.
  void mark(int op) {
    set_hash_ ^= random_[op];
    const std::uint32_t s = slot_[op];
    if (info_[op]) {
      info_bits_[s / 64] |= std::uint64_t{1} << (s % 64);
      return;
    }
    completed_bits_[s / 64] |= std::uint64_t{1} << (s % 64);
    ++count_;
    --remaining_;
    if (s == frontier_) advance_frontier();
  }
  void unmark(int op) {
    set_hash_ ^= random_[op];
    const std::uint32_t s = slot_[op];
    if (info_[op]) {
      info_bits_[s / 64] &= ~(std::uint64_t{1} << (s % 64));
      return;
    }
    completed_bits_[s / 64] &= ~(std::uint64_t{1} << (s % 64));
    --count_;
    ++remaining_;
    frontier_ = std::min(frontier_, s);
  }
  void advance_frontier() {
    std::size_t w = frontier_ / 64;
    std::uint64_t zeros = ~completed_bits_[w] & (~std::uint64_t{0} << (frontier_ % 64));
    while (zeros == 0 && w + 1 < completed_bits_.size()) zeros = ~completed_bits_[++w];
    const std::uint64_t pos = zeros == 0 ? completed_ : w * 64 + std::countr_zero(zeros);
    frontier_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(pos, completed_));
  }

  typename Memo<State>::Key key(const State& state) const {
    typename Memo<State>::Key k;
    k.hash = set_hash_ ^ mix(M::hash(state));
    k.frontier = frontier_;
    k.count = count_;
    // Every completed op below word frontier/64 is linearized: the window starts there and
    // ends at the word holding the last linearized completed op.
    const std::size_t first = frontier_ / 64;
    std::size_t need = count_ - first * 64, w = first;
    while (need > 0) need -= static_cast<std::size_t>(std::popcount(completed_bits_[w++]));
    k.window = completed_bits_.data() + first;
    k.window_words = static_cast<std::uint32_t>(w - first);
    std::size_t iw = info_bits_.size();
    while (iw > 0 && info_bits_[iw - 1] == 0) --iw;
    k.info = info_bits_.data();
    k.info_words = static_cast<std::uint32_t>(iw);
    return k;
  }

  static std::uint64_t mix(std::uint64_t x) { return splitmix64(x); }

  void record_dead_end(int node) {
    const std::size_t depth = stack_.size();
    if (best_fail_ && depth <= best_.size()) return;
    best_.resize(depth);
    for (std::size_t i = best_valid_; i < depth; ++i) best_[i] = stack_[i].op;
    best_valid_ = depth;
    best_fail_ = nodes_[node].op;
    best_state_ = state_;
    best_pending_.clear();
    for (int nd = nodes_[kHead].next; nd != node; nd = nodes_[nd].next)
      if (nodes_[nd].call) best_pending_.push_back(nodes_[nd].op);
  }

  std::vector<int> ids(const std::vector<int>& ops) const {
    std::vector<int> out;
    out.reserve(ops.size());
    for (int op : ops) out.push_back(h_[op].id);
    return out;
  }

  std::string line(int op) const {
    return "#" + std::to_string(h_[op].id) + " " + h_[op].who + " " + M::describe(h_[op].op) +
           "  " + format_interval(h_[op].invoke_ns, h_[op].return_ns, origin_ns_);
  }

  // The prefix: its length, its order (abridged) and its last few ops.
  std::string describe_prefix(const std::vector<int>& prefix, const State& after) const {
    std::string out = "longest linearizable prefix: " + std::to_string(prefix.size()) + " of " +
                      std::to_string(h_.size()) + " ops, leaving the " + std::string(M::kTypeName) +
                      " " + M::describe(after);
    if (prefix.empty()) return out + "\n";
    out += "; order:";
    const std::size_t shown = 30;
    if (prefix.size() > shown) out += " ...";
    for (std::size_t i = prefix.size() > shown ? prefix.size() - shown : 0; i < prefix.size(); ++i)
      out += " #" + std::to_string(h_[prefix[i]].id);
    out += "\n  its last ops:\n";
    for (std::size_t i = prefix.size() > 5 ? prefix.size() - 5 : 0; i < prefix.size(); ++i)
      out += "    " + line(prefix[i]) + "\n";
    return out;
  }

  SearchResult& finish_linearizable(SearchResult& r) {
    r.verdict = Verdict::kLinearizable;
    std::vector<int> order;
    order.reserve(stack_.size());
    for (const Frame& f : stack_) order.push_back(f.op);
    r.longest_prefix = ids(order);
    r.configurations = memo_.size();
    r.explanation =
        "linearizable: " + std::to_string(h_.size()) + " ops, " + std::to_string(order.size()) +
        " in the linearization found; configurations explored: " + std::to_string(memo_.size());
    return r;
  }

  SearchResult& finish_not_linearizable(SearchResult& r) {
    r.verdict = Verdict::kNotLinearizable;
    r.longest_prefix = ids(best_);
    r.failing_op = h_[*best_fail_].id;
    r.configurations = memo_.size();
    const int fail = *best_fail_;
    std::string out = "not linearizable: no order of the " + std::to_string(h_.size()) +
                      " ops that respects their real-time intervals is accepted by the " +
                      std::string(M::kTypeName) +
                      " model; configurations explored: " + std::to_string(memo_.size()) + "\n";
    out += describe_prefix(best_, *best_state_);
    out += "it breaks at " + line(fail) + "\n  which must take effect before it returns, but " +
           why_not(fail) + "\n";
    bool header = false;
    for (int op : best_pending_) {
      if (op == fail) continue;
      if (!header) out += "  and no other pending op can go first:\n";
      header = true;
      out += "    " + line(op) + ": " + why_not(op) + "\n";
    }
    r.explanation = std::move(out);
    return r;
  }

  // Why `op` cannot be linearized right after the longest prefix.
  std::string why_not(int op) const {
    const std::vector<State> next = M::step(*best_state_, h_[op].op);
    std::string state = M::describe(*best_state_);
    if (next.empty()) return "it is illegal when the " + std::string(M::kTypeName) + " is " + state;
    if (info_[op]) return "its outcome is unknown; every way it may have taken effect fails later";
    return "it is allowed when the " + std::string(M::kTypeName) + " is " + state +
           ", but every order continuing with it fails later";
  }

  SearchResult& finish_unknown(SearchResult& r, bool out_of_memory) {
    r.verdict = Verdict::kUnknown;
    r.configurations = memo_.size();
    std::vector<int> prefix = best_;
    if (stack_.size() > prefix.size()) {
      prefix.clear();
      for (const Frame& f : stack_) prefix.push_back(f.op);
    }
    r.longest_prefix = ids(prefix);
    r.explanation =
        std::string("unknown: the search's ") + (out_of_memory ? "memory cap" : "time budget") +
        " ran out before a verdict; configurations explored: " + std::to_string(memo_.size()) +
        "; longest linearizable prefix found: " + std::to_string(prefix.size()) + " of " +
        std::to_string(h_.size()) + " ops";
    return r;
  }

  const std::vector<TimedOp<M>>& h_;
  SearchLimits limits_;
  State state_;

  std::vector<Node> nodes_;
  int tail_ = 0;
  std::vector<int> call_node_, return_node_;
  std::vector<char> info_;
  std::vector<std::uint32_t> slot_;  // index among completed ops / among info ops, call order
  std::vector<std::uint64_t> random_;
  std::int64_t origin_ns_ = 0;

  std::vector<std::uint64_t> completed_bits_, info_bits_;
  std::uint32_t completed_ = 0, remaining_ = 0, count_ = 0, frontier_ = 0;
  std::uint64_t set_hash_ = 0;

  std::vector<Frame> stack_;
  Memo<State> memo_;

  // The longest attempt: best_[0, best_valid_) is known to equal the current stack's ops.
  std::vector<int> best_;
  std::size_t best_valid_ = 0;
  std::optional<int> best_fail_;
  std::optional<State> best_state_;
  std::vector<int> best_pending_;
};

}  // namespace detail

// Checks one object's history (all ops on the same object, any order) against model M.
// Throws std::invalid_argument if an op returns before it is invoked.
template <model::Model M>
SearchResult check_linearizable(const std::vector<TimedOp<M>>& history,
                                const SearchLimits& limits = {}) {
  for (const auto& op : history)
    if (op.return_ns && *op.return_ns < op.invoke_ns)
      throw std::invalid_argument("op " + std::to_string(op.id) + " returns before it is invoked");
  return detail::Search<M>(history, limits).run();
}

}  // namespace mpspec::check
