// The queue checkers (queue_check.hpp): translation of recorded calls into the FIFO model, the
// search hints, the strict entry points and the core invariants.
//
// Hints (spec/models/queue.hpp, Op::rank and Op::after). A value is *claimed* when exactly one
// call that may have put it (a put that returned, or whose outcome is unknown; uncarriable ones
// excluded) carries it, and exactly one get returned it (`ok`). Then, in every linearization:
//
//   1. The claimed item leaves the queue through its own get: a killed get cannot have taken it
//      (the item has no other copy for the `ok` get to return).
//   2. If the get of u returned before the get of v was invoked, the put of u takes effect
//      before the put of v. Otherwise v would be ahead of u in the queue while both are held (v
//      leaves only through its get, after u's get), so v's get would come first: contradiction.
//      Ordering claimed values by the return of their get (their *rank*), the values that must
//      be put before v are the ranks below the number of gets that returned before v's get was
//      invoked: Op::after.
//   3. An item whose value no get returned leaves the queue, once put, only through a killed
//      get (outcome unknown), so not before the earliest invocation of one (never, if there is
//      none). A claimed value whose get returned before that instant was therefore put ahead of
//      it: Op::after is the number of such values.
//   4. A put with an unknown outcome whose value no get returned need not have taken effect when
//      nothing in the history observes the number of items (no qsize, no empty() -> False, no
//      full() -> True, no Full): remove its item from a linearization in which it took effect
//      and the killed get that took it (if any) takes nothing instead; every other get sees the
//      same head, and every other outcome stays legal with one item fewer. Op::after is then
//      kNever, and the search never places the item, which would otherwise multiply the states
//      by its possible positions.
//
// Each hint only removes states from which the history cannot be completed, so the verdict is
// the plain model's. They matter when many puts are held at once: the plain search tries every
// order of concurrent puts before a later get shows the order wrong; with the hints a put can
// be placed only behind the items due before it. A violation found with hints is searched again
// without them (within a share of the budget) because the plain model explains it in FIFO terms
// ("the head is 1, the get returned 2") rather than with a hint.
#include "queue_check.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>

#include "models/queue.hpp"

