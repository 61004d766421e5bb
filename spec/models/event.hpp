// The sequential model of Event (spec/sync/event.md): a flag that callers can wait on.
//
// State: `set`, a boolean. Operations: is_set, set, clear, wait(timeout), each with its recorded
// outcome. A wait is a blocking call whose linearization point is where it observes the flag:
// True only where the flag is set, False only where it is clear (and only for a finite
// timeout). Each rule names the clause it makes executable.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "models/model.hpp"

namespace mpspec::model {

struct Event {
  static constexpr std::string_view kTypeName = "Event";

  struct State {
    bool set = false;
    friend bool operator==(const State&, const State&) = default;
  };

  enum class Method { kIsSet, kSet, kClear, kWait };

  // is_set and wait return a bool; set and clear return None (std::nullopt).
  using Outcome = model::Outcome<std::optional<bool>>;

  struct Op {
    Method method = Method::kIsSet;
    std::optional<double> timeout;  // wait only; nullopt is Python's None
    Outcome outcome = Unknown{};
    friend bool operator==(const Op&, const Op&) = default;
  };

  // [event.construct.clear] Event() starts clear.
  static State init() { return State{false}; }

  static std::vector<State> step(const State& s, const Op& op) {
    const State up{true}, down{false};
    if (std::holds_alternative<Unknown>(op.outcome)) {
      // A killed actor's call may or may not have taken effect. [event.kill.waiter] A killed
      // waiter changes nothing.
      if (op.method == Method::kSet)
        return s.set ? std::vector<State>{s} : std::vector<State>{s, up};
      if (op.method == Method::kClear)
        return s.set ? std::vector<State>{s, down} : std::vector<State>{s};
      return {s};
    }
    // No Event method raises for the arguments the suite sends.
    if (std::holds_alternative<Raised>(op.outcome)) return {};

    const auto& value = std::get<Returned<std::optional<bool>>>(op.outcome).value;
    switch (op.method) {
      case Method::kIsSet:
        // [event.is_set] is_set returns the flag.
        if (!value || *value != s.set) return {};
        return {s};
      case Method::kSet:
        // [event.set] [event.set.idempotent] set raises the flag (set or not) and returns None.
        if (value) return {};
        return {up};
      case Method::kClear:
        // [event.clear] clear lowers the flag and returns None.
        if (value) return {};
        return {down};
      case Method::kWait:
        if (!value) return {};
        // [event.wait.set] [event.wait.wakes] [event.wait.result] True: the flag was set at the
        // moment the wait ended (or began).
        if (*value) return s.set ? std::vector<State>{s} : std::vector<State>{};
        // [event.wait.timeout] [event.wait.timeout.zero] [event.wait.result] False: the flag
        // was clear when the wait gave up. [event.wait.cleared] (MAY) An untimed wait may also
        // return False, after a set() that a clear() undid before the waiter looked again: the
        // model cannot see whether a set happened during the call, so it accepts False from an
        // untimed wait wherever the flag is clear; [event.wait.blocks] (no set, no return) is
        // checked by the scenario tests.
        return s.set ? std::vector<State>{} : std::vector<State>{s};
    }
    return {};
  }

  static std::uint64_t hash(const State& s) {
    return s.set ? 0x9e3779b97f4a7c15ULL : 0x2545f4914f6cdd1dULL;
  }

  static std::string describe(const State& s) { return s.set ? "set" : "clear"; }

  static std::string describe(const Op& op) {
    std::string out;
    switch (op.method) {
      case Method::kIsSet:
        out = "is_set()";
        break;
      case Method::kSet:
        out = "set()";
        break;
      case Method::kClear:
        out = "clear()";
        break;
      case Method::kWait: {
        out = "wait(";
        if (op.timeout) {
          char buf[64];
          auto res = std::to_chars(buf, buf + sizeof buf, *op.timeout);
          out += "timeout=" + std::string(buf, res.ptr);
        }
        out += ")";
        break;
      }
    }
    if (std::holds_alternative<Unknown>(op.outcome)) return out + " -> ? (outcome unknown)";
    if (const auto* r = std::get_if<Raised>(&op.outcome)) return out + " raised " + r->kind;
    const auto& value = std::get<Returned<std::optional<bool>>>(op.outcome).value;
    return out + " -> " + (!value ? "None" : *value ? "True" : "False");
  }
};

static_assert(Model<Event>);

}  // namespace mpspec::model
