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

#include <stdexcept>

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

}  // namespace mp

#endif  // MP_ERRORS_HPP_