namespace mpspec::check {
namespace {

using nlohmann::json;

std::string where(const Operation& o) {
  return "op #" + std::to_string(o.id) + " (" + o.process + "/" + std::to_string(o.thread) + ", " +
         o.object + "." + o.method + ")";
}

std::string canonical(const json& v) { return v.dump(); }

bool has_uncarriable(const json& v) {
  if (v.is_object()) {
    if (v.size() == 1 && v.contains("$uncarriable")) return true;
    for (const auto& [k, x] : v.items())
      if (has_uncarriable(x)) return true;
  } else if (v.is_array()) {
    for (const auto& x : v)
      if (has_uncarriable(x)) return true;
  }
  return false;
}

bool is_put(const Operation& o) { return o.method == "put" || o.method == "put_nowait"; }
bool is_get(const Operation& o) { return o.method == "get" || o.method == "get_nowait"; }

// The put's `obj` (null when absent: translation rejects that call as malformed).
const json& obj_of(const Operation& o) {
  static const json kNull;
  if (o.args.is_object()) {
    auto it = o.args.find("obj");
    if (it != o.args.end()) return *it;
  }
  return kNull;
}

// ------------------------------------------------------------------------- translation

template <typename M>
typename M::Op translate(const Operation& o) {
  constexpr bool kSimple = std::is_same_v<M, model::SimpleQueue>;
  constexpr bool kJoinable = std::is_same_v<M, model::JoinableQueue>;
  using Method = typename M::Method;
  using Value = typename M::Value;
  typename M::Op op;
  struct Row {
    std::string_view name;
    Method method;
    bool simple;  // a SimpleQueue method too
    bool joinable_only = false;
  };
  static constexpr Row kMethods[] = {
      {"put", Method::kPut, true},
      {"put_nowait", Method::kPutNowait, false},
      {"get", Method::kGet, true},
      {"get_nowait", Method::kGetNowait, false},
      {"qsize", Method::kQsize, false},
      {"empty", Method::kEmpty, true},
      {"full", Method::kFull, false},
      {"close", Method::kClose, true},
      {"join_thread", Method::kJoinThread, false},
      {"cancel_join_thread", Method::kCancelJoinThread, false},
      {"task_done", Method::kTaskDone, false, true},
      {"join", Method::kJoin, false, true},
  };
  bool found = false;
  for (const Row& row : kMethods) {
    if (row.name == o.method && (row.simple || !kSimple) && (kJoinable || !row.joinable_only)) {
      op.method = row.method;
      found = true;
    }
  }
  if (!found) {
    throw std::invalid_argument(
        where(o) + ": " + std::string(M::kTypeName) + " has no method '" + o.method + "' (it has " +
        (kSimple ? "put, get, empty, close"
                 : std::string("put, put_nowait, get, get_nowait, qsize, empty, full, close, "
                               "join_thread, cancel_join_thread") +
                       (kJoinable ? ", task_done, join" : "")) +
        ")");
  }
  op.process = o.process;

  // Arguments (protocol surface proposed in the chapters): put(obj, block, timeout),
  // put_nowait(obj), get(block, timeout); SimpleQueue's put(obj) and get() only.
  if (!o.args.is_null() && !o.args.is_object())
    throw std::invalid_argument(where(o) + ": args must be a JSON object, not " + o.args.dump());
  const bool putting = op.method == Method::kPut || op.method == Method::kPutNowait;
  const bool timed_args = !kSimple && (op.method == Method::kPut || op.method == Method::kGet);
  bool has_obj = false;
  if (o.args.is_object()) {
    for (const auto& [name, v] : o.args.items()) {
      if (putting && name == "obj") {
        has_obj = true;
        op.uncarriable = has_uncarriable(v);
        op.obj = canonical(v);
      } else if (timed_args && name == "block") {
        if (!v.is_boolean())
          throw std::invalid_argument(where(o) + ": 'block' must be a bool, not " + v.dump());
        op.block = v.template get<bool>();
      } else if (timed_args && name == "timeout") {
        if (v.is_number()) {
          op.timeout = v.template get<double>();
        } else if (!v.is_null()) {
          throw std::invalid_argument(where(o) + ": 'timeout' must be a number or null, not " +
                                      v.dump());
        }
      } else {
        throw std::invalid_argument(where(o) + ": unexpected argument '" + name + "'");
      }
    }
  }
  if (putting && !has_obj) throw std::invalid_argument(where(o) + ": put without 'obj'");

  switch (o.status) {
    case OpStatus::kOk: {
      const json& v = o.value;
      if (op.method == Method::kGet || op.method == Method::kGetNowait) {
        op.outcome = model::Returned<Value>{Value{canonical(v)}};
      } else if (v.is_null()) {
        op.outcome = model::Returned<Value>{Value{std::monostate{}}};
      } else if (v.is_boolean()) {
        op.outcome = model::Returned<Value>{Value{v.get<bool>()}};
      } else if (v.is_number_integer() &&
                 !(v.is_number_unsigned() && v.get<std::uint64_t>() > INT64_MAX)) {
        op.outcome = model::Returned<Value>{Value{v.get<std::int64_t>()}};
      } else {
        // Outside every method's result domain: a kind no rule accepts, naming the value.
        op.outcome = model::Raised{"<returned " + v.dump() + ">"};
      }
      break;
    }
    case OpStatus::kError:
      op.outcome = model::Raised{o.error_kind.empty() ? "<no kind>" : o.error_kind};
      break;
    case OpStatus::kInfo:
      op.outcome = model::Unknown{};
      break;
  }
  return op;
}

// Fills Op::rank and Op::after of the puts (see the top of this file).
template <typename M>
std::vector<std::pair<const Operation*, const Operation*>> add_hints(
    const std::vector<const Operation*>& ops, std::vector<TimedOp<M>>& timed) {
  struct Uses {
    int puts = 0;  // calls that may have put the value
    int gets = 0;  // gets that returned it
    std::size_t put_index = 0;
    const Operation* get = nullptr;
  };
  std::map<std::string, Uses> uses;
  std::int64_t first_unknown_get = INT64_MAX;  // earliest invocation of a killed get
  bool sizes_observed = false;                 // an outcome that one item more could make legal
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const Operation& o = *ops[i];
    if (is_put(o) && o.status != OpStatus::kError && !timed[i].op.uncarriable) {
      Uses& u = uses[timed[i].op.obj];
      ++u.puts;
      u.put_index = i;
    } else if (is_get(o) && o.status == OpStatus::kOk) {
      Uses& u = uses[canonical(o.value)];
      ++u.gets;
      u.get = &o;
    } else if (is_get(o) && o.status == OpStatus::kInfo) {
      first_unknown_get = std::min(first_unknown_get, o.invoke_ns);
    }
    if (o.status == OpStatus::kError && o.error_kind == "Full") sizes_observed = true;
    // JoinableQueue: task_done and join observe the count, which each put raises.
    if (o.method == "task_done" || o.method == "join") sizes_observed = true;
    if (o.status == OpStatus::kOk &&
        (o.method == "qsize" || (o.method == "empty" && o.value == false) ||
         (o.method == "full" && o.value == true)))
      sizes_observed = true;
  }
  std::vector<std::pair<std::int64_t, std::size_t>> claimed;  // (get return, put index)
  for (const auto& [value, u] : uses)
    if (u.puts == 1 && u.gets == 1) claimed.emplace_back(*u.get->return_ns, u.put_index);
  std::sort(claimed.begin(), claimed.end());
  std::vector<std::int64_t> returns;
  returns.reserve(claimed.size());
  for (const auto& c : claimed) returns.push_back(c.first);
  std::vector<std::pair<const Operation*, const Operation*>> by_rank;
  for (std::size_t r = 0; r < claimed.size(); ++r) {
    typename M::Op& op = timed[claimed[r].second].op;
    op.rank = static_cast<std::int32_t>(r);
    const Operation* get = uses[op.obj].get;
    op.after = static_cast<std::uint32_t>(
        std::lower_bound(returns.begin(), returns.end(), get->invoke_ns) - returns.begin());
    by_rank.emplace_back(ops[claimed[r].second], get);
  }
  // Hints 3 and 4: the puts of values that no get returned.
  const auto before_unknown = static_cast<std::uint32_t>(
      std::lower_bound(returns.begin(), returns.end(), first_unknown_get) - returns.begin());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (!is_put(*ops[i]) || ops[i]->status == OpStatus::kError || timed[i].op.uncarriable) continue;
    if (uses[timed[i].op.obj].gets != 0) continue;
    timed[i].op.after = ops[i]->status == OpStatus::kInfo && !sizes_observed
                            ? M::kNever
                            : std::max(timed[i].op.after, before_unknown);
  }
  return by_rank;
}

