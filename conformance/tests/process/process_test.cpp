// Scenario tests for spec/process/process.md. Each test names the clauses it checks.
//
// How the tests observe a child (the chapter's introduction): a Process is process-local
// (spec/protocol.md §6), so every call on a Process goes to one actor, "a", which constructs
// it at its first call and is the child's parent. The child runs a task of the catalogue; its
// exit code is read after `join`, and the messages a task sends on the Pipe end "W" (passed as
// `conn`, {"$ref": "W"} in the Process's `args`) are read with recv/poll on the other end, "R".
// "Nothing was sent" is shown by poll(0) being false once the child has been joined: a dead
// child's sends are all in the pipe. Where a test waits for end of file on "R", "W" has the
// owner "a" ([protocol.setup.owner]) and "a" closes its own copy once its children hold theirs,
// so that the children's copies are the last ones.
//
// Timing policy (spec/README.md §7): no tight durations. A child that must keep running
// sleeps for much longer than the liveness bound (`forever`) and is ended by the test
// (terminate/kill) or by teardown, which kills the actor's process group; "does not return yet"
// is a handshake plus a `small` grace period; timeouts assert only lower bounds; every await
// has the liveness watchdog `huge`. Where a test needs a child to outlive a step of the test
// (a grandchild that sleeps `long`), it checks afterwards, from the actors' timestamps, that the
// step happened in time, and reports UNRESOLVED otherwise.
//
// A Process that is not its actor's own: an `inherited` Process ([protocol.setup.inherited]) is
// built by the driver's parent at setup, so the actors hold copies made by another process, and
// a prelude `start` makes the parent its parent (the not_creator / not_parent clauses). The main
// process is asked about itself through prelude calls on Module, whose values the setup reply
// carries ([protocol.setup.prelude.results]).
//
// Clauses without a test here: [process.exitcode.error.report] (a child's standard error is not
// carried) and [process.exitcode.windows] (Windows only).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "scenario.hpp"

