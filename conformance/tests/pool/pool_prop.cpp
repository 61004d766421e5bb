// Property test for spec/pool/pool.md: RapidCheck generates random task mixes — sequences of
// map / map_async / starmap / imap / imap_unordered calls over random integer lists with random
// chunk sizes, where the task `nonneg` fails exactly on the negative items — runs each mix on one
// pool of the backend, and checks every outcome against what the chapter requires:
//
//   map, map_async    the items in input order, or, when an item is negative, ValueError
//                     ([pool.map.order], [pool.map.error]);
//   starmap(add)      the sums in input order ([pool.starmap.unpack]);
//   imap, chunksize 1 at each position the item or ValueError, then the end ([pool.imap.order],
//                     [pool.imap.error], [pool.imap.end]);
//   imap, chunksize c the chunks' items in order up to the first chunk holding a negative item,
//                     whose position raises ValueError (what follows it is not specified);
//   imap_unordered    chunksize 1: every item exactly once and one ValueError per negative item,
//                     in any order; chunksize > 1 is generated without negative items
//                     ([pool.imap_unordered.permutation]).
//
// At most kPrograms mixes run (fewer with RC_PARAMS=max_success=N); the first failure stops the
// property and prints the mix, since a rerun of a nondeterministic backend may not fail again.
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "scenario.hpp"

