// The sequential model of RLock (spec/sync/rlock.md): a recursive lock owned by one thread of
// one process.
//
// State: the owner ("" when free; otherwise the history's "actor/thread" name of the owning
// thread) and the owner's recursion depth. Each Op carries who made the call, since the
// outcome of acquire and release depends on it. Every rule of `step` names its clause.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "models/model.hpp"

namespace mpspec::model {

struct RLock {
  static constexpr std::string_view kTypeName = "RLock";

  struct State {
    std::string owner;  // "" when free
    std::uint32_t depth = 0;
    friend bool operator==(const State&, const State&) = default;
  };

  enum class Method { kAcquire, kRelease, kEnter, kExit };

  // acquire/__enter__ return a bool; release/__exit__ return None (std::nullopt).
  using Outcome = model::Outcome<std::optional<bool>>;

  struct Op {
    Method method = Method::kAcquire;
    std::string who;                // the calling thread, "actor/thread"
    bool block = true;              // acquire only
    std::optional<double> timeout;  // acquire only; nullopt is Python's None
    Outcome outcome = Unknown{};
    friend bool operator==(const Op&, const Op&) = default;
  };

  // As Lock: a timeout that may overflow the platform's clock may raise instead.
  static constexpr double kMayOverflowTimeout = 1e8;

  // [rlock.construct.unlocked] RLock() is free.
  static State init() { return State{}; }

  static std::vector<State> step(const State& s, const Op& op) {
    const bool acquiring = op.method == Method::kAcquire || op.method == Method::kEnter;
    const bool mine = !s.owner.empty() && s.owner == op.who;
    const State taken = mine ? State{s.owner, s.depth + 1} : State{op.who, 1};
    const State dropped = s.depth <= 1 ? State{} : State{s.owner, s.depth - 1};

    if (std::holds_alternative<Unknown>(op.outcome)) {
      // [rlock.kill.holder] A call whose actor was killed may or may not have taken effect.
      // An acquire may also have taken the lock from a dead owner ([rlock.kill.owner_died]).
      if (acquiring) return {s, s.owner.empty() || mine ? taken : State{op.who, 1}};
      return mine ? std::vector<State>{s, dropped} : std::vector<State>{s};
    }

    if (const auto* r = std::get_if<Raised>(&op.outcome)) {
      if (!acquiring) {
        // [rlock.release.unowned] [rlock.release.other_thread] [rlock.release.other_process]
        // release by a thread that does not own the lock (also of a free lock) raises
        // AssertionError and changes nothing.
        if (r->kind == "AssertionError" && !mine) return {s};
        return {};
      }
      // [rlock.kill.owner_died] (strict) an acquire of a lock whose owner died raises OwnerDied
      // and leaves the caller owning the lock at depth 1. Only possible while another thread
      // is recorded as the owner.
      if (r->kind == "OwnerDied" && !s.owner.empty() && !mine) return {State{op.who, 1}};
      // [rlock.acquire.timeout.nonfinite] as Lock.
      if (op.method == Method::kAcquire && op.timeout &&
          (!std::isfinite(*op.timeout) || *op.timeout > kMayOverflowTimeout) &&
          (r->kind == "ValueError" || r->kind == "OverflowError" || r->kind == "OSError")) {
        return {s};
      }
      return {};
    }

    const auto& value = std::get<Returned<std::optional<bool>>>(op.outcome).value;
    if (acquiring) {
      if (!value) return {};
      if (*value) {
        // [rlock.acquire.free] [rlock.acquire.exclusive] [rlock.acquire.recursive]
        // [rlock.acquire.wakes] True by taking a free lock or one level more of one's own.
        if (s.owner.empty() || mine) return {taken};
        return {};
      }
      // False: gave up. [rlock.context.enter] never; [rlock.acquire.blocks] not untimed;
      // [rlock.acquire.recursive] never when the caller owns it; otherwise only while another
      // thread owns it ([rlock.acquire.nonblocking] [rlock.acquire.timeout.expires]).
      if (op.method == Method::kEnter || (op.block && !op.timeout) || mine) return {};
      if (!s.owner.empty()) return {s};
      return {};
    }
    // [rlock.release.owner] [rlock.release.depth] [rlock.context.exit] release by the owner
    // drops one level and returns None; the lock is free when the depth reaches 0.
    if (value || !mine) return {};
    return {dropped};
  }

  static std::uint64_t hash(const State& s) {
    return std::hash<std::string>{}(s.owner) * 0x9e3779b97f4a7c15ULL + s.depth;
  }

  static std::string describe(const State& s) {
    if (s.owner.empty()) return "free";
    return "owned by " + s.owner + " (depth " + std::to_string(s.depth) + ")";
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
    }
    out = op.who + ": " + out;
    if (std::holds_alternative<Unknown>(op.outcome)) return out + " -> ? (outcome unknown)";
    if (const auto* r = std::get_if<Raised>(&op.outcome)) return out + " raised " + r->kind;
    const auto& value = std::get<Returned<std::optional<bool>>>(op.outcome).value;
    return out + " -> " + (!value ? "None" : *value ? "True" : "False");
  }
};

static_assert(Model<RLock>);

}  // namespace mpspec::model
