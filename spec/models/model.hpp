// The shape every sequential model of the spec has (spec/README.md §9).
//
// A model makes the history-level clauses of one chapter executable. It is a class with static
// members only, standard C++ only (no dependency on anything in this repository or outside):
//
//   struct Lock {
//     static constexpr std::string_view kTypeName = "Lock";   // the protocol's type name
//     struct State { ... };             // copyable, equality-comparable value
//     struct Op { ... };                // one call: method, arguments AND its observed outcome
//     static State init();              // the state of a freshly constructed object
//     static std::vector<State> step(const State&, const Op&);
//     static std::uint64_t hash(const State&);   // agrees with ==
//     static std::string describe(const Op&);    // "acquire(block=False) -> True"
//     static std::string describe(const State&); // "held"
//   };
//
// `step(s, op)` is pure. It returns every state the object may be in after `op` took effect
// in state `s` and produced the outcome recorded in `op`:
//   - an empty vector: the operation with that outcome is illegal in `s` (the linearizability
//     checker then tries another order);
//   - one state: the usual deterministic case;
//   - several states: the outcome does not determine the effect. The main case is an operation
//     whose outcome is unknown (the actor was killed while it ran, status `info`): the step
//     returns the unchanged state and every state the operation could have produced.
// A blocking call's wait is its precondition: `acquire` returning True is a step only from a
// state where the lock is free. A call that gave up (False, Full, Empty) is a step only from a
// state where the resource is unavailable, unless the clause allows spurious failure.
//
// Each rule of `step` carries, in a comment, the clause label it makes executable, so that
// `grep -rn 'lock.release.unheld'` finds the clause, its rule and its tests.
//
// Outcomes: most models describe the recorded outcome with `Outcome<V>` below, V being the
// domain of the method's result (std::optional<bool> for Lock: a bool, or None).
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace mpspec::model {

// The call returned `value` (status `ok`).
template <typename V>
struct Returned {
  V value{};
  friend bool operator==(const Returned&, const Returned&) = default;
};

// The call raised an error of kind `kind` (status `error`; spec/README.md error kinds).
struct Raised {
  std::string kind;
  friend bool operator==(const Raised&, const Raised&) = default;
};

// The outcome is unknown (status `info`): the call may or may not have taken effect.
struct Unknown {
  friend bool operator==(const Unknown&, const Unknown&) = default;
};

template <typename V>
using Outcome = std::variant<Returned<V>, Raised, Unknown>;

// A sequential model of one type of the spec. See the comment at the top of this file.
template <typename M>
concept Model = requires(const typename M::State& state, const typename M::Op& op) {
  requires std::copyable<typename M::State>;
  requires std::equality_comparable<typename M::State>;
  requires std::copyable<typename M::Op>;
  { M::kTypeName } -> std::convertible_to<std::string_view>;
  { M::init() } -> std::same_as<typename M::State>;
  { M::step(state, op) } -> std::same_as<std::vector<typename M::State>>;
  { M::hash(state) } -> std::same_as<std::uint64_t>;
  { M::describe(op) } -> std::convertible_to<std::string>;
  { M::describe(state) } -> std::convertible_to<std::string>;
};

}  // namespace mpspec::model
