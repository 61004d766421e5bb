// Scenario tests for spec/sharedctypes/sharedctypes.md: Value, RawValue, Array, RawArray,
// Synchronized (synchronized(obj, lock)) and copy (RawValue / RawArray with `copy_of`).
//
// Every object is made in the driver (the parent) and inherited by the actors, so a write by
// one actor read by another shows that the memory is shared. Errors of construction can only
// be seen as a failed `setup` (SetupError).
//
// Timing policy (spec/README.md §7): "an access waits" is a handshake (the holder's acquire has
// returned, another actor's non-blocking acquire has failed) plus a `small` grace period;
// "completes after the release" is an await with the liveness bound; timed acquires assert
// only the lower bound. Atomicity and lost-update clauses are checked by counting, with many
// read-modify-writes made inside the backend (`add`), never by timing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "bytes_json.hpp"
#include "scenario.hpp"
#include "value_match.hpp"

namespace mpspec {
namespace {

using timing::kClockResolution;
using timing::small;

// ---------------------------------------------------------------------------------------------
// Values and helpers

Json B(std::string_view octets) { return bytes_json(octets); }

::testing::AssertionResult gives(const CallResult& r, const Json& expected) {
  if (r.ok() && same_value(r.value, expected)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected " << expected.dump() << ", got " << r;
}

::testing::AssertionResult raised_any(const CallResult& r) {
  if (r.status == OpStatus::kError) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected an error, got " << r;
}

// "" when the setup started; "UNSUPPORTED: ..." when the backend lacks a type, method or
// feature; otherwise the setup's error (a SetupError reply names its kind).
std::string setup_outcome(Scenario& s) {
  try {
    const std::string why = s.start();
    return why.empty() ? "" : "UNSUPPORTED: " + why;
  } catch (const std::exception& e) {
    return e.what();
  }
}

bool unsupported(const std::string& outcome) { return outcome.rfind("UNSUPPORTED", 0) == 0; }

// Starts `s`, whose setup must fail: false when the backend lacks what it needs (nothing was
// tried); otherwise expects the failure to be a SetupError and returns true.
bool setup_fails(Scenario& s, const std::string& what = "") {
  const std::string outcome = setup_outcome(s);
  if (unsupported(outcome)) return false;
  EXPECT_NE(outcome.find("SetupError"), std::string::npos) << what << outcome;
  return true;
}

Json value_args(const std::string& code) { return Json{{"typecode", code}}; }
Json value_args(const std::string& code, Json v) {
  return Json{{"typecode", code}, {"value", std::move(v)}};
}
Json array_args(const std::string& code, Json size_or_init) {
  return Json{{"typecode", code}, {"size_or_initializer", std::move(size_or_init)}};
}
Json with_lock(Json args, Json lock) {
  args["lock"] = std::move(lock);
  return args;
}
Json ref(const std::string& name) { return Json{{"$ref", name}}; }
Json set(Json v) { return Json{{"value", std::move(v)}}; }
Json at(std::int64_t i) { return Json{{"index", i}}; }
Json at(std::int64_t i, Json v) { return Json{{"index", i}, {"value", std::move(v)}}; }
Json slice(Json start, Json stop, Json step = nullptr) {
  return Json{{"start", std::move(start)}, {"stop", std::move(stop)}, {"step", std::move(step)}};
}
Json slice_set(Json start, Json stop, Json step, Json values) {
  Json j = slice(std::move(start), std::move(stop), std::move(step));
  j["values"] = std::move(values);
  return j;
}
Json through_obj(Json args = Json::object()) {
  args["obj"] = true;
  return args;
}
const Json kTry{{"block", false}};

// A scalar place to read and write: `value` of a Value / RawValue, or element 0 of an array.
struct Place {
  std::string object;
  bool element;
};

CallId write(Scenario& s, const std::string& actor, const Place& p, Json v) {
  return p.element ? s.call(actor, p.object, "setitem", at(0, std::move(v)))
                   : s.call(actor, p.object, "set_value", set(std::move(v)));
}
CallId read(Scenario& s, const std::string& actor, const Place& p) {
  return p.element ? s.call(actor, p.object, "getitem", at(0)) : s.call(actor, p.object, "value");
}

// The four constructors, each making one scalar place of `code` named prefix + code.
struct Maker {
  const char* type;
  const char* prefix;
  bool element;
};
constexpr Maker kMakers[] = {
    {"Value", "V", false}, {"RawValue", "R", false}, {"Array", "A", true}, {"RawArray", "W", true}};

void make_place(Scenario& s, const Maker& m, const std::string& code) {
  const std::string name = std::string(m.prefix) + "_" + code;
  if (m.element)
    s.object(name, m.type, array_args(code, 2));
  else
    s.object(name, m.type, value_args(code));
}

// The integer codes on Linux x86-64 (spec §1): bits, signedness. Values beyond int64 are outside
// the protocol's domain, so 64-bit codes are probed within it.
struct IntCode {
  const char* code;
  int bits;
  bool is_signed;
};
constexpr IntCode kIntCodes[] = {
    {"b", 8, true},   {"B", 8, false}, {"h", 16, true},  {"H", 16, false}, {"i", 32, true},
    {"I", 32, false}, {"l", 64, true}, {"L", 64, false}, {"q", 64, true},  {"Q", 64, false}};

std::int64_t max_of(const IntCode& c) {
  if (c.bits == 64) return std::numeric_limits<std::int64_t>::max();
  return c.is_signed ? (std::int64_t{1} << (c.bits - 1)) - 1 : (std::int64_t{1} << c.bits) - 1;
}
std::int64_t min_of(const IntCode& c) {
  if (!c.is_signed) return 0;
  if (c.bits == 64) return std::numeric_limits<std::int64_t>::min();
  return -(std::int64_t{1} << (c.bits - 1));
}

bool one_char_string(const Json& v) {
  if (!v.is_string()) return false;
  const std::string s = v.get<std::string>();
  if (s.empty()) return false;
  const auto lead = static_cast<unsigned char>(s[0]);
  const std::size_t len = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
  return s.size() == len;
}

// ---------------------------------------------------------------------------------------------
// §1 Type codes

// Every code is accepted by the four constructors, reads as its kind, and has its size: the
// extreme values of an integer code read back, and one beyond its maximum never reads back as
// itself (a wider type would keep it); 'f' is single precision, 'd' double; 'u' holds a
// character outside the Basic Multilingual Plane (a 32-bit wchar_t).
TEST(Sharedctypes, EveryTypeCodeHasItsKindAndSize) {
  MPSPEC_CLAUSES("[sharedctypes.typecode.table]");
  const std::vector<std::string> codes = {"b", "B", "h", "H", "i", "I", "l",
                                          "L", "q", "Q", "f", "d", "c", "u"};
  Scenario s;
  for (const auto& m : kMakers)
    for (const auto& code : codes) make_place(s, m, code);
  s.actor("a");
  MPSPEC_START(s);
  for (const auto& m : kMakers) {
    for (const auto& code : codes) {
      const Place p{std::string(m.prefix) + "_" + code, m.element};
      SCOPED_TRACE(std::string(m.type) + "('" + code + "')");
      const auto& zero = s.await(read(s, "a", p));
      ASSERT_TRUE(zero.ok()) << zero;
      if (code == "f" || code == "d") {
        EXPECT_TRUE(zero.value.is_number_float()) << zero;
        ASSERT_TRUE(s.await(write(s, "a", p, 0.1)).ok());
        const double expected = code == "f" ? static_cast<double>(0.1f) : 0.1;
        EXPECT_TRUE(gives(s.await(read(s, "a", p)), expected));
      } else if (code == "c") {
        const auto octets = json_bytes(zero.value);
        EXPECT_TRUE(octets && octets->size() == 1) << "a 'c' value is bytes of length 1: " << zero;
      } else if (code == "u") {
        EXPECT_TRUE(one_char_string(zero.value)) << "a 'u' value is one character: " << zero;
        ASSERT_TRUE(s.await(write(s, "a", p, "\U0001F600")).ok());
        EXPECT_TRUE(gives(s.await(read(s, "a", p)), "\U0001F600")) << "wchar_t is 32 bits";
      } else {
        EXPECT_TRUE(zero.value.is_number_integer() && !zero.value.is_boolean()) << zero;
        const IntCode* c = nullptr;
        for (const auto& k : kIntCodes)
          if (code == k.code) c = &k;
        ASSERT_NE(c, nullptr);
        for (const std::int64_t v : {max_of(*c), min_of(*c)}) {
          ASSERT_TRUE(s.await(write(s, "a", p, v)).ok());
          EXPECT_TRUE(gives(s.await(read(s, "a", p)), v)) << "a " << c->bits << "-bit code";
        }
        if (c->bits < 64) {
          const std::int64_t beyond = max_of(*c) + 1;
          s.await(write(s, "a", p, beyond));
          const auto& r = s.await(read(s, "a", p));
          EXPECT_FALSE(r.ok() && same_value(r.value, beyond))
              << c->bits << "-bit code '" << code << "' kept " << beyond << ": " << r;
        }
      }
    }
  }
}

// An unknown code fails the construction of each of the four types.
TEST(Sharedctypes, UnknownTypeCodeFailsTheSetup) {
  MPSPEC_CLAUSES("[sharedctypes.typecode.unknown]");
  int tried = 0;
  for (const char* type : {"Value", "RawValue", "Array", "RawArray"}) {
    for (const char* code : {"z", "g", "?", "w", "", "ii"}) {
      SCOPED_TRACE(std::string(type) + "('" + code + "')");
      Scenario s;
      const bool array = std::string(type).find("Array") != std::string::npos;
      s.object("X", type, array ? array_args(code, 2) : value_args(code));
      if (setup_fails(s, "an unknown type code must fail the construction: ")) ++tried;
    }
  }
  if (tried == 0) GTEST_SKIP() << "UNSUPPORTED: the backend offers none of the four types";
}

TEST(Sharedctypes, FloatCodesStoreDoublesExactlyAndSinglesRounded) {
  MPSPEC_CLAUSES("[sharedctypes.typecode.float]");
  Scenario s;
  s.object("D", "Value", value_args("d")).object("F", "Value", value_args("f"));
  s.object("AD", "RawArray", array_args("d", 1)).object("AF", "RawArray", array_args("f", 1));
  s.actor("a").actor("b");
  MPSPEC_START(s);
  for (const Place& p : {Place{"D", false}, Place{"AD", true}}) {
    for (const double v : {0.1, 1e300, -2.5e-300, 123456789.123456789, 5e-324}) {
      ASSERT_TRUE(s.await(write(s, "a", p, v)).ok());
      EXPECT_TRUE(gives(s.await(read(s, "b", p)), v)) << p.object << " stores a double exactly";
    }
  }
  for (const Place& p : {Place{"F", false}, Place{"AF", true}}) {
    ASSERT_TRUE(s.await(write(s, "a", p, 0.1)).ok());
    EXPECT_TRUE(gives(s.await(read(s, "b", p)), 0.10000000149011612))
        << p.object << ": 0.1 rounds to the nearest single";
    for (const double v : {0.5, -2.25}) {
      ASSERT_TRUE(s.await(write(s, "a", p, v)).ok());
      EXPECT_TRUE(gives(s.await(read(s, "b", p)), v)) << p.object << ": exact in single precision";
    }
  }
}

TEST(Sharedctypes, FloatCodesTakeIntegers) {
  MPSPEC_CLAUSES("[sharedctypes.typecode.int_to_float]");
  Scenario s;
  s.object("D", "Value", value_args("d", 1)).object("F", "RawValue", value_args("f", -3));
  s.object("A", "Array", array_args("d", Json::array({1, 2})));
  s.actor("a");
  MPSPEC_START(s);
  EXPECT_TRUE(gives(s.await(s.call("a", "D", "value")), 1.0)) << "Value('d', 1) reads 1.0";
  EXPECT_TRUE(gives(s.await(s.call("a", "F", "value")), -3.0));
  EXPECT_TRUE(gives(s.await(s.call("a", "A", "getslice", slice(nullptr, nullptr))),
                    Json::array({1.0, 2.0})));
  ASSERT_TRUE(s.await(s.call("a", "D", "set_value", set(7))).ok());
  EXPECT_TRUE(gives(s.await(s.call("a", "D", "value")), 7.0));
  ASSERT_TRUE(s.await(s.call("a", "A", "setitem", at(1, 5))).ok());
  EXPECT_TRUE(gives(s.await(s.call("a", "A", "getitem", at(1))), 5.0));
}

// In range: read back unchanged. Out of range: wrapped modulo 2^bits, or refused with
// OverflowError / ValueError leaving the old value; nothing else.
TEST(Sharedctypes, IntegerRangeWrapsOrRefuses) {
  MPSPEC_CLAUSES("[sharedctypes.typecode.range]");
  Scenario s;
  for (const auto& c : kIntCodes) {
    s.object(std::string("V_") + c.code, "Value", value_args(c.code));
    s.object(std::string("W_") + c.code, "RawArray", array_args(c.code, 1));
  }
  s.actor("a");
  MPSPEC_START(s);
  for (const auto& c : kIntCodes) {
    for (const Place& p :
         {Place{std::string("V_") + c.code, false}, Place{std::string("W_") + c.code, true}}) {
      SCOPED_TRACE(p.object);
      const std::int64_t lo = min_of(c), hi = max_of(c);
      for (const std::int64_t v : {lo, hi, std::int64_t{0}, std::int64_t{1}, hi / 3}) {
        ASSERT_TRUE(s.await(write(s, "a", p, v)).ok());
        EXPECT_TRUE(gives(s.await(read(s, "a", p)), v)) << "in range";
      }
      if (c.bits == 64 && c.is_signed) continue;  // nothing beyond it fits the protocol
      struct Probe {
        std::int64_t written, wrapped;
      };
      std::vector<Probe> probes;
      if (c.bits < 64) {
        const std::int64_t modulus = std::int64_t{1} << c.bits;
        probes.push_back({hi + 1, hi + 1 - modulus});
        probes.push_back({lo - 1, lo - 1 + modulus});
        probes.push_back({hi + 1 + 41, hi + 1 + 41 - modulus});
      } else {
        probes.push_back({-1, 0});  // unsigned 64-bit: wraps to 2^64 - 1, outside the domain
      }
      for (const auto& probe : probes) {
        const std::int64_t before = 5;
        ASSERT_TRUE(s.await(write(s, "a", p, before)).ok());
        const CallResult w = s.await(write(s, "a", p, probe.written));
        const CallResult r = s.await(read(s, "a", p));
        if (w.ok()) {
          if (c.bits < 64)
            EXPECT_TRUE(gives(r, probe.wrapped)) << probe.written << " stored modulo 2^" << c.bits;
          else  // 2^64 - 1 cannot be carried: the read reports kind Other, never another int
            EXPECT_FALSE(r.ok()) << "-1 in an unsigned 64-bit code must read as 2^64 - 1: " << r;
        } else {
          EXPECT_TRUE(w.raised("OverflowError") || w.raised("ValueError")) << w;
          EXPECT_TRUE(gives(r, before)) << "a refused write changes nothing";
        }
      }
    }
  }
}

TEST(Sharedctypes, CharCodeHoldsOneByte) {
  MPSPEC_CLAUSES("[sharedctypes.typecode.char]");
  Scenario s;
  s.object("C", "Value", value_args("c")).object("W", "RawArray", array_args("c", 2));
  s.actor("a").actor("b");
  MPSPEC_START(s);
  for (const Place& p : {Place{"C", false}, Place{"W", true}}) {
    SCOPED_TRACE(p.object);
    ASSERT_TRUE(s.await(write(s, "a", p, B("A"))).ok());
    EXPECT_TRUE(gives(s.await(read(s, "b", p)), B("A")));
    ASSERT_TRUE(s.await(write(s, "a", p, 66)).ok()) << "an int 0..255 is a byte";
    EXPECT_TRUE(gives(s.await(read(s, "b", p)), B("B")));
    ASSERT_TRUE(s.await(write(s, "a", p, 255)).ok());
    EXPECT_TRUE(gives(s.await(read(s, "b", p)), B("\xff")));
    ASSERT_TRUE(s.await(write(s, "a", p, B("z"))).ok());
    for (const Json& bad : {Json("a"), B("ab"), B("")}) {
      EXPECT_TRUE(s.await(write(s, "a", p, bad)).raised("TypeError")) << bad.dump();
      EXPECT_TRUE(gives(s.await(read(s, "b", p)), B("z"))) << "unchanged after " << bad.dump();
    }
  }
}

TEST(Sharedctypes, WcharCodeHoldsOneCharacter) {
  MPSPEC_CLAUSES("[sharedctypes.typecode.wchar]");
  Scenario s;
  s.object("U", "Value", value_args("u")).object("W", "RawArray", array_args("u", 2));
  s.actor("a").actor("b");
  MPSPEC_START(s);
  for (const Place& p : {Place{"U", false}, Place{"W", true}}) {
    SCOPED_TRACE(p.object);
    for (const char* ch : {"x", "\u00e9", "\u4e2d"}) {
      ASSERT_TRUE(s.await(write(s, "a", p, ch)).ok());
      EXPECT_TRUE(gives(s.await(read(s, "b", p)), ch));
    }
    EXPECT_TRUE(s.await(write(s, "a", p, "ab")).raised("TypeError"));
    EXPECT_TRUE(gives(s.await(read(s, "b", p)), "\u4e2d")) << "unchanged";
  }
}

TEST(Sharedctypes, WrongTypeRaisesTypeErrorAndChangesNothing) {
  MPSPEC_CLAUSES("[sharedctypes.typecode.wrong_type]");
  Scenario s;
  s.object("I", "Value", value_args("i", 7)).object("Q", "RawValue", value_args("q", 7));
  s.object("D", "Value", value_args("d", 1.5)).object("F", "RawValue", value_args("f", 1.5));
  s.object("A", "Array", array_args("i", Json::array({7, 7})));
  s.actor("a");
  MPSPEC_START(s);
  for (const Place& p : {Place{"I", false}, Place{"Q", false}, Place{"A", true}}) {
    for (const Json& bad : {Json(2.5), Json("x"), B("7")}) {
      EXPECT_TRUE(s.await(write(s, "a", p, bad)).raised("TypeError"))
          << p.object << " <- " << bad.dump();
      EXPECT_TRUE(gives(s.await(read(s, "a", p)), 7)) << p.object << " unchanged";
    }
  }
  for (const Place& p : {Place{"D", false}, Place{"F", false}}) {
    for (const Json& bad : {Json("x"), B("1")}) {
      EXPECT_TRUE(s.await(write(s, "a", p, bad)).raised("TypeError"))
          << p.object << " <- " << bad.dump();
      EXPECT_TRUE(gives(s.await(read(s, "a", p)), 1.5)) << p.object << " unchanged";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// §2 Construction

TEST(Sharedctypes, WithoutInitialValueHoldsZero) {
  MPSPEC_CLAUSES("[sharedctypes.construct.zero]");
  const std::vector<std::pair<std::string, Json>> zeros = {{"b", 0},
                                                           {"B", 0},
                                                           {"h", 0},
                                                           {"H", 0},
                                                           {"i", 0},
                                                           {"I", 0},
                                                           {"l", 0},
                                                           {"L", 0},
                                                           {"q", 0},
                                                           {"Q", 0},
                                                           {"f", 0.0},
                                                           {"d", 0.0},
                                                           {"c", B(std::string_view("\0", 1))},
                                                           {"u", std::string("\0", 1)}};
  Scenario s;
  for (const auto& [code, zero] : zeros) {
    s.object("V_" + code, "Value", value_args(code));
    s.object("R_" + code, "RawValue", value_args(code));
  }
  s.actor("a");
  MPSPEC_START(s);
  for (const auto& [code, zero] : zeros)
    for (const char* prefix : {"V_", "R_"})
      EXPECT_TRUE(gives(s.await(s.call("a", prefix + code, "value")), zero)) << prefix << code;
}

TEST(Sharedctypes, InitialValueIsHeld) {
  MPSPEC_CLAUSES("[sharedctypes.construct.initial]");
  const std::vector<std::tuple<std::string, Json, Json>> cases = {{"b", -7, -7},
                                                                  {"H", 65535, 65535},
                                                                  {"i", -123456, -123456},
                                                                  {"q", 1LL << 62, 1LL << 62},
                                                                  {"d", 2.75, 2.75},
                                                                  {"f", 0.1, 0.10000000149011612},
                                                                  {"d", 3, 3.0},
                                                                  {"c", B("x"), B("x")},
                                                                  {"u", "\u00e9", "\u00e9"}};
  Scenario s;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& [code, init, _] = cases[i];
    s.object("V" + std::to_string(i), "Value", value_args(code, init));
    s.object("R" + std::to_string(i), "RawValue", value_args(code, init));
  }
  s.actor("a");
  MPSPEC_START(s);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& [code, init, held] = cases[i];
    for (const char* prefix : {"V", "R"})
      EXPECT_TRUE(gives(s.await(s.call("a", prefix + std::to_string(i), "value")), held))
          << prefix << "('" << code << "', " << init.dump() << ")";
  }
}

TEST(Sharedctypes, RefusedInitialValueFailsTheSetup) {
  MPSPEC_CLAUSES("[sharedctypes.construct.initial.bad]");
  int tried = 0;
  for (const char* type : {"Value", "RawValue"}) {
    for (const auto& [code, init] : std::vector<std::pair<std::string, Json>>{
             {"i", 1.5}, {"i", "x"}, {"c", "a"}, {"c", B("ab")}, {"u", "ab"}, {"d", "x"}}) {
      SCOPED_TRACE(std::string(type) + "('" + code + "', " + init.dump() + ")");
      Scenario s;
      s.object("X", type, value_args(code, init));
      if (setup_fails(s)) ++tried;
    }
  }
  if (tried == 0) GTEST_SKIP() << "UNSUPPORTED: the backend offers neither Value nor RawValue";
}

TEST(Sharedctypes, ArrayOfSizeIsZeroed) {
  MPSPEC_CLAUSES("[sharedctypes.array.construct.size]");
  Scenario s;
  s.object("A", "Array", array_args("i", 5)).object("W", "RawArray", array_args("d", 3));
  s.object("E", "Array", array_args("i", 0)).object("EW", "RawArray", array_args("q", 0));
  s.object("C", "RawArray", array_args("c", 4));
  s.actor("a");
  MPSPEC_START(s);
  const Json all = slice(nullptr, nullptr);
  EXPECT_TRUE(gives(s.await(s.call("a", "A", "len")), 5));
  EXPECT_TRUE(gives(s.await(s.call("a", "A", "getslice", all)), Json::array({0, 0, 0, 0, 0})));
  EXPECT_TRUE(gives(s.await(s.call("a", "W", "getslice", all)), Json::array({0.0, 0.0, 0.0})));
  EXPECT_TRUE(gives(s.await(s.call("a", "C", "getslice", all)), B(std::string(4, '\0'))));
  for (const char* empty : {"E", "EW"}) {
    EXPECT_TRUE(gives(s.await(s.call("a", empty, "len")), 0)) << empty;
    EXPECT_TRUE(gives(s.await(s.call("a", empty, "getslice", all)), Json::array())) << empty;
  }
}

TEST(Sharedctypes, NegativeArraySizeFailsTheSetup) {
  MPSPEC_CLAUSES("[sharedctypes.array.construct.negative]");
  int tried = 0;
  for (const char* type : {"Array", "RawArray"}) {
    for (const std::int64_t n : {std::int64_t{-1}, std::int64_t{-100}}) {
      SCOPED_TRACE(std::string(type) + " of " + std::to_string(n));
      Scenario s;
      s.object("X", type, array_args("i", n));
      if (setup_fails(s)) ++tried;
    }
  }
  if (tried == 0) GTEST_SKIP() << "UNSUPPORTED: the backend offers neither Array nor RawArray";
}

TEST(Sharedctypes, ArrayFromInitializer) {
  MPSPEC_CLAUSES("[sharedctypes.array.construct.initializer]");
  {
    Scenario s;
    for (const char* type : {"Array", "RawArray"}) {
      const std::string t(type);
      s.object(t + "_i", type, array_args("i", Json::array({3, -1, 4})));
      s.object(t + "_d", type, array_args("d", Json::array({0.5, 2})));
      s.object(t + "_c", type, array_args("c", B("hello")));
      s.object(t + "_u", type, array_args("u", "h\u00e9llo"));
    }
    s.actor("a");
    MPSPEC_START(s);
    const Json all = slice(nullptr, nullptr);
    for (const std::string t : {"Array", "RawArray"}) {
      SCOPED_TRACE(t);
      EXPECT_TRUE(gives(s.await(s.call("a", t + "_i", "len")), 3));
      EXPECT_TRUE(gives(s.await(s.call("a", t + "_i", "getslice", all)), Json::array({3, -1, 4})));
      EXPECT_TRUE(gives(s.await(s.call("a", t + "_d", "getslice", all)), Json::array({0.5, 2.0})));
      EXPECT_TRUE(gives(s.await(s.call("a", t + "_c", "len")), 5)) << "one element per byte";
      EXPECT_TRUE(gives(s.await(s.call("a", t + "_c", "getitem", at(1))), B("e")));
      EXPECT_TRUE(gives(s.await(s.call("a", t + "_u", "len")), 5)) << "one element per character";
      EXPECT_TRUE(gives(s.await(s.call("a", t + "_u", "getitem", at(1))), "\u00e9"));
      EXPECT_TRUE(gives(s.await(s.call("a", t + "_u", "getslice", all)), "h\u00e9llo"));
    }
  }
  for (const char* type : {"Array", "RawArray"}) {
    for (const auto& [code, init] : std::vector<std::pair<std::string, Json>>{
             {"i", Json::array({1, "x"})}, {"c", "hello"}, {"i", Json::array({1, 2.5})}}) {
      SCOPED_TRACE(std::string(type) + "('" + code + "', " + init.dump() + ")");
      Scenario s;
      s.object("X", type, array_args(code, init));
      setup_fails(s);
    }
  }
}

// lock true (the default) and null: a wrapper with a recursive lock of its own.
TEST(Sharedctypes, DefaultLockIsOwnAndRecursive) {
  MPSPEC_CLAUSES("[sharedctypes.construct.lock.default]");
  Scenario s;
  s.object("V", "Value", value_args("i", 1));
  s.object("N", "Value", with_lock(value_args("i", 1), nullptr));
  s.object("A", "Array", array_args("i", 2));
  s.object("V2", "Value", value_args("i"));
  s.actor("a").actor("b");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  for (const char* w : {"V", "N", "A"}) {
    SCOPED_TRACE(w);
    const bool array = std::string(w) == "A";
    const Place p{w, array};
    ASSERT_TRUE(s.await(s.call("a", w, "acquire")).ok(true));
    EXPECT_TRUE(s.await(s.call("b", w, "acquire", kTry)).ok(false)) << "a holds the lock";
    EXPECT_TRUE(s.await(s.call("b", "V2", "acquire", kTry)).ok(true)) << "another object's lock";
    EXPECT_TRUE(s.await(s.call("b", "V2", "release")).ok(nullptr));
    EXPECT_TRUE(s.await(s.call("a", w, "acquire", kTry)).ok(true)) << "recursive for its holder";
    // The holder reads and writes through the wrapper (a non-recursive lock would wait here).
    EXPECT_TRUE(s.await(write(s, "a", p, 9)).ok());
    EXPECT_TRUE(gives(s.await(read(s, "a", p)), 9));
    EXPECT_TRUE(s.await(s.call("a", w, "release")).ok(nullptr));
    EXPECT_TRUE(s.await(s.call("b", w, "acquire", kTry)).ok(false)) << "one level still held";
    EXPECT_TRUE(s.await(s.call("a", w, "release")).ok(nullptr));
    EXPECT_TRUE(s.await(s.call("b", w, "acquire", kTry)).ok(true)) << "free after both levels";
    EXPECT_TRUE(s.await(s.call("b", w, "release")).ok(nullptr));
  }
}

// lock=False: a raw object (no lock to take); its reads and writes work and never wait.
TEST(Sharedctypes, LockFalseGivesRawObject) {
  MPSPEC_CLAUSES("[sharedctypes.construct.lock.false]");
  Scenario s;
  s.object("V", "Value", with_lock(value_args("i", 3), false));
  s.object("A", "Array", with_lock(array_args("i", 2), false));
  s.actor("a").actor("b");
  MPSPEC_START(s);
  for (const Place& p : {Place{"V", false}, Place{"A", true}}) {
    SCOPED_TRACE(p.object);
    EXPECT_TRUE(raised_any(s.await(s.call("a", p.object, "acquire"))))
        << "a raw object has no lock to acquire";
    EXPECT_TRUE(s.await(write(s, "a", p, 11)).ok());
    EXPECT_TRUE(gives(s.await(read(s, "b", p)), 11));
  }
}

// lock=<a Lock or RLock>: the wrapper's lock is that one, both ways.
TEST(Sharedctypes, GivenLockIsUsed) {
  MPSPEC_CLAUSES("[sharedctypes.construct.lock.given]");
  for (const char* lock_type : {"Lock", "RLock"}) {
    SCOPED_TRACE(lock_type);
    Scenario s;
    s.object("L", lock_type).object("V", "Value", with_lock(value_args("i", 1), ref("L")));
    s.object("A", "Array", with_lock(array_args("i", 2), ref("L")));
    s.actor("a").actor("b").actor("c");
    s.needs_feature("nonblocking");
    MPSPEC_START(s);
    // Acquired through the wrapper: the given lock is held, as its other users see.
    ASSERT_TRUE(s.await(s.call("a", "V", "acquire")).ok(true));
    EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(false));
    EXPECT_TRUE(s.await(s.call("b", "A", "acquire", kTry)).ok(false)) << "A shares the lock";
    ASSERT_TRUE(s.await(s.call("a", "V", "release")).ok(nullptr));
    // Held through the lock itself: accesses through the wrappers wait for it.
    ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
    const CallId r = s.call("b", "V", "value");
    const CallId w = s.call("c", "A", "setitem", at(0, 4));
    EXPECT_FALSE(s.returns_within(r, small())) << "a read through V must wait for L";
    EXPECT_FALSE(s.returned(w)) << "a write through A must wait for L";
    const CallId release = s.call("a", "L", "release");
    ASSERT_TRUE(s.await(release).ok(nullptr));
    EXPECT_TRUE(gives(s.await(r), 1));
    EXPECT_TRUE(s.await(w).ok());
    EXPECT_GE(s.result(r).return_ns, s.result(release).invoke_ns);
    EXPECT_GE(s.result(w).return_ns, s.result(release).invoke_ns);
    EXPECT_TRUE(gives(s.await(s.call("b", "A", "getitem", at(0))), 4));
  }
}

TEST(Sharedctypes, InvalidLockFailsTheSetup) {
  MPSPEC_CLAUSES("[sharedctypes.construct.lock.invalid]");
  int tried = 0;
  for (const char* type : {"Value", "Array"}) {
    for (const Json& lock : {Json(0), Json("x"), Json(2.5), Json::array({1})}) {
      SCOPED_TRACE(std::string(type) + " lock=" + lock.dump());
      Scenario s;
      s.object(
          "X", type,
          with_lock(std::string(type) == "Value" ? value_args("i") : array_args("i", 2), lock));
      if (setup_fails(s)) ++tried;
    }
  }
  if (tried == 0) GTEST_SKIP() << "UNSUPPORTED: the backend offers neither Value nor Array";
}

// ---------------------------------------------------------------------------------------------
// §3 Reading and writing

TEST(Sharedctypes, WriteIsReadEverywhere) {
  MPSPEC_CLAUSES("[sharedctypes.value.read_write]");
  Scenario s;
  s.object("V", "Value", value_args("q")).object("R", "RawValue", value_args("d"));
  s.object("C", "Value", value_args("c")).object("U", "RawValue", value_args("u"));
  s.actor("a").actor("b").actor("c");
  MPSPEC_START(s);
  const std::vector<std::pair<std::string, Json>> writes = {
      {"V", -987654321012LL}, {"R", -0.25}, {"C", B("q")}, {"U", "\u00fc"}};
  for (const auto& [object, v] : writes) {
    ASSERT_TRUE(s.await(s.call("a", object, "set_value", set(v))).ok());
    for (const char* reader : {"a", "b", "c"})
      EXPECT_TRUE(gives(s.await(s.call(reader, object, "value")), v)) << object << " in " << reader;
  }
  // And the other way: the last writer wins everywhere.
  ASSERT_TRUE(s.await(s.call("c", "V", "set_value", set(42))).ok());
  EXPECT_TRUE(gives(s.await(s.call("a", "V", "value")), 42));
}

// Each access of value, element and slice through a synchronized object waits while another
// process holds the lock, and completes after the release.
TEST(Sharedctypes, AccessesWaitForTheLock) {
  MPSPEC_CLAUSES("[sharedctypes.value.locked]");
  Scenario s;
  s.object("V", "Value", value_args("i", 1)).object("A", "Array", array_args("i", 4));
  s.actor("h");
  const std::vector<std::string> waiters = {"r", "w", "e", "g", "s"};
  for (const auto& w : waiters) s.actor(w);
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  for (const char* object : {"V", "A"}) {
    SCOPED_TRACE(object);
    const bool array = std::string(object) == "A";
    ASSERT_TRUE(s.await(s.call("h", object, "acquire")).ok(true));
    ASSERT_TRUE(s.await(s.call("r", object, "acquire", kTry)).ok(false)) << "h holds the lock";
    std::vector<CallId> blocked;
    if (!array) {
      blocked.push_back(s.call("r", "V", "value"));
      blocked.push_back(s.call("w", "V", "set_value", set(2)));
    } else {
      blocked.push_back(s.call("r", "A", "getitem", at(0)));
      blocked.push_back(s.call("w", "A", "setitem", at(0, 5)));
      blocked.push_back(s.call("g", "A", "getslice", slice(1, 3)));
      blocked.push_back(s.call("s", "A", "setslice", slice_set(2, 4, nullptr, {6, 7})));
    }
    EXPECT_FALSE(s.returns_within(blocked[0], small())) << s.result(blocked[0]);
    for (const CallId id : blocked) EXPECT_FALSE(s.returned(id)) << s.result(id);
    const CallId release = s.call("h", object, "release");
    ASSERT_TRUE(s.await(release).ok(nullptr));
    for (const CallId id : blocked) {
      EXPECT_TRUE(s.await(id).ok()) << s.result(id);
      EXPECT_GE(s.result(id).return_ns, s.result(release).invoke_ns) << s.result(id);
    }
  }
  EXPECT_TRUE(gives(s.await(s.call("e", "V", "value")), 2));
  EXPECT_TRUE(gives(s.await(s.call("e", "A", "getslice", slice(nullptr, nullptr))),
                    Json::array({5, 0, 6, 7})));
}

// Concurrent read-modify-writes of a 64-bit value whose every legal value is a multiple of a
// step with bits in both halves: a read or write that mixed two writes would leave a value
// that is not a multiple. Lost updates are allowed ([sharedctypes.add.unlocked]); mixes are not.
TEST(Sharedctypes, SingleAccessesAreAtomic) {
  MPSPEC_CLAUSES("[sharedctypes.value.atomic]");
  constexpr std::int64_t kTimes = 20000;
  const std::int64_t q_step = (std::int64_t{1} << 32) + 1;
  const double d_step = 1.0 + std::ldexp(1.0, -20);
  Scenario s;
  s.object("Q", "Value", value_args("q", 0)).object("D", "Value", value_args("d", 0.0));
  s.object("A", "Array", array_args("q", 2));
  s.actor("w1").actor("w2").actor("r");
  MPSPEC_START(s);
  auto multiple_q = [&](const Json& v) {
    if (!v.is_number_integer()) return false;
    const std::int64_t x = v.get<std::int64_t>();
    return x >= 0 && x % q_step == 0 && x / q_step <= 2 * kTimes;
  };
  auto multiple_d = [&](const Json& v) {
    if (!v.is_number_float()) return false;
    const double x = v.get<double>();
    const double m = std::nearbyint(x / d_step);
    return m >= 0 && m <= 2 * kTimes && m * d_step == x;
  };
  struct Target {
    std::string object;
    Json add_args;
    Json read_args;
    std::string read_method;
    bool is_q;
  };
  const std::vector<Target> targets = {
      {"Q", Json{{"delta", q_step}, {"times", kTimes}}, Json::object(), "value", true},
      {"D", Json{{"delta", d_step}, {"times", kTimes}}, Json::object(), "value", false},
      {"A", Json{{"index", 1}, {"delta", q_step}, {"times", kTimes}}, at(1), "getitem", true}};
  for (const auto& t : targets) {
    SCOPED_TRACE(t.object);
    const CallId w1 = s.call("w1", t.object, "add", t.add_args);
    const CallId w2 = s.call("w2", t.object, "add", t.add_args);
    int reads = 0;
    while (!(s.returned(w1) && s.returned(w2)) && reads < 2000) {
      const auto& r = s.await(s.call("r", t.object, t.read_method, t.read_args));
      ++reads;
      ASSERT_TRUE(r.ok()) << r;
      ASSERT_TRUE(t.is_q ? multiple_q(r.value) : multiple_d(r.value))
          << "a read returned a value no write stored: " << r;
    }
    ASSERT_TRUE(s.await(w1).ok()) << s.result(w1);
    ASSERT_TRUE(s.await(w2).ok()) << s.result(w2);
    const auto& last = s.await(s.call("r", t.object, t.read_method, t.read_args));
    EXPECT_TRUE(last.ok() && (t.is_q ? multiple_q(last.value) : multiple_d(last.value))) << last;
  }
}

TEST(Sharedctypes, LenIsTheNumberOfElements) {
  MPSPEC_CLAUSES("[sharedctypes.array.len]");
  Scenario s;
  s.object("A", "Array", array_args("i", 7)).object("W", "RawArray", array_args("d", 1));
  s.object("C", "Array", array_args("c", B("abc"))).object("RU", "RawArray", array_args("u", "xy"));
  s.object("S", "Synchronized", Json{{"obj", ref("W")}});
  s.actor("a").actor("b");
  MPSPEC_START(s);
  for (const auto& [object, n] :
       std::vector<std::pair<std::string, int>>{{"A", 7}, {"W", 1}, {"C", 3}, {"RU", 2}, {"S", 1}})
    EXPECT_TRUE(gives(s.await(s.call("b", object, "len")), n)) << object;
}

TEST(Sharedctypes, IndexReadsAndWritesElements) {
  MPSPEC_CLAUSES("[sharedctypes.array.index]");
  Scenario s;
  s.object("A", "Array", array_args("i", 4)).object("W", "RawArray", array_args("i", 4));
  s.actor("a").actor("b");
  MPSPEC_START(s);
  for (const char* object : {"A", "W"}) {
    SCOPED_TRACE(object);
    for (int i = 0; i < 4; ++i)
      ASSERT_TRUE(s.await(s.call("a", object, "setitem", at(i, 10 + i))).ok());
    for (int i = 0; i < 4; ++i)
      EXPECT_TRUE(gives(s.await(s.call("b", object, "getitem", at(i))), 10 + i)) << i;
    EXPECT_TRUE(gives(s.await(s.call("b", object, "getitem", at(-1))), 13)) << "-1 is the last";
    EXPECT_TRUE(gives(s.await(s.call("b", object, "getitem", at(-4))), 10)) << "-n is the first";
    ASSERT_TRUE(s.await(s.call("a", object, "setitem", at(-2, 99))).ok());
    EXPECT_TRUE(gives(s.await(s.call("b", object, "getslice", slice(nullptr, nullptr))),
                      Json::array({10, 11, 99, 13})));
  }
}

TEST(Sharedctypes, IndexOutOfRangeRaisesAndChangesNothing) {
  MPSPEC_CLAUSES("[sharedctypes.array.index.out_of_range]");
  Scenario s;
  s.object("A", "Array", array_args("i", Json::array({1, 2, 3})));
  s.object("W", "RawArray", array_args("i", Json::array({1, 2, 3})));
  s.actor("a");
  MPSPEC_START(s);
  for (const char* object : {"A", "W"}) {
    SCOPED_TRACE(object);
    for (const int i : {3, 4, -4, 1000}) {
      EXPECT_TRUE(raised_any(s.await(s.call("a", object, "getitem", at(i))))) << i;
      EXPECT_TRUE(raised_any(s.await(s.call("a", object, "setitem", at(i, 9))))) << i;
    }
    EXPECT_TRUE(gives(s.await(s.call("a", object, "getslice", slice(nullptr, nullptr))),
                      Json::array({1, 2, 3})));
  }
}

TEST(Sharedctypes, NonIntegerIndexIsTypeError) {
  MPSPEC_CLAUSES("[sharedctypes.array.index.type]");
  Scenario s;
  s.object("A", "Array", array_args("i", Json::array({1, 2, 3})));
  s.object("W", "RawArray", array_args("i", Json::array({1, 2, 3})));
  s.actor("a");
  MPSPEC_START(s);
  for (const char* object : {"A", "W"}) {
    SCOPED_TRACE(object);
    for (const Json& index : {Json("x"), Json(1.0), Json(nullptr), Json::array({0})}) {
      EXPECT_TRUE(
          s.await(s.call("a", object, "getitem", Json{{"index", index}})).raised("TypeError"))
          << index.dump();
      EXPECT_TRUE(s.await(s.call("a", object, "setitem", Json{{"index", index}, {"value", 9}}))
                      .raised("TypeError"))
          << index.dump();
    }
    EXPECT_TRUE(gives(s.await(s.call("a", object, "getslice", slice(nullptr, nullptr))),
                      Json::array({1, 2, 3})));
  }
}

TEST(Sharedctypes, SliceReadFollowsPythonRules) {
  MPSPEC_CLAUSES("[sharedctypes.array.slice.read]");
  Scenario s;
  Json ten = Json::array();
  for (int i = 0; i < 10; ++i) ten.push_back(i);
  s.object("A", "Array", array_args("i", ten)).object("W", "RawArray", array_args("i", ten));
  s.object("C", "Array", array_args("c", B("hello")))
      .object("U", "RawArray", array_args("u", "h\u00e9llo"));
  s.actor("a");
  MPSPEC_START(s);
  const std::vector<std::pair<Json, Json>> cases = {
      {slice(1, 3), Json::array({1, 2})},
      {slice(nullptr, nullptr), ten},
      {slice(nullptr, nullptr, 2), Json::array({0, 2, 4, 6, 8})},
      {slice(-3, nullptr), Json::array({7, 8, 9})},
      {slice(2, 100), Json::array({2, 3, 4, 5, 6, 7, 8, 9})},
      {slice(-100, 2), Json::array({0, 1})},
      {slice(5, 2), Json::array()},
      {slice(nullptr, nullptr, -3), Json::array({9, 6, 3, 0})},
      {slice(1, 8, 3), Json::array({1, 4, 7})}};
  for (const char* object : {"A", "W"})
    for (const auto& [args, expected] : cases)
      EXPECT_TRUE(gives(s.await(s.call("a", object, "getslice", args)), expected))
          << object << " " << args.dump();
  EXPECT_TRUE(gives(s.await(s.call("a", "C", "getslice", slice(nullptr, nullptr))), B("hello")));
  EXPECT_TRUE(gives(s.await(s.call("a", "C", "getslice", slice(1, nullptr, 2))), B("el")));
  EXPECT_TRUE(gives(s.await(s.call("a", "U", "getslice", slice(nullptr, nullptr))), "h\u00e9llo"));
  EXPECT_TRUE(gives(s.await(s.call("a", "U", "getslice", slice(1, 3))), "\u00e9l"));
}

TEST(Sharedctypes, SliceWriteNeedsTheSameSize) {
  MPSPEC_CLAUSES("[sharedctypes.array.slice.write]");
  Scenario s;
  s.object("A", "Array", array_args("i", 6)).object("W", "RawArray", array_args("i", 6));
  s.object("C", "Array", array_args("c", B("hello")));
  s.actor("a").actor("b");
  MPSPEC_START(s);
  const Json all = slice(nullptr, nullptr);
  for (const char* object : {"A", "W"}) {
    SCOPED_TRACE(object);
    ASSERT_TRUE(s.await(s.call("a", object, "setslice", slice_set(1, 3, nullptr, {7, 8}))).ok());
    ASSERT_TRUE(
        s.await(s.call("a", object, "setslice", slice_set(nullptr, nullptr, 2, {1, 2, 3}))).ok());
    ASSERT_TRUE(
        s.await(s.call("a", object, "setslice", slice_set(-1, nullptr, nullptr, {9}))).ok());
    const Json expected = Json::array({1, 7, 2, 0, 3, 9});
    EXPECT_TRUE(gives(s.await(s.call("b", object, "getslice", all)), expected));
    for (const Json& values : {Json::array({1}), Json::array({1, 2, 3}), Json::array()}) {
      EXPECT_TRUE(s.await(s.call("a", object, "setslice", slice_set(1, 3, nullptr, values)))
                      .raised("ValueError"))
          << values.dump();
      EXPECT_TRUE(gives(s.await(s.call("b", object, "getslice", all)), expected)) << "unchanged";
    }
  }
  ASSERT_TRUE(s.await(s.call("a", "C", "setslice", slice_set(0, 2, nullptr, B("HE")))).ok());
  EXPECT_TRUE(gives(s.await(s.call("b", "C", "getslice", all)), B("HEllo")));
  EXPECT_TRUE(s.await(s.call("a", "C", "setslice", slice_set(0, 2, nullptr, B("xyz"))))
                  .raised("ValueError"));
  EXPECT_TRUE(gives(s.await(s.call("b", "C", "getslice", all)), B("HEllo")));
}

// Two writers fill the whole array with their own constant while a reader reads it whole: a
// slice read through the wrapper must never see two writers' values at once. Slices are large,
// so that an unlocked copy would overlap another.
TEST(Sharedctypes, SliceAccessesAreAtomic) {
  MPSPEC_CLAUSES("[sharedctypes.array.slice.atomic]");
  constexpr int kSize = 20000, kRounds = 15;
  Scenario s;
  s.object("A", "Array", array_args("i", kSize));
  s.actor("w1").actor("w2").actor("r");
  MPSPEC_START(s);
  auto uniform = [](const Json& v) {
    if (!v.is_array() || v.size() != static_cast<std::size_t>(kSize)) return false;
    for (const auto& x : v)
      if (x != v[0]) return false;
    return true;
  };
  const Json all = slice(nullptr, nullptr);
  for (int round = 0; round < kRounds; ++round) {
    const CallId w1 =
        s.call("w1", "A", "setslice",
               slice_set(nullptr, nullptr, nullptr, Json(std::vector<int>(kSize, 2 * round + 1))));
    const CallId w2 =
        s.call("w2", "A", "setslice",
               slice_set(nullptr, nullptr, nullptr, Json(std::vector<int>(kSize, 2 * round + 2))));
    const auto& r = s.await(s.call("r", "A", "getslice", all));
    ASSERT_TRUE(r.ok()) << r;
    ASSERT_TRUE(uniform(r.value)) << "round " << round << ": a slice read mixed two slice writes";
    ASSERT_TRUE(s.await(w1).ok()) << s.result(w1);
    ASSERT_TRUE(s.await(w2).ok()) << s.result(w2);
  }
  const auto& last = s.await(s.call("r", "A", "getslice", all));
  ASSERT_TRUE(last.ok()) << last;
  EXPECT_TRUE(uniform(last.value)) << "the last write of a slice is whole";
}

TEST(Sharedctypes, CharArrayHasValueAndRaw) {
  MPSPEC_CLAUSES("[sharedctypes.array.char]");
  const std::string_view init("ab\0cd", 5);
  Scenario s;
  s.object("A", "Array", array_args("c", B(init)))
      .object("W", "RawArray", array_args("c", B(init)));
  s.object("A3", "Array", array_args("c", 3)).object("W3", "RawArray", array_args("c", 3));
  s.actor("a").actor("b");
  MPSPEC_START(s);
  for (const char* object : {"A", "W"}) {
    EXPECT_TRUE(gives(s.await(s.call("b", object, "value")), B("ab"))) << object;
    EXPECT_TRUE(gives(s.await(s.call("b", object, "raw")), B(init))) << object;
  }
  for (const char* object : {"A3", "W3"}) {
    SCOPED_TRACE(object);
    ASSERT_TRUE(s.await(s.call("a", object, "set_value", set(B("ab")))).ok());
    EXPECT_TRUE(gives(s.await(s.call("b", object, "raw")), B(std::string_view("ab\0", 3))));
    EXPECT_TRUE(gives(s.await(s.call("b", object, "value")), B("ab")));
    ASSERT_TRUE(s.await(s.call("a", object, "set_value", set(B("xyz")))).ok()) << "no room for 0";
    EXPECT_TRUE(gives(s.await(s.call("b", object, "raw")), B("xyz")));
    ASSERT_TRUE(s.await(s.call("a", object, "set_value", set(B("q")))).ok());
    EXPECT_TRUE(gives(s.await(s.call("b", object, "raw")), B(std::string_view("q\0z", 3))))
        << "a zero byte after the value, the rest unchanged";
    EXPECT_TRUE(s.await(s.call("a", object, "set_value", set(B("abcd")))).raised("ValueError"));
    EXPECT_TRUE(gives(s.await(s.call("b", object, "raw")), B(std::string_view("q\0z", 3))))
        << "unchanged";
  }
}

// ---------------------------------------------------------------------------------------------
// §4 get_lock(), get_obj(), acquire(), release(), scoped use

TEST(Sharedctypes, WrapperLockMethodsAreTheLocks) {
  MPSPEC_CLAUSES("[sharedctypes.get_lock]");
  Scenario s;
  s.object("V", "Value", value_args("i"));
  s.object("L", "Lock").object("G", "Array", with_lock(array_args("i", 1), ref("L")));
  s.actor("a").actor("b");
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  // The default lock: the same on every call (taken by one call, released by another).
  ASSERT_TRUE(s.await(s.call("a", "V", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "V", "acquire", kTry)).ok(false));
  const auto& timed =
      s.await(s.call("b", "V", "acquire", Json{{"block", true}, {"timeout", small()}}));
  EXPECT_TRUE(timed.ok(false)) << timed;
  EXPECT_GE(timed.elapsed(), small() - kClockResolution) << timed;
  EXPECT_TRUE(s.await(s.call("a", "V", "__enter__")).ok(true)) << "the scoped form of the lock";
  EXPECT_TRUE(s.await(s.call("a", "V", "__exit__")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "V", "acquire", kTry)).ok(false)) << "a still holds one level";
  EXPECT_TRUE(s.await(s.call("a", "V", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "V", "__enter__")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "V", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("b", "V", "__exit__")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "V", "acquire", kTry)).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "V", "release")).ok(nullptr));
  // A given Lock: the wrapper's acquire / release are the Lock's, as its own users see.
  ASSERT_TRUE(s.await(s.call("a", "G", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("a", "G", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "G", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("b", "L", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "G", "release")).raised("ValueError"))
      << "releasing the free Lock through the wrapper is the Lock's over-release";
}

TEST(Sharedctypes, GetObjIsTheRawObjectWithoutLock) {
  MPSPEC_CLAUSES("[sharedctypes.get_obj]");
  Scenario s;
  s.object("V", "Value", value_args("i", 1)).object("A", "Array", array_args("i", 3));
  s.actor("a").actor("b");
  MPSPEC_START(s);
  // One memory: writes through either are read through the other.
  ASSERT_TRUE(s.await(s.call("a", "V", "set_value", set(5))).ok());
  EXPECT_TRUE(gives(s.await(s.call("b", "V", "value", through_obj())), 5));
  ASSERT_TRUE(s.await(s.call("b", "V", "set_value", through_obj(set(6)))).ok());
  EXPECT_TRUE(gives(s.await(s.call("a", "V", "value")), 6));
  ASSERT_TRUE(s.await(s.call("b", "A", "setitem", through_obj(at(2, 8)))).ok());
  EXPECT_TRUE(gives(s.await(s.call("a", "A", "getitem", at(2))), 8));
  // No lock: while a holds the wrapper's lock, b's raw accesses complete.
  ASSERT_TRUE(s.await(s.call("a", "V", "acquire")).ok(true));
  ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
  EXPECT_TRUE(gives(s.await(s.call("b", "V", "value", through_obj())), 6));
  EXPECT_TRUE(s.await(s.call("b", "V", "set_value", through_obj(set(7)))).ok());
  EXPECT_TRUE(gives(s.await(s.call("b", "A", "getitem", through_obj(at(2)))), 8));
  EXPECT_TRUE(gives(s.await(s.call("b", "A", "getslice", through_obj(slice(nullptr, nullptr)))),
                    Json::array({0, 0, 8})));
  EXPECT_TRUE(gives(s.await(s.call("a", "V", "value")), 7));
  EXPECT_TRUE(s.await(s.call("a", "V", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "A", "release")).ok(nullptr));
}

// ---------------------------------------------------------------------------------------------
// §5 Read-modify-write

TEST(Sharedctypes, LockedAddsAreNeverLost) {
  MPSPEC_CLAUSES("[sharedctypes.add.locked]");
  constexpr int kTimes = 3000;
  Scenario s;
  s.object("V", "Value", value_args("i", 10)).object("A", "Array", array_args("q", 3));
  s.object("L", "Lock").object("G", "Value", with_lock(value_args("i"), ref("L")));
  const std::vector<std::string> workers = {"a", "b", "c"};
  for (const auto& w : workers) s.actor(w);
  MPSPEC_START(s);
  const std::vector<std::pair<std::string, Json>> targets = {
      {"V", Json{{"delta", 1}, {"times", kTimes}, {"locked", true}}},
      {"A", Json{{"index", 1}, {"delta", 2}, {"times", kTimes}, {"locked", true}}},
      {"G", Json{{"delta", 1}, {"times", kTimes}, {"locked", true}}}};
  for (const auto& [object, args] : targets) {
    std::vector<CallId> adds;
    for (const auto& w : workers) adds.push_back(s.call(w, object, "add", args));
    for (const CallId id : adds) ASSERT_TRUE(s.await(id).ok()) << s.result(id);
  }
  EXPECT_TRUE(gives(s.await(s.call("a", "V", "value")), 10 + 3 * kTimes));
  EXPECT_TRUE(gives(s.await(s.call("a", "A", "getslice", slice(nullptr, nullptr))),
                    Json::array({0, 2 * 3 * kTimes, 0})));
  EXPECT_TRUE(gives(s.await(s.call("a", "G", "value")), 3 * kTimes));
}

// ---------------------------------------------------------------------------------------------
// §6 synchronized and copy

TEST(Sharedctypes, SynchronizedWrapsTheSameMemory) {
  MPSPEC_CLAUSES("[sharedctypes.synchronized.wraps]");
  Scenario s;
  s.object("R", "RawValue", value_args("i", 3))
      .object("S", "Synchronized", Json{{"obj", ref("R")}});
  s.object("W", "RawArray", array_args("c", B(std::string_view("ab\0cd", 5))));
  s.object("SW", "Synchronized", Json{{"obj", ref("W")}, {"lock", nullptr}});
  s.object("L", "Lock").object("R2", "RawArray", array_args("i", 2));
  s.object("SL", "Synchronized", Json{{"obj", ref("R2")}, {"lock", ref("L")}});
  s.actor("a").actor("b");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  EXPECT_TRUE(gives(s.await(s.call("a", "S", "value")), 3));
  ASSERT_TRUE(s.await(s.call("a", "S", "set_value", set(4))).ok());
  EXPECT_TRUE(gives(s.await(s.call("b", "R", "value")), 4));
  ASSERT_TRUE(s.await(s.call("b", "R", "set_value", set(5))).ok());
  EXPECT_TRUE(gives(s.await(s.call("a", "S", "value")), 5));
  // A new recursive lock.
  ASSERT_TRUE(s.await(s.call("a", "S", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "S", "acquire", kTry)).ok(false));
  EXPECT_TRUE(s.await(s.call("a", "S", "acquire", kTry)).ok(true)) << "recursive";
  EXPECT_TRUE(gives(s.await(s.call("a", "S", "value")), 5)) << "its holder reads through it";
  EXPECT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "S", "release")).ok(nullptr));
  // A 'c' array's wrapper has value and raw.
  EXPECT_TRUE(gives(s.await(s.call("a", "SW", "value")), B("ab")));
  EXPECT_TRUE(gives(s.await(s.call("a", "SW", "raw")), B(std::string_view("ab\0cd", 5))));
  ASSERT_TRUE(s.await(s.call("a", "SW", "setitem", at(0, B("X")))).ok());
  EXPECT_TRUE(gives(s.await(s.call("b", "W", "getitem", at(0))), B("X")));
  // The given lock.
  ASSERT_TRUE(s.await(s.call("a", "SL", "acquire")).ok(true));
  EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(false)) << "SL's lock is L";
  EXPECT_TRUE(s.await(s.call("a", "SL", "release")).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("b", "SL", "setitem", at(1, 6))).ok());
  EXPECT_TRUE(gives(s.await(s.call("a", "R2", "getitem", at(1))), 6));
}

