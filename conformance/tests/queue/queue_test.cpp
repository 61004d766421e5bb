// Scenario tests for spec/queue/queue.md, joinable_queue.md and simple_queue.md.
//
// The queue is made in the driver and inherited by every actor; each test puts in one actor
// and gets in another, so every value crosses a process boundary. `close` concerns the calling
// actor only.
//
// Core clauses allow CPython's feeder thread: an item put by `put` may reach the pipe later, so
// a non-blocking `get` right after a `put` may raise `Empty` ([queue.get.lag]) and `empty()`
// may still say `True` ([queue.size.approximate]). Core tests therefore take items with
// blocking gets (bounded by the liveness bound) and read sizes only on a quiescent queue;
// the strict tests (`*Strict*`) ask for the item to be visible when `put` returns.
//
// Timing policy (spec/README.md §7): "is blocked" is a handshake (the queue is known to be full
// or empty) plus a `small` grace period; "times out" asserts only the lower bound; "is woken"
// waits with the liveness bound `huge`. "At once" is checked by giving a timeout far beyond the
// liveness bound: a backend that waited for it would end the test as TIMEOUT.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bytes_json.hpp"
#include "scenario.hpp"

namespace mpspec {
namespace {

using timing::huge;
using timing::kClockResolution;
using timing::long_;
using timing::small;

// ---------------------------------------------------------------------------------------------
// Values

Json B(std::string_view octets) { return bytes_json(octets); }
Json obj(Json v) { return Json{{"obj", std::move(v)}}; }
Json get_args(bool block, Json timeout = nullptr) {
  return Json{{"block", block}, {"timeout", std::move(timeout)}};
}
Json timeout_only(Json timeout) { return Json{{"timeout", std::move(timeout)}}; }

// Structural, type-sensitive equality of the value domain (spec/README.md §6): 1, 1.0 and true
// differ; bytes compare by their octets; -0.0 and 0.0 differ by their sign.
bool same_value(const Json& a, const Json& b) {
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

std::string shorten(const Json& v) {
  std::string s = v.dump();
  return s.size() > 200 ? s.substr(0, 200) + "...(" + std::to_string(s.size()) + " chars)" : s;
}

::testing::AssertionResult has_value(const CallResult& r, const Json& want) {
  if (!r.ok())
    return ::testing::AssertionFailure() << "expected " << shorten(want) << ", got " << r;
  if (!same_value(r.value, want))
    return ::testing::AssertionFailure()
           << "expected " << shorten(want) << ", got " << shorten(r.value);
  return ::testing::AssertionSuccess();
}

// n deterministic bytes covering every octet value.
std::string pattern(std::size_t n) {
  std::string out(n, '\0');
  std::uint32_t x = 2463534242u;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = static_cast<char>(x & 0xFF);
  }
  return out;
}

// The value domain as [queue.values.roundtrip] lists it.
std::vector<Json> domain_values() {
  return {
      nullptr,
      true,
      false,
      0,
      -1,
      std::numeric_limits<std::int64_t>::min(),
      std::numeric_limits<std::int64_t>::max(),
      1.5,
      -0.0,
      1e300,
      "",
      "x",
      "h\xc3\xa9llo \xe2\x98\x83 \xf0\x9f\x98\x80",  // "héllo ☃ 😀": outside the BMP too
      std::string("nul\x00inside", 10),
      B(""),
      B(std::string("\x00\xff", 2)),
      B(pattern(1 << 20)),  // 1 MiB
      Json::array(),
      Json::object(),
      Json::array({1, 1.0, true, "1", B("1")}),  // three different values of 1
      Json{{"nested", Json::array({Json::array({Json::object()}), B("\n"), -7, 0.25})},
           {"empty", ""},
           {"t", true},
           {"m", Json{{"k", Json{{"n", Json::array({nullptr, false})}}}}}},
  };
}

// ---------------------------------------------------------------------------------------------
// Scenario helpers

void needs(Scenario& s, const std::string& type, std::initializer_list<const char*> methods) {
  for (const char* m : methods) s.needs_method(type, m);
}

// A queue `Q` of `type` (maxsize, when given) and single-threaded actors.
void queue_scenario(Scenario& s, const std::string& type, std::optional<std::int64_t> maxsize,
                    std::initializer_list<const char*> actors) {
  Json args = Json::object();
  if (maxsize) args["maxsize"] = *maxsize;
  s.object("Q", type, args);
  for (const char* a : actors) s.actor(a);
}

// Puts `v` in actor `from` and gets it in actor `to`, the two calls running at the same time
// (a value larger than the backend's transfer buffer may need a reader before `put` returns).
void roundtrip(Scenario& s, const char* from, const char* to, const Json& v) {
  const CallId put = s.call(from, "Q", "put", obj(v));
  const CallId get = s.call(to, "Q", "get");
  EXPECT_TRUE(s.await(put).ok(nullptr)) << s.result(put);
  EXPECT_TRUE(has_value(s.await(get), v));
}

// The basic Queue checks, shared by Queue and JoinableQueue ([joinable_queue.queue.core]).
void check_bounded_put_get(Scenario& s) {
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(s.await(s.call("a", "Q", "put_nowait", obj(i))).ok(nullptr)) << "put " << i;
  const auto& over = s.await(s.call("a", "Q", "put_nowait", obj(3)));
  EXPECT_TRUE(over.raised("Full")) << "the 4th put_nowait on a Queue(3): " << over;
  EXPECT_TRUE(s.await(s.call("b", "Q", "qsize")).ok(3));
  EXPECT_TRUE(s.await(s.call("b", "Q", "full")).ok(true));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(has_value(s.await(s.call("b", "Q", "get")), i));
  EXPECT_TRUE(s.await(s.call("a", "Q", "qsize")).ok(0));
  EXPECT_TRUE(s.await(s.call("a", "Q", "empty")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "Q", "full")).ok(false));
}

// ---------------------------------------------------------------------------------------------
// Queue §1 construction

TEST(Queue, DefaultIsEmptyAndUnbounded) {
  MPSPEC_CLAUSES("[queue.construct.default]");
  Scenario s;
  queue_scenario(s, "Queue", std::nullopt, {"a"});
  needs(s, "Queue", {"qsize", "empty", "full"});
  MPSPEC_START(s);
  const auto& size = s.await(s.call("a", "Q", "qsize"));
  if (size.raised("NotImplementedError"))
    GTEST_SKIP() << "UNSUPPORTED: qsize is not implemented on this platform";
  EXPECT_TRUE(size.ok(0)) << size;
  EXPECT_TRUE(s.await(s.call("a", "Q", "empty")).ok(true));
  EXPECT_TRUE(s.await(s.call("a", "Q", "full")).ok(false));
}

TEST(Queue, MaxsizeBoundsTheQueue) {
  MPSPEC_CLAUSES(
      "[queue.construct.maxsize] [queue.put_nowait] [queue.put.room] [queue.qsize.quiescent]"
      " [queue.full.quiescent] [queue.empty.drained]");
  Scenario s;
  queue_scenario(s, "Queue", 3, {"a", "b"});
  needs(s, "Queue", {"put_nowait", "get", "qsize", "empty", "full"});
  MPSPEC_START(s);
  check_bounded_put_get(s);
}

// Every maxsize in 1..32767 is accepted, and on Linux (where the suite runs) up to 2**31 - 1: the
// smallest and the largest, each with a put and a get.
TEST(Queue, MaxsizeRangeIsAccepted) {
  MPSPEC_CLAUSES("[queue.construct.maxsize.range]");
  for (std::int64_t maxsize : {std::int64_t{1}, std::int64_t{32767}, std::int64_t{2147483647}}) {
    SCOPED_TRACE("maxsize " + std::to_string(maxsize));
    Scenario s;
    queue_scenario(s, "Queue", maxsize, {"a"});
    needs(s, "Queue", {"put_nowait", "get_nowait"});
    MPSPEC_START(s);
    EXPECT_TRUE(s.await(s.call("a", "Q", "put_nowait", obj("x"))).ok(nullptr));
    EXPECT_TRUE(has_value(s.await(s.call("a", "Q", "get_nowait")), "x"));
  }
}

// A maxsize beyond what the backend can honour (2**63 - 1) fails the construction: setup
// reports SetupError. (The clause also allows a backend that truly honours it; no backend here
// claims that, and a test cannot fill such a queue to tell.)
TEST(Queue, MaxsizeTooLargeFailsTheSetup) {
  MPSPEC_CLAUSES("[queue.construct.maxsize.too_large]");
  if (!Backend::get().has_type("Queue")) GTEST_SKIP() << "UNSUPPORTED: the backend has no Queue";
  Scenario s;
  s.object("Q", "Queue", Json{{"maxsize", std::numeric_limits<std::int64_t>::max()}}).actor("a");
  std::string err;
  try {
    const std::string why = s.start();
    if (!why.empty()) GTEST_SKIP() << "UNSUPPORTED: " << why;
  } catch (const std::exception& e) {
    err = e.what();
  }
  EXPECT_NE(err.find("SetupError"), std::string::npos)
      << "Queue(2**63 - 1) was created; a backend must refuse a bound it cannot honour: " << err;
}

TEST(Queue, NonpositiveMaxsizeIsUnbounded) {
  MPSPEC_CLAUSES("[queue.construct.maxsize.nonpositive]");
  for (std::int64_t maxsize : {0, -5}) {
    SCOPED_TRACE("maxsize " + std::to_string(maxsize));
    Scenario s;
    queue_scenario(s, "Queue", maxsize, {"a", "b"});
    needs(s, "Queue", {"put_nowait", "get", "full"});
    MPSPEC_START(s);
    constexpr int kN = 40;
    for (int i = 0; i < kN; ++i)
      ASSERT_TRUE(s.await(s.call("a", "Q", "put_nowait", obj(i))).ok(nullptr)) << "put " << i;
    EXPECT_TRUE(s.await(s.call("b", "Q", "full")).ok(false));
    for (int i = 0; i < kN; ++i) EXPECT_TRUE(has_value(s.await(s.call("b", "Q", "get")), i));
  }
}

// ---------------------------------------------------------------------------------------------
// Queue §2, §3 put and get

// A loss rare enough to slip through short scenarios (one item in a thousand, say) shows up
// in a few thousand items: a producer actor puts 2500 while a consumer actor gets them.
TEST(Queue, NothingLostOrReorderedAtVolume) {
  MPSPEC_CLAUSES("[queue.no_loss] [queue.no_duplication] [queue.order.producer]");
  Scenario s;
  queue_scenario(s, "Queue", std::nullopt, {"a", "b"});
  needs(s, "Queue", {"put", "get"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  constexpr int kN = 2500;
  for (int i = 0; i < kN; ++i) {
    const CallId put = s.call("a", "Q", "put", obj(i));
    const CallId get = s.call("b", "Q", "get", timeout_only(long_()));
    ASSERT_TRUE(s.await(put).ok(nullptr)) << "put " << i << ": " << s.result(put);
    const CallResult got = s.await(get);
    ASSERT_TRUE(has_value(got, i)) << "the " << i << "th get (one producer, FIFO): " << got;
  }
}

TEST(Queue, PutThenGetInAnotherProcessIsFifo) {
  MPSPEC_CLAUSES(
      "[queue.put.returns] [queue.get.returns] [queue.order.producer] [queue.process.shared]"
      " [queue.get.timeout.success]");
  Scenario s;
  queue_scenario(s, "Queue", std::nullopt, {"a", "b"});
  needs(s, "Queue", {"put", "get"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  constexpr int kN = 10;
  for (int i = 0; i < kN; ++i)
    ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj(Json::array({"a", i})))).ok(nullptr));
  for (int i = 0; i < kN; ++i) {
    // A get with a `long` timeout after the put returned returns the item.
    EXPECT_TRUE(
        has_value(s.await(s.call("b", "Q", "get", timeout_only(long_()))), Json::array({"a", i})))
        << "item " << i;
  }
  // And the other way round.
  ASSERT_TRUE(s.await(s.call("b", "Q", "put", obj("back"))).ok(nullptr));
  EXPECT_TRUE(has_value(s.await(s.call("a", "Q", "get")), "back"));
}

TEST(Queue, NonBlockingGetOnEmptyRaisesEmpty) {
  MPSPEC_CLAUSES(
      "[queue.get.nonblocking] [queue.get_nowait] [queue.get.nonblocking.timeout_ignored]"
      " [queue.get.timeout.zero] [queue.get.timeout.negative]");
  Scenario s;
  queue_scenario(s, "Queue", std::nullopt, {"a", "b"});
  needs(s, "Queue", {"get", "get_nowait", "put"});
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  // Each variant must raise Empty at once; a timeout of 10 * huge that was not ignored would
  // exceed the liveness bound of await (TIMEOUT).
  EXPECT_TRUE(s.await(s.call("a", "Q", "get_nowait")).raised("Empty"));
  const Json variants[] = {get_args(false), get_args(false, 10 * huge()), get_args(true, 0),
                           get_args(true, -1)};
  for (const auto& args : variants) {
    const auto& r = s.await(s.call("a", "Q", "get", args));
    EXPECT_TRUE(r.raised("Empty")) << args.dump() << ": " << r;
  }
  // The queue still works: nothing was taken or broken.
  ASSERT_TRUE(s.await(s.call("b", "Q", "put", obj("after"))).ok(nullptr));
  EXPECT_TRUE(has_value(s.await(s.call("a", "Q", "get")), "after"));
}

TEST(Queue, NonBlockingPutOnFullRaisesFull) {
  MPSPEC_CLAUSES(
      "[queue.put.nonblocking] [queue.put_nowait] [queue.put.nonblocking.timeout_ignored]"
      " [queue.put.timeout.zero] [queue.put.timeout.negative]");
  Scenario s;
  queue_scenario(s, "Queue", 1, {"a", "b"});
  needs(s, "Queue", {"put", "put_nowait", "get", "qsize"});
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj("first"))).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "Q", "put_nowait", obj("x"))).raised("Full"));
  const Json variants[] = {
      Json{{"obj", "x"}, {"block", false}},
      Json{{"obj", "x"}, {"block", false}, {"timeout", 10 * huge()}},
      Json{{"obj", "x"}, {"block", true}, {"timeout", 0}},
      Json{{"obj", "x"}, {"block", true}, {"timeout", -1}},
  };
  for (const auto& args : variants) {
    const auto& r = s.await(s.call("b", "Q", "put", args));
    EXPECT_TRUE(r.raised("Full")) << args.dump() << ": " << r;
  }
  // Unchanged: one item, the first.
  const auto& size = s.await(s.call("b", "Q", "qsize"));
  if (!size.raised("NotImplementedError")) {
    EXPECT_TRUE(size.ok(1)) << size;
  }
  EXPECT_TRUE(has_value(s.await(s.call("b", "Q", "get")), "first"));
  EXPECT_TRUE(s.await(s.call("b", "Q", "put_nowait", obj("room again"))).ok(nullptr));
}

