// The checkers of the queue chapters (spec/queue/queue.md, simple_queue.md, joinable_queue.md).
//
// Two levels, as the chapters' profiles:
//
// strict: linearizability against the FIFO model (spec/models/queue.hpp), [queue.linearizable],
//   [simple_queue.linearizable] and [joinable_queue.linearizable] (the FIFO model with the count
//   of unfinished tasks). check_history() does it for every object of type "Queue",
//   "SimpleQueue" or "JoinableQueue" without knowing maxsize (the model then keeps it symbolic: the verdict is
//   "linearizable for some maxsize"); a test that knows the bound calls
//
//     check::ObjectResult r = check::check_queue_linearizable(s.history(), "Q", {.maxsize = 3});
//     EXPECT_EQ(r.verdict, check::Verdict::kLinearizable) << r.explanation;
//
// core: the invariants of queue.md §6 and §10, which CPython meets although its queue is not
//   linearizable. Values must be unique (one put per value) for the order check to judge them;
//   the other checks count copies.
//
//     check::QueueReport r = check::check_queue_invariants(s.history(), "Q",
//                                                          {.maxsize = 3, .drained = true});
//     EXPECT_TRUE(r.ok) << r.explanation;
//
//   Checked, with the labels of the object's type (queue.* for Queue and JoinableQueue,
//   simple_queue.* for SimpleQueue):
//   [queue.no_duplication]   a value is returned by no more gets than puts carried it (puts that
//                            did not raise: returned, or outcome unknown);
//   [queue.no_invention]     each get returning v can be matched to its own put of v invoked no
//                            later than the get returned;
//   [queue.order.producer]   for puts p1, p2 of one process with p1 returned before p2 was
//                            invoked, and gets g1, g2 that returned their values, g1 is not
//                            invoked after g2 returned (values put and got exactly once);
//   [queue.capacity.bound]   with maxsize > 0: at no instant have more than maxsize puts returned
//                            beyond the gets invoked that did not raise;
//   [queue.capacity.full_legal] with maxsize known: a put raising Full overlaps an instant at
//                            which the puts invoked that did not raise, minus the gets that had
//                            returned an item, reach maxsize (32767 for an unbounded queue);
//   [queue.no_loss]          when `drained`: every committed put's value was got, except as many
//                            as there are gets with an unknown outcome (each may have taken one).
//                            For Queue and JoinableQueue only when no actor was killed
//                            ([queue.exit.abrupt], [queue.kill.corrupt]); for SimpleQueue also
//                            after kills ([simple_queue.no_loss]).
//   `Empty` results and sizes are not judged ([queue.get.lag], [queue.size.approximate]).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "check.hpp"
#include "history.hpp"
#include "linearizability.hpp"

namespace mpspec::check {

// ------------------------------------------------------------------------------- strict

struct QueueLinearizabilityOptions {
  // The constructor's maxsize (0 or less: unbounded); nullopt: unknown, kept symbolic. Ignored
  // for a SimpleQueue.
  std::optional<std::int64_t> maxsize;
  std::chrono::milliseconds budget = std::chrono::seconds(10);
  // Search with the FIFO hints of spec/models/queue.hpp (same verdicts, far fewer states). Off:
  // the plain model, for the checker's self-tests.
  bool hints = true;
};

// Linearizability of the calls on `object` (a Queue, SimpleQueue or JoinableQueue of `history`) with respect to
// the FIFO model. Throws std::invalid_argument as check_history does (an unknown object or type,
// a method the type does not have, malformed arguments).
ObjectResult check_queue_linearizable(const History& history, const std::string& object,
                                      const QueueLinearizabilityOptions& options = {});

// The rows of check_history's type table (check.cpp): maxsize unknown.
ObjectResult check_queue_object(const std::string& object, const std::vector<const Operation*>& ops,
                                const SearchLimits& limits);
ObjectResult check_simple_queue_object(const std::string& object,
                                       const std::vector<const Operation*>& ops,
                                       const SearchLimits& limits);
ObjectResult check_joinable_queue_object(const std::string& object,
                                         const std::vector<const Operation*>& ops,
                                         const SearchLimits& limits);

// --------------------------------------------------------------------------------- core

struct QueueCheckOptions {
  // The constructor's maxsize (0 or less: unbounded); nullopt: unknown, and the two capacity
  // checks are skipped. Ignored for a SimpleQueue.
  std::optional<std::int64_t> maxsize;
  // The history ended quiescent with every committed item that the queue still held got, e.g. by
  // a final drain with gets of timeout class `long` until one raised Empty ([queue.no_loss]).
  bool drained = false;
  // The actors killed during the run (the Scenario's kill() calls).
  std::set<std::string> killed;
};

struct QueueReport {
  bool ok = true;
  std::vector<std::string> violations;  // one per violation, each beginning with its clause
  std::vector<std::string> skipped;     // checks not made, and why
  std::string explanation;              // the violations, one per line; empty when ok
  int committed = 0;                    // puts that returned without error
  int got = 0;                          // gets that returned an item
};

// Judges the calls on `object` (a Queue, SimpleQueue or JoinableQueue of `history`) by the core
// invariants above. Throws std::invalid_argument for an unknown object.
QueueReport check_queue_invariants(const History& history, const std::string& object,
                                   const QueueCheckOptions& options = {});

}  // namespace mpspec::check