TEST(Sharedctypes, SynchronizedOfSynchronizedFailsTheSetup) {
  MPSPEC_CLAUSES("[sharedctypes.synchronized.twice]");
  int tried = 0;
  for (const char* type : {"Value", "Array"}) {
    SCOPED_TRACE(type);
    Scenario s;
    s.object("X", type, std::string(type) == "Value" ? value_args("i") : array_args("i", 2));
    s.object("S", "Synchronized", Json{{"obj", ref("X")}});
    if (setup_fails(s)) ++tried;
  }
  {
    SCOPED_TRACE("Synchronized of a Synchronized");
    Scenario s;
    s.object("R", "RawValue", value_args("i")).object("S", "Synchronized", Json{{"obj", ref("R")}});
    s.object("T", "Synchronized", Json{{"obj", ref("S")}});
    if (setup_fails(s)) ++tried;
  }
  if (tried == 0) GTEST_SKIP() << "UNSUPPORTED: the backend lacks Synchronized or Value / Array";
}

TEST(Sharedctypes, CopyHasItsOwnMemory) {
  MPSPEC_CLAUSES("[sharedctypes.copy]");
  Scenario s;
  s.object("R", "RawArray", array_args("i", Json::array({1, 2, 3})));
  s.object("C", "RawArray", Json{{"copy_of", ref("R")}});
  s.object("V", "RawValue", value_args("d", 2.5))
      .object("CV", "RawValue", Json{{"copy_of", ref("V")}});
  s.actor("a").actor("b");
  MPSPEC_START(s);
  const Json all = slice(nullptr, nullptr);
  EXPECT_TRUE(gives(s.await(s.call("a", "C", "getslice", all)), Json::array({1, 2, 3})));
  EXPECT_TRUE(gives(s.await(s.call("a", "CV", "value")), 2.5));
  ASSERT_TRUE(s.await(s.call("a", "C", "setitem", at(0, 9))).ok());
  ASSERT_TRUE(s.await(s.call("a", "R", "setitem", at(1, 7))).ok());
  ASSERT_TRUE(s.await(s.call("a", "CV", "set_value", set(-1.0))).ok());
  EXPECT_TRUE(gives(s.await(s.call("b", "R", "getslice", all)), Json::array({1, 7, 3})));
  EXPECT_TRUE(gives(s.await(s.call("b", "C", "getslice", all)), Json::array({9, 2, 3})))
      << "the copy is shared memory of its own";
  EXPECT_TRUE(gives(s.await(s.call("b", "V", "value")), 2.5));
  EXPECT_TRUE(gives(s.await(s.call("b", "CV", "value")), -1.0));
}