TEST(Queue, TimedGetOnEmptyExpires) {
  MPSPEC_CLAUSES("[queue.get.timeout.expires]");
  Scenario s;
  queue_scenario(s, "Queue", std::nullopt, {"a"});
  needs(s, "Queue", {"get"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  const auto& r = s.await(s.call("a", "Q", "get", timeout_only(small())));
  EXPECT_TRUE(r.raised("Empty")) << r;
  EXPECT_GE(r.elapsed(), small() - kClockResolution) << "timed out early: " << r;
}

TEST(Queue, TimedPutOnFullExpires) {
  MPSPEC_CLAUSES("[queue.put.timeout.expires]");
  Scenario s;
  queue_scenario(s, "Queue", 1, {"a", "b"});
  needs(s, "Queue", {"put", "get"});
  s.needs_feature("timeout").needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj(1))).ok(nullptr));
  const auto& r = s.await(s.call("b", "Q", "put", Json{{"obj", 2}, {"timeout", small()}}));
  EXPECT_TRUE(r.raised("Full")) << r;
  EXPECT_GE(r.elapsed(), small() - kClockResolution) << "timed out early: " << r;
  // Unchanged: the one item, then nothing.
  EXPECT_TRUE(has_value(s.await(s.call("b", "Q", "get")), 1));
  EXPECT_TRUE(s.await(s.call("b", "Q", "get", timeout_only(small()))).raised("Empty"));
}

