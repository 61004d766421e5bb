#include "barrier_check.hpp"

#include <algorithm>
#include <map>
#include <vector>

namespace mpspec::check {
namespace {

std::string op_name(const Operation& o) {
  return "op #" + std::to_string(o.id) + " (" + o.process + "/" + std::to_string(o.thread) +
         " wait)";
}

}  // namespace

BarrierReport check_barrier(const mpspec::History& history, const std::string& object, int parties,
                            const std::set<std::string>& action_errors) {
  BarrierReport r;
  auto fail = [&r](const std::string& why) {
    r.ok = false;
    r.explanation += why + "\n";
  };
  // The waits of each party actor, in invocation order.
  std::map<std::string, std::vector<const Operation*>> by_actor;
  for (const Operation& o : history.ops) {
    if (o.object != object || o.method != "wait") continue;
    by_actor[o.process + "/" + std::to_string(o.thread)].push_back(&o);
  }
  for (auto& [who, ops] : by_actor) {
    std::sort(ops.begin(), ops.end(),
              [](const Operation* a, const Operation* b) { return a->invoke_ns < b->invoke_ns; });
  }
  if (by_actor.size() > static_cast<std::size_t>(parties)) {
    fail("check_barrier: " + std::to_string(by_actor.size()) + " actors wait on " + object +
         " with parties=" + std::to_string(parties) + "; the checker needs at most `parties`");
    return r;
  }

  // Normal returns per actor; errors must be of an allowed kind.
  std::map<std::string, std::vector<const Operation*>> returned;
  std::map<std::string, bool> has_unknown;
  for (const auto& [who, ops] : by_actor) {
    auto& list = returned[who];
    for (const Operation* o : ops) {
      switch (o->status) {
        case OpStatus::kOk:
          if (!o->value.is_number_integer() || o->value.get<long long>() < 0 ||
              o->value.get<long long>() >= parties) {
            fail("[barrier.wait.index] " + op_name(*o) + " returned " + o->value.dump() +
                 ", not an index in range(" + std::to_string(parties) + ")");
          }
          list.push_back(o);
          break;
        case OpStatus::kError:
          if (o->error_kind != "BrokenBarrierError" && !action_errors.count(o->error_kind))
            fail("[barrier.wait.broken] " + op_name(*o) + " raised " + o->error_kind +
                 " (a wait raises only BrokenBarrierError, or the action's error)");
          break;
        case OpStatus::kInfo:
          has_unknown[who] = true;
          break;
      }
    }
  }
  if (!r.ok) return r;

  // A cycle needs one wait of every party: with fewer party actors than parties, no wait
  // may return at all.
  std::size_t min_count = 0, max_count = 0;
  bool first = true;
  for (const auto& [who, list] : returned) {
    min_count = first ? list.size() : std::min(min_count, list.size());
    max_count = first ? list.size() : std::max(max_count, list.size());
    first = false;
  }
  if (by_actor.size() < static_cast<std::size_t>(parties)) min_count = 0;
  for (const auto& [who, list] : returned) {
    if (list.size() == min_count) continue;
    const bool lost_return = list.size() == min_count + 1 && has_unknown[who] &&
                             by_actor.size() == static_cast<std::size_t>(parties);
    // The extra return may belong to a cycle whose other returns were lost to a kill or
    // teardown; then every actor short of it must have an unknown outcome.
    bool explained = lost_return;
    if (lost_return) {
      for (const auto& [other, olist] : returned)
        if (olist.size() == min_count && !has_unknown[other]) explained = false;
    }
    if (!explained) {
      const Operation* o = list[min_count];
      fail("[barrier.wait.blocks] " + op_name(*o) + " returned " + o->value.dump() + " in cycle " +
           std::to_string(min_count) + ", which the other parties (" + std::to_string(parties) +
           " needed) never completed: released early");
    }
  }

  for (std::size_t k = 0; k < min_count; ++k) {
    std::vector<const Operation*> cycle;
    for (const auto& [who, list] : returned) cycle.push_back(list[k]);
    std::int64_t last_invoke = 0;
    const Operation* last = nullptr;
    std::vector<int> seen(static_cast<std::size_t>(parties), -1);
    for (const Operation* o : cycle) {
      if (o->invoke_ns >= last_invoke) {
        last_invoke = o->invoke_ns;
        last = o;
      }
      const auto index = static_cast<std::size_t>(o->value.get<long long>());
      if (seen[index] >= 0) {
        fail("[barrier.wait.index] cycle " + std::to_string(k) + ": op #" +
             std::to_string(seen[index]) + " and " + op_name(*o) + " both returned index " +
             std::to_string(index));
      }
      seen[index] = o->id;
    }
    for (const Operation* o : cycle) {
      if (o->return_ns && *o->return_ns < last_invoke) {
        fail("[barrier.wait.blocks] cycle " + std::to_string(k) + ": " + op_name(*o) +
             " returned at " + std::to_string(*o->return_ns) + " ns, before the last party's " +
             op_name(*last) + " was invoked at " + std::to_string(last_invoke) + " ns");
      }
    }
  }
  r.cycles = static_cast<int>(min_count);
  return r;
}

}  // namespace mpspec::check
