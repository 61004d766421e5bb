#include "condition_check.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace mpspec::check {
namespace {

constexpr std::int64_t kNever = INT64_MAX;

std::int64_t end_of(const Operation& o) {
  return o.status == OpStatus::kInfo || !o.return_ns ? kNever : *o.return_ns;
}

std::string name_of(const Operation& o) {
  return "op #" + std::to_string(o.id) + " (" + o.process + "/" + std::to_string(o.thread) + " " +
         o.method + (o.args.is_object() && !o.args.empty() ? o.args.dump() : "()") + " -> " +
         (o.status == OpStatus::kOk      ? o.value.dump()
          : o.status == OpStatus::kError ? "raised " + o.error_kind
                                         : "?") +
         ")";
}

bool is_wait(const Operation& o) { return o.method == "wait" || o.method == "wait_for"; }

bool untimed(const Operation& o) {
  return !o.args.is_object() || !o.args.contains("timeout") || o.args["timeout"].is_null();
}

// Units a notify offers; nullopt when it offers none (it raised).
std::optional<std::int64_t> units_of(const Operation& o, std::int64_t all) {
  if (o.status == OpStatus::kError) return std::nullopt;
  if (o.method == "notify_all") return all;
  std::int64_t n = 1;
  if (o.args.is_object() && o.args.contains("n") && o.args["n"].is_number_integer())
    n = o.args["n"].get<std::int64_t>();
  return std::max<std::int64_t>(n, 0);
}

// Invariant 1: every True wait is charged to a distinct notify unit (Kuhn's augmenting paths
// over notifies with capacities).
std::string at_most_n(const std::vector<const Operation*>& waits,
                      const std::vector<const Operation*>& notifies) {
  std::vector<const Operation*> woken;
  for (const Operation* w : waits)
    if (w->method == "wait" && w->status == OpStatus::kOk && w->value == true) woken.push_back(w);
  const auto all = static_cast<std::int64_t>(waits.size());
  std::vector<std::int64_t> cap(notifies.size());
  for (size_t i = 0; i < notifies.size(); ++i) cap[i] = units_of(*notifies[i], all).value_or(0);
  auto can = [&](const Operation* w, const Operation* n) {
    return n->invoke_ns <= end_of(*w) && w->invoke_ns <= end_of(*n);
  };
  std::vector<std::vector<size_t>> owner(notifies.size());  // woken indices charged to notify
  std::vector<bool> seen;
  std::function<bool(size_t)> augment = [&](size_t wi) -> bool {
    for (size_t ni = 0; ni < notifies.size(); ++ni) {
      if (seen[ni] || !can(woken[wi], notifies[ni])) continue;
      seen[ni] = true;
      if (static_cast<std::int64_t>(owner[ni].size()) < cap[ni]) {
        owner[ni].push_back(wi);
        return true;
      }
      for (size_t k = 0; k < owner[ni].size(); ++k) {
        const size_t other = owner[ni][k];
        owner[ni].erase(owner[ni].begin() + static_cast<std::ptrdiff_t>(k));
        if (augment(other)) {
          owner[ni].push_back(wi);
          return true;
        }
        owner[ni].insert(owner[ni].begin() + static_cast<std::ptrdiff_t>(k), other);
      }
    }
    return false;
  };
  for (size_t wi = 0; wi < woken.size(); ++wi) {
    seen.assign(notifies.size(), false);
    if (!augment(wi)) {
      return "[condition.notify.at_most_n] " + name_of(*woken[wi]) +
             " returned True but cannot be charged to any notification: the " +
             std::to_string(woken.size()) +
             " waits that returned True need more wake-ups than the overlapping notify calls "
             "offer (notify(n) wakes at most n)";
    }
  }
  return "";
}

// Invariant 2.
std::string no_lost_wakeup(const std::vector<const Operation*>& ops,
                           const std::vector<const Operation*>& waits,
                           const std::vector<const Operation*>& notifies,
                           const std::set<std::string>& killed) {
  const auto all = static_cast<std::int64_t>(waits.size());
  for (const Operation* n : notifies) {
    if (n->status != OpStatus::kOk) continue;
    const Operation* a = nullptr;  // T's last lock acquisition before n
    for (const Operation* o : ops) {
      if (o->process != n->process || o->thread != n->thread) continue;
      if (o->status != OpStatus::kOk || end_of(*o) > n->invoke_ns) continue;
      const bool took =
          ((o->method == "acquire" || o->method == "__enter__") && o->value == true) || is_wait(*o);
      if (took && (!a || o->invoke_ns > a->invoke_ns)) a = o;
    }
    if (!a) continue;
    std::vector<const Operation*> waiting;
    for (const Operation* w : waits) {
      if (w->method != "wait" || !untimed(*w) || w->status == OpStatus::kError) continue;
      if (killed.count(w->process) || w->process == n->process) continue;
      if (w->invoke_ns < a->invoke_ns && end_of(*w) > n->invoke_ns) waiting.push_back(w);
    }
    if (waiting.empty()) continue;
    std::int64_t woken = 0;
    for (const Operation* w : waiting)
      if (w->status == OpStatus::kOk && w->value == true) ++woken;
    const std::int64_t need = std::min<std::int64_t>(units_of(*n, all).value_or(0),
                                                     static_cast<std::int64_t>(waiting.size()));
    if (woken < need) {
      std::string list;
      for (const Operation* w : waiting) list += "\n    " + name_of(*w);
      return "[condition.notify.no_lost_wakeup] " + name_of(*n) + " found " +
             std::to_string(waiting.size()) + " waits certainly waiting, of which only " +
             std::to_string(woken) + " returned True (at least " + std::to_string(need) +
             " must):" + list;
    }
  }
  return "";
}

}  // namespace