TEST(Queue, BlockedGetIsWokenByAPut) {
  MPSPEC_CLAUSES("[queue.get.blocks] [queue.get.wakes] [queue.get.timeout.none]");
  Scenario s;
  queue_scenario(s, "Queue", std::nullopt, {"a", "b"});
  needs(s, "Queue", {"put", "get"});
  MPSPEC_START(s);
  const CallId waiter = s.call("b", "Q", "get", get_args(true, nullptr));
  ASSERT_FALSE(s.returns_within(waiter, small()))
      << "get returned on an empty queue: " << s.result(waiter);
  const CallId put = s.call("a", "Q", "put", obj("wake"));
  EXPECT_TRUE(s.await(put).ok(nullptr)) << s.result(put);
  const auto& r = s.await(waiter);
  EXPECT_TRUE(has_value(r, "wake"));
  EXPECT_GE(r.return_ns, s.result(put).invoke_ns) << "the get returned before the put";
}

TEST(Queue, BlockedPutIsWokenByAGet) {
  MPSPEC_CLAUSES("[queue.put.blocks] [queue.put.wakes] [queue.put.timeout.none]");
  Scenario s;
  queue_scenario(s, "Queue", 1, {"a", "b", "c"});
  needs(s, "Queue", {"put", "put_nowait", "get"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj(1))).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "Q", "put_nowait", obj(0))).raised("Full"))
      << "handshake: the queue must be full";
  const CallId waiter =
      s.call("b", "Q", "put", Json{{"obj", 2}, {"block", true}, {"timeout", nullptr}});
  ASSERT_FALSE(s.returns_within(waiter, small()))
      << "put returned on a full queue: " << s.result(waiter);
  const CallId get = s.call("c", "Q", "get");
  EXPECT_TRUE(has_value(s.await(get), 1));
  const auto& r = s.await(waiter);
  EXPECT_TRUE(r.ok(nullptr)) << r;
  EXPECT_GE(r.return_ns, s.result(get).invoke_ns) << "the put returned before the get";
  EXPECT_TRUE(has_value(s.await(s.call("c", "Q", "get")), 2)) << "the woken put's item";
}