// ---------------------------------------------------------------------------------------------
// §7 Processes

TEST(Sharedctypes, InheritedObjectsAreSharedMemory) {
  MPSPEC_CLAUSES("[sharedctypes.process.inherit]");
  Scenario s;
  s.object("V", "Value", value_args("i")).object("R", "RawValue", value_args("q"));
  s.object("A", "Array", array_args("d", 2)).object("W", "RawArray", array_args("c", 2));
  s.object("RS", "RawValue", value_args("i")).object("S", "Synchronized", Json{{"obj", ref("RS")}});
  s.actor("a").actor("b");
  MPSPEC_START(s);
  const std::vector<std::pair<Place, std::pair<Json, Json>>> cases = {
      {{"V", false}, {1, 2}},
      {{"R", false}, {3, 4}},
      {{"A", true}, {0.5, 1.5}},
      {{"W", true}, {B("x"), B("y")}},
      {{"S", false}, {5, 6}}};
  for (const auto& [p, values] : cases) {
    SCOPED_TRACE(p.object);
    ASSERT_TRUE(s.await(write(s, "a", p, values.first)).ok());
    EXPECT_TRUE(gives(s.await(read(s, "b", p)), values.first)) << "a's write, read by b";
    ASSERT_TRUE(s.await(write(s, "b", p, values.second)).ok());
    EXPECT_TRUE(gives(s.await(read(s, "a", p)), values.second)) << "b's write, read by a";
  }
  EXPECT_TRUE(gives(s.await(s.call("a", "RS", "value")), 6)) << "S wraps RS in every process";
}

