// mp::Value and mp::Dict: lookups, equality and the Python-syntax repr().
#include "mp/value.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unordered_map>

#include "mp/errors.hpp"
#include "utf8.hpp"

namespace mp {

namespace {

// Below this many items, Dict() dedupes keys by linear scans instead of a
// hash map.
constexpr std::size_t kLinearDedupLimit = 16;

constexpr const char* kTypeNames[] = {"NoneType", "bool",  "int",  "float",
                                      "str",      "bytes", "list", "dict"};

// Merges repeated keys Python style: the first position, the last value.
std::vector<Dict::Item> dedupe(std::vector<Dict::Item> items) {
  const std::size_t n = items.size();
  std::vector<Dict::Item> out;
  out.reserve(n);
  if (n <= kLinearDedupLimit) {
    for (auto& item : items) {
      bool found = false;
      for (auto& existing : out) {
        if (existing.first == item.first) {
          existing.second = std::move(item.second);
          found = true;
          break;
        }
      }
      if (!found) out.push_back(std::move(item));
    }
    return out;
  }
  // Keys are moved into `out` only after the index no longer looks at the
  // source; the index points into `out`, whose storage is reserved up front
  // and therefore never moves.
  std::unordered_map<std::string_view, std::size_t> index;
  index.reserve(n);
  for (auto& item : items) {
    auto it = index.find(item.first);
    if (it != index.end()) {
      out[it->second].second = std::move(item.second);
    } else {
      out.push_back(std::move(item));
      index.emplace(out.back().first, out.size() - 1);
    }
  }
  return out;
}

void append_hex2(std::string& out, unsigned v) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += kHex[(v >> 4) & 0xf];
  out += kHex[v & 0xf];
}

// Characters that repr() escapes although they are not ASCII controls: an
// approximation of "not str.isprintable()" (Python's table is the full
// Unicode database).
bool is_unprintable(char32_t c) {
  if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad) return true;
  if (c == 0x1680 || c == 0x061c || c == 0x180e) return true;
  if ((c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f)) return true;
  if ((c >= 0x205f && c <= 0x206f) || c == 0x3000 || c == 0xfeff) return true;
  if (c >= 0xd800 && c <= 0xf8ff) return true;  // surrogates, private use
  if (c >= 0xfff9 && c <= 0xfffb) return true;
  if ((c & 0xfffe) == 0xfffe) return true;  // noncharacters U+xFFFE, U+xFFFF
  if (c >= 0xe0000) return true;            // tags, private use planes
  return false;
}

char choose_quote(bool has_single, bool has_double) {
  return (has_single && !has_double) ? '"' : '\'';
}

void repr_string(std::string& out, std::string_view s) {
  const char quote =
      choose_quote(s.find('\'') != std::string_view::npos, s.find('"') != std::string_view::npos);
  out += quote;
  for (std::size_t i = 0; i < s.size();) {
    char32_t c;
    const std::size_t len = detail::decode_utf8(s, i, c);
    if (len == 0) {  // not UTF-8: show the byte
      out += "\\x";
      append_hex2(out, static_cast<unsigned char>(s[i]));
      ++i;
      continue;
    }
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (is_unprintable(c)) {
      if (c <= 0xff) {
        out += "\\x";
        append_hex2(out, static_cast<unsigned>(c));
      } else if (c <= 0xffff) {
        out += "\\u";
        append_hex2(out, static_cast<unsigned>(c >> 8));
        append_hex2(out, static_cast<unsigned>(c));
      } else {
        out += "\\U";
        for (int shift = 24; shift >= 0; shift -= 8) {
          append_hex2(out, static_cast<unsigned>(c >> shift));
        }
      }
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  out += quote;
}

void repr_bytes(std::string& out, const Bytes& b) {
  bool has_single = false, has_double = false;
  for (std::byte x : b) {
    has_single |= x == std::byte{'\''};
    has_double |= x == std::byte{'"'};
  }
  const char quote = choose_quote(has_single, has_double);
  out += 'b';
  out += quote;
  for (std::byte x : b) {
    const auto c = static_cast<unsigned char>(x);
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      append_hex2(out, c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
}

// Python's float repr: the shortest digits that round-trip, in fixed notation
// when the decimal exponent is in [-4, 16), else in exponent notation with a
// sign and at least two exponent digits.
void repr_float(std::string& out, double d) {
  if (std::isnan(d)) {
    out += "nan";
    return;
  }
  if (std::isinf(d)) {
    out += d < 0 ? "-inf" : "inf";
    return;
  }
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));  // e.g. "-1.25e+02"
  if (!sci.empty() && sci[0] == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  const std::size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits += c;
  }
  int exp = 0;
  std::string_view exp_text = sci.substr(e_pos + 1);
  if (!exp_text.empty() && exp_text[0] == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);

  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const auto int_len = static_cast<std::size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out += digits;
        out.append(int_len - digits.size(), '0');
        out += ".0";
      } else {
        out += digits.substr(0, int_len);
        out += '.';
        out += digits.substr(int_len);
      }
    } else {
      out += "0.";
      out.append(static_cast<std::size_t>(-exp - 1), '0');
      out += digits;
    }
    return;
  }
  out += digits[0];
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  out += 'e';
  out += exp < 0 ? '-' : '+';
  const int mag = exp < 0 ? -exp : exp;
  if (mag < 10) out += '0';
  out += std::to_string(mag);
}

