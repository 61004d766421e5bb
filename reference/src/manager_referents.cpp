// The built-in typeids of mp::Manager (SyncManager's registry): referents that live in the
// server process and behave as Python's builtins, `queue.Queue` and `threading` objects.
// Each referent guards its state with its own std::mutex (a call is atomic), and waits with
// CallContext::wait (so a dead client or a stopping server never leaves a thread blocked).
#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "manager_internal.hpp"
#include "mp/barrier.hpp"
#include "mp/errors.hpp"
#include "mp/manager.hpp"

namespace mp {
namespace manager_detail {
namespace {

using Clock = CallContext::Clock;
using Deadline = std::optional<Clock::time_point>;

// ---- Arguments, the Python way ----

const Value* arg(const List& args, const Dict& kwds, std::size_t i, std::string_view name) {
  if (i < args.size()) return &args[i];
  return kwds.find(name);
}

void check_arity(std::string_view method, const List& args, std::size_t max) {
  if (args.size() > max)
    throw TypeError(std::string(method) + "() takes at most " + std::to_string(max) +
                    " arguments (" + std::to_string(args.size()) + " given)");
}

const Value& required(const List& args, const Dict& kwds, std::size_t i, std::string_view name,
                      std::string_view method) {
  if (const Value* v = arg(args, kwds, i, name)) return *v;
  throw TypeError(std::string(method) + "() missing required argument '" + std::string(name) + "'");
}

bool truthy(const Value& v) {
  switch (v.type()) {
    case Value::Type::kNone:
      return false;
    case Value::Type::kBool:
      return v.as_bool();
    case Value::Type::kInt:
      return v.as_int() != 0;
    case Value::Type::kFloat:
      return v.as_float() != 0.0;
    case Value::Type::kString:
      return !v.as_string().empty();
    case Value::Type::kBytes:
      return !v.as_bytes().empty();
    case Value::Type::kList:
      return !v.as_list().empty();
    case Value::Type::kDict:
      return !v.as_dict().empty();
  }
  return false;
}

bool is_number(const Value& v) { return v.is_int() || v.is_float() || v.is_bool(); }

double number_of(const Value& v, std::string_view what) {
  if (v.is_int()) return static_cast<double>(v.as_int());
  if (v.is_float()) return v.as_float();
  if (v.is_bool()) return v.as_bool() ? 1.0 : 0.0;
  throw TypeError(std::string(what) + " must be a number, not " + v.type_name());
}

std::int64_t int_of(const Value& v, std::string_view what) {
  if (v.is_int()) return v.as_int();
  if (v.is_bool()) return v.as_bool() ? 1 : 0;
  throw TypeError(std::string(what) + " must be an integer, not " + v.type_name());
}

// A timeout argument: absent or None -> nullopt; NaN -> ValueError.
std::optional<double> timeout_of(const Value* v) {
  if (v == nullptr || v->is_none()) return std::nullopt;
  const double t = number_of(*v, "timeout");
  if (std::isnan(t)) throw ValueError("timeout must not be NaN");
  return t;
}

Deadline deadline_after(std::optional<double> seconds) {
  if (!seconds) return std::nullopt;
  const double s = std::max(0.0, *seconds);
  if (s > 1e9) return std::nullopt;
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// ---- Python comparisons ----

int cmp_numbers(const Value& a, const Value& b) {
  if ((a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool())) {
    const std::int64_t x = int_of(a, ""), y = int_of(b, "");
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const long double x = a.is_float() ? a.as_float() : static_cast<long double>(int_of(a, ""));
  const long double y = b.is_float() ? b.as_float() : static_cast<long double>(int_of(b, ""));
  if (x < y) return -1;
  if (x > y) return 1;
  return x == y ? 0 : 2;  // 2: unordered (NaN)
}

[[noreturn]] void not_comparable(const Value& a, const Value& b) {
  throw TypeError(std::string("'<' not supported between instances of '") + a.type_name() +
                  "' and '" + b.type_name() + "'");
}

bool py_less(const Value& a, const Value& b) {
  if (is_number(a) && is_number(b)) return cmp_numbers(a, b) == -1;
  if (a.type() != b.type()) not_comparable(a, b);
  switch (a.type()) {
    case Value::Type::kString:
      return a.as_string() < b.as_string();  // UTF-8: code point order
    case Value::Type::kBytes:
      return a.as_bytes() < b.as_bytes();
    case Value::Type::kList: {
      const List &x = a.as_list(), &y = b.as_list();
      for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
        if (py_eq(x[i], y[i])) continue;
        return py_less(x[i], y[i]);
      }
      return x.size() < y.size();
    }
    default:
      not_comparable(a, b);
  }
}

// ---- dict ----

class DictReferent;

class IteratorReferent final : public Referent {
 public:
  IteratorReferent(std::shared_ptr<DictReferent> dict, std::size_t size, std::uint64_t layout)
      : dict_(std::move(dict)), size_(size), layout_(layout) {}
  Value call(CallContext&, std::string_view method, const List& args, const Dict& kwds) override;

 private:
  std::shared_ptr<DictReferent> dict_;
  std::size_t size_;
  std::uint64_t layout_;
  std::size_t pos_ = 0;  // guarded by the dict's mutex
};

// Insertion-ordered hash map: items in slots (holes where deleted), an index by key.
class DictReferent final : public Referent, public std::enable_shared_from_this<DictReferent> {
 public:
  explicit DictReferent(const Dict& initial) {
    for (const auto& [k, v] : initial) set(k, v);
  }

  Value call(CallContext&, std::string_view m, const List& a, const Dict& k) override {
    std::lock_guard<std::mutex> g(mu_);
    if (m == "__getitem__") {
      check_arity(m, a, 1);
      if (const Value* v = find(required(a, k, 0, "key", m))) return *v;
      throw KeyError(required(a, k, 0, "key", m).repr());
    }
    if (m == "__setitem__") {
      check_arity(m, a, 2);
      set(key_of(required(a, k, 0, "key", m)), required(a, k, 1, "value", m));
      return Value();
    }
    if (m == "__delitem__") {
      check_arity(m, a, 1);
      const Value& key = required(a, k, 0, "key", m);
      if (!erase(key)) throw KeyError(key.repr());
      return Value();
    }
    if (m == "__len__") return static_cast<std::int64_t>(live_);
    if (m == "__contains__") return find(required(a, k, 0, "key", m)) != nullptr;
    if (m == "get") {
      check_arity(m, a, 2);
      if (const Value* v = find(required(a, k, 0, "key", m))) return *v;
      const Value* d = arg(a, k, 1, "default");
      return d != nullptr ? *d : Value();
    }
    if (m == "keys" || m == "values" || m == "items") {
      List out;
      out.reserve(live_);
      for (const auto& s : slots_) {
        if (!s) continue;
        if (m == "keys")
          out.emplace_back(s->first);
        else if (m == "values")
          out.push_back(s->second);
        else
          out.push_back(Value::list({s->first, s->second}));
      }
      return out;
    }
    if (m == "update") {
      check_arity(m, a, 1);
      if (!a.empty()) {
        const Value& other = a[0];
        if (other.is_dict()) {
          for (const auto& [key, v] : other.as_dict()) set(key, v);
        } else if (other.is_list()) {
          for (const Value& item : other.as_list()) {
            if (!item.is_list() || item.as_list().size() != 2)
              throw ValueError("dictionary update sequence element has wrong length");
            set(key_of(item.as_list()[0]), item.as_list()[1]);
          }
        } else {
          throw TypeError(std::string("'") + other.type_name() + "' object is not iterable");
        }
      }
      for (const auto& [key, v] : k) set(key, v);
      return Value();
    }
    if (m == "pop") {
      check_arity(m, a, 2);
      const Value& key = required(a, k, 0, "key", m);
      if (Value* v = find_mut(key)) {
        Value out = std::move(*v);
        erase(key);
        return out;
      }
      if (const Value* d = arg(a, k, 1, "default")) return *d;
      throw KeyError(key.repr());
    }
    if (m == "popitem") {
      for (auto it = slots_.rbegin(); it != slots_.rend(); ++it) {
        if (!*it) continue;
        Value out = Value::list({(*it)->first, std::move((*it)->second)});
        erase(Value((*it)->first));
        return out;
      }
      throw KeyError("'popitem(): dictionary is empty'");
    }
    if (m == "setdefault") {
      check_arity(m, a, 2);
      const Value& key = required(a, k, 0, "key", m);
      if (const Value* v = find(key)) return *v;
      const Value* d = arg(a, k, 1, "default");
      Value v = d != nullptr ? *d : Value();
      set(key_of(key), v);
      return v;
    }
    if (m == "clear") {
      slots_.clear();
      index_.clear();
      live_ = 0;
      ++layout_;
      return Value();
    }
    if (m == "copy") return value_locked();
    throw AttributeError("'dict' object has no attribute '" + std::string(m) + "'");
  }

  std::shared_ptr<Referent> call_referent(CallContext&, std::string_view m, const List&,
                                          const Dict&) override {
    if (m != "__iter__")
      throw TypeError("method '" + std::string(m) + "' does not return a referent");
    std::lock_guard<std::mutex> g(mu_);
    return std::make_shared<IteratorReferent>(shared_from_this(), live_, layout_);
  }

  Value value() const override {
    std::lock_guard<std::mutex> g(mu_);
    return value_locked();
  }

 private:
  friend class IteratorReferent;

  static const std::string& key_of(const Value& key) {
    if (!key.is_string())
      throw TypeError(std::string("manager dict keys must be str, not ") + key.type_name());
    return key.as_string();
  }

  Value value_locked() const {
    std::vector<Dict::Item> items;
    items.reserve(live_);
    for (const auto& s : slots_)
      if (s) items.push_back(*s);
    return Value(Dict(std::move(items)));
  }

  const Value* find(const Value& key) const {
    if (!key.is_string()) return nullptr;
    auto it = index_.find(key.as_string());
    return it == index_.end() ? nullptr : &slots_[it->second]->second;
  }
  Value* find_mut(const Value& key) { return const_cast<Value*>(find(key)); }

  void set(const std::string& key, const Value& v) {
    auto [it, fresh] = index_.try_emplace(key, slots_.size());
    if (!fresh) {
      slots_[it->second]->second = v;
      return;
    }
    slots_.emplace_back(std::in_place, key, v);
    ++live_;
  }

  bool erase(const Value& key) {
    if (!key.is_string()) return false;
    auto it = index_.find(key.as_string());
    if (it == index_.end()) return false;
    slots_[it->second].reset();
    index_.erase(it);
    --live_;
    if (slots_.size() > 32 && live_ < slots_.size() / 2) compact();
    return true;
  }

  void compact() {
    std::vector<std::optional<Dict::Item>> kept;
    kept.reserve(live_);
    index_.clear();
    for (auto& s : slots_) {
      if (!s) continue;
      index_.emplace(s->first, kept.size());
      kept.push_back(std::move(s));
    }
    slots_ = std::move(kept);
    ++layout_;
  }

  mutable std::mutex mu_;
  std::vector<std::optional<Dict::Item>> slots_;
  std::unordered_map<std::string, std::size_t> index_;
  std::size_t live_ = 0;
  std::uint64_t layout_ = 0;  // changes when slots move (compaction, clear)
};

Value IteratorReferent::call(CallContext&, std::string_view method, const List&, const Dict&) {
  if (method != "__next__")
    throw AttributeError("'dict_keyiterator' object has no attribute '" + std::string(method) +
                         "'");
  DictReferent& d = *dict_;
  std::lock_guard<std::mutex> g(d.mu_);
  if (d.live_ != size_ || d.layout_ != layout_) {
    size_ = std::numeric_limits<std::size_t>::max();  // stays failed, as CPython's iterator
    throw RuntimeError("dictionary changed size during iteration");
  }
  while (pos_ < d.slots_.size() && !d.slots_[pos_]) ++pos_;
  if (pos_ >= d.slots_.size()) throw StopIteration();
  return Value(d.slots_[pos_++]->first);
}

// ---- list ----

class ListReferent final : public Referent {
 public:
  explicit ListReferent(List initial) : items_(std::move(initial)) {}

  Value call(CallContext&, std::string_view m, const List& a, const Dict& k) override {
    std::lock_guard<std::mutex> g(mu_);
    if (m == "__getitem__") return items_[index(required(a, k, 0, "index", m), "list index")];
    if (m == "__setitem__") {
      items_[index(required(a, k, 0, "index", m), "list assignment index")] =
          required(a, k, 1, "value", m);
      return Value();
    }
    if (m == "__delitem__") {
      const std::size_t i = index(required(a, k, 0, "index", m), "list assignment index");
      items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(i));
      return Value();
    }
    if (m == "__len__") return static_cast<std::int64_t>(items_.size());
    if (m == "__contains__") return position(required(a, k, 0, "value", m), 0, items_.size()) >= 0;
    if (m == "append") {
      items_.push_back(required(a, k, 0, "object", m));
      return Value();
    }
    if (m == "extend") {
      const Value& other = required(a, k, 0, "iterable", m);
      if (other.is_list()) {
        List copy = other.as_list();  // also for extending a list by itself
        items_.insert(items_.end(), copy.begin(), copy.end());
      } else if (other.is_dict()) {
        for (const auto& item : other.as_dict()) items_.emplace_back(item.first);
      } else {
        throw TypeError(std::string("'") + other.type_name() + "' object is not iterable");
      }
      return Value();
    }
    if (m == "insert") {
      std::int64_t i = int_of(required(a, k, 0, "index", m), "index");
      const auto n = static_cast<std::int64_t>(items_.size());
      if (i < 0) i = std::max<std::int64_t>(0, i + n);
      i = std::min(i, n);
      items_.insert(items_.begin() + i, required(a, k, 1, "object", m));
      return Value();
    }
    if (m == "pop") {
      if (items_.empty()) throw IndexError("pop from empty list");
      const Value* iv = arg(a, k, 0, "index");
      std::int64_t i = iv == nullptr ? -1 : int_of(*iv, "index");
      const auto n = static_cast<std::int64_t>(items_.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) throw IndexError("pop index out of range");
      Value out = std::move(items_[static_cast<std::size_t>(i)]);
      items_.erase(items_.begin() + i);
      return out;
    }
    if (m == "remove") {
      const std::int64_t i = position(required(a, k, 0, "value", m), 0, items_.size());
      if (i < 0) throw ValueError("list.remove(x): x not in list");
      items_.erase(items_.begin() + i);
      return Value();
    }
    if (m == "index") {
      const Value& v = required(a, k, 0, "value", m);
      const auto n = static_cast<std::int64_t>(items_.size());
      auto bound = [n](const Value* b, std::int64_t fallback) {
        if (b == nullptr) return fallback;
        std::int64_t x = int_of(*b, "index");
        if (x < 0) x = std::max<std::int64_t>(0, x + n);
        return std::min(x, n);
      };
      const std::int64_t i = position(v, static_cast<std::size_t>(bound(arg(a, k, 1, "start"), 0)),
                                      static_cast<std::size_t>(bound(arg(a, k, 2, "stop"), n)));
      if (i < 0) throw ValueError(v.repr() + " is not in list");
      return i;
    }
    if (m == "count") {
      const Value& v = required(a, k, 0, "value", m);
      return static_cast<std::int64_t>(
          std::count_if(items_.begin(), items_.end(), [&](const Value& x) { return py_eq(x, v); }));
    }
    if (m == "reverse") {
      std::reverse(items_.begin(), items_.end());
      return Value();
    }
    if (m == "sort") {
      if (!a.empty()) throw TypeError("sort() takes no positional arguments");
      if (const Value* key = k.find("key"); key != nullptr && !key->is_none())
        throw TypeError("sort(): a key function cannot cross a manager connection");
      const Value* rev = k.find("reverse");
      List sorted = items_;
      std::stable_sort(sorted.begin(), sorted.end(), py_less);  // throws for incomparable
      if (rev != nullptr && truthy(*rev)) {
        // Python's reverse sort keeps equal items in their original order.
        List back = items_;
        std::reverse(back.begin(), back.end());
        std::stable_sort(back.begin(), back.end(), py_less);
        std::reverse(back.begin(), back.end());
        sorted = std::move(back);
      }
      items_ = std::move(sorted);
      return Value();
    }
    throw AttributeError("'list' object has no attribute '" + std::string(m) + "'");
  }

  Value value() const override {
    std::lock_guard<std::mutex> g(mu_);
    return items_;
  }

 private:
  std::size_t index(const Value& iv, const char* what) const {
    if (!iv.is_int() && !iv.is_bool())
      throw TypeError(std::string("list indices must be integers or slices, not ") +
                      iv.type_name());
    std::int64_t i = int_of(iv, "index");
    const auto n = static_cast<std::int64_t>(items_.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) throw IndexError(std::string(what) + " out of range");
    return static_cast<std::size_t>(i);
  }

  std::int64_t position(const Value& v, std::size_t from, std::size_t to) const {
    for (std::size_t i = from; i < to && i < items_.size(); ++i)
      if (py_eq(items_[i], v)) return static_cast<std::int64_t>(i);
    return -1;
  }

  mutable std::mutex mu_;
  List items_;
};

// ---- Namespace, Value, Array ----

class NamespaceReferent final : public Referent {
 public:
  explicit NamespaceReferent(const Dict& attrs) : attrs_(attrs) {}