namespace mpspec {
namespace {

using timing::huge;
using timing::kClockResolution;
using timing::long_;
using timing::small;

// A sleep that never ends within a test: the child is ended by the test or by teardown.
double forever() { return 10 * huge(); }
std::int64_t ns(double seconds) { return static_cast<std::int64_t>(seconds * 1e9); }

Json ref(const std::string& name) { return Json{{"$ref", name}}; }
const Json kW = Json{{"$ref", "W"}};
Json timeout(Json t) { return Json{{"timeout", std::move(t)}}; }

// Skips the test as UNSUPPORTED when a call reports that the backend lacks something (a task
// of the catalogue the driver does not know is `Unsupported`, protocol.md §6).
#define SKIP_IF_UNSUPPORTED(r) \
  if ((r).raised("Unsupported")) GTEST_SKIP() << "UNSUPPORTED: " << (r).error_message

// Starts Process `proc` on actor "a": the call must return None.
#define START(s, proc)                                                    \
  do {                                                                    \
    const CallResult& start_r_ = (s).await((s).call("a", proc, "start")); \
    SKIP_IF_UNSUPPORTED(start_r_);                                        \
    ASSERT_TRUE(start_r_.ok(nullptr)) << proc << ".start: " << start_r_;  \
  } while (0)

// The start method of this run (the suite's setup asks for MPSPEC_START_METHOD; default fork).
std::string start_method() {
  const char* sm = std::getenv("MPSPEC_START_METHOD");
  return sm != nullptr && *sm != '\0' ? sm : "fork";
}

// A Pipe "P" whose end "R" (0) reads and "W" (1) writes. With `owner`, W is kept only by that
// actor ([protocol.setup.owner]), for tests that observe end of file on R.
void pipe(Scenario& s, const std::string& owner = "") {
  s.object("P", "Pipe", Json{{"duplex", false}});
  s.object("R", "Connection", Json{{"pipe", ref("P")}, {"end", 0}});
  s.object("W", "Connection", Json{{"pipe", ref("P")}, {"end", 1}});
  s.needs_method("Connection", "recv").needs_method("Connection", "poll");
  if (!owner.empty()) s.owner("W", owner).needs_method("Connection", "close");
}

// A Process named `name` running `task` with `args`; `extra` adds `name` / `daemon`.
void process(Scenario& s, const std::string& name, const std::string& task, Json args,
             Json extra = Json::object()) {
  Json entry{{"task", task}, {"args", std::move(args)}};
  for (auto& [k, v] : extra.items()) entry[k] = v;
  s.object(name, "Process", std::move(entry));
}

void needs(Scenario& s, std::initializer_list<const char*> methods,
           const std::string& type = "Process") {
  for (const char* m : methods) s.needs_method(type, m);
}

// Awaits a call on actor "a" that must return normally, and gives its value (null, with a
// failure recorded, when it did not).
Json get(Scenario& s, const std::string& object, const std::string& method,
         Json args = Json::object(), const std::string& actor = "a") {
  const CallResult& r = s.await(s.call(actor, object, method, std::move(args)));
  EXPECT_TRUE(r.ok()) << object << "." << method << " on " << actor << ": " << r;
  return r.ok() ? r.value : Json();
}

Json recv(Scenario& s, const std::string& actor = "a") {
  return get(s, "R", "recv", Json::object(), actor);
}

// Whether R has something to read now (a message, or end of file).
bool pending(Scenario& s, const std::string& actor = "a") {
  return get(s, "R", "poll", timeout(0), actor) == Json(true);
}

// Joins `proc` (liveness bound) and returns its exitcode.
Json join_exitcode(Scenario& s, const std::string& proc) {
  EXPECT_TRUE(s.await(s.call("a", proc, "join")).ok(nullptr)) << proc << ".join";
  return get(s, proc, "exitcode");
}

bool is_bytes(const Json& v) {
  return v.is_object() && v.size() == 1 && v.contains("$bytes") && v["$bytes"].is_string();
}
bool is_int(const Json& v) { return v.is_number_integer(); }

// /proc/<pid>/stat: the state letter and the parent pid, or nullopt.
struct ProcStat {
  char state;
  long ppid;
};
std::optional<ProcStat> proc_stat(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const auto paren = line.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(paren + 1));
  ProcStat st{};
  rest >> st.state >> st.ppid;
  if (!rest) return std::nullopt;
  return st;
}

// Whether `pid` is a descendant of this test process (the driver runs as our child, its actors
// as its children): the pid a backend reports names a process the suite may signal or inspect.
bool descends_from_suite(long pid) {
  const long me = static_cast<long>(::getpid());
  for (int depth = 0; depth < 8 && pid > 1; ++depth) {
    auto st = proc_stat(pid);
    if (!st) return false;
    if (st->ppid == me) return true;
    pid = st->ppid;
  }
  return false;
}

// Waits, at most the liveness bound, until the process `pid` has ended in the operating
// system's sense (a zombie, or gone), when /proc shows it as a descendant of the suite. A
// Process's sentinel may become ready a moment before that: a pipe sentinel (CPython's spawn)
// reads end of file when the exiting child's descriptors close, before it can be reaped, and
// "ended" is only observable by the parent from then on.
void await_os_end(const Json& pid) {
  if (!is_int(pid) || !descends_from_suite(pid.get<long>())) return;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(huge()));
  while (std::chrono::steady_clock::now() < deadline) {
    const auto st = proc_stat(pid.get<long>());
    if (!st || st->state == 'Z' || st->state == 'X') return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// The numbers of a default name ("Process-1:2" -> {1, 2}); empty if it has not the form.
std::vector<long> name_numbers(const std::string& name) {
  static const std::regex form(R"(^[A-Za-z_][A-Za-z0-9_]*-([0-9]+(:[0-9]+)*)$)");
  std::smatch m;
  if (!std::regex_match(name, m, form)) return {};
  std::vector<long> out;
  std::istringstream in(m[1].str());
  std::string part;
  while (std::getline(in, part, ':')) out.push_back(std::stol(part));
  return out;
}

// ------------------------------------------------------------------ §1 The task catalogue

TEST(Process, IdentitySendsItsValue) {
  MPSPEC_CLAUSES(
      "[process.task.catalogue] [process.task.conn] [process.task.identity] "
      "[process.exitcode.zero]");
  Scenario s;
  pipe(s);
  const Json composite = Json{{"list", Json::array({1, "two", 3.5, nullptr, false})},
                              {"bytes", Json{{"$bytes", "AAH/"}}},
                              {"map", Json{{"k", "v"}}}};
  process(s, "C1", "identity", Json{{"value", 42}, {"conn", kW}});
  process(s, "C2", "identity", Json{{"value", composite}, {"conn", kW}});
  process(s, "C3", "identity", Json{{"conn", kW}});  // value defaults to null
  process(s, "C4", "identity", Json{{"value", 7}});  // no conn: sends nothing
  s.actor("a");
  needs(s, {"start", "join", "exitcode"});
  MPSPEC_START(s);

  START(s, "C1");
  EXPECT_EQ(recv(s), Json(42));
  EXPECT_EQ(join_exitcode(s, "C1"), Json(0));
  EXPECT_FALSE(pending(s)) << "identity sent more than its value";

  START(s, "C2");
  EXPECT_EQ(recv(s), composite) << "the value did not arrive equal to what was given";
  EXPECT_EQ(join_exitcode(s, "C2"), Json(0));

  START(s, "C3");
  EXPECT_EQ(recv(s), Json(nullptr)) << "identity without a value sends null";
  EXPECT_EQ(join_exitcode(s, "C3"), Json(0));
  EXPECT_FALSE(pending(s));

  START(s, "C4");
  EXPECT_EQ(join_exitcode(s, "C4"), Json(0));
  EXPECT_FALSE(pending(s)) << "a task without conn sent something";
}

TEST(Process, ExitTaskGivesStatusModulo256) {
  MPSPEC_CLAUSES("[process.task.exit] [process.exitcode.status]");
  Scenario s;
  pipe(s);
  // code -> exitcode; "absent" has no code argument.
  const std::vector<std::pair<Json, int>> cases = {{0, 0},    {3, 3},       {255, 255},   {256, 0},
                                                   {-1, 255}, {nullptr, 0}, {"absent", 0}};
  for (std::size_t i = 0; i < cases.size(); ++i) {
    Json args{{"conn", kW}};
    if (cases[i].first != Json("absent")) args["code"] = cases[i].first;
    process(s, "C" + std::to_string(i), "exit", args);
  }
  s.actor("a");
  needs(s, {"start", "join", "exitcode"});
  MPSPEC_START(s);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string c = "C" + std::to_string(i);
    START(s, c);
    EXPECT_EQ(join_exitcode(s, c), Json(cases[i].second)) << "exit(code=" << cases[i].first << ")";
  }
  EXPECT_FALSE(pending(s)) << "the exit task sent something";
}

TEST(Process, RaiseTaskEndsWithExitcodeOne) {
  MPSPEC_CLAUSES("[process.task.raise] [process.exitcode.error]");
  Scenario s;
  pipe(s);
  process(s, "C1", "raise", Json{{"conn", kW}});  // kind defaults to ValueError
  process(s, "C2", "raise", Json{{"kind", "RuntimeError"}, {"message", "boom"}, {"conn", kW}});
  process(s, "C3", "raise", Json{{"kind", "TypeError"}, {"message", "bad"}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode"});
  MPSPEC_START(s);
  for (const char* c : {"C1", "C2", "C3"}) {
    START(s, c);
    EXPECT_EQ(join_exitcode(s, c), Json(1)) << c << ": an uncaught error gives exitcode 1";
  }
  EXPECT_FALSE(pending(s)) << "the raise task sent something";
}

TEST(Process, SleepTaskSendsSleepingThenDone) {
  MPSPEC_CLAUSES("[process.task.sleep]");
  Scenario s;
  pipe(s);
  process(s, "C1", "sleep", Json{{"seconds", small()}, {"conn", kW}});
  process(s, "C2", "sleep", Json{{"seconds", 0}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode"});
  MPSPEC_START(s);
  for (const char* c : {"C1", "C2"}) {
    START(s, c);
    const CallResult& first = s.await(s.call("a", "R", "recv"));
    EXPECT_TRUE(first.ok("sleeping")) << c << ": " << first;
    const CallResult& second = s.await(s.call("a", "R", "recv"));
    EXPECT_TRUE(second.ok("done")) << c << ": " << second;
    EXPECT_EQ(join_exitcode(s, c), Json(0)) << c;
    EXPECT_FALSE(pending(s)) << c << " sent more than \"sleeping\" and \"done\"";
  }
}

TEST(Process, CrashTaskEndsBySignal) {
  MPSPEC_CLAUSES("[process.task.crash] [process.exitcode.signal]");
  Scenario s;
  pipe(s);
  process(s, "C9", "crash", Json{{"signal", 9}, {"conn", kW}});
  process(s, "C15", "crash", Json{{"signal", 15}, {"conn", kW}});
  process(s, "Cdefault", "crash", Json{{"conn", kW}});  // signal defaults to 9
  s.actor("a");
  needs(s, {"start", "join", "exitcode"});
  MPSPEC_START(s);
  START(s, "C9");
  EXPECT_EQ(join_exitcode(s, "C9"), Json(-9));
  START(s, "C15");
  EXPECT_EQ(join_exitcode(s, "C15"), Json(-15));
  START(s, "Cdefault");
  EXPECT_EQ(join_exitcode(s, "Cdefault"), Json(-9));
  EXPECT_FALSE(pending(s)) << "the crash task sent something";
}

TEST(Process, SignalFromAnotherProcessGivesMinusSignal) {
  // The other process is this test: it signals the child by the pid the backend reports,
  // after checking in /proc that the pid is one of its own descendants.
  MPSPEC_CLAUSES("[process.exitcode.signal]");
  Scenario s;
  pipe(s);
  process(s, "C", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode", "pid"});
  MPSPEC_START(s);
  START(s, "C");
  ASSERT_EQ(recv(s), Json("sleeping"));
  const Json pid = get(s, "C", "pid");
  ASSERT_TRUE(is_int(pid)) << pid;
  if (!descends_from_suite(pid.get<long>()))
    GTEST_SKIP() << "UNRESOLVED: pid " << pid << " is not visible in this process's /proc as a "
                 << "descendant of the suite; cannot signal it safely";
  ASSERT_EQ(::kill(static_cast<pid_t>(pid.get<long>()), SIGUSR1), 0);
  EXPECT_EQ(join_exitcode(s, "C"), Json(-SIGUSR1)) << "SIGUSR1 sent by another process";
}

TEST(Process, PidTaskReportsThePid) {
  MPSPEC_CLAUSES("[process.task.pid] [process.pid.value]");
  Scenario s;
  pipe(s);
  process(s, "C", "pid", Json{{"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode", "pid"});
  MPSPEC_START(s);
  START(s, "C");
  const Json pid = get(s, "C", "pid");
  EXPECT_TRUE(is_int(pid) && pid.get<long>() > 0) << pid;
  EXPECT_EQ(recv(s), pid) << "the child's own pid differs from Process.pid";
  EXPECT_EQ(join_exitcode(s, "C"), Json(0));
  EXPECT_EQ(get(s, "C", "pid"), pid) << "pid changed after the child ended";
  EXPECT_FALSE(pending(s));
}

TEST(Process, DescribeTaskSendsItsMap) {
  MPSPEC_CLAUSES("[process.task.describe]");
  Scenario s;
  pipe(s);
  process(s, "C", "describe", Json{{"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode", "pid", "name", "daemon"});
  MPSPEC_START(s);
  START(s, "C");
  const Json m = recv(s);
  EXPECT_EQ(join_exitcode(s, "C"), Json(0));
  EXPECT_FALSE(pending(s)) << "describe sent more than one map";
  ASSERT_TRUE(m.is_object()) << m;
  EXPECT_TRUE(m.contains("name") && m["name"].is_string()) << m;
  EXPECT_TRUE(m.contains("pid") && is_int(m["pid"])) << m;
  EXPECT_TRUE(m.contains("daemon") && m["daemon"].is_boolean()) << m;
  if (!m.contains("authkey") || !m.contains("parent"))
    GTEST_SKIP() << "UNSUPPORTED: describe's map lacks "
                 << (m.contains("authkey") ? "" : "`authkey` ")
                 << (m.contains("parent") ? "" : "`parent` ") << "(the backend has no "
                 << "process keys or no parent_process): " << m;
  EXPECT_TRUE(is_bytes(m["authkey"])) << "authkey must be bytes: " << m;
  const Json& parent = m["parent"];
  EXPECT_TRUE(parent.is_null() ||
              (parent.is_object() && parent.contains("name") && parent["name"].is_string() &&
               parent.contains("pid") && is_int(parent["pid"])))
      << "parent must be null or a map with name and pid: " << m;
}

TEST(Process, StartChildTaskReportsTheGrandchild) {
  MPSPEC_CLAUSES("[process.task.start_child]");
  Scenario s;
  pipe(s);
  process(s, "C", "start_child",
          Json{{"task", "pid"}, {"args", Json{{"conn", kW}}}, {"join", true}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode", "pid"});
  MPSPEC_START(s);
  START(s, "C");
  // The child's map and the grandchild's pid, in either order.
  Json map, grandchild_pid;
  for (int i = 0; i < 2; ++i) {
    const Json v = recv(s);
    if (v.is_object())
      map = v;
    else
      grandchild_pid = v;
  }
  EXPECT_EQ(join_exitcode(s, "C"), Json(0));
  EXPECT_FALSE(pending(s)) << "more than the map and the grandchild's message";
  ASSERT_TRUE(map.is_object()) << "start_child sent no map";
  EXPECT_TRUE(map.contains("name") && map["name"].is_string()) << map;
  ASSERT_TRUE(map.contains("pid") && is_int(map["pid"])) << map;
  EXPECT_EQ(map["pid"], grandchild_pid) << "the map's pid is not the grandchild's own pid";
  EXPECT_NE(map["pid"], get(s, "C", "pid")) << "the grandchild is the child itself";
}

// -------------------------------------------------- §2 Construction, name and daemon flag

TEST(Process, NewProcessIsUnstarted) {
  MPSPEC_CLAUSES("[process.construct.unstarted]");
  Scenario s;
  process(s, "C", "identity", Json::object());
  s.actor("a");
  needs(s, {"is_alive", "pid", "exitcode"});
  MPSPEC_START(s);
  const CallResult& first = s.await(s.call("a", "C", "is_alive"));
  SKIP_IF_UNSUPPORTED(first);
  EXPECT_TRUE(first.ok(false)) << first;
  EXPECT_EQ(get(s, "C", "pid"), Json(nullptr));
  EXPECT_EQ(get(s, "C", "exitcode"), Json(nullptr));
}

TEST(Process, DefaultNamesAreDistinctStrings) {
  MPSPEC_CLAUSES("[process.name.default]");
  Scenario s;
  for (const char* c : {"C1", "C2", "C3"}) process(s, c, "identity", Json::object());
  s.actor("a");
  needs(s, {"name"});
  MPSPEC_START(s);
  std::set<std::string> names;
  for (const char* c : {"C1", "C2", "C3"}) {
    const CallResult& r = s.await(s.call("a", c, "name"));
    SKIP_IF_UNSUPPORTED(r);
    ASSERT_TRUE(r.ok() && r.value.is_string()) << c << ": " << r;
    EXPECT_TRUE(names.insert(r.value.get<std::string>()).second)
        << c << " has the default name of another Process: " << r.value;
  }
}

TEST(Process, DefaultNameForm) {
  MPSPEC_CLAUSES("[process.name.default.form]");
  Scenario s;
  pipe(s);
  process(s, "C1", "identity", Json::object());
  process(s, "C2", "start_child",
          Json{{"task", "identity"}, {"args", Json::object()}, {"join", true}, {"conn", kW}});
  s.actor("a");
  needs(s, {"name", "start", "join", "exitcode"});
  MPSPEC_START(s);
  // Constructed in this order by the same actor: C2's counter is one more than C1's.
  const Json n1 = get(s, "C1", "name"), n2 = get(s, "C2", "name");
  ASSERT_TRUE(n1.is_string() && n2.is_string());
  const auto v1 = name_numbers(n1.get<std::string>()), v2 = name_numbers(n2.get<std::string>());
  ASSERT_FALSE(v1.empty()) << "not of the form <prefix>-<n>(:<n>)*: " << n1;
  ASSERT_FALSE(v2.empty()) << "not of the form <prefix>-<n>(:<n>)*: " << n2;
  EXPECT_EQ(std::vector<long>(v1.begin(), v1.end() - 1),
            std::vector<long>(v2.begin(), v2.end() - 1))
      << "two Processes of one creator differ in the creator's numbers: " << n1 << ", " << n2;
  EXPECT_EQ(v2.back(), v1.back() + 1) << "the creator's counter: " << n1 << " then " << n2;
  // The first child of C2 (made in C2) is named after C2's numbers plus 1.
  START(s, "C2");
  const Json map = recv(s);
  EXPECT_EQ(join_exitcode(s, "C2"), Json(0));
  ASSERT_TRUE(map.is_object() && map.contains("name") && map["name"].is_string()) << map;
  auto expected = v2;
  expected.push_back(1);
  EXPECT_EQ(name_numbers(map["name"].get<std::string>()), expected)
      << "the first child of " << n2 << " is named " << map["name"];
}

TEST(Process, GivenNameIsTheName) {
  MPSPEC_CLAUSES("[process.name.given]");
  Scenario s;
  pipe(s);
  process(s, "C1", "describe", Json{{"conn", kW}}, Json{{"name", "worker"}});
  process(s, "C2", "describe", Json{{"conn", kW}}, Json{{"name", "worker"}});
  process(s, "C3", "describe", Json{{"conn", kW}});
  s.actor("a");
  needs(s, {"name", "set_name", "start", "join", "exitcode"});
  MPSPEC_START(s);
  EXPECT_EQ(get(s, "C1", "name"), Json("worker"));
  EXPECT_EQ(get(s, "C2", "name"), Json("worker")) << "two Processes may share a name";
  for (const char* c : {"C1", "C2"}) {
    START(s, c);
    const Json m = recv(s);
    EXPECT_EQ(join_exitcode(s, c), Json(0)) << c;
    EXPECT_TRUE(m.is_object() && m.value("name", Json()) == Json("worker")) << c << ": " << m;
  }
  // Set later: before the start, then after the child ended.
  EXPECT_TRUE(s.await(s.call("a", "C3", "set_name", Json{{"value", "renamed"}})).ok(nullptr));
  EXPECT_EQ(get(s, "C3", "name"), Json("renamed"));
  START(s, "C3");
  const Json m = recv(s);
  EXPECT_EQ(join_exitcode(s, "C3"), Json(0));
  EXPECT_TRUE(m.is_object() && m.value("name", Json()) == Json("renamed")) << m;
  EXPECT_TRUE(s.await(s.call("a", "C3", "set_name", Json{{"value", "after"}})).ok(nullptr));
  EXPECT_EQ(get(s, "C3", "name"), Json("after"));
}

TEST(Process, SetNameToNonStringRaisesAssertionError) {
  MPSPEC_CLAUSES("[process.name.set.type]");
  Scenario s;
  process(s, "C", "identity", Json::object(), Json{{"name", "keep"}});
  s.actor("a");
  needs(s, {"set_name"});
  MPSPEC_START(s);
  for (const Json& v : {Json(5), Json(nullptr), Json::array({"x"})}) {
    const CallResult& r = s.await(s.call("a", "C", "set_name", Json{{"value", v}}));
    SKIP_IF_UNSUPPORTED(r);
    EXPECT_TRUE(r.raised("AssertionError")) << "set_name(" << v << "): " << r;
  }
}

TEST(Process, DaemonDefaultsToTheCreators) {
  MPSPEC_CLAUSES("[process.daemon.default]");
  Scenario s;
  pipe(s);
  process(s, "C", "start_child",
          Json{{"task", "describe"}, {"args", Json{{"conn", kW}}}, {"join", true}, {"conn", kW}});
  s.actor("a");
  needs(s, {"daemon", "start", "join", "exitcode"});
  MPSPEC_START(s);
  // Created by a non-daemonic actor; the grandchild by the non-daemonic child (daemon=null).
  const CallResult& d = s.await(s.call("a", "C", "daemon"));
  SKIP_IF_UNSUPPORTED(d);
  EXPECT_TRUE(d.ok(false)) << d;
  START(s, "C");
  Json described;
  for (int i = 0; i < 2; ++i) {
    const Json v = recv(s);
    if (v.is_object() && v.contains("daemon")) described = v;
  }
  EXPECT_EQ(join_exitcode(s, "C"), Json(0));
  ASSERT_TRUE(described.is_object()) << "the grandchild sent no description";
  EXPECT_EQ(described["daemon"], Json(false)) << "made by a non-daemonic child: " << described;
}

TEST(Process, SetDaemonAfterStartRaisesAssertionError) {
  MPSPEC_CLAUSES("[process.daemon.set_started]");
  Scenario s;
  pipe(s);
  process(s, "C", "identity", Json{{"value", 1}, {"conn", kW}});
  s.actor("a");
  needs(s, {"set_daemon", "daemon", "start", "join", "exitcode"});
  MPSPEC_START(s);
  START(s, "C");
  const CallResult& r1 = s.await(s.call("a", "C", "set_daemon", Json{{"value", true}}));
  EXPECT_TRUE(r1.raised("AssertionError")) << "set_daemon after start: " << r1;
  EXPECT_EQ(recv(s), Json(1));
  EXPECT_EQ(join_exitcode(s, "C"), Json(0));
  const CallResult& r2 = s.await(s.call("a", "C", "set_daemon", Json{{"value", true}}));
  EXPECT_TRUE(r2.raised("AssertionError")) << "set_daemon after the child ended: " << r2;
  EXPECT_EQ(get(s, "C", "daemon"), Json(false));
}

// ---------------------------------------------------------------------- §3 start()

TEST(Process, StartRunsTheChild) {
  MPSPEC_CLAUSES("[process.start.runs]");
  Scenario s;
  pipe(s);
  process(s, "C", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "is_alive", "pid", "kill", "join", "exitcode"});
  MPSPEC_START(s);
  START(s, "C");
  EXPECT_TRUE(s.await(s.call("a", "C", "is_alive")).ok(true)) << "right after start";
  const Json pid = get(s, "C", "pid");
  EXPECT_TRUE(is_int(pid)) << "pid after start: " << pid;
  EXPECT_EQ(recv(s), Json("sleeping")) << "the child does not run its task";
  EXPECT_TRUE(s.await(s.call("a", "C", "is_alive")).ok(true)) << "while the child sleeps";
  EXPECT_TRUE(is_int(get(s, "C", "pid")));
  EXPECT_TRUE(s.await(s.call("a", "C", "kill")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C"), Json(-9));
}

TEST(Process, StartTwiceRaisesAssertionError) {
  MPSPEC_CLAUSES("[process.start.twice]");
  Scenario s;
  pipe(s);
  process(s, "C", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "is_alive", "kill", "join", "exitcode"});
  MPSPEC_START(s);
  START(s, "C");
  ASSERT_EQ(recv(s), Json("sleeping"));
  const CallResult& running = s.await(s.call("a", "C", "start"));
  EXPECT_TRUE(running.raised("AssertionError")) << "second start while running: " << running;
  EXPECT_TRUE(s.await(s.call("a", "C", "is_alive")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "C", "kill")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C"), Json(-9));
  const CallResult& ended = s.await(s.call("a", "C", "start"));
  EXPECT_TRUE(ended.raised("AssertionError")) << "second start after the end: " << ended;
  EXPECT_FALSE(pending(s)) << "a second child ran";
}

TEST(Process, StartAfterCloseRaisesValueError) {
  MPSPEC_CLAUSES("[process.start.closed]");
  Scenario s;
  pipe(s);
  process(s, "C", "identity", Json{{"value", 1}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "close"});
  MPSPEC_START(s);
  const CallResult& c = s.await(s.call("a", "C", "close"));
  SKIP_IF_UNSUPPORTED(c);
  ASSERT_TRUE(c.ok(nullptr)) << "close of an unstarted Process: " << c;
  const CallResult& r = s.await(s.call("a", "C", "start"));
  EXPECT_TRUE(r.raised("ValueError")) << r;
  EXPECT_FALSE(pending(s)) << "a closed Process started a child";
}

// An inherited Process ([protocol.setup.inherited]): constructed by the driver's parent at
// setup; every actor holds a copy made by another process.
void inherited_process(Scenario& s, const std::string& name, const std::string& task, Json args) {
  s.object(name, "Process", Json{{"task", task}, {"args", std::move(args)}, {"inherited", true}});
}

TEST(Process, StartByANonCreatorRaisesAssertionError) {
  MPSPEC_CLAUSES("[process.start.not_creator]");
  Scenario s;
  pipe(s);
  inherited_process(s, "C", "identity", Json{{"value", 1}, {"conn", kW}});
  s.actor("a").actor("b");
  needs(s, {"start"});
  MPSPEC_START(s);
  for (const char* actor : {"a", "b"}) {
    const CallResult& r = s.await(s.call(actor, "C", "start"));
    SKIP_IF_UNSUPPORTED(r);
    EXPECT_TRUE(r.raised("AssertionError")) << "start on " << actor << ", not the creator: " << r;
  }
  EXPECT_TRUE(s.await(s.call("a", "R", "poll", timeout(small()))).ok(false)) << "a child ran";
}

TEST(Process, DaemonicProcessCannotStartChildren) {
  MPSPEC_CLAUSES("[process.start.daemonic_parent] [process.task.start_child]");
  Scenario s;
  pipe(s);
  process(s, "C", "start_child",
          Json{{"task", "identity"},
               {"args", Json{{"value", "grandchild"}, {"conn", kW}}},
               {"conn", kW}},
          Json{{"daemon", true}});
  s.actor("a");
  needs(s, {"daemon", "start", "join", "exitcode"});
  MPSPEC_START(s);
  const CallResult& d = s.await(s.call("a", "C", "daemon"));
  SKIP_IF_UNSUPPORTED(d);
  EXPECT_TRUE(d.ok(true)) << d;
  START(s, "C");
  EXPECT_EQ(join_exitcode(s, "C"), Json(1)) << "start in a daemonic child must raise there";
  EXPECT_FALSE(pending(s)) << "the daemonic child sent its map, or a grandchild ran";
}

// ---------------------------------------------------------------------- §4 join()

TEST(Process, JoinWaitsForTheEnd) {
  MPSPEC_CLAUSES("[process.join.none]");
  Scenario s;
  pipe(s);
  process(s, "C1", "sleep", Json{{"seconds", small()}, {"conn", kW}});
  process(s, "C2", "sleep", Json{{"seconds", small()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode"});
  MPSPEC_START(s);
  // join() without arguments, then join(None).
  const std::vector<std::pair<const char*, Json>> joins = {{"C1", Json::object()},
                                                           {"C2", timeout(nullptr)}};
  for (const auto& [c, args] : joins) {
    START(s, c);
    const CallResult& j = s.await(s.call("a", c, "join", args));
    EXPECT_TRUE(j.ok(nullptr)) << c << ".join(" << args << "): " << j;
    const Json code = get(s, c, "exitcode");
    EXPECT_EQ(code, Json(0)) << c << ": exitcode after join";
    // The child ended: both of its messages are there.
    EXPECT_TRUE(pending(s)) << c;
    EXPECT_EQ(recv(s), Json("sleeping")) << c;
    EXPECT_TRUE(pending(s)) << c << ": join returned before the child sent \"done\"";
    EXPECT_EQ(recv(s), Json("done")) << c;
  }
}

TEST(Process, JoinZeroAndNegativeReturnAtOnce) {
  MPSPEC_CLAUSES("[process.join.zero] [process.join.negative]");
  Scenario s;
  pipe(s);
  process(s, "C", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode", "is_alive", "kill"});
  MPSPEC_START(s);
  START(s, "C");
  ASSERT_EQ(recv(s), Json("sleeping"));
  // The child sleeps far beyond the liveness bound: a join that waited for it would time out.
  for (const Json& t : {Json(0), Json(0.0), Json(-1), Json(-0.5)}) {
    const CallResult& j = s.await(s.call("a", "C", "join", timeout(t)));
    EXPECT_TRUE(j.ok(nullptr)) << "join(" << t << "): " << j;
    EXPECT_EQ(get(s, "C", "exitcode"), Json(nullptr)) << "after join(" << t << ")";
    EXPECT_TRUE(s.await(s.call("a", "C", "is_alive")).ok(true)) << "after join(" << t << ")";
  }
  EXPECT_TRUE(s.await(s.call("a", "C", "kill")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C"), Json(-9));
}

TEST(Process, JoinTimeoutExpiresWhileTheChildRuns) {
  MPSPEC_CLAUSES("[process.join.timeout.expires]");
  Scenario s;
  pipe(s);
  process(s, "C", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode", "is_alive", "kill"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  START(s, "C");
  ASSERT_EQ(recv(s), Json("sleeping"));
  const double t = small();
  const CallResult& j = s.await(s.call("a", "C", "join", timeout(t)));
  EXPECT_TRUE(j.ok(nullptr)) << j;
  EXPECT_GE(j.elapsed(), t - kClockResolution) << "join(" << t << ") gave up early: " << j;
  EXPECT_EQ(get(s, "C", "exitcode"), Json(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "C", "is_alive")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "C", "kill")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C"), Json(-9));
}

TEST(Process, TimedJoinReturnsWhenTheChildEnds) {
  MPSPEC_CLAUSES("[process.join.timeout.ends]");
  Scenario s;
  pipe(s);
  process(s, "C", "sleep", Json{{"seconds", small()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  START(s, "C");
  ASSERT_EQ(recv(s), Json("sleeping"));
  // The timeout is far beyond the liveness bound: only the child's end can end this join.
  const CallResult& j = s.await(s.call("a", "C", "join", timeout(forever())));
  EXPECT_TRUE(j.ok(nullptr)) << j;
  EXPECT_EQ(get(s, "C", "exitcode"), Json(0));
  EXPECT_TRUE(pending(s));
  EXPECT_EQ(recv(s), Json("done"));
}

TEST(Process, JoinCanBeRepeated) {
  MPSPEC_CLAUSES("[process.join.repeat]");
  Scenario s;
  pipe(s);
  process(s, "C", "identity", Json{{"value", 1}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode"});
  MPSPEC_START(s);
  START(s, "C");
  EXPECT_EQ(recv(s), Json(1));
  for (const Json& args :
       {Json::object(), Json::object(), timeout(0), timeout(small()), timeout(nullptr)}) {
    const CallResult& j = s.await(s.call("a", "C", "join", args));
    EXPECT_TRUE(j.ok(nullptr)) << "join(" << args << "): " << j;
    EXPECT_EQ(get(s, "C", "exitcode"), Json(0));
  }
}

TEST(Process, JoinUnstartedRaisesAssertionError) {
  MPSPEC_CLAUSES("[process.join.unstarted]");
  Scenario s;
  process(s, "C", "identity", Json::object());
  s.actor("a");
  needs(s, {"join"});
  MPSPEC_START(s);
  for (const Json& args : {Json::object(), timeout(0), timeout(small())}) {
    const CallResult& r = s.await(s.call("a", "C", "join", args));
    SKIP_IF_UNSUPPORTED(r);
    EXPECT_TRUE(r.raised("AssertionError")) << "join(" << args << ") before start: " << r;
  }
}

// ---------------------------------------------------------------------- §5 is_alive()

TEST(Process, JoinAndIsAliveByANonParentRaiseAssertionError) {
  // The parent (the driver) starts the child in the prelude; the actors are not its parent.
  // The child sleeps until teardown, which must kill and reap it ([protocol.setup.inherited]):
  // checked in /proc at the end.
  MPSPEC_CLAUSES("[process.join.not_parent] [process.is_alive.not_parent]");
  Scenario s;
  pipe(s);
  inherited_process(s, "C", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.prelude("C", "start").prelude("C", "pid");
  s.actor("a").actor("b");
  needs(s, {"join", "is_alive"});
  MPSPEC_START(s);
  ASSERT_EQ(s.prelude_results().size(), 2u)
      << "one value per prelude call: " << s.prelude_results().dump();
  const Json pid = s.prelude_results()[1];
  EXPECT_TRUE(is_int(pid)) << "pid after a prelude start: " << pid;
  EXPECT_EQ(recv(s), Json("sleeping")) << "the child started by the parent does not run";
  for (const char* actor : {"a", "b"}) {
    const CallId join = s.call(actor, "C", "join");
    if (!s.returns_within(join, long_())) {
      ADD_FAILURE() << "join on " << actor << ", not the parent, blocks instead of raising";
      return;  // the thread is busy; teardown ends it
    }
    EXPECT_TRUE(s.result(join).raised("AssertionError"))
        << "join on " << actor << ", not the parent: " << s.result(join);
    const CallResult& alive = s.await(s.call(actor, "C", "is_alive"));
    EXPECT_TRUE(alive.raised("AssertionError"))
        << "is_alive on " << actor << ", not the parent: " << alive;
  }
  // Teardown stops and reaps the child the parent started.
  const std::optional<ProcStat> before = is_int(pid) && descends_from_suite(pid.get<long>())
                                             ? proc_stat(pid.get<long>())
                                             : std::nullopt;
  s.teardown();
  if (before) {
    const auto after = proc_stat(pid.get<long>());
    EXPECT_FALSE(after && after->ppid == before->ppid)
        << "the child " << pid << " of the driver is still there after teardown (state "
        << after->state << ")";
  }
}

TEST(Process, IsAliveFollowsTheChild) {
  MPSPEC_CLAUSES("[process.is_alive.lifecycle]");
  Scenario s;
  pipe(s);
  s.object("M", "Module");
  process(s, "C1", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  process(s, "C2", "identity", Json{{"value", 2}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "is_alive", "terminate", "join", "exitcode", "pid"});
  needs(s, {"wait"}, "Module");
  MPSPEC_START(s);
  const CallResult& before = s.await(s.call("a", "C1", "is_alive"));
  SKIP_IF_UNSUPPORTED(before);
  EXPECT_TRUE(before.ok(false)) << "before start: " << before;
  START(s, "C1");
  EXPECT_TRUE(s.await(s.call("a", "C1", "is_alive")).ok(true)) << "right after start";
  const Json pid1 = get(s, "C1", "pid");
  EXPECT_EQ(recv(s), Json("sleeping"));
  EXPECT_TRUE(s.await(s.call("a", "C1", "is_alive")).ok(true)) << "while it sleeps";
  // Ended by a signal, not joined: its sentinel is ready, is_alive is False.
  EXPECT_TRUE(s.await(s.call("a", "C1", "terminate")).ok(nullptr));
  EXPECT_EQ(
      get(s, "M", "wait", Json{{"object_list", Json::array({ref("C1")})}, {"timeout", nullptr}}),
      Json::array({"C1"}));
  await_os_end(pid1);
  EXPECT_TRUE(s.await(s.call("a", "C1", "is_alive")).ok(false)) << "ended, not joined";
  EXPECT_EQ(get(s, "C1", "exitcode"), Json(-15));
  // Ended by returning, not joined.
  START(s, "C2");
  const Json pid2 = get(s, "C2", "pid");
  EXPECT_EQ(recv(s), Json(2));
  EXPECT_EQ(
      get(s, "M", "wait", Json{{"object_list", Json::array({ref("C2")})}, {"timeout", nullptr}}),
      Json::array({"C2"}));
  await_os_end(pid2);
  EXPECT_TRUE(s.await(s.call("a", "C2", "is_alive")).ok(false)) << "ended, not joined";
  EXPECT_EQ(get(s, "C2", "exitcode"), Json(0));
  EXPECT_TRUE(s.await(s.call("a", "C2", "join")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "C2", "is_alive")).ok(false)) << "ended and joined";
}

// ---------------------------------------------------------------------- §6 exitcode

TEST(Process, ExitcodeIsNullBeforeStartAndWhileRunning) {
  MPSPEC_CLAUSES("[process.exitcode.running]");
  Scenario s;
  pipe(s);
  process(s, "C", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "exitcode", "kill", "join"});
  MPSPEC_START(s);
  const CallResult& before = s.await(s.call("a", "C", "exitcode"));
  SKIP_IF_UNSUPPORTED(before);
  EXPECT_TRUE(before.ok(nullptr)) << "before start: " << before;
  START(s, "C");
  EXPECT_EQ(get(s, "C", "exitcode"), Json(nullptr)) << "right after start";
  EXPECT_EQ(recv(s), Json("sleeping"));
  EXPECT_EQ(get(s, "C", "exitcode"), Json(nullptr)) << "while the child sleeps";
  EXPECT_TRUE(s.await(s.call("a", "C", "kill")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C"), Json(-9));
}

// ---------------------------------------------------------- §7 terminate() and kill()

TEST(Process, TerminateSendsSigterm) {
  MPSPEC_CLAUSES("[process.terminate.signal] [process.exitcode.signal]");
  Scenario s;
  pipe(s);
  process(s, "C", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "terminate", "join", "exitcode"});
  MPSPEC_START(s);
  START(s, "C");
  ASSERT_EQ(recv(s), Json("sleeping"));
  EXPECT_TRUE(s.await(s.call("a", "C", "terminate")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C"), Json(-15));
}

TEST(Process, KillSendsSigkill) {
  MPSPEC_CLAUSES("[process.kill.signal] [process.exitcode.signal]");
  Scenario s;
  pipe(s);
  process(s, "C", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "kill", "join", "exitcode"});
  MPSPEC_START(s);
  START(s, "C");
  ASSERT_EQ(recv(s), Json("sleeping"));
  EXPECT_TRUE(s.await(s.call("a", "C", "kill")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C"), Json(-9));
}

TEST(Process, TerminatedChildRunsNoCleanup) {
  MPSPEC_CLAUSES("[process.terminate.no_cleanup]");
  Scenario s;
  pipe(s, "a");  // W only in "a", which closes it once both children hold theirs
  process(s, "C1", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  process(s, "C2", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "terminate", "kill", "join", "exitcode"});
  MPSPEC_START(s);
  START(s, "C1");
  START(s, "C2");
  EXPECT_EQ(recv(s), Json("sleeping"));
  EXPECT_EQ(recv(s), Json("sleeping"));
  ASSERT_TRUE(s.await(s.call("a", "W", "close")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "C1", "terminate")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "C2", "kill")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C1"), Json(-15));
  EXPECT_EQ(join_exitcode(s, "C2"), Json(-9));
  // The children held the last copies of W: end of file, and no "done" before it.
  const CallResult& r = s.await(s.call("a", "R", "recv"));
  EXPECT_TRUE(r.raised("EOFError"))
      << "expected end of file, got " << r << " (\"done\" means a finally block ran)";
}

TEST(Process, TerminateLeavesGrandchildrenRunning) {
  MPSPEC_CLAUSES("[process.terminate.descendants]");
  Scenario s;
  pipe(s);
  const double sleep = long_();
  process(s, "C", "start_child",
          Json{{"task", "sleep"},
               {"args", Json{{"seconds", sleep}, {"conn", kW}}},
               {"join", true},
               {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "terminate", "join", "exitcode"});
  MPSPEC_START(s);
  const CallId start = s.call("a", "C", "start");
  const CallResult& st = s.await(start);
  SKIP_IF_UNSUPPORTED(st);
  ASSERT_TRUE(st.ok(nullptr)) << st;
  // The child's map and the grandchild's "sleeping", in either order.
  std::vector<Json> got = {recv(s), recv(s)};
  ASSERT_TRUE(std::count(got.begin(), got.end(), Json("sleeping")) == 1) << "the grandchild "
                                                                         << "did not start";
  EXPECT_TRUE(s.await(s.call("a", "C", "terminate")).ok(nullptr));
  const CallId join = s.call("a", "C", "join");
  EXPECT_TRUE(s.await(join).ok(nullptr));
  EXPECT_EQ(get(s, "C", "exitcode"), Json(-15));
  // The grandchild began its sleep after the child's start was invoked, so it was still
  // sleeping when the child ended if the join returned before start + sleep.
  if (s.result(join).return_ns >= s.result(start).invoke_ns + ns(sleep) - ns(kClockResolution))
    GTEST_SKIP() << "UNRESOLVED: the child ended only after the grandchild's sleep could have "
                 << "ended; nothing shown";
  const CallResult& done = s.await(s.call("a", "R", "recv"));
  EXPECT_TRUE(done.ok("done")) << "the orphaned grandchild did not finish its sleep: " << done;
}

TEST(Process, TerminateOrKillOfAnEndedChildDoesNothing) {
  MPSPEC_CLAUSES("[process.terminate.ended]");
  Scenario s;
  pipe(s);
  process(s, "C", "identity", Json{{"value", 1}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "terminate", "kill", "join", "exitcode"});
  MPSPEC_START(s);
  START(s, "C");
  EXPECT_EQ(recv(s), Json(1));
  ASSERT_EQ(join_exitcode(s, "C"), Json(0));
  for (const char* m : {"terminate", "kill", "terminate"}) {
    const CallResult& r = s.await(s.call("a", "C", m));
    EXPECT_TRUE(r.ok(nullptr)) << m << " of an ended child: " << r;
    EXPECT_EQ(get(s, "C", "exitcode"), Json(0)) << "after " << m;
  }
  EXPECT_TRUE(s.await(s.call("a", "C", "join")).ok(nullptr));
  EXPECT_EQ(get(s, "C", "exitcode"), Json(0));
}

TEST(Process, TerminateOrKillOfAnUnstartedProcessMayRaise) {
  MPSPEC_CLAUSES("[process.terminate.unstarted]");
  Scenario s;
  process(s, "C", "identity", Json::object());
  s.actor("a");
  needs(s, {"terminate", "kill"});
  MPSPEC_START(s);
  for (const char* m : {"terminate", "kill"}) {
    const CallResult& r = s.await(s.call("a", "C", m));
    SKIP_IF_UNSUPPORTED(r);
    // Either outcome is allowed: it does nothing (None) or raises an error of any kind.
    EXPECT_TRUE(r.ok(nullptr) || r.status == OpStatus::kError) << m << ": " << r;
  }
}

// ------------------------------------------------- §8 pid, sentinel, authkey, parent's exit

TEST(Process, SentinelOfUnstartedProcessRaisesValueError) {
  MPSPEC_CLAUSES("[process.sentinel.unstarted]");
  Scenario s;
  process(s, "C", "identity", Json::object());
  s.actor("a");
  needs(s, {"sentinel"});
  MPSPEC_START(s);
  const CallResult& r = s.await(s.call("a", "C", "sentinel"));
  SKIP_IF_UNSUPPORTED(r);
  EXPECT_TRUE(r.raised("ValueError")) << r;
}

TEST(Process, SentinelBecomesReadyWhenTheChildEnds) {
  MPSPEC_CLAUSES("[process.sentinel.ready]");
  Scenario s;
  pipe(s);
  s.object("M", "Module");
  process(s, "C", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "sentinel", "terminate", "join", "exitcode", "is_alive"});
  needs(s, {"wait"}, "Module");
  s.needs_feature("timeout");
  MPSPEC_START(s);
  START(s, "C");
  const Json sentinel = get(s, "C", "sentinel");
  EXPECT_TRUE(is_int(sentinel)) << "sentinel after start: " << sentinel;
  ASSERT_EQ(recv(s), Json("sleeping"));
  const Json list = Json{{"object_list", Json::array({ref("C")})}};
  Json timed = list;
  timed["timeout"] = small();
  EXPECT_EQ(get(s, "M", "wait", timed), Json::array()) << "ready while the child sleeps";
  EXPECT_TRUE(s.await(s.call("a", "C", "is_alive")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "C", "terminate")).ok(nullptr));
  Json untimed = list;
  untimed["timeout"] = nullptr;
  EXPECT_EQ(get(s, "M", "wait", untimed), Json::array({"C"})) << "not ready after the end";
  EXPECT_EQ(join_exitcode(s, "C"), Json(-15));
  EXPECT_EQ(get(s, "M", "wait", timed), Json::array({"C"})) << "ready stays ready";
}

TEST(Process, AuthkeyIsInherited) {
  MPSPEC_CLAUSES("[process.authkey.inherited]");
  Scenario s;
  pipe(s);
  s.object("M", "Module");
  process(s, "C1", "describe", Json{{"conn", kW}});
  process(s, "C2", "start_child",
          Json{{"task", "describe"}, {"args", Json{{"conn", kW}}}, {"join", true}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode"});
  needs(s, {"current_process"}, "Module");
  MPSPEC_START(s);
  const Json me = get(s, "M", "current_process");
  ASSERT_TRUE(me.is_object()) << me;
  if (!me.contains("authkey"))
    GTEST_SKIP() << "UNSUPPORTED: current_process() has no `authkey` (no process keys): " << me;
  EXPECT_TRUE(is_bytes(me["authkey"])) << "authkey must be bytes: " << me;
  START(s, "C1");
  const Json child = recv(s);
  EXPECT_EQ(join_exitcode(s, "C1"), Json(0));
  ASSERT_TRUE(child.is_object()) << child;
  if (!child.contains("authkey"))
    GTEST_SKIP() << "UNSUPPORTED: describe's map has no `authkey`: " << child;
  EXPECT_EQ(child["authkey"], me["authkey"]) << "the child's key is not its creator's";
  // A generation further: the grandchild's key is the child's, hence the actor's.
  START(s, "C2");
  Json grandchild;
  for (int i = 0; i < 2; ++i) {
    const Json v = recv(s);
    if (v.is_object() && v.contains("daemon")) grandchild = v;
  }
  EXPECT_EQ(join_exitcode(s, "C2"), Json(0));
  ASSERT_TRUE(grandchild.is_object()) << "the grandchild sent no description";
  EXPECT_EQ(grandchild.value("authkey", Json()), me["authkey"]);
}

TEST(Process, DaemonicChildrenAreTerminatedAtExit) {
  MPSPEC_CLAUSES("[process.daemon.exit]");
  Scenario s;
  pipe(s, "a");  // W only in "a", which closes it: end of file once child and grandchild died
  process(s, "C", "start_child",
          Json{{"task", "sleep"},
               {"args", Json{{"seconds", forever()}, {"conn", kW}}},
               {"daemon", true},
               {"join", false},
               {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode"});
  MPSPEC_START(s);
  START(s, "C");
  ASSERT_TRUE(s.await(s.call("a", "W", "close")).ok(nullptr));
  // The grandchild sleeps far beyond the liveness bound: only its termination lets the
  // child end within it.
  EXPECT_EQ(join_exitcode(s, "C"), Json(0));
  // What arrived: the child's map, perhaps the grandchild's "sleeping", never "done"; then end
  // of file (no copy of W is left: the grandchild has died too).
  bool map = false, eof = false;
  for (int i = 0; i < 3 && !eof; ++i) {
    const CallResult& r = s.await(s.call("a", "R", "recv"));
    if (r.raised("EOFError")) {
      eof = true;
    } else {
      ASSERT_TRUE(r.ok()) << r;
      if (r.value.is_object())
        map = true;
      else
        EXPECT_EQ(r.value, Json("sleeping")) << "the terminated grandchild ran its clean-up";
    }
  }
  EXPECT_TRUE(map) << "start_child sent no map";
  EXPECT_TRUE(eof) << "no end of file after three messages";
}

TEST(Process, NonDaemonicChildrenAreJoinedAtExit) {
  MPSPEC_CLAUSES("[process.non_daemon.exit]");
  Scenario s;
  pipe(s);
  const double sleep = long_();
  process(s, "C", "start_child",
          Json{{"task", "sleep"},
               {"args", Json{{"seconds", sleep}, {"conn", kW}}},
               {"daemon", false},
               {"join", false},
               {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode", "is_alive"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  const CallId start = s.call("a", "C", "start");
  const CallResult& st = s.await(start);
  SKIP_IF_UNSUPPORTED(st);
  ASSERT_TRUE(st.ok(nullptr)) << st;
  // The child's map and the grandchild's "sleeping": the child's task has returned by now,
  // or will without waiting.
  std::vector<Json> got = {recv(s), recv(s)};
  ASSERT_TRUE(std::count(got.begin(), got.end(), Json("sleeping")) == 1) << "the grandchild "
                                                                         << "did not start";
  EXPECT_TRUE(s.await(s.call("a", "C", "join", timeout(small()))).ok(nullptr));
  const CallId code = s.call("a", "C", "exitcode");
  const CallResult& c = s.await(code);
  ASSERT_TRUE(c.ok()) << c;
  if (!c.value.is_null()) {
    // The grandchild cannot have finished before start + sleep.
    if (c.invoke_ns >= s.result(start).invoke_ns + ns(sleep) - ns(kClockResolution))
      GTEST_SKIP() << "UNRESOLVED: the check came after the grandchild's sleep could have ended";
    ADD_FAILURE() << "the child ended (exitcode " << c.value << ") while its non-daemonic "
                  << "child still slept";
  }
  EXPECT_EQ(join_exitcode(s, "C"), Json(0));
  EXPECT_TRUE(pending(s)) << "the child ended before its non-daemonic child sent \"done\"";
  EXPECT_EQ(recv(s), Json("done"));
}

// ---------------------------------------------------------------------- §9 close()

TEST(Process, CloseOfARunningChildRaisesValueError) {
  MPSPEC_CLAUSES("[process.close.running]");
  Scenario s;
  pipe(s);
  process(s, "C", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "close", "is_alive", "kill", "join", "exitcode"});
  MPSPEC_START(s);
  START(s, "C");
  ASSERT_EQ(recv(s), Json("sleeping"));
  const CallResult& r = s.await(s.call("a", "C", "close"));
  EXPECT_TRUE(r.raised("ValueError")) << r;
  EXPECT_TRUE(s.await(s.call("a", "C", "is_alive")).ok(true)) << "the failed close changed it";
  EXPECT_TRUE(s.await(s.call("a", "C", "kill")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C"), Json(-9));
  EXPECT_TRUE(s.await(s.call("a", "C", "close")).ok(nullptr)) << "close once ended and joined";
}

TEST(Process, ClosedProcessKeepsOnlyNameAndDaemon) {
  MPSPEC_CLAUSES("[process.close.after] [process.close.keeps]");
  Scenario s;
  pipe(s);
  process(s, "C", "identity", Json{{"value", 1}, {"conn", kW}},
          Json{{"name", "closing"}, {"daemon", true}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode", "close", "pid", "sentinel", "is_alive", "terminate",
            "kill", "name", "daemon"});
  MPSPEC_START(s);
  START(s, "C");
  EXPECT_EQ(recv(s), Json(1));
  ASSERT_EQ(join_exitcode(s, "C"), Json(0));
  ASSERT_TRUE(s.await(s.call("a", "C", "close")).ok(nullptr));
  for (const char* m : {"pid", "exitcode", "sentinel", "is_alive", "join", "terminate", "kill"}) {
    const CallResult& r = s.await(s.call("a", "C", m));
    EXPECT_TRUE(r.raised("ValueError")) << m << " after close: " << r;
  }
  EXPECT_EQ(get(s, "C", "name"), Json("closing"));
  EXPECT_EQ(get(s, "C", "daemon"), Json(true));
}

TEST(Process, CloseIsIdempotent) {
  MPSPEC_CLAUSES("[process.close.idempotent]");
  Scenario s;
  pipe(s);
  process(s, "C1", "identity", Json{{"value", 1}, {"conn", kW}});
  process(s, "C2", "identity", Json::object());
  s.actor("a");
  needs(s, {"start", "join", "close"});
  MPSPEC_START(s);
  START(s, "C1");
  EXPECT_EQ(recv(s), Json(1));
  EXPECT_TRUE(s.await(s.call("a", "C1", "join")).ok(nullptr));
  for (const char* c : {"C1", "C2"})  // C2 was never started
    for (int i = 0; i < 3; ++i) {
      const CallResult& r = s.await(s.call("a", c, "close"));
      EXPECT_TRUE(r.ok(nullptr)) << c << ": close #" << i + 1 << ": " << r;
    }
}

// ------------------------------------- §10 current_process, parent_process, active_children

TEST(Process, CurrentProcessInTheMainProcess) {
  // Asked in the prelude, which runs in the driver's parent: the main process.
  MPSPEC_CLAUSES("[process.current.main]");
  Scenario s;
  s.object("M", "Module");
  s.prelude("M", "current_process");
  s.actor("a");
  MPSPEC_START(s);
  ASSERT_EQ(s.prelude_results().size(), 1u)
      << "one value per prelude call: " << s.prelude_results().dump();
  const Json m = s.prelude_results()[0];
  ASSERT_TRUE(m.is_object()) << m;
  EXPECT_EQ(m.value("name", Json()), Json("MainProcess")) << m;
  EXPECT_EQ(m.value("daemon", Json()), Json(false)) << m;
  EXPECT_EQ(m.value("alive", Json()), Json(true)) << m;
  const Json pid = m.value("pid", Json());
  ASSERT_TRUE(is_int(pid)) << m;
  // The driver's pid, unless its command is a wrapper that started the driver as its
  // descendant: then a descendant of it, and not the actor.
  const long driver = static_cast<long>(Backend::get().driver().pid());
  if (pid.get<long>() != driver) {
    long p = pid.get<long>();
    bool below = false;
    for (int depth = 0; depth < 8 && p > 1 && !below; ++depth) {
      const auto st = proc_stat(p);
      if (!st) break;
      below = st->ppid == driver;
      p = st->ppid;
    }
    EXPECT_TRUE(below) << "pid " << pid << " is neither the driver's (" << driver
                       << ") nor a descendant of it";
    EXPECT_NE(pid, get(s, "M", "current_process").value("pid", Json()))
        << "the main process is the actor";
  }
}

TEST(Process, ParentProcessInTheMainProcessIsNone) {
  MPSPEC_CLAUSES("[process.parent.main]");
  Scenario s;
  s.object("M", "Module");
  s.prelude("M", "parent_process");  // UNSUPPORTED without Module.parent_process
  s.actor("a");
  MPSPEC_START(s);
  ASSERT_EQ(s.prelude_results().size(), 1u)
      << "one value per prelude call: " << s.prelude_results().dump();
  EXPECT_EQ(s.prelude_results()[0], Json(nullptr)) << "parent_process() in the main process";
}

TEST(Process, CurrentProcessInTheChildIsItsProcess) {
  MPSPEC_CLAUSES("[process.current.child]");
  Scenario s;
  pipe(s);
  process(s, "C1", "describe", Json{{"conn", kW}}, Json{{"name", "worker"}, {"daemon", true}});
  process(s, "C2", "describe", Json{{"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode", "name", "pid", "daemon"});
  MPSPEC_START(s);
  for (const char* c : {"C1", "C2"}) {
    START(s, c);
    const Json m = recv(s);
    EXPECT_EQ(join_exitcode(s, c), Json(0)) << c;
    ASSERT_TRUE(m.is_object()) << c << ": " << m;
    EXPECT_EQ(m.value("name", Json()), get(s, c, "name")) << c << ": " << m;
    EXPECT_EQ(m.value("pid", Json()), get(s, c, "pid")) << c << ": " << m;
    EXPECT_EQ(m.value("daemon", Json()), get(s, c, "daemon")) << c << ": " << m;
  }
}

TEST(Process, ParentProcessInTheChildIsItsCreator) {
  MPSPEC_CLAUSES("[process.parent.child]");
  Scenario s;
  pipe(s);
  s.object("M", "Module");
  process(s, "C1", "describe", Json{{"conn", kW}});
  process(s, "C2", "start_child",
          Json{{"task", "describe"}, {"args", Json{{"conn", kW}}}, {"join", true}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "join", "exitcode", "name", "pid"});
  needs(s, {"current_process"}, "Module");
  MPSPEC_START(s);
  START(s, "C1");
  const Json child = recv(s);
  EXPECT_EQ(join_exitcode(s, "C1"), Json(0));
  ASSERT_TRUE(child.is_object()) << child;
  if (!child.contains("parent"))
    GTEST_SKIP() << "UNSUPPORTED: describe's map has no `parent` (no parent_process): " << child;
  const Json me = get(s, "M", "current_process");
  ASSERT_TRUE(child["parent"].is_object()) << "a child has a parent: " << child;
  EXPECT_EQ(child["parent"].value("name", Json()), me.value("name", Json())) << child;
  EXPECT_EQ(child["parent"].value("pid", Json()), me.value("pid", Json())) << child;
  // The grandchild's parent is the child C2.
  START(s, "C2");
  Json grandchild;
  for (int i = 0; i < 2; ++i) {
    const Json v = recv(s);
    if (v.is_object() && v.contains("daemon")) grandchild = v;
  }
  EXPECT_EQ(join_exitcode(s, "C2"), Json(0));
  ASSERT_TRUE(grandchild.is_object() && grandchild.contains("parent") &&
              grandchild["parent"].is_object())
      << grandchild;
  EXPECT_EQ(grandchild["parent"].value("name", Json()), get(s, "C2", "name")) << grandchild;
  EXPECT_EQ(grandchild["parent"].value("pid", Json()), get(s, "C2", "pid")) << grandchild;
}

TEST(Process, ParentProcessAnswersIsAlive) {
  // The live half, in an actor: its parent (the driver) is running. The whole clause, with a
  // parent that ends: ParentProcessIsAliveUntilItEnds.
  MPSPEC_CLAUSES("[process.parent.alive]");
  Scenario s;
  s.object("M", "Module");
  s.actor("a");
  needs(s, {"parent_process"}, "Module");
  MPSPEC_START(s);
  const CallResult& r = s.await(s.call("a", "M", "parent_process"));
  ASSERT_TRUE(r.ok()) << r;
  // A backend whose actors are main processes (the driver kit's) cannot run this half; the
  // clause is then judged by ParentProcessIsAliveUntilItEnds alone.
  if (r.value.is_null())
    GTEST_SKIP() << "UNSUPPORTED: the backend's actors are main processes (no parent process "
                    "to ask); ParentProcessIsAliveUntilItEnds checks the clause";
  ASSERT_TRUE(r.value.is_object()) << r;
  EXPECT_EQ(r.value.value("alive", Json()), Json(true)) << "the driver is running: " << r;
}

TEST(Process, ParentProcessIsAliveUntilItEnds) {
  // The grandchild runs watch_parent: it reports its parent C alive, waits in
  // parent_process().join(...) (a timeout far beyond the liveness bound) and reports again
  // once it returns. C does not join it but waits for it at its exit
  // ([process.non_daemon.exit]), until the test kills C through its parent, "a".
  MPSPEC_CLAUSES("[process.parent.alive] [process.task.watch_parent]");
  Scenario s;
  pipe(s);
  process(s, "C", "start_child",
          Json{{"task", "watch_parent"},
               {"args", Json{{"timeout", forever()}, {"conn", kW}}},
               {"join", false},
               {"conn", kW}});
  // Never started: a driver without watch_parent in its catalogue refuses the setup
  // (UNSUPPORTED); start_child's own `task` is not checked at setup.
  process(s, "Probe", "watch_parent", Json::object());
  s.actor("a");
  needs(s, {"start", "kill", "join", "exitcode"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  START(s, "C");
  Json alive;
  bool reported = false;
  for (int i = 0; i < 2; ++i) {
    const Json v = recv(s);
    if (v.is_object())
      reported = true;  // start_child's map of the grandchild
    else
      alive = v;
  }
  EXPECT_TRUE(reported) << "start_child did not report the grandchild";
  EXPECT_EQ(alive, Json(true)) << "parent_process().is_alive() while the parent runs";
  EXPECT_TRUE(s.await(s.call("a", "R", "poll", timeout(small()))).ok(false))
      << "parent_process().join(timeout) returned while the parent runs";
  EXPECT_TRUE(s.await(s.call("a", "C", "kill")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C"), Json(-9));
  const CallResult& p = s.await(s.call("a", "R", "poll", timeout(huge() / 2)));
  ASSERT_TRUE(p.ok(true)) << "parent_process().join(timeout) did not return after the parent "
                          << "ended: " << p;
  EXPECT_EQ(recv(s), Json(false)) << "parent_process().is_alive() after the parent ended";
}

TEST(Process, ActiveChildrenListsLiveChildren) {
  MPSPEC_CLAUSES("[process.active_children.live]");
  Scenario s;
  pipe(s);
  s.object("M", "Module");
  process(s, "C1", "sleep", Json{{"seconds", forever()}, {"conn", kW}}, Json{{"name", "sleeper"}});
  process(s, "C2", "identity", Json{{"value", 2}, {"conn", kW}}, Json{{"name", "quick"}});
  process(s, "C3", "identity", Json::object(), Json{{"name", "unstarted"}});
  s.actor("a");
  needs(s, {"start", "name", "kill", "join", "exitcode", "pid"});
  needs(s, {"active_children", "wait"}, "Module");
  MPSPEC_START(s);
  auto children = [&s]() {
    std::set<std::string> names;
    const Json v = get(s, "M", "active_children");
    EXPECT_TRUE(v.is_array()) << v;
    if (v.is_array())
      for (const auto& n : v) names.insert(n.is_string() ? n.get<std::string>() : n.dump());
    return names;
  };
  EXPECT_EQ(get(s, "C3", "name"), Json("unstarted"));  // constructed, never started
  auto now = children();
  EXPECT_FALSE(now.count("sleeper") || now.count("quick") || now.count("unstarted"));
  START(s, "C1");
  ASSERT_EQ(recv(s), Json("sleeping"));
  START(s, "C2");
  const Json pid2 = get(s, "C2", "pid");
  EXPECT_EQ(recv(s), Json(2));
  // C2 has ended (its sentinel is ready) but was not joined.
  EXPECT_EQ(
      get(s, "M", "wait", Json{{"object_list", Json::array({ref("C2")})}, {"timeout", nullptr}}),
      Json::array({"C2"}));
  await_os_end(pid2);
  now = children();
  EXPECT_TRUE(now.count("sleeper")) << "a running child is not listed";
  EXPECT_FALSE(now.count("quick")) << "an ended child is listed";
  EXPECT_FALSE(now.count("unstarted")) << "an unstarted Process is listed";
  EXPECT_TRUE(s.await(s.call("a", "C1", "kill")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C1"), Json(-9));
  now = children();
  EXPECT_FALSE(now.count("sleeper")) << "a killed and joined child is listed";
}

TEST(Process, ActiveChildrenReapsEndedChildren) {
  // The zombie is observed in /proc by this test, which checks first that the pid is one of
  // its descendants (the backend's pids are those of this machine).
  MPSPEC_CLAUSES("[process.active_children.reaps]");
  Scenario s;
  pipe(s);
  s.object("M", "Module");
  process(s, "C", "identity", Json{{"value", 1}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "pid", "exitcode"});
  needs(s, {"active_children", "wait"}, "Module");
  MPSPEC_START(s);
  START(s, "C");
  const Json pid = get(s, "C", "pid");
  ASSERT_TRUE(is_int(pid)) << pid;
  EXPECT_EQ(recv(s), Json(1));
  EXPECT_EQ(
      get(s, "M", "wait", Json{{"object_list", Json::array({ref("C")})}, {"timeout", nullptr}}),
      Json::array({"C"}));
  await_os_end(pid);
  const long p = pid.get<long>();
  const auto before = proc_stat(p);
  if (!before || before->state != 'Z' || !descends_from_suite(p))
    GTEST_SKIP() << "UNRESOLVED: the ended child " << p << " is not visible as a zombie "
                 << "descendant in /proc (already reaped, or another pid namespace)";
  const long parent = before->ppid;
  EXPECT_TRUE(get(s, "M", "active_children").is_array());
  const auto after = proc_stat(p);
  EXPECT_FALSE(after && after->state == 'Z' && after->ppid == parent)
      << "child " << p << " is still a zombie after active_children()";
  EXPECT_EQ(get(s, "C", "exitcode"), Json(0)) << "the status was lost in reaping";
}

TEST(Process, CpuCountIsPositiveOrNotImplemented) {
  MPSPEC_CLAUSES("[process.cpu_count]");
  Scenario s;
  s.object("M", "Module");
  s.actor("a");
  needs(s, {"cpu_count"}, "Module");
  MPSPEC_START(s);
  const CallResult& r = s.await(s.call("a", "M", "cpu_count"));
  if (r.raised("NotImplementedError")) return;
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_TRUE(is_int(r.value) && r.value.get<long>() >= 1) << r;
}

// ------------------------------------------------------- §11 Start methods and contexts

// Both tests use a second pipe whose write end "W2" is NOT among the child's arguments: under
// fork the child holds a copy of it (it copies its parent), under spawn it does not (it gets
// only its arguments). "a" keeps the only other copy of W2 and closes it after the start.
void start_method_scenario(Scenario& s) {
  pipe(s);
  s.object("Q", "Pipe", Json{{"duplex", false}});
  s.object("R2", "Connection", Json{{"pipe", ref("Q")}, {"end", 0}});
  s.object("W2", "Connection", Json{{"pipe", ref("Q")}, {"end", 1}});
  s.owner("W2", "a").needs_method("Connection", "close");
  process(s, "C", "sleep", Json{{"seconds", forever()}, {"conn", kW}});
  s.actor("a");
  needs(s, {"start", "kill", "join", "exitcode", "is_alive"});
}

TEST(Process, ForkChildCopiesItsParent) {
  MPSPEC_CLAUSES("[process.start_method.fork]");
  if (start_method() != "fork")
    GTEST_SKIP() << "UNSUPPORTED: runs under the fork start method (this run: " << start_method()
                 << ")";
  Scenario s;
  start_method_scenario(s);
  s.needs_feature("timeout");
  MPSPEC_START(s);
  START(s, "C");
  EXPECT_EQ(recv(s), Json("sleeping")) << "the inherited conn does not reach the child";
  ASSERT_TRUE(s.await(s.call("a", "W2", "close")).ok(nullptr));
  // The child's inherited copy of W2 keeps the pipe open: no end of file while it runs.
  EXPECT_TRUE(s.await(s.call("a", "R2", "poll", timeout(small()))).ok(false))
      << "end of file on a pipe whose write end the forked child should hold";
  EXPECT_TRUE(s.await(s.call("a", "C", "is_alive")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "C", "kill")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C"), Json(-9));
  const CallResult& r = s.await(s.call("a", "R2", "recv"));
  EXPECT_TRUE(r.raised("EOFError")) << "after the child's death: " << r;
}

TEST(Process, SpawnChildGetsOnlyItsArguments) {
  MPSPEC_CLAUSES("[process.start_method.spawn]");
  if (start_method() != "spawn")
    GTEST_SKIP() << "UNSUPPORTED: runs under the spawn start method (this run: " << start_method()
                 << ")";
  Scenario s;
  start_method_scenario(s);
  MPSPEC_START(s);
  START(s, "C");
  EXPECT_EQ(recv(s), Json("sleeping")) << "the conn argument does not reach the child";
  ASSERT_TRUE(s.await(s.call("a", "W2", "close")).ok(nullptr));
  // The spawned child never had W2: end of file while it still runs.
  const CallResult& r = s.await(s.call("a", "R2", "recv"));
  EXPECT_TRUE(r.raised("EOFError")) << r;
  EXPECT_TRUE(s.await(s.call("a", "C", "is_alive")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "C", "kill")).ok(nullptr));
  EXPECT_EQ(join_exitcode(s, "C"), Json(-9));
}

TEST(Process, SpawnStartOfAnUncarriableArgumentRaises) {
  // The task's `value` is an object the backend cannot carry ([protocol.values.uncarriable]).
  MPSPEC_CLAUSES("[process.start.uncarried]");
  if (start_method() != "spawn")
    GTEST_SKIP() << "UNSUPPORTED: runs under the spawn start method (this run: " << start_method()
                 << ")";
  Scenario s;
  pipe(s);
  process(s, "C", "identity", Json{{"value", Json{{"$uncarriable", nullptr}}}, {"conn", kW}});
  s.actor("a");
  s.needs_feature("uncarriable");
  needs(s, {"start"});
  MPSPEC_START(s);
  const CallResult& r = s.await(s.call("a", "C", "start"));
  SKIP_IF_UNSUPPORTED(r);
  EXPECT_EQ(r.status, OpStatus::kError) << "start with an uncarriable argument: " << r;
  EXPECT_TRUE(s.await(s.call("a", "R", "poll", timeout(small()))).ok(false)) << "the child ran";
}

TEST(Process, SetStartMethodTwiceRaisesRuntimeError) {
  MPSPEC_CLAUSES("[process.context.set_twice]");
  Scenario s;
  s.object("M", "Module");
  s.actor("a");
  needs(s, {"set_start_method"}, "Module");
  MPSPEC_START(s);
  const std::string method = start_method();
  // Forced: whatever the actor did before, the default is now set.
  const CallResult& first =
      s.await(s.call("a", "M", "set_start_method", Json{{"method", method}, {"force", true}}));
  ASSERT_TRUE(first.ok(nullptr)) << "set_start_method(" << method << ", force=True): " << first;
  const CallResult& second =
      s.await(s.call("a", "M", "set_start_method", Json{{"method", method}}));
  EXPECT_TRUE(second.raised("RuntimeError")) << "set a second time: " << second;
  const CallResult& forced =
      s.await(s.call("a", "M", "set_start_method", Json{{"method", method}, {"force", true}}));
  EXPECT_TRUE(forced.ok(nullptr)) << "forcing is allowed: " << forced;
}

TEST(Process, UnknownContextRaisesValueError) {
  MPSPEC_CLAUSES("[process.context.unknown]");
  Scenario s;
  s.object("M", "Module");
  s.actor("a");
  needs(s, {"get_context"}, "Module");
  MPSPEC_START(s);
  const CallResult& r =
      s.await(s.call("a", "M", "get_context", Json{{"method", "no-such-start-method"}}));
  EXPECT_TRUE(r.raised("ValueError")) << r;
  const CallResult& known =
      s.await(s.call("a", "M", "get_context", Json{{"method", start_method()}}));
  EXPECT_TRUE(known.ok(start_method())) << "the context of this run's start method: " << known;
}

}  // namespace
}  // namespace mpspec
