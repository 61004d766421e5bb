// Kill injection for the queue chapters (strict): spec/queue/queue.md §8 ("How the kill clauses
// are judged"), simple_queue.md §7, joinable_queue.md §6.
//
// One test runs batches on Queue, SimpleQueue and JoinableQueue in turn. A batch is one setup:
// producers put values of their own (blocking puts; a Queue(2) fills up, so producers also wait),
// consumers get (blocking; a JoinableQueue consumer calls task_done after each item), every actor
// always with a call in flight. At seeded random instants the test kills a random live producer
// or consumer with the protocol's `kill` (SIGKILL): each kill is one trial, whether it lands in
// a running put, get or task_done or between two calls. After the last kill the survivors finish
// their calls (a survivor actor puts a filler value for each consumer left waiting), a survivor
// drains the queue, and for a JoinableQueue brings the count to 0 with task_done and joins.
// Every call that need not wait is bounded by `long` ([queue.kill.usable]: a wedged queue ends the
// test as FAIL, not as a hang).
//
// The whole history, killed calls as `info`, then goes to the linearizability checker with the
// FIFO model (the count of unfinished tasks for a JoinableQueue). Lost and duplicated items are
// also counted directly: a value returned by two gets is duplicated; a committed value that no
// get returned is lost unless a killed get can account for it (at most one item per killed get).
// The test prints the number of trials, how many kills landed in a running call, and the lost
// and duplicated counts, and records them as the gtest properties kill_trials, kill_hits,
// kill_lost, kill_duplicated.
//
// Reproducible: the instants and victims come from a seeded generator (MPSPEC_KILL_SEED, printed);
// which call a kill lands in still depends on the machine's timing.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "queue_check.hpp"
#include "scenario.hpp"

namespace mpspec {
namespace {

using timing::long_;

constexpr int kBatchesPerType = 30;
constexpr int kKillsPerBatch = 5;  // 3 types * 30 batches * 5 kills = 450 trials
constexpr int kActors = 6;         // producers and consumers; 2 to 4 of them producers
constexpr int kPutsPerProducer = 30;
constexpr std::int64_t kMaxsize = 2;  // Queue and JoinableQueue

struct Totals {
  int trials = 0;
  int hits = 0;  // kills that landed while the victim had a call running
  std::map<std::string, int> hits_by_method;
  int committed = 0, got = 0, lost = 0, duplicated = 0;
  int batches = 0, not_linearizable = 0, unknown = 0;
};

std::uint64_t seed_from_env() {
  const char* env = std::getenv("MPSPEC_KILL_SEED");
  if (env != nullptr && *env != '\0') return std::strtoull(env, nullptr, 0);
  return 0x6d7073706563ULL;  // fixed default: every run draws the same instants and victims
}

class Batch {
 public:
  Batch(const std::string& type, std::mt19937_64& rng, Totals& totals)
      : type_(type), rng_(rng), totals_(totals) {}

  // Runs one batch; failures are recorded with gtest assertions. Returns false when the queue was
  // found unusable or the history wrong (the test then stops).
  bool run() {
    const bool simple = type_ == "SimpleQueue";
    const bool joinable = type_ == "JoinableQueue";
    Json args = Json::object();
    if (!simple) args["maxsize"] = kMaxsize;
    s_.object("Q", type_, args);
    // Mostly more producers than consumers on a Queue(2): producers wait in put too.
    const int producers = std::uniform_int_distribution<int>(2, 4)(rng_);
    for (int i = 0; i < producers; ++i) add_actor("p" + std::to_string(i), true);
    for (int i = producers; i < kActors; ++i) add_actor("c" + std::to_string(i), false);
    s_.actor("s");
    const std::string why = s_.start();
    if (!why.empty()) {
      ADD_FAILURE() << "setup of a " << type_ << " batch: " << why;
      return false;
    }

    // The kill instants, within a window of a few `yield`s from the start.
    std::uniform_real_distribution<double> when(0.0, 3 * timing::yield());
    std::vector<double> instants;
    for (int k = 0; k < kKillsPerBatch; ++k) instants.push_back(when(rng_));
    std::sort(instants.begin(), instants.end());

    for (auto& [name, a] : actors_) issue(name);
    const auto start = std::chrono::steady_clock::now();
    for (double t : instants) {
      const auto at = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                  std::chrono::duration<double>(t));
      pump_until(at);
      kill_one();
    }
    stopping_ = true;
    if (!finish(simple)) return false;
    if (!drain(simple, joinable)) return false;
    s_.teardown();
    return judge(simple);
  }

