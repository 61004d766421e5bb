// -----------------------------------------------------------------------------
// File: value.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::Value`, the C++ form of the mpspec value domain
// (normative text: mpspec `spec/README.md` section 6): every value that crosses
// a queue, pipe, connection or manager belongs to it.
//
//   mp::Value   one value: None, bool, int (int64), float (double), str
//               (UTF-8 text), bytes, list, or dict with str keys
//   mp::Dict    the dict: str keys, kept in insertion order, as Python keeps
//               them; equality ignores the order
//   mp::Bytes   the bytes payload, `std::vector<std::byte>`
//
// A Value is a plain tree: copying it copies the whole tree, and two Values
// never share a list or dict (unlike Python objects, which may be shared or
// even contain themselves). `mp::pickle_dumps` / `mp::pickle_loads`
// (mp/codec.hpp) carry Values to and from CPython's pickle format.
//
// Example:
//
//   mp::Value v = mp::Value::dict({{"name", "worker-1"},
//                                  {"ids", mp::Value::list({1, 2, 3})},
//                                  {"blob", mp::Value::bytes("\x00\x01")}});
//   v.as_dict()["done"] = false;               // insert or assign
//   std::int64_t first = v.as_dict().at("ids").as_list()[0].as_int();
//   std::string text = v.repr();
//   // {'name': 'worker-1', 'ids': [1, 2, 3], 'blob': b'\x00\x01', 'done': False}
//
// Equality is structural and type-sensitive, as the spec requires: `1`, `1.0`
// and `true` are three different values, and dict equality ignores key order.
// Floats compare with IEEE `==` (as Python's `float.__eq__`): `0.0 == -0.0`,
// and NaN equals nothing, itself included.
//
// Strings hold UTF-8. A Value does not check its strings (constructing one is
// cheap and cannot fail); the codec does: `pickle_dumps` refuses a string that
// is not valid UTF-8 (or encodes a surrogate), so Python can always load what
// it writes.

