// Unit tests of mp::RawValue, mp::RawArray, mp::SynchronizedValue,
// mp::SynchronizedArray, mp::synchronized and mp::copy
// (spec/sharedctypes/sharedctypes.md). Each test names the clauses it checks.
#include "mp/sharedctypes.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <cstdint>
#include <mutex>
#include <string>

#include "mp/errors.hpp"
#include "test_util.hpp"

namespace {

using mp::RawArray;
using mp::RawValue;
using mp::Slice;
using mp::SynchronizedArray;
using mp::SynchronizedValue;
using mp::Value;
using mp_test::Child;
using mp_test::Pipe;

Value B(std::string_view s) { return Value::bytes(s); }
Value L(std::initializer_list<Value> items) { return Value::list(items); }

// [sharedctypes.typecode.table] [sharedctypes.construct.initial] [sharedctypes.value.read_write]
TEST(SharedCtypes, EveryTypeCodeRoundTrips) {
  struct Case {
    const char* code;
    std::size_t size;
    Value in;
    Value out;
  };
  const Case cases[] = {
      {"b", 1, Value(-100), Value(-100)},
      {"B", 1, Value(200), Value(200)},
      {"h", 2, Value(-30000), Value(-30000)},
      {"H", 2, Value(60000), Value(60000)},
      {"i", 4, Value(-2000000000), Value(-2000000000)},
      {"I", 4, Value(std::int64_t{4000000000}), Value(std::int64_t{4000000000})},
      {"l", 8, Value(INT64_MIN), Value(INT64_MIN)},
      {"L", 8, Value(INT64_MAX), Value(INT64_MAX)},
      {"q", 8, Value(INT64_MIN + 1), Value(INT64_MIN + 1)},
      {"Q", 8, Value(INT64_MAX), Value(INT64_MAX)},
      {"f", 4, Value(-2.25), Value(-2.25)},
      {"d", 8, Value(0.1), Value(0.1)},
      {"c", 1, B("A"), B("A")},
      {"u", 4, Value("\xc3\xa9"), Value("\xc3\xa9")},  // é
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.code);
    EXPECT_EQ(mp::typecode_size(c.code), c.size);
    RawValue raw(c.code, c.in);
    EXPECT_EQ(raw.size_bytes(), c.size);
    EXPECT_EQ(raw.value(), c.out);
    SynchronizedValue sync(c.code, c.in);
    EXPECT_EQ(sync.value(), c.out);
    RawArray arr(c.code, L({c.in, c.in}));
    EXPECT_EQ(arr.size(), 2u);
    EXPECT_EQ(arr.get(1), c.out);
    // The raw object and the array elements read back after a second write.
    raw.set_value(c.in);
    EXPECT_EQ(raw.value(), c.out);
  }
}

// [sharedctypes.typecode.unknown] [sharedctypes.typecode.unknown.kind]
TEST(SharedCtypes, UnknownTypeCodeIsTypeError) {
  for (const char* code : {"z", "g", "?", "w", "", "ii"}) {
    SCOPED_TRACE(code);
    try {
      RawValue v(code);
      ADD_FAILURE() << "accepted";
    } catch (const mp::TypeError& e) {
      EXPECT_STREQ(e.what(), "this type has no size");
      EXPECT_STREQ(e.kind(), "TypeError");
    }
    EXPECT_THROW(RawArray(code, 3), mp::TypeError);
    EXPECT_THROW(SynchronizedValue(code, Value(1)), mp::TypeError);
    EXPECT_THROW(SynchronizedArray(code, Value(3)), mp::TypeError);
  }
}

// [sharedctypes.construct.zero]
TEST(SharedCtypes, DefaultIsZero) {
  EXPECT_EQ(RawValue("i").value(), Value(0));
  EXPECT_EQ(RawValue("d").value(), Value(0.0));
  EXPECT_EQ(RawValue("c").value(), B(std::string_view("\0", 1)));
  EXPECT_EQ(RawValue("u").value(), Value(std::string(1, '\0')));
  EXPECT_EQ(SynchronizedValue("q").value(), Value(0));
}