TEST(Queue, TimedPutSucceedsWhenASlotIsFreed) {
  MPSPEC_CLAUSES("[queue.put.timeout.success]");
  Scenario s;
  queue_scenario(s, "Queue", 1, {"a", "b", "c"});
  needs(s, "Queue", {"put", "put_nowait", "get"});
  s.needs_feature("nonblocking").needs_feature("timeout");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj(1))).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "Q", "put_nowait", obj(0))).raised("Full"));
  // A timeout of the liveness bound: the get below frees the slot long before it expires.
  const CallId waiter = s.call("b", "Q", "put", Json{{"obj", 2}, {"timeout", huge()}});
  ASSERT_FALSE(s.returns_within(waiter, small())) << s.result(waiter);
  EXPECT_TRUE(has_value(s.await(s.call("c", "Q", "get")), 1));
  EXPECT_TRUE(s.await(waiter, 2 * huge()).ok(nullptr)) << s.result(waiter);
  EXPECT_TRUE(has_value(s.await(s.call("c", "Q", "get")), 2));
}

// ---------------------------------------------------------------------------------------------
// Queue §5, §6 values, order, duplication and loss

TEST(Queue, ValuesRoundTrip) {
  MPSPEC_CLAUSES("[queue.values.roundtrip]");
  Scenario s;
  queue_scenario(s, "Queue", std::nullopt, {"a", "b"});
  needs(s, "Queue", {"put", "get"});
  MPSPEC_START(s);
  for (const auto& v : domain_values()) roundtrip(s, "a", "b", v);
}