void repr_value(std::string& out, const Value& v) {
  switch (v.type()) {
    case Value::Type::kNone:
      out += "None";
      return;
    case Value::Type::kBool:
      out += v.as_bool() ? "True" : "False";
      return;
    case Value::Type::kInt:
      out += std::to_string(v.as_int());
      return;
    case Value::Type::kFloat:
      repr_float(out, v.as_float());
      return;
    case Value::Type::kString:
      repr_string(out, v.as_string());
      return;
    case Value::Type::kBytes:
      repr_bytes(out, v.as_bytes());
      return;
    case Value::Type::kList: {
      out += '[';
      bool first = true;
      for (const Value& item : v.as_list()) {
        if (!first) out += ", ";
        first = false;
        repr_value(out, item);
      }
      out += ']';
      return;
    }
    case Value::Type::kDict: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : v.as_dict()) {
        if (!first) out += ", ";
        first = false;
        repr_string(out, key);
        out += ": ";
        repr_value(out, item);
      }
      out += '}';
      return;
    }
  }
}

}  // namespace

// ---- Dict ----

Dict::Dict(std::initializer_list<Item> items) : items_(dedupe(std::vector<Item>(items))) {}

Dict::Dict(std::vector<Item> items) : items_(dedupe(std::move(items))) {}

const Value* Dict::find(std::string_view key) const noexcept {
  for (const auto& item : items_) {
    if (item.first == key) return &item.second;
  }
  return nullptr;
}

Value* Dict::find(std::string_view key) noexcept {
  for (auto& item : items_) {
    if (item.first == key) return &item.second;
  }
  return nullptr;
}

const Value& Dict::at(std::string_view key) const {
  if (const Value* v = find(key)) return *v;
  throw std::out_of_range("mp::Dict::at: no key " + Value(key).repr());
}

Value& Dict::at(std::string_view key) {
  if (Value* v = find(key)) return *v;
  throw std::out_of_range("mp::Dict::at: no key " + Value(key).repr());
}

Value& Dict::operator[](std::string_view key) {
  if (Value* v = find(key)) return *v;
  items_.emplace_back(std::string(key), Value());
  return items_.back().second;
}

bool Dict::insert_or_assign(std::string key, Value value) {
  if (Value* v = find(key)) {
    *v = std::move(value);
    return false;
  }
  items_.emplace_back(std::move(key), std::move(value));
  return true;
}

bool Dict::erase(std::string_view key) {
  for (auto it = items_.begin(); it != items_.end(); ++it) {
    if (it->first == key) {
      items_.erase(it);
      return true;
    }
  }
  return false;
}

bool operator==(const Dict& a, const Dict& b) {
  if (a.items_.size() != b.items_.size()) return false;
  // Fast path: the same keys in the same order (the usual case).
  std::size_t i = 0;
  for (; i < a.items_.size(); ++i) {
    if (a.items_[i].first != b.items_[i].first) break;
    if (!(a.items_[i].second == b.items_[i].second)) return false;
  }
  if (i == a.items_.size()) return true;
  // Different order: look each remaining key up (keys are unique, sizes are
  // equal, so a one-way check suffices).
  for (std::size_t j = i; j < a.items_.size(); ++j) {
    const Value* other = b.find(a.items_[j].first);
    if (other == nullptr || !(*other == a.items_[j].second)) return false;
  }
  return true;
}

// ---- Value ----

Value Value::bytes(std::string_view octets) {
  Bytes b(octets.size());
  for (std::size_t i = 0; i < octets.size(); ++i) b[i] = static_cast<std::byte>(octets[i]);
  return Value(std::move(b));
}

const char* Value::type_name() const noexcept { return kTypeNames[v_.index()]; }

void Value::throw_int_overflow() {
  throw OverflowError("integer out of the int64 range of mp::Value");
}

void Value::throw_type(Type wanted) const {
  throw TypeError(std::string("mp::Value holds ") + type_name() + ", not " +
                  kTypeNames[static_cast<std::size_t>(wanted)]);
}

std::string Value::repr() const {
  std::string out;
  repr_value(out, *this);
  return out;
}

bool operator==(const Value& a, const Value& b) { return a.v_ == b.v_; }

std::ostream& operator<<(std::ostream& os, const Value& v) { return os << v.repr(); }

}  // namespace mp
