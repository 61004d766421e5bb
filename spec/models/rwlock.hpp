// The sequential model of RWLock (spec/rwlock/rwlock.md): a reader-writer lock without owners.
//
// State: the number of read holds and whether a writer holds it. Operations: acquire_read,
// acquire_write (each with block/timeout and a bool outcome), release_read, release_write.
// Every rule of `step` names the clause it makes executable.
//
// Writer preference ([rwlock.fair.writer_preferred], strict) lets a read acquire give up while
// the lock is only read-held, because a writer waits; a sequential model does not see waiting
// writers, so it accepts a failed read acquire in any state where an acquire_write could be
// pending, that is whenever readers hold the lock. Tests of the fairness clause check it from
// outcomes, not with this model.
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

struct RWLock {
  static constexpr std::string_view kTypeName = "RWLock";

  struct State {
    std::int64_t readers = 0;
    bool writer = false;
    friend bool operator==(const State&, const State&) = default;
  };

  enum class Method { kAcquireRead, kAcquireWrite, kReleaseRead, kReleaseWrite };

  using Outcome = model::Outcome<std::optional<bool>>;

  struct Op {
    Method method = Method::kAcquireRead;
    bool block = true;              // acquires only
    std::optional<double> timeout;  // acquires only
    Outcome outcome = Unknown{};
    friend bool operator==(const Op&, const Op&) = default;
  };

  // [rwlock.construct.free]
  static State init() { return State{}; }

  static std::vector<State> step(const State& s, const Op& op) {
    const bool acquiring = op.method == Method::kAcquireRead || op.method == Method::kAcquireWrite;
    const bool read = op.method == Method::kAcquireRead || op.method == Method::kReleaseRead;

    if (std::holds_alternative<Unknown>(op.outcome)) {
      // A killed actor's call may or may not have taken effect ([rwlock.kill.waiter]
      // [rwlock.kill.holder]).
      std::vector<State> out{s};
      if (acquiring) {
        if (read && !s.writer) out.push_back(State{s.readers + 1, false});
        if (!read && !s.writer && s.readers == 0) out.push_back(State{0, true});
      } else {
        if (read && s.readers > 0) out.push_back(State{s.readers - 1, s.writer});
        if (!read && s.writer) out.push_back(State{s.readers, false});
      }
      return out;
    }

    if (const auto* r = std::get_if<Raised>(&op.outcome)) {
      // [rwlock.release.read.unheld] [rwlock.release.write.unheld] release of a mode nobody
      // holds raises ValueError and changes nothing. Any other error is illegal.
      if (r->kind != "ValueError") return {};
      if (op.method == Method::kReleaseRead && s.readers == 0) return {s};
      if (op.method == Method::kReleaseWrite && !s.writer) return {s};
      return {};
    }

    const auto& value = std::get<Returned<std::optional<bool>>>(op.outcome).value;
    if (acquiring) {
      if (!value) return {};  // acquires return a bool
      if (*value) {
        // [rwlock.read.shared] [rwlock.write.exclusive] [rwlock.write.excludes_readers]
        // [rwlock.safety] [rwlock.acquire.wakes] True only when the mode is available.
        if (read) {
          if (s.writer) return {};
          return {State{s.readers + 1, false}};
        }
        if (s.writer || s.readers > 0) return {};
        return {State{0, true}};
      }
      // False: gave up. [rwlock.acquire.blocks] never without a limit.
      if (op.block && !op.timeout) return {};
      // [rwlock.acquire.nonblocking] [rwlock.acquire.timeout] [rwlock.acquire.no_upgrade]
      // [rwlock.acquire.not_reentrant] legal only while the mode is unavailable; a read may
      // also give up while readers hold it (a writer may be waiting: writer preference).
      if (read ? (s.writer || s.readers > 0) : (s.writer || s.readers > 0)) return {s};
      return {};
    }

    // [rwlock.release.read] [rwlock.release.write] [rwlock.release.other_process]
    if (value) return {};  // releases return None
    if (read) {
      if (s.readers == 0) return {};
      return {State{s.readers - 1, s.writer}};
    }
    if (!s.writer) return {};
    return {State{s.readers, false}};
  }

  static std::uint64_t hash(const State& s) {
    return static_cast<std::uint64_t>(s.readers) * 0x9e3779b97f4a7c15ULL ^ (s.writer ? 1 : 0);
  }

  static std::string describe(const State& s) {
    if (s.writer) return "write-held";
    if (s.readers == 0) return "free";
    return "read-held x" + std::to_string(s.readers);
  }

  static std::string describe(const Op& op) {
    std::string out;
    switch (op.method) {
      case Method::kAcquireRead:
        out = "acquire_read(";
        break;
      case Method::kAcquireWrite:
        out = "acquire_write(";
        break;
      case Method::kReleaseRead:
        out = "release_read(";
        break;
      case Method::kReleaseWrite:
        out = "release_write(";
        break;
    }
    if (op.method == Method::kAcquireRead || op.method == Method::kAcquireWrite) {
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
    }
    out += ")";
    if (std::holds_alternative<Unknown>(op.outcome)) return out + " -> ? (outcome unknown)";
    if (const auto* r = std::get_if<Raised>(&op.outcome)) return out + " raised " + r->kind;
    const auto& value = std::get<Returned<std::optional<bool>>>(op.outcome).value;
    return out + " -> " + (!value ? "None" : *value ? "True" : "False");
  }
};

static_assert(Model<RWLock>);

}  // namespace mpspec::model