TEST(Queue, TwoProducersKeepTheirOrder) {
  MPSPEC_CLAUSES(
      "[queue.order.producer] [queue.no_duplication] [queue.no_invention] [queue.no_loss]");
  Scenario s;
  queue_scenario(s, "Queue", std::nullopt, {"p", "q", "c"});
  needs(s, "Queue", {"put", "get"});
  s.needs_feature("timeout");
  MPSPEC_START(s);
  constexpr int kN = 25;
  std::vector<Json> got;
  // Both producers put while the consumer gets: one round is a put from each and one get.
  for (int i = 0; i < kN; ++i) {
    const CallId p = s.call("p", "Q", "put", obj(Json::array({"p", i})));
    const CallId q = s.call("q", "Q", "put", obj(Json::array({"q", i})));
    const CallId g = s.call("c", "Q", "get");
    ASSERT_TRUE(s.await(p).ok(nullptr)) << s.result(p);
    ASSERT_TRUE(s.await(q).ok(nullptr)) << s.result(q);
    const auto& r = s.await(g);
    ASSERT_TRUE(r.ok()) << r;
    got.push_back(r.value);
  }
  // Every put has returned: gets with a `long` timeout drain the rest before one raises Empty.
  for (int i = 0; i < 2 * kN + 1; ++i) {
    const auto& r = s.await(s.call("c", "Q", "get", timeout_only(long_())));
    if (r.raised("Empty")) break;
    ASSERT_TRUE(r.ok()) << r;
    got.push_back(r.value);
  }
  std::map<std::string, int> next = {{"p", 0}, {"q", 0}};
  std::set<std::string> seen;
  for (const auto& v : got) {
    ASSERT_TRUE(v.is_array() && v.size() == 2 && v[0].is_string() && v[1].is_number_integer())
        << "a value nobody put: " << v.dump();
    const std::string producer = v[0].get<std::string>();
    ASSERT_TRUE(next.count(producer)) << "a value nobody put: " << v.dump();
    EXPECT_TRUE(seen.insert(v.dump()).second) << "received twice: " << v.dump();
    EXPECT_EQ(v[1].get<int>(), next[producer])
        << "producer " << producer << "'s items out of order (or lost): " << v.dump();
    next[producer] = v[1].get<int>() + 1;
  }
  EXPECT_EQ(got.size(), static_cast<std::size_t>(2 * kN)) << "items lost or invented";
}

// ---------------------------------------------------------------------------------------------
// Queue §9 close, join_thread, cancel_join_thread

