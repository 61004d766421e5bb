// Comparing protocol values in tests: the value domain's equality (spec/README.md §6), which
// nlohmann's operator== does not give (it calls 1, 1.0 and true equal).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "bytes_json.hpp"
#include "scenario.hpp"

namespace mpspec {

// Structural, type-sensitive equality of the value domain: 1, 1.0 and true differ; bytes
// compare by their octets; -0.0 and 0.0 differ by their sign.
inline bool same_value(const Json& a, const Json& b) {
  if (is_bytes_json(a) || is_bytes_json(b)) {
    auto x = json_bytes(a), y = json_bytes(b);
    return x && y && *x == *y;
  }
  if (a.is_null() || b.is_null()) return a.is_null() && b.is_null();
  if (a.is_boolean() || b.is_boolean())
    return a.is_boolean() && b.is_boolean() && a.get<bool>() == b.get<bool>();
  if (a.is_number_integer() || b.is_number_integer())
    return a.is_number_integer() && b.is_number_integer() && a == b;
  if (a.is_number_float() || b.is_number_float())
    return a.is_number_float() && b.is_number_float() && a.get<double>() == b.get<double>() &&
           std::signbit(a.get<double>()) == std::signbit(b.get<double>());
  if (a.is_string() || b.is_string()) return a.is_string() && b.is_string() && a == b;
  if (a.is_array() || b.is_array()) {
    if (!a.is_array() || !b.is_array() || a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!same_value(a[i], b[i])) return false;
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (const auto& [k, v] : a.items())
      if (!b.contains(k) || !same_value(v, b[k])) return false;
    return true;
  }
  return false;
}

// A value's JSON text, cut to 200 characters for failure messages.
inline std::string shorten(const Json& v) {
  std::string s = v.dump();
  return s.size() > 200 ? s.substr(0, 200) + "...(" + std::to_string(s.size()) + " chars)" : s;
}

// The call returned `want` (by same_value).
inline ::testing::AssertionResult has_value(const CallResult& r, const Json& want) {
  if (!r.ok())
    return ::testing::AssertionFailure() << "expected " << shorten(want) << ", got " << r;
  if (!same_value(r.value, want))
    return ::testing::AssertionFailure()
           << "expected " << shorten(want) << ", got " << shorten(r.value);
  return ::testing::AssertionSuccess();
}

}  // namespace mpspec
