// Unit tests of mp::local. Comments name the clauses of spec/local/local.md a
// test exercises (the conformance suite is what checks them normatively).
#include "mp/local.hpp"

#include <gtest/gtest.h>
#include <stdio_ext.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/platform/shm.hpp"
#include "test_util.hpp"

namespace {

using mp::platform::SharedMapping;
using mp_test::Child;
using mp_test::Pipe;

// Counts live instances and destructor calls, in memory that forked children
// share with the test, so that a child's destructor calls are seen too.
struct Counters {
  std::atomic<int> live{0};
  std::atomic<int> destroyed{0};
};

class Tracked {
 public:
  Tracked(Counters* counters, int value) : counters_(counters), value_(value) {
    counters_->live.fetch_add(1);
  }
  Tracked(Tracked&& other) noexcept : counters_(other.counters_), value_(other.value_) {
    counters_->live.fetch_add(1);
  }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() {
    counters_->live.fetch_sub(1);
    counters_->destroyed.fetch_add(1);
  }
  int value() const { return value_; }

 private:
  Counters* counters_;
  int value_;
};

class LocalTest : public testing::Test {
 protected:
  SharedMapping mapping_ = SharedMapping::anonymous(sizeof(Counters));
  Counters* counters_ = ::new (mapping_.data()) Counters;
};

// [local.get.unset]
TEST(Local, GetOfUnsetValueThrowsAttributeError) {
  mp::local<int> local;
  EXPECT_FALSE(local.has_value());
  EXPECT_EQ(local.get_if(), nullptr);
  try {
    local.get();
    ADD_FAILURE() << "expected mp::AttributeError";
  } catch (const mp::AttributeError& e) {
    EXPECT_STREQ(e.kind(), "AttributeError");
  }
  const mp::local<int>& as_const = local;
  EXPECT_THROW(as_const.get(), mp::AttributeError);
  EXPECT_EQ(as_const.get_if(), nullptr);
  try {
    local.get();
  } catch (const mp::Error& e) {  // reachable through the base class
    EXPECT_STREQ(e.kind(), "AttributeError");
  }
}

// [local.set.get] [local.clear]
TEST(Local, SetGetReset) {
  mp::local<std::string> local;
  local.set("one");
  EXPECT_TRUE(local.has_value());
  EXPECT_EQ(local.get(), "one");
  ASSERT_NE(local.get_if(), nullptr);
  EXPECT_EQ(*local.get_if(), "one");
  local.get() += "!";  // get() is a reference to the stored value
  EXPECT_EQ(local.get(), "one!");
  local.set("two");
  EXPECT_EQ(local.get(), "two");
  local.reset();
  EXPECT_FALSE(local.has_value());
  EXPECT_THROW(local.get(), mp::AttributeError);
  local.reset();  // no-op
  EXPECT_EQ(local.emplace(std::size_t{3}, 'x'), "xxx");
  EXPECT_EQ(local.value_or_emplace("unused"), "xxx");
  local.reset();
  EXPECT_EQ(local.value_or_emplace("made"), "made");
  EXPECT_EQ(local.get(), "made");
}

TEST(Local, LocalsAreIndependent) {
  mp::local<int> a;
  mp::local<int> b;
  a.set(1);
  EXPECT_FALSE(b.has_value());
  b.set(2);
  EXPECT_EQ(a.get(), 1);
  EXPECT_EQ(b.get(), 2);
  a.reset();
  EXPECT_EQ(b.get(), 2);
  // A local created at a destroyed one's address never sees its values.
  for (int i = 0; i < 100; ++i) {
    std::optional<mp::local<int>> scoped;
    scoped.emplace();
    EXPECT_FALSE(scoped->has_value());
    scoped->set(i);
    scoped.reset();
  }
}

TEST_F(LocalTest, ValuesAreDestroyedOnReplaceResetAndLocalDestruction) {
  {
    mp::local<Tracked> local;
    local.emplace(counters_, 1);
    EXPECT_EQ(counters_->live.load(), 1);
    local.set(Tracked(counters_, 2));
    EXPECT_EQ(local.get().value(), 2);
    EXPECT_EQ(counters_->live.load(), 1);
    local.reset();
    EXPECT_EQ(counters_->live.load(), 0);
    local.emplace(counters_, 3);
  }
  EXPECT_EQ(counters_->live.load(), 0);
}

// A throwing constructor keeps the previous value.
TEST(Local, ThrowingEmplaceKeepsThePreviousValue) {
  struct Picky {
    explicit Picky(int v) : value(v) {
      if (v < 0) throw std::invalid_argument("negative");
    }
    int value;
  };
  mp::local<Picky> local;
  local.emplace(1);
  EXPECT_THROW(local.emplace(-1), std::invalid_argument);
  EXPECT_EQ(local.get().value, 1);
}

TEST(Local, MovingTransfersTheIdentity) {
  mp::local<int> a;
  a.set(7);
  std::atomic<bool> stored{false};
  std::atomic<bool> checked{false};
  std::atomic<int> seen{-1};
  mp::local<int>* current = &a;
  std::optional<mp::local<int>> b;
  std::thread other([&] {
    current->set(70);
    stored = true;
    while (!checked.load()) std::this_thread::yield();
    seen = b->get_if() != nullptr ? *b->get_if() : -1;
  });
  while (!stored.load()) std::this_thread::yield();
  b.emplace(std::move(a));
  checked = true;
  other.join();
  EXPECT_EQ(b->get(), 7);
  EXPECT_EQ(seen.load(), 70);   // the other thread's value moved too
  EXPECT_FALSE(a.has_value());  // NOLINT(bugprone-use-after-move): a new, empty local
  a.set(1);
  EXPECT_EQ(b->get(), 7);
  mp::local<int> c;
  c.set(3);
  c = std::move(*b);
  EXPECT_EQ(c.get(), 7);
  EXPECT_FALSE(b->has_value());
}

// --- Threads ----------------------------------------------------------------

// [local.thread.isolated]
TEST(LocalThreads, EachThreadSeesOnlyItsOwnValue) {
  constexpr int kThreads = 4;
  mp::local<int> local;
  local.set(-1);
  std::barrier sync(kThreads);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      if (local.has_value()) bad.fetch_add(1);  // not the main thread's
      if (local.get_if() != nullptr) bad.fetch_add(1);
      try {
        local.get();
        bad.fetch_add(1);
      } catch (const mp::AttributeError&) {
      }
      sync.arrive_and_wait();
      for (int i = 0; i < 1000; ++i) {
        local.set(t * 10000 + i);
        if (local.get() != t * 10000 + i) bad.fetch_add(1);
      }
      sync.arrive_and_wait();
      if (local.get() != t * 10000 + 999) bad.fetch_add(1);
      local.reset();  // [local.clear] affects this thread only
      sync.arrive_and_wait();
      if (local.has_value()) bad.fetch_add(1);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(local.get(), -1);
}

TEST_F(LocalTest, ThreadExitDestroysItsValues) {
  mp::local<Tracked> a;
  mp::local<Tracked> b;
  std::thread([&] {
    a.emplace(counters_, 1);
    b.emplace(counters_, 2);
  }).join();
  EXPECT_EQ(counters_->live.load(), 0);
  EXPECT_EQ(counters_->destroyed.load(), 2);
  EXPECT_FALSE(a.has_value());
}

// Destroying a local destroys every thread's value, while those threads run.
TEST_F(LocalTest, DestroyingALocalDestroysEveryThreadsValue) {
  constexpr int kThreads = 3;
  auto local = std::make_unique<mp::local<Tracked>>();
  std::barrier sync(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      local->emplace(counters_, t);
      sync.arrive_and_wait();  // stored
      sync.arrive_and_wait();  // destroyed by the main thread
    });
  }
  sync.arrive_and_wait();
  EXPECT_EQ(counters_->live.load(), kThreads);
  local->emplace(counters_, 99);
  local.reset();
  EXPECT_EQ(counters_->live.load(), 0);
  sync.arrive_and_wait();
  for (auto& th : threads) th.join();
  EXPECT_EQ(counters_->destroyed.load(), kThreads + 1);
}

