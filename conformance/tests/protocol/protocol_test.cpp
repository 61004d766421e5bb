// Tests of the driver protocol itself (spec/protocol.md), run against the backend's driver
// like every other test: a third-party driver learns here whether it speaks protocol v1.
// Each test starts a fresh driver process of its own so that it may abuse it freely.
#include <gtest/gtest.h>

#include <map>

#include "scenario.hpp"

namespace mpspec {
namespace {

using std::chrono::seconds;
constexpr auto kLimit = seconds(60);

std::string kind_of(const Json& reply) {
  return reply.value("ok", true) ? "" : reply["error"].value("kind", "?");
}

Json setup_lock(DriverProcess& d, Json actors) {
  return d.request(Json{{"op", "setup"},
                        {"objects", Json::array({Json{{"name", "L"}, {"type", "Lock"}}})},
                        {"actors", std::move(actors)}},
                   kLimit);
}

Json hello(DriverProcess& d) { return d.request(Json{{"op", "hello"}, {"protocol", 1}}, kLimit); }

// The `return` events of one driver, by tag: waiting for one keeps the others for later.
class Events {
 public:
  explicit Events(DriverProcess& d) : d_(d) {}
  Json get(const std::string& tag) {
    if (auto it = stash_.find(tag); it != stash_.end()) {
      Json e = std::move(it->second);
      stash_.erase(it);
      return e;
    }
    const std::int64_t deadline = monotonic_ns() + static_cast<std::int64_t>(timing::huge() * 1e9);
    while (auto e = d_.next_event(deadline)) {
      if (e->value("tag", "") == tag) return *e;
      stash_[e->value("tag", "")] = *e;
    }
    throw WatchdogTimeout("no return event for " + tag);
  }

