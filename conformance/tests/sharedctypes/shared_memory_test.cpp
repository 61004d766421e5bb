// Scenario tests for spec/sharedctypes/shared_memory.md: SharedMemory segments.
//
// A SharedMemory entry with args is a handle made in the driver (the parent) and inherited by
// the actors; an entry without args is a slot, bound in one actor by
// `Module.shared_memory(as=..., name=..., create=..., size=...)`, which is how creation and
// attach errors become call outcomes and how an independent actor attaches. Segment names are
// made unique per test binary (its pid) and per use, so that runs against several backends at
// once never meet; the driver unlinks at teardown whatever a scenario created.
//
// Timing policy (spec/README.md §7): no call here blocks. Where a clause says that a process's
// end does not end a segment, the test kills the process and then gives the backend a grace
// period (`long`) to show the wrong behaviour (a helper that unlinks after the death) before it
// looks: a grace period is evidence, never a tight bound.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bytes_json.hpp"
#include "scenario.hpp"

namespace mpspec {
namespace {

using timing::long_;

Json B(std::string_view octets) { return bytes_json(octets); }
std::string zeros(std::size_t n) { return std::string(n, '\0'); }

// A fresh portable name ([shared_memory.name.portable]): a letter, the pid and a serial, in
// hexadecimal; 11 characters, padded with `pad` up to `length` when given.
std::string fresh_name(std::size_t length = 0, char pad = 'x') {
  static unsigned serial = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "m%06xs%03x", static_cast<unsigned>(::getpid()) & 0xffffffu,
                ++serial & 0xfffu);
  std::string name(buf);
  if (name.size() < length) name += std::string(length - name.size(), pad);
  return name;
}

// The setup of most tests: the Module, slots, actors.
void memory_scenario(Scenario& s, const std::vector<std::string>& slots,
                     const std::vector<std::string>& actors) {
  s.object("Mod", "Module");
  for (const auto& slot : slots) s.object(slot, "SharedMemory");
  for (const auto& actor : actors) s.actor(actor);
  s.needs_method("Module", "shared_memory");
}

Json create_entry(const std::string& name, std::int64_t size) {
  return Json{{"name", name}, {"create", true}, {"size", size}};
}

// Module.shared_memory: creates (create) or attaches a handle bound to `slot` in `actor`.
CallId open(Scenario& s, const std::string& actor, const std::string& slot, Json name,
            bool create = false, Json size = 0) {
  return s.call(
      actor, "Mod", "shared_memory",
      Json{{"as", slot}, {"name", std::move(name)}, {"create", create}, {"size", std::move(size)}});
}

Json whole() { return Json::object(); }
Json part(std::int64_t offset, std::int64_t size) {
  return Json{{"offset", offset}, {"size", size}};
}
Json data_at(std::int64_t offset, std::string_view octets) {
  return Json{{"offset", offset}, {"data", B(octets)}};
}

::testing::AssertionResult gives(const CallResult& r, const Json& expected) {
  if (r.ok() && r.value == expected) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected " << expected.dump() << ", got " << r;
}

::testing::AssertionResult gives_bytes(const CallResult& r, std::string_view octets) {
  const auto got = r.ok() ? json_bytes(r.value) : std::nullopt;
  if (got && *got == octets) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "expected " << octets.size() << " bytes " << B(octets).dump() << ", got " << r;
}

// An OSError, whose errno, when the backend gives it (spec/protocol.md §5), is `name`.
::testing::AssertionResult os_error(const CallResult& r, const std::string& name) {
  if (!r.raised("OSError"))
    return ::testing::AssertionFailure() << "expected an OSError (" << name << "), got " << r;
  if (!r.error_errno.empty() && r.error_errno != name)
    return ::testing::AssertionFailure()
           << "expected errno " << name << ", got " << r.error_errno << ": " << r;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult raised_any(const CallResult& r) {
  if (r.status == OpStatus::kError) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected an error, got " << r;
}

// Time for a backend that ends a segment when a process ends to have done it (see the top).
void grace() { std::this_thread::sleep_for(std::chrono::duration<double>(long_())); }

// ---------------------------------------------------------------------------------------------
// §1 Creating a segment

TEST(SharedMemory, CreateNamedIsZeroed) {
  MPSPEC_CLAUSES("[shared_memory.create.named] [shared_memory.create.zeroed]");
  const std::string n1 = fresh_name(), n2 = fresh_name();
  Scenario s;
  s.object("S", "SharedMemory", create_entry(n1, 64));
  memory_scenario(s, {"X", "Y"}, {"a", "b"});
  MPSPEC_START(s);
  EXPECT_TRUE(gives(s.await(s.call("a", "S", "name")), n1));
  EXPECT_TRUE(gives_bytes(s.await(s.call("a", "S", "read", whole())), zeros(64)));
  EXPECT_TRUE(gives(s.await(open(s, "a", "X", n2, true, 70000)), n2));
  EXPECT_TRUE(gives(s.await(s.call("a", "X", "name")), n2));
  EXPECT_TRUE(gives_bytes(s.await(s.call("a", "X", "read", whole())), zeros(70000)));
  EXPECT_TRUE(gives(s.await(open(s, "b", "Y", n2)), n2)) << "a new segment, attachable by its name";
  EXPECT_TRUE(gives_bytes(s.await(s.call("b", "Y", "read", part(69990, 10))), zeros(10)));
}

TEST(SharedMemory, GeneratedNamesAreFreshAndAttachable) {
  MPSPEC_CLAUSES("[shared_memory.create.generated]");
  Scenario s;
  memory_scenario(s, {"X", "Y", "Z"}, {"a", "b"});
  MPSPEC_START(s);
  const CallResult g1 = s.await(open(s, "a", "X", nullptr, true, 16));
  const CallResult g2 = s.await(open(s, "a", "Y", nullptr, true, 16));
  ASSERT_TRUE(g1.ok() && g1.value.is_string() && !g1.value.get<std::string>().empty()) << g1;
  ASSERT_TRUE(g2.ok() && g2.value.is_string() && !g2.value.get<std::string>().empty()) << g2;
  EXPECT_NE(g1.value, g2.value) << "two creations, two names";
  EXPECT_TRUE(gives(s.await(s.call("a", "X", "name")), g1.value));
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(0, "one"))).ok());
  ASSERT_TRUE(s.await(s.call("a", "Y", "write", data_at(0, "two"))).ok());
  EXPECT_TRUE(gives(s.await(open(s, "b", "Z", g1.value)), g1.value));
  EXPECT_TRUE(gives_bytes(s.await(s.call("b", "Z", "read", part(0, 3))), "one"));
  EXPECT_TRUE(gives(s.await(open(s, "b", "Z", g2.value)), g2.value));
  EXPECT_TRUE(gives_bytes(s.await(s.call("b", "Z", "read", part(0, 3))), "two"));
}

