// Helpers shared by the scenario tests of spec/manager/manager.md and spec/manager/proxy.md.
//
// A Manager is process-local (spec/protocol.md §6): the actor that first calls it constructs
// it. A Manager entry with "inherited": true is constructed in the driver's process instead; the
// prelude starts it and creates objects on it, and every actor inherits those Proxy slots.
// Proxies are `Proxy` slots, bound by `create(as=...)` or `Module.manager_create(as=...)`;
// `call` runs a referent method by its Python name.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bytes_json.hpp"
#include "scenario.hpp"
#include "value_match.hpp"

namespace mpspec::manager_test {

using timing::huge;
using timing::kClockResolution;
using timing::long_;
using timing::small;

// The bound within which a call that a backend might never answer (a proxy of a shut-down
// server) is awaited, so that a hang is a FAIL with a clear message, not a hung suite.
inline double bound() { return 10 * long_(); }

#define SKIP_IF_UNSUPPORTED(r) \
  if ((r).raised("Unsupported")) GTEST_SKIP() << "UNSUPPORTED: " << (r).error_message

// The authentication key of the tests' managers, and another one.
inline Json key(const std::string& k = "mpspec-manager-key") { return bytes_json(k); }

// Setup args of a Manager: `address` null (the backend's choice), a path, or [host, port].
inline Json manager_args(Json address = nullptr, Json authkey = key(), bool inherited = false) {
  Json j{{"address", std::move(address)}, {"authkey", std::move(authkey)}};
  if (inherited) j["inherited"] = true;
  return j;
}

inline Json tcp_any() { return Json::array({"127.0.0.1", 0}); }

// Arguments of Manager.create.
inline Json create(const std::string& typeid_, const std::string& slot, Json args = Json::array(),
                   Json kwds = Json::object()) {
  return Json{
      {"typeid", typeid_}, {"args", std::move(args)}, {"kwds", std::move(kwds)}, {"as", slot}};
}

// Arguments of Module.manager_create.
inline Json remote_create(const Json& address, Json authkey, const std::string& typeid_,
                          const std::string& slot, Json args = Json::array()) {
  return Json{{"address", address},      {"authkey", std::move(authkey)}, {"typeid", typeid_},
              {"args", std::move(args)}, {"kwds", Json::object()},        {"as", slot}};
}

// Arguments of Proxy.call.
inline Json method(const std::string& name, Json args = Json::array(), Json kwds = Json::object()) {
  return Json{{"method", name}, {"args", std::move(args)}, {"kwds", std::move(kwds)}};
}
inline Json method_as(const std::string& name, const std::string& slot) {
  Json j = method(name);
  j["as"] = slot;
  return j;
}

// Runs a call and returns a copy of its result (a reference into the scenario would not survive
// later calls).
inline CallResult run(Scenario& s, const std::string& actor, const std::string& object,
                      const std::string& m, Json args = Json::object()) {
  return s.await(s.call(actor, object, m, std::move(args)));
}

// A call on a Proxy slot.
inline CallResult pcall(Scenario& s, const std::string& actor, const std::string& proxy,
                        const std::string& name, Json args = Json::array(),
                        Json kwds = Json::object()) {
  return run(s, actor, proxy, "call", method(name, std::move(args), std::move(kwds)));
}

// Values are compared with same_value and has_value (value_match.hpp).

// Starts manager `m` in `actor` (a call that must succeed), or skips the test.
#define MANAGER_START(s, actor, m)                                        \
  do {                                                                    \
    const CallResult start_ = run(s, actor, m, "start");                  \
    SKIP_IF_UNSUPPORTED(start_);                                          \
    ASSERT_TRUE(start_.ok(nullptr)) << "the manager's start: " << start_; \
  } while (0)

// An inherited manager "M" that the prelude starts, and on which it creates `creates` (each the
// args of a Manager.create); the Proxy slots they name are declared here too.
inline void inherited_manager(Scenario& s, const std::vector<Json>& creates) {
  s.object("M", "Manager", manager_args(nullptr, key(), true));
  for (const Json& c : creates) s.object(c["as"].get<std::string>(), "Proxy");
  s.needs_feature("prelude");
  s.prelude("M", "start");
  for (const Json& c : creates) s.prelude("M", "create", c);
}

}  // namespace mpspec::manager_test