#ifndef MP_VALUE_HPP_
#define MP_VALUE_HPP_

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace mp {

class Value;

// mp::Bytes
//
// The payload of a bytes Value: arbitrary octets.
using Bytes = std::vector<std::byte>;

// mp::Dict
//
// A dict with str keys that keeps its items in insertion order, like a Python
// dict: assigning to an existing key replaces its value in place, and a new
// key goes at the end. Keys are unique. Lookups compare the keys' bytes and
// take linear time (dicts in messages are small); building a Dict from a
// vector or an initializer list takes linear time.
//
// Iteration yields `const Item&` in insertion order. Values are mutable
// through find(), at() and operator[]; keys are not (that would break
// uniqueness).
//
//   mp::Dict d{{"a", 1}, {"b", 2}, {"a", 3}};   // {'a': 3, 'b': 2}, as dict()
//   d["c"] = "x";                               // {'a': 3, 'b': 2, 'c': 'x'}
//   if (const mp::Value* v = d.find("b")) ...
//   for (const auto& [key, value] : d) ...
class Dict {
 public:
  using Item = std::pair<std::string, Value>;
  using const_iterator = std::vector<Item>::const_iterator;

  Dict() = default;

  // Builds a dict from items in order. A key seen again replaces the value
  // of its first occurrence and keeps that position, as `dict(items)` does in
  // Python.
  Dict(std::initializer_list<Item> items);
  explicit Dict(std::vector<Item> items);

  std::size_t size() const noexcept;
  bool empty() const noexcept;
  const_iterator begin() const noexcept;
  const_iterator end() const noexcept;

  // Dict::items()
  //
  // The items in insertion order.
  const std::vector<Item>& items() const noexcept { return items_; }

  // Dict::find()
  //
  // The value stored under `key`, or nullptr if there is none.
  const Value* find(std::string_view key) const noexcept;
  Value* find(std::string_view key) noexcept;
  bool contains(std::string_view key) const noexcept;

  // Dict::at()
  //
  // The value stored under `key`. Throws std::out_of_range if there is none
  // (like std::map::at; Python would raise KeyError).
  const Value& at(std::string_view key) const;
  Value& at(std::string_view key);

  // Dict::operator[]
  //
  // The value stored under `key`; inserts None under `key` at the end first
  // if there is none.
  Value& operator[](std::string_view key);

  // Dict::insert_or_assign()
  //
  // Stores `value` under `key`: replaces the value in place if the key is
  // present, else appends the item. Returns true if the key was new.
  bool insert_or_assign(std::string key, Value value);

  // Dict::erase()
  //
  // Removes the item with `key`, keeping the order of the others. Returns
  // true if there was one.
  bool erase(std::string_view key);

  void clear() noexcept;
  void reserve(std::size_t n);

  // Equal if both have the same keys, each with an equal value, in any order.
  friend bool operator==(const Dict& a, const Dict& b);

 private:
  std::vector<Item> items_;
};

// mp::Value
//
// One value of the mpspec domain. A default-constructed Value is None. The
// constructors are implicit, so that C++ literals read naturally:
//
//   mp::Value none;                        // None   (also Value(nullptr))
//   mp::Value flag = true;                 // bool
//   mp::Value n = 42;                      // int: any integer type except
//                                          //   bool and char; an unsigned
//                                          //   value above INT64_MAX throws
//                                          //   mp::OverflowError
//   mp::Value x = 2.5;                     // float
//   mp::Value s = "text";                  // str (UTF-8): const char*,
//                                          //   std::string, std::string_view
//   mp::Value b = mp::Value::bytes("raw"); // bytes (or Value(mp::Bytes{...}))
//   mp::Value l = mp::Value::list({1, "a", nullptr});
//   mp::Value d = mp::Value::dict({{"k", 1}});
//
// Accessors. `type()` and the `is_*()` predicates tell the alternative;
// `as_*()` return it and throw mp::TypeError for another type (no conversions:
// `Value(1).as_float()` throws); `get_if<T>()` returns a pointer or nullptr.
//
// repr() renders the value in Python syntax, e.g. `{'a': [1, 2.5, None]}`; for
// debugging and error messages (operator<< prints it too).
class Value {
 public:
  // Value::Type
  //
  // The alternatives, in the order of Python's type names: None, bool, int,
  // float, str, bytes, list, dict.
  enum class Type : std::uint8_t { kNone, kBool, kInt, kFloat, kString, kBytes, kList, kDict };

  using List = std::vector<Value>;

  Value() noexcept = default;
  Value(std::nullptr_t) noexcept {}
  Value(bool b) noexcept : v_(b) {}
  template <std::integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char> && !std::same_as<T, char8_t> &&
           !std::same_as<T, char16_t> && !std::same_as<T, char32_t> && !std::same_as<T, wchar_t>)
      Value(T i)
      : v_(checked_int(i)) {}
  Value(double d) noexcept : v_(d) {}
  Value(std::string s) noexcept : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(Bytes b) noexcept : v_(std::move(b)) {}
  Value(List l) noexcept : v_(std::move(l)) {}
  Value(Dict d) noexcept : v_(std::move(d)) {}

  // Value::bytes()
  //
  // A bytes Value holding the octets of `octets` (any bytes, NULs included).
  static Value bytes(std::string_view octets);

  // Value::list()
  //
  // A list Value of `items`, in order.
  static Value list(std::initializer_list<Value> items) { return Value(List(items)); }

  // Value::dict()
  //
  // A dict Value of `items`, in order (a repeated key keeps its first place
  // and its last value, as in Python).
  static Value dict(std::initializer_list<Dict::Item> items) { return Value(Dict(items)); }

  Type type() const noexcept { return static_cast<Type>(v_.index()); }

  // Value::type_name()
  //
  // Python's name of the type: "NoneType", "bool", "int", "float", "str",
  // "bytes", "list" or "dict".
  const char* type_name() const noexcept;

  bool is_none() const noexcept { return type() == Type::kNone; }
  bool is_bool() const noexcept { return type() == Type::kBool; }
  bool is_int() const noexcept { return type() == Type::kInt; }
  bool is_float() const noexcept { return type() == Type::kFloat; }
  bool is_string() const noexcept { return type() == Type::kString; }
  bool is_bytes() const noexcept { return type() == Type::kBytes; }
  bool is_list() const noexcept { return type() == Type::kList; }
  bool is_dict() const noexcept { return type() == Type::kDict; }

  // Value::as_*()
  //
  // The held alternative; throws mp::TypeError if the Value holds another.
  bool as_bool() const { return get<bool>(Type::kBool); }
  std::int64_t as_int() const { return get<std::int64_t>(Type::kInt); }
  double as_float() const { return get<double>(Type::kFloat); }
  const std::string& as_string() const { return get<std::string>(Type::kString); }
  std::string& as_string() { return get<std::string>(Type::kString); }
  const Bytes& as_bytes() const { return get<Bytes>(Type::kBytes); }
  Bytes& as_bytes() { return get<Bytes>(Type::kBytes); }
  const List& as_list() const { return get<List>(Type::kList); }
  List& as_list() { return get<List>(Type::kList); }
  const Dict& as_dict() const { return get<Dict>(Type::kDict); }
  Dict& as_dict() { return get<Dict>(Type::kDict); }

  // Value::get_if()
  //
  // A pointer to the held alternative if it is `T` (one of bool,
  // std::int64_t, double, std::string, Bytes, List, Dict), else nullptr.
  template <class T>
  const T* get_if() const noexcept {
    return std::get_if<T>(&v_);
  }
  template <class T>
  T* get_if() noexcept {
    return std::get_if<T>(&v_);
  }

  // Value::repr()
  //
  // The value in Python syntax, as Python's repr() writes it: `None`, `True`,
  // `-3`, `2.5`, `1e+16`, `inf`, `'it\'s'`, `b'\x00'`, `[1, 2]`,
  // `{'a': 1}`. Floats use the shortest form that reads back exactly. In
  // strings, ASCII controls, C1 controls and a few invisible characters
  // (NBSP, soft hyphen, zero-width and bidi marks, line/paragraph separators,
  // BOM, private use) are escaped; other characters are written as they are
  // (Python also escapes the remaining non-printable code points, e.g.
  // unassigned ones). Invalid UTF-8 in a string is shown byte by byte as
  // `\x..`-escapes (Python strings cannot hold it).
  std::string repr() const;

  friend bool operator==(const Value& a, const Value& b);

 private:
  template <class T>
  static std::int64_t checked_int(T i) {
    if constexpr (std::unsigned_integral<T> && sizeof(T) >= sizeof(std::int64_t)) {
      if (i > static_cast<T>(std::numeric_limits<std::int64_t>::max())) throw_int_overflow();
    }
    return static_cast<std::int64_t>(i);
  }
  [[noreturn]] static void throw_int_overflow();
  [[noreturn]] void throw_type(Type wanted) const;

  template <class T>
  const T& get(Type wanted) const {
    if (const T* p = std::get_if<T>(&v_)) return *p;
    throw_type(wanted);
  }
  template <class T>
  T& get(Type wanted) {
    if (T* p = std::get_if<T>(&v_)) return *p;
    throw_type(wanted);
  }

  // The alternatives' order matches Type.
  std::variant<std::monostate, bool, std::int64_t, double, std::string, Bytes, List, Dict> v_;
};

// Dict's inline members need Value to be complete.
inline std::size_t Dict::size() const noexcept { return items_.size(); }
inline bool Dict::empty() const noexcept { return items_.empty(); }
inline Dict::const_iterator Dict::begin() const noexcept { return items_.begin(); }
inline Dict::const_iterator Dict::end() const noexcept { return items_.end(); }
inline bool Dict::contains(std::string_view key) const noexcept { return find(key) != nullptr; }
inline void Dict::clear() noexcept { items_.clear(); }
inline void Dict::reserve(std::size_t n) { items_.reserve(n); }

// Writes v.repr() (lets GoogleTest and logs print Values).
std::ostream& operator<<(std::ostream& os, const Value& v);

}  // namespace mp

#endif  // MP_VALUE_HPP_