TEST(SharedMemory, CreatingAnExistingNameFails) {
  MPSPEC_CLAUSES("[shared_memory.create.exists]");
  const std::string n = fresh_name();
  Scenario s;
  memory_scenario(s, {"X", "Y"}, {"a", "b"});
  MPSPEC_START(s);
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", n, true, 8)), n));
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(0, "original"))).ok());
  for (const char* creator : {"b", "a"}) {
    EXPECT_TRUE(os_error(s.await(open(s, creator, "Y", n, true, 32)), "EEXIST")) << creator;
  }
  EXPECT_TRUE(gives_bytes(s.await(s.call("a", "X", "read", whole())), "original"))
      << "the failed slot kept its handle; the segment is unchanged";
  ASSERT_TRUE(gives(s.await(open(s, "b", "Y", n)), n));
  EXPECT_TRUE(gives(s.await(s.call("b", "Y", "size")), 8)) << "not resized";
  EXPECT_TRUE(gives_bytes(s.await(s.call("b", "Y", "read", whole())), "original"));
}

TEST(SharedMemory, SizeZeroIsValueErrorAndCreatesNothing) {
  MPSPEC_CLAUSES("[shared_memory.create.size.zero]");
  const std::string n = fresh_name();
  Scenario s;
  memory_scenario(s, {"X", "Y"}, {"a", "b"});
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(open(s, "a", "X", n, true, 0)).raised("ValueError"));
  EXPECT_TRUE(os_error(s.await(open(s, "b", "Y", n)), "ENOENT")) << "nothing was created";
  EXPECT_TRUE(s.await(open(s, "a", "X", nullptr, true, 0)).raised("ValueError"));
  EXPECT_TRUE(gives(s.await(open(s, "a", "X", n, true, 4)), n)) << "the name is still free";
}

