#include "scenario.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace mpspec {

namespace {
std::string& command_slot() {
  static std::string cmd;
  return cmd;
}
int next_serial() {
  static int n = 0;
  return ++n;
}
constexpr auto kRequestLimit = std::chrono::seconds(60);

std::string current_test_name() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (!info) return "no-test";
  std::string n = std::string(info->test_suite_name()) + "." + info->name();
  for (auto& c : n)
    if (c == '/') c = '_';
  return n;
}
}  // namespace

double timing::multiplier() {
  static const double m = [] {
    const char* s = std::getenv("MPSPEC_TIMEOUT_MULTIPLIER");
    if (!s) return 1.0;
    char* end = nullptr;
    double v = std::strtod(s, &end);
    if (end == s || !(v > 0)) {
      std::cerr << "MPSPEC_TIMEOUT_MULTIPLIER must be a positive number, not '" << s << "'\n";
      std::exit(2);
    }
    return v;
  }();
  return m;
}

void record_clauses(const char* labels) { ::testing::Test::RecordProperty("clauses", labels); }

// ---------------------------------------------------------------------------- Backend

void Backend::set_command(std::string command) { command_slot() = std::move(command); }

std::string Backend::command() {
  std::string cmd = command_slot();
  if (cmd.empty()) {
    const char* env = std::getenv("MPSPEC_DRIVER");
    if (env) cmd = env;
  }
  if (cmd.empty())
    throw DriverCrash("no driver: pass --driver=CMD or set MPSPEC_DRIVER (see ./mpspec run)");
  return cmd;
}

Backend& Backend::get() {
  static Backend b;
  return b;
}

DriverProcess& Backend::driver() {
  if (driver_ && !driver_->alive()) discard();
  if (!driver_) {
    driver_ = std::make_unique<DriverProcess>(command());
    Json r = driver_->request(Json{{"op", "hello"}, {"protocol", 1}}, kRequestLimit);
    if (!r.value("ok", false)) {
      std::string msg = r.dump();
      discard();
      throw DriverCrash("hello refused: " + msg);
    }
    hello_ = r["result"];
  }
  return *driver_;
}

const Json& Backend::hello() {
  driver();
  return hello_;
}

bool Backend::has_type(const std::string& type) {
  const auto& t = hello().value("types", Json::object());
  return t.contains(type);
}

bool Backend::has_method(const std::string& type, const std::string& method) {
  const auto& t = hello().value("types", Json::object());
  if (!t.contains(type)) return false;
  const auto& m = t[type];
  return std::find(m.begin(), m.end(), method) != m.end();
}

bool Backend::has_feature(const std::string& feature) {
  const auto f = hello().value("features", Json::array());
  return std::find(f.begin(), f.end(), feature) != f.end();
}

std::string Backend::name() { return hello().value("name", "?"); }

void Backend::discard() {
  if (driver_) driver_->kill_hard();
  driver_.reset();
  hello_ = Json();
}

// ---------------------------------------------------------------------------- CallResult

std::string CallResult::describe() const {
  std::ostringstream os;
  os << "call " << tag << ": ";
  switch (status) {
    case OpStatus::kOk:
      os << "returned " << value.dump();
      break;
    case OpStatus::kError:
      os << "raised " << error_kind << " (" << error_message << ")";
      break;
    case OpStatus::kInfo:
      os << "outcome unknown (" << info_reason << ")";
      break;
  }
  if (status != OpStatus::kInfo) os << " after " << elapsed() << " s";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const CallResult& r) { return os << r.describe(); }

// ---------------------------------------------------------------------------- Scenario

Scenario::Scenario() : serial_(next_serial()) {}

Scenario::~Scenario() {
  try {
    teardown();
  } catch (const std::exception& e) {
    std::cerr << "[suite] teardown failed: " << e.what() << "; discarding the driver\n";
    Backend::get().discard();
  }
  if (!temp_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir_, ec);
    if (ec) std::cerr << "[suite] could not remove " << temp_dir_ << ": " << ec.message() << "\n";
  }
}

std::string Scenario::temp_path(const std::string& name) {
  if (temp_dir_.empty()) {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/mpspec-scenario-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("mkdtemp(" + pattern + ") failed");
    temp_dir_ = pattern;
  }
  return temp_dir_ + "/" + name;
}

Scenario& Scenario::object(const std::string& name, const std::string& type, Json args) {
  objects_.push_back(Json{{"name", name}, {"type", type}, {"args", std::move(args)}});
  object_types_[name] = type;
  return *this;
}

Scenario& Scenario::owner(const std::string& object, const std::string& actor) {
  for (auto& o : objects_)
    if (o["name"] == object) {
      o["owner"] = actor;
      return *this;
    }
  throw std::logic_error("owner(): no object named '" + object + "' declared yet");
}

Scenario& Scenario::prelude(const std::string& object, const std::string& method, Json args) {
  prelude_.push_back(Json{{"object", object}, {"method", method}, {"args", std::move(args)}});
  needs_feature("prelude");
  if (object_types_.count(object)) needs_method(object_types_[object], method);
  return *this;
}