TEST(Queue, CloseAffectsOnlyTheCallingProcess) {
  MPSPEC_CLAUSES(
      "[queue.close.put] [queue.close.get] [queue.close.process_local] [queue.close.keeps_items]"
      " [queue.close.idempotent]");
  Scenario s;
  queue_scenario(s, "Queue", std::nullopt, {"a", "b", "c"});
  needs(s, "Queue", {"put", "put_nowait", "get", "get_nowait", "close"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj("kept"))).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "Q", "close")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "Q", "put", obj("no"))).raised("ValueError"));
  EXPECT_TRUE(s.await(s.call("a", "Q", "put_nowait", obj("no"))).raised("ValueError"));
  EXPECT_TRUE(s.await(s.call("a", "Q", "get")).raised("ValueError"));
  EXPECT_TRUE(s.await(s.call("a", "Q", "get_nowait")).raised("ValueError"));
  EXPECT_TRUE(s.await(s.call("a", "Q", "close")).ok(nullptr)) << "a second close";
  // The other processes go on; the item committed before the close is still there.
  EXPECT_TRUE(has_value(s.await(s.call("b", "Q", "get")), "kept"));
  ASSERT_TRUE(s.await(s.call("b", "Q", "put", obj("after"))).ok(nullptr));
  EXPECT_TRUE(has_value(s.await(s.call("c", "Q", "get")), "after"))
      << "nothing that the closed process's failed puts carried may arrive";
}

TEST(Queue, JoinThreadAndCancelJoinThread) {
  MPSPEC_CLAUSES(
      "[queue.join_thread.unclosed] [queue.join_thread.closed] [queue.cancel_join_thread]");
  Scenario s;
  queue_scenario(s, "Queue", std::nullopt, {"a", "b"});
  needs(s, "Queue", {"put", "get", "close", "join_thread", "cancel_join_thread"});
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "Q", "join_thread")).raised("AssertionError"));
  EXPECT_TRUE(s.await(s.call("b", "Q", "cancel_join_thread")).ok(nullptr)) << "before any put";
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj(7))).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "Q", "close")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "Q", "join_thread")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "Q", "join_thread")).ok(nullptr)) << "a second join_thread";
  EXPECT_TRUE(has_value(s.await(s.call("b", "Q", "get")), 7));
  ASSERT_TRUE(s.await(s.call("b", "Q", "close")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "Q", "cancel_join_thread")).ok(nullptr)) << "after close";
}

// ---------------------------------------------------------------------------------------------
// Queue §7 strict

TEST(Queue, StrictPutIsVisibleWhenItReturns) {
  MPSPEC_CLAUSES("[queue.put.visible] [queue.get_nowait.exact]");
  Scenario s;
  queue_scenario(s, "Queue", std::nullopt, {"a", "b"});
  needs(s, "Queue", {"put", "get_nowait", "empty", "get"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  constexpr int kRounds = 20;
  int stale_empty = 0, stale_get = 0;
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(
        s.await(s.call("a", "Q", "put", obj(Json::array({i, B(pattern(4096))})))).ok(nullptr));
    const auto& e = s.await(s.call("b", "Q", "empty"));
    ASSERT_TRUE(e.ok()) << e;
    if (e.value != false) ++stale_empty;
    const auto& g = s.await(s.call("b", "Q", "get_nowait"));
    if (g.raised("Empty")) {
      ++stale_get;
      ASSERT_TRUE(s.await(s.call("b", "Q", "get")).ok()) << "drain the item";
    } else {
      ASSERT_TRUE(g.ok()) << g;
      EXPECT_EQ(g.value[0], i);
    }
  }
  EXPECT_EQ(stale_empty, 0) << "empty() said True right after put returned, in " << stale_empty
                            << " of " << kRounds << " rounds";
  EXPECT_EQ(stale_get, 0) << "get_nowait raised Empty right after put returned, in " << stale_get
                          << " of " << kRounds << " rounds";
}

// ---------------------------------------------------------------------------------------------
// JoinableQueue

TEST(JoinableQueue, IsAQueue) {
  MPSPEC_CLAUSES("[joinable_queue.queue.core]");
  Scenario s;
  queue_scenario(s, "JoinableQueue", 3, {"a", "b"});
  needs(s, "JoinableQueue", {"put", "put_nowait", "get", "get_nowait", "qsize", "empty", "full"});
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  check_bounded_put_get(s);
  EXPECT_TRUE(s.await(s.call("a", "Q", "get_nowait")).raised("Empty"));
  for (const auto& v : domain_values()) roundtrip(s, "a", "b", v);
}

TEST(JoinableQueue, TaskDoneTooManyRaisesValueError) {
  MPSPEC_CLAUSES(
      "[joinable_queue.construct] [joinable_queue.join.zero] [joinable_queue.task_done.too_many]"
      " [joinable_queue.task_done.decrements] [joinable_queue.count.calls]");
  Scenario s;
  queue_scenario(s, "JoinableQueue", std::nullopt, {"a", "b"});
  needs(s, "JoinableQueue", {"put", "task_done", "join"});
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("a", "Q", "join")).ok(nullptr)) << "join on a new queue";
  EXPECT_TRUE(s.await(s.call("a", "Q", "task_done")).raised("ValueError")) << "on a new queue";
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj(1))).ok(nullptr));
  // No get needed, and another process may call it.
  EXPECT_TRUE(s.await(s.call("b", "Q", "task_done")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("b", "Q", "task_done")).raised("ValueError")) << "one too many";
  EXPECT_TRUE(s.await(s.call("a", "Q", "join")).ok(nullptr)) << "the count is 0 again";
  // The count stayed at 0, not below: one put, one task_done, then too many again.
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj(2))).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "Q", "task_done")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "Q", "task_done")).raised("ValueError"));
}