 private:
  struct Actor {
    bool producer = false;
    bool alive = true;
    int next_put = 0;
    bool got_item = false;  // JoinableQueue consumer: its next call is task_done
    std::optional<CallId> running;
  };

  void add_actor(const std::string& name, bool producer) {
    s_.actor(name);
    actors_[name].producer = producer;
  }

  void issue(const std::string& name) {
    Actor& a = actors_[name];
    a.running.reset();
    if (!a.alive || stopping_) return;
    if (a.producer) {
      if (a.next_put >= kPutsPerProducer) return;
      const Json v = Json::array({name, a.next_put++});
      a.running = s_.call(name, "Q", "put", Json{{"obj", v}});
      methods_[*a.running] = "put";
    } else if (type_ == "JoinableQueue" && a.got_item) {
      a.got_item = false;
      a.running = s_.call(name, "Q", "task_done");
      methods_[*a.running] = "task_done";
    } else {
      a.running = s_.call(name, "Q", "get");
      methods_[*a.running] = "get";
    }
  }

  // Takes note of a returned call and issues the actor's next one.
  void returned(const std::string& name) {
    Actor& a = actors_[name];
    const CallResult& r = s_.result(*a.running);
    if (!a.producer && type_ == "JoinableQueue" && r.ok() && !r.value.is_null()) a.got_item = true;
    issue(name);
  }

  std::vector<CallId> pending(std::map<CallId, std::string>* owner = nullptr) {
    std::vector<CallId> out;
    for (auto& [name, a] : actors_) {
      if (a.running) {
        out.push_back(*a.running);
        if (owner) (*owner)[*a.running] = name;
      }
    }
    return out;
  }