// [sharedctypes.typecode.float] [sharedctypes.typecode.int_to_float]
TEST(SharedCtypes, FloatConversions) {
  EXPECT_EQ(RawValue("f", Value(0.1)).value().as_float(), 0.10000000149011612);
  EXPECT_EQ(RawValue("f", Value(0.5)).value().as_float(), 0.5);
  EXPECT_EQ(RawValue("d", Value(1)).value(), Value(1.0));
  EXPECT_EQ(RawValue("f", Value(3)).value(), Value(3.0));
  EXPECT_TRUE(std::isinf(RawValue("f", Value(1e300)).value().as_float()));
  EXPECT_EQ(RawValue("d", Value(true)).value(), Value(1.0));  // [sharedctypes.typecode.bool]
}

// [sharedctypes.typecode.range] [sharedctypes.typecode.bool]
TEST(SharedCtypes, IntegersWrapModulo2PowBits) {
  EXPECT_EQ(RawValue("b", Value(200)).value(), Value(-56));
  EXPECT_EQ(RawValue("i", Value(std::int64_t{1} << 40)).value(), Value(0));
  EXPECT_EQ(RawValue("B", Value(-1)).value(), Value(255));
  EXPECT_EQ(RawValue("H", Value(65537)).value(), Value(1));
  EXPECT_EQ(RawValue("h", Value(32768)).value(), Value(-32768));
  EXPECT_EQ(RawValue("I", Value(-1)).value(), Value(std::int64_t{4294967295}));
  EXPECT_EQ(RawValue("i", Value(true)).value(), Value(1));
  // 'Q' -1 is 2^64 - 1: outside the value domain when read back.
  RawValue q("Q", Value(-1));
  EXPECT_THROW(q.value(), mp::OverflowError);
  EXPECT_EQ(q.get<std::uint64_t>(), UINT64_MAX);
}

// [sharedctypes.typecode.char] [sharedctypes.typecode.wchar] [sharedctypes.typecode.wrong_type]
TEST(SharedCtypes, WrongTypesAreTypeErrorsAndChangeNothing) {
  RawValue i("i", Value(7));
  EXPECT_THROW(i.set_value(Value("x")), mp::TypeError);
  EXPECT_THROW(i.set_value(Value(2.5)), mp::TypeError);
  EXPECT_THROW(i.set_value(B("a")), mp::TypeError);
  EXPECT_EQ(i.value(), Value(7));

  RawValue d("d", Value(1.5));
  EXPECT_THROW(d.set_value(Value("x")), mp::TypeError);
  EXPECT_EQ(d.value(), Value(1.5));

  RawValue c("c", B("z"));
  EXPECT_THROW(c.set_value(Value("a")), mp::TypeError);
  EXPECT_THROW(c.set_value(B("ab")), mp::TypeError);
  EXPECT_THROW(c.set_value(Value(256)), mp::TypeError);
  EXPECT_EQ(c.value(), B("z"));
  c.set_value(Value(65));
  EXPECT_EQ(c.value(), B("A"));

  RawValue u("u", Value("a"));
  EXPECT_THROW(u.set_value(Value("ab")), mp::TypeError);
  EXPECT_THROW(u.set_value(Value("")), mp::TypeError);
  EXPECT_THROW(u.set_value(Value(1)), mp::TypeError);
  EXPECT_EQ(u.value(), Value("a"));
  u.set_value(Value("\xf0\x9f\x98\x80"));  // U+1F600: beyond the BMP, one wchar_t
  EXPECT_EQ(u.value(), Value("\xf0\x9f\x98\x80"));
}

// [sharedctypes.construct.initial.bad] [sharedctypes.array.construct.initializer]
TEST(SharedCtypes, BadInitialValuesCreateNothing) {
  EXPECT_THROW(RawValue("i", Value(1.5)), mp::TypeError);
  EXPECT_THROW(RawValue("i", Value("x")), mp::TypeError);
  EXPECT_THROW(RawValue("c", Value("a")), mp::TypeError);
  EXPECT_THROW(SynchronizedValue("i", Value(1.5)), mp::TypeError);
  EXPECT_THROW(RawArray("i", L({Value(1), Value("x")})), mp::TypeError);
  EXPECT_THROW(RawArray("c", Value("hello")), mp::TypeError);
  EXPECT_THROW(SynchronizedArray("i", Value(2.5)), mp::TypeError);
}

