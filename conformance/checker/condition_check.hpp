// Invariant checker for Condition histories (spec/sync/condition.md §6).
//
// A Condition is not a sequential object (which waiter a notify wakes, and when it runs again,
// are not determined by a sequential model), so its history is judged by three invariants:
//
//  1. [condition.notify.at_most_n] Every `wait` that returned True can be charged to a distinct
//     unit of a notify that overlaps it in time: notify(n) offers n units, notify_all as many
//     as there are waits; a notify whose outcome is unknown (`info`) offers its units too. A
//     True wait may be charged to notify N when N was invoked before the wait returned and the
//     wait was invoked before N returned. Fails when no such charging exists (bipartite
//     matching).
//  2. [condition.notify.no_lost_wakeup] Let N be a notify that returned, called by a thread T,
//     and A the last call of T before N that acquired the condition's lock (acquire/__enter__
//     returning True, or a wait/wait_for that returned). A wait W without a timeout, by another
//     actor that was not killed, is *certainly waiting* at N when W was invoked before A was
//     and had not returned when N was invoked: W held the lock when it was invoked, so T could
//     take the lock only after W released it inside wait. Among the waits certainly waiting at
//     N, at least min(n, their number) must return True (notify_all: all of them). A wait that
//     never returns (still blocked at teardown) counts as not woken.
//  3. [condition.wait.reacquires] The lock is exclusive, with every wait counted as a release
//     followed by an acquire within the wait's interval: the calls on the condition's lock
//     (through the Condition, and directly on `lock_object` when given) form a history that
//     is linearizable with respect to the Lock model. A wait that returns without the lock
//     makes another actor's acquire succeed while the waiter is deemed the holder.
//
// Calls that raised (e.g. AssertionError for a wait without the lock) are not lock operations
// and are ignored by all three invariants. Programs under this checker must not release the
// lock of another thread nor use an RLock recursively (invariant 3 uses the plain Lock model).
#pragma once

#include <chrono>
#include <set>
#include <string>

#include "check.hpp"
#include "history.hpp"

namespace mpspec::check {

struct ConditionResult {
  Verdict verdict = Verdict::kUnknown;  // kUnknown only when invariant 3 ran out of budget
  std::string explanation;              // which invariant failed, with the ops involved
};

// Judges the calls on Condition `condition` in `history`. `lock_object` names the Lock or
// RLock the condition was built over, when the program also calls it directly ("" if not).
// `killed` lists the actors killed during the run.
ConditionResult check_condition(const History& history, const std::string& condition,
                                const std::string& lock_object = "",
                                const std::set<std::string>& killed = {},
                                std::chrono::milliseconds budget = std::chrono::seconds(10));

}  // namespace mpspec::check
