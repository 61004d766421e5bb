// History of one scenario run: what the suite recorded, what the checker judges.
//
// Vocabulary after Jepsen: an operation is invoked by a process (here "actor/thread")
// and completes with status `ok` (it returned `value`), `error` (it raised an error of
// kind `error_kind`: still a definite outcome the model must allow) or `info` (outcome
// unknown: the actor was killed or torn down while the call ran). An `info` operation may
// or may not have taken effect, at any instant after its invocation.
//
// On disk (fixtures/histories/*.json, saved counterexamples) a history is JSON:
//   {"format": "mpspec-history/1",
//    "objects": {"L": "Lock"},
//    "ops": [{"id": 0, "process": "a", "thread": 0, "object": "L", "method": "acquire",
//             "args": {"block": true, "timeout": null}, "status": "ok", "value": true,
//             "invoke_ns": 100, "return_ns": 250},
//            {..., "status": "error", "error": {"kind": "ValueError", "message": "..."}},
//            {..., "status": "info", "reason": "killed", "return_ns": null}],
//    "annotations": [{"kind": "kill", "actor": "a", "time_ns": 300}]}
// An `info` op may say why its outcome is unknown in `reason` (the driver's `killed`,
// `teardown`, `crashed`, or the suite's `pending`: still running when the history was taken).
// Annotations are for people and reports, the checker ignores them: `kill` (Scenario::kill),
// and, in a history saved because it is not linearizable, one per object that is not
// {"kind": "linearizability", "object": "L", "type": "Lock", "verdict": "not linearizable",
//  "prefix_ops": [0, 2], "breaks_at": 1} (the longest linearizable prefix found, in order,
// and the op at which it broke; null when the verdict is "unknown").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mpspec {

enum class OpStatus { kOk, kError, kInfo };

const char* to_string(OpStatus s);

struct Operation {
  int id = 0;
  std::string process;  // actor name
  int thread = 0;
  std::string object;
  std::string method;
  nlohmann::json args = nlohmann::json::object();
  OpStatus status = OpStatus::kInfo;
  nlohmann::json value;        // when kOk
  std::string error_kind;      // when kError
  std::string error_message;   // when kError
  std::string info_reason;     // when kInfo, if known: "killed", "teardown", "crashed", "pending"
  std::int64_t invoke_ns = 0;
  std::optional<std::int64_t> return_ns;  // absent for kInfo: returns at +infinity

  nlohmann::json to_json() const;
  static Operation from_json(const nlohmann::json& j);
};

struct History {
  std::map<std::string, std::string> objects;  // name -> type
  std::vector<Operation> ops;
  nlohmann::json annotations = nlohmann::json::array();

  nlohmann::json to_json() const;
  // Throws std::invalid_argument with a clear message on malformed input.
  static History from_json(const nlohmann::json& j);
  static History load(const std::string& path);
  void save(const std::string& path) const;
};

}  // namespace mpspec