  Value call(CallContext&, std::string_view m, const List& a, const Dict& k) override {
    std::lock_guard<std::mutex> g(mu_);
    const Value& name = required(a, k, 0, "name", m);
    if (!name.is_string())
      throw TypeError(std::string("attribute name must be string, not '") + name.type_name() + "'");
    const std::string& n = name.as_string();
    if (m == "__getattribute__") {
      if (const Value* v = attrs_.find(n)) return *v;
      throw missing(n);
    }
    if (m == "__setattr__") {
      attrs_.insert_or_assign(n, required(a, k, 1, "value", m));
      return Value();
    }
    if (m == "__delattr__") {
      if (!attrs_.erase(n)) throw missing(n);
      return Value();
    }
    throw AttributeError("'Namespace' object has no attribute '" + std::string(m) + "'");
  }

  Value value() const override {
    std::lock_guard<std::mutex> g(mu_);
    return attrs_;
  }

 private:
  static AttributeError missing(const std::string& n) {
    return AttributeError("'Namespace' object has no attribute '" + n + "'");
  }
  mutable std::mutex mu_;
  Dict attrs_;
};

class ValueReferent final : public Referent {
 public:
  explicit ValueReferent(Value v) : v_(std::move(v)) {}

  Value call(CallContext&, std::string_view m, const List& a, const Dict& k) override {
    std::lock_guard<std::mutex> g(mu_);
    if (m == "get") return v_;
    if (m == "set") {
      v_ = required(a, k, 0, "value", m);
      return Value();
    }
    throw AttributeError("'Value' object has no attribute '" + std::string(m) + "'");
  }

