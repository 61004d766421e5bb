// Unit tests of mp::SharedMemory (spec/sharedctypes/shared_memory.md). Each
// test names the clauses it checks, uses names unique to this process, and
// removes every segment it made (an Unlinker per test), whatever happens.
#include "mp/shared_memory.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "mp/errors.hpp"
#include "test_util.hpp"

extern char** environ;

namespace {

using mp::SharedMemory;
using mp_test::Child;
using mp_test::Pipe;

// A name unique to this test process: letters and digits, starts with a letter.
std::string unique_name(const char* tag) {
  return std::string("t") + std::to_string(getpid()) + tag;
}

bool exists(const std::string& name) {
  struct stat st {};
  return ::stat(("/dev/shm/" + name).c_str(), &st) == 0;
}

// Unlinks the listed names at the end of a test (segments already gone are
// fine), so that no test leaves a /dev/shm entry behind.
class Unlinker {
 public:
  ~Unlinker() {
    for (const auto& n : names_) ::shm_unlink(("/" + n).c_str());
  }
  const std::string& add(std::string name) { return names_.emplace_back(std::move(name)); }

 private:
  std::vector<std::string> names_;
};

int errno_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const mp::OSError& e) {
    return e.errnum();
  }
  return 0;
}

// [shared_memory.create.named] [shared_memory.create.zeroed] [shared_memory.size.exact]
// [shared_memory.size.at_least] [shared_memory.name.stable] [shared_memory.attach.name]
TEST(SharedMemory, CreateNamedAttachAndShare) {
  Unlinker clean;
  const std::string name = clean.add(unique_name("a"));
  SharedMemory shm(name, true, 5000);
  EXPECT_EQ(shm.name(), name);
  EXPECT_EQ(shm.size(), 5000u);
  ASSERT_EQ(shm.buf().size(), 5000u);
  for (std::byte b : shm.buf()) ASSERT_EQ(b, std::byte{0});
  EXPECT_TRUE(exists(name));
  shm.write(10, "hello");
  SharedMemory other(name);
  EXPECT_EQ(other.size(), 5000u);
  EXPECT_EQ(other.read(10, 5), "hello");
  other.write(0, "X");
  EXPECT_EQ(shm.read(0, 1), "X");
  EXPECT_EQ(shm.read(4998).size(), 2u);
  shm.unlink();
  EXPECT_EQ(shm.name(), name);
}

// [shared_memory.create.generated] [shared_memory.create.generated.form]
TEST(SharedMemory, GeneratedNamesAreDistinctAndAttachable) {
  Unlinker clean;
  SharedMemory a(std::nullopt, true, 10);
  clean.add(a.name());
  SharedMemory b(std::nullopt, true, 10);
  clean.add(b.name());
  EXPECT_NE(a.name(), b.name());
  EXPECT_LE(a.name().size(), 13u);
  EXPECT_NE(a.name()[0], '/');
  a.write(0, "z");
  SharedMemory a2(a.name());
  EXPECT_EQ(a2.read(0, 1), "z");
  a.unlink();
  b.unlink();
}

// [shared_memory.create.exists]
TEST(SharedMemory, CreatingAnExistingNameFailsAndLeavesItAlone) {
  Unlinker clean;
  const std::string name = clean.add(unique_name("e"));
  SharedMemory shm(name, true, 100);
  shm.write(0, "keep");
  EXPECT_EQ(errno_of([&] { SharedMemory again(name, true, 50); }), EEXIST);
  SharedMemory other(name);
  EXPECT_EQ(other.size(), 100u);
  EXPECT_EQ(other.read(0, 4), "keep");
}

// [shared_memory.create.size.zero] [shared_memory.size.negative] [shared_memory.name.none]
// [shared_memory.create.failed.clean]
TEST(SharedMemory, ArgumentErrorsCreateNothing) {
  Unlinker clean;
  const std::string name = clean.add(unique_name("z"));
  EXPECT_THROW(SharedMemory(name, true, 0), mp::ValueError);
  EXPECT_FALSE(exists(name));
  EXPECT_THROW(SharedMemory(name, true, -1), mp::ValueError);
  EXPECT_FALSE(exists(name));
  EXPECT_THROW(SharedMemory(std::nullopt, false, 10), mp::ValueError);
  EXPECT_THROW(SharedMemory(std::string("a\0b", 3), true, 10), mp::ValueError);
  SharedMemory shm(name, true, 1);
  EXPECT_THROW(SharedMemory(name, false, -5), mp::ValueError);  // also when attaching
  shm.unlink();
}