std::string who(const Operation& o) { return o.process + "/" + std::to_string(o.thread); }

// The time a plain search may take to explain a violation the hinted search found.
constexpr std::chrono::milliseconds kPlainShare(250);

// One object's calls translated for model M, ready for the search.
template <typename M>
struct Prepared {
  std::vector<TimedOp<M>> timed;  // the calls in `ops` order, then the declared bound if any
  int bound_id = 0;               // the id given to the declared bound
  std::int64_t origin = 0;        // the first invocation, for reports
  // Claimed values by rank: their put and their get (empty without hints).
  std::vector<std::pair<const Operation*, const Operation*>> by_rank;
};

template <typename M>
Prepared<M> prepare(const std::vector<const Operation*>& ops, std::optional<std::int64_t> maxsize,
                    bool hints) {
  Prepared<M> p;
  p.timed.reserve(ops.size() + 1);
  p.origin = ops.empty() ? 0 : ops.front()->invoke_ns;
  int min_id = 0;
  for (const Operation* o : ops) {
    p.origin = std::min(p.origin, o->invoke_ns);
    min_id = std::min(min_id, o->id);
  }
  for (const Operation* o : ops) {
    TimedOp<M> t;
    t.id = o->id;
    t.who = who(*o);
    t.invoke_ns = o->invoke_ns;
    if (o->status != OpStatus::kInfo) t.return_ns = o->return_ns;
    t.op = translate<M>(*o);
    p.timed.push_back(std::move(t));
  }
  if (hints) p.by_rank = add_hints<M>(ops, p.timed);
  p.bound_id = min_id - 1;
  if (maxsize && !ops.empty()) {
    // The declared bound: a constraint on the constant maxsize, valid at any instant; given the
    // interval of the first invocation (the search orders it before the calls at that instant).
    TimedOp<M> t;
    t.id = p.bound_id;
    t.who = "test";
    t.invoke_ns = p.origin;
    t.return_ns = p.origin;
    t.op.method = M::Method::kBound;
    t.op.maxsize = *maxsize;
    t.op.outcome = model::Returned<typename M::Value>{};
    p.timed.push_back(std::move(t));
  }
  return p;
}

template <typename M>
ObjectResult run(const std::string& object, const Prepared<M>& p, const SearchLimits& limits) {
  ObjectResult r;
  r.object = object;
  r.type = std::string(M::kTypeName);
  SearchResult s = check_linearizable<M>(p.timed, limits);
  r.verdict = s.verdict;
  std::erase(s.longest_prefix, p.bound_id);
  r.longest_prefix = std::move(s.longest_prefix);
  if (s.failing_op != p.bound_id) r.failing_op = s.failing_op;
  r.explanation = std::move(s.explanation);
  return r;
}