// [sharedctypes.array.construct.size] [sharedctypes.array.construct.negative]
// [sharedctypes.array.len]
TEST(SharedCtypes, ArraySizes) {
  RawArray a("d", 5);
  EXPECT_EQ(a.size(), 5u);
  for (int k = 0; k < 5; ++k) EXPECT_EQ(a.get(k), Value(0.0));
  RawArray empty("i", 0);
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.get_slice({}), Value(Value::List{}));
  EXPECT_EQ(SynchronizedArray("i", Value(0)).size(), 0u);
  try {
    RawArray bad("i", -1);
    ADD_FAILURE() << "accepted";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "Array length must be >= 0, not -1");
  }
  EXPECT_THROW(SynchronizedArray("i", Value(-3)), mp::ValueError);
}

// [sharedctypes.array.construct.initializer]
TEST(SharedCtypes, ArrayInitializers) {
  RawArray c("c", B("hello"));
  EXPECT_EQ(c.size(), 5u);
  EXPECT_EQ(c.get(1), B("e"));
  RawArray u("u", Value("h\xc3\xa9llo"));  // héllo
  EXPECT_EQ(u.size(), 5u);
  EXPECT_EQ(u.get(1), Value("\xc3\xa9"));
  RawArray i("i", L({Value(1), Value(2), Value(3)}));
  EXPECT_EQ(i.get_slice({}), L({Value(1), Value(2), Value(3)}));
  RawArray ib("i", B("ab"));  // bytes iterate as ints, as in Python
  EXPECT_EQ(ib.get_slice({}), L({Value(97), Value(98)}));
}

// [sharedctypes.array.index] [sharedctypes.array.index.out_of_range]
TEST(SharedCtypes, ArrayIndexing) {
  RawArray a("i", L({Value(1), Value(2), Value(3)}));
  EXPECT_EQ(a.get(-1), Value(3));
  EXPECT_EQ(a.get(-3), Value(1));
  a.set(-2, Value(20));
  EXPECT_EQ(a.get(1), Value(20));
  for (std::int64_t bad :
       {std::int64_t{3}, std::int64_t{4}, std::int64_t{-4}, INT64_MIN, INT64_MAX}) {
    SCOPED_TRACE(bad);
    try {
      a.get(bad);
      ADD_FAILURE() << "no error";
    } catch (const mp::IndexError& e) {
      EXPECT_STREQ(e.kind(), "IndexError");
      EXPECT_STREQ(e.what(), "invalid index");
    }
    EXPECT_THROW(a.set(bad, Value(9)), mp::IndexError);
  }
  EXPECT_EQ(a.get_slice({}), L({Value(1), Value(20), Value(3)}));
  EXPECT_THROW(a.set(0, Value("x")), mp::TypeError);
  EXPECT_EQ(a.get(0), Value(1));
}

// [sharedctypes.array.slice.read] [sharedctypes.array.slice.write]
TEST(SharedCtypes, ArraySlicesFollowPythonRules) {
  RawArray a("i", L({Value(0), Value(1), Value(2), Value(3), Value(4)}));
  EXPECT_EQ(a.get_slice({1, 3, {}}), L({Value(1), Value(2)}));
  EXPECT_EQ(a.get_slice({{}, {}, 2}), L({Value(0), Value(2), Value(4)}));
  EXPECT_EQ(a.get_slice({{}, {}, -1}), L({Value(4), Value(3), Value(2), Value(1), Value(0)}));
  EXPECT_EQ(a.get_slice({-2, {}, {}}), L({Value(3), Value(4)}));
  EXPECT_EQ(a.get_slice({-100, 100, {}}).as_list().size(), 5u);
  EXPECT_EQ(a.get_slice({3, 1, {}}), Value(Value::List{}));
  EXPECT_EQ(a.get_slice({3, 1, -1}), L({Value(3), Value(2)}));
  EXPECT_EQ(a.get_slice({INT64_MIN, INT64_MAX, INT64_MAX}), L({Value(0)}));
  EXPECT_THROW(a.get_slice({{}, {}, 0}), mp::ValueError);

  a.set_slice({1, 5, 2}, L({Value(10), Value(30)}));
  EXPECT_EQ(a.get_slice({}), L({Value(0), Value(10), Value(2), Value(30), Value(4)}));
  try {
    a.set_slice({0, 2, {}}, L({Value(7)}));
    ADD_FAILURE() << "accepted";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "Can only assign sequence of same size");
  }
  EXPECT_THROW(a.set_slice({0, 2, {}}, L({Value(7), Value("x")})), mp::TypeError);
  EXPECT_EQ(a.get_slice({}), L({Value(0), Value(10), Value(2), Value(30), Value(4)}));

  RawArray c("c", B("hello"));
  EXPECT_EQ(c.get_slice({}), B("hello"));
  EXPECT_EQ(c.get_slice({{}, {}, -2}), B("olh"));
  c.set_slice({0, 2, {}}, B("HE"));
  EXPECT_EQ(c.raw(), B("HEllo"));
  RawArray u("u", Value("h\xc3\xa9"));
  EXPECT_EQ(u.get_slice({{}, {}, -1}), Value("\xc3\xa9h"));
  u.set_slice({}, Value("ab"));
  EXPECT_EQ(u.get_slice({}), Value("ab"));
}

