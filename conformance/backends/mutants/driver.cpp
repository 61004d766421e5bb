// Deliberately broken backends. The suite must FAIL against each of them: a mutant that
// passes means the suite has lost the power to catch that bug (see harness/backends.toml,
// where each mutant lists the tests that must catch it).
//
//   --mutant never-blocks       Lock.acquire always reports success without waiting.
//   --mutant release-unheld-ok  Lock.release of a free lock succeeds silently.
#include <mp/errors.hpp>
#include <mp/lock.hpp>

#include <cstring>
#include <iostream>

#include "driverkit.hpp"

namespace {

using mpspec::driverkit::Json;

enum class Mutant { kNeverBlocks, kReleaseUnheldOk };

class MutantLock : public mpspec::driverkit::Object {
 public:
  explicit MutantLock(Mutant m) : mutant_(m) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire" || method == "__enter__") {
      const bool block = method == "__enter__" || mpspec::driverkit::bool_arg(args, "block", true);
      const auto timeout = method == "__enter__" ? std::nullopt : mpspec::driverkit::timeout_arg(args);
      if (mutant_ == Mutant::kNeverBlocks) {
        lock_.acquire(false);  // takes it when free, and pretends success when not
        return true;
      }
      return lock_.acquire(block, timeout);
    }
    if (method == "release" || method == "__exit__") {
      try {
        lock_.release();
      } catch (const mp::ValueError&) {
        if (mutant_ != Mutant::kReleaseUnheldOk) throw;
      }
      return nullptr;
    }
    throw mpspec::driverkit::KindError("Other", "Lock has no method " + method);
  }

 private:
  Mutant mutant_;
  mp::Lock lock_;
};

}  // namespace

int main(int argc, char** argv) {
  Mutant m;
  std::string which;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mutant") == 0 && i + 1 < argc) which = argv[++i];
  }
  if (which == "never-blocks") {
    m = Mutant::kNeverBlocks;
  } else if (which == "release-unheld-ok") {
    m = Mutant::kReleaseUnheldOk;
  } else {
    std::cerr << "usage: mpspec_driver_mutant --mutant never-blocks|release-unheld-ok\n";
    return 2;
  }
  mpspec::driverkit::Backend b;
  b.name = "mutant-" + which;
  b.version = "0.1.0";
  b.features = {"timeout", "nonblocking", "threads", "kill", "prelude"};
  b.types["Lock"] = {{"acquire", "release", "__enter__", "__exit__"},
                     [m](const Json&) { return std::make_unique<MutantLock>(m); }};
  b.map_error = [](const std::exception& e) -> std::pair<std::string, std::string> {
    if (auto* err = dynamic_cast<const mp::Error*>(&e)) return {err->kind(), err->what()};
    return {"Other", e.what()};
  };
  return mpspec::driverkit::run(b, argc, argv);
}