TEST(SharedMemory, NegativeSizeIsValueError) {
  MPSPEC_CLAUSES("[shared_memory.size.negative]");
  const std::string existing = fresh_name(), other = fresh_name();
  Scenario s;
  s.object("S", "SharedMemory", create_entry(existing, 8));
  memory_scenario(s, {"X"}, {"a"});
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(open(s, "a", "X", other, true, -1)).raised("ValueError")) << "creating";
  EXPECT_TRUE(s.await(open(s, "a", "X", existing, false, -1)).raised("ValueError")) << "attaching";
  EXPECT_TRUE(s.await(open(s, "a", "X", existing, false, -4096)).raised("ValueError"));
}

// strict: a creation that raises leaves nothing, so the name is free for the next one.
TEST(SharedMemory, FailedCreationLeavesNothing) {
  MPSPEC_CLAUSES("[shared_memory.create.failed.clean]");
  Scenario s;
  memory_scenario(s, {"X"}, {"a"});
  MPSPEC_START(s);
  for (const Json& bad : {Json(1.5), Json("8"), Json(0), Json(-1)}) {
    SCOPED_TRACE("size " + bad.dump());
    const std::string n = fresh_name();
    const CallResult failed = s.await(open(s, "a", "X", n, true, bad));
    if (failed.ok()) {  // the backend took the size: not a failed creation, nothing to judge
      EXPECT_TRUE(s.await(s.call("a", "X", "unlink")).ok());
      continue;
    }
    const CallResult again = s.await(open(s, "a", "X", n, true, 8));
    EXPECT_TRUE(gives(again, n)) << "the failed creation left a segment named " << n;
    if (again.ok()) {
      EXPECT_TRUE(gives_bytes(s.await(s.call("a", "X", "read", whole())), zeros(8)));
      EXPECT_TRUE(s.await(s.call("a", "X", "unlink")).ok());
    }
  }
}

TEST(SharedMemory, NameNoneNeedsCreate) {
  MPSPEC_CLAUSES("[shared_memory.name.none]");
  Scenario s;
  memory_scenario(s, {"X"}, {"a"});
  MPSPEC_START(s);
  EXPECT_TRUE(s.await(open(s, "a", "X", nullptr, false, 0)).raised("ValueError"));
  EXPECT_TRUE(s.await(open(s, "a", "X", nullptr, false, 16)).raised("ValueError"));
}