  Value value() const override {
    std::lock_guard<std::mutex> g(mu_);
    return v_;
  }

 private:
  mutable std::mutex mu_;
  Value v_;
};

// array.array semantics for the type codes: the item must fit the code.
class ArrayReferent final : public Referent {
 public:
  ArrayReferent(const Value& typecode, const Value& initial) {
    if (!typecode.is_string() || typecode.as_string().size() != 1 ||
        std::string_view("bBuhHiIlLqQfd").find(typecode.as_string()[0]) == std::string_view::npos)
      throw ValueError("bad typecode (must be b, B, u, h, H, i, I, l, L, q, Q, f or d)");
    code_ = typecode.as_string()[0];
    if (initial.is_list()) {
      for (const Value& v : initial.as_list()) items_.push_back(coerce(v));
    } else if (!initial.is_none()) {
      throw TypeError(std::string("cannot use a ") + initial.type_name() +
                      " to initialize an array with typecode '" + code_ + "'");
    }
  }

  Value call(CallContext&, std::string_view m, const List& a, const Dict& k) override {
    std::lock_guard<std::mutex> g(mu_);
    if (m == "__len__") return static_cast<std::int64_t>(items_.size());
    if (m == "__getitem__") return items_[index(required(a, k, 0, "index", m), "array index")];
    if (m == "__setitem__") {
      const std::size_t i = index(required(a, k, 0, "index", m), "array assignment index");
      items_[i] = coerce(required(a, k, 1, "value", m));
      return Value();
    }
    throw AttributeError("'array.array' object has no attribute '" + std::string(m) + "'");
  }