// When the hinted search broke at a put that a hint held back: the values due out before it
// whose puts had not taken effect in the longest prefix.
template <typename M>
std::string hint_note(const Prepared<M>& p, const ObjectResult& r) {
  std::string out =
      "(found with the checker's FIFO hints: when the get of u returned before the get of v was "
      "invoked, the put of u takes effect before the put of v; see queue_check.cpp)\n";
  if (!r.failing_op) return out;
  const TimedOp<M>* failing = nullptr;
  for (const TimedOp<M>& t : p.timed)
    if (t.id == *r.failing_op) failing = &t;
  if (!failing || failing->op.after == 0 || failing->op.after == M::kNever) return out;
  if (failing->op.rank < 0) {
    bool unknown_gets = false;
    for (const TimedOp<M>& t : p.timed)
      if ((t.op.method == M::Method::kGet || t.op.method == M::Method::kGetNowait) &&
          std::holds_alternative<model::Unknown>(t.op.outcome))
        unknown_gets = true;
    out += "  #" + std::to_string(failing->id) + "'s value is never got, so its item, once put, ";
    out += unknown_gets
               ? "leaves the queue only through a get whose outcome is unknown: the " +
                     std::to_string(failing->op.after) +
                     " values got before the first such get was invoked must be put before it\n"
               : "stays in the queue for good (no get has an unknown outcome): the " +
                     std::to_string(failing->op.after) +
                     " values that are got must all be put before it\n";
    return out + "  (check_queue_invariants names lost, duplicated and invented values directly)\n";
  }
  const std::set<int> done(r.longest_prefix.begin(), r.longest_prefix.end());
  std::string missing;
  int count = 0;
  for (std::uint32_t k = 0; k < failing->op.after && k < p.by_rank.size(); ++k) {
    const auto& [put, get] = p.by_rank[k];
    if (done.count(put->id)) continue;
    if (++count <= 5) {
      missing += "    #" + std::to_string(put->id) + " " + who(*put) + " " + put->method + "(" +
                 canonical(obj_of(*put)) + ") " +
                 detail::format_interval(put->invoke_ns, put->return_ns, p.origin) + ", got by #" +
                 std::to_string(get->id) + " " +
                 detail::format_interval(get->invoke_ns, get->return_ns, p.origin) + "\n";
    }
  }
  if (count == 0) return out;
  const Operation* own = p.by_rank[static_cast<std::size_t>(failing->op.rank)].second;
  out += "  #" + std::to_string(failing->id) + "'s value is got by #" + std::to_string(own->id) +
         ", invoked at " + detail::format_offset(own->invoke_ns - p.origin) +
         ", after the gets of " + std::to_string(count) +
         " value(s) whose puts had not taken effect:\n" + missing;
  if (count > 5) out += "    ... and " + std::to_string(count - 5) + " more\n";
  return out;
}

template <typename M>
ObjectResult check_queue_ops(const std::string& object, const std::vector<const Operation*>& ops,
                             const SearchLimits& limits, std::optional<std::int64_t> maxsize,
                             bool hints) {
  const Prepared<M> prepared = prepare<M>(ops, maxsize, hints);
  ObjectResult r = run<M>(object, prepared, limits);
  if (!hints || r.verdict != Verdict::kNotLinearizable) return r;
  // Search again without hints, for an explanation in the model's own terms, within a small
  // share of the budget (it is exponential where the hints matter).
  const auto now = std::chrono::steady_clock::now();
  SearchLimits plain = limits;
  plain.deadline = limits.deadline <= now                    ? now
                   : limits.deadline - now > kPlainShare * 4 ? now + kPlainShare
                                                             : now + (limits.deadline - now) / 4;
  ObjectResult p = run<M>(object, prepare<M>(ops, maxsize, false), plain);
  if (p.verdict == Verdict::kNotLinearizable) return p;
  if (p.verdict == Verdict::kLinearizable) {
    // Cannot happen if the hints are sound; the plain search's linearization is the proof.
    p.explanation += "\n(the search with FIFO hints found no linearization: a checker bug)";
    return p;
  }
  r.explanation += hint_note(prepared, r);
  return r;
}