TEST(SharedMemory, PortableNamesAreAccepted) {
  MPSPEC_CLAUSES("[shared_memory.name.portable]");
  std::vector<std::string> names;
  {
    // 5 characters: a letter and four of the pid and a serial.
    static unsigned serial = 0;
    char buf[16];
    std::snprintf(buf, sizeof buf, "q%04x",
                  (static_cast<unsigned>(::getpid()) * 31u + ++serial) & 0xffffu);
    names.push_back(buf);
  }
  names.push_back(fresh_name(13, 'z'));
  names.push_back(fresh_name(13, 'z'));  // 13 characters ending in `_` and `-`
  names.back()[11] = '_';
  names.back()[12] = '-';
#ifdef __linux__
  names.push_back(fresh_name(200, 'Y'));
#endif
  Scenario s;
  memory_scenario(s, {"X", "Y"}, {"a", "b"});
  MPSPEC_START(s);
  for (const auto& n : names) {
    SCOPED_TRACE(n + " (" + std::to_string(n.size()) + " characters)");
    ASSERT_TRUE(gives(s.await(open(s, "a", "X", n, true, 4)), n));
    ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(0, "ok"))).ok());
    ASSERT_TRUE(gives(s.await(open(s, "b", "Y", n)), n));
    EXPECT_TRUE(gives_bytes(s.await(s.call("b", "Y", "read", part(0, 2))), "ok"));
    EXPECT_TRUE(s.await(s.call("b", "Y", "unlink")).ok());
  }
}

// ---------------------------------------------------------------------------------------------
// §2 Attaching

TEST(SharedMemory, AttachSharesTheBytes) {
  MPSPEC_CLAUSES("[shared_memory.attach.name]");
  const std::string n = fresh_name();
  Scenario s;
  s.object("S", "SharedMemory", create_entry(n, 32));
  memory_scenario(s, {"X"}, {"a", "b", "c"});
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "S", "write", data_at(0, "abc"))).ok());
  ASSERT_TRUE(gives(s.await(open(s, "b", "X", n)), n));
  EXPECT_TRUE(gives_bytes(s.await(s.call("b", "X", "read", part(0, 3))), "abc"));
  ASSERT_TRUE(s.await(s.call("b", "X", "write", data_at(3, "de"))).ok());
  EXPECT_TRUE(gives_bytes(s.await(s.call("a", "S", "read", part(0, 5))), "abcde"));
  // Two handles in one process.
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", n)), n));
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(5, "f"))).ok());
  EXPECT_TRUE(gives_bytes(s.await(s.call("a", "S", "read", part(0, 6))), "abcdef"));
  ASSERT_TRUE(gives(s.await(open(s, "c", "X", n)), n));
  EXPECT_TRUE(
      gives_bytes(s.await(s.call("c", "X", "read", part(0, 7))), std::string_view("abcdef\0", 7)));
  EXPECT_TRUE(gives_bytes(s.await(s.call("b", "X", "read", part(0, 6))), "abcdef"));
}

TEST(SharedMemory, AttachIgnoresTheSize) {
  MPSPEC_CLAUSES("[shared_memory.attach.size]");
  const std::string n = fresh_name();
  Scenario s;
  memory_scenario(s, {"X"}, {"a", "b", "c", "d"});
  MPSPEC_START(s);
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", n, true, 5000)), n));
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(4999, "z"))).ok());
  const Json creator_size = s.await(s.call("a", "X", "size")).value;
  const std::vector<std::pair<std::string, std::int64_t>> attachers = {
      {"b", 10}, {"c", 100000}, {"d", 0}};
  for (const auto& [actor, size] : attachers) {
    SCOPED_TRACE(actor + " attaches with size " + std::to_string(size));
    ASSERT_TRUE(gives(s.await(open(s, actor, "X", n, false, size)), n));
    const CallResult got = s.await(s.call(actor, "X", "size"));
    ASSERT_TRUE(got.ok() && got.value.is_number_integer()) << got;
    EXPECT_GE(got.value.get<std::int64_t>(), 5000) << "the segment's size, not the argument";
    EXPECT_TRUE(gives(got, creator_size)) << "the same size as the creator's handle";
    EXPECT_TRUE(gives_bytes(s.await(s.call(actor, "X", "read", part(4999, 1))), "z"));
  }
}

TEST(SharedMemory, AttachingAMissingNameFails) {
  MPSPEC_CLAUSES("[shared_memory.attach.missing]");
  Scenario s;
  memory_scenario(s, {"X"}, {"a"});
  MPSPEC_START(s);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(os_error(s.await(open(s, "a", "X", fresh_name())), "ENOENT"));
    EXPECT_TRUE(os_error(s.await(open(s, "a", "X", fresh_name(), false, 16)), "ENOENT"));
  }
}