// A value's destructor may use other locals.
TEST(LocalThreads, ValueDestructorMayUseLocals) {
  static mp::local<int> other;
  struct UsesOther {
    ~UsesOther() {
      other.set(5);
      other.reset();
      other.set(6);
    }
  };
  mp::local<UsesOther> local;
  std::thread([&] { local.emplace(); }).join();  // destroyed at thread exit
  local.emplace();
  local.reset();
  EXPECT_EQ(other.get(), 6);
  other.reset();
}

// --- Processes ----------------------------------------------------------------

// [local.fork.empty] [local.process.isolated]
TEST_F(LocalTest, ForkedChildSeesNothingAndDestroysNothing) {
  mp::local<Tracked> tracked;
  mp::local<std::string> text;
  tracked.emplace(counters_, 1);
  text.set("parent");
  Child child([&] {
    if (tracked.has_value() || text.has_value()) return 2;
    if (text.get_if() != nullptr) return 3;
    try {
      text.get();
      return 4;
    } catch (const mp::AttributeError&) {
    }
    text.set("child");
    if (text.get() != "child") return 5;
    tracked.emplace(counters_, 2);  // the parent's value is not destroyed
    if (counters_->destroyed.load() != 0) return 6;
    tracked.reset();  // only the child's own value
    if (counters_->destroyed.load() != 1) return 7;
    // A thread of the child sees nothing either.
    bool thread_saw = true;
    std::thread([&] { thread_saw = text.has_value(); }).join();
    if (thread_saw) return 8;
    return 0;
  });
  ASSERT_EQ(child.exit_code(), 0);
  EXPECT_EQ(text.get(), "parent");  // the child changed nothing here
  EXPECT_EQ(tracked.get().value(), 1);
  EXPECT_EQ(counters_->live.load(), 1);
  EXPECT_EQ(counters_->destroyed.load(), 1);  // only the child's own value
}

