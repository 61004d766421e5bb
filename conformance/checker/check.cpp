#include "check.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <string_view>

#include "models/event.hpp"
#include "models/lock.hpp"
#include "models/rlock.hpp"
#include "models/rwlock.hpp"
#include "models/semaphore.hpp"
#include "queue_check.hpp"  // check_queue_object, check_simple_queue_object

namespace mpspec::check {

// Per-type translations kept in their own files.
model::Event::Op translate_event(const Operation& o);  // check_event.cpp
model::RLock::Op translate_rlock(const Operation& o);  // check_semaphores.cpp
model::RWLock::Op translate_rwlock(const Operation& o);  // check_rwlock.cpp
model::Semaphore::Op translate_semaphore(const Operation& o);  // check_semaphores.cpp
model::BoundedSemaphore::Op translate_bounded_semaphore(const Operation& o);  // ditto

namespace {

using nlohmann::json;

// An outcome outside the result domain of the method: no state of any model explains it.
struct IllegalOutcome : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string who(const Operation& o) { return o.process + "/" + std::to_string(o.thread); }

std::string context(const Operation& o) {
  return "op #" + std::to_string(o.id) + " (" + who(o) + ", " + o.object + "." + o.method + ")";
}

// ------------------------------------------------------------------------------------ Lock

// Protocol §6: acquire(block: bool = true, timeout: number | null = null) -> bool;
// release() -> null; __enter__() -> bool; __exit__() -> null.
model::Lock::Op translate_lock(const Operation& o) {
  using L = model::Lock;
  L::Op op;
  if (o.method == "acquire") {
    op.method = L::Method::kAcquire;
  } else if (o.method == "release") {
    op.method = L::Method::kRelease;
  } else if (o.method == "__enter__") {
    op.method = L::Method::kEnter;
  } else if (o.method == "__exit__") {
    op.method = L::Method::kExit;
  } else {
    throw std::invalid_argument(context(o) + ": Lock has no method '" + o.method +
                                "' (it has acquire, release, __enter__, __exit__)");
  }
  if (!o.args.is_null() && !o.args.is_object())
    throw std::invalid_argument(context(o) + ": args must be a JSON object, not " + o.args.dump());
  if (o.args.is_object()) {
    for (const auto& [name, v] : o.args.items()) {
      if (op.method == L::Method::kAcquire && name == "block") {
        if (!v.is_boolean())
          throw std::invalid_argument(context(o) + ": 'block' must be a bool, not " + v.dump());
        op.block = v.get<bool>();
      } else if (op.method == L::Method::kAcquire && name == "timeout") {
        if (v.is_number()) {
          op.timeout = v.get<double>();
        } else if (!v.is_null()) {
          throw std::invalid_argument(context(o) + ": 'timeout' must be a number or null, not " +
                                      v.dump());
        }
      } else {
        throw std::invalid_argument(context(o) + ": unexpected argument '" + name + "'");
      }
    }
  }
  switch (o.status) {
    case OpStatus::kOk:
      if (o.value.is_boolean()) {
        op.outcome = model::Returned<std::optional<bool>>{o.value.get<bool>()};
      } else if (o.value.is_null()) {
        op.outcome = model::Returned<std::optional<bool>>{std::nullopt};
      } else {
        throw IllegalOutcome("returned " + o.value.dump() +
                             ", which no Lock method returns (acquire and __enter__ return a "
                             "bool, release and __exit__ None)");
      }
      break;
    case OpStatus::kError:
      if (o.error_kind.empty()) throw IllegalOutcome("raised an error without a kind");
      op.outcome = model::Raised{o.error_kind};
      break;
    case OpStatus::kInfo:
      op.outcome = model::Unknown{};
      break;
  }
  return op;
}

// ------------------------------------------------------------------------ the type table

using ObjectChecker = ObjectResult (*)(const std::string& object,
                                       const std::vector<const Operation*>& ops,
                                       const SearchLimits& limits);

// Translates the ops with `Translate` and searches model M. `Translate` throws
// std::invalid_argument for a malformed call and IllegalOutcome for an impossible outcome.
template <model::Model M, typename M::Op (*Translate)(const Operation&)>
ObjectResult check_object(const std::string& object, const std::vector<const Operation*>& ops,
                          const SearchLimits& limits) {
  ObjectResult r;
  r.object = object;
  r.type = std::string(M::kTypeName);
  std::vector<TimedOp<M>> timed;
  timed.reserve(ops.size());
  std::string illegal;
  std::optional<int> illegal_id;
  int illegal_count = 0;
  std::int64_t origin = ops.empty() ? 0 : ops.front()->invoke_ns;
  for (const Operation* o : ops) origin = std::min(origin, o->invoke_ns);
  for (const Operation* o : ops) {
    TimedOp<M> t;
    t.id = o->id;
    t.who = who(*o);
    t.invoke_ns = o->invoke_ns;
    if (o->status != OpStatus::kInfo) t.return_ns = o->return_ns;
    try {
      t.op = Translate(*o);
    } catch (const IllegalOutcome& e) {
      if (!illegal_id) {
        illegal_id = o->id;
        illegal = context(*o) + " " + detail::format_interval(o->invoke_ns, o->return_ns, origin) +
                  " " + e.what();
      }
      ++illegal_count;
      continue;
    }
    timed.push_back(std::move(t));
  }
  if (illegal_id) {
    r.verdict = Verdict::kNotLinearizable;
    r.failing_op = illegal_id;
    r.explanation = "not linearizable: " + illegal + "; no state of the " + r.type +
                    " model allows that outcome [protocol.event.return]";
    if (illegal_count > 1)
      r.explanation += " (and " + std::to_string(illegal_count - 1) + " more such ops)";
    return r;
  }
  SearchResult s = check_linearizable<M>(timed, limits);
  r.verdict = s.verdict;
  r.longest_prefix = std::move(s.longest_prefix);
  r.failing_op = s.failing_op;
  r.explanation = std::move(s.explanation);
  return r;
}

// One row per type with a model. A new type: its model in spec/models/<type>.hpp, a
// translate_<type>() above, and a row here.
const std::map<std::string, ObjectChecker, std::less<>>& type_table() {
  static const std::map<std::string, ObjectChecker, std::less<>> table = {
      {"Event", &check_object<model::Event, &translate_event>},
      {"Lock", &check_object<model::Lock, &translate_lock>},
      {"Queue", &check_queue_object},              // queue_check.cpp (maxsize unknown)
      {"SimpleQueue", &check_simple_queue_object},  // ditto
      {"JoinableQueue", &check_joinable_queue_object},  // ditto
      {"RLock", &check_object<model::RLock, &translate_rlock>},
      {"RWLock", &check_object<model::RWLock, &translate_rwlock>},
      {"Semaphore", &check_object<model::Semaphore, &translate_semaphore>},
      {"BoundedSemaphore",
       &check_object<model::BoundedSemaphore, &translate_bounded_semaphore>},
  };
  return table;
}

std::string known_types() {
  std::string out;
  for (const auto& [name, fn] : type_table()) out += (out.empty() ? "" : ", ") + name;
  return out;
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

}  // namespace

Result check_history(const mpspec::History& history, std::chrono::milliseconds budget) {
  for (const auto& [name, type] : history.objects) {
    if (!type_table().count(type))
      throw std::invalid_argument(
          "object '" + name + "' has type '" + type +
          "', for which the checker has no model (it has: " + known_types() + ")");
  }
  std::map<std::string, std::vector<const Operation*>> by_object;
  std::set<int> ids;
  for (const Operation& o : history.ops) {
    if (!history.objects.count(o.object))
      throw std::invalid_argument(context(o) + " names undeclared object '" + o.object + "'");
    if (!ids.insert(o.id).second)
      throw std::invalid_argument("op id " + std::to_string(o.id) + " appears more than once");
    if (o.status != OpStatus::kInfo) {
      if (!o.return_ns)
        throw std::invalid_argument(context(o) + " completed (" + mpspec::to_string(o.status) +
                                    ") without return_ns");
      if (*o.return_ns < o.invoke_ns)
        throw std::invalid_argument(context(o) + " returns before it is invoked");
    }
    by_object[o.object].push_back(&o);
  }

  const SearchLimits limits = limits_for(budget);
  Result result;
  result.verdict = Verdict::kLinearizable;
  for (const auto& [name, type] : history.objects) {
    const ObjectChecker checker = type_table().find(type)->second;
    result.objects.push_back(checker(name, by_object[name], limits));
    const Verdict v = result.objects.back().verdict;
    if (v == Verdict::kNotLinearizable) {
      result.verdict = Verdict::kNotLinearizable;
    } else if (v == Verdict::kUnknown && result.verdict == Verdict::kLinearizable) {
      result.verdict = Verdict::kUnknown;
    }
  }
  return result;
}

std::string Result::summary() const {
  std::string out = std::string("history: ") + to_string(verdict) + " (" +
                    std::to_string(objects.size()) + " object" + (objects.size() == 1 ? "" : "s") +
                    ")\n";
  for (const ObjectResult& o : objects) {
    out += o.object + " (" + o.type + "): " + to_string(o.verdict) + "\n";
    std::size_t start = 0;
    while (start < o.explanation.size()) {
      std::size_t end = o.explanation.find('\n', start);
      if (end == std::string::npos) end = o.explanation.size();
      out += "  " + o.explanation.substr(start, end - start) + "\n";
      start = end + 1;
    }
  }
  return out;
}

}  // namespace mpspec::check