SearchLimits limits_for(std::chrono::milliseconds budget) {
  SearchLimits limits;
  const auto now = std::chrono::steady_clock::now();
  if (budget < std::chrono::milliseconds::zero()) budget = std::chrono::milliseconds::zero();
  const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::time_point::max() - now);
  limits.deadline = budget >= room ? std::chrono::steady_clock::time_point::max() : now + budget;
  return limits;
}

std::vector<const Operation*> ops_of(const History& history, const std::string& object) {
  std::vector<const Operation*> ops;
  for (const Operation& o : history.ops) {
    if (o.object != object) continue;
    if (o.status != OpStatus::kInfo) {
      if (!o.return_ns)
        throw std::invalid_argument(where(o) + " completed (" + mpspec::to_string(o.status) +
                                    ") without return_ns");
      if (*o.return_ns < o.invoke_ns)
        throw std::invalid_argument(where(o) + " returns before it is invoked");
    }
    ops.push_back(&o);
  }
  return ops;
}

const std::string& type_of(const History& history, const std::string& object) {
  auto it = history.objects.find(object);
  if (it == history.objects.end())
    throw std::invalid_argument("the history has no object '" + object + "'");
  return it->second;
}

}  // namespace

// ------------------------------------------------------------------------------- strict

ObjectResult check_queue_object(const std::string& object, const std::vector<const Operation*>& ops,
                                const SearchLimits& limits) {
  return check_queue_ops<model::Queue>(object, ops, limits, std::nullopt, true);
}

ObjectResult check_simple_queue_object(const std::string& object,
                                       const std::vector<const Operation*>& ops,
                                       const SearchLimits& limits) {
  return check_queue_ops<model::SimpleQueue>(object, ops, limits, std::nullopt, true);
}

ObjectResult check_joinable_queue_object(const std::string& object,
                                         const std::vector<const Operation*>& ops,
                                         const SearchLimits& limits) {
  return check_queue_ops<model::JoinableQueue>(object, ops, limits, std::nullopt, true);
}

ObjectResult check_queue_linearizable(const History& history, const std::string& object,
                                      const QueueLinearizabilityOptions& options) {
  const std::string& type = type_of(history, object);
  const std::vector<const Operation*> ops = ops_of(history, object);
  const SearchLimits limits = limits_for(options.budget);
  if (type == "Queue")
    return check_queue_ops<model::Queue>(object, ops, limits, options.maxsize, options.hints);
  if (type == "SimpleQueue")
    return check_queue_ops<model::SimpleQueue>(object, ops, limits, std::nullopt, options.hints);
  if (type == "JoinableQueue")
    return check_queue_ops<model::JoinableQueue>(object, ops, limits, options.maxsize,
                                                 options.hints);
  throw std::invalid_argument("object '" + object + "' is a " + type +
                              ", not a Queue, SimpleQueue or JoinableQueue");
}

// --------------------------------------------------------------------------------- core

namespace {

class Invariants {
 public:
  Invariants(const History& history, const std::string& object, const QueueCheckOptions& options)
      : options_(options) {
    const std::string& type = type_of(history, object);
    if (type != "Queue" && type != "SimpleQueue" && type != "JoinableQueue")
      throw std::invalid_argument("object '" + object + "' is a " + type + ", not a queue");
    simple_ = type == "SimpleQueue";
    prefix_ = simple_ ? "simple_queue" : "queue";
    ops_ = ops_of(history, object);
    origin_ = ops_.empty() ? 0 : ops_.front()->invoke_ns;
    for (const Operation* o : ops_) origin_ = std::min(origin_, o->invoke_ns);
    for (const Operation* o : ops_) {
      if (is_put(*o)) {
        const bool uncarriable = has_uncarriable(obj_of(*o));
        if (o->status == OpStatus::kError) {
          if (!uncarriable) raised_puts_[canonical(obj_of(*o))].push_back(o);
          if (o->error_kind == "Full") full_.push_back(o);
          continue;
        }
        if (uncarriable) {  // delivers nothing, but may hold a slot for a while
          silent_uncarriable_.push_back(o);
          continue;
        }
        carriers_[canonical(obj_of(*o))].push_back(o);
        if (o->status == OpStatus::kOk) committed_.push_back(o);
      } else if (is_get(*o)) {
        if (o->status == OpStatus::kOk) {
          got_[canonical(o->value)].push_back(o);
          gets_ok_.push_back(o);
        } else if (o->status == OpStatus::kInfo) {
          unknown_gets_.push_back(o);
        }
      }
    }
  }