Scenario& Scenario::actor(const std::string& name, int threads) {
  actors_.push_back(Json{{"name", name}, {"threads", threads}});
  if (threads > 1) needs_feature("threads");
  return *this;
}

Scenario& Scenario::independent_actor(const std::string& name, int threads) {
  actors_.push_back(Json{{"name", name}, {"threads", threads}, {"independent", true}});
  if (threads > 1) needs_feature("threads");
  needs_feature("independent");
  return *this;
}

Scenario& Scenario::needs_method(const std::string& type, const std::string& method) {
  needed_methods_.emplace_back(type, method);
  return *this;
}

Scenario& Scenario::needs_feature(const std::string& feature) {
  needed_features_.push_back(feature);
  return *this;
}

std::string Scenario::start() {
  Backend& b = Backend::get();
  for (const auto& [name, type] : object_types_)
    if (!b.has_type(type)) return b.name() + " does not offer type " + type;
  for (const auto& [type, method] : needed_methods_)
    if (!b.has_method(type, method)) return b.name() + " does not offer " + type + "." + method;
  for (const auto& f : needed_features_)
    if (!b.has_feature(f)) return b.name() + " lacks feature '" + f + "'";
  Json req{{"op", "setup"}, {"objects", objects_}, {"prelude", prelude_}, {"actors", actors_}};
  if (const char* sm = std::getenv("MPSPEC_START_METHOD")) req["start_method"] = sm;
  // The setup context the run asks for (spec/protocol.md, [protocol.setup.context]): e.g.
  // "manager" runs the sync and queue chapters on objects served by a manager.
  if (const char* ctx = std::getenv("MPSPEC_CONTEXT"); ctx != nullptr && *ctx != '\0')
    req["context"] = ctx;
  Json r = b.driver().request(req, kRequestLimit);
  if (!r.value("ok", false)) {
    const auto& err = r["error"];
    if (err.value("kind", "") == "Unsupported") return err.value("message", "unsupported");
    throw std::runtime_error("setup failed: " + err.dump() + "\n driver stderr:\n" +
                             b.driver().stderr_tail());
  }
  started_ = true;
  // The prelude calls' values ([protocol.setup.prelude.results]); a test that reads them checks
  // that there is one per call.
  const Json& result = r["result"];
  if (result.is_object() && result.contains("prelude")) prelude_results_ = result["prelude"];
  return "";
}

CallId Scenario::call(const std::string& actor, const std::string& object,
                      const std::string& method, Json args, int thread) {
  if (!started_) throw std::logic_error("Scenario::call before start()");
  Call c{actor, thread, object, method, args, {}, false};
  c.result.tag = "s" + std::to_string(serial_) + "c" + std::to_string(calls_.size());
  const int id = static_cast<int>(calls_.size());
  Json req{{"op", "call"},     {"tag", c.result.tag}, {"actor", actor},         {"thread", thread},
           {"object", object}, {"method", method},    {"args", std::move(args)}};
  c.result.sent_ns = monotonic_ns();
  by_tag_[c.result.tag] = id;
  calls_.push_back(std::move(c));
  Json r = Backend::get().driver().request(req, kRequestLimit);
  if (!r.value("ok", false))
    throw std::runtime_error("call " + object + "." + method + " on " + actor +
                             " refused: " + r["error"].dump());
  return id;
}

void Scenario::absorb(const Json& e) {
  if (e.value("event", "") != "return") return;
  auto it = by_tag_.find(e.value("tag", ""));
  if (it == by_tag_.end()) return;  // a stale event of an earlier scenario
  Call& c = calls_[static_cast<size_t>(it->second)];
  CallResult& r = c.result;
  const std::string st = e.value("status", "");
  if (st == "ok") {
    r.status = OpStatus::kOk;
    r.value = e.value("value", Json());
  } else if (st == "error") {
    r.status = OpStatus::kError;
    r.error_kind = e["error"].value("kind", "Other");
    r.error_message = e["error"].value("message", "");
    if (e["error"].contains("value")) r.error_value = e["error"]["value"];
    if (e["error"].contains("errno") && e["error"]["errno"].is_string())
      r.error_errno = e["error"]["errno"].get<std::string>();
  } else {
    r.status = OpStatus::kInfo;
    r.info_reason = e.value("reason", "");
  }
  r.invoke_ns = e.value("invoke_ns", r.sent_ns);
  r.return_ns = e.value("return_ns", std::int64_t{0});
  if (r.invoke_ns < r.sent_ns) r.invoke_ns = r.sent_ns;  // clocks agree; guard anyway
  c.done = true;
}

void Scenario::pump(std::int64_t deadline_ns) {
  if (auto e = Backend::get().driver().next_event(deadline_ns)) {
    absorb(*e);
    // Take whatever else is already queued without waiting.
    while (auto more = Backend::get().driver().next_event(0)) absorb(*more);
  }
}

bool Scenario::returned(CallId id) {
  while (auto e = Backend::get().driver().next_event(0)) absorb(*e);
  return calls_.at(static_cast<size_t>(id)).done;
}

