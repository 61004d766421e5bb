// The checker's entry point: is a recorded history linearizable with respect to the spec's
// models (spec/models/)?
//
//   check::Result r = check::check_history(history, std::chrono::seconds(10));
//   if (r.verdict != check::Verdict::kLinearizable) std::cerr << r.summary();
//
// The history is partitioned by object; each object's operations are translated into its
// type's model (a per-type table in check.cpp) and searched for a linearization
// (linearizability.hpp). Verdicts:
//   kLinearizable     every object's sub-history is linearizable;
//   kNotLinearizable  at least one object's is not (a definite violation);
//   kUnknown          no violation found, but the budget ran out on at least one object.
//                     Never counted as a pass: the suite reports UNRESOLVED.
//
// Input problems throw std::invalid_argument with a message naming the op: an object of a type
// that has no model, an op on an undeclared object, duplicate op ids, a completed op without
// return_ns, a method the type does not have or malformed arguments. These are faults of
// whoever wrote the history. An outcome outside the method's result domain (acquire returning
// 3) is the backend's fault: it makes the history not linearizable, with an explanation.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "history.hpp"
#include "linearizability.hpp"  // enum class Verdict { kLinearizable, kNotLinearizable, kUnknown }

namespace mpspec::check {

struct ObjectResult {
  std::string object, type;
  Verdict verdict = Verdict::kUnknown;
  // Linearizable: a linearization (op ids in order; `info` ops that took no effect left out).
  // Otherwise: the longest linearizable prefix the search found.
  std::vector<int> longest_prefix;
  std::optional<int> failing_op;  // not linearizable: the op at which the longest attempt broke
  std::string explanation;        // for people: the verdict in the model's words
};

struct Result {
  Verdict verdict = Verdict::kUnknown;
  std::vector<ObjectResult> objects;  // one per declared object, by name
  // Multi-line report: the verdict, then each object's verdict and explanation.
  std::string summary() const;
};

// Checks every object's sub-history within `budget` (wall time, shared by all objects).
Result check_history(const mpspec::History& history,
                     std::chrono::milliseconds budget = std::chrono::seconds(10));

const char* to_string(Verdict v);  // "linearizable", "not linearizable", "unknown"

}  // namespace mpspec::check