  Value value() const override {
    std::lock_guard<std::mutex> g(mu_);
    return items_;
  }

 private:
  Value coerce(const Value& v) const {
    if (code_ == 'f' || code_ == 'd') {
      if (!is_number(v)) throw TypeError(std::string("must be real number, not ") + v.type_name());
      return number_of(v, "item");
    }
    if (code_ == 'u') {
      if (!v.is_string())
        throw TypeError(std::string("array item must be unicode character, not ") + v.type_name());
      return v;
    }
    if (!v.is_int() && !v.is_bool())
      throw TypeError(std::string("'") + v.type_name() +
                      "' object cannot be interpreted as an integer");
    const std::int64_t x = int_of(v, "item");
    std::int64_t lo = std::numeric_limits<std::int64_t>::min();
    std::int64_t hi = std::numeric_limits<std::int64_t>::max();
    switch (code_) {
      case 'b':
        lo = -128, hi = 127;
        break;
      case 'B':
        lo = 0, hi = 255;
        break;
      case 'h':
        lo = -32768, hi = 32767;
        break;
      case 'H':
        lo = 0, hi = 65535;
        break;
      case 'i':
        lo = std::numeric_limits<std::int32_t>::min(),
        hi = std::numeric_limits<std::int32_t>::max();
        break;
      case 'I':
        lo = 0, hi = std::numeric_limits<std::uint32_t>::max();
        break;
      case 'L':
      case 'Q':
        lo = 0;
        break;
      default:
        break;
    }
    if (x < lo || x > hi)
      throw OverflowError(std::string("value out of range for array typecode '") + code_ + "'");
    return x;
  }

  std::size_t index(const Value& iv, const char* what) const {
    if (!iv.is_int() && !iv.is_bool())
      throw TypeError(std::string("array indices must be integers, not ") + iv.type_name());
    std::int64_t i = int_of(iv, "index");
    const auto n = static_cast<std::int64_t>(items_.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) throw IndexError(std::string(what) + " out of range");
    return static_cast<std::size_t>(i);
  }

  mutable std::mutex mu_;
  char code_ = 'i';
  List items_;
};

// ---- Queue / JoinableQueue (queue.Queue) ----

// Which semantics a lock-like or queue referent has: Python's threading / queue.Queue (the
// SyncManager typeids) or libmp's own primitives' (the "mp." typeids; mpspec's sync and queue
// chapters).
enum class Flavor { kThreading, kLibmp };

// The "mp." typeids' limit for counts (a semaphore's value, a queue's maxsize): SEM_VALUE_MAX.
constexpr std::int64_t kMaxCount = 2147483647;

// A libmp-style timeout: absent -> nullopt (no limit); negative -> 0; NaN -> ValueError.
std::optional<double> libmp_timeout(const Value* v) {
  std::optional<double> t = timeout_of(v);
  if (t && *t < 0) t = 0.0;
  return t;
}

class QueueReferent final : public Referent {
 public:
  QueueReferent(std::int64_t maxsize, Flavor flavor) : maxsize_(maxsize), flavor_(flavor) {
    if (flavor == Flavor::kLibmp && maxsize > kMaxCount)
      throw OverflowError("Python int too large to convert to C int");
  }

