// -----------------------------------------------------------------------------
// File: src/platform/spawn.hpp
// -----------------------------------------------------------------------------
//
// INTERNAL: part of libmp's platform layer (private to src/). The system calls
// of the `spawn` start method and of mp::parent_process(): starting a fresh
// execution of the program image, handing it a block of start-up data through
// an inherited memfd, and watching a parent process end.

#ifndef MP_SRC_PLATFORM_SPAWN_HPP_
#define MP_SRC_PLATFORM_SPAWN_HPP_

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "mp/platform/clock.hpp"
#include "mp/platform/process.hpp"

namespace mp::platform {

// A watch on the caller's parent process.
struct ParentWatch {
  // A pidfd of the parent (close-on-exec), readable once the parent has ended;
  // -1 if the parent had already ended or pidfds are unavailable.
  int fd = -1;
  // Whether the parent was found ended when the watch was made.
  bool ended = false;
};

// Opens a watch on `parent`, which must be the pid of the caller's parent.
// Robust against pid reuse: the pidfd is kept only if getppid() still names
// `parent` after it was opened (a process that is reparented never gets its
// old parent back). Never throws.
ParentWatch watch_parent(pid_t parent) noexcept;

// Whether `parent` (a watch made by watch_parent for it) still runs; never
// blocks. Without a pidfd: whether getppid() still names it.
bool parent_running(const ParentWatch& watch, pid_t parent) noexcept;

// Waits until `parent` has ended or `deadline` passes; true if it has ended.
// With a pidfd, blocks in poll(); without one, checks getppid() every 5 ms.
bool wait_parent(const ParentWatch& watch, pid_t parent, Deadline deadline);

// Throws mp::ValueError unless `fd` is an open descriptor.
void check_open_fd(int fd);

// A new memfd (close-on-exec) holding `data`. Throws std::system_error.
int data_fd(std::string_view data);

// All of the memfd `fd` from offset 0. Throws std::system_error.
std::string read_data_fd(int fd);

// argv[0] of the calling program (the first string of /proc/self/cmdline), or
// "" if unreadable.
std::string program_argv0();

// Starts a fresh execution of the calling program's image (/proc/self/exe)
// with `argv`: forks; the child marks every descriptor above 2 close-on-exec
// except those in `keep_fds` (which stay open under their numbers) and execs.
// Returns in the parent once the exec succeeded, with the child's pid and
// sentinel as fork_child() gives them; the sentinel's pipe fallback keeps the
// pipe's write end open across the exec. Throws std::system_error if fork or
// exec fails (a child whose exec failed is reaped first).
ForkedChild spawn_child(const std::vector<std::string>& argv, const std::vector<int>& keep_fds);

}  // namespace mp::platform

#endif  // MP_SRC_PLATFORM_SPAWN_HPP_