// [shared_memory.create.failed.clean]
TEST(SharedMemory, FailedCreationLeavesNoSegment) {
  Unlinker clean;
  const std::string name = clean.add(unique_name("f"));
  // Too large for ftruncate (or for mmap): the creation fails after shm_open.
  EXPECT_THROW(SharedMemory(name, true, INT64_MAX), mp::OSError);
  EXPECT_FALSE(exists(name));
  SharedMemory shm(name, true, 8);  // the name is free
  EXPECT_EQ(shm.size(), 8u);
  shm.unlink();
}

// [shared_memory.attach.size] [shared_memory.attach.missing]
TEST(SharedMemory, AttachIgnoresSizeAndNeedsAnExistingName) {
  Unlinker clean;
  const std::string name = clean.add(unique_name("s"));
  SharedMemory shm(name, true, 5000);
  EXPECT_EQ(SharedMemory(name, false, 10).size(), 5000u);
  EXPECT_EQ(SharedMemory(name, false, 100000).size(), 5000u);
  EXPECT_EQ(errno_of([&] { SharedMemory missing(unique_name("missing")); }), ENOENT);
  shm.unlink();
}

// [shared_memory.name.portable] [shared_memory.name.invalid]
TEST(SharedMemory, PortableAndLongNames) {
  Unlinker clean;
  std::string short_name = unique_name("P");
  short_name.resize(13, 'x');
  clean.add(short_name);
  SharedMemory a(short_name, true, 1);
  EXPECT_EQ(a.name(), short_name);
  std::string long_name = unique_name("L") + "-_";
  long_name.resize(200, 'y');
  clean.add(long_name);
  SharedMemory b(long_name, true, 1);
  EXPECT_EQ(SharedMemory(long_name).name(), long_name);
  EXPECT_NE(errno_of([] { SharedMemory bad("a/b", true, 1); }), 0);
  a.unlink();
  b.unlink();
}

// [shared_memory.close.handle] [shared_memory.close.idempotent] [shared_memory.buf.bounds]
TEST(SharedMemory, CloseEndsOneHandleOnly) {
  Unlinker clean;
  const std::string name = clean.add(unique_name("c"));
  SharedMemory shm(name, true, 16);
  SharedMemory other(name);
  other.close();
  EXPECT_TRUE(other.closed());
  other.close();  // idempotent
  EXPECT_THROW(other.buf(), mp::ValueError);
  EXPECT_THROW(other.read(0, 1), mp::ValueError);
  EXPECT_THROW(other.write(0, "a"), mp::ValueError);
  EXPECT_EQ(other.size(), 16u);
  shm.write(0, "still");
  EXPECT_EQ(SharedMemory(name).read(0, 5), "still");
  EXPECT_THROW(shm.read(10, 7), mp::ValueError);
  EXPECT_THROW(shm.read(17), mp::ValueError);
  EXPECT_THROW(shm.write(15, "ab"), mp::ValueError);
  other.unlink();  // through a closed handle
  EXPECT_FALSE(exists(name));
}

// [shared_memory.unlink.name] [shared_memory.unlink.mappings] [shared_memory.unlink.twice]
// [shared_memory.lifetime.mapping]
TEST(SharedMemory, UnlinkRemovesTheNameNotTheMappings) {
  Unlinker clean;
  const std::string name = clean.add(unique_name("u"));
  SharedMemory shm(name, true, 32);
  SharedMemory other(name);
  shm.write(0, "old");
  shm.unlink();
  EXPECT_EQ(errno_of([&] { SharedMemory gone(name); }), ENOENT);
  EXPECT_EQ(errno_of([&] { shm.unlink(); }), ENOENT);
  other.write(3, "!");
  EXPECT_EQ(shm.read(0, 4), "old!");
  SharedMemory fresh(name, true, 32);
  EXPECT_EQ(fresh.read(0, 4), std::string(4, '\0'));
  fresh.write(0, "new");
  EXPECT_EQ(shm.read(0, 3), "old");
  fresh.unlink();
}

