// The sequential models of Semaphore and BoundedSemaphore (spec/sync/semaphore.md,
// spec/sync/bounded_semaphore.md): a counter without an owner.
//
// A history does not record constructor arguments, so the model does not know the initial
// value. It tracks it symbolically: the value is `initial + delta`, where `delta` is the net
// effect of the operations so far and `initial` is only known to lie in [lo, hi]. Each
// outcome narrows the interval (a successful acquire needs value >= 1; a failed one, or
// get_value, pins the value exactly); an empty interval makes the step illegal. For a
// BoundedSemaphore the bound is the initial value, so its release rule needs only `delta`
// (value == bound exactly when delta == 0). Every rule of `step` names its clause.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "models/model.hpp"

namespace mpspec::model {

template <bool Bounded>
struct SemaphoreModel {
  static constexpr std::string_view kTypeName = Bounded ? "BoundedSemaphore" : "Semaphore";

  struct State {
    std::int64_t delta = 0;                                      // value = initial + delta
    std::int64_t lo = 0;                                         // initial >= lo
    std::int64_t hi = std::numeric_limits<std::int64_t>::max();  // initial <= hi
    friend bool operator==(const State&, const State&) = default;
  };

  enum class Method { kAcquire, kRelease, kEnter, kExit, kGetValue };

  // acquire/__enter__ return a bool, release/__exit__ None, get_value an int.
  using Value = std::variant<std::monostate, bool, std::int64_t>;
  using Outcome = model::Outcome<Value>;

  struct Op {
    Method method = Method::kAcquire;
    bool block = true;              // acquire only
    std::optional<double> timeout;  // acquire only
    Outcome outcome = Unknown{};
    friend bool operator==(const Op&, const Op&) = default;
  };

  static constexpr double kMayOverflowTimeout = 1e8;

  // [semaphore.construct.value] the initial value is the constructor's (unknown here).
  static State init() { return State{}; }

  static std::vector<State> step(const State& s, const Op& op) {
    const bool acquiring = op.method == Method::kAcquire || op.method == Method::kEnter;
    const bool releasing = op.method == Method::kRelease || op.method == Method::kExit;

    if (std::holds_alternative<Unknown>(op.outcome)) {
      std::vector<State> out{s};
      if (acquiring) {
        if (auto t = take(s)) out.push_back(*t);
      } else if (releasing) {
        if (auto r = give(s)) out.push_back(*r);
      }
      return out;
    }

    if (const auto* r = std::get_if<Raised>(&op.outcome)) {
      if (releasing) {
        // [bounded_semaphore.release.above_bound] a release that would exceed the initial value
        // raises ValueError and changes nothing. A Semaphore has no bound.
        if (Bounded && r->kind == "ValueError" && s.delta == 0) return {s};
        return {};
      }
      if (op.method == Method::kGetValue) {
        // [semaphore.get_value.unsupported] (conditional) a platform without sem_getvalue.
        if (r->kind == "NotImplementedError") return {s};
        return {};
      }
      // [semaphore.acquire.timeout.nonfinite] as Lock.
      if (op.method == Method::kAcquire && op.timeout &&
          (!std::isfinite(*op.timeout) || *op.timeout > kMayOverflowTimeout) &&
          (r->kind == "ValueError" || r->kind == "OverflowError" || r->kind == "OSError")) {
        return {s};
      }
      return {};
    }

    const Value& v = std::get<Returned<Value>>(op.outcome).value;
    if (acquiring) {
      const bool* b = std::get_if<bool>(&v);
      if (!b) return {};
      if (*b) {
        // [semaphore.acquire.positive] [semaphore.acquire.decrements] [semaphore.acquire.wakes]
        // True by taking one unit of a positive value.
        if (auto t = take(s)) return {*t};
        return {};
      }
      // False only when the value is 0, and never from __enter__ or an untimed blocking call
      // ([semaphore.acquire.blocks] [semaphore.acquire.nonblocking]
      // [semaphore.acquire.timeout.expires]).
      if (op.method == Method::kEnter || (op.block && !op.timeout)) return {};
      if (auto z = pin(s, 0)) return {*z};
      return {};
    }
    if (releasing) {
      // [semaphore.release.increments] [semaphore.release.above_initial]
      // [bounded_semaphore.release.below_bound] release adds one unit and returns None.
      if (!std::holds_alternative<std::monostate>(v)) return {};
      if (auto r = give(s)) return {*r};
      return {};
    }
    // [semaphore.get_value.exact] get_value returns the current value.
    const std::int64_t* n = std::get_if<std::int64_t>(&v);
    if (!n) return {};
    if (auto p = pin(s, *n)) return {*p};
    return {};
  }