TEST(Sharedctypes, LockIsSharedWithTheObject) {
  MPSPEC_CLAUSES("[sharedctypes.process.lock_shared]");
  Scenario s;
  s.object("V", "Value", value_args("i", 1));
  s.actor("a").actor("b");
  MPSPEC_START(s);
  for (const auto& [holder, other] : {std::pair{"a", "b"}, std::pair{"b", "a"}}) {
    SCOPED_TRACE(std::string(holder) + " holds the lock");
    ASSERT_TRUE(s.await(s.call(holder, "V", "acquire")).ok(true));
    const CallId blocked = s.call(other, "V", "set_value", set(7));
    EXPECT_FALSE(s.returns_within(blocked, small())) << s.result(blocked);
    const CallId release = s.call(holder, "V", "release");
    ASSERT_TRUE(s.await(release).ok(nullptr));
    EXPECT_TRUE(s.await(blocked).ok()) << s.result(blocked);
    EXPECT_GE(s.result(blocked).return_ns, s.result(release).invoke_ns);
  }
}

// Handing a shared object over a Connection raises RuntimeError and sends nothing: the next
// message the peer receives is the one sent after.
TEST(Sharedctypes, SharedOnlyThroughInheritance) {
  MPSPEC_CLAUSES("[sharedctypes.process.inherit_only]");
  Scenario s;
  s.object("V", "Value", value_args("i")).object("R", "RawValue", value_args("i"));
  s.object("A", "Array", array_args("i", 2)).object("W", "RawArray", array_args("i", 2));
  s.object("P", "Pipe");
  s.object("C0", "Connection", Json{{"pipe", ref("P")}, {"end", 0}});
  s.object("C1", "Connection", Json{{"pipe", ref("P")}, {"end", 1}});
  s.actor("a").actor("b");
  s.needs_feature("refs").needs_feature("timeout");
  MPSPEC_START(s);
  for (const char* object : {"V", "R", "A", "W"}) {
    EXPECT_TRUE(
        s.await(s.call("a", "C0", "send", Json{{"obj", ref(object)}})).raised("RuntimeError"))
        << object << " must be refused";
  }
  EXPECT_TRUE(s.await(s.call("b", "C1", "poll", Json{{"timeout", small()}})).ok(false))
      << "nothing was sent";
  ASSERT_TRUE(s.await(s.call("a", "C0", "send", Json{{"obj", 42}})).ok(nullptr));
  EXPECT_TRUE(gives(s.await(s.call("b", "C1", "recv")), 42));
}