// [sharedctypes.array.char] [sharedctypes.array.no_value]
TEST(SharedCtypes, CharArrayValueAndRaw) {
  RawArray c("c", B(std::string_view("ab\0cd", 5)));
  EXPECT_EQ(c.value(), B("ab"));
  EXPECT_EQ(c.raw(), B(std::string_view("ab\0cd", 5)));
  RawArray z("c", 3);
  z.set_value(B("ab"));
  EXPECT_EQ(z.raw(), B(std::string_view("ab\0", 3)));
  z.set_value(B("xyz"));  // exactly full: no terminator
  EXPECT_EQ(z.value(), B("xyz"));
  try {
    z.set_value(B("abcd"));
    ADD_FAILURE() << "accepted";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "byte string too long");
  }
  EXPECT_THROW(z.set_raw(B("abcd")), mp::ValueError);
  EXPECT_THROW(z.set_value(Value("ab")), mp::TypeError);
  EXPECT_EQ(z.raw(), B("xyz"));
  SynchronizedArray s("c", B("hi"));
  EXPECT_EQ(s.value(), B("hi"));
  s.set_value(B("o"));
  EXPECT_EQ(s.raw(), B(std::string_view("o\0", 2)));
  EXPECT_THROW(RawArray("i", 2).value(), mp::AttributeError);
  EXPECT_THROW(SynchronizedArray("i", 2).raw(), mp::AttributeError);
}

// [sharedctypes.construct.lock.default] [sharedctypes.get_lock]
TEST(SharedCtypes, DefaultLockIsRecursive) {
  SynchronizedValue v("i", Value(0));
  ASSERT_TRUE(std::holds_alternative<mp::RLock>(v.get_lock()));
  EXPECT_TRUE(std::get<mp::RLock>(v.get_lock()) == std::get<mp::RLock>(v.get_lock()));
  {
    std::lock_guard<SynchronizedValue> g(v);
    v.set_value(Value(v.value().as_int() + 1));  // reads and writes under the held lock
  }
  EXPECT_EQ(v.value(), Value(1));
  EXPECT_TRUE(v.acquire(false));
  EXPECT_TRUE(v.acquire(false));  // recursive
  v.release();
  v.release();
  EXPECT_THROW(v.release(), mp::AssertionError);  // as RLock
}

// [sharedctypes.construct.lock.given] [sharedctypes.get_lock]
TEST(SharedCtypes, GivenLockIsUsed) {
  mp::Lock lock;
  SynchronizedValue v("i", Value(5), mp::SyncLock(lock));
  ASSERT_TRUE(std::holds_alternative<mp::Lock>(v.get_lock()));
  EXPECT_TRUE(std::get<mp::Lock>(v.get_lock()) == lock);
  EXPECT_TRUE(v.acquire());
  EXPECT_FALSE(lock.acquire(false));  // the wrapper's acquire took the given lock
  v.release();
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
  EXPECT_EQ(v.value(), Value(5));

  mp::RLock rlock;
  SynchronizedArray a("i", Value(2), mp::SyncLock(rlock));
  EXPECT_TRUE(std::get<mp::RLock>(a.get_lock()) == rlock);
}