  Value call(CallContext& ctx, std::string_view m, const List& a, const Dict& k) override {
    std::unique_lock<std::mutex> lk(mu_);
    if (m == "put" || m == "put_nowait") {
      const Value& item = required(a, k, 0, "item", m);
      bool block = m == "put";
      std::optional<double> timeout;
      if (m == "put") {
        if (const Value* b = arg(a, k, 1, "block")) block = truthy(*b);
        timeout = flavor_ == Flavor::kLibmp ? libmp_timeout(arg(a, k, 2, "timeout"))
                                            : timeout_of(arg(a, k, 2, "timeout"));
      }
      if (!block) {
        if (full()) throw Full("");
      } else {
        if (timeout && *timeout < 0) throw ValueError("'timeout' must be a non-negative number");
        if (!ctx.wait(lk, cv_, deadline_after(timeout), [&] { return !full(); })) throw Full("");
      }
      items_.push_back(item);
      ++unfinished_;
      cv_.notify_all();
      return Value();
    }
    if (m == "get" || m == "get_nowait") {
      bool block = m == "get";
      std::optional<double> timeout;
      if (m == "get") {
        if (const Value* b = arg(a, k, 0, "block")) block = truthy(*b);
        timeout = flavor_ == Flavor::kLibmp ? libmp_timeout(arg(a, k, 1, "timeout"))
                                            : timeout_of(arg(a, k, 1, "timeout"));
      }
      if (!block) {
        if (items_.empty()) throw Empty("");
      } else {
        if (timeout && *timeout < 0) throw ValueError("'timeout' must be a non-negative number");
        if (!ctx.wait(lk, cv_, deadline_after(timeout), [&] { return !items_.empty(); }))
          throw Empty("");
      }
      Value out = std::move(items_.front());
      items_.pop_front();
      cv_.notify_all();
      return out;
    }
    if (m == "qsize") return static_cast<std::int64_t>(items_.size());
    if (m == "empty") return items_.empty();
    if (m == "full") return full();
    if (m == "task_done") {
      if (unfinished_ <= 0) throw ValueError("task_done() called too many times");
      if (--unfinished_ == 0) cv_.notify_all();
      return Value();
    }
    if (m == "join") {
      ctx.wait(lk, cv_, std::nullopt, [&] { return unfinished_ == 0; });
      return Value();
    }
    throw AttributeError("'Queue' object has no attribute '" + std::string(m) + "'");
  }

 private:
  bool full() const { return maxsize_ > 0 && static_cast<std::int64_t>(items_.size()) >= maxsize_; }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Value> items_;
  std::int64_t maxsize_;
  Flavor flavor_;
  std::int64_t unfinished_ = 0;
};

// ---- Locks ----

// threading.Lock / RLock acquire(blocking=True, timeout=-1) arguments: the deadline, or
// nullopt for no limit; `try_once` when not blocking.
struct AcquireArgs {
  bool try_once = false;
  Deadline deadline;
};

AcquireArgs lock_acquire_args(const List& a, const Dict& k, Flavor flavor) {
  AcquireArgs r;
  if (flavor == Flavor::kLibmp) {  // multiprocessing's: block=True, timeout=None
    bool block = true;
    if (const Value* b = arg(a, k, 0, "block")) block = truthy(*b);
    const std::optional<double> timeout = libmp_timeout(arg(a, k, 1, "timeout"));
    r.try_once = !block;  // a non-blocking acquire ignores its timeout
    if (block) r.deadline = deadline_after(timeout);
    return r;
  }
  bool blocking = true;
  if (const Value* b = arg(a, k, 0, "blocking")) blocking = truthy(*b);
  double timeout = -1;
  if (auto t = timeout_of(arg(a, k, 1, "timeout"))) timeout = *t;  // None: as -1 (lenient)
  if (!blocking && timeout != -1)
    throw ValueError("can't specify a timeout for a non-blocking call");
  if (timeout < 0 && timeout != -1) throw ValueError("timeout value must be a non-negative number");
  r.try_once = !blocking;
  if (timeout >= 0) r.deadline = deadline_after(timeout);
  return r;
}

// A reentrant lock owned by a client connection; shared by RLock and Condition. The libmp
// flavor is robust: an owner whose connection has closed is dead, and the next acquire by
// another client takes the lock at depth 1 and reports OwnerDied.
struct OwnedLock {
  explicit OwnedLock(Flavor f) : flavor(f) {}

  Flavor flavor;
  std::uint64_t owner = 0;  // 0: free (client ids start at 1)
  std::int64_t count = 0;
  bool owner_died = false;  // libmp: freed by client_gone(), not yet reported

  // With `lk` held on mu.
  bool acquire(CallContext& ctx, std::unique_lock<std::mutex>& lk, std::condition_variable& cv,
               const AcquireArgs& args) {
    if (owner == ctx.client()) {
      ++count;
      return true;
    }
    // The owner's connection may have closed before its server thread called client_gone().
    auto free_or_dead = [&] {
      if (owner != 0 && flavor == Flavor::kLibmp && !ctx.client_alive(owner)) {
        owner = 0;
        count = 0;
        owner_died = true;
      }
      return owner == 0;
    };
    if (args.try_once) {
      if (!free_or_dead()) return false;
    } else if (!ctx.wait(lk, cv, args.deadline, free_or_dead)) {
      return false;
    }
    owner = ctx.client();
    count = 1;
    if (owner_died) {
      owner_died = false;
      throw OwnerDied("the owner of the RLock died while holding it; the caller now owns it");
    }
    return true;
  }
  void release(CallContext& ctx, std::condition_variable& cv) {
    if (owner != ctx.client() || count == 0) {
      if (flavor == Flavor::kLibmp) throw AssertionError("cannot release un-acquired lock");
      throw RuntimeError("cannot release un-acquired lock");
    }
    if (--count == 0) {
      owner = 0;
      cv.notify_all();
    }
  }
  // With mu held: `client`'s connection has closed.
  void gone(std::uint64_t client, std::condition_variable& cv) {
    if (flavor != Flavor::kLibmp || owner != client) return;
    owner = 0;
    count = 0;
    owner_died = true;
    cv.notify_all();
  }
};

// The state of a Lock or an RLock, which a Condition may share (an "mp." Lock's or RLock's
// `Condition` method makes a Condition over it). For a Lock, `owned.owner` is the client that
// last acquired it while it is held (count 1): any client may release it, and a dead holder's
// Lock stays held; for an RLock, ownership, depth and OwnerDied are OwnedLock's.
struct LockCore {
  LockCore(Flavor f, bool reentrant) : owned(f), reentrant(reentrant) {}

  std::mutex mu;
  std::condition_variable cv;
  OwnedLock owned;
  const bool reentrant;

  bool libmp() const { return owned.flavor == Flavor::kLibmp; }

