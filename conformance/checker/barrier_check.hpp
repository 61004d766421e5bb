// The invariant checker of Barrier (spec/sync/barrier.md). A barrier's guarantees are about
// groups of calls (cycles), not a sequential object, so it is judged by invariants instead of
// the linearizability checker:
//
//   check::BarrierReport r = check::check_barrier(history, "B", /*parties=*/3);
//   EXPECT_TRUE(r.ok) << r.explanation;
//
// Assumption, which the tests and the property arrange: exactly `parties` single-threaded
// actors call `wait` on the object (the "party actors"; other actors may call the other
// methods). Then every cycle that completes holds one wait of each party actor, so the k-th
// wait that returned normally of every party actor belongs to cycle k. Checked:
//   [barrier.wait.index]     each `wait` that returns gives an int in range(parties), and the
//                            indices of one cycle are a permutation of range(parties);
//   [barrier.wait.blocks]    no wait of a cycle returns before the last wait of that cycle was
//                            invoked (every return_ns >= the cycle's max invoke_ns);
//   [barrier.wait.complete]  the party actors have the same number of normal returns, except
//                            that an actor whose later wait has an unknown outcome (killed, torn
//                            down) may have one fewer: a return without a full cycle is an early
//                            release;
//   errors                   a wait raises only BrokenBarrierError or one of `action_errors`
//                            (the kinds the action may raise, spec [barrier.action.raises]).
#pragma once

#include <set>
#include <string>

#include "history.hpp"

namespace mpspec::check {

struct BarrierReport {
  bool ok = true;
  int cycles = 0;           // complete cycles found
  std::string explanation;  // why not ok (clause labels and op ids); empty when ok
};

BarrierReport check_barrier(const mpspec::History& history, const std::string& object, int parties,
                            const std::set<std::string>& action_errors = {});

}  // namespace mpspec::check