 private:
  DriverProcess& d_;
  std::map<std::string, Json> stash_;
};

#define MPSPEC_NEED_LOCK()                                                           \
  if (!Backend::get().has_type("Lock")) GTEST_SKIP() << "UNSUPPORTED: no Lock type"; \
  DriverProcess d(Backend::command());                                               \
  Events ev(d)

TEST(Protocol, MalformedLinesGetErrorReplies) {
  MPSPEC_CLAUSES("[protocol.reply.malformed] [protocol.transport.lines]");
  DriverProcess d(Backend::command());
  for (const char* line : {"this is not json", "[1, 2, 3]", "{\"op\": \"hello\"}", "{\"id\": 5",
                           "\"just a string\"", "{}"}) {
    Json r = d.send_raw(line, kLimit);
    EXPECT_FALSE(r.value("ok", true)) << line;
    EXPECT_EQ(kind_of(r), "ProtocolError") << line << " -> " << r.dump();
  }
  // The driver kept serving.
  Json r = hello(d);
  EXPECT_TRUE(r.value("ok", false)) << r.dump();
}

TEST(Protocol, HelloComesFirstAndDescribesTheBackend) {
  MPSPEC_CLAUSES("[protocol.hello.first] [protocol.hello.capabilities]");
  DriverProcess d(Backend::command());
  Json early = d.request(Json{{"op", "setup"}, {"objects", Json::array()}}, kLimit);
  EXPECT_EQ(kind_of(early), "ProtocolError") << early.dump();
  Json wrong = d.request(Json{{"op", "hello"}, {"protocol", 99}}, kLimit);
  EXPECT_EQ(kind_of(wrong), "ProtocolError") << wrong.dump();
  Json r = hello(d);
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  const Json& res = r["result"];
  EXPECT_EQ(res.value("protocol", 0), 1);
  EXPECT_TRUE(res.contains("name") && res["name"].is_string());
  EXPECT_TRUE(res.contains("types") && res["types"].is_object());
  EXPECT_TRUE(res.contains("features") && res["features"].is_array());
  for (const auto& [type, methods] : res["types"].items())
    EXPECT_TRUE(methods.is_array()) << "methods of " << type;
}

TEST(Protocol, BadRequestsAreRefusedNotFatal) {
  MPSPEC_CLAUSES("[protocol.reply.error] [protocol.setup.single]");
  MPSPEC_NEED_LOCK();
  ASSERT_TRUE(hello(d).value("ok", false));
  EXPECT_EQ(kind_of(d.request(Json{{"op", "frobnicate"}}, kLimit)), "ProtocolError");
  Json bad_type =
      d.request(Json{{"op", "setup"},
                     {"objects", Json::array({Json{{"name", "X"}, {"type", "NoSuchType"}}})},
                     {"actors", Json::array()}},
                kLimit);
  EXPECT_EQ(kind_of(bad_type), "Unsupported") << bad_type.dump();
  Json dup = d.request(Json{{"op", "setup"},
                            {"objects", Json::array({Json{{"name", "L"}, {"type", "Lock"}},
                                                     Json{{"name", "L"}, {"type", "Lock"}}})},
                            {"actors", Json::array()}},
                       kLimit);
  EXPECT_EQ(kind_of(dup), "ProtocolError") << "duplicate object names: " << dup.dump();
  ASSERT_TRUE(setup_lock(d, Json::array({Json{{"name", "a"}}})).value("ok", false));
  EXPECT_EQ(kind_of(setup_lock(d, Json::array())), "ProtocolError") << "second setup";
  EXPECT_TRUE(d.request(Json{{"op", "teardown"}}, kLimit).value("ok", false));
  EXPECT_TRUE(setup_lock(d, Json::array()).value("ok", false)) << "setup after teardown";
}

TEST(Protocol, CallsAreAsynchronousAndChecked) {
  MPSPEC_CLAUSES("[protocol.call.async] [protocol.call.thread] [protocol.event.return]");
  MPSPEC_NEED_LOCK();
  ASSERT_TRUE(hello(d).value("ok", false));
  ASSERT_TRUE(
      setup_lock(d, Json::array({Json{{"name", "a"}}, Json{{"name", "b"}}})).value("ok", false));
  auto call = [&](const std::string& tag, const std::string& actor, const std::string& method,
                  Json args = Json::object()) {
    return d.request(Json{{"op", "call"},
                          {"tag", tag},
                          {"actor", actor},
                          {"thread", 0},
                          {"object", "L"},
                          {"method", method},
                          {"args", std::move(args)}},
                     kLimit);
  };
  ASSERT_TRUE(call("t1", "a", "acquire").value("ok", false));
  EXPECT_EQ(ev.get("t1").value("status", ""), "ok");
  // b blocks; the acknowledgement still comes at once, and the driver keeps serving.
  ASSERT_TRUE(call("t2", "b", "acquire").value("ok", false));
  EXPECT_EQ(kind_of(call("t3", "b", "acquire")), "ProtocolError") << "thread busy";
  EXPECT_EQ(kind_of(call("t4", "nobody", "acquire")), "ProtocolError") << "unknown actor";
  Json r = d.request(
      Json{
          {"op", "call"}, {"tag", "t5"}, {"actor", "a"}, {"object", "Nope"}, {"method", "acquire"}},
      kLimit);
  EXPECT_EQ(kind_of(r), "ProtocolError") << "unknown object";
  EXPECT_FALSE(call("t6", "a", "no_such_method").value("ok", true)) << "unknown method";
  ASSERT_TRUE(call("t7", "a", "release").value("ok", false));
  EXPECT_EQ(ev.get("t7").value("status", ""), "ok");
  Json t2 = ev.get("t2");
  EXPECT_EQ(t2.value("status", ""), "ok");
  EXPECT_EQ(t2.value("value", Json()), true);
  // b holds the lock now; a may release it (a Lock has no owner); a second release raises.
  ASSERT_TRUE(call("t8", "a", "release").value("ok", false));
  EXPECT_EQ(ev.get("t8").value("status", ""), "ok");
  ASSERT_TRUE(call("t9", "a", "release").value("ok", false));
  Json t9 = ev.get("t9");
  ASSERT_EQ(t9.value("status", ""), "error") << t9.dump();
  EXPECT_EQ(t9["error"].value("kind", ""), "ValueError");
}

TEST(Protocol, TimestampsComeFromTheSharedMonotonicClock) {
  MPSPEC_CLAUSES("[protocol.event.timestamps]");
  MPSPEC_NEED_LOCK();
  ASSERT_TRUE(hello(d).value("ok", false));
  ASSERT_TRUE(setup_lock(d, Json::array({Json{{"name", "a"}}})).value("ok", false));
  for (int i = 0; i < 5; ++i) {
    const std::string tag = "c" + std::to_string(i);
    const std::int64_t sent = monotonic_ns();
    ASSERT_TRUE(d.request(Json{{"op", "call"},
                               {"tag", tag},
                               {"actor", "a"},
                               {"object", "L"},
                               {"method", i % 2 ? "release" : "acquire"}},
                          kLimit)
                    .value("ok", false));
    Json e = ev.get(tag);
    const std::int64_t received = monotonic_ns();
    const std::int64_t inv = e.value("invoke_ns", std::int64_t{-1});
    const std::int64_t ret = e.value("return_ns", std::int64_t{-1});
    EXPECT_LE(sent, inv) << "invoked before the suite sent the call: not CLOCK_MONOTONIC?";
    EXPECT_LE(inv, ret);
    EXPECT_LE(ret, received) << "returned after the suite received the result";
  }
}

TEST(Protocol, KillReportsRunningCallsAsInfo) {
  MPSPEC_CLAUSES("[protocol.kill] [protocol.event.return]");
  if (!Backend::get().has_feature("kill")) GTEST_SKIP() << "UNSUPPORTED: no kill feature";
  MPSPEC_NEED_LOCK();
  ASSERT_TRUE(hello(d).value("ok", false));
  ASSERT_TRUE(
      setup_lock(d, Json::array({Json{{"name", "a"}}, Json{{"name", "b"}}})).value("ok", false));
  auto call = [&](const std::string& tag, const std::string& actor) {
    return d.request(
        Json{
            {"op", "call"}, {"tag", tag}, {"actor", actor}, {"object", "L"}, {"method", "acquire"}},
        kLimit);
  };
  ASSERT_TRUE(call("hold", "a").value("ok", false));
  ASSERT_EQ(ev.get("hold").value("status", ""), "ok");
  ASSERT_TRUE(call("blocked", "b").value("ok", false));
  Json k = d.request(Json{{"op", "kill"}, {"actor", "b"}, {"signal", 9}}, kLimit);
  ASSERT_TRUE(k.value("ok", false)) << k.dump();
  EXPECT_EQ(k["result"].value("exitcode", 0), -9);
  // The info event was emitted before the kill reply, so it is already here.
  auto e = d.next_event(monotonic_ns());
  ASSERT_TRUE(e.has_value()) << "no info event before the kill reply";
  EXPECT_EQ(e->value("tag", ""), "blocked");
  EXPECT_EQ(e->value("status", ""), "info");
  EXPECT_EQ(kind_of(call("late", "b")), "ProtocolError") << "call to a killed actor";
}

TEST(Protocol, TeardownReportsRunningCallsAndByeExits) {
  MPSPEC_CLAUSES("[protocol.teardown] [protocol.bye]");
  MPSPEC_NEED_LOCK();
  ASSERT_TRUE(hello(d).value("ok", false));
  EXPECT_TRUE(d.request(Json{{"op", "teardown"}}, kLimit).value("ok", false))
      << "teardown without setup is a no-op";
  ASSERT_TRUE(
      setup_lock(d, Json::array({Json{{"name", "a"}}, Json{{"name", "b"}}})).value("ok", false));
  auto acquire = [&](const char* who) {
    return d.request(
        Json{{"op", "call"}, {"tag", who}, {"actor", who}, {"object", "L"}, {"method", "acquire"}},
        kLimit);
  };
  ASSERT_TRUE(acquire("a").value("ok", false));
  Json first = ev.get("a");
  ASSERT_EQ(first.value("status", ""), "ok") << first.dump();
  ASSERT_TRUE(acquire("b").value("ok", false));  // blocks: a holds the lock
  ASSERT_TRUE(d.request(Json{{"op", "teardown"}}, kLimit).value("ok", false));
  auto e = d.next_event(monotonic_ns());
  ASSERT_TRUE(e.has_value()) << "no info event for the blocked call before the teardown reply";
  EXPECT_EQ(e->value("tag", ""), "b");
  EXPECT_EQ(e->value("status", ""), "info");
  ASSERT_TRUE(d.request(Json{{"op", "bye"}}, kLimit).value("ok", false));
  const std::int64_t deadline = monotonic_ns() + static_cast<std::int64_t>(timing::huge() * 1e9);
  while (d.alive() && monotonic_ns() < deadline) {
    try {
      d.next_event(monotonic_ns() + 100'000'000);
    } catch (const DriverCrash&) {
      break;  // end of output: the driver exited
    }
  }
  EXPECT_FALSE(d.alive()) << "the driver did not exit after bye";
}

}  // namespace
}  // namespace mpspec

namespace mpspec {
namespace {

// [protocol.setup.independent] An independent actor builds its own objects: its Lock "L" is
// not the parent's nor a forked actor's, so a lock held by one actor is free for it.
TEST(Protocol, IndependentActorsShareNothing) {
  MPSPEC_CLAUSES("[protocol.setup.independent]");
  Scenario s;
  s.object("L", "Lock").needs_method("Lock", "acquire");
  s.actor("a").independent_actor("u");
  s.needs_feature("nonblocking");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "L", "acquire")).ok(true));
  const auto& r = s.await(s.call("u", "L", "acquire", Json{{"block", false}}));
  EXPECT_TRUE(r.ok(true)) << "the independent actor shares the forked actor's Lock: " << r;
  EXPECT_TRUE(s.await(s.call("u", "L", "acquire", Json{{"block", false}})).ok(false))
      << "the independent actor's own Lock does not work";
}

}  // namespace
}  // namespace mpspec
