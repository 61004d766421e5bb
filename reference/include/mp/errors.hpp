// -----------------------------------------------------------------------------
// File: errors.hpp
// -----------------------------------------------------------------------------
//
// The exceptions libmp throws. Each one names an *error kind* of the mpspec
// vocabulary (BLUEPRINT section 4): the kind is the name of the CPython
// exception that `multiprocessing` raises in the same situation, so a program
// (or the conformance suite) can compare outcomes across implementations by
// name alone.
//
//   mp::Error            abstract base; `kind()` returns the kind's name
//   mp::ValueError       "ValueError": a value is out of range for the call,
//                        e.g. a Lock released more often than acquired, a
//                        NaN timeout
//   mp::AssertionError   "AssertionError": the call violates a usage rule that
//                        CPython checks with `assert`, e.g. releasing an RLock
//                        the caller does not own
//   mp::TimeoutError     "TimeoutError": an operation that has no `false` /
//                        empty result to report a timeout with ran out of time
//   mp::OwnerDied        "OwnerDied": the process or thread that held a robust
//                        object died while holding it; the caller now holds it
//                        and the protected data may be inconsistent
//   mp::OSError          "OSError": the system refused, or a closed or
//                        one-way connection; carries errno (0 if none)
//   mp::EOFError         "EOFError": the peer closed, nothing left to read
//   mp::BufferTooShort   "BufferTooShort": a message longer than the buffer
//   mp::AuthenticationError "AuthenticationError": a failed handshake
//   mp::ProcessError     "ProcessError": a process could not be started
//   mp::NotImplementedError "NotImplementedError": the system cannot tell
//   mp::TypeError        "TypeError": a value of the wrong type, or one that
//                        cannot be carried
//   mp::OverflowError    "OverflowError": a number too large for its type
//   mp::IndexError       "IndexError": an index outside a sequence (e.g. an
//                        element of a shared array)
//   mp::KeyError         "KeyError": a key a mapping does not hold (e.g. a
//                        manager dict's __getitem__)
//   mp::WorkerLost       "WorkerLost": the pool worker running a task ended
//                        before it returned the task's result
//
// mp::throw_error() throws the class of a kind given by name (for errors that
// crossed a process boundary as a kind and a message).
//
// Operating-system failures that no kind describes (mmap running out of
// memory, ...) are reported as `std::system_error`. Outcomes that are expected
// in normal use are not exceptions: a timed-out `Lock::acquire` returns false.
//
// Example:
//
//   try {
//     lock.release();
//   } catch (const mp::Error& e) {
//     std::cerr << e.kind() << ": " << e.what() << "\n";  // "ValueError: ..."
//   }

#ifndef MP_ERRORS_HPP_
#define MP_ERRORS_HPP_

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mp {

// mp::Error
//
// Base of every exception that maps to an error kind. `what()` is the
// human-readable message (informative, not normative); `kind()` is the
// normative name and never changes for a given class.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;

  // Error::kind()
  //
  // The error kind's name, a string literal with static storage duration
  // (e.g. "ValueError").
  virtual const char* kind() const noexcept = 0;
};

// mp::ValueError
//
// An argument or the object's state makes the call invalid. Kind "ValueError".
class ValueError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::AssertionError
//
// A usage rule was broken that CPython enforces with `assert` (for example
// releasing an RLock owned by another thread). Kind "AssertionError".
class AssertionError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::TimeoutError
//
// A timed operation with no other way to report expiry ran out of time. Kind
// "TimeoutError".
class TimeoutError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::OwnerDied
//
// The holder of a robust object died while holding it. When this is thrown by
// an acquire, the caller holds the object afterwards (as with POSIX
// EOWNERDEAD) and is responsible for checking the protected data. Kind
// "OwnerDied".
class OwnerDied final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::Full
//
// A queue had no room for a put that was told not to wait (block=false) or
// whose timeout expired (Python's `queue.Full`). Kind "Full".
class Full final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::Empty
//
// A queue held nothing for a get that was told not to wait (block=false) or
// whose timeout expired (Python's `queue.Empty`). Kind "Empty".
class Empty final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::RuntimeError
//
// The call is not valid for the object's current state in a way CPython
// reports as RuntimeError (for example acquiring a file lock again through the
// handle that already holds it). Kind "RuntimeError".
class RuntimeError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::AttributeError
//
// A name has no value (for example reading a process-local value that was
// never set in this thread of this process). Kind "AttributeError".
class AttributeError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::OSError
//
// The operating system refused a call, or a handle is in a state that CPython
// reports as OSError: a closed Connection or Listener, a read on a write-only
// connection, a message longer than `maxlength`, end of file inside a message,
// a broken pipe. Kind "OSError" (CPython's subclasses such as BrokenPipeError
// and ConnectionResetError are all this kind; errnum() tells them apart).
//
//   mp::OSError(EPIPE, "Broken pipe")  what() == "[Errno 32] Broken pipe"
//   mp::OSError("handle is closed")     what() == "handle is closed", errnum() 0
class OSError final : public Error {
 public:
  // An error without an errno (CPython's `OSError(message)`).
  explicit OSError(const std::string& message) : Error(message), errnum_(0) {}
  // An error with an errno; what() is "[Errno <errnum>] <strerror>" as in
  // CPython. `strerror` is the description, usually std::strerror(errnum).
  OSError(int errnum, const std::string& strerror);