  // With `lk` held on mu.
  bool acquire(CallContext& ctx, std::unique_lock<std::mutex>& lk, const AcquireArgs& args) {
    if (reentrant) return owned.acquire(ctx, lk, cv, args);
    if (args.try_once) {
      if (owned.owner != 0) return false;
    } else if (!ctx.wait(lk, cv, args.deadline, [&] { return owned.owner == 0; })) {
      return false;
    }
    owned.owner = ctx.client();
    owned.count = 1;
    return true;
  }
  // With mu held.
  void release(CallContext& ctx) {
    if (reentrant) return owned.release(ctx, cv);
    if (owned.owner == 0) {
      if (libmp()) throw ValueError("semaphore or lock released too many times");
      throw RuntimeError("release unlocked lock");
    }
    owned.owner = 0;
    owned.count = 0;
    cv.notify_all();
  }
  // Whether the caller holds it (a Condition's wait and notify need that). With mu held.
  bool mine(const CallContext& ctx) const { return owned.owner == ctx.client() && owned.count > 0; }
  void gone(std::uint64_t client) {
    std::lock_guard<std::mutex> g(mu);
    if (reentrant) owned.gone(client, cv);
  }
};

// Lock and RLock. The "mp." ones also expose `Condition`, which returns a new "mp.Condition"
// over this lock.
class LockReferent final : public Referent {
 public:
  LockReferent(Flavor flavor, bool reentrant)
      : core_(std::make_shared<LockCore>(flavor, reentrant)) {}

  Value call(CallContext& ctx, std::string_view m, const List& a, const Dict& k) override {
    std::unique_lock<std::mutex> lk(core_->mu);
    if (m == "acquire")
      return core_->acquire(ctx, lk, lock_acquire_args(a, k, core_->owned.flavor));
    if (m == "release") {
      core_->release(ctx);
      return Value();
    }
    throw AttributeError(std::string(core_->reentrant ? "'RLock'" : "'lock'") +
                         " object has no attribute '" + std::string(m) + "'");
  }

  std::shared_ptr<Referent> call_referent(CallContext& ctx, std::string_view m, const List& a,
                                          const Dict& k) override;

  void client_gone(std::uint64_t client) override { core_->gone(client); }

 private:
  std::shared_ptr<LockCore> core_;
};

class SemaphoreReferent final : public Referent {
 public:
  SemaphoreReferent(std::int64_t value, bool bounded, Flavor flavor)
      : value_(value), initial_(value), bounded_(bounded), flavor_(flavor) {
    if (value < 0) throw ValueError("semaphore initial value must be >= 0");
    if (flavor == Flavor::kLibmp && value > kMaxCount)
      throw ValueError("semaphore initial value is too large");
  }

  Value call(CallContext& ctx, std::string_view m, const List& a, const Dict& k) override {
    std::unique_lock<std::mutex> lk(mu_);
    if (flavor_ == Flavor::kLibmp) {
      if (m == "acquire") {
        const AcquireArgs args = lock_acquire_args(a, k, flavor_);
        if (args.try_once) {
          if (value_ == 0) return false;
        } else if (!ctx.wait(lk, cv_, args.deadline, [&] { return value_ > 0; })) {
          return false;
        }
        --value_;
        return true;
      }
      if (m == "release") {
        if (bounded_ ? value_ >= initial_ : value_ >= kMaxCount)
          throw ValueError("semaphore or lock released too many times");
        ++value_;
        cv_.notify_all();
        return Value();
      }
      if (m == "get_value") return value_;
    }
    if (m == "acquire") {
      bool blocking = true;
      if (const Value* b = arg(a, k, 0, "blocking")) blocking = truthy(*b);
      const std::optional<double> timeout = timeout_of(arg(a, k, 1, "timeout"));
      if (!blocking && timeout) throw ValueError("can't specify timeout for non-blocking acquire");
      if (!blocking) {
        if (value_ == 0) return false;
      } else if (!ctx.wait(lk, cv_, deadline_after(timeout), [&] { return value_ > 0; })) {
        return false;
      }
      --value_;
      return true;
    }
    if (m == "release") {
      std::int64_t n = 1;
      if (const Value* nv = arg(a, k, 0, "n")) n = int_of(*nv, "n");
      if (n < 1) throw ValueError("n must be one or more");
      if (bounded_ && value_ + n > initial_) throw ValueError("Semaphore released too many times");
      value_ += n;
      cv_.notify_all();
      return Value();
    }
    throw AttributeError("'Semaphore' object has no attribute '" + std::string(m) + "'");
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::int64_t value_;
  std::int64_t initial_;
  bool bounded_;
  Flavor flavor_;
};

class EventReferent final : public Referent {
 public:
  Value call(CallContext& ctx, std::string_view m, const List& a, const Dict& k) override {
    std::unique_lock<std::mutex> lk(mu_);
    if (m == "is_set") return flag_;
    if (m == "set") {
      flag_ = true;
      cv_.notify_all();
      return Value();
    }
    if (m == "clear") {
      flag_ = false;
      return Value();
    }
    if (m == "wait")
      return ctx.wait(lk, cv_, deadline_after(timeout_of(arg(a, k, 0, "timeout"))),
                      [&] { return flag_; });
    throw AttributeError("'Event' object has no attribute '" + std::string(m) + "'");
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool flag_ = false;
};

class ConditionReferent final : public Referent {
 public:
  // A Condition over its own new RLock, or over `core` (a Lock's or an RLock's).
  explicit ConditionReferent(Flavor flavor)
      : core_(std::make_shared<LockCore>(flavor, /*reentrant=*/true)) {}
  explicit ConditionReferent(std::shared_ptr<LockCore> core) : core_(std::move(core)) {}