  static std::uint64_t hash(const State& s) {
    return static_cast<std::uint64_t>(s.delta) * 0x9e3779b97f4a7c15ULL ^
           static_cast<std::uint64_t>(s.lo) * 0xbf58476d1ce4e5b9ULL ^
           static_cast<std::uint64_t>(s.hi) * 0x94d049bb133111ebULL;
  }

  static std::string describe(const State& s) {
    if (s.lo == s.hi) return "value " + std::to_string(s.lo + s.delta);
    std::string out = "value initial";
    if (s.delta != 0) out += (s.delta > 0 ? "+" : "") + std::to_string(s.delta);
    out += " with initial >= " + std::to_string(s.lo);
    if (s.hi != std::numeric_limits<std::int64_t>::max()) out += " and <= " + std::to_string(s.hi);
    return out;
  }

  static std::string describe(const Op& op) {
    std::string out;
    switch (op.method) {
      case Method::kAcquire: {
        out = "acquire(";
        const char* sep = "";
        if (!op.block) {
          out += "block=False";
          sep = ", ";
        }
        if (op.timeout) {
          char buf[64];
          auto res = std::to_chars(buf, buf + sizeof buf, *op.timeout);
          out += std::string(sep) + "timeout=" + std::string(buf, res.ptr);
        }
        out += ")";
        break;
      }
      case Method::kRelease:
        out = "release()";
        break;
      case Method::kEnter:
        out = "__enter__()";
        break;
      case Method::kExit:
        out = "__exit__()";
        break;
      case Method::kGetValue:
        out = "get_value()";
        break;
    }
    if (std::holds_alternative<Unknown>(op.outcome)) return out + " -> ? (outcome unknown)";
    if (const auto* r = std::get_if<Raised>(&op.outcome)) return out + " raised " + r->kind;
    const Value& v = std::get<Returned<Value>>(op.outcome).value;
    if (const bool* b = std::get_if<bool>(&v)) return out + " -> " + (*b ? "True" : "False");
    if (const std::int64_t* n = std::get_if<std::int64_t>(&v)) {
      return out + " -> " + std::to_string(*n);
    }
    return out + " -> None";
  }

 private:
  // The state after taking one unit, if the value can be >= 1.
  static std::optional<State> take(const State& s) {
    const std::int64_t lo = std::max(s.lo, 1 - s.delta);
    if (lo > s.hi) return std::nullopt;
    return State{s.delta - 1, lo, s.hi};
  }
  // The state after adding one unit; a BoundedSemaphore needs the value below its bound.
  static std::optional<State> give(const State& s) {
    if (Bounded && s.delta >= 0) return std::nullopt;
    return State{s.delta + 1, s.lo, s.hi};
  }
  // The state if the value is exactly `value` now.
  static std::optional<State> pin(const State& s, std::int64_t value) {
    const std::int64_t initial = value - s.delta;
    if (initial < s.lo || initial > s.hi) return std::nullopt;
    return State{s.delta, initial, initial};
  }
};

using Semaphore = SemaphoreModel<false>;
using BoundedSemaphore = SemaphoreModel<true>;

static_assert(Model<Semaphore>);
static_assert(Model<BoundedSemaphore>);

}  // namespace mpspec::model
