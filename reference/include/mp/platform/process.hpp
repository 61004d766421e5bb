// -----------------------------------------------------------------------------
// File: platform/process.hpp
// -----------------------------------------------------------------------------
//
// Process identity and liveness probes for libmp's crash-robust primitives.
// Internal to libmp (the platform layer): the public types use these to tell a
// waiter or owner that died from one that is merely slow.

#ifndef MP_PLATFORM_PROCESS_HPP_
#define MP_PLATFORM_PROCESS_HPP_

#include <sys/types.h>

namespace mp::platform {

// The calling process's id. Cached: glibc's getpid() is a system call. The
// cache is cleared in a child created by fork() (an atfork handler); a child
// created by a raw clone() system call that skips the handlers would see its
// parent's id, which libmp never does.
pid_t self_pid() noexcept;

// Whether the process `pid` has exited, including an exited process that its
// parent has not reaped yet (a zombie). Uses a pidfd where the kernel has
// pidfd_open (Linux 5.3), else kill(pid, 0) (which counts a zombie as alive).
// One or two system calls: not for a fast path.
bool process_exited(pid_t pid) noexcept;

// A cheaper probe, one kill(pid, 0): false once the process has exited and
// been reaped; a zombie and a process of another user count as alive. A pid
// <= 0 is never alive.
bool process_alive(pid_t pid) noexcept;

}  // namespace mp::platform

#endif  // MP_PLATFORM_PROCESS_HPP_