  Value call(CallContext& ctx, std::string_view m, const List& a, const Dict& k) override {
    std::unique_lock<std::mutex> lk(core_->mu);
    OwnedLock& lock = core_->owned;
    const bool libmp = core_->libmp();
    if (m == "acquire") return core_->acquire(ctx, lk, lock_acquire_args(a, k, lock.flavor));
    if (m == "release") {
      core_->release(ctx);
      return Value();
    }
    if (m == "wait") {
      if (!core_->mine(ctx)) {
        if (libmp) throw AssertionError("must acquire() condition before using wait()");
        throw RuntimeError("cannot wait on un-acquired lock");
      }
      const Deadline deadline = deadline_after(libmp ? libmp_timeout(arg(a, k, 0, "timeout"))
                                                     : timeout_of(arg(a, k, 0, "timeout")));
      auto me = std::make_shared<Waiter>(Waiter{false, ctx.client()});
      waiters_.push_back(me);
      const std::int64_t saved = lock.count;  // the RLock's depth, restored on return
      lock.owner = 0;
      lock.count = 0;
      core_->cv.notify_all();
      bool notified = false;
      try {
        notified = ctx.wait(lk, core_->cv, deadline, [&] { return me->notified; });
      } catch (...) {
        std::erase(waiters_, me);
        throw;  // the client is gone: it does not get the lock back
      }
      if (!notified) std::erase(waiters_, me);
      // Take the lock back; an RLock whose owner died meanwhile is taken over and reported as
      // in acquire.
      ctx.wait(lk, core_->cv, std::nullopt, [&] {
        if (lock.owner != 0 && libmp && core_->reentrant && !ctx.client_alive(lock.owner)) {
          lock.owner = 0;
          lock.count = 0;
          lock.owner_died = true;
        }
        return lock.owner == 0;
      });
      lock.owner = ctx.client();
      lock.count = saved;
      if (lock.owner_died) {
        lock.owner_died = false;
        throw OwnerDied(
            "the owner of the Condition's lock died while holding it; the caller now owns it");
      }
      return notified;
    }
    if (m == "notify" || m == "notify_all") {
      if (!core_->mine(ctx)) {
        if (libmp)
          throw AssertionError("must acquire() condition before using " + std::string(m) + "()");
        throw RuntimeError("cannot notify on un-acquired lock");
      }
      std::int64_t n = std::numeric_limits<std::int64_t>::max();
      if (m == "notify") {
        n = 1;
        if (const Value* nv = arg(a, k, 0, "n")) n = int_of(*nv, "n");
      }
      while (n > 0 && !waiters_.empty()) {
        const std::shared_ptr<Waiter> w = waiters_.front();
        waiters_.pop_front();
        // libmp: a waiter whose client has gone takes no wake-up (its thread gives up later).
        if (libmp && !ctx.client_alive(w->client)) continue;
        w->notified = true;
        --n;
      }
      core_->cv.notify_all();
      return Value();
    }
    throw AttributeError("'Condition' object has no attribute '" + std::string(m) + "'");
  }

  void client_gone(std::uint64_t client) override { core_->gone(client); }

 private:
  struct Waiter {
    bool notified;
    std::uint64_t client;
  };
  std::shared_ptr<LockCore> core_;
  std::deque<std::shared_ptr<Waiter>> waiters_;  // guarded by core_->mu
};

std::shared_ptr<Referent> LockReferent::call_referent(CallContext& ctx, std::string_view m,
                                                      const List& a, const Dict& k) {
  if (m == "Condition" && core_->libmp()) return std::make_shared<ConditionReferent>(core_);
  return Referent::call_referent(ctx, m, a, k);
}

// threading.Barrier's algorithm (states: 0 filling, 1 draining, -1 resetting, -2 broken).
class BarrierReferent final : public Referent {
 public:
  BarrierReferent(std::int64_t parties, std::optional<double> timeout)
      : parties_(parties), timeout_(timeout) {
    if (parties < 1) throw ValueError("parties must be >= 1");
  }

  Value call(CallContext& ctx, std::string_view m, const List& a, const Dict& k) override {
    std::unique_lock<std::mutex> lk(mu_);
    if (m == "wait") {
      std::optional<double> timeout = timeout_of(arg(a, k, 0, "timeout"));
      if (!timeout) timeout = timeout_;
      ctx.wait(lk, cv_, std::nullopt, [&] { return state_ != -1 && state_ != 1; });
      if (state_ < 0) throw BrokenBarrierError("");
      const std::int64_t index = count_++;
      struct Exit {
        BarrierReferent* b;
        ~Exit() {
          if (--b->count_ == 0 && (b->state_ == -1 || b->state_ == 1)) {
            b->state_ = 0;
            b->cv_.notify_all();
          }
        }
      } on_exit{this};
      if (index + 1 == parties_) {
        state_ = 1;
        cv_.notify_all();
      } else {
        bool done = false;
        try {
          done = ctx.wait(lk, cv_, deadline_after(timeout), [&] { return state_ != 0; });
        } catch (...) {
          broken();  // an abandoned party breaks the barrier, as a timeout does
          throw;
        }
        if (!done) {
          broken();
          throw BrokenBarrierError("");
        }
        if (state_ < 0) throw BrokenBarrierError("");
      }
      return index;
    }
    if (m == "abort") {
      broken();
      return Value();
    }
    if (m == "reset") {
      if (count_ > 0) {
        if (state_ == 0 || state_ == -2) state_ = -1;
      } else {
        state_ = 0;
      }
      cv_.notify_all();
      return Value();
    }
    if (m == "__getattribute__") {
      const Value& name = required(a, k, 0, "name", m);
      if (name.is_string()) {
        const std::string& n = name.as_string();
        if (n == "parties") return parties_;
        if (n == "n_waiting") return state_ == 0 ? count_ : std::int64_t{0};
        if (n == "broken") return state_ == -2;
      }
      throw AttributeError("'Barrier' object has no attribute " + name.repr());
    }
    throw AttributeError("'Barrier' object has no attribute '" + std::string(m) + "'");
  }

