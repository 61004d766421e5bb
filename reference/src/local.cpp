#include "mp/local.hpp"

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "mp/platform/process.hpp"

namespace mp::local_detail {

ValueBase::~ValueBase() = default;

namespace {

// One thread's values, in one process.
struct Table {
  explicit Table(pid_t owner_pid) : pid(owner_pid) {}

  const pid_t pid;  // the process that created the table
  // Taken by the owning thread for every access, and by erase_everywhere() in
  // other threads; never held while a value is destroyed.
  std::mutex mutex;
  std::unordered_map<std::uint64_t, std::unique_ptr<ValueBase>> values;
  // Links in the registry: the list of live tables, or (singly, through next)
  // the list of abandoned ones.
  Table* prev = nullptr;
  Table* next = nullptr;
  bool live = false;
};

// Every table of this process's live threads, so that erase_everywhere() can
// reach them, plus the tables inherited through fork(), which are kept
// reachable but never destroyed (their values belong to the parent).
//
// Lock order: the registry's mutex, then a table's. Values are destroyed with
// neither held, so their destructors may use locals freely.
struct Registry {
  std::mutex mutex;
  Table* live = nullptr;
  Table* abandoned = nullptr;
};

void before_fork() noexcept;
void after_fork_in_parent() noexcept;
void after_fork_in_child() noexcept;

Registry& registry() noexcept {
  // Never destroyed: threads may still exit (and retire their tables) while
  // static objects are being destroyed at exit().
  static Registry* const r = [] {
    auto* created = new Registry;
    // Without the handlers a child could inherit the mutex locked by another
    // thread of its parent. (pthread_atfork fails only for lack of memory.)
    ::pthread_atfork(&before_fork, &after_fork_in_parent, &after_fork_in_child);
    return created;
  }();
  return *r;
}

void link_live(Registry& r, Table* t) noexcept {
  t->prev = nullptr;
  t->next = r.live;
  if (r.live != nullptr) r.live->prev = t;
  r.live = t;
  t->live = true;
}

void unlink_live(Registry& r, Table* t) noexcept {
  if (!t->live) return;
  if (t->prev != nullptr) {
    t->prev->next = t->next;
  } else {
    r.live = t->next;
  }
  if (t->next != nullptr) t->next->prev = t->prev;
  t->prev = t->next = nullptr;
  t->live = false;
}

void before_fork() noexcept { registry().mutex.lock(); }
void after_fork_in_parent() noexcept { registry().mutex.unlock(); }

// In the child (one thread): every table belongs to the parent's threads.
void after_fork_in_child() noexcept {
  Registry& r = registry();
  while (Table* t = r.live) {
    unlink_live(r, t);
    t->next = r.abandoned;
    r.abandoned = t;
  }
  r.mutex.unlock();
}

// Moves a table of another process (found by the thread that forked) to the
// abandoned list, unless the fork handler did so already.
void abandon(Table* t) noexcept {
  Registry& r = registry();
  std::lock_guard<std::mutex> guard(r.mutex);
  if (!t->live) return;
  unlink_live(r, t);
  t->next = r.abandoned;
  r.abandoned = t;
}

// The calling thread's table. Destroys its values at thread exit.
struct ThreadSlot {
  Table* table = nullptr;
  ~ThreadSlot();
};

thread_local ThreadSlot slot;

// The calling thread's table in this process, or nullptr if it has none yet.
// This is where a fork is noticed: a table created by another process is
// dropped, as multiprocessing_utils drops its threading.local when
// os.getpid() changes.
Table* current_table() noexcept {
  Table* t = slot.table;
  if (t != nullptr && t->pid != platform::self_pid()) {
    abandon(t);
    slot.table = t = nullptr;
  }
  return t;
}

Table* current_table_or_create() {
  if (Table* t = current_table()) return t;
  auto* t = new Table(platform::self_pid());
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> guard(r.mutex);
    link_live(r, t);
  }
  slot.table = t;
  return t;
}

ThreadSlot::~ThreadSlot() {
  Table* t = table;
  if (t == nullptr) return;
  if (t->pid != platform::self_pid()) {
    abandon(t);
    table = nullptr;
    return;
  }
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> guard(r.mutex);
    unlink_live(r, t);  // erase_everywhere() no longer looks here
  }
  // A value's destructor may store into this thread's locals again: repeat
  // until the table stays empty.
  for (;;) {
    std::unordered_map<std::uint64_t, std::unique_ptr<ValueBase>> doomed;
    {
      std::lock_guard<std::mutex> guard(t->mutex);
      doomed.swap(t->values);
    }
    if (doomed.empty()) break;
  }
  table = nullptr;
  delete t;
}

std::atomic<std::uint64_t> next_id{1};

}  // namespace

std::uint64_t new_id() noexcept { return next_id.fetch_add(1, std::memory_order_relaxed); }

ValueBase* find(std::uint64_t id) noexcept {
  Table* t = current_table();
  if (t == nullptr) return nullptr;
  std::lock_guard<std::mutex> guard(t->mutex);
  const auto it = t->values.find(id);
  return it != t->values.end() ? it->second.get() : nullptr;
}

ValueBase* store(std::uint64_t id, std::unique_ptr<ValueBase> value) {
  Table* t = current_table_or_create();
  ValueBase* const result = value.get();
  std::unique_ptr<ValueBase> previous;  // destroyed after the unlock
  {
    std::lock_guard<std::mutex> guard(t->mutex);
    std::unique_ptr<ValueBase>& entry = t->values[id];
    previous = std::move(entry);
    entry = std::move(value);
  }
  return result;
}

void erase(std::uint64_t id) noexcept {
  Table* t = current_table();
  if (t == nullptr) return;
  std::unique_ptr<ValueBase> previous;  // destroyed after the unlock
  {
    std::lock_guard<std::mutex> guard(t->mutex);
    const auto it = t->values.find(id);
    if (it == t->values.end()) return;
    previous = std::move(it->second);
    t->values.erase(it);
  }
}

void erase_everywhere(std::uint64_t id) noexcept {
  ValueBase* doomed = nullptr;  // collected without allocating
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> registry_guard(r.mutex);
    for (Table* t = r.live; t != nullptr; t = t->next) {
      std::lock_guard<std::mutex> guard(t->mutex);
      const auto it = t->values.find(id);
      if (it == t->values.end()) continue;
      ValueBase* value = it->second.release();
      t->values.erase(it);
      value->next_doomed = doomed;
      doomed = value;
    }
  }
  while (doomed != nullptr) {
    ValueBase* next = doomed->next_doomed;
    delete doomed;
    doomed = next;
  }
}

}  // namespace mp::local_detail
