// The C++ driver kit: everything a C++ backend needs to speak the driver protocol
// (spec/protocol.md) except the mapping of type and method names to its own objects.
//
// A backend fills in a `Backend` (its name, features and a table of types, each with a
// factory and a method dispatcher) and calls `run(backend, argc, argv)` from main(). The kit
// runs the protocol loop on stdin/stdout, creates the objects in the driver process, runs
// the prelude, forks one process per actor (so that the actors inherit the objects), runs
// each actor's worker threads, stamps invoke/return times with CLOCK_MONOTONIC, forwards
// results as `return` events, kills and reaps actors, and answers bad input with error
// replies. See conformance/backends/reference/driver.cpp for a complete backend.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mpspec::driverkit {

using Json = nlohmann::json;

// Thrown by a method (or a factory) to report an error of a spec error kind, e.g.
// `throw KindError("ValueError", "released too many times")`.
// An optional `value` travels with the error (spec/protocol.md §6, "Error values"; e.g. the
// message of a BufferTooShort).
class KindError : public std::runtime_error {
 public:
  KindError(std::string kind, const std::string& message, Json value = Json())
      : std::runtime_error(message), kind_(std::move(kind)), value_(std::move(value)) {}
  const std::string& kind() const { return kind_; }
  const Json& value() const { return value_; }
  // An OSError's symbolic errno ("ENOENT"), sent as the error object's `errno` member
  // (spec/protocol.md §5); empty: none.
  KindError& with_errno(std::string name) {
    errno_name_ = std::move(name);
    return *this;
  }
  const std::string& errno_name() const { return errno_name_; }

 private:
  std::string kind_;
  Json value_;
  std::string errno_name_;
};

// One backend object, created in the driver process before the actors are forked.
class Object {
 public:
  virtual ~Object() = default;
  // Runs `method` with keyword arguments `args` (spec/protocol.md §3.3). Returns the
  // method's value; throws KindError (or any exception the backend's error mapper knows)
  // when the method raises. Called concurrently from the worker threads of an actor.
  virtual Json call(const std::string& method, const Json& args) = 0;
  // Called in every process of a setup except the object's `owner` (spec/protocol.md,
  // [protocol.setup.owner]) once the actors have started: gives up this process's copy (a
  // Connection end closes its descriptor). The default does nothing.
  virtual void release_copy() {}
};

// The objects of the current setup, for factories whose arguments name other objects
// (`{"$ref": "L"}`, `{"$call": ["E", "is_set"]}`, spec/protocol.md §6). Objects live until
// teardown, in the driver and (inherited) in every actor at the same address, so a factory
// may keep the pointers it looks up, and may keep the `Objects&` itself to resolve arguments
// of later calls (e.g. Condition.wait_for's predicate) in the actor.
class Objects {
 public:
  virtual ~Objects() = default;
  // The object named `name`; throws KindError("ValueError") when there is none.
  virtual Object& get(const std::string& name) const = 0;
  // Resolves a `{"$ref": name}` argument; throws KindError("TypeError") when `ref` is not one.
  Object& ref(const Json& ref) const;
};

// A `{"$call": [object, method]}` argument, resolved: calls the method with no arguments.
class BoundCall {
 public:
  BoundCall() = default;
  // Throws KindError("TypeError") when `spec` is not a `$call`, ("ValueError") when the object
  // does not exist.
  BoundCall(const Json& spec, const Objects& objects);
  explicit operator bool() const { return object_ != nullptr; }
  Json operator()() const { return object_->call(method_, Json::object()); }
  std::string describe() const;

 private:
  Object* object_ = nullptr;
  std::string name_, method_;
};

struct Type {
  std::vector<std::string> methods;
  // Creates an object from the setup's `args`; throws KindError on bad arguments.
  std::function<std::unique_ptr<Object>(const Json& args, const Objects& objects)> create;
};

// A setup context (spec/protocol.md, [protocol.setup.context]): made at the start of a setup that
// asks for it, in the driver, before the setup's objects; it creates the objects of the types it
// serves in its own way (e.g. through a manager) and returns nullptr for the others, which are
// made by their Type as usual. Destroyed at teardown, after the actors are gone.
class Context {
 public:
  virtual ~Context() = default;
  virtual std::unique_ptr<Object> create(const std::string& type, const Json& args,
                                         const Objects& objects) = 0;
};

struct Backend {
  std::string name;
  std::string version;
  std::vector<std::string> features;
  std::vector<std::string> start_methods = {"fork"};
  std::map<std::string, Type> types;
  // The setup contexts the backend offers, by name (setup.context); a setup asking for another
  // one is answered Unsupported. A factory may throw KindError (e.g. Unsupported).
  std::map<std::string, std::function<std::unique_ptr<Context>()>> contexts;
  // Maps an exception a method threw to {kind, message}. Called only for exceptions that are
  // not KindError; the default reports kind "Other" with the exception's what().
  std::function<std::pair<std::string, std::string>(const std::exception&)> map_error;
};

// A process the driver process itself started, outside the actors: the child of an inherited
// Process that a prelude call started (spec/protocol.md, [protocol.setup.inherited]). The
// backend stops and reaps it at teardown (when its object is destroyed) and then forgets it;
// the kit SIGKILLs and reaps the ones still registered when a signal stops the driver, so that
// nothing outlives it ([protocol.robust.no_stray]). Async-signal-safe; at most 256 at a time.
void register_parent_child(pid_t pid);
void forget_parent_child(pid_t pid);

// A cleanup the kit runs when a signal (SIGTERM, SIGINT) stops the driver process, after it has
// killed and reaped the actors and the processes above and before it exits, so that a backend
// leaves nothing behind then either ([protocol.robust.no_stray]: e.g. shared memory segments;
// teardown, bye and end of input clean up through the objects' destructors as usual). Runs in
// a signal handler, in the driver process only: it must be async-signal-safe (open, read,
// unlink, shm_unlink, close; no allocation, no locks). Registering the same hook twice keeps
// one; at most 16. Call it from main() or a factory, in the driver process.
using TerminateHook = void (*)();
void add_terminate_hook(TerminateHook hook);

// Runs the protocol loop until `bye` or end of input. Returns the process exit status.
int run(const Backend& backend, int argc, char** argv);

// Reads a timeout argument the Python way: absent or null -> no timeout (nullopt);
// a number -> seconds. Throws KindError("TypeError") for anything else.
std::optional<double> timeout_arg(const Json& args, const char* key = "timeout");
// Reads a boolean argument with a default. Throws KindError("TypeError") if not a bool.
bool bool_arg(const Json& args, const char* key, bool fallback);

}  // namespace mpspec::driverkit