TEST(SharedMemory, UnrelatedProcessAttaches) {
  MPSPEC_CLAUSES("[shared_memory.attach.unrelated]");
  const std::string n = fresh_name();
  Scenario s;
  memory_scenario(s, {"X"}, {"a"});
  s.independent_actor("u");
  s.needs_feature("independent");
  MPSPEC_START(s);
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", n, true, 16)), n));
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(0, "hi"))).ok());
  ASSERT_TRUE(gives(s.await(open(s, "u", "X", n)), n));
  EXPECT_TRUE(gives_bytes(s.await(s.call("u", "X", "read", part(0, 2))), "hi"));
  ASSERT_TRUE(s.await(s.call("u", "X", "write", data_at(2, "yo"))).ok());
  EXPECT_TRUE(gives_bytes(s.await(s.call("a", "X", "read", part(0, 4))), "hiyo"));
}

TEST(SharedMemory, InheritedHandleWorks) {
  MPSPEC_CLAUSES("[shared_memory.process.inherit]");
  const std::string n = fresh_name();
  Scenario s;
  s.object("S", "SharedMemory", create_entry(n, 16));
  s.actor("a").actor("b");
  MPSPEC_START(s);
  ASSERT_TRUE(s.await(s.call("a", "S", "write", data_at(0, "from a"))).ok());
  EXPECT_TRUE(gives_bytes(s.await(s.call("b", "S", "read", part(0, 6))), "from a"));
  ASSERT_TRUE(s.await(s.call("b", "S", "write", data_at(6, "+b"))).ok());
  EXPECT_TRUE(gives_bytes(s.await(s.call("a", "S", "read", part(0, 8))), "from a+b"));
  EXPECT_TRUE(gives(s.await(s.call("b", "S", "name")), n));
}

// ---------------------------------------------------------------------------------------------
// §3 buf, name, size

TEST(SharedMemory, SizeIsAtLeastRequestedAndAllUsable) {
  MPSPEC_CLAUSES("[shared_memory.size.at_least]");
  Scenario s;
  s.object("S", "SharedMemory", create_entry(fresh_name(), 10));
  memory_scenario(s, {"X"}, {"a", "b"});
  MPSPEC_START(s);
  for (const std::int64_t requested : {1, 4097}) {
    SCOPED_TRACE("requested " + std::to_string(requested));
    ASSERT_TRUE(s.await(open(s, "a", "X", fresh_name(), true, requested)).ok());
    const CallResult size = s.await(s.call("a", "X", "size"));
    ASSERT_TRUE(size.ok() && size.value.is_number_integer()) << size;
    const std::int64_t n = size.value.get<std::int64_t>();
    EXPECT_GE(n, requested);
    std::string pattern;
    for (std::int64_t i = 0; i < n; ++i) pattern += static_cast<char>('A' + i % 26);
    ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(0, pattern))).ok()) << "every byte";
    EXPECT_TRUE(gives_bytes(s.await(s.call("a", "X", "read", whole())), pattern));
  }
  const CallResult size = s.await(s.call("b", "S", "size"));
  ASSERT_TRUE(size.ok() && size.value.is_number_integer()) << size;
  EXPECT_GE(size.value.get<std::int64_t>(), 10);
  const CallResult all = s.await(s.call("b", "S", "read", whole()));
  const auto octets = all.ok() ? json_bytes(all.value) : std::nullopt;
  ASSERT_TRUE(octets) << all;
  EXPECT_EQ(static_cast<std::int64_t>(octets->size()), size.value.get<std::int64_t>())
      << "buf has exactly `size` bytes";
}