// [sharedctypes.get_obj] [sharedctypes.synchronized.wraps] [sharedctypes.synchronized.twice]
TEST(SharedCtypes, GetObjAndSynchronized) {
  RawArray raw("i", 3);
  SynchronizedArray s = mp::synchronized(raw);
  EXPECT_TRUE(s.get_obj() == raw);
  EXPECT_TRUE(std::holds_alternative<mp::RLock>(s.get_lock()));
  s.set(0, Value(7));
  EXPECT_EQ(raw.get(0), Value(7));
  raw.set(1, Value(8));
  EXPECT_EQ(s.get(1), Value(8));
  SynchronizedArray sc = mp::synchronized(RawArray("c", B("ab")));
  EXPECT_EQ(sc.value(), B("ab"));

  mp::Lock lock;
  RawValue rv("d");
  SynchronizedValue sv = mp::synchronized(rv, mp::SyncLock(lock));
  EXPECT_TRUE(std::get<mp::Lock>(sv.get_lock()) == lock);
  EXPECT_THROW(mp::synchronized(sv), mp::AssertionError);
  EXPECT_THROW(mp::synchronized(s), mp::AssertionError);
}

// [sharedctypes.copy]
TEST(SharedCtypes, CopyHasItsOwnMemory) {
  RawArray a("i", L({Value(1), Value(2), Value(3)}));
  RawArray b = mp::copy(a);
  EXPECT_FALSE(a == b);
  b.set(0, Value(9));
  EXPECT_EQ(a.get_slice({}), L({Value(1), Value(2), Value(3)}));
  EXPECT_EQ(b.get_slice({}), L({Value(9), Value(2), Value(3)}));
  RawValue v("d", Value(2.5));
  RawValue w = mp::copy(v);
  v.set_value(Value(1.0));
  EXPECT_EQ(w.value(), Value(2.5));
  RawArray e = mp::copy(RawArray("u", 0));
  EXPECT_EQ(e.size(), 0u);
}

// Typed fast path (no clause).
TEST(SharedCtypes, TypedAccessors) {
  RawValue v("i", Value(3));
  EXPECT_EQ(v.get<std::int32_t>(), 3);
  v.set<std::int32_t>(-4);
  EXPECT_EQ(v.value(), Value(-4));
  EXPECT_THROW(v.get<std::uint32_t>(), mp::TypeError);
  EXPECT_THROW(v.get<std::int64_t>(), mp::TypeError);
  EXPECT_THROW(v.get<float>(), mp::TypeError);
  RawArray d("d", 4);
  auto span = d.data<double>();
  span[2] = 1.25;
  EXPECT_EQ(d.get(2), Value(1.25));
  EXPECT_EQ(d.get_as<double>(-2), 1.25);
  EXPECT_THROW(d.get_as<double>(4), mp::IndexError);
  RawValue c("c", B("x"));
  EXPECT_EQ(c.get<char>(), 'x');
  EXPECT_THROW(c.get<std::int8_t>(), mp::TypeError);
  RawValue u("u", Value("z"));
  EXPECT_EQ(u.get<wchar_t>(), L'z');
  SynchronizedValue s("q", Value(1));
  s.set<long long>(s.get<long long>() + 1);
  EXPECT_EQ(s.value(), Value(2));
}

// [sharedctypes.process.inherit] [sharedctypes.value.read_write]
TEST(SharedCtypes, ForkedChildSharesMemory) {
  SynchronizedValue v("i", Value(1));
  RawValue raw("d");
  SynchronizedArray a("c", Value(4));
  Child child([&] {
    if (v.value() != Value(1)) return 1;
    v.set_value(Value(42));
    raw.set_value(Value(0.5));
    a.set_value(B("ok"));
    return 0;
  });
  ASSERT_EQ(child.exit_code(), 0);
  EXPECT_EQ(v.value(), Value(42));
  EXPECT_EQ(raw.value(), Value(0.5));
  EXPECT_EQ(a.value(), B("ok"));
}