  void pump_until(std::chrono::steady_clock::time_point at) {
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= at) return;
      std::map<CallId, std::string> owner;
      const std::vector<CallId> ids = pending(&owner);
      if (ids.empty()) return;
      const double left = std::chrono::duration<double>(at - now).count();
      if (s_.await_any(ids, left)) collect(ids, owner);
    }
  }

  // Takes note of every call of `ids` that has returned.
  void collect(const std::vector<CallId>& ids, std::map<CallId, std::string>& owner) {
    for (CallId id : ids) {
      const std::string& name = owner[id];
      if (actors_[name].running == id && s_.returned(id)) returned(name);
    }
  }

  void kill_one() {
    std::vector<std::string> alive;
    for (auto& [name, a] : actors_)
      if (a.alive) alive.push_back(name);
    if (alive.empty()) return;
    std::uniform_int_distribution<std::size_t> pick(0, alive.size() - 1);
    const std::string victim = alive[pick(rng_)];
    Actor& a = actors_[victim];
    s_.kill(victim);
    a.alive = false;
    ++totals_.trials;
    if (a.running) {
      const CallResult& r = s_.result(*a.running);
      if (r.status == OpStatus::kInfo) {
        ++totals_.hits;
        ++totals_.hits_by_method[method_of(*a.running)];
      }
      a.running.reset();
    }
  }

  std::string method_of(CallId id) const {
    auto it = methods_.find(id);
    return it == methods_.end() ? "?" : it->second;
  }

  // The survivors' calls end: a consumer left waiting on an empty queue gets a filler value, a
  // producer left waiting on a full queue (its consumers dead) gets room from the survivor.
  bool finish(bool simple) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(5 * long_()));
    int fillers = 0;
    for (;;) {
      std::map<CallId, std::string> owner;
      const std::vector<CallId> ids = pending(&owner);
      if (ids.empty()) return true;
      if (s_.await_any(ids, timing::yield())) {
        collect(ids, owner);
        continue;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "[queue.kill.usable] " << type_ << ": " << ids.size()
                      << " calls of surviving actors had not returned " << 5 * long_()
                      << " s after the last kill (fillers put: " << fillers << ")";
        return false;
      }
      // Nothing moved for a `yield`: consumers wait on an empty queue, or producers on a full one.
      bool getting = false, putting = false;
      for (CallId id : ids) (method_of(id) == "get" ? getting : putting) = true;
      if (putting && !simple) {
        if (!bounded(s_.call("s", "Q", "get_nowait"), "get_nowait() (making room)")) return false;
      }
      if (getting) {
        const Json v = Json::array({"fill", fillers++});
        const CallId put =
            simple ? s_.call("s", "Q", "put", Json{{"obj", v}})
                   : s_.call("s", "Q", "put", Json{{"obj", v}, {"timeout", timing::small()}});
        if (!bounded(put, "put of a filler")) return false;
      }
    }
  }

  // A survivor takes what is left, then (JoinableQueue) brings the count to 0 and joins.
  bool drain(bool simple, bool joinable) {
    const int limit = kActors * kPutsPerProducer + 1000;
    for (int i = 0; i < limit; ++i) {
      if (simple) {
        const CallId e = s_.call("s", "Q", "empty");
        if (!bounded(e, "empty()")) return false;
        if (s_.result(e).ok(true)) break;
        if (!bounded(s_.call("s", "Q", "get"), "get() on a queue that empty() said holds an item"))
          return false;
      } else {
        const CallId g = s_.call("s", "Q", "get_nowait");
        if (!bounded(g, "get_nowait()")) return false;
        if (s_.result(g).raised("Empty")) break;
      }
    }
    if (!joinable) return true;
    for (int i = 0; i < limit; ++i) {
      const CallId t = s_.call("s", "Q", "task_done");
      if (!bounded(t, "task_done()")) return false;
      if (s_.result(t).raised("ValueError")) break;
    }
    return bounded(s_.call("s", "Q", "join"), "join() on a count brought to 0");
  }

  bool bounded(CallId id, const std::string& what) {
    if (s_.returns_within(id, 2 * long_())) return true;
    ADD_FAILURE() << "[queue.kill.usable] " << type_ << ": " << what
                  << " did not return within 2 * long after kills";
    return false;
  }

  bool judge(bool simple) {
    const History h = s_.history();
    std::map<std::string, int> got;
    std::set<std::string> committed;
    int killed_gets = 0;
    for (const Operation& o : h.ops) {
      if (o.object != "Q") continue;
      if (o.method == "put" && o.status == OpStatus::kOk) committed.insert(o.args["obj"].dump());
      if ((o.method == "get" || o.method == "get_nowait") && o.status == OpStatus::kOk)
        ++got[o.value.dump()];
      if ((o.method == "get" || o.method == "get_nowait") && o.status == OpStatus::kInfo)
        ++killed_gets;
    }
    int duplicated = 0, missing = 0;
    for (const auto& [v, n] : got)
      if (n > 1) duplicated += n - 1;
    for (const std::string& v : committed)
      if (!got.count(v)) ++missing;
    const int lost = std::max(0, missing - killed_gets);
    totals_.committed += static_cast<int>(committed.size());
    totals_.got += static_cast<int>(got.size());
    totals_.lost += lost;
    totals_.duplicated += duplicated;
    ++totals_.batches;

    const auto r = check::check_queue_linearizable(
        h, "Q", {.maxsize = simple ? std::nullopt : std::optional<std::int64_t>(kMaxsize),
                 .budget = std::chrono::seconds(5)});
    bool ok = true;
    if (r.verdict == check::Verdict::kUnknown) ++totals_.unknown;
    if (r.verdict == check::Verdict::kNotLinearizable) {
      ++totals_.not_linearizable;
      ADD_FAILURE() << type_ << " batch " << totals_.batches << ": the history with kills is not "
                    << "linearizable (history saved: " << s_.save_history() << "):\n"
                    << r.explanation;
      ok = false;
    }
    if (duplicated > 0 || lost > 0) {
      ADD_FAILURE() << type_ << " batch " << totals_.batches << ": " << lost << " committed items "
                    << "lost and " << duplicated << " duplicated (history saved: "
                    << s_.save_history("-count") << ")";
      ok = false;
    }
    return ok;
  }

  std::string type_;
  std::mt19937_64& rng_;
  Totals& totals_;
  Scenario s_;
  std::map<std::string, Actor> actors_;
  std::map<CallId, std::string> methods_;  // the method of each call of the actors
  bool stopping_ = false;
};