TEST(Sharedctypes, KilledProcessWritesRemain) {
  MPSPEC_CLAUSES("[sharedctypes.kill.memory]");
  Scenario s;
  s.object("V", "Value", value_args("i")).object("R", "RawValue", value_args("d"));
  s.object("A", "Array", array_args("i", 3));
  s.actor("a").actor("b");
  s.needs_feature("kill");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "R", "set_value", set(2.5))).ok());
  ASSERT_TRUE(
      s.await(s.call("a", "A", "setslice", slice_set(nullptr, nullptr, nullptr, {4, 5, 6}))).ok());
  ASSERT_TRUE(s.await(s.call("a", "V", "acquire")).ok(true));
  ASSERT_TRUE(s.await(s.call("a", "V", "set_value", set(42))).ok()) << "its holder writes";
  s.kill("a");
  EXPECT_TRUE(gives(s.await(s.call("b", "V", "value", through_obj())), 42));
  EXPECT_TRUE(gives(s.await(s.call("b", "R", "value")), 2.5));
  EXPECT_TRUE(gives(s.await(s.call("b", "A", "getslice", slice(nullptr, nullptr))),
                    Json::array({4, 5, 6})));
  ASSERT_TRUE(s.await(s.call("b", "R", "set_value", set(1.0))).ok()) << "still usable";
  EXPECT_TRUE(gives(s.await(s.call("b", "R", "value")), 1.0));
}

