// Unit tests of mp::Value and the pickle codec (mp/codec.hpp).
//
// The CPython tests run every interpreter the build found (MP_CODEC_TEST_PYTHONS,
// colon-separated; the environment variable of the same name overrides it)
// once per test on a whole table: Python evaluates each value, pickles it at
// protocols 0-5, loads libmp's pickles and compares them with strict,
// type-sensitive equality, and prints its repr. The test then checks
//   - pickle_loads(CPython's pickle) == value, protocols 0-5;
//   - pickle_dumps(value, p) == CPython's pickle, byte for byte, p = 2-5;
//   - CPython loads pickle_dumps(value, p) as the same value, p = 2-5;
//   - Value::repr() == Python's repr().
#include "mp/codec.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "mp/errors.hpp"
#include "mp/value.hpp"
#include "test_util.hpp"

using namespace std::string_literals;

#ifdef MP_HAVE_RAPIDCHECK
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#endif

namespace {

using mp::Bytes;
using mp::Dict;
using mp::Value;

// ---------------------------------------------------------------------------
// Helpers.

std::vector<std::byte> raw(std::string_view s) {
  std::vector<std::byte> out(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
  return out;
}

std::string hex(std::span<const std::byte> b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::byte x : b) {
    out += kHex[static_cast<unsigned>(x) >> 4];
    out += kHex[static_cast<unsigned>(x) & 0xf];
  }
  return out;
}

std::vector<std::byte> unhex(std::string_view h) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<std::byte>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

Value loads(std::string_view pickle) { return mp::pickle_loads(raw(pickle)); }

std::string dumps_hex(const Value& v, int protocol) { return hex(mp::pickle_dumps(v, protocol)); }

// A string of `n` characters, distinct for distinct `seed`s.
std::string text(std::size_t n, int seed, char fill = 'x') {
  std::string s = std::to_string(seed) + ":";
  s.resize(n, fill);
  return s;
}

Value nested_lists(std::size_t depth, Value leaf = Value()) {
  Value v = std::move(leaf);
  for (std::size_t i = 0; i < depth; ++i) v = Value::list({std::move(v)});
  return v;
}

// Expects `f` to throw exactly E (an mp::Error of kind `kind`).
template <class E>
void expect_error(const std::function<void()>& f, const char* kind, const std::string& what = "") {
  try {
    f();
    ADD_FAILURE() << "expected " << kind << " (" << what << ")";
  } catch (const E& e) {
    EXPECT_STREQ(e.kind(), kind) << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected " << kind << ", got " << e.what() << " (" << what << ")";
  }
}

void expect_value_error(std::string_view pickle, const std::string& what = "") {
  expect_error<mp::ValueError>([&] { loads(pickle); }, "ValueError", what);
}

bool contains_nan(const Value& v) {
  if (v.is_float()) return std::isnan(v.as_float());
  if (v.is_list()) {
    for (const Value& x : v.as_list()) {
      if (contains_nan(x)) return true;
    }
  }
  if (v.is_dict()) {
    for (const auto& [k, x] : v.as_dict()) {
      if (contains_nan(x)) return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------
// Running CPython.

// The Python side of the comparison. Input lines: "<mode>\t<expr>\t<hex2>
// \t<hex3>\t<hex4>\t<hex5>" (hex '-' when libmp has no pickle to check).
// Mode F: the value is rebuilt from fresh objects, so that it shares no str
// or bytes object except CPython's singletons (as a Value); mode S: the
// expression's value as it is (it may share objects on purpose). Output line:
// six pickles (hex, or "ERR:<exception>"), the result of loading each of
// libmp's pickles ('1' equal, '0' different, 'E' error, '-' none), the hex of
// repr(value).
constexpr std::string_view kPythonScript = R"PY(
import collections, datetime, fractions, pickle, struct, sys
inf = float('inf')
nan = float('nan')

def deep(n, leaf=None):
    v = leaf
    for _ in range(n):
        v = [v]
    return v

def fresh(v):
    t = type(v)
    if t is str:
        return (v + '\x00')[:-1]
    if t is bytes:
        return (v + b'\x00')[:-1]
    if t is list:
        return [fresh(x) for x in v]
    if t is dict:
        return {fresh(k): fresh(x) for k, x in v.items()}
    return v

def strict_eq(a, b):
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(strict_eq(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(strict_eq(a[k], b[k]) for k in a)
    if type(a) is float:
        return struct.pack('<d', a) == struct.pack('<d', b)
    return a == b

sys.setrecursionlimit(10000)
with open(sys.argv[1], encoding='utf-8') as f, open(sys.argv[2], 'w') as out:
    for line in f:
        fields = line.rstrip('\n').split('\t')
        mode, expr, ours = fields[0], fields[1], fields[2:]
        v = eval(expr)
        if mode == 'F':
            v = fresh(v)
        res = []
        for p in range(6):
            try:
                res.append(pickle.dumps(v, p).hex() if p <= pickle.HIGHEST_PROTOCOL else 'ERR:protocol')
            except Exception as e:
                res.append('ERR:' + type(e).__name__)
        checks = ''
        for h in ours:
            if h == '-':
                checks += '-'
                continue
            try:
                checks += '1' if strict_eq(pickle.loads(bytes.fromhex(h)), v) else '0'
            except Exception:
                checks += 'E'
        try:
            r = repr(v).encode('utf-8', 'surrogatepass').hex()
        except Exception:
            r = '-'
        out.write(' '.join(res) + ' ' + (checks or '-') + ' ' + (r or '-') + '\n')
)PY";

struct PyResult {
  std::vector<std::string> pickles;  // hex per protocol 0-5, or "ERR:..."
  std::string checks;
  std::string repr;
};

struct PyCase {
  char mode;                      // 'F' or 'S'
  std::string expr;               // a Python expression
  std::vector<std::string> ours;  // hex for protocols 2-5 (or empty)
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

std::vector<std::string> pythons() {
  std::string list;
  if (const char* env = std::getenv("MP_CODEC_TEST_PYTHONS")) {
    list = env;
  } else {
#ifdef MP_CODEC_TEST_PYTHONS
    list = MP_CODEC_TEST_PYTHONS;
#endif
  }
  std::vector<std::string> out;
  for (const std::string& p : split(list, ':')) {
    if (!p.empty() && access(p.c_str(), X_OK) == 0) out.push_back(p);
  }
  return out;
}

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "mp_codec_test.XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::filesystem::path operator/(const char* name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Runs `python` on all cases at once.
std::vector<PyResult> run_python(const std::string& python, const std::vector<PyCase>& cases) {
  TempDir dir;
  {
    std::ofstream script(dir / "oracle.py");
    script << kPythonScript;
    std::ofstream in(dir / "in.txt", std::ios::binary);
    for (const PyCase& c : cases) {
      in << c.mode << '\t' << c.expr;
      for (int p = 2; p <= 5; ++p) {
        in << '\t' << (c.ours.empty() ? std::string("-") : c.ours[static_cast<std::size_t>(p - 2)]);
      }
      in << '\n';
    }
  }
  const std::string cmd = "'" + python + "' '" + (dir / "oracle.py").string() + "' '" +
                          (dir / "in.txt").string() + "' '" + (dir / "out.txt").string() + "' 2>'" +
                          (dir / "err.txt").string() + "'";
  const int rc = std::system(cmd.c_str());
  std::vector<PyResult> results;
  if (rc != 0) {
    std::ifstream err(dir / "err.txt");
    std::stringstream ss;
    ss << err.rdbuf();
    ADD_FAILURE() << python << " failed (" << rc << "):\n" << ss.str();
    return results;
  }
  std::ifstream out(dir / "out.txt");
  std::string line;
  while (std::getline(out, line)) {
    const std::vector<std::string> f = split(line, ' ');
    if (f.size() != 8) {
      ADD_FAILURE() << "bad oracle line: " << line.substr(0, 200);
      continue;
    }
    results.push_back({{f.begin(), f.begin() + 6}, f[6], f[7]});
  }
  EXPECT_EQ(results.size(), cases.size()) << python;
  return results;
}

std::string unhex_text(const std::string& h) {
  std::string out;
  for (std::byte b : unhex(h)) out += static_cast<char>(b);
  return out;
}

// ---------------------------------------------------------------------------
// The table of values compared with CPython.

struct Entry {
  std::string name;
  Value value;
  std::string expr;            // Python expression; "" = value.repr()
  bool byte_identical = true;  // pickle_dumps == pickle.dumps at 2-5
};

std::vector<Entry> table() {
  std::vector<Entry> t;
  auto add = [&](std::string name, Value v, std::string expr = "", bool identical = true) {
    t.push_back({std::move(name), std::move(v), std::move(expr), identical});
  };
  add("none", Value());
  add("true", true);
  add("false", false);
  const std::int64_t ints[] = {0,
                               1,
                               127,
                               128,
                               255,
                               256,
                               32767,
                               32768,
                               65535,
                               65536,
                               (1 << 23),
                               0x7fffffff,
                               -1,
                               -128,
                               -255,
                               -256,
                               -32768,
                               -65536,
                               -0x7fffffff - 1,
                               0x80000000LL,
                               -0x80000001LL,
                               0xffffffffLL,
                               0x100000000LL,
                               -0x100000000LL,
                               1LL << 40,
                               -(1LL << 40),
                               (1LL << 47),
                               (1LL << 55),
                               (1LL << 56) - 1,
                               -(1LL << 55),
                               -(1LL << 55) - 1,
                               std::numeric_limits<std::int64_t>::max(),
                               std::numeric_limits<std::int64_t>::min(),
                               std::numeric_limits<std::int64_t>::min() + 1};
  for (std::int64_t i : ints) add("int " + std::to_string(i), i);
  const double floats[] = {0.0,
                           -0.0,
                           1.0,
                           1.5,
                           -2.25,
                           0.1,
                           1.0 / 3,
                           1e15,
                           1e16,
                           123456789012345678.0,
                           1e-4,
                           1e-5,
                           1.5e300,
                           -1.5e-300,
                           5e-324,
                           std::numeric_limits<double>::max(),
                           std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity()};
  for (double d : floats) add("float " + Value(d).repr(), d);
  add("str empty", "");
  add("str a", "a");
  add("str abc", "abc");
  add("str quote", "it's");
  add("str dquote", "say \"hi\"");
  add("str both quotes", "both ' and \"");
  add("str escapes", "tab\tnl\ncr\r back\\slash");
  add("str controls", std::string("\x00\x01\x1f\x7f", 4));
  add("str latin1", "\xc3\xa9\xc3\xbf");  // éÿ
  add("str e-acute", "\xc3\xa9");         // é: a singleton
  add("str euro", "\xe2\x82\xac");        // €
  add("str emoji", "\xf0\x9f\x98\x80");   // U+1F600
  add("str mixed", "ascii \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  add("str nbsp",
      "a\xc2\xa0"
      "b");
  add("str 255 bytes", text(255, 1));
  add("str 256 bytes", text(256, 2));
  add("str 65535 bytes", text(65535, 3));
  add("str 70000 bytes", text(70000, 4));
  add("bytes empty", Value::bytes(""));
  add("bytes one", Value::bytes(std::string_view("\x00", 1)));
  add("bytes abc", Value::bytes("abc"));
  add("bytes quotes", Value::bytes("'\"\\"));
  {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    add("bytes 0-255", Value::bytes(all));
  }
  add("bytes 255", Value::bytes(text(255, 5)));
  add("bytes 256", Value::bytes(text(256, 6)));
  add("bytes 70000", Value::bytes(text(70000, 7)));
  add("list empty", Value::list({}));
  add("list one", Value::list({1}));
  add("list two", Value::list({1, "x"}));
  add("list mixed", Value::list({nullptr, true, 2, 3.5, "s", Value::bytes("b"), Value::list({}),
                                 Value::dict({})}));
  for (std::size_t n : {999, 1000, 1001, 2000, 2001}) {
    Value::List l;
    for (std::size_t i = 0; i < n; ++i) l.emplace_back(static_cast<std::int64_t>(i));
    add("list " + std::to_string(n), Value(std::move(l)));
  }
  add("nested lists", Value::list({Value::list({Value::list({})}), Value::list({1})}));
  add("dict empty", Value::dict({}));
  add("dict one", Value::dict({{"a", 1}}));
  add("dict two", Value::dict({{"b", 1}, {"a", 2}}));
  add("dict keys", Value::dict({{"", 0}, {"\xc3\xa9", 1}, {"\xf0\x9f\x98\x80", 2}, {"key", 3}}));
  for (std::size_t n : {999, 1000, 1001, 2000, 2001}) {
    Dict d;
    for (std::size_t i = 0; i < n; ++i) {
      d.insert_or_assign("k" + std::to_string(i), static_cast<std::int64_t>(i));
    }
    add("dict " + std::to_string(n), Value(std::move(d)));
  }
  add("dict nested", Value::dict({{"list", Value::list({1, Value::dict({{"x", nullptr}})})},
                                  {"dict", Value::dict({{"y", Value::bytes("z")}})}}));
  // CPython's singletons are referred back to (BINGET / memo).
  add("singleton str", Value::list({"a", "a", "", "", "\xc3\xa9", "\xc3\xa9"}));
  add("singleton bytes",
      Value::list({Value::bytes("x"), Value::bytes("x"), Value::bytes(""), Value::bytes("")}));
  add("singleton key and value", Value::dict({{"a", "a"}}));
  add("repeated long strings", Value::list({"abc", "abc", "\xe2\x82\xac", "\xe2\x82\xac"}));
  add("repeated long bytes", Value::list({Value::bytes("ab"), Value::bytes("ab")}));
  // Protocol 2 writes bytes with _codecs.encode and shares what CPython shares.
  add("bytes mix",
      Value::list({Value::bytes("ab"), Value::bytes("cd"), Value::bytes(""), Value::bytes(""),
                   Value::bytes("\xff"), "\xc3\xbf", Value::bytes("a"), "a", "latin1"}));
  // Framing: frames are cut at 64 KiB, at the start of a save().
  {
    Value::List l;
    for (int i = 0; i < 1400; ++i) l.emplace_back(text(100, i, ' '));
    l.emplace_back(1);
    add("frames list", Value(std::move(l)));
  }
  {
    Value::List outer;
    for (int j = 0; j < 2; ++j) {
      Value::List inner;
      for (int i = 0; i < 700; ++i) inner.emplace_back(text(100, j * 1000 + i, ' '));
      outer.emplace_back(std::move(inner));
    }
    add("frames nested", Value(std::move(outer)));
  }
  {
    Dict d;
    for (int i = 0; i < 700; ++i) d.insert_or_assign(text(5, i, ' '), text(100, i, '-'));
    add("frames dict", Value::list({Value(d), Value(d)}));
  }
  add("frames boundary 65535", Value::list({text(65535, 8), "y"}));
  add("frames boundary 65536", Value::list({text(65536, 9), "y"}));
  add("frames big bytes", Value::list({Value::bytes(text(65536, 10)), Value::bytes("zz")}));
  add("frames big then small", Value::list({1, text(100000, 11), 2, Value::bytes(text(9, 12))}));
  add("deep 400", nested_lists(400, 7), "deep(400, 7)");
  add("memo > 255 entries", [] {
    Value::List l;
    for (int i = 0; i < 300; ++i) l.emplace_back(text(3, i));
    l.emplace_back("a");
    l.emplace_back("a");
    return Value(std::move(l));
  }());
  return t;
}

TEST(CodecPython, TableMatchesCPython) {
  const std::vector<std::string> pys = pythons();
  if (pys.empty()) GTEST_SKIP() << "no python3 found";
  const std::vector<Entry> entries = table();
  std::vector<PyCase> cases;
  for (const Entry& e : entries) {
    PyCase c{'F', e.expr.empty() ? e.value.repr() : e.expr, {}};
    for (int p = 2; p <= 5; ++p) c.ours.push_back(dumps_hex(e.value, p));
    cases.push_back(std::move(c));
  }
  for (const std::string& py : pys) {
    SCOPED_TRACE(py);
    const std::vector<PyResult> results = run_python(py, cases);
    if (results.size() != cases.size()) continue;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const Entry& e = entries[i];
      const PyResult& r = results[i];
      SCOPED_TRACE(e.name);
      for (int p = 0; p <= 5; ++p) {
        const std::string& h = r.pickles[static_cast<std::size_t>(p)];
        if (h == "ERR:protocol") continue;
        ASSERT_NE(h.substr(0, 4), "ERR:") << "protocol " << p << ": " << h;
        EXPECT_EQ(mp::pickle_loads(unhex(h)), e.value) << "loads of CPython's protocol " << p;
        if (p >= 2 && e.byte_identical) {
          EXPECT_EQ(cases[i].ours[static_cast<std::size_t>(p - 2)], h) << "dumps, protocol " << p;
        }
      }
      EXPECT_EQ(r.checks, "1111") << "CPython loading libmp's pickles at protocols 2-5";
      if (e.expr.empty() && r.repr != "-") {
        EXPECT_EQ(e.value.repr(), unhex_text(r.repr));
      }
    }
  }
}

// Random values (the same every run), compared with CPython as the table is.
Value random_value(std::mt19937_64& rng, int depth) {
  std::uniform_int_distribution<int> kind(0, depth > 0 ? 9 : 6);
  const auto random_text = [&] {
    std::uniform_int_distribution<int> len(0, 6), range(0, 5);
    std::string s;
    const int n = len(rng);
    for (int i = 0; i < n; ++i) {
      char32_t cp;
      switch (range(rng)) {
        case 0:
          cp = std::uniform_int_distribution<char32_t>(0x20, 0x7e)(rng);
          break;
        case 1:
          cp = std::uniform_int_distribution<char32_t>('a', 'c')(rng);
          break;
        case 2:
          cp = std::uniform_int_distribution<char32_t>(0xa1, 0xff)(rng);
          break;
        case 3:
          cp = std::uniform_int_distribution<char32_t>(0x100, 0x7ff)(rng);
          break;
        case 4:
          cp = std::uniform_int_distribution<char32_t>(0x4e00, 0x4e10)(rng);
          break;
        default:
          cp = std::uniform_int_distribution<char32_t>(0x1f600, 0x1f610)(rng);
          break;
      }
      Value tmp;
      std::string enc;
      if (cp < 0x80) {
        enc += static_cast<char>(cp);
      } else if (cp < 0x800) {
        enc += static_cast<char>(0xc0 | (cp >> 6));
        enc += static_cast<char>(0x80 | (cp & 0x3f));
      } else if (cp < 0x10000) {
        enc += static_cast<char>(0xe0 | (cp >> 12));
        enc += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        enc += static_cast<char>(0x80 | (cp & 0x3f));
      } else {
        enc += static_cast<char>(0xf0 | (cp >> 18));
        enc += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
        enc += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        enc += static_cast<char>(0x80 | (cp & 0x3f));
      }
      s += enc;
    }
    return s;
  };
  switch (kind(rng)) {
    case 0:
      return Value();
    case 1:
      return Value(std::uniform_int_distribution<int>(0, 1)(rng) == 1);
    case 2: {
      const int bits = std::uniform_int_distribution<int>(0, 63)(rng);
      const auto v = static_cast<std::int64_t>(rng() >> (63 - bits));
      return Value(std::uniform_int_distribution<int>(0, 1)(rng) ? v : -v - 1);
    }
    case 3: {
      double d;
      do {
        d = std::bit_cast<double>(rng());
      } while (std::isnan(d));
      return Value(std::uniform_int_distribution<int>(0, 1)(rng) ? d : std::ldexp(d, -1000));
    }
    case 4:
    case 5:
      return Value(random_text());
    case 6: {
      std::string s = random_text();
      return Value::bytes(s);
    }
    case 7:
    case 8: {
      Value::List l;
      const int n = std::uniform_int_distribution<int>(0, 5)(rng);
      for (int i = 0; i < n; ++i) l.push_back(random_value(rng, depth - 1));
      return Value(std::move(l));
    }
    default: {
      Dict d;
      const int n = std::uniform_int_distribution<int>(0, 5)(rng);
      for (int i = 0; i < n; ++i) d.insert_or_assign(random_text(), random_value(rng, depth - 1));
      return Value(std::move(d));
    }
  }
}

TEST(CodecPython, RandomValuesMatchCPython) {
  const std::vector<std::string> pys = pythons();
  if (pys.empty()) GTEST_SKIP() << "no python3 found";
  std::mt19937_64 rng(20240613);
  std::vector<Value> values;
  std::vector<PyCase> cases;
  for (int i = 0; i < 400; ++i) {
    values.push_back(random_value(rng, 4));
    PyCase c{'F', values.back().repr(), {}};
    for (int p = 2; p <= 5; ++p) c.ours.push_back(dumps_hex(values.back(), p));
    cases.push_back(std::move(c));
  }
  for (const std::string& py : pys) {
    SCOPED_TRACE(py);
    const std::vector<PyResult> results = run_python(py, cases);
    if (results.size() != cases.size()) continue;
    for (std::size_t i = 0; i < values.size(); ++i) {
      SCOPED_TRACE(cases[i].expr);
      for (int p = 0; p <= 5; ++p) {
        const std::string& h = results[i].pickles[static_cast<std::size_t>(p)];
        if (h == "ERR:protocol") continue;
        EXPECT_EQ(mp::pickle_loads(unhex(h)), values[i]) << "protocol " << p;
        if (p >= 2) {
          EXPECT_EQ(cases[i].ours[static_cast<std::size_t>(p - 2)], h) << p;
        }
      }
      EXPECT_EQ(results[i].checks, "1111");
    }
  }
}

// Pickles of Python objects that a Value cannot express: the conversions
// (tuple -> list, bytearray -> bytes), shared and mutated objects, and what
// is refused.
TEST(CodecPython, CPythonOnlyPickles) {
  const std::vector<std::string> pys = pythons();
  if (pys.empty()) GTEST_SKIP() << "no python3 found";
  struct Case {
    std::string expr;
    std::optional<Value> expected;  // nullopt: pickle_loads must throw `kind`
    const char* kind = "ValueError";
  };
  const std::vector<Case> table = {
      {"()", Value::list({})},
      {"(1,)", Value::list({1})},
      {"(1, 'a')", Value::list({1, "a"})},
      {"(1, 2, 3)", Value::list({1, 2, 3})},
      {"(1, 2, 3, 4)", Value::list({1, 2, 3, 4})},
      {"{'t': ((), (None,))}",
       Value::dict({{"t", Value::list({Value::list({}), Value::list({nullptr})})}})},
      {"bytearray(b'abc')", Value::bytes("abc")},
      {"bytearray()", Value::bytes("")},
      {"bytearray(b'\\xff\\x00')", Value::bytes(std::string_view("\xff\x00", 2))},
      {"[bytearray(b'x'), b'x']", Value::list({Value::bytes("x"), Value::bytes("x")})},
      {"(lambda x: [x, x])([1, 'two'])",
       Value::list({Value::list({1, "two"}), Value::list({1, "two"})})},
      {"(lambda s: [s, s, {s: s}])('shared string')",
       Value::list(
           {"shared string", "shared string", Value::dict({{"shared string", "shared string"}})})},
      {"(lambda b: [b, b])(b'shared bytes')",
       Value::list({Value::bytes("shared bytes"), Value::bytes("shared bytes")})},
      {"(lambda d: {'a': d, 'b': [d]})({'k': 1})",
       Value::dict(
           {{"a", Value::dict({{"k", 1}})}, {"b", Value::list({Value::dict({{"k", 1}})})}})},
      {"2**63 - 1", std::numeric_limits<std::int64_t>::max()},
      {"-2**63", std::numeric_limits<std::int64_t>::min()},
      {"2**63", std::nullopt, "OverflowError"},
      {"-2**63 - 1", std::nullopt, "OverflowError"},
      {"10**30", std::nullopt, "OverflowError"},
      {"{1, 2}", std::nullopt},
      {"frozenset()", std::nullopt},
      {"1.5j", std::nullopt},
      {"collections.OrderedDict(a=1)", std::nullopt},
      {"datetime.date(2020, 1, 1)", std::nullopt},
      {"fractions.Fraction(1, 3)", std::nullopt},
      {"{1: 'int key'}", std::nullopt},
      {"{('t',): 'tuple key'}", std::nullopt},
      {"'\\ud800'", std::nullopt},
      {"(lambda l: (l.append(l), l)[1])([])", std::nullopt},
      {"(lambda d: (d.__setitem__('me', d), d)[1])({})", std::nullopt},
      {"[len]", std::nullopt},
  };
  std::vector<PyCase> cases;
  for (const Case& c : table) cases.push_back({'S', c.expr, {}});
  for (const std::string& py : pys) {
    SCOPED_TRACE(py);
    const std::vector<PyResult> results = run_python(py, cases);
    if (results.size() != cases.size()) continue;
    for (std::size_t i = 0; i < table.size(); ++i) {
      const Case& c = table[i];
      for (int p = 0; p <= 5; ++p) {
        const std::string& h = results[i].pickles[static_cast<std::size_t>(p)];
        if (h == "ERR:protocol") continue;
        SCOPED_TRACE(c.expr + " protocol " + std::to_string(p));
        ASSERT_NE(h.substr(0, 4), "ERR:") << h;
        const std::vector<std::byte> bytes = unhex(h);
        if (c.expected) {
          EXPECT_EQ(mp::pickle_loads(bytes), *c.expected);
        } else if (std::string_view(c.kind) == "OverflowError") {
          expect_error<mp::OverflowError>([&] { mp::pickle_loads(bytes); }, c.kind);
        } else {
          expect_error<mp::ValueError>([&] { mp::pickle_loads(bytes); }, c.kind);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// mp::Value.

TEST(MpValue, ConstructorsAndAccessors) {
  EXPECT_TRUE(Value().is_none());
  EXPECT_TRUE(Value(nullptr).is_none());
  EXPECT_EQ(Value(true).type(), Value::Type::kBool);
  EXPECT_EQ(Value(7).as_int(), 7);
  EXPECT_EQ(Value(std::uint8_t{200}).as_int(), 200);
  EXPECT_EQ(Value(std::uint64_t{1} << 63 >> 1).as_int(), std::int64_t{1} << 62);
  EXPECT_EQ(Value(-5L).as_int(), -5);
  EXPECT_EQ(Value(2.5).as_float(), 2.5);
  EXPECT_EQ(Value(2.5f).as_float(), 2.5);
  EXPECT_EQ(Value("abc").as_string(), "abc");
  EXPECT_EQ(Value(std::string("abc")).as_string(), "abc");
  EXPECT_EQ(Value(std::string_view("abc")).as_string(), "abc");
  EXPECT_EQ(Value::bytes(std::string_view("a\0b", 3)).as_bytes().size(), 3u);
  EXPECT_EQ(Value::list({1, 2}).as_list().size(), 2u);
  EXPECT_EQ(Value::dict({{"a", 1}}).as_dict().at("a"), Value(1));
  EXPECT_STREQ(Value().type_name(), "NoneType");
  EXPECT_STREQ(Value::bytes("").type_name(), "bytes");
  EXPECT_STREQ(Value::dict({}).type_name(), "dict");

  Value v = Value::list({1});
  v.as_list().push_back("x");
  EXPECT_EQ(v, Value::list({1, "x"}));
  ASSERT_NE(v.get_if<Value::List>(), nullptr);
  EXPECT_EQ(v.get_if<std::string>(), nullptr);
  EXPECT_EQ(Value(3).get_if<std::int64_t>() != nullptr, true);
}

TEST(MpValue, WrongTypeThrowsTypeError) {
  expect_error<mp::TypeError>([] { Value(1).as_float(); }, "TypeError");
  expect_error<mp::TypeError>([] { Value(1.0).as_int(); }, "TypeError");
  expect_error<mp::TypeError>([] { Value(true).as_int(); }, "TypeError");
  expect_error<mp::TypeError>([] { Value("s").as_bytes(); }, "TypeError");
  expect_error<mp::TypeError>([] { Value().as_list(); }, "TypeError");
  Value v = 1;
  expect_error<mp::TypeError>([&] { v.as_dict(); }, "TypeError");
  try {
    Value("s").as_int();
  } catch (const mp::TypeError& e) {
    EXPECT_STREQ(e.what(), "mp::Value holds str, not int");
  }
}

TEST(MpValue, UnsignedAboveInt64ThrowsOverflowError) {
  expect_error<mp::OverflowError>([] { Value(std::numeric_limits<std::uint64_t>::max()); },
                                  "OverflowError");
  expect_error<mp::OverflowError>([] { Value((std::uint64_t{1} << 63)); }, "OverflowError");
  EXPECT_EQ(Value(std::uint64_t{0x7fffffffffffffff}).as_int(),
            std::numeric_limits<std::int64_t>::max());
}

TEST(MpValue, EqualityIsStructuralAndTypeSensitive) {
  EXPECT_NE(Value(1), Value(1.0));
  EXPECT_NE(Value(1), Value(true));
  EXPECT_NE(Value(0), Value(false));
  EXPECT_NE(Value(), Value(0));
  EXPECT_NE(Value("a"), Value::bytes("a"));
  EXPECT_NE(Value::list({}), Value::dict({}));
  EXPECT_EQ(Value(0.0), Value(-0.0));  // as in Python
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NE(Value(nan), Value(nan));
  EXPECT_EQ(Value::list({1, Value::list({"a"})}), Value::list({1, Value::list({"a"})}));
  EXPECT_NE(Value::list({1, 2}), Value::list({2, 1}));
  // Dict equality ignores order.
  EXPECT_EQ(Value::dict({{"a", 1}, {"b", 2}, {"c", 3}}),
            Value::dict({{"c", 3}, {"a", 1}, {"b", 2}}));
  EXPECT_NE(Value::dict({{"a", 1}, {"b", 2}}), Value::dict({{"b", 2}, {"a", 3}}));
  EXPECT_NE(Value::dict({{"a", 1}}), Value::dict({{"a", 1}, {"b", 2}}));
  EXPECT_NE(Value::dict({{"a", 1}}), Value::dict({{"b", 1}}));
}

TEST(MpValue, DictKeepsInsertionOrderAndUniqueKeys) {
  Dict d{{"a", 1}, {"b", 2}, {"a", 3}};  // as dict([...]): first place, last value
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d.items()[0].first, "a");
  EXPECT_EQ(d.items()[0].second, Value(3));
  EXPECT_EQ(d.items()[1].first, "b");
  d["c"] = "x";
  EXPECT_EQ(d.items().back().first, "c");
  d["a"] = 10;  // in place
  EXPECT_EQ(d.items()[0].second, Value(10));
  EXPECT_FALSE(d.insert_or_assign("b", 20));
  EXPECT_TRUE(d.insert_or_assign("d", 30));
  EXPECT_EQ(Value(d).repr(), "{'a': 10, 'b': 20, 'c': 'x', 'd': 30}");
  EXPECT_TRUE(d.erase("b"));
  EXPECT_FALSE(d.erase("b"));
  EXPECT_EQ(Value(d).repr(), "{'a': 10, 'c': 'x', 'd': 30}");
  EXPECT_TRUE(d.contains("a"));
  EXPECT_EQ(d.find("zz"), nullptr);
  EXPECT_THROW(d.at("zz"), std::out_of_range);
  const Dict& cd = d;
  EXPECT_EQ(cd.at("c"), Value("x"));
  // The hashed path of the constructor (more than 16 items).
  std::vector<Dict::Item> items;
  for (int i = 0; i < 100; ++i) items.emplace_back("k" + std::to_string(i % 40), i);
  Dict big(std::move(items));
  ASSERT_EQ(big.size(), 40u);
  EXPECT_EQ(big.items()[0].first, "k0");
  EXPECT_EQ(big.at("k0"), Value(80));
  EXPECT_EQ(big.at("k39"), Value(79));
  std::vector<std::string> keys;
  for (const auto& [k, v] : big) keys.push_back(k);
  EXPECT_EQ(keys.front(), "k0");
  EXPECT_EQ(keys.back(), "k39");
}

TEST(MpValue, ReprIsPythonSyntax) {
  EXPECT_EQ(Value().repr(), "None");
  EXPECT_EQ(Value(true).repr(), "True");
  EXPECT_EQ(Value(false).repr(), "False");
  EXPECT_EQ(Value(-42).repr(), "-42");
  EXPECT_EQ(Value(1.0).repr(), "1.0");
  EXPECT_EQ(Value(-0.0).repr(), "-0.0");
  EXPECT_EQ(Value(0.1).repr(), "0.1");
  EXPECT_EQ(Value(1e16).repr(), "1e+16");
  EXPECT_EQ(Value(1e15).repr(), "1000000000000000.0");
  EXPECT_EQ(Value(1e-5).repr(), "1e-05");
  EXPECT_EQ(Value(0.0001).repr(), "0.0001");
  EXPECT_EQ(Value(1.5e300).repr(), "1.5e+300");
  EXPECT_EQ(Value(123.456).repr(), "123.456");
  EXPECT_EQ(Value(std::numeric_limits<double>::infinity()).repr(), "inf");
  EXPECT_EQ(Value(std::numeric_limits<double>::quiet_NaN()).repr(), "nan");
  EXPECT_EQ(Value("it's").repr(), "\"it's\"");
  EXPECT_EQ(Value("a'b\"c").repr(), "'a\\'b\"c'");
  EXPECT_EQ(Value(std::string("\t\n\r\x00\x7f\\", 6)).repr(), "'\\t\\n\\r\\x00\\x7f\\\\'");
  EXPECT_EQ(Value("\xc3\xa9\xe2\x82\xac").repr(), "'\xc3\xa9\xe2\x82\xac'");
  EXPECT_EQ(Value("\xc2\xa0\xe2\x80\xa8").repr(), "'\\xa0\\u2028'");
  EXPECT_EQ(Value("\xff").repr(), "'\\xff'");  // not UTF-8: shown byte by byte
  EXPECT_EQ(Value::bytes(std::string_view("a\x00\xff'", 4)).repr(), "b\"a\\x00\\xff'\"");
  EXPECT_EQ(Value::list({1, "a", Value::list({})}).repr(), "[1, 'a', []]");
  EXPECT_EQ(Value::dict({{"k", Value::dict({})}, {"n", nullptr}}).repr(), "{'k': {}, 'n': None}");
  std::ostringstream os;
  os << Value::list({true});
  EXPECT_EQ(os.str(), "[True]");
}

// ---------------------------------------------------------------------------
// pickle_dumps / pickle_loads without CPython.

TEST(Codec, KnownPickles) {
  // multiprocessing's own example (shared notes, cpython-semantics §2.2).
  EXPECT_EQ(dumps_hex(Value::list({1, "x"}), 4), "8004950b000000000000005d94284b018c017894652e");
  EXPECT_EQ(dumps_hex(Value(), 4), "80044e2e");  // a frame under 4 bytes is dropped
  EXPECT_EQ(dumps_hex(Value(1000), 4), "80049504000000000000004de8032e");
  EXPECT_EQ(dumps_hex(Value(-1), 2), "80024affffffff2e");
  EXPECT_EQ(dumps_hex(Value(std::int64_t{1} << 31), 3), "80038a0500000080002e");
  EXPECT_EQ(dumps_hex(Value::bytes("abc"), 2),
            "8002635f636f646563730a656e636f64650a71005803000000616263710158060000006c6174696e3171"
            "028671035271042e");
  EXPECT_EQ(dumps_hex(Value::bytes(""), 2),
            "8002635f5f6275696c74696e5f5f0a62797465730a7100295271012e");
  EXPECT_EQ(dumps_hex(Value::bytes("abc"), 3), "8003430361626371002e");
  EXPECT_EQ(dumps_hex(Value(1.5), 5), "8005950a00000000000000473ff80000000000002e");
  // A dict of exactly 1000 items ends with an empty MARK/SETITEMS batch.
  Dict d;
  for (int i = 0; i < 1000; ++i) d.insert_or_assign(std::to_string(i), i);
  const std::string h = dumps_hex(Value(d), 4);
  EXPECT_EQ(h.substr(h.size() - 8), "7528752e");
}

TEST(Codec, RoundTripsTheTableAtEveryProtocol) {
  for (const Entry& e : table()) {
    for (int p = 2; p <= 5; ++p) {
      EXPECT_EQ(mp::pickle_loads(mp::pickle_dumps(e.value, p)), e.value) << e.name << " " << p;
    }
  }
}

TEST(Codec, NanAndInfinityAreCarriedBitForBit) {
  const double values[] = {std::numeric_limits<double>::quiet_NaN(),
                           -std::numeric_limits<double>::quiet_NaN(),
                           std::bit_cast<double>(std::uint64_t{0x7ff0000000000001}),
                           std::numeric_limits<double>::infinity(), -0.0};
  for (double d : values) {
    for (int p = 2; p <= 5; ++p) {
      const Value back = mp::pickle_loads(mp::pickle_dumps(d, p));
      EXPECT_EQ(std::bit_cast<std::uint64_t>(back.as_float()), std::bit_cast<std::uint64_t>(d));
    }
  }
  EXPECT_EQ(dumps_hex(std::numeric_limits<double>::quiet_NaN(), 2), "8002477ff80000000000002e");
}

TEST(Codec, DumpsRejectsBadProtocolsInvalidUtf8AndDeepNesting) {
  for (int p : {-1, 0, 1, 6, 100}) {
    expect_error<mp::ValueError>([&] { mp::pickle_dumps(Value(), p); }, "ValueError");
  }
  for (std::string_view bad : {std::string_view("\xff"), std::string_view("\xc3"),
                               std::string_view("\xed\xa0\x80"),         // a surrogate
                               std::string_view("\xc0\xaf"),             // overlong
                               std::string_view("\xf4\x90\x80\x80")}) {  // > U+10FFFF
    expect_error<mp::ValueError>([&] { mp::pickle_dumps(Value(bad), 4); }, "ValueError");
    expect_error<mp::ValueError>(
        [&] {
          mp::pickle_dumps(Value::dict({{std::string(bad), 1}}), 4);
        },
        "ValueError");
  }
  EXPECT_NO_THROW(mp::pickle_dumps(nested_lists(mp::kPickleMaxDepth), 4));
  expect_error<mp::ValueError>([] { mp::pickle_dumps(nested_lists(mp::kPickleMaxDepth + 1), 4); },
                               "ValueError");
}

TEST(Codec, DepthLimitOfLoads) {
  const auto at_limit = mp::pickle_dumps(nested_lists(mp::kPickleMaxDepth), 4);
  EXPECT_EQ(mp::pickle_loads(at_limit), nested_lists(mp::kPickleMaxDepth));
  mp::PickleLoadOptions shallow;
  shallow.max_depth = 3;
  EXPECT_NO_THROW(mp::pickle_loads(mp::pickle_dumps(nested_lists(3), 4), shallow));
  expect_error<mp::ValueError>(
      [&] { mp::pickle_loads(mp::pickle_dumps(nested_lists(4), 4), shallow); }, "ValueError");
  expect_error<mp::ValueError>(
      [&] {
        mp::pickle_loads(mp::pickle_dumps(Value::dict({{"a", nested_lists(3)}}), 4), shallow);
      },
      "ValueError");
  // 100000 nested lists: rejected without deep recursion.
  std::string deep = "\x80\x04";
  deep.append(100000, ']');
  deep.append(99999, 'a');
  deep += '.';
  expect_value_error(deep, "deep");
  // The same through MARK/LIST (protocol 0 style) and tuples.
  std::string marks;
  for (int i = 0; i < 50000; ++i) marks += "(";
  for (int i = 0; i < 50000; ++i) marks += "l";
  expect_value_error(marks + ".", "deep LIST");
  std::string tuples = "]";
  for (int i = 0; i < 50000; ++i) tuples += "\x85";
  expect_value_error(tuples + ".", "deep TUPLE1");
}

TEST(Codec, LoadsProtocols0And1Forms) {
  EXPECT_EQ(loads("I01\n."s), Value(true));
  EXPECT_EQ(loads("I00\n."s), Value(false));
  EXPECT_EQ(loads("I42\n."s), Value(42));
  EXPECT_EQ(loads("I-7\n."s), Value(-7));
  EXPECT_EQ(loads("L1099511627776L\n."s), Value(std::int64_t{1} << 40));
  EXPECT_EQ(loads("L-5\n."s), Value(-5));
  EXPECT_EQ(loads("F1.5\n."s), Value(1.5));
  EXPECT_EQ(loads("F-inf\n."s).as_float(), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(loads("Fnan\n."s).as_float()));
  EXPECT_EQ(loads("Va\\u005c\\u000a\\u20ac\\U0001f600\\u001a\\x\\\\u0041\np0\n."s),
            Value("a\\\n\xe2\x82\xac\xf0\x9f\x98\x80\x1a\\x\\\\u0041"));
  EXPECT_EQ(loads("V\xe9\xff\n."s), Value("\xc3\xa9\xc3\xbf"));  // latin-1 bytes
  EXPECT_EQ(loads("(lp0\nI1\naVx\np1\na."s), Value::list({1, "x"}));
  EXPECT_EQ(loads("(dp0\nVa\np1\nI1\nsVb\np2\ng1\ns."s), Value::dict({{"a", 1}, {"b", "a"}}));
  EXPECT_EQ(loads("(I1\nI2\ntp0\n."s), Value::list({1, 2}));
  EXPECT_EQ(loads("(I1\nI2\nl."s), Value::list({1, 2}));
  EXPECT_EQ(loads("(Va\nI1\nVb\nI2\nd."s), Value::dict({{"a", 1}, {"b", 2}}));
  EXPECT_EQ(loads("c_codecs\nencode\np0\n(Vab\np1\nVlatin1\np2\ntp3\nRp4\n."s), Value::bytes("ab"));
  EXPECT_EQ(loads("ccodecs\nencode\n(Vab\nVlatin-1\ntR."s), Value::bytes("ab"));
  EXPECT_EQ(loads("cbuiltins\nbytes\n)R."s), Value::bytes(""));
}

TEST(Codec, MemoHasPythonReferenceSemantics) {
  // outer = []; a = [] (memo 0); outer.append(a); a.append(1) through the
  // memo afterwards: the change shows inside `outer`, as in Python.
  EXPECT_EQ(loads("\x80\x04]]\x94"
                  "ah\x00K\x01"
                  "a0."s),
            Value::list({Value::list({1})}));
  // DUP shares too.
  EXPECT_EQ(loads("]2K\x01"
                  "a\x86."s),
            Value::list({Value::list({1}), Value::list({1})}));
  EXPECT_EQ(loads("]N2\x86"
                  "a."s),
            Value::list({Value::list({nullptr, nullptr})}));
  // Sparse memo indices up to 2^32 - 1 cost nothing.
  EXPECT_EQ(loads("Nr\xff\xff\xff\xff"
                  "0j\xff\xff\xff\xff."s),
            Value());
  EXPECT_EQ(loads("Np4294967295\n0g4294967295\n."s), Value());
  // PUT overwrites; MEMOIZE uses the number of entries as its index.
  EXPECT_EQ(loads("K\x01q\x05"
                  "0K\x02\x94"
                  "0K\x03\x94"
                  "0h\x01."s),
            Value(2));
  // A repeated dict key keeps its first place and its last value.
  EXPECT_EQ(loads("}(X\x01\x00\x00\x00"
                  "aK\x01X\x01\x00\x00\x00"
                  "bK\x02X\x01\x00\x00\x00"
                  "aK\x03u."s),
            Value::dict({{"a", 3}, {"b", 2}}));
  std::string many = "}(";
  for (int i = 0; i < 40; ++i)
    many += "X\x02\x00\x00\x00k"s + std::string(1, static_cast<char>('A' + i % 20)) + "K" +
            std::string(1, static_cast<char>(i));
  many += "u.";
  const Value d = loads(many);
  ASSERT_EQ(d.as_dict().size(), 20u);
  EXPECT_EQ(d.as_dict().items()[0].first, "kA");
  EXPECT_EQ(d.as_dict().at("kA"), Value(20));
}

TEST(Codec, IntegerEdges) {
  EXPECT_EQ(loads("\x8a\x00."s), Value(0));
  EXPECT_EQ(loads("\x8a\x01\xff."s), Value(-1));
  // Redundant sign-extension bytes are fine.
  EXPECT_EQ(loads(std::string("\x8a\x0a\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00.", 13)), Value(1));
  EXPECT_EQ(loads(std::string("\x8a\x0a\xfe\xff\xff\xff\xff\xff\xff\xff\xff\xff.", 13)), Value(-2));
  EXPECT_EQ(loads(std::string("\x8b\x08\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\x7f.", 14)),
            Value(std::numeric_limits<std::int64_t>::max()));
  const auto overflow = [](std::string_view p) {
    expect_error<mp::OverflowError>([&] { loads(p); }, "OverflowError", hex(raw(p)));
  };
  overflow(std::string("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00.", 12));  // 2^63
  overflow(std::string("\x8a\x09\xff\xff\xff\xff\xff\xff\xff\x7f\xff.", 12));  // -2^63-1
  overflow(std::string("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.", 12));  // 2^64
  overflow("I99999999999999999999\n."s);
  overflow("L-9223372036854775809L\n."s);
  EXPECT_EQ(loads("L-9223372036854775808L\n."s), Value(std::numeric_limits<std::int64_t>::min()));
  expect_value_error("Iabc\n."s);
  expect_value_error("I\n."s);
  expect_value_error("L\n."s);
  expect_value_error("F1.5x\n."s);
  expect_value_error("F\n."s);
}

// ---------------------------------------------------------------------------
// Hostile input.

std::vector<std::vector<std::byte>> sample_pickles() {
  std::vector<std::vector<std::byte>> out;
  const Value samples[] = {
      Value::list({1, "x"}),
      Value::dict({{"a", Value::list({1, 2.5, nullptr, true})},
                   {"b", Value::bytes("bytes")},
                   {"\xc3\xa9", std::numeric_limits<std::int64_t>::min()}}),
      Value::list({Value::bytes("ab"), Value::bytes(""), "a", "a", Value::bytes("\xff")}),
      Value(text(300, 1)),
  };
  for (const Value& v : samples) {
    for (int p = 2; p <= 5; ++p) out.push_back(mp::pickle_dumps(v, p));
  }
  out.push_back(raw("(dp0\nVa\np1\n(lp2\nI1\naF2.5\naL99999999999L\nasVb\np3\ng2\ns."));
  out.push_back(raw("c_codecs\nencode\np0\n(Vab\np1\nVlatin1\np2\ntp3\nRp4\n."));
  return out;
}

TEST(CodecHostile, EveryTruncationIsAValueError) {
  for (const auto& p : sample_pickles()) {
    for (std::size_t n = 0; n < p.size(); ++n) {
      const std::span<const std::byte> prefix(p.data(), n);
      expect_error<mp::ValueError>([&] { mp::pickle_loads(prefix); }, "ValueError",
                                   hex(p) + " cut at " + std::to_string(n));
    }
    EXPECT_NO_THROW(mp::pickle_loads(p));
  }
}

TEST(CodecHostile, HugeLengthsAreRejectedBeforeAllocating) {
  const std::string cases[] = {
      "X\xff\xff\xff\xff"
      "abc."s,
      "\x8d\xff\xff\xff\xff\xff\xff\xff\xff"
      "abc."s,
      "\x8d\x00\x00\x00\x00\x00\x00\x00\x80"
      "abc."s,
      "B\xff\xff\xff\xff"
      "abc."s,
      "\x8e\xff\xff\xff\xff\xff\xff\xff\x7f"
      "abc."s,
      "\x96\xff\xff\xff\xff\xff\xff\xff\xff"
      "abc."s,
      "\x8b\xff\xff\xff\x7f"
      "abc."s,
      "\x8b\xff\xff\xff\xff"
      "abc."s,  // negative length
      "\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff"
      "N."s,
      "\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00"
      "N."s,
      "\x8c\xff"
      "abc."s,
      "C\xff"
      "abc."s,
      "\x8a\xff"
      "abc."s,
  };
  for (const std::string& c : cases) {
    // Lengths are embedded: build each case byte by byte up to its final '.'.
    expect_value_error(c, hex(raw(c)));
  }
}

TEST(CodecHostile, CodeExecutingAndObjectBuildingOpcodesAreRefused) {
  struct Case {
    std::string pickle;
    std::string message;  // a part of what()
  };
  const std::vector<Case> cases = {
      {"cos\nsystem\n(S'echo hi'\ntR."s, "os.system"},
      {"cposix\nsystem\n(Vecho hi\ntR."s, "posix.system"},
      {"c__builtin__\neval\n(V1\ntR."s, "__builtin__.eval"},
      {"cbuiltins\ngetattr\n."s, "builtins.getattr"},
      {"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94."s,
       "os.system"},
      {"\x80\x04N\x8c\x01x\x93."s, "STACK_GLOBAL"},
      {"\x80\x02]K\x01\x85R."s, "REDUCE"},
      {"\x80\x02}}b."s, "BUILD"},
      {"(i__main__\nC\n."s, "INST"},
      {"(cbuiltins\nobject\no."s, "builtins.object"},
      {"(]o."s, "OBJ"},
      {"\x80\x02]]\x81."s, "NEWOBJ"},
      {"\x80\x04]]}\x92."s, "NEWOBJ_EX"},
      {"\x80\x02\x82\x01."s, "EXT1"},
      {"\x80\x02\x83\x01\x00."s, "EXT2"},
      {"\x80\x02\x84\x01\x00\x00\x00."s, "EXT4"},
      {"Pid\n."s, "PERSID"},
      {"NQ."s, "BINPERSID"},
      {"\x80\x04\x8f."s, "EMPTY_SET"},
      {"\x80\x04\x8f(K\x01\x90."s, "EMPTY_SET"},
      {"\x80\x04(\x90."s, "ADDITEMS"},
      {"\x80\x04(K\x01\x91."s, "FROZENSET"},
      {"\x80\x05\x97."s, "NEXT_BUFFER"},
      {"\x80\x05N\x98."s, "READONLY_BUFFER"},
      {"S'py2'\n."s, "STRING"},
      {"T\x03\x00\x00\x00"
       "abc."s,
       "BINSTRING"},
      {"U\x03"
       "abc."s,
       "SHORT_BINSTRING"},
      // The recognised calls, with other arguments.
      {"c_codecs\nencode\n(Vabc\nVutf-8\ntR."s, "REDUCE with arguments"},
      {"c_codecs\nencode\n(Vabc\ntR."s, "REDUCE with arguments"},
      {"c_codecs\nencode\n(V\\u20ac\nVlatin1\ntR."s, "latin-1"},
      {"c__builtin__\nbytes\n(K\x05tR."s, "REDUCE with arguments"},
      {"c__builtin__\nbytes\n]R."s, "not a tuple"},
      {"c__builtin__\nbytes\n."s, "global"},
      {"]c__builtin__\nbytes\na."s, "global"},
      {"c_codecs\nencode\n."s, "global"},
  };
  for (const Case& c : cases) {
    try {
      loads(c.pickle);
      ADD_FAILURE() << "accepted " << hex(raw(c.pickle));
    } catch (const mp::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos)
          << e.what() << " for " << hex(raw(c.pickle));
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

TEST(CodecHostile, MalformedStructureIsAValueError) {
  const std::string cases[] = {
      ""s,            // empty
      "N"s,           // no STOP
      "."s,           // STOP on an empty stack
      "NN."s,         // two objects left
      "(N."s,         // an open MARK
      "N.."s,         // data after STOP
      "N.N"s,         // data after STOP
      "\x80\x06N."s,  // protocol 6
      "\xff."s,       // unknown opcode
      "\x00."s,       // unknown opcode
      "a."s,          // APPEND on an empty stack
      "Na."s,         // APPEND without a list
      "K\x01K\x02"
      "a."s,  // APPEND to an int
      "(K\x01"
      "a."s,   // APPEND: the list is below the mark
      "]e."s,  // APPENDS without a mark
      "(e."s,  // APPENDS: nothing before the mark
      "(K\x01"
      "e."s,  // APPENDS to a non-list
      "](K\x01"
      "u."s,             // SETITEMS on a list
      "}(K\x01u."s,      // odd SETITEMS
      "}K\x01K\x02s."s,  // non-str key
      "}X\x01\x00\x00\x00"
      "as."s,  // SETITEM underflow
      "(K\x01"
      "d."s,  // odd DICT
      "(K\x01K\x02"
      "d."s,        // DICT with an int key
      "]K\x01s."s,  // SETITEM on a list
      "\x85."s,     // TUPLE1 underflow
      "(N\x86."s,   // TUPLE2 across a mark
      "t."s,        // TUPLE without a mark
      "l."s,
      "d."s,
      "0."s,  // POP on an empty stack
      "1."s,  // POP_MARK without a mark
      "2."s,  // DUP on an empty stack
      "(2."s,
      "h\x00."s,  // memo miss
      "j\x05\x00\x00\x00."s,
      "g7\n."s,
      "g-1\n."s,
      "gx\n."s,
      "\x94."s,  // MEMOIZE on an empty stack
      "q\x00."s,
      "(q\x00."s,  // BINPUT across a mark
      "p-1\nN."s,
      "Np-1\n."s,
      "X\x01\x00\x00\x00\xff."s,          // invalid UTF-8
      "X\x03\x00\x00\x00\xed\xa0\x80."s,  // a surrogate
      "\x8c\x02\xc0\xaf."s,               // overlong
      "V\\ud800\n."s,                     // a surrogate through UNICODE
      "V\\U00110000\n."s,
      "V\\u12\n."s,
      "V\\uzzzz\n."s,
      "Vabc"s,  // no end of line
      "]q\x00h\x00"
      "a."s,  // a list containing itself
      "}q\x00X\x01\x00\x00\x00"
      "ah\x00s."s,                          // a dict containing itself
      "]2a."s,                              // DUP + APPEND: itself again
      "\x80\x04N\x8c\x01x\x8c\x01y\x93."s,  // STACK_GLOBAL of a non-allowed name, left over
  };
  for (const std::string& c : cases) expect_value_error(c, hex(raw(c)));
  // Cases with NUL bytes inside.
  expect_value_error(std::string("K\x01q\x00\x00.", 6), "bytes after a complete pickle");
  expect_value_error(std::string("]\x00.", 3), "NUL opcode");
}

TEST(CodecHostile, SharedReferencesCannotExplode) {
  // L0 = []; L(k) = [L(k-1), L(k-1)]; 2^60 leaves after 60 steps.
  std::string p =
      "\x80\x04]\x94"
      "0";
  for (std::uint32_t k = 1; k <= 60; ++k) {
    std::string get = "j";
    for (int i = 0; i < 4; ++i) get += static_cast<char>(((k - 1) >> (8 * i)) & 0xff);
    p += "](" + get + get +
         "e\x94"
         "0";
  }
  p += "j";
  p += std::string("\x3c\x00\x00\x00", 4);
  p += ".";
  expect_value_error(p, "exponential DAG");
  // One 1 MiB string referred to 2000 times: 2 GiB as a tree.
  std::string big = "\x80\x04]\x94(X";
  const std::uint32_t n = 1 << 20;
  for (int i = 0; i < 4; ++i) big += static_cast<char>((n >> (8 * i)) & 0xff);
  big.append(n, 's');
  big += "\x94";
  for (int i = 0; i < 2000; ++i) big += "h\x01";
  big += "e.";
  expect_value_error(big, "shared string");
  // 100 copies (100 MiB) fit the default allowance, not a zero one (which
  // leaves 64 bytes per input byte, 64 MiB here).
  std::string small = "\x80\x04]\x94(X";
  for (int i = 0; i < 4; ++i) small += static_cast<char>((n >> (8 * i)) & 0xff);
  small.append(n, 's');
  small += "\x94";
  for (int i = 0; i < 100; ++i) small += "h\x01";
  small += "e.";
  const Value v = loads(small);
  EXPECT_EQ(v.as_list().size(), 101u);
  mp::PickleLoadOptions tight;
  tight.max_alias_bytes = 0;
  expect_error<mp::ValueError>([&] { mp::pickle_loads(raw(small), tight); }, "ValueError");
}

TEST(CodecHostile, RandomMutationsOnlyThrowValueOrOverflowError) {
  std::mt19937_64 rng(7);
  const auto samples = sample_pickles();
  // Opcodes are likelier than random bytes, to get deeper into the decoder.
  const std::string alphabet =
      "()0123FIJKLMNPQRSTUVXabcdeghijlopqrstuGBC}]"
      "\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96"
      "\x97\x98.\n\x00\x01\xff";
  int decoded = 0;
  const auto check = [&](const std::vector<std::byte>& input) {
    try {
      const Value v = mp::pickle_loads(input);
      ++decoded;
      // Whatever decodes re-encodes and decodes to the same pickle.
      for (int p = 2; p <= 5; ++p) {
        const auto again = mp::pickle_dumps(v, p);
        EXPECT_EQ(mp::pickle_dumps(mp::pickle_loads(again), p), again);
      }
    } catch (const mp::ValueError&) {
    } catch (const mp::OverflowError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "unexpected " << e.what() << " for " << hex(input);
    }
  };
  for (int round = 0; round < 30000; ++round) {
    std::vector<std::byte> input = samples[rng() % samples.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t pos = input.empty() ? 0 : rng() % input.size();
      const auto byte = static_cast<std::byte>(rng() % 2 ? alphabet[rng() % alphabet.size()]
                                                         : static_cast<char>(rng() & 0xff));
      switch (rng() % 4) {
        case 0:
          if (!input.empty()) input[pos] = byte;
          break;
        case 1:
          input.insert(input.begin() + static_cast<std::ptrdiff_t>(pos), byte);
          break;
        case 2:
          if (!input.empty()) input.erase(input.begin() + static_cast<std::ptrdiff_t>(pos));
          break;
        default:
          input.resize(pos);
          break;
      }
    }
    check(input);
  }
  for (int round = 0; round < 30000; ++round) {
    std::vector<std::byte> input(rng() % 40);
    for (auto& b : input) b = static_cast<std::byte>(alphabet[rng() % alphabet.size()]);
    input.push_back(std::byte{'.'});
    check(input);
  }
  EXPECT_GT(decoded, 0);
}

#ifdef MP_HAVE_RAPIDCHECK

rc::Gen<std::string> gen_text() {
  return rc::gen::map(
      rc::gen::container<std::vector<std::uint32_t>>(rc::gen::oneOf(
          rc::gen::inRange<std::uint32_t>(0, 0x80), rc::gen::inRange<std::uint32_t>(0x80, 0x800),
          rc::gen::inRange<std::uint32_t>(0x800, 0xd800),
          rc::gen::inRange<std::uint32_t>(0xe000, 0x10000),
          rc::gen::inRange<std::uint32_t>(0x10000, 0x110000))),
      [](const std::vector<std::uint32_t>& cps) {
        std::string s;
        for (std::uint32_t cp : cps) {
          if (cp < 0x80) {
            s += static_cast<char>(cp);
          } else if (cp < 0x800) {
            s += static_cast<char>(0xc0 | (cp >> 6));
            s += static_cast<char>(0x80 | (cp & 0x3f));
          } else if (cp < 0x10000) {
            s += static_cast<char>(0xe0 | (cp >> 12));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            s += static_cast<char>(0x80 | (cp & 0x3f));
          } else {
            s += static_cast<char>(0xf0 | (cp >> 18));
            s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            s += static_cast<char>(0x80 | (cp & 0x3f));
          }
        }
        return s;
      });
}

rc::Gen<Value> gen_value(int depth) {
  auto scalar = rc::gen::oneOf(
      rc::gen::just(Value()),
      rc::gen::map(rc::gen::arbitrary<bool>(), [](bool b) { return Value(b); }),
      rc::gen::map(rc::gen::arbitrary<std::int64_t>(), [](std::int64_t i) { return Value(i); }),
      rc::gen::map(rc::gen::arbitrary<double>(), [](double d) { return Value(d); }),
      rc::gen::map(gen_text(), [](std::string s) { return Value(std::move(s)); }),
      rc::gen::map(rc::gen::arbitrary<std::string>(),
                   [](const std::string& s) { return Value::bytes(s); }));
  if (depth == 0) return scalar;
  auto sub = gen_value(depth - 1);
  return rc::gen::oneOf(scalar,
                        rc::gen::map(rc::gen::container<std::vector<Value>>(sub),
                                     [](std::vector<Value> l) { return Value(std::move(l)); }),
                        rc::gen::map(rc::gen::container<std::vector<std::pair<std::string, Value>>>(
                                         rc::gen::pair(gen_text(), sub)),
                                     [](std::vector<std::pair<std::string, Value>> items) {
                                       return Value(Dict(std::move(items)));
                                     }));
}

RC_GTEST_PROP(CodecProperty, RoundTripsAtEveryProtocol, ()) {
  // Containers and strings of at most ~16 items keep each case small.
  const Value v = *rc::gen::resize(16, gen_value(3));
  for (int p = 2; p <= 5; ++p) {
    const auto pickle = mp::pickle_dumps(v, p);
    const Value back = mp::pickle_loads(pickle);
    if (!contains_nan(v)) RC_ASSERT(back == v);
    RC_ASSERT(mp::pickle_dumps(back, p) == pickle);
  }
}

#endif  // MP_HAVE_RAPIDCHECK

}  // namespace