  const char* kind() const noexcept override;

  // The errno value, or 0 when the error has none (Python's `errno is None`).
  int errnum() const noexcept { return errnum_; }

 private:
  int errnum_;
};

// mp::EOFError
//
// A read found the peer's end closed with nothing left to read (no byte of a
// new message had arrived). Kind "EOFError". End of file *inside* a message is
// an OSError instead. what() is empty, as `str(EOFError())` is in Python.
class EOFError final : public Error {
 public:
  EOFError() : Error("") {}
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::BufferTooShort
//
// `Connection::recv_bytes_into` received a message longer than the space the
// buffer has after the offset. The message was consumed; message() holds all
// of it (CPython: `e.args[0]`). Kind "BufferTooShort".
class BufferTooShort final : public Error {
 public:
  explicit BufferTooShort(std::string message);
  const char* kind() const noexcept override;

  // The whole message that did not fit (arbitrary bytes).
  const std::string& message() const noexcept { return *message_; }

 private:
  // Shared so that copying the exception cannot throw.
  std::shared_ptr<const std::string> message_;
};

// mp::AuthenticationError
//
// The authentication handshake of a Listener or Client failed: the peer used
// another key, did not follow the protocol, or proposed an unsupported
// digest. Kind "AuthenticationError".
class AuthenticationError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::ProcessError
//
// A process could not be started for a reason CPython reports as
// `multiprocessing.ProcessError` (e.g. mp::Process::start() found no task
// registered under the process's task name). Kind "ProcessError".
class ProcessError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::NotImplementedError
//
// The system cannot provide what was asked (e.g. mp::cpu_count() when the
// number of CPUs is unknown). Kind "NotImplementedError".
class NotImplementedError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::TypeError
//
// A value has the wrong type for the call, or cannot be carried (e.g. reading
// a `mp::Value` holding a string as an int). Kind "TypeError".
class TypeError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::OverflowError
//
// A number is too large for the type that must hold it (e.g. a pickled int
// outside int64). Kind "OverflowError".
class OverflowError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::IndexError
//
// An index outside the bounds of a sequence (e.g. element 5 of a shared array
// of 3; CPython's `IndexError('invalid index')`). Kind "IndexError".
class IndexError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::KeyError
//
// A key that a mapping does not hold (e.g. `__getitem__` or `pop` of a
// manager dict; CPython's `KeyError('k')`, whose message is the key's repr).
// Kind "KeyError".
class KeyError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::WorkerLost
//
// The mp::Pool worker process that was running a task ended (crashed, was
// killed, or exited) before it returned the task's result. Kind "WorkerLost"
// (an mpspec kind: CPython's pool never completes such a task).
class WorkerLost final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

// mp::throw_error()
//
// Throws the mp::Error subclass whose kind() is `kind`, with `message` as its
// what() (every kind of this header: ValueError, AssertionError,
// TimeoutError, OwnerDied, Full, Empty, RuntimeError, AttributeError,
// OSError, EOFError, BufferTooShort, AuthenticationError, ProcessError,
// NotImplementedError, TypeError, OverflowError, IndexError, KeyError,
// WorkerLost). An
// OSError gets errnum() 0 and the message as it is; a BufferTooShort carries
// `message` as its payload (its what() then describes the payload's size). An
// unknown kind throws mp::RuntimeError(message).
[[noreturn]] void throw_error(std::string_view kind, const std::string& message);

}  // namespace mp

#endif  // MP_ERRORS_HPP_
