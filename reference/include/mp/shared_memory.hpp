// -----------------------------------------------------------------------------
// File: shared_memory.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::SharedMemory`, a named block of bytes that any
// process can map, including one unrelated to its creator, with the semantics
// of Python's `multiprocessing.shared_memory.SharedMemory` on POSIX (normative
// text: mpspec `spec/sharedctypes/shared_memory.md`).
//
// One process creates a segment, with a size and a name of its choice or a
// generated one; others *attach* to it by that name. Each SharedMemory object
// is one *handle*: a mapping of the segment's bytes in this process. close()
// ends that handle's access; unlink() removes the name, after which the bytes
// live on for the handles still open.
//
//   mp::SharedMemory shm(std::nullopt, /*create=*/true, 4096);  // generated name
//   std::span<std::byte> bytes = shm.buf();                      // 4096 zero bytes
//   shm.write(0, "hello");
//
//   // in any process, related or not:
//   mp::SharedMemory other(shm.name());                          // attach by name
//   std::string s = other.read(0, 5);                            // "hello"
//   other.close();
//
//   shm.close();
//   shm.unlink();                                                // remove the name
//
// On Linux a segment is a POSIX shared memory object (shm_open, a file under
// /dev/shm named "/" + name()), sized with ftruncate and mapped MAP_SHARED.
//
// Lifetime ([shared_memory.lifetime.attacher], strict profile). There is no
// resource tracker: no process's end — creator, attacher, child or unrelated
// process, normal exit or killed — ever unlinks a segment. A segment lives
// until some process calls unlink() (or the system reboots); a program that
// creates segments must unlink them. A handle's bytes stay valid until the
// handle is closed or destroyed, whatever other processes do meanwhile
// ([shared_memory.lifetime.mapping], [shared_memory.unlink.mappings]).
//
// Processes. A child forked after a handle was made inherits the handle (its
// copy of the object and mapping) and may use it, close its copy, or attach
// again by name ([shared_memory.process.inherit]). A spawned or unrelated
// process attaches by name ([shared_memory.attach.unrelated]).
//
// Blocking. Nothing blocks beyond the system calls. Nothing synchronises
// access to the bytes either: use a lock (or the bytes' own atomics).
//
// Threads. A handle may be read and written from several threads; close()
// must not race with other calls on the same handle.
//
// Errors (what() follows CPython where it has a message):
//
//   call                     condition                              kind
//   -----------------------  -------------------------------------  ----------
//   constructor              name nullopt and create false          ValueError
//   constructor              size < 0                               ValueError
//   constructor (create)     size == 0                              ValueError
//   constructor (create)     the name exists (EEXIST)               OSError
//   constructor (attach)     no segment of the name (ENOENT)        OSError
//   constructor (attach)     the segment is empty                   ValueError
//   constructor              name with a NUL character              ValueError
//   constructor              the system refuses (EINVAL, EACCES,…)  OSError
//   buf/read/write           the handle is closed                   ValueError
//   read/write               outside [0, size())                    ValueError
//   unlink                   the name no longer exists (ENOENT)     OSError
//
// mp::OSError carries the errno (errnum()). A creation that throws leaves no
// segment behind: its name is free for a later creation
// ([shared_memory.create.failed.clean]). Creating with the name of an existing
// segment leaves that segment and its bytes untouched
// ([shared_memory.create.exists]).

#ifndef MP_SHARED_MEMORY_HPP_
#define MP_SHARED_MEMORY_HPP_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mp {

// mp::SharedMemory
//
// One handle to a named shared memory segment. Move-only: the handle owns its
// mapping, which the destructor (or close()) unmaps. Neither the destructor
// nor close() unlinks the segment.
class SharedMemory {
 public:
  // SharedMemory::SharedMemory()
  //
  // Python's SharedMemory(name=None, create=False, size=0).
  //
  // create true: a new segment of exactly `size` bytes, all zero
  // ([shared_memory.create.named], [shared_memory.create.zeroed],
  // [shared_memory.size.exact]), named `name`, or, for nullopt, a generated
  // name that no segment has ("mp_" and 8 hexadecimal digits, 11 characters;
  // [shared_memory.create.generated]).
  //
  // create false: attaches to the existing segment `name`
  // ([shared_memory.attach.name]); `size` is ignored, except that a negative
  // one is refused ([shared_memory.attach.size], [shared_memory.size.negative]).
  //
  // Names: the portable ones are 1 to 13 characters of ASCII letters, digits,
  // '_' and '-' starting with a letter; Linux takes such names up to 255
  // characters ([shared_memory.name.portable]). The system name is "/" + name.
  // Throws as the table above says.
  explicit SharedMemory(std::optional<std::string> name, bool create = false,
                        std::int64_t size = 0);

  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  // Closes the handle (not unlink).
  ~SharedMemory();

  // SharedMemory::name()
  //
  // The name the handle created or attached with, without the leading '/' of
  // the system name; never changes, also after close() and unlink()
  // ([shared_memory.name.stable]).
  const std::string& name() const noexcept { return name_; }

  // SharedMemory::size()
  //
  // The segment's size in bytes: the requested size for a creator, the
  // segment's size for an attacher. Unchanged by close().
  std::size_t size() const noexcept { return size_; }

  // SharedMemory::buf()
  //
  // The segment's bytes, size() of them, readable and writable, shared with
  // every other handle of the segment in any process. Valid until close().
  // Throws mp::ValueError if the handle is closed.
  std::span<std::byte> buf() const;

  // SharedMemory::read() / write()
  //
  // Copies `count` bytes from `offset` (nullopt: to the end) out of the
  // segment, or `data` into it at `offset`. Throws mp::ValueError if the
  // handle is closed or the range leaves [0, size()) (nothing is copied then).
  std::string read(std::size_t offset = 0, std::optional<std::size_t> count = std::nullopt) const;
  void write(std::size_t offset, std::string_view data);

  // SharedMemory::close()
  //
  // Ends this handle's access: unmaps its bytes. Other handles, in this and
  // other processes, keep working, and the segment stays attachable
  // ([shared_memory.close.handle]). Idempotent: closing a closed handle does
  // nothing ([shared_memory.close.idempotent]). Never throws.
  void close() noexcept;

  // Whether close() was called (or the object was moved from).
  bool closed() const noexcept { return data_ == nullptr; }

  // SharedMemory::unlink()
  //
  // Removes the segment's name (open or closed handle alike): later attaches
  // by the name fail with ENOENT and a creation with the name makes a new
  // segment ([shared_memory.unlink.name]); open handles keep their bytes
  // ([shared_memory.unlink.mappings]). Throws mp::OSError(ENOENT) when the name
  // no longer exists ([shared_memory.unlink.twice]), mp::OSError for any other
  // refusal.
  void unlink() const;

 private:
  std::string name_;
  std::size_t size_ = 0;
  std::byte* data_ = nullptr;
};

}  // namespace mp

#endif  // MP_SHARED_MEMORY_HPP_