// core: the lock of a dead holder is never silently free. Its default (recursive) lock either
// stays held (a timed acquire returns False after its timeout, an access waits) or the death is
// reported as OwnerDied; a given Lock stays held, and a survivor may release it.
TEST(Sharedctypes, KilledHolderNeverSilentlyReleases) {
  MPSPEC_CLAUSES("[sharedctypes.kill.holder]");
  {
    Scenario s;
    s.object("V", "Value", value_args("i", 1));
    s.actor("a").actor("b").actor("c");
    s.needs_feature("kill").needs_feature("timeout");
    MPSPEC_START(s);
    ASSERT_TRUE(s.await(s.call("a", "V", "acquire")).ok(true));
    s.kill("a");
    const double timeout = small();
    const auto& r =
        s.await(s.call("b", "V", "acquire", Json{{"block", true}, {"timeout", timeout}}));
    if (r.ok(false)) {
      EXPECT_GE(r.elapsed(), timeout - kClockResolution) << r;
      const CallId access = s.call("c", "V", "value");
      if (s.returns_within(access, small())) {
        EXPECT_TRUE(s.result(access).raised("OwnerDied"))
            << "an access proceeded as if the dead holder's lock were free: " << s.result(access);
      }
    } else {
      EXPECT_TRUE(r.raised("OwnerDied")) << "the dead holder's lock must stay held or be "
                                            "reported as OwnerDied: "
                                         << r;
    }
  }
  {
    Scenario s;
    s.object("L", "Lock").object("V", "Value", with_lock(value_args("i", 1), ref("L")));
    s.actor("a").actor("b").actor("c");
    s.needs_feature("kill").needs_feature("nonblocking");
    MPSPEC_START(s);
    ASSERT_TRUE(s.await(s.call("a", "V", "acquire")).ok(true));
    s.kill("a");
    EXPECT_TRUE(s.await(s.call("b", "L", "acquire", kTry)).ok(false)) << "the Lock stays held";
    const CallId access = s.call("b", "V", "value");
    EXPECT_FALSE(s.returns_within(access, small())) << s.result(access);
    const CallId release = s.call("c", "L", "release");
    ASSERT_TRUE(s.await(release).ok(nullptr)) << "any survivor may release a Lock";
    EXPECT_TRUE(gives(s.await(access), 1));
    EXPECT_GE(s.result(access).return_ns, s.result(release).invoke_ns);
  }
}