  QueueReport run() {
    QueueReport r;
    r.committed = static_cast<int>(committed_.size());
    r.got = static_cast<int>(gets_ok_.size());
    matching();
    producer_order();
    capacity();
    full_legal();
    no_loss();
    r.violations = std::move(violations_);
    r.skipped = std::move(skipped_);
    r.ok = r.violations.empty();
    for (const std::string& v : r.violations) r.explanation += v + "\n";
    return r;
  }

 private:
  std::string label(const char* rest) const { return "[" + prefix_ + "." + rest + "]"; }

  std::string at(std::int64_t ns) const { return detail::format_offset(ns - origin_); }

  std::string name(const Operation& o) const {
    std::string call = o.method + "(";
    if (is_put(o)) {
      std::string text = canonical(obj_of(o));
      if (text.size() > 40) text = text.substr(0, 30) + "...";
      call += text;
    }
    call += ")";
    std::string outcome = o.status == OpStatus::kOk      ? " -> " + o.value.dump()
                          : o.status == OpStatus::kError ? " raised " + o.error_kind
                                                         : " -> ? (outcome unknown)";
    if (outcome.size() > 50) outcome = outcome.substr(0, 40) + "...";
    return "op #" + std::to_string(o.id) + " (" + who(o) + " " + call + outcome + " " +
           detail::format_interval(o.invoke_ns, o.return_ns, origin_) + ")";
  }

  void fail(std::string why) {
    if (violations_.size() < kMaxViolations) {
      violations_.push_back(std::move(why));
    } else if (violations_.size() == kMaxViolations) {
      violations_.push_back("... (more violations not listed)");
    }
  }

  // [queue.no_duplication] [queue.no_invention]: match each value's gets (by return) to its
  // carrying puts (by invocation), in order; the greedy matching exists iff any does.
  void matching() {
    for (auto& [value, gets] : got_) {
      std::sort(gets.begin(), gets.end(), [](const Operation* a, const Operation* b) {
        return std::pair(*a->return_ns, a->id) < std::pair(*b->return_ns, b->id);
      });
      std::vector<const Operation*> puts;
      if (auto it = carriers_.find(value); it != carriers_.end()) puts = it->second;
      std::sort(puts.begin(), puts.end(), [](const Operation* a, const Operation* b) {
        return std::pair(a->invoke_ns, a->id) < std::pair(b->invoke_ns, b->id);
      });
      if (puts.empty()) {
        std::string why = label("no_invention") + " " + name(*gets.front()) + " returned " +
                          abridge(value) + ", which no put carried";
        if (auto it = raised_puts_.find(value); it != raised_puts_.end())
          why += " (" + name(*it->second.front()) + " raised, so it put nothing)";
        fail(why);
        continue;
      }
      if (gets.size() > puts.size()) {
        std::string why = label("no_duplication") + " " + abridge(value) + " was returned by " +
                          std::to_string(gets.size()) + " gets but put by " +
                          std::to_string(puts.size()) + ":";
        for (const Operation* p : puts) why += "\n    put: " + name(*p);
        for (const Operation* g : gets) why += "\n    get: " + name(*g);
        fail(why);
        continue;
      }
      for (std::size_t i = 0; i < gets.size(); ++i) {
        if (puts[i]->invoke_ns > *gets[i]->return_ns) {
          fail(label("no_invention") + " " + name(*gets[i]) + " returned at " +
               at(*gets[i]->return_ns) + ", before " +
               (puts.size() == 1 ? "the put carrying its value, " : "a put of its value, ") +
               name(*puts[i]) + ", was invoked at " + at(puts[i]->invoke_ns));
          break;
        }
        match_[puts[i]] = gets[i];
      }
    }
  }