// [sharedctypes.add.locked] [sharedctypes.process.lock_shared]
TEST(SharedCtypes, LockedAddsFromForkedProcessesAreExact) {
  constexpr int kProcs = 3;
  constexpr int kTimes = 5000;
  SynchronizedValue v("q", Value(0));
  SynchronizedArray a("i", Value(2));
  Pipe go;
  std::vector<std::unique_ptr<Child>> children;
  for (int p = 0; p < kProcs; ++p) {
    children.push_back(std::make_unique<Child>([&] {
      if (!go.receive()) return 2;
      for (int k = 0; k < kTimes; ++k) {
        {
          std::lock_guard<SynchronizedValue> g(v);
          v.set_value(Value(v.value().as_int() + 1));
        }
        std::lock_guard<SynchronizedArray> g(a);
        a.set(1, Value(a.get(1).as_int() + 2));
      }
      return 0;
    }));
  }
  for (int p = 0; p < kProcs; ++p) go.send('g');
  for (auto& c : children) EXPECT_EQ(c->exit_code(), 0);
  EXPECT_EQ(v.value(), Value(kProcs * kTimes));
  EXPECT_EQ(a.get(1), Value(2 * kProcs * kTimes));
}

// [sharedctypes.value.locked] [sharedctypes.process.lock_shared] [sharedctypes.get_obj]
TEST(SharedCtypes, AccessWaitsWhileAnotherProcessHoldsTheLock) {
  SynchronizedValue v("i", Value(1));
  Pipe held, release;
  Child child([&] {
    v.acquire();
    v.set_value(Value(2));
    held.send('h');
    if (!release.receive()) return 2;
    v.release();
    return 0;
  });
  ASSERT_TRUE(held.receive());
  // get_obj() takes no lock: it reads at once.
  EXPECT_EQ(v.get_obj().value(), Value(2));
  EXPECT_FALSE(v.acquire(true, 0.05));
  Pipe done;
  std::thread reader([&] {
    (void)v.value();
    done.send('d');
  });
  EXPECT_FALSE(done.receive(mp_test::kStaysBlocked).has_value());
  release.send('r');
  EXPECT_TRUE(done.receive().has_value());
  reader.join();
  EXPECT_EQ(child.exit_code(), 0);
}

// [sharedctypes.kill.owner_died] [sharedctypes.kill.memory] [sharedctypes.kill.holder]
TEST(SharedCtypes, KilledHolderOfDefaultLockIsReportedOnce) {
  SynchronizedArray a("i", Value(3));
  SynchronizedValue v("d", Value(0.0));
  Pipe held;
  Child child([&] {
    a.acquire();
    v.acquire();
    a.set(0, Value(11));  // half of a "transaction"
    v.set_value(Value(1.5));
    held.send('h');
    pause();
    return 0;
  });
  ASSERT_TRUE(held.receive());
  ASSERT_TRUE(child.kill_and_reap());
  // The next access through the wrapper reports the death and leaves the lock free.
  EXPECT_THROW(a.get(0), mp::OwnerDied);
  EXPECT_EQ(a.get(0), Value(11));  // proceeds; the dead process's write is there
  a.set(1, Value(5));
  EXPECT_EQ(a.get_slice({}), L({Value(11), Value(5), Value(0)}));
  EXPECT_TRUE(a.acquire(false));  // free
  a.release();
  // An explicit acquire reports the death and owns the lock.
  EXPECT_THROW(v.acquire(), mp::OwnerDied);
  EXPECT_TRUE(std::get<mp::RLock>(v.get_lock()).is_owned());
  EXPECT_EQ(v.value(), Value(1.5));
  v.release();
  EXPECT_EQ(v.get_obj().value(), Value(1.5));
}

// [sharedctypes.kill.holder] (given Lock: [lock.kill.holder])
TEST(SharedCtypes, KilledHolderOfGivenLockKeepsItHeld) {
  mp::Lock lock;
  SynchronizedValue v("i", Value(0), mp::SyncLock(lock));
  Pipe held;
  Child child([&] {
    v.acquire();
    held.send('h');
    pause();
    return 0;
  });
  ASSERT_TRUE(held.receive());
  ASSERT_TRUE(child.kill_and_reap());
  EXPECT_FALSE(v.acquire(true, 0.05));
  lock.release();  // any survivor may release it
  EXPECT_EQ(v.value(), Value(0));
}

}  // namespace