// strict: the next access after the holder's death raises OwnerDied and leaves the lock free;
// an explicit acquire reports OwnerDied and owns the lock.
TEST(Sharedctypes, KilledHolderReportedAsOwnerDied) {
  MPSPEC_CLAUSES("[sharedctypes.kill.owner_died]");
  {
    SCOPED_TRACE("an explicit acquire");
    Scenario s;
    s.object("V", "Value", value_args("i", 1));
    s.actor("a").actor("b").actor("c");
    s.needs_feature("kill").needs_feature("timeout").needs_feature("nonblocking");
    MPSPEC_START(s);
    ASSERT_TRUE(s.await(s.call("a", "V", "acquire")).ok(true));
    ASSERT_TRUE(s.await(s.call("a", "V", "set_value", set(2))).ok());
    s.kill("a");
    const auto& r =
        s.await(s.call("b", "V", "acquire", Json{{"block", true}, {"timeout", small()}}));
    // A backend that keeps the lock (False) would also wedge the access below: stop here.
    ASSERT_TRUE(r.raised("OwnerDied"))
        << "the next acquirer must learn that the holder died: " << r;
    EXPECT_TRUE(s.await(s.call("c", "V", "acquire", kTry)).ok(false)) << "b owns the lock now";
    EXPECT_TRUE(gives(s.await(s.call("b", "V", "value")), 2)) << "nothing rolled back";
    EXPECT_TRUE(s.await(s.call("b", "V", "release")).ok(nullptr));
    EXPECT_TRUE(gives(s.await(s.call("c", "V", "value")), 2));
  }
  {
    SCOPED_TRACE("an access through the wrapper");
    Scenario s;
    s.object("V", "Value", value_args("i", 1)).object("A", "Array", array_args("i", 2));
    s.actor("a").actor("b").actor("c");
    s.needs_feature("kill").needs_feature("nonblocking");
    MPSPEC_START(s);
    ASSERT_TRUE(s.await(s.call("a", "V", "acquire")).ok(true));
    ASSERT_TRUE(s.await(s.call("a", "A", "acquire")).ok(true));
    ASSERT_TRUE(s.await(s.call("a", "V", "set_value", set(3))).ok());
    s.kill("a");
    EXPECT_TRUE(s.await(s.call("b", "V", "value")).raised("OwnerDied"));
    EXPECT_TRUE(s.await(s.call("c", "V", "acquire", kTry)).ok(true)) << "the lock is free again";
    EXPECT_TRUE(s.await(s.call("c", "V", "release")).ok(nullptr));
    EXPECT_TRUE(gives(s.await(s.call("b", "V", "value")), 3)) << "the next access proceeds";
    EXPECT_TRUE(s.await(s.call("b", "A", "setslice", slice_set(nullptr, nullptr, nullptr, {1, 2})))
                    .raised("OwnerDied"))
        << "A's lock was held by the dead process too";
    EXPECT_TRUE(
        s.await(s.call("c", "A", "setslice", slice_set(nullptr, nullptr, nullptr, {3, 4}))).ok());
    EXPECT_TRUE(
        gives(s.await(s.call("b", "A", "getslice", slice(nullptr, nullptr))), Json::array({3, 4})));
  }
}

}  // namespace
}  // namespace mpspec
