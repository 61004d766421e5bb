// Manager mutants, built on the reference adapter (whose source the mutant driver compiles in)
// with one behaviour broken:
//   manager-unexposed-ok        a call of a method the referent does not expose returns None
//                               instead of raising RemoteError ([proxy.exposed]).
//   manager-accepts-wrong-key   connecting with a wrong authkey succeeds: the client retries
//                               with the keys of the setup's managers
//                               ([manager.connect.wrong_key]).
//   manager-dict-loses-updates  a dict proxy's __setitem__ and update read the whole dict, change
//                               it locally, then clear and refill it: concurrent updates are lost
//                               ([manager.dict.atomic]).
#include <chrono>
#include <memory>
#include <mp/errors.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../reference/types.hpp"
#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

enum class Bug { kUnexposed, kWrongKey, kLosesUpdates };

std::string kind_of(const std::exception& e) {
  if (auto* k = dynamic_cast<const driverkit::KindError*>(&e)) return k->kind();
  if (auto* m = dynamic_cast<const mp::Error*>(&e)) return m->kind();
  return "Other";
}

// The authkeys of the setup's Manager entries, recorded in the driver before the actors fork.
std::vector<Json>& setup_keys() {
  static std::vector<Json> keys;
  return keys;
}

class MutantProxy : public driverkit::Object, public reference_backend::Forwarder {
 public:
  MutantProxy(std::unique_ptr<driverkit::Object> inner, Bug bug)
      : inner_(std::move(inner)), bug_(bug) {}
  driverkit::Object& target() override { return *inner_; }

  Json call(const std::string& method, const Json& args) override {
    if (method != "call" || !args.is_object() || !args.contains("method"))
      return inner_->call(method, args);
    if (bug_ == Bug::kUnexposed) {
      try {
        return inner_->call(method, args);
      } catch (const std::exception& e) {
        if (kind_of(e) == "RemoteError") return nullptr;  // the bug: no exposure check
        throw;
      }
    }
    if (bug_ == Bug::kLosesUpdates) {
      const Json& m = args["method"];
      const Json a = args.value("args", Json::array());
      if ((m == "__setitem__" && a.size() == 2 && a[0].is_string()) ||
          (m == "update" && a.size() == 1 && a[0].is_object())) {
        Json whole = inner_->call("getvalue", Json::object());
        if (whole.is_object()) {
          if (m == "__setitem__") {
            whole[a[0].get<std::string>()] = a[1];
          } else {
            whole.update(a[0]);
          }
          // The bug: read, change, write back — an update between the read and the write is lost.
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          inner_->call("call", Json{{"method", "clear"}, {"args", Json::array()}});
          inner_->call("call", Json{{"method", "update"}, {"args", Json::array({whole})}});
          return nullptr;
        }
      }
    }
    return inner_->call(method, args);
  }

 private:
  std::unique_ptr<driverkit::Object> inner_;
  Bug bug_;
};

using Factory =
    std::function<std::unique_ptr<driverkit::Object>(const Json&, const driverkit::Objects&)>;

// Manager whose connect, refused for its key, is retried with the setup's other keys.
class KeylessManager : public driverkit::Object {
 public:
  KeylessManager(Factory factory, Json args, const driverkit::Objects& objects)
      : factory_(std::move(factory)),
        args_(std::move(args)),
        objects_(objects),
        inner_(factory_(args_, objects_)) {}

  Json call(const std::string& method, const Json& args) override {
    if (method != "connect") return inner_->call(method, args);
    try {
      return inner_->call(method, args);
    } catch (const std::exception& e) {
      if (kind_of(e) != "AuthenticationError") throw;
      for (const Json& k : setup_keys()) {
        Json other = args_;
        other["authkey"] = k;
        auto candidate = factory_(other, objects_);
        try {
          candidate->call(method, args);
        } catch (const std::exception&) {
          continue;
        }
        inner_ = std::move(candidate);  // the bug: connected with a key it was not given
        return nullptr;
      }
      throw;
    }
  }

 private:
  Factory factory_;
  Json args_;
  const driverkit::Objects& objects_;
  std::unique_ptr<driverkit::Object> inner_;
};

// Module whose manager_create, refused for its key, is retried with the setup's other keys.
class KeylessModule : public driverkit::Object {
 public:
  explicit KeylessModule(std::unique_ptr<driverkit::Object> inner) : inner_(std::move(inner)) {}
  Json call(const std::string& method, const Json& args) override {
    if (method != "manager_create") return inner_->call(method, args);
    try {
      return inner_->call(method, args);
    } catch (const std::exception& e) {
      if (kind_of(e) != "AuthenticationError") throw;
      for (const Json& k : setup_keys()) {
        Json other = args;
        other["authkey"] = k;
        try {
          return inner_->call(method, other);  // the bug
        } catch (const std::exception&) {
        }
      }
      throw;
    }
  }
  void release_copy() override { inner_->release_copy(); }

 private:
  std::unique_ptr<driverkit::Object> inner_;
};

}  // namespace

bool install_manager_mutant(const std::string& which, driverkit::Backend& b) {
  Bug bug;
  if (which == "manager-unexposed-ok") {
    bug = Bug::kUnexposed;
  } else if (which == "manager-accepts-wrong-key") {
    bug = Bug::kWrongKey;
  } else if (which == "manager-dict-loses-updates") {
    bug = Bug::kLosesUpdates;
  } else {
    return false;
  }
  reference_backend::register_process(b);  // Module
  reference_backend::register_manager(b);  // Manager, Proxy, Module.manager_create
  if (bug == Bug::kWrongKey) {
    Factory manager = b.types["Manager"].create;
    b.types["Manager"].create =
        [manager](const Json& args,
                  const driverkit::Objects& objects) -> std::unique_ptr<driverkit::Object> {
      if (args.is_object() && args.contains("authkey") && !args["authkey"].is_null())
        setup_keys().push_back(args["authkey"]);
      return std::make_unique<KeylessManager>(manager, args, objects);
    };
    auto module = b.types["Module"].create;
    b.types["Module"].create =
        [module](const Json& args,
                 const driverkit::Objects& objects) -> std::unique_ptr<driverkit::Object> {
      return std::make_unique<KeylessModule>(module(args, objects));
    };
    return true;
  }
  auto proxy = b.types["Proxy"].create;
  b.types["Proxy"].create =
      [proxy, bug](const Json& args,
                   const driverkit::Objects& objects) -> std::unique_ptr<driverkit::Object> {
    return std::make_unique<MutantProxy>(proxy(args, objects), bug);
  };
  return true;
}

}  // namespace mpspec::mutants
