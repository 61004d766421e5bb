// Property test for spec/connection/connection.md: message boundaries and ordering over random
// message sizes. RapidCheck generates a sequence of messages (send_bytes of random sizes,
// including 0 and a few large ones up to 1 MiB, and send of random values of the domain); one
// actor sends them in order on one end of a Pipe while another receives them on the other end
// with recv_bytes / recv. Every message must come out whole, in order, and equal to what went
// in. Sender and receiver run at once, so a large message (beyond any pipe buffer) is written
// while it is being read.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "bytes_json.hpp"
#include "scenario.hpp"
#include "value_match.hpp"

namespace mpspec {
namespace {

struct Message {
  bool is_bytes = true;
  std::size_t size = 0;  // send_bytes: the payload's length
  unsigned seed = 0;     // send_bytes: the payload's content
  Json value;            // send: the value
};

struct Program {
  bool duplex = true;  // a two-way Pipe (sender on end 0) or a one-way one (sender on end 1)
  std::vector<Message> messages;
};

std::string payload(const Message& m) {
  std::string out(m.size, '\0');
  std::uint32_t x = 0x9E3779B9u ^ m.seed;
  for (auto& c : out) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

std::string describe(const Message& m) {
  if (m.is_bytes) return "send_bytes(<" + std::to_string(m.size) + " bytes>)";
  std::string v = m.value.dump();
  if (v.size() > 120) v = v.substr(0, 120) + "...";
  return "send(" + v + ")";
}

std::string describe(const Program& p) {
  std::ostringstream os;
  os << "  Pipe(duplex=" << (p.duplex ? "True" : "False") << "), " << p.messages.size()
     << " messages:\n";
  for (std::size_t i = 0; i < p.messages.size(); ++i)
    os << "    " << i << ": " << describe(p.messages[i]) << "\n";
  return os.str();
}

// Strings of valid UTF-8 (JSON carries only Unicode scalar values): ASCII, controls, NUL, and
// characters of two, three and four bytes.
rc::Gen<std::string> utf8_string() {
  return rc::gen::map(
      rc::gen::container<std::vector<std::uint32_t>>(rc::gen::weightedOneOf<std::uint32_t>({
          {6, rc::gen::inRange<std::uint32_t>(0x20, 0x7F)},
          {1, rc::gen::inRange<std::uint32_t>(0x00, 0x20)},
          {1, rc::gen::inRange<std::uint32_t>(0x80, 0x800)},
          {1, rc::gen::inRange<std::uint32_t>(0x800, 0xD800)},
          {1, rc::gen::inRange<std::uint32_t>(0x10000, 0x110000)},
      })),
      [](const std::vector<std::uint32_t>& cps) {
        std::string s;
        for (std::uint32_t c : cps) {
          if (c < 0x80) {
            s += static_cast<char>(c);
          } else if (c < 0x800) {
            s += static_cast<char>(0xC0 | c >> 6);
            s += static_cast<char>(0x80 | (c & 0x3F));
          } else if (c < 0x10000) {
            s += static_cast<char>(0xE0 | c >> 12);
            s += static_cast<char>(0x80 | (c >> 6 & 0x3F));
            s += static_cast<char>(0x80 | (c & 0x3F));
          } else {
            s += static_cast<char>(0xF0 | c >> 18);
            s += static_cast<char>(0x80 | (c >> 12 & 0x3F));
            s += static_cast<char>(0x80 | (c >> 6 & 0x3F));
            s += static_cast<char>(0x80 | (c & 0x3F));
          }
        }
        return s;
      });
}

rc::Gen<Json> scalar_value() {
  using rc::gen::arbitrary;
  using rc::gen::element;
  using rc::gen::map;
  return rc::gen::weightedOneOf<Json>({
      {1, rc::gen::just(Json(nullptr))},
      {1, map(arbitrary<bool>(), [](bool b) { return Json(b); })},
      {3, map(arbitrary<std::int64_t>(), [](std::int64_t i) { return Json(i); })},
      {1, map(element<std::int64_t>(0, -1, 255, 256, 65535, 65536, -2147483648LL, 2147483647LL,
                                    2147483648LL, std::numeric_limits<std::int64_t>::max(),
                                    std::numeric_limits<std::int64_t>::min()),
              [](std::int64_t i) { return Json(i); })},
      {2, map(rc::gen::suchThat(arbitrary<double>(), [](double d) { return std::isfinite(d); }),
              [](double d) { return Json(d); })},
      {1, map(element(0.0, -0.0, 1.0, 0.1, 1e300, -2.5e-308), [](double d) { return Json(d); })},
      {3, map(utf8_string(), [](std::string s) { return Json(std::move(s)); })},
      {2, map(arbitrary<std::string>(), [](const std::string& s) { return bytes_json(s); })},
  });
}

rc::Gen<Json> domain_value(int depth) {
  if (depth == 0) return scalar_value();
  auto inner = rc::gen::resize(8, domain_value(depth - 1));
  return rc::gen::weightedOneOf<Json>({
      {4, scalar_value()},
      {1, rc::gen::map(rc::gen::container<std::vector<Json>>(inner),
                       [](std::vector<Json> items) {
                         Json a = Json::array();
                         for (auto& i : items) a.push_back(std::move(i));
                         return a;
                       })},
      {1, rc::gen::map(rc::gen::container<std::vector<std::pair<std::string, Json>>>(
                           rc::gen::pair(utf8_string(), inner)),
                       [](std::vector<std::pair<std::string, Json>> items) {
                         Json o = Json::object();
                         for (auto& [k, v] : items) {
                           // A map whose only key is "$bytes" is outside the domain.
                           o[k == "$bytes" ? std::string("$bytes_") : k] = std::move(v);
                         }
                         return o;
                       })},
  });
}

rc::Gen<std::size_t> message_size() {
  return rc::gen::weightedOneOf<std::size_t>({
      {3, rc::gen::just<std::size_t>(0)},
      {10, rc::gen::inRange<std::size_t>(1, 64)},
      {4, rc::gen::element<std::size_t>(255, 256, 4095, 4096, 65535, 65536, 65537)},
      {4, rc::gen::inRange<std::size_t>(64, 70000)},
      {1, rc::gen::inRange<std::size_t>(70000, (1u << 20) + 1)},  // up to 1 MiB
  });
}

}  // namespace
}  // namespace mpspec

namespace rc {
template <>
struct Arbitrary<mpspec::Message> {
  static Gen<mpspec::Message> arbitrary() {
    auto bytes = gen::apply(
        [](std::size_t size, unsigned seed) {
          mpspec::Message m;
          m.is_bytes = true;
          m.size = size;
          m.seed = seed;
          return m;
        },
        mpspec::message_size(), gen::arbitrary<unsigned>());
    auto value = gen::map(mpspec::domain_value(2), [](mpspec::Json v) {
      mpspec::Message m;
      m.is_bytes = false;
      m.value = std::move(v);
      return m;
    });
    return gen::weightedOneOf<mpspec::Message>({{3, bytes}, {2, value}});
  }
};
template <>
struct Arbitrary<mpspec::Program> {
  static Gen<mpspec::Program> arbitrary() {
    return gen::map(
        gen::pair(gen::arbitrary<bool>(),
                  gen::suchThat(gen::resize(24, gen::nonEmpty(gen::arbitrary<std::vector<mpspec::Message>>())),
                                [](const std::vector<mpspec::Message>& ms) {
                                  // At most 4 MiB of payload per program keeps a run short.
                                  std::size_t total = 0, large = 0;
                                  for (const auto& m : ms) {
                                    total += m.size;
                                    large += m.size >= 70000;
                                  }
                                  return total <= (4u << 20) && large <= 2;
                                })),
        [](std::pair<bool, std::vector<mpspec::Message>> p) {
          return mpspec::Program{p.first, std::move(p.second)};
        });
  }
};
}  // namespace rc

namespace mpspec {
namespace {

void showValue(const Program& p, std::ostream& os) { os << "Connection program:\n" << describe(p); }

// Runs the program; returns "" or what went wrong.
std::string run_program(const Program& p) {
  Scenario s;
  s.object("P", "Pipe", Json{{"duplex", p.duplex}});
  s.object("P0", "Connection", Json{{"pipe", Json{{"$ref", "P"}}}, {"end", 0}});
  s.object("P1", "Connection", Json{{"pipe", Json{{"$ref", "P"}}}, {"end", 1}});
  s.actor("tx").actor("rx");
  s.owner("P0", p.duplex ? "tx" : "rx").owner("P1", p.duplex ? "rx" : "tx");
  for (const char* m : {"send", "recv", "send_bytes", "recv_bytes"})
    s.needs_method("Connection", m);
  const std::string why = s.start();
  if (!why.empty()) throw std::runtime_error("UNSUPPORTED: " + why);
  const std::string tx_end = p.duplex ? "P0" : "P1", rx_end = p.duplex ? "P1" : "P0";

  auto send = [&](const Message& m) {
    return m.is_bytes ? s.call("tx", tx_end, "send_bytes", Json{{"buf", bytes_json(payload(m))}})
                      : s.call("tx", tx_end, "send", Json{{"obj", m.value}});
  };
  auto recv = [&](const Message& m) {
    return s.call("rx", rx_end, m.is_bytes ? "recv_bytes" : "recv");
  };
  // Each actor runs its calls one after another; the two run at once.
  const std::size_t n = p.messages.size();
  std::size_t sent = 0, received = 0;
  std::optional<CallId> tx = send(p.messages[0]), rx = recv(p.messages[0]);
  while (tx || rx) {
    std::vector<CallId> pending;
    if (tx) pending.push_back(*tx);
    if (rx) pending.push_back(*rx);
    const auto done = s.await_any(pending, timing::huge());
    if (!done) return "nothing returned within the liveness bound (sent " + std::to_string(sent) +
                      ", received " + std::to_string(received) + ")";
    const CallResult r = s.result(*done);
    if (tx && *done == *tx) {
      if (!r.ok(nullptr))
        return "message " + std::to_string(sent) + ": " + describe(p.messages[sent]) + " -> " +
               r.describe();
      ++sent;
      tx = sent < n ? std::optional<CallId>(send(p.messages[sent])) : std::nullopt;
    } else {
      const Message& m = p.messages[received];
      if (!r.ok())
        return "receive of message " + std::to_string(received) + " (" + describe(m) +
               ") -> " + r.describe();
      if (m.is_bytes) {
        const auto got = json_bytes(r.value);
        if (!got) return "recv_bytes of message " + std::to_string(received) + " returned " + r.value.dump().substr(0, 200);
        if (*got != payload(m))
          return "message " + std::to_string(received) + ": expected " + std::to_string(m.size) +
                 " bytes, got " + std::to_string(got->size()) +
                 (got->size() == m.size ? " different bytes" : " bytes (merged or cut)");
      } else if (!same_value(r.value, m.value)) {
        return "message " + std::to_string(received) + ": expected " + m.value.dump().substr(0, 300) +
               ", got " + r.value.dump().substr(0, 300);
      }
      ++received;
      rx = received < n ? std::optional<CallId>(recv(p.messages[received])) : std::nullopt;
    }
  }
  return "";
}

TEST(ConnectionProp, MessageBoundariesAndOrderingOverRandomMessageSizes) {
  MPSPEC_CLAUSES(
      "[connection.send.order] [connection.boundaries.merge] [connection.boundaries.split] "
      "[connection.send_bytes.whole] [connection.send.value]");
  Backend& b = Backend::get();
  for (const char* t : {"Pipe", "Connection"})
    if (!b.has_type(t)) GTEST_SKIP() << "UNSUPPORTED: backend lacks type " << t;
  for (const char* m : {"send", "recv", "send_bytes", "recv_bytes"})
    if (!b.has_method("Connection", m)) GTEST_SKIP() << "UNSUPPORTED: backend lacks Connection." << m;

  const bool ok = rc::check("ConnectionProp/MessageBoundariesAndOrdering", [](const Program& p) {
    bool empty = false, large = false, value = false;
    for (const auto& m : p.messages) {
      empty |= m.is_bytes && m.size == 0;
      large |= m.is_bytes && m.size >= 70000;
      value |= !m.is_bytes;
    }
    RC_CLASSIFY(empty, "an empty message");
    RC_CLASSIFY(large, "a message of 70000 bytes or more");
    RC_CLASSIFY(value, "a value (send)");
    const std::string failure = run_program(p);
    if (!failure.empty()) RC_FAIL(failure + "\nin\n" + describe(p));
  });
  EXPECT_TRUE(ok) << "see the counterexample above (seed and reproduce string at the end)";
}

}  // namespace
}  // namespace mpspec