TEST(SharedMemory, SizeIsExactOnLinux) {
  MPSPEC_CLAUSES("[shared_memory.size.exact]");
#ifndef __linux__
  GTEST_SKIP() << "UNSUPPORTED: a Linux clause";
#endif
  Scenario s;
  memory_scenario(s, {"X", "Y"}, {"a", "b"});
  MPSPEC_START(s);
  for (const std::int64_t n : {1, 10, 4097, 5000}) {
    const std::string name = fresh_name();
    ASSERT_TRUE(gives(s.await(open(s, "a", "X", name, true, n)), name));
    EXPECT_TRUE(gives(s.await(s.call("a", "X", "size")), n));
    ASSERT_TRUE(gives(s.await(open(s, "b", "Y", name)), name));
    EXPECT_TRUE(gives(s.await(s.call("b", "Y", "size")), n)) << "as an attacher sees it";
  }
}

TEST(SharedMemory, NameNeverChanges) {
  MPSPEC_CLAUSES("[shared_memory.name.stable]");
  const std::string n = fresh_name();
  Scenario s;
  s.object("S", "SharedMemory", create_entry(n, 8));
  memory_scenario(s, {"X", "G"}, {"a", "b"});
  MPSPEC_START(s);
  EXPECT_TRUE(gives(s.await(s.call("a", "S", "name")), n)) << "no prefix added";
  ASSERT_TRUE(gives(s.await(open(s, "b", "X", n)), n));
  ASSERT_TRUE(s.await(s.call("b", "X", "write", data_at(0, "x"))).ok());
  EXPECT_TRUE(gives(s.await(s.call("b", "X", "name")), n));
  ASSERT_TRUE(s.await(s.call("b", "X", "close")).ok());
  EXPECT_TRUE(gives(s.await(s.call("b", "X", "name")), n)) << "after close";
  const CallResult g = s.await(open(s, "a", "G", nullptr, true, 8));
  ASSERT_TRUE(g.ok() && g.value.is_string()) << g;
  EXPECT_TRUE(gives(s.await(s.call("a", "G", "name")), g.value));
  EXPECT_NE(g.value.get<std::string>().rfind('/', 0), 0u) << "no system prefix: " << g;
  ASSERT_TRUE(s.await(s.call("a", "G", "unlink")).ok());
  EXPECT_TRUE(gives(s.await(s.call("a", "G", "name")), g.value)) << "after unlink";
}

// ---------------------------------------------------------------------------------------------
// §4 close() and unlink()

TEST(SharedMemory, CloseEndsOnlyThatHandle) {
  MPSPEC_CLAUSES("[shared_memory.close.handle]");
  const std::string n = fresh_name();
  Scenario s;
  s.object("S", "SharedMemory", create_entry(n, 8));
  memory_scenario(s, {"X"}, {"a", "b", "c"});
  MPSPEC_START(s);
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", n)), n));
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(0, "before"))).ok());
  ASSERT_TRUE(s.await(s.call("a", "X", "close")).ok(nullptr));
  EXPECT_TRUE(raised_any(s.await(s.call("a", "X", "read", part(0, 1))))) << "read after close";
  EXPECT_TRUE(raised_any(s.await(s.call("a", "X", "write", data_at(0, "z")))))
      << "write after close";
  EXPECT_TRUE(gives_bytes(s.await(s.call("a", "S", "read", part(0, 6))), "before"))
      << "another handle of the same process";
  ASSERT_TRUE(s.await(s.call("b", "S", "write", data_at(0, "B"))).ok()) << "another process";
  ASSERT_TRUE(gives(s.await(open(s, "c", "X", n)), n)) << "still attachable";
  EXPECT_TRUE(gives_bytes(s.await(s.call("c", "X", "read", part(0, 6))), "Before"));
}

TEST(SharedMemory, CloseTwiceIsHarmless) {
  MPSPEC_CLAUSES("[shared_memory.close.idempotent]");
  const std::string n = fresh_name();
  Scenario s;
  s.object("S", "SharedMemory", create_entry(n, 8));
  memory_scenario(s, {"X"}, {"a"});
  MPSPEC_START(s);
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", n)), n));
  for (const char* handle : {"X", "S"})
    for (int i = 0; i < 3; ++i)
      EXPECT_TRUE(s.await(s.call("a", handle, "close")).ok(nullptr)) << handle;
}

