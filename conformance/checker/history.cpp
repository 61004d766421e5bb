#include "history.hpp"

#include <fstream>
#include <stdexcept>

namespace mpspec {

const char* to_string(OpStatus s) {
  switch (s) {
    case OpStatus::kOk: return "ok";
    case OpStatus::kError: return "error";
    case OpStatus::kInfo: return "info";
  }
  return "?";
}

nlohmann::json Operation::to_json() const {
  nlohmann::json j{{"id", id},         {"process", process}, {"thread", thread},
                   {"object", object}, {"method", method},   {"args", args},
                   {"status", to_string(status)}, {"invoke_ns", invoke_ns}};
  if (status == OpStatus::kOk) j["value"] = value;
  if (status == OpStatus::kError) j["error"] = {{"kind", error_kind}, {"message", error_message}};
  if (status == OpStatus::kInfo && !info_reason.empty()) j["reason"] = info_reason;
  j["return_ns"] = return_ns ? nlohmann::json(*return_ns) : nlohmann::json(nullptr);
  return j;
}

Operation Operation::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("history op is not an object");
  Operation op;
  try {
    op.id = j.at("id").get<int>();
    op.process = j.at("process").get<std::string>();
    op.thread = j.value("thread", 0);
    op.object = j.at("object").get<std::string>();
    op.method = j.at("method").get<std::string>();
    op.args = j.value("args", nlohmann::json::object());
    const auto st = j.at("status").get<std::string>();
    if (st == "ok") {
      op.status = OpStatus::kOk;
      op.value = j.value("value", nlohmann::json());
    } else if (st == "error") {
      op.status = OpStatus::kError;
      op.error_kind = j.at("error").at("kind").get<std::string>();
      op.error_message = j.at("error").value("message", "");
    } else if (st == "info") {
      op.status = OpStatus::kInfo;
      op.info_reason = j.value("reason", "");
    } else {
      throw std::invalid_argument("unknown status '" + st + "'");
    }
    op.invoke_ns = j.at("invoke_ns").get<std::int64_t>();
    if (j.contains("return_ns") && !j["return_ns"].is_null())
      op.return_ns = j["return_ns"].get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed history op: ") + e.what());
  }
  if (op.status != OpStatus::kInfo && !op.return_ns)
    throw std::invalid_argument("op " + std::to_string(op.id) + " completed without return_ns");
  if (op.return_ns && *op.return_ns < op.invoke_ns)
    throw std::invalid_argument("op " + std::to_string(op.id) + " returns before it is invoked");
  return op;
}

nlohmann::json History::to_json() const {
  nlohmann::json j{{"format", "mpspec-history/1"}, {"objects", objects}};
  j["ops"] = nlohmann::json::array();
  for (const auto& op : ops) j["ops"].push_back(op.to_json());
  j["annotations"] = annotations;
  return j;
}

History History::from_json(const nlohmann::json& j) {
  if (!j.is_object() || j.value("format", "") != "mpspec-history/1")
    throw std::invalid_argument("not an mpspec-history/1 document");
  History h;
  try {
    h.objects = j.at("objects").get<std::map<std::string, std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("malformed history objects: ") + e.what());
  }
  for (const auto& o : j.at("ops")) {
    auto op = Operation::from_json(o);
    if (!h.objects.count(op.object))
      throw std::invalid_argument("op " + std::to_string(op.id) + " names unknown object '" +
                                  op.object + "'");
    h.ops.push_back(std::move(op));
  }
  h.annotations = j.value("annotations", nlohmann::json::array());
  return h;
}

History History::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot open history file " + path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
  return from_json(j);
}

void History::save(const std::string& path) const {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write history file " + path);
  out << to_json().dump(1) << '\n';
}

}  // namespace mpspec
