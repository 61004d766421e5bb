// Shared-value and SharedMemory mutants, built on the reference adapters (whose sources the
// mutant driver compiles in) with one behaviour broken:
//   sharedctypes-copy-shares       RawValue / RawArray `copy_of` gives the original's memory
//                                  instead of a copy ([sharedctypes.copy]).
//   shared-memory-attach-creates   attaching a name no segment has creates the segment instead of
//                                  raising OSError ENOENT ([shared_memory.attach.missing],
//                                  [shared_memory.unlink.name]).
#include <algorithm>
#include <memory>
#include <string>

#include "../reference/types.hpp"
#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

// Every call goes to another object of the setup (which lives until teardown).
class Alias : public driverkit::Object {
 public:
  explicit Alias(driverkit::Object& target) : target_(target) {}
  Json call(const std::string& method, const Json& args) override {
    return target_.call(method, args);
  }

 private:
  driverkit::Object& target_;
};

// Module whose shared_memory(create=false) creates the segment when the name is free.
class AttachCreates : public driverkit::Object {
 public:
  explicit AttachCreates(std::unique_ptr<driverkit::Object> inner) : inner_(std::move(inner)) {}
  Json call(const std::string& method, const Json& args) override {
    if (method == "shared_memory" && args.is_object() && !args.value("create", false) &&
        args.contains("name") && args["name"].is_string()) {
      Json create = args;
      create["create"] = true;
      create["size"] = std::max<std::int64_t>(args.value("size", std::int64_t{0}), 1);
      try {
        return inner_->call(method, create);  // the bug: a missing name is made, not refused
      } catch (const driverkit::KindError&) {
        // It exists (EEXIST): attach as asked.
      }
    }
    return inner_->call(method, args);
  }

 private:
  std::unique_ptr<driverkit::Object> inner_;
};

}  // namespace

bool install_sharedctypes_mutant(const std::string& which, driverkit::Backend& b) {
  if (which == "sharedctypes-copy-shares") {
    reference_backend::register_sharedctypes(b);
    for (const char* type : {"RawValue", "RawArray"}) {
      auto inner = b.types[type].create;
      b.types[type].create =
          [inner](const Json& args,
                  const driverkit::Objects& objects) -> std::unique_ptr<driverkit::Object> {
        if (args.is_object() && args.contains("copy_of"))
          return std::make_unique<Alias>(objects.ref(args["copy_of"]));
        return inner(args, objects);
      };
    }
    return true;
  }
  if (which == "shared-memory-attach-creates") {
    reference_backend::register_process(b);
    reference_backend::register_shared_memory(b);
    auto inner = b.types["Module"].create;
    b.types["Module"].create =
        [inner](const Json& args,
                const driverkit::Objects& objects) -> std::unique_ptr<driverkit::Object> {
      return std::make_unique<AttachCreates>(inner(args, objects));
    };
    return true;
  }
  return false;
}

}  // namespace mpspec::mutants