 private:
  void broken() {
    state_ = -2;
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::int64_t parties_;
  std::optional<double> timeout_;
  std::int64_t count_ = 0;
  int state_ = 0;
};

// ---- Registration ----

std::int64_t optional_int(const List& a, const Dict& k, std::size_t i, std::string_view name,
                          std::int64_t fallback) {
  const Value* v = arg(a, k, i, name);
  return v == nullptr || v->is_none() ? fallback : int_of(*v, name);
}

TypeidSpec spec(ReferentFactory f, std::vector<std::string> exposed,
                std::map<std::string, std::string> m2t = {}) {
  return TypeidSpec{std::move(f), std::move(exposed), std::move(m2t)};
}

}  // namespace

bool py_eq(const Value& a, const Value& b) {
  if (is_number(a) && is_number(b)) return cmp_numbers(a, b) == 0;
  if (a.type() != b.type()) return false;
  if (a.is_list()) {
    const List &x = a.as_list(), &y = b.as_list();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!py_eq(x[i], y[i])) return false;
    return true;
  }
  if (a.is_dict()) {
    const Dict &x = a.as_dict(), &y = b.as_dict();
    if (x.size() != y.size()) return false;
    for (const auto& [key, v] : x) {
      const Value* w = y.find(key);
      if (w == nullptr || !py_eq(v, *w)) return false;
    }
    return true;
  }
  return a == b;
}

// The built-ins, registered once (from register_typeid / find_typeid).
void register_builtins(const std::function<void(std::string, TypeidSpec)>& add) {
  const std::vector<std::string> dict_methods = {
      "__contains__", "__delitem__", "__getitem__", "__iter__", "__len__", "__setitem__",
      "clear",        "copy",        "get",         "items",    "keys",    "pop",
      "popitem",      "setdefault",  "update",      "values"};
  add("dict",
      spec(
          [](const List& a, const Dict& k) {
            Dict initial;
            if (!a.empty()) {
              if (a.size() > 1) throw TypeError("dict expected at most 1 argument");
              if (a[0].is_dict()) {
                initial = a[0].as_dict();
              } else if (a[0].is_list()) {
                for (const Value& item : a[0].as_list()) {
                  if (!item.is_list() || item.as_list().size() != 2 ||
                      !item.as_list()[0].is_string())
                    throw TypeError("dict() needs [str, value] pairs");
                  initial.insert_or_assign(item.as_list()[0].as_string(), item.as_list()[1]);
                }
              } else {
                throw TypeError(std::string("'") + a[0].type_name() + "' object is not iterable");
              }
            }
            for (const auto& [key, v] : k) initial.insert_or_assign(key, v);
            return std::make_shared<DictReferent>(initial);
          },
          dict_methods, {{"__iter__", "Iterator"}}));
  add("list",
      spec(
          [](const List& a, const Dict&) {
            if (a.empty()) return std::make_shared<ListReferent>(List{});
            if (a[0].is_list()) return std::make_shared<ListReferent>(a[0].as_list());
            if (a[0].is_dict()) {
              List keys;
              for (const auto& item : a[0].as_dict()) keys.emplace_back(item.first);
              return std::make_shared<ListReferent>(std::move(keys));
            }
            throw TypeError(std::string("'") + a[0].type_name() + "' object is not iterable");
          },
          {"__contains__", "__delitem__", "__getitem__", "__len__", "__setitem__", "append",
           "count", "extend", "index", "insert", "pop", "remove", "reverse", "sort"}));
  add("Namespace", spec(
                       [](const List& a, const Dict& k) {
                         if (!a.empty()) throw TypeError("no positional arguments expected");
                         return std::make_shared<NamespaceReferent>(k);
                       },
                       {"__getattribute__", "__setattr__", "__delattr__"}));
  add("Value", spec(
                   [](const List& a, const Dict& k) {
                     required(a, k, 0, "typecode", "Value");
                     return std::make_shared<ValueReferent>(required(a, k, 1, "value", "Value"));
                   },
                   {"get", "set"}));
  add("Array", spec(
                   [](const List& a, const Dict& k) {
                     return std::make_shared<ArrayReferent>(required(a, k, 0, "typecode", "Array"),
                                                            required(a, k, 1, "sequence", "Array"));
                   },
                   {"__len__", "__getitem__", "__setitem__"}));
  const std::vector<std::string> queue_methods = {
      "empty", "full", "get", "get_nowait", "join", "put", "put_nowait", "qsize", "task_done"};
  const std::vector<std::string> lock_methods = {"acquire", "release"};
  const std::vector<std::string> condition_methods = {"acquire", "release", "wait", "notify",
                                                      "notify_all"};
  // SyncManager's (threading / queue.Queue semantics), then the same objects with libmp's.
  for (const Flavor flavor : {Flavor::kThreading, Flavor::kLibmp}) {
    const std::string prefix = flavor == Flavor::kLibmp ? "mp." : "";
    auto queue = [flavor](const List& a, const Dict& k) {
      return std::make_shared<QueueReferent>(optional_int(a, k, 0, "maxsize", 0), flavor);
    };
    add(prefix + "Queue", spec(queue, queue_methods));
    add(prefix + "JoinableQueue", spec(queue, queue_methods));
    // An "mp." Lock's or RLock's `Condition()` makes an "mp.Condition" over that lock.
    std::map<std::string, std::string> lock_m2t;
    if (flavor == Flavor::kLibmp) lock_m2t["Condition"] = "mp.Condition";
    for (const bool reentrant : {false, true}) {
      add(prefix + (reentrant ? "RLock" : "Lock"),
          spec(
              [flavor, reentrant](const List&, const Dict&) {
                return std::make_shared<LockReferent>(flavor, reentrant);
              },
              lock_methods, lock_m2t));
    }
    std::vector<std::string> semaphore_methods = lock_methods;
    if (flavor == Flavor::kLibmp) semaphore_methods.push_back("get_value");
    for (const bool bounded : {false, true}) {
      add(prefix + (bounded ? "BoundedSemaphore" : "Semaphore"),
          spec(
              [flavor, bounded](const List& a, const Dict& k) {
                return std::make_shared<SemaphoreReferent>(optional_int(a, k, 0, "value", 1),
                                                           bounded, flavor);
              },
              semaphore_methods));
    }
    add(prefix + "Condition", spec(
                                  [flavor](const List& a, const Dict& k) {
                                    if (const Value* l = arg(a, k, 0, "lock");
                                        l != nullptr && !l->is_none())
                                      throw TypeError(
                                          "Condition: a lock argument cannot cross a manager "
                                          "connection (the condition makes its own RLock)");
                                    return std::make_shared<ConditionReferent>(flavor);
                                  },
                                  condition_methods));
  }
  add("Event", spec([](const List&, const Dict&) { return std::make_shared<EventReferent>(); },
                    {"is_set", "set", "clear", "wait"}));
  add("Barrier",
      spec(
          [](const List& a, const Dict& k) {
            const std::int64_t parties = int_of(required(a, k, 0, "parties", "Barrier"), "parties");
            if (const Value* act = arg(a, k, 1, "action"); act && !act->is_none())
              throw TypeError("Barrier: an action cannot cross a manager connection");
            return std::make_shared<BarrierReferent>(parties, timeout_of(arg(a, k, 2, "timeout")));
          },
          {"__getattribute__", "abort", "reset", "wait"}));
  add("Iterator", spec(nullptr, {"__next__"}));
}

}  // namespace manager_detail

std::shared_ptr<Referent> Referent::call_referent(CallContext&, std::string_view method,
                                                  const List&, const Dict&) {
  throw TypeError("method '" + std::string(method) + "' does not return a referent");
}

Value Referent::value() const { throw TypeError("this referent has no value form"); }

void Referent::client_gone(std::uint64_t) {}

}  // namespace mp