TEST(JoinableQueue, JoinWaitsForEveryTaskDone) {
  MPSPEC_CLAUSES(
      "[joinable_queue.count.put] [joinable_queue.count.get] [joinable_queue.join.blocks]"
      " [joinable_queue.join.wakes] [joinable_queue.process.shared]");
  Scenario s;
  queue_scenario(s, "JoinableQueue", std::nullopt, {"a", "b", "c"});
  needs(s, "JoinableQueue", {"put", "get", "task_done", "join"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj(1))).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj(2))).ok(nullptr));
  const CallId joiner = s.call("c", "Q", "join");
  ASSERT_FALSE(s.returns_within(joiner, small())) << "join returned with 2 unfinished tasks";
  EXPECT_TRUE(has_value(s.await(s.call("b", "Q", "get")), 1));
  EXPECT_TRUE(has_value(s.await(s.call("b", "Q", "get")), 2));
  EXPECT_FALSE(s.returns_within(joiner, small())) << "get must not count as task_done";
  ASSERT_TRUE(s.await(s.call("b", "Q", "task_done")).ok(nullptr));
  EXPECT_FALSE(s.returns_within(joiner, small())) << "join returned with 1 unfinished task";
  const CallId last = s.call("b", "Q", "task_done");
  ASSERT_TRUE(s.await(last).ok(nullptr)) << s.result(last);
  const auto& r = s.await(joiner);
  EXPECT_TRUE(r.ok(nullptr)) << r;
  EXPECT_GE(r.return_ns, s.result(last).invoke_ns) << "join returned before the last task_done";
}

TEST(JoinableQueue, CloseKeepsTaskDoneAndJoin) {
  MPSPEC_CLAUSES("[joinable_queue.close]");
  Scenario s;
  queue_scenario(s, "JoinableQueue", std::nullopt, {"a", "b"});
  needs(s, "JoinableQueue", {"put", "close", "task_done", "join"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj(1))).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "Q", "close")).ok(nullptr));
  const CallId joiner = s.call("b", "Q", "join");
  ASSERT_FALSE(s.returns_within(joiner, small())) << "join returned with 1 unfinished task";
  EXPECT_TRUE(s.await(s.call("a", "Q", "task_done")).ok(nullptr)) << "task_done after close";
  EXPECT_TRUE(s.await(joiner).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "Q", "join")).ok(nullptr)) << "join after close";
  EXPECT_TRUE(s.await(s.call("a", "Q", "task_done")).raised("ValueError"));
}

// ---------------------------------------------------------------------------------------------
// SimpleQueue

TEST(SimpleQueue, PutGetEmptyInOrder) {
  MPSPEC_CLAUSES(
      "[simple_queue.construct] [simple_queue.put.returns] [simple_queue.get.returns]"
      " [simple_queue.put.visible] [simple_queue.empty.quiescent] [simple_queue.order.producer]"
      " [simple_queue.process.shared]");
  Scenario s;
  s.object("Q", "SimpleQueue").actor("a").actor("b");
  needs(s, "SimpleQueue", {"put", "get", "empty"});
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(s.call("b", "Q", "empty")).ok(true)) << "a new SimpleQueue";
  constexpr int kN = 10;
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj(i))).ok(nullptr));
    EXPECT_TRUE(s.await(s.call("b", "Q", "empty")).ok(false)) << "right after put " << i;
  }
  for (int i = 0; i < kN; ++i) EXPECT_TRUE(has_value(s.await(s.call("b", "Q", "get")), i));
  EXPECT_TRUE(s.await(s.call("a", "Q", "empty")).ok(true)) << "every item was got";
}