ConditionResult check_condition(const History& history, const std::string& condition,
                                const std::string& lock_object, const std::set<std::string>& killed,
                                std::chrono::milliseconds budget) {
  std::vector<const Operation*> ops, waits, notifies;
  for (const Operation& o : history.ops) {
    if (o.object != condition && (lock_object.empty() || o.object != lock_object)) continue;
    ops.push_back(&o);
    if (o.object != condition) continue;
    if (is_wait(o)) waits.push_back(&o);
    if (o.method == "notify" || o.method == "notify_all") notifies.push_back(&o);
  }
  ConditionResult r;
  r.verdict = Verdict::kNotLinearizable;
  if (std::string e = at_most_n(waits, notifies); !e.empty()) {
    r.explanation = e;
    return r;
  }
  if (std::string e = no_lost_wakeup(ops, waits, notifies, killed); !e.empty()) {
    r.explanation = e;
    return r;
  }

  // Invariant 3: the lock as a Lock history.
  History lock;
  const std::string name = condition + ".lock";
  lock.objects[name] = "Lock";
  for (const Operation* o : ops) {
    if (o->status == OpStatus::kError && (is_wait(*o) || o->error_kind == "AssertionError"))
      continue;
    Operation base = *o;
    base.object = name;
    if (o->method == "acquire" || o->method == "release" || o->method == "__enter__" ||
        o->method == "__exit__") {
      base.id = 2 * o->id;
      lock.ops.push_back(base);
    } else if (is_wait(*o)) {
      // wait = release, then acquire, both inside the wait's interval.
      Operation rel = base, acq = base;
      rel.id = 2 * o->id;
      rel.method = "release";
      rel.args = nlohmann::json::object();
      acq.id = 2 * o->id + 1;
      acq.method = "acquire";
      acq.args = nlohmann::json::object();
      if (o->status == OpStatus::kOk) {
        rel.value = nullptr;
        acq.value = true;
      }
      lock.ops.push_back(rel);
      lock.ops.push_back(acq);
    }
  }
  const Result lr = check_history(lock, budget);
  r.verdict = lr.verdict;
  if (lr.verdict != Verdict::kLinearizable) {
    r.explanation =
        std::string(lr.verdict == Verdict::kUnknown ? "" : "[condition.wait.reacquires] ") +
        "the condition's lock (each wait counted as release + acquire) is " +
        to_string(lr.verdict) + ":\n" + lr.summary();
  }
  return r;
}

}  // namespace mpspec::check
