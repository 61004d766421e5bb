// The sequential model of Lock (spec/sync/lock.md): a non-recursive lock without an owner.
//
// State: `held`. Operations: acquire, release, __enter__ (a blocking acquire that yields True),
// __exit__ (a release), each with its recorded outcome. Every rule of `step` names the clause
// it makes executable; the chapter is the authority, this file its executable form.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "models/model.hpp"

namespace mpspec::model {

struct Lock {
  static constexpr std::string_view kTypeName = "Lock";

  struct State {
    bool held = false;
    friend bool operator==(const State&, const State&) = default;
  };

  enum class Method { kAcquire, kRelease, kEnter, kExit };

  // acquire/__enter__ return a bool; release/__exit__ return None (std::nullopt).
  using Outcome = model::Outcome<std::optional<bool>>;

  struct Op {
    Method method = Method::kAcquire;
    bool block = true;              // acquire only
    std::optional<double> timeout;  // acquire only; nullopt is Python's None
    Outcome outcome = Unknown{};
    friend bool operator==(const Op&, const Op&) = default;
  };

  // A timeout above this many seconds (or not finite) may be "too large for the platform's
  // clock" ([lock.acquire.timeout.nonfinite]): about three years, far above any timeout a test
  // waits for, and below what a 32-bit time_t can add to the current time.
  static constexpr double kMayOverflowTimeout = 1e8;

  // [lock.construct.unlocked] Lock() is free.
  static State init() { return State{false}; }

  static std::vector<State> step(const State& s, const Op& op) {
    const State free{false}, held{true};
    const bool acquiring = op.method == Method::kAcquire || op.method == Method::kEnter;

    if (std::holds_alternative<Unknown>(op.outcome)) {
      // [lock.kill.waiter] [lock.kill.holder] A call whose actor was killed may or may not have
      // taken effect; killing never releases the lock on the dead actor's behalf.
      if (acquiring) return s.held ? std::vector<State>{s} : std::vector<State>{s, held};
      return s.held ? std::vector<State>{s, free} : std::vector<State>{s};
    }

    if (const auto* r = std::get_if<Raised>(&op.outcome)) {
      if (op.method == Method::kRelease || op.method == Method::kExit) {
        // [lock.release.unheld] release (and __exit__, which releases) of a free lock raises
        // ValueError and leaves it free.
        if (r->kind == "ValueError" && !s.held) return {s};
        return {};
      }
      // [lock.acquire.timeout.nonfinite] (MAY) a timeout that is not finite or too large for the
      // platform's clock may raise ValueError, OverflowError or OSError; nothing changes.
      if (op.method == Method::kAcquire && may_overflow(op.timeout) &&
          (r->kind == "ValueError" || r->kind == "OverflowError" || r->kind == "OSError")) {
        return {s};
      }
      // Any other error of acquire, __enter__ or release is illegal.
      return {};
    }

    const auto& value = std::get<Returned<std::optional<bool>>>(op.outcome).value;
    if (acquiring) {
      if (!value) return {};  // acquire and __enter__ return a bool, never None
      if (*value) {
        // [lock.acquire.free] [lock.acquire.exclusive] [lock.acquire.wakes]
        // [lock.acquire.timeout.success] [lock.context.enter] True only by taking a free lock.
        if (!s.held) return {held};
        return {};
      }
      // False: the call gave up. No spurious failure: legal only while the lock is held.
      // [lock.context.enter] __enter__ never returns False.
      // [lock.acquire.blocks] [lock.acquire.timeout.none] block=True, timeout=None never does.
      if (op.method == Method::kEnter) return {};
      if (op.block && !op.timeout) return {};
      // [lock.acquire.nonblocking] [lock.acquire.nonblocking.timeout_ignored] block=False;
      // [lock.acquire.timeout.expires] [lock.acquire.timeout.zero]
      // [lock.acquire.timeout.negative] a timed acquire; [lock.acquire.not_reentrant] also when
      // the caller is the holder.
      if (s.held) return {s};
      return {};
    }

    // release / __exit__ returned.
    // [lock.release.held] [lock.release.other_thread] [lock.release.other_process]
    // [lock.kill.release_by_survivor] [lock.context.exit] release frees a held lock, whoever
    // calls it, and returns None. [lock.release.concurrent] Of concurrent releases of a held
    // lock, only the first to take effect returns: the others find it free and must raise.
    if (value) return {};  // release returns None, never a bool
    if (s.held) return {free};
    return {};  // [lock.release.unheld] a free lock's release raises instead
  }

  static std::uint64_t hash(const State& s) {
    return s.held ? 0x9e3779b97f4a7c15ULL : 0x2545f4914f6cdd1dULL;
  }

  static std::string describe(const State& s) { return s.held ? "held" : "free"; }

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
        if (op.timeout) out += std::string(sep) + "timeout=" + format_number(*op.timeout);
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
    if (std::holds_alternative<Unknown>(op.outcome)) return out + " -> ? (outcome unknown)";
    if (const auto* r = std::get_if<Raised>(&op.outcome)) return out + " raised " + r->kind;
    const auto& value = std::get<Returned<std::optional<bool>>>(op.outcome).value;
    return out + " -> " + (!value ? "None" : *value ? "True" : "False");
  }

 private:
  static bool may_overflow(const std::optional<double>& timeout) {
    return timeout && (!std::isfinite(*timeout) || *timeout > kMayOverflowTimeout);
  }

  static std::string format_number(double x) {
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, x);
    return std::string(buf, res.ptr);
  }
};

static_assert(Model<Lock>);

}  // namespace mpspec::model