// [shared_memory.process.inherit] [shared_memory.lifetime.children]
// [shared_memory.lifetime.attacher]
TEST(SharedMemory, ForkedChildrenEndingDoNotEndTheSegment) {
  Unlinker clean;
  const std::string name = clean.add(unique_name("k"));
  SharedMemory shm(name, true, 64);
  {
    Child inherited([&] {  // uses the inherited handle, closes its copy, exits
      shm.write(0, "i");
      shm.close();
      return 0;
    });
    ASSERT_EQ(inherited.exit_code(), 0);
  }
  {
    Child attacher([&] {  // attaches by name, exits normally
      SharedMemory mine(name);
      mine.write(1, "a");
      return 0;
    });
    ASSERT_EQ(attacher.exit_code(), 0);
  }
  {
    Pipe attached;
    Child killed([&] {  // attaches by name and is killed
      SharedMemory mine(name);
      mine.write(2, "k");
      attached.send('a');
      pause();
      return 0;
    });
    ASSERT_TRUE(attached.receive());
    ASSERT_TRUE(killed.kill_and_reap());
  }
  EXPECT_TRUE(exists(name));
  EXPECT_EQ(SharedMemory(name).read(0, 3), "iak");
  EXPECT_EQ(shm.read(0, 3), "iak");
  shm.unlink();
}

// The helper process of UnrelatedProcessAttachesByName: a fresh execution of
// this test program (posix_spawn of /proc/self/exe), which shares nothing with
// the creator but the segment's name, given in MP_SHM_TEST_ATTACH.
TEST(SharedMemoryHelper, AttachAndWrite) {
  const char* name = std::getenv("MP_SHM_TEST_ATTACH");
  if (name == nullptr) GTEST_SKIP() << "only run as the helper of UnrelatedProcessAttachesByName";
  SharedMemory shm(name);
  shm.write(0, "unrelated");
  std::_Exit(shm.size() == 100 ? 0 : 3);
}

// [shared_memory.attach.unrelated] [shared_memory.lifetime.attacher]
TEST(SharedMemory, UnrelatedProcessAttachesByName) {
  Unlinker clean;
  const std::string name = clean.add(unique_name("x"));
  SharedMemory shm(name, true, 100);
  const std::string env = "MP_SHM_TEST_ATTACH=" + name;
  std::vector<char*> envp;
  envp.push_back(const_cast<char*>(env.c_str()));
  for (char** e = environ; *e != nullptr; ++e)
    if (std::string_view(*e).rfind("MP_SHM_TEST_ATTACH=", 0) != 0) envp.push_back(*e);
  envp.push_back(nullptr);
  char arg0[] = "mp_shared_memory_test";
  char arg1[] = "--gtest_filter=SharedMemoryHelper.AttachAndWrite";
  char* argv[] = {arg0, arg1, nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);  // quiet helper
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ASSERT_EQ(rc, 0);
  int status = 0;
  const auto deadline = mp_test::Clock::now() + mp_test::kLiveness;
  pid_t r = 0;
  while ((r = ::waitpid(pid, &status, WNOHANG)) == 0 && mp_test::Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (r != pid) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "the helper did not end";
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(shm.read(0, 9), "unrelated");
  EXPECT_TRUE(exists(name));  // its end did not unlink the segment
  EXPECT_EQ(SharedMemory(name).read(0, 9), "unrelated");
  shm.unlink();
}

// Move semantics (no clause): the moved-to handle owns the mapping.
TEST(SharedMemory, MoveTransfersTheHandle) {
  Unlinker clean;
  SharedMemory a(std::nullopt, true, 4);
  clean.add(a.name());
  a.write(0, "m");
  SharedMemory b(std::move(a));
  EXPECT_TRUE(a.closed());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.read(0, 1), "m");
  b.unlink();
}

}  // namespace