  // [queue.order.producer]: for each process, puts sorted by return with the running maximum of
  // the invocation of their value's get; a later put's get must not return before that maximum.
  void producer_order() {
    struct Entry {
      const Operation* put;
      const Operation* get;
    };
    std::map<std::string, std::vector<Entry>> by_process;
    for (const auto& [value, puts] : carriers_) {
      if (puts.size() != 1) continue;  // repeated values: which get took which copy is unknown
      auto g = got_.find(value);
      if (g == got_.end() || g->second.size() != 1) continue;
      by_process[puts[0]->process].push_back(Entry{puts[0], g->second[0]});
    }
    for (auto& [process, entries] : by_process) {
      std::vector<Entry> done;  // p1 candidates: puts that returned
      for (const Entry& e : entries)
        if (e.put->status == OpStatus::kOk) done.push_back(e);
      std::sort(done.begin(), done.end(), [](const Entry& a, const Entry& b) {
        return *a.put->return_ns < *b.put->return_ns;
      });
      std::vector<std::int64_t> returns;
      std::vector<std::size_t> latest;  // index in `done` of the latest get invocation so far
      for (std::size_t i = 0; i < done.size(); ++i) {
        returns.push_back(*done[i].put->return_ns);
        const bool later =
            latest.empty() || done[i].get->invoke_ns > done[latest.back()].get->invoke_ns;
        latest.push_back(later ? i : latest.back());
      }
      for (const Entry& e2 : entries) {
        // p1 returned strictly before p2 was invoked.
        const auto n = static_cast<std::size_t>(
            std::lower_bound(returns.begin(), returns.end(), e2.put->invoke_ns) - returns.begin());
        if (n == 0) continue;
        const Entry& e1 = done[latest[n - 1]];
        if (e1.get->invoke_ns > *e2.get->return_ns) {
          fail(label("order.producer") + " process " + process + " put " +
               abridge(canonical(obj_of(*e1.put))) + " before " +
               abridge(canonical(obj_of(*e2.put))) + " (the first put returned at " +
               at(*e1.put->return_ns) + ", the second was invoked at " + at(e2.put->invoke_ns) +
               "), but the get of the "
               "first was invoked at " +
               at(e1.get->invoke_ns) +
               ", after the get of the second "
               "returned at " +
               at(*e2.get->return_ns) + ":\n    " + name(*e1.put) + "\n    " + name(*e2.put) +
               "\n    " + name(*e2.get) + "\n    " + name(*e1.get));
        }
      }
    }
  }

  // [queue.capacity.bound]: just after each committed put returns, the committed puts returned
  // so far minus the gets that did not raise invoked so far (ties counted in the queue's favour).
  void capacity() {
    if (simple_) return;
    if (!options_.maxsize) {
      skipped_.push_back(label("capacity.bound") + " not checked: maxsize not given");
      return;
    }
    if (*options_.maxsize <= 0) return;  // the backend's limit is not known
    std::vector<std::int64_t> get_invokes;
    for (const Operation* g : gets_ok_) get_invokes.push_back(g->invoke_ns);
    for (const Operation* g : unknown_gets_) get_invokes.push_back(g->invoke_ns);
    std::sort(get_invokes.begin(), get_invokes.end());
    std::vector<const Operation*> puts = committed_;
    std::sort(puts.begin(), puts.end(),
              [](const Operation* a, const Operation* b) { return *a->return_ns < *b->return_ns; });
    for (std::size_t i = 0; i < puts.size(); ++i) {
      const std::int64_t t = *puts[i]->return_ns;
      std::size_t returned = i + 1;
      while (returned < puts.size() && *puts[returned]->return_ns == t) ++returned;
      const auto taken = static_cast<std::int64_t>(
          std::upper_bound(get_invokes.begin(), get_invokes.end(), t) - get_invokes.begin());
      const std::int64_t held = static_cast<std::int64_t>(returned) - taken;
      if (held > *options_.maxsize) {
        fail(label("capacity.bound") + " at " + at(t) + ", when " + name(*puts[i]) + " returned, " +
             std::to_string(returned) + " puts had returned and only " + std::to_string(taken) +
             " gets that did not raise had been invoked: the queue held " + std::to_string(held) +
             " items, more than maxsize " + std::to_string(*options_.maxsize));
        return;
      }
    }
  }