// The values a child inherited are never destroyed there, not even when its
// thread exits and the process exits normally (exit() runs the thread_local
// and static destructors).
TEST_F(LocalTest, ForkedChildNeverDestroysInheritedValuesEvenAtExit) {
  mp::local<Tracked> tracked;
  tracked.emplace(counters_, 1);
  Child child([&]() -> int {
    if (tracked.has_value()) return 2;  // abandons the inherited table
    // Drop the parent's buffered test output instead of printing it twice.
    __fpurge(stdout);
    __fpurge(stderr);
    std::exit(0);
  });
  ASSERT_EQ(child.exit_code(), 0);
  EXPECT_EQ(counters_->destroyed.load(), 0);
  EXPECT_EQ(tracked.get().value(), 1);
}

// [local.process.isolated]: a process that existed before the value was
// stored does not see it.
TEST(LocalProcesses, ProcessForkedBeforeTheStoreSeesNothing) {
  mp::local<int> local;
  Pipe to_child;
  Pipe to_parent;
  Child child([&] {
    if (to_child.receive() != 's') return 2;
    if (local.has_value()) return 3;
    local.set(2);
    to_parent.send('d');
    return local.get() == 2 ? 0 : 4;
  });
  local.set(1);
  to_child.send('s');
  EXPECT_EQ(to_parent.receive(), 'd');
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_EQ(local.get(), 1);
}

// [local.fork.empty] across generations, and from a thread other than main.
TEST(LocalProcesses, GrandchildForkedFromAThreadSeesNothing) {
  mp::local<int> local;
  local.set(1);
  std::thread([&] {
    local.set(2);
    Child child([&] {
      if (local.has_value()) return 2;
      local.set(3);
      Child grandchild([&] { return local.has_value() ? 2 : 0; });
      if (grandchild.exit_code() != 0) return 3;
      return local.get() == 3 ? 0 : 4;
    });
    EXPECT_EQ(child.exit_code(), 0);
    EXPECT_EQ(local.get(), 2);
  }).join();
  EXPECT_EQ(local.get(), 1);
}

// fork() while other threads store, reset and destroy locals: the child can
// still use locals (no lock inherited in a locked state).
TEST(LocalProcesses, ForkWhileOtherThreadsUseLocalsIsSafe) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        mp::local<int> scoped;  // erase_everywhere() on every iteration
        scoped.set(1);
        scoped.reset();
        scoped.set(2);
      }
    });
  }
  int failures = 0;
  for (int i = 0; i < 50; ++i) {
    Child child(
        [] {
          // (No threads here: ThreadSanitizer does not support starting
          // threads after a multi-threaded fork.)
          mp::local<int> fresh;
          fresh.set(1);
          {
            mp::local<int> doomed;  // erase_everywhere() takes the registry
            doomed.set(2);
          }
          return fresh.get() == 1 ? 0 : 2;
        },
        10);
    if (child.exit_code() != 0) ++failures;
  }
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
}

}  // namespace