namespace mpspec {
namespace {

constexpr int kPrograms = 12;

enum class Op { kMap, kMapAsync, kStarmap, kImap, kImapUnordered };

struct Step {
  Op op = Op::kMap;
  std::vector<int> items;
  int chunksize = 0;  // 0: null (the default)
};

std::string describe(const std::vector<Step>& steps) {
  static const char* names[] = {"map", "map_async", "starmap", "imap", "imap_unordered"};
  std::ostringstream os;
  for (const auto& st : steps) {
    os << "  " << names[static_cast<int>(st.op)] << " chunksize=" << st.chunksize << " [";
    for (std::size_t i = 0; i < st.items.size(); ++i) os << (i ? "," : "") << st.items[i];
    os << "]\n";
  }
  return os.str();
}

rc::Gen<Step> gen_step() {
  return rc::gen::mapcat(
      rc::gen::element(Op::kMap, Op::kMapAsync, Op::kStarmap, Op::kImap, Op::kImapUnordered),
      [](Op op) {
        const bool iter = op == Op::kImap || op == Op::kImapUnordered;
        auto chunks = iter ? rc::gen::element(1, 1, 2, 5) : rc::gen::element(0, 1, 2, 5);
        return rc::gen::mapcat(chunks, [op](int c) {
          const bool no_negative = op == Op::kStarmap || (op == Op::kImapUnordered && c > 1);
          auto item = no_negative ? rc::gen::inRange(0, 50)
                                  : rc::gen::weightedOneOf<int>({{9, rc::gen::inRange(0, 50)},
                                                                 {1, rc::gen::inRange(-9, 0)}});
          return rc::gen::map(rc::gen::container<std::vector<int>>(item),
                              [op, c](std::vector<int> v) {
                                if (v.size() > 16) v.resize(16);
                                return Step{op, std::move(v), c};
                              });
        });
      });
}

// Checks one step on the pool; returns a failure description, or "".
std::string run_step(Scenario& s, const Step& st) {
  Json items = Json::array();
  bool negative = false;
  for (int x : st.items) {
    negative = negative || x < 0;
    items.push_back(st.op == Op::kStarmap ? Json::array({x, 1000}) : Json(x));
  }
  Json args{{"func", st.op == Op::kStarmap ? "add" : "nonneg"}, {"iterable", items}};
  if (st.chunksize > 0) args["chunksize"] = st.chunksize;
  auto call = [&](const std::string& object, const std::string& method,
                  Json a) -> const CallResult& {
    return s.await(s.call("a", object, method, std::move(a)));
  };
  std::ostringstream bad;
  if (st.op == Op::kMap || st.op == Op::kMapAsync || st.op == Op::kStarmap) {
    const CallResult* r;
    if (st.op == Op::kMapAsync) {
      args["as"] = "R";
      const CallResult& a = call("P", "map_async", args);
      if (!a.ok()) return "map_async: " + a.describe();
      r = &call("R", "get", Json::object());
    } else {
      r = &call("P", st.op == Op::kMap ? "map" : "starmap", args);
    }
    Json want = Json::array();
    for (int x : st.items) want.push_back(st.op == Op::kStarmap ? x + 1000 : x);
    if (negative) {
      if (!r->raised("ValueError")) bad << "expected ValueError, got " << r->describe();
    } else if (!r->ok(want)) {
      bad << "expected " << want.dump() << ", got " << r->describe();
    }
    return bad.str();
  }
  args["as"] = "I";
  const CallResult& a = call("P", st.op == Op::kImap ? "imap" : "imap_unordered", args);
  if (!a.ok()) return "imap: " + a.describe();
  const int c = std::max(1, st.chunksize);
  if (st.op == Op::kImap) {
    for (std::size_t i = 0; i < st.items.size(); ++i) {
      // With chunksize c > 1, a chunk holding a negative item raises at its first position.
      const std::size_t chunk_start = i - i % c;
      bool chunk_fails = false;
      for (std::size_t j = chunk_start; j < std::min(st.items.size(), chunk_start + c); ++j)
        chunk_fails = chunk_fails || st.items[j] < 0;
      const CallResult& r = call("I", "next", Json::object());
      if (c > 1 && chunk_fails) {
        if (!r.raised("ValueError"))
          bad << "position " << i << ": expected the failing chunk's ValueError, got "
              << r.describe();
        return bad.str();  // what follows a failed chunk is unspecified
      }
      if (st.items[i] < 0) {
        if (!r.raised("ValueError"))
          bad << "position " << i << ": expected ValueError, got " << r.describe();
      } else if (!r.ok(Json{{"value", st.items[i]}})) {
        bad << "position " << i << ": expected " << st.items[i] << ", got " << r.describe();
      }
      if (!bad.str().empty()) return bad.str();
    }
  } else {
    std::multiset<int> want, got;
    int errors = 0, want_errors = 0;
    for (int x : st.items) (x < 0 ? (void)++want_errors : (void)want.insert(x));
    for (std::size_t i = 0; i < st.items.size(); ++i) {
      const CallResult& r = call("I", "next", Json::object());
      if (r.raised("ValueError")) {
        ++errors;
      } else if (r.ok() && r.value.contains("value") && r.value["value"].is_number_integer()) {
        got.insert(r.value["value"].get<int>());
      } else {
        return "next " + std::to_string(i) + ": " + r.describe();
      }
    }
    if (got != want || errors != want_errors)
      return "imap_unordered gave " + std::to_string(got.size()) + " values and " +
             std::to_string(errors) + " errors, not the items' multiset and " +
             std::to_string(want_errors) + " errors";
  }
  const CallResult& end = call("I", "next", Json::object());
  if (!end.ok(Json{{"done", true}})) bad << "expected the end, got " << end.describe();
  return bad.str();
}

TEST(PoolProp, RandomTaskMixesGiveTheirResultsInPlace) {
  MPSPEC_CLAUSES(
      "[pool.map.order] [pool.map.error] [pool.starmap.unpack] [pool.imap.order] "
      "[pool.imap.error] [pool.imap.end] [pool.imap_unordered.permutation]");
  if (!Backend::get().has_type("Pool")) GTEST_SKIP() << "UNSUPPORTED: backend lacks Pool";
  bool failed = false;
  std::string report;
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.maxSuccess = std::min(params.maxSuccess, kPrograms);
  rc::detail::TestMetadata metadata;
  metadata.id = metadata.description = "PoolProp/RandomTaskMixes";
  const auto result = rc::detail::checkTestable(
      [&] {
        if (failed) RC_DISCARD("a run failed already");
        const auto mix = *rc::gen::mapcat(rc::gen::inRange(1, 5), [](int n) {
          return rc::gen::container<std::vector<Step>>(static_cast<std::size_t>(n), gen_step());
        });
        Scenario s;
        s.object("P", "Pool", Json{{"processes", 2}})
            .object("R", "AsyncResult")
            .object("I", "Iterator")
            .actor("a");
        const std::string why = s.start();
        RC_ASSERT(why.empty());
        for (const auto& st : mix) {
          const std::string err = run_step(s, st);
          if (!err.empty()) {
            failed = true;
            report = err + "\n  the mix:\n" + describe(mix);
            RC_FAIL(report);
          }
        }
      },
      metadata, params);
  rc::detail::printResultMessage(result, std::cerr);
  EXPECT_FALSE(failed) << report;
  EXPECT_TRUE((result.is<rc::detail::SuccessResult>())) << "the property did not pass";
}

}  // namespace
}  // namespace mpspec