TEST(SimpleQueue, PutCapacityWithoutConsumer) {
  MPSPEC_CLAUSES(
      "[simple_queue.put.capacity] [simple_queue.no_loss] [simple_queue.no_duplication]");
  Scenario s;
  s.object("Q", "SimpleQueue").actor("a").actor("b");
  needs(s, "SimpleQueue", {"put", "get", "empty"});
  MPSPEC_START(s);
  constexpr int kN = 100;
  for (int i = 0; i < kN; ++i) {
    std::string payload = pattern(100);
    payload[0] = static_cast<char>(i);
    ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj(B(payload)))).ok(nullptr)) << "put " << i;
  }
  for (int i = 0; i < kN; ++i) {
    std::string payload = pattern(100);
    payload[0] = static_cast<char>(i);
    EXPECT_TRUE(has_value(s.await(s.call("b", "Q", "get")), B(payload))) << "item " << i;
  }
  EXPECT_TRUE(s.await(s.call("b", "Q", "empty")).ok(true)) << "an item was duplicated";
}

TEST(SimpleQueue, BlockedGetIsWokenByAPut) {
  MPSPEC_CLAUSES("[simple_queue.get.blocks] [simple_queue.get.wakes]");
  Scenario s;
  s.object("Q", "SimpleQueue").actor("a").actor("b").actor("c");
  needs(s, "SimpleQueue", {"put", "get", "empty"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "Q", "empty")).ok(true)) << "handshake: the queue is empty";
  const CallId w1 = s.call("b", "Q", "get");
  const CallId w2 = s.call("c", "Q", "get");
  ASSERT_FALSE(s.returns_within(w1, small())) << "get returned on an empty queue: " << s.result(w1);
  ASSERT_FALSE(s.returned(w2)) << "get returned on an empty queue: " << s.result(w2);
  const CallId put = s.call("a", "Q", "put", obj("one"));
  ASSERT_TRUE(s.await(put).ok(nullptr)) << s.result(put);
  const auto first = s.await_any({w1, w2}, huge());
  ASSERT_TRUE(first.has_value()) << "a put must wake a blocked get";
  const CallId other = *first == w1 ? w2 : w1;
  EXPECT_TRUE(has_value(s.result(*first), "one"));
  EXPECT_FALSE(s.returns_within(other, small())) << "one item woke two gets: " << s.result(other);
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj("two"))).ok(nullptr));
  EXPECT_TRUE(has_value(s.await(other), "two"));
}

TEST(SimpleQueue, ValuesRoundTrip) {
  MPSPEC_CLAUSES("[simple_queue.values.roundtrip]");
  Scenario s;
  s.object("Q", "SimpleQueue").actor("a").actor("b");
  needs(s, "SimpleQueue", {"put", "get"});
  MPSPEC_START(s);
  for (const auto& v : domain_values()) roundtrip(s, "a", "b", v);
}

TEST(SimpleQueue, CloseAffectsOnlyTheCallingProcess) {
  MPSPEC_CLAUSES("[simple_queue.close.idempotent] [simple_queue.close.process_local]");
  Scenario s;
  s.object("Q", "SimpleQueue").actor("a").actor("b").actor("c");
  needs(s, "SimpleQueue", {"put", "get", "close"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "Q", "put", obj("kept"))).ok(nullptr));
  ASSERT_TRUE(s.await(s.call("a", "Q", "close")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "Q", "close")).ok(nullptr)) << "a second close";
  EXPECT_TRUE(has_value(s.await(s.call("b", "Q", "get")), "kept"));
  ASSERT_TRUE(s.await(s.call("b", "Q", "put", obj("after"))).ok(nullptr));
  EXPECT_TRUE(has_value(s.await(s.call("c", "Q", "get")), "after"));
}

TEST(SimpleQueue, ClosedQueueRaisesOSError) {
  MPSPEC_CLAUSES("[simple_queue.close.ops]");
  Scenario s;
  s.object("Q", "SimpleQueue").actor("a").actor("b");
  needs(s, "SimpleQueue", {"put", "get", "empty", "close"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("b", "Q", "put", obj("there"))).ok(nullptr))
      << "an item, so that a get that ignored the close would return";
  ASSERT_TRUE(s.await(s.call("a", "Q", "close")).ok(nullptr));
  EXPECT_TRUE(s.await(s.call("a", "Q", "put", obj("no"))).raised("OSError"));
  EXPECT_TRUE(s.await(s.call("a", "Q", "get")).raised("OSError"));
  EXPECT_TRUE(s.await(s.call("a", "Q", "empty")).raised("OSError"));
}

}  // namespace
}  // namespace mpspec