bool Scenario::returns_within(CallId id, double limit) {
  const std::int64_t deadline = monotonic_ns() + static_cast<std::int64_t>(limit * 1e9);
  while (!calls_.at(static_cast<size_t>(id)).done) {
    if (monotonic_ns() >= deadline) return false;
    pump(deadline);
  }
  return true;
}

std::optional<CallId> Scenario::await_any(const std::vector<CallId>& ids, double limit) {
  const std::int64_t deadline = monotonic_ns() + static_cast<std::int64_t>(limit * 1e9);
  for (;;) {
    for (CallId id : ids)
      if (calls_.at(static_cast<size_t>(id)).done) return id;
    if (monotonic_ns() >= deadline) return std::nullopt;
    pump(deadline);
  }
}

const CallResult& Scenario::await(CallId id, double limit) {
  if (!returns_within(id, limit)) {
    const Call& c = calls_.at(static_cast<size_t>(id));
    throw WatchdogTimeout(c.object + "." + c.method + " on actor " + c.actor +
                          " did not return within " + std::to_string(limit) + " s");
  }
  return calls_[static_cast<size_t>(id)].result;
}

const CallResult& Scenario::result(CallId id) const {
  return calls_.at(static_cast<size_t>(id)).result;
}

int Scenario::kill(const std::string& actor, int signal) {
  const std::int64_t sent_ns = monotonic_ns();
  Json r = Backend::get().driver().request(
      Json{{"op", "kill"}, {"actor", actor}, {"signal", signal}}, kRequestLimit);
  if (!r.value("ok", false)) throw std::runtime_error("kill refused: " + r["error"].dump());
  annotations_.push_back(Json{{"kind", "kill"},
                              {"actor", actor},
                              {"signal", signal},
                              {"sent_ns", sent_ns},
                              {"time_ns", monotonic_ns()}});
  // The driver emitted the actor's last results and `info` events before its reply.
  while (auto e = Backend::get().driver().next_event(0)) absorb(*e);
  return r["result"].value("exitcode", 0);
}

void Scenario::teardown() {
  if (!started_) return;
  started_ = false;
  Json r = Backend::get().driver().request(Json{{"op", "teardown"}}, kRequestLimit);
  while (auto e = Backend::get().driver().next_event(0)) absorb(*e);
  for (auto& c : calls_) {
    if (!c.done) {  // the driver should have reported it; record it as unknown anyway
      c.done = true;
      c.result.status = OpStatus::kInfo;
      c.result.info_reason = "teardown";
      c.result.invoke_ns = c.result.sent_ns;
    }
  }
  if (!r.value("ok", false)) throw std::runtime_error("teardown refused: " + r.dump());
}

History Scenario::history() const {
  History h;
  for (const auto& [name, type] : object_types_) h.objects[name] = type;
  for (size_t i = 0; i < calls_.size(); ++i) {
    const Call& c = calls_[i];
    Operation op;
    op.id = static_cast<int>(i);
    op.process = c.actor;
    op.thread = c.thread;
    op.object = c.object;
    op.method = c.method;
    op.args = c.args;
    const CallResult& r = c.result;
    if (!c.done || r.status == OpStatus::kInfo) {
      op.status = OpStatus::kInfo;
      op.invoke_ns = c.done ? r.invoke_ns : r.sent_ns;
      op.info_reason = c.done ? r.info_reason : "pending";
    } else {
      op.status = r.status;
      op.value = r.value;
      op.error_kind = r.error_kind;
      op.error_message = r.error_message;
      op.invoke_ns = r.invoke_ns;
      op.return_ns = r.return_ns;
    }
    h.ops.push_back(std::move(op));
  }
  h.annotations = annotations_;
  return h;
}

std::string Scenario::history_path(const std::string& suffix) const {
  const char* env = std::getenv("MPSPEC_ARTIFACTS");
  std::string dir = env && *env ? env : "mpspec-artifacts";
  ::mkdir(dir.c_str(), 0755);
  return dir + "/" + current_test_name() + "-s" + std::to_string(serial_) + suffix +
         ".history.json";
}

std::string Scenario::save_history(const std::string& suffix) const {
  std::string path = history_path(suffix);
  history().save(path);
  return path;
}

check::Result Scenario::check(std::chrono::milliseconds budget) {
  History h = history();
  check::Result r = check::check_history(h, budget);
  if (r.verdict != check::Verdict::kLinearizable) {
    // What the checker found, for reports (history.hpp): the longest linearizable prefix and
    // the op at which it broke, per object that is not linearizable.
    for (const auto& o : r.objects) {
      if (o.verdict == check::Verdict::kLinearizable) continue;
      Json a{{"kind", "linearizability"}, {"object", o.object}, {"type", o.type},
             {"verdict", check::to_string(o.verdict)}, {"prefix_ops", o.longest_prefix}};
      a["breaks_at"] = o.failing_op ? Json(*o.failing_op) : Json(nullptr);
      h.annotations.push_back(std::move(a));
    }
    std::string path = history_path("");
    h.save(path);
    for (auto& o : r.objects) o.explanation += "\n history saved to " + path;
  }
  return r;
}

}  // namespace mpspec
