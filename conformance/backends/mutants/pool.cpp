// Pool mutants, built on the reference adapter (whose source the mutant driver compiles in)
// with one behaviour broken:
//   pool-drops-result     a result list of two or more items loses its middle item (map,
//                         starmap, map_async's get) and an iterator skips its second result
//                         ([pool.map.order], [pool.imap.order]).
//   pool-imap-reorders    imap yields its results in swapped pairs: 2nd, 1st, 4th, 3rd, ...
//                         ([pool.imap.order], [pool.imap.error]).
//   pool-swallows-errors  a task's error becomes the value None (apply, map, starmap, get, next;
//                         timeouts are kept) ([pool.apply.error], [pool.map.error],
//                         [pool.imap.error]).
#include <deque>
#include <memory>
#include <mp/errors.hpp>
#include <mutex>
#include <string>

#include "../reference/types.hpp"
#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

enum class Bug { kDrop, kReorder, kSwallow };

// The kind of an error a call threw, or "".
std::string kind_of(const std::exception& e) {
  if (auto* k = dynamic_cast<const driverkit::KindError*>(&e)) return k->kind();
  if (auto* m = dynamic_cast<const mp::Error*>(&e)) return m->kind();
  return "Other";
}

Json drop_middle(Json v) {
  if (v.is_array() && v.size() >= 2) v.erase(v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2));
  return v;
}

// Calls `inner`, turning an error of a task into None for pool-swallows-errors.
template <class F>
Json guarded(Bug bug, F&& f) {
  if (bug != Bug::kSwallow) return f();
  try {
    return f();
  } catch (const std::exception& e) {
    const std::string k = kind_of(e);
    if (k == "TimeoutError" || k == "Other" || k == "Unsupported") throw;
    return nullptr;  // the bug: the task's error is lost
  }
}

class MutantIterator : public driverkit::Object, public reference_backend::Forwarder {
 public:
  driverkit::Object& target() override { return *inner_; }
  MutantIterator(std::unique_ptr<driverkit::Object> inner, Bug bug)
      : inner_(std::move(inner)), bug_(bug) {}
  // Called by the Pool when it binds this slot: imap (ordered) or imap_unordered.
  void bound(bool ordered) {
    std::lock_guard<std::mutex> g(mu_);
    ordered_ = ordered;
    count_ = 0;
    pending_.clear();
  }
  Json call(const std::string& method, const Json& args) override {
    if (method != "next") return inner_->call(method, args);
    if (bug_ == Bug::kSwallow) {
      Json v = guarded(bug_, [&] { return inner_->call(method, args); });
      return v.is_null() ? Json{{"value", nullptr}} : v;  // an error became None
    }
    std::lock_guard<std::mutex> g(mu_);
    if (bug_ == Bug::kDrop) {
      if (++count_ == 2) (void)inner_->call(method, args);  // the bug: one result is lost
      return inner_->call(method, args);
    }
    // kReorder: for imap, swap each pair of results.
    if (!ordered_) return inner_->call(method, args);
    if (!pending_.empty()) {
      Json v = std::move(pending_.front());
      pending_.pop_front();
      return v;
    }
    Json first = inner_->call(method, args);
    if (!first.is_object() || first.contains("done")) return first;
    Json second;
    try {
      second = inner_->call(method, args);
    } catch (const std::exception&) {
      return first;
    }
    if (!second.is_object() || second.contains("done")) {
      pending_.push_back(second);
      return first;
    }
    pending_.push_back(first);
    return second;
  }

 private:
  std::unique_ptr<driverkit::Object> inner_;
  Bug bug_;
  std::mutex mu_;
  bool ordered_ = false;
  int count_ = 0;
  std::deque<Json> pending_;
};

class MutantResult : public driverkit::Object, public reference_backend::Forwarder {
 public:
  driverkit::Object& target() override { return *inner_; }
  MutantResult(std::unique_ptr<driverkit::Object> inner, Bug bug)
      : inner_(std::move(inner)), bug_(bug) {}
  Json call(const std::string& method, const Json& args) override {
    if (method != "get") return inner_->call(method, args);
    Json v = guarded(bug_, [&] { return inner_->call(method, args); });
    return bug_ == Bug::kDrop ? drop_middle(std::move(v)) : v;
  }

 private:
  std::unique_ptr<driverkit::Object> inner_;
  Bug bug_;
};

class MutantPool : public driverkit::Object {
 public:
  MutantPool(std::unique_ptr<driverkit::Object> inner, Bug bug, const driverkit::Objects& objects)
      : inner_(std::move(inner)), bug_(bug), objects_(objects) {}
  Json call(const std::string& method, const Json& args) override {
    if ((method == "imap" || method == "imap_unordered") && args.is_object() &&
        args.contains("as") && args["as"].is_string()) {
      Json r = inner_->call(method, args);
      if (auto* it = dynamic_cast<MutantIterator*>(&objects_.get(args["as"].get<std::string>())))
        it->bound(method == "imap");
      return r;
    }
    if (method == "apply" || method == "map" || method == "starmap") {
      Json v = guarded(bug_, [&] { return inner_->call(method, args); });
      return bug_ == Bug::kDrop && method != "apply" ? drop_middle(std::move(v)) : v;
    }
    return inner_->call(method, args);
  }

 private:
  std::unique_ptr<driverkit::Object> inner_;
  Bug bug_;
  const driverkit::Objects& objects_;
};

}  // namespace

bool install_pool_mutant(const std::string& which, driverkit::Backend& b) {
  Bug bug;
  if (which == "pool-drops-result") {
    bug = Bug::kDrop;
  } else if (which == "pool-imap-reorders") {
    bug = Bug::kReorder;
  } else if (which == "pool-swallows-errors") {
    bug = Bug::kSwallow;
  } else {
    return false;
  }
  reference_backend::register_process(b);  // Module.cpu_count
  reference_backend::register_pool(b);
  auto pool = b.types["Pool"].create;
  b.types["Pool"].create =
      [pool, bug](const Json& args,
                  const driverkit::Objects& objects) -> std::unique_ptr<driverkit::Object> {
    return std::make_unique<MutantPool>(pool(args, objects), bug, objects);
  };
  auto result = b.types["AsyncResult"].create;
  b.types["AsyncResult"].create =
      [result, bug](const Json& args,
                    const driverkit::Objects& objects) -> std::unique_ptr<driverkit::Object> {
    return std::make_unique<MutantResult>(result(args, objects), bug);
  };
  auto iterator = b.types["Iterator"].create;
  b.types["Iterator"].create =
      [iterator, bug](const Json& args,
                      const driverkit::Objects& objects) -> std::unique_ptr<driverkit::Object> {
    return std::make_unique<MutantIterator>(iterator(args, objects), bug);
  };
  return true;
}

}  // namespace mpspec::mutants