TEST(SharedMemory, UnlinkRemovesTheName) {
  MPSPEC_CLAUSES("[shared_memory.unlink.name]");
#ifdef _WIN32
  GTEST_SKIP() << "UNSUPPORTED: a POSIX clause";
#endif
  const std::string n = fresh_name(), m = fresh_name();
  Scenario s;
  memory_scenario(s, {"X", "Y", "Z"}, {"a", "b", "c"});
  MPSPEC_START(s);
  // Through a closed handle of the creator.
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", n, true, 8)), n));
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(0, "old"))).ok());
  ASSERT_TRUE(gives(s.await(open(s, "c", "Y", n)), n));
  ASSERT_TRUE(s.await(s.call("a", "X", "close")).ok());
  ASSERT_TRUE(s.await(s.call("a", "X", "unlink")).ok(nullptr));
  EXPECT_TRUE(os_error(s.await(open(s, "b", "Z", n)), "ENOENT"));
  ASSERT_TRUE(gives(s.await(open(s, "b", "Z", n, true, 8)), n)) << "the name is free";
  EXPECT_TRUE(gives_bytes(s.await(s.call("b", "Z", "read", whole())), zeros(8))) << "a new segment";
  ASSERT_TRUE(s.await(s.call("b", "Z", "write", data_at(0, "new"))).ok());
  EXPECT_TRUE(gives_bytes(s.await(s.call("c", "Y", "read", part(0, 3))), "old"))
      << "distinct from the old one";
  // Through an attacher in another process.
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", m, true, 8)), m));
  ASSERT_TRUE(gives(s.await(open(s, "c", "Y", m)), m));
  ASSERT_TRUE(s.await(s.call("c", "Y", "unlink")).ok(nullptr));
  EXPECT_TRUE(os_error(s.await(open(s, "b", "Z", m)), "ENOENT"));
}

TEST(SharedMemory, UnlinkKeepsOpenHandlesWorking) {
  MPSPEC_CLAUSES("[shared_memory.unlink.mappings]");
#ifdef _WIN32
  GTEST_SKIP() << "UNSUPPORTED: a POSIX clause";
#endif
  const std::string n = fresh_name();
  Scenario s;
  memory_scenario(s, {"X"}, {"a", "b"});
  MPSPEC_START(s);
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", n, true, 8)), n));
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(0, "ab"))).ok());
  ASSERT_TRUE(gives(s.await(open(s, "b", "X", n)), n));
  ASSERT_TRUE(s.await(s.call("a", "X", "unlink")).ok());
  EXPECT_TRUE(gives_bytes(s.await(s.call("a", "X", "read", part(0, 2))), "ab")) << "same bytes";
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(2, "cd"))).ok());
  EXPECT_TRUE(gives_bytes(s.await(s.call("b", "X", "read", part(0, 4))), "abcd")) << "still shared";
  ASSERT_TRUE(s.await(s.call("b", "X", "write", data_at(4, "e"))).ok());
  EXPECT_TRUE(gives_bytes(s.await(s.call("a", "X", "read", part(0, 5))), "abcde"));
}

TEST(SharedMemory, UnlinkTwiceFails) {
  MPSPEC_CLAUSES("[shared_memory.unlink.twice]");
#ifdef _WIN32
  GTEST_SKIP() << "UNSUPPORTED: a POSIX clause";
#endif
  const std::string n = fresh_name();
  Scenario s;
  memory_scenario(s, {"X"}, {"a", "b"});
  MPSPEC_START(s);
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", n, true, 8)), n));
  ASSERT_TRUE(gives(s.await(open(s, "b", "X", n)), n));
  ASSERT_TRUE(s.await(s.call("a", "X", "unlink")).ok(nullptr));
  EXPECT_TRUE(os_error(s.await(s.call("a", "X", "unlink")), "ENOENT")) << "the same handle";
  EXPECT_TRUE(os_error(s.await(s.call("b", "X", "unlink")), "ENOENT")) << "another process";
}