  // [queue.capacity.full_legal]: the largest "puts invoked that did not raise, minus gets that
  // returned an item" over the Full put's interval; it grows only at put invocations.
  void full_legal() {
    if (simple_ || full_.empty()) return;
    if (!options_.maxsize) {
      skipped_.push_back(label("capacity.full_legal") + " not checked: maxsize not given");
      return;
    }
    const std::int64_t bound = *options_.maxsize > 0 ? *options_.maxsize : 32767;
    std::vector<std::int64_t> put_invokes, get_returns;
    for (const auto& [value, puts] : carriers_)
      for (const Operation* p : puts) put_invokes.push_back(p->invoke_ns);
    // Uncarriable puts that did not raise take a slot too ([queue.put.uncarriable.silent]).
    for (const Operation* o : silent_uncarriable_) put_invokes.push_back(o->invoke_ns);
    for (const Operation* g : gets_ok_) get_returns.push_back(*g->return_ns);
    std::sort(put_invokes.begin(), put_invokes.end());
    std::sort(get_returns.begin(), get_returns.end());
    for (const Operation* f : full_) {
      const std::int64_t end = *f->return_ns;
      std::vector<std::int64_t> instants{f->invoke_ns};
      for (auto it = std::upper_bound(put_invokes.begin(), put_invokes.end(), f->invoke_ns);
           it != put_invokes.end() && *it <= end; ++it)
        instants.push_back(*it);
      std::int64_t best = INT64_MIN;
      for (std::int64_t t : instants) {
        const auto puts =
            std::upper_bound(put_invokes.begin(), put_invokes.end(), t) - put_invokes.begin();
        const auto gets =
            std::lower_bound(get_returns.begin(), get_returns.end(), t) - get_returns.begin();
        best = std::max<std::int64_t>(best, puts - gets);
      }
      if (best < bound) {
        fail(label("capacity.full_legal") + " " + name(*f) + " raised Full, but at no instant " +
             "of its interval could the queue hold " +
             (*options_.maxsize > 0 ? "maxsize=" + std::to_string(bound)
                                    : "the " + std::to_string(bound) +
                                          " items an unbounded queue "
                                          "holds at least") +
             " items: at most " + std::to_string(std::max<std::int64_t>(best, 0)) +
             " (puts invoked that did not raise, minus gets that had returned an item)");
      }
    }
  }

  // [queue.no_loss] [simple_queue.no_loss].
  void no_loss() {
    if (!options_.drained) return;
    if (!simple_ && !options_.killed.empty()) {
      skipped_.push_back(label("no_loss") +
                         " not checked: actors were killed ([queue.exit.abrupt], "
                         "[queue.kill.corrupt] allow loss in core)");
      return;
    }
    std::vector<const Operation*> lost;
    for (const auto& [value, puts] : carriers_) {
      std::vector<const Operation*> committed;
      for (const Operation* p : puts)
        if (p->status == OpStatus::kOk) committed.push_back(p);
      auto g = got_.find(value);
      const std::size_t got = g == got_.end() ? 0 : g->second.size();
      if (committed.size() <= got) continue;
      // Report the puts no get was matched to.
      std::size_t missing = committed.size() - got;
      for (const Operation* p : committed) {
        if (missing == 0) break;
        if (!match_.count(p)) {
          lost.push_back(p);
          --missing;
        }
      }
      for (const Operation* p : committed) {
        if (missing == 0) break;
        if (std::find(lost.begin(), lost.end(), p) == lost.end()) {
          lost.push_back(p);
          --missing;
        }
      }
    }
    if (lost.size() <= unknown_gets_.size()) return;
    std::sort(lost.begin(), lost.end(),
              [](const Operation* a, const Operation* b) { return a->invoke_ns < b->invoke_ns; });
    std::string why = label("no_loss") + " the history ended drained, but " +
                      std::to_string(lost.size()) + " committed item" +
                      (lost.size() == 1 ? " was" : "s were") + " never got";
    if (!unknown_gets_.empty())
      why += " (" + std::to_string(unknown_gets_.size()) +
             " gets with an unknown outcome account for at most as many)";
    why += ":";
    for (std::size_t i = 0; i < lost.size() && i < 10; ++i) why += "\n    " + name(*lost[i]);
    if (lost.size() > 10) why += "\n    ... and " + std::to_string(lost.size() - 10) + " more";
    fail(why);
  }

  static std::string abridge(const std::string& text) {
    return text.size() <= 40 ? text : text.substr(0, 30) + "...";
  }

  static constexpr std::size_t kMaxViolations = 20;

  const QueueCheckOptions& options_;
  bool simple_ = false;
  std::string prefix_;
  std::vector<const Operation*> ops_;
  std::int64_t origin_ = 0;
  std::map<std::string, std::vector<const Operation*>> carriers_;     // puts not raising
  std::map<std::string, std::vector<const Operation*>> raised_puts_;  // puts that raised
  std::map<std::string, std::vector<const Operation*>> got_;          // gets that returned it
  std::vector<const Operation*> committed_, gets_ok_, unknown_gets_, full_, silent_uncarriable_;
  std::map<const Operation*, const Operation*> match_;  // put -> its get (matching())
  std::vector<std::string> violations_, skipped_;
};

}  // namespace

QueueReport check_queue_invariants(const History& history, const std::string& object,
                                   const QueueCheckOptions& options) {
  return Invariants(history, object, options).run();
}

}  // namespace mpspec::check
