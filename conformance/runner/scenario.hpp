// The scenario API conformance tests are written in.
//
//   TEST(Lock, ReleaseUnheldRaisesValueError) {
//     MPSPEC_CLAUSES("[lock.release.unheld]");
//     Scenario s;
//     s.object("L", "Lock").actor("a");
//     MPSPEC_START(s);                       // UNSUPPORTED (skip) if the backend lacks it
//     auto r = s.await(s.call("a", "L", "release"));
//     EXPECT_TRUE(r.raised("ValueError")) << r;
//   }
//
// A Scenario is one `setup` on the backend's driver (started once per test binary and
// restarted if it dies). Calls are asynchronous; `await` waits for one with the liveness
// bound. Every call is recorded; `history()` gives it to the checker. The destructor tears
// the setup down, so every actor is killed and reaped whatever the test did.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "check.hpp"
#include "driver_process.hpp"
#include "history.hpp"
#include "timing.hpp"

namespace mpspec {

// Records the clause labels a test checks (gtest property "clauses").
void record_clauses(const char* labels);

#define MPSPEC_CLAUSES(labels) ::mpspec::record_clauses(labels)

// Starts the scenario, or skips the test as UNSUPPORTED when the backend lacks something.
#define MPSPEC_START(scenario)                                                \
  do {                                                                        \
    const std::string mpspec_why_ = (scenario).start();                       \
    if (!mpspec_why_.empty()) GTEST_SKIP() << "UNSUPPORTED: " << mpspec_why_; \
  } while (0)

// The backend under test: its driver process and its hello reply.
class Backend {
 public:
  // The driver of this test binary: started on first use from --driver / MPSPEC_DRIVER,
  // restarted when the previous one died.
  static Backend& get();
  DriverProcess& driver();
  const Json& hello();
  bool has_type(const std::string& type);
  bool has_method(const std::string& type, const std::string& method);
  bool has_feature(const std::string& feature);
  std::string name();
  // Throws away the current driver (e.g. after a crash or an unanswered teardown).
  void discard();
  static void set_command(std::string command);
  // The driver command of this run (--driver or MPSPEC_DRIVER); throws if there is none.
  static std::string command();

 private:
  std::unique_ptr<DriverProcess> driver_;
  Json hello_;
};

struct CallResult {
  std::string tag;
  OpStatus status = OpStatus::kInfo;
  Json value;
  std::string error_kind, error_message, info_reason;
  Json error_value;  // the error's `value`, when it carries one (spec/protocol.md §6)
  std::string error_errno;  // an OSError's symbolic errno ("ENOENT"), when given (protocol §5)
  std::int64_t sent_ns = 0, invoke_ns = 0, return_ns = 0;

  bool ok() const { return status == OpStatus::kOk; }
  bool ok(const Json& v) const { return status == OpStatus::kOk && value == v; }
  bool raised(const std::string& kind) const {
    return status == OpStatus::kError && error_kind == kind;
  }
  // Seconds from invocation to return, as the actor measured them.
  double elapsed() const { return static_cast<double>(return_ns - invoke_ns) / 1e9; }
  std::string describe() const;
};
std::ostream& operator<<(std::ostream& os, const CallResult& r);

using CallId = int;

class Scenario {
 public:
  Scenario();
  ~Scenario();
  Scenario(const Scenario&) = delete;
  Scenario& operator=(const Scenario&) = delete;

  Scenario& object(const std::string& name, const std::string& type, Json args = Json::object());
  // Makes `actor` the only process that keeps its copy of `object` once the actors have
  // started ([protocol.setup.owner]): e.g. a Connection end whose end of file a test observes.
  Scenario& owner(const std::string& object, const std::string& actor);
  Scenario& prelude(const std::string& object, const std::string& method,
                    Json args = Json::object());
  Scenario& actor(const std::string& name, int threads = 1);
  // An actor started as a fresh execution of the backend's program, sharing nothing with the
  // others; it builds its own objects from the setup's entries, so it reaches only objects named
  // from outside a process (a file lock by its path). Needs the feature `independent`.
  Scenario& independent_actor(const std::string& name, int threads = 1);
  // Declares a method or feature the test uses, so that start() can report UNSUPPORTED.
  Scenario& needs_method(const std::string& type, const std::string& method);
  Scenario& needs_feature(const std::string& feature);

  // Sends `setup`. Returns "" when started, or why the backend cannot run the scenario
  // (the test is then UNSUPPORTED). Any other failure throws (the test fails).
  std::string start();

  // The values of the prelude calls, one per call in order, from the `setup` reply
  // ([protocol.setup.prelude.results]); an empty array before start() or without a prelude.
  const Json& prelude_results() const { return prelude_results_; }

  // Sends a call; returns at once. Throws on a protocol error.
  CallId call(const std::string& actor, const std::string& object, const std::string& method,
              Json args = Json::object(), int thread = 0);
  // Waits for the call to return, at most `limit` seconds (default: the liveness bound).
  // Throws WatchdogTimeout (the test reports TIMEOUT) when it does not.
  const CallResult& await(CallId id, double limit = timing::huge());
  // Waits at most `limit` seconds; true if the call returned. Never fails the test.
  bool returns_within(CallId id, double limit);
  bool returned(CallId id);  // non-blocking
  // Waits at most `limit` seconds for any of `ids` to return; returns one that has.
  std::optional<CallId> await_any(const std::vector<CallId>& ids, double limit);
  const CallResult& result(CallId id) const;

  // Kills an actor (SIGKILL by default); its running calls become `info`. Returns the exit
  // code the driver reports. The history records the kill as an annotation
  // {"kind": "kill", "actor": ..., "signal": ..., "sent_ns": ..., "time_ns": ...}: sent_ns is
  // when the request was sent, time_ns when the driver replied (the actor is dead by then).
  int kill(const std::string& actor, int signal = 9);

  History history() const;
  // Runs the checker on the history so far; on a violation saves the history (see
  // save_history) with a "linearizability" annotation per object that is not linearizable
  // (history.hpp), and puts its path in the result's explanation.
  check::Result check(std::chrono::milliseconds budget = std::chrono::seconds(10));
  // Saves the history under MPSPEC_ARTIFACTS (default ./mpspec-artifacts); returns the path.
  std::string save_history(const std::string& suffix = "") const;

  // Tears down now (also done by the destructor); pending calls become `info`.
  void teardown();

  // An absolute path named `name` in a fresh temporary directory of this scenario (created on
  // first use under $TMPDIR or /tmp, removed with everything in it by the destructor, after
  // teardown). For objects named by a path, such as file locks.
  std::string temp_path(const std::string& name);

 private:
  void pump(std::int64_t deadline_ns);
  void absorb(const Json& event);
  // <MPSPEC_ARTIFACTS>/<Suite.Test>-s<serial><suffix>.history.json (creates the directory).
  std::string history_path(const std::string& suffix) const;

  Json objects_ = Json::array(), prelude_ = Json::array(), actors_ = Json::array();
  Json prelude_results_ = Json::array();
  std::vector<std::pair<std::string, std::string>> needed_methods_;
  std::vector<std::string> needed_features_;
  std::map<std::string, std::string> object_types_;
  struct Call {
    std::string actor;
    int thread;
    std::string object, method;
    Json args;
    CallResult result;
    bool done = false;
  };
  std::vector<Call> calls_;
  Json annotations_ = Json::array();  // kills, in order (history().annotations)
  std::map<std::string, int> by_tag_;
  bool started_ = false;
  int serial_;
  std::string temp_dir_;
};

}  // namespace mpspec