TEST(QueueKill, InjectedKillsLoseAndDuplicateNothing) {
  MPSPEC_CLAUSES(
      "[queue.kill.committed] [queue.kill.put] [queue.kill.get] [queue.kill.usable]"
      " [simple_queue.kill.put] [simple_queue.kill.get] [simple_queue.kill.usable]"
      " [joinable_queue.kill.put] [joinable_queue.kill.task_done]");
  Backend& b = Backend::get();
  if (!b.has_feature("kill")) GTEST_SKIP() << "UNSUPPORTED: backend lacks feature 'kill'";
  std::vector<std::string> types;
  for (const char* t : {"Queue", "SimpleQueue", "JoinableQueue"})
    if (b.has_type(t)) types.push_back(t);
  if (types.empty()) GTEST_SKIP() << "UNSUPPORTED: backend has no queue type";
  if (!b.has_feature("nonblocking") || !b.has_feature("timeout"))
    GTEST_SKIP() << "UNSUPPORTED: backend lacks nonblocking or timeout";

  const std::uint64_t seed = seed_from_env();
  std::mt19937_64 rng(seed);
  Totals totals;
  const auto t0 = std::chrono::steady_clock::now();
  bool ok = true;
  for (int batch = 0; batch < kBatchesPerType && ok; ++batch) {
    for (const std::string& type : types) {
      Batch run(type, rng, totals);
      if (!run.run()) {
        ok = false;
        break;
      }
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string by_method;
  for (const auto& [m, n] : totals.hits_by_method)
    by_method += (by_method.empty() ? "" : ", ") + m + " " + std::to_string(n);
  std::cout << "[ QueueKill ] seed " << seed << ": " << totals.trials << " trials (kills) in "
            << totals.batches << " batches, " << totals.hits << " landed in a running call ("
            << by_method << "); committed items " << totals.committed << ", lost " << totals.lost
            << ", duplicated " << totals.duplicated << "; histories not linearizable "
            << totals.not_linearizable << ", undecided " << totals.unknown << "; " << seconds
            << " s" << std::endl;
  RecordProperty("kill_seed", std::to_string(seed));
  RecordProperty("kill_trials", totals.trials);
  RecordProperty("kill_hits", totals.hits);
  RecordProperty("kill_lost", totals.lost);
  RecordProperty("kill_duplicated", totals.duplicated);
  if (ok) {
    EXPECT_GE(totals.trials, 200) << "fewer trials than the chapter asks";
    EXPECT_EQ(totals.lost, 0);
    EXPECT_EQ(totals.duplicated, 0);
    if (totals.unknown > 0)
      GTEST_SKIP() << "UNRESOLVED: the checker could not decide " << totals.unknown
                   << " histories within its budget";
  }
}

}  // namespace
}  // namespace mpspec