// ---------------------------------------------------------------------------------------------
// §5 Lifetime

TEST(SharedMemory, ChildrenEndingKeepTheSegment) {
  MPSPEC_CLAUSES("[shared_memory.lifetime.children]");
  const std::string n = fresh_name();
  Scenario s;
  s.object("S", "SharedMemory", create_entry(n, 8));
  memory_scenario(s, {"X"}, {"a", "b", "c"});
  s.needs_feature("kill");
  MPSPEC_START(s);
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", n)), n)) << "a attaches";
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(0, "a"))).ok());
  ASSERT_TRUE(s.await(s.call("b", "S", "write", data_at(1, "b"))).ok()) << "b never attaches";
  s.kill("a");
  s.kill("b");
  grace();
  ASSERT_TRUE(gives(s.await(open(s, "c", "X", n)), n)) << "the segment outlived a and b";
  EXPECT_TRUE(gives_bytes(s.await(s.call("c", "X", "read", part(0, 2))), "ab"));
}

// strict: no process's end but the creator's ends the segment; here an unrelated attacher and
// a related one are killed.
TEST(SharedMemory, AttacherEndingKeepsTheSegment) {
  MPSPEC_CLAUSES("[shared_memory.lifetime.attacher]");
  const std::string n = fresh_name();
  Scenario s;
  memory_scenario(s, {"X"}, {"a", "b", "c"});
  s.independent_actor("u");
  s.needs_feature("kill").needs_feature("independent");
  MPSPEC_START(s);
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", n, true, 8)), n));
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(0, "keep"))).ok());
  ASSERT_TRUE(gives(s.await(open(s, "u", "X", n)), n)) << "an unrelated process attaches";
  ASSERT_TRUE(gives(s.await(open(s, "b", "X", n)), n)) << "a related one too";
  s.kill("u");
  s.kill("b");
  grace();
  const CallResult again = s.await(open(s, "c", "X", n));
  ASSERT_TRUE(gives(again, n)) << "the end of a process that attached ended the segment";
  EXPECT_TRUE(gives_bytes(s.await(s.call("c", "X", "read", part(0, 4))), "keep"));
}

TEST(SharedMemory, HandleBytesOutliveOthers) {
  MPSPEC_CLAUSES("[shared_memory.lifetime.mapping]");
#ifdef _WIN32
  GTEST_SKIP() << "UNSUPPORTED: a POSIX clause";
#endif
  const std::string n = fresh_name();
  Scenario s;
  memory_scenario(s, {"X"}, {"a", "b", "c"});
  MPSPEC_START(s);
  const bool can_kill = Backend::get().has_feature("kill");
  ASSERT_TRUE(gives(s.await(open(s, "a", "X", n, true, 8)), n));
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(0, "mine"))).ok());
  ASSERT_TRUE(gives(s.await(open(s, "b", "X", n)), n));
  ASSERT_TRUE(gives(s.await(open(s, "c", "X", n)), n));
  ASSERT_TRUE(s.await(s.call("b", "X", "write", data_at(4, "b"))).ok());
  ASSERT_TRUE(s.await(s.call("c", "X", "unlink")).ok()) << "another process unlinks";
  ASSERT_TRUE(s.await(s.call("c", "X", "close")).ok()) << "and closes";
  if (can_kill) {
    s.kill("b");
    grace();
  }
  EXPECT_TRUE(gives_bytes(s.await(s.call("a", "X", "read", part(0, 5))), "mineb"));
  ASSERT_TRUE(s.await(s.call("a", "X", "write", data_at(5, "!!!"))).ok());
  EXPECT_TRUE(gives_bytes(s.await(s.call("a", "X", "read", whole())), "mineb!!!"));
}

}  // namespace
}  // namespace mpspec
