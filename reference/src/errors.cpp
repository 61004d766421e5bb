// The key functions of the exception classes live here so that each class has
// one vtable and one type_info, also when libmp is a shared library.
#include "mp/errors.hpp"

#include <utility>

namespace mp {

const char* ValueError::kind() const noexcept { return "ValueError"; }
const char* AssertionError::kind() const noexcept { return "AssertionError"; }
const char* TimeoutError::kind() const noexcept { return "TimeoutError"; }
const char* OwnerDied::kind() const noexcept { return "OwnerDied"; }
const char* RuntimeError::kind() const noexcept { return "RuntimeError"; }
const char* Full::kind() const noexcept { return "Full"; }
const char* Empty::kind() const noexcept { return "Empty"; }
const char* AttributeError::kind() const noexcept { return "AttributeError"; }

OSError::OSError(int errnum, const std::string& strerror)
    : Error("[Errno " + std::to_string(errnum) + "] " + strerror), errnum_(errnum) {}
const char* OSError::kind() const noexcept { return "OSError"; }
const char* EOFError::kind() const noexcept { return "EOFError"; }
BufferTooShort::BufferTooShort(std::string message)
    : Error("message of " + std::to_string(message.size()) + " bytes does not fit the buffer"),
      message_(std::make_shared<const std::string>(std::move(message))) {}
const char* BufferTooShort::kind() const noexcept { return "BufferTooShort"; }
const char* AuthenticationError::kind() const noexcept { return "AuthenticationError"; }
const char* ProcessError::kind() const noexcept { return "ProcessError"; }
const char* NotImplementedError::kind() const noexcept { return "NotImplementedError"; }
const char* TypeError::kind() const noexcept { return "TypeError"; }
const char* OverflowError::kind() const noexcept { return "OverflowError"; }
const char* IndexError::kind() const noexcept { return "IndexError"; }
const char* KeyError::kind() const noexcept { return "KeyError"; }
const char* WorkerLost::kind() const noexcept { return "WorkerLost"; }

void throw_error(std::string_view kind, const std::string& message) {
  if (kind == "ValueError") throw ValueError(message);
  if (kind == "AssertionError") throw AssertionError(message);
  if (kind == "TimeoutError") throw TimeoutError(message);
  if (kind == "OwnerDied") throw OwnerDied(message);
  if (kind == "Full") throw Full(message);
  if (kind == "Empty") throw Empty(message);
  if (kind == "RuntimeError") throw RuntimeError(message);
  if (kind == "AttributeError") throw AttributeError(message);
  if (kind == "OSError") throw OSError(message);
  if (kind == "EOFError") throw EOFError(message);
  if (kind == "BufferTooShort") throw BufferTooShort(message);
  if (kind == "AuthenticationError") throw AuthenticationError(message);
  if (kind == "ProcessError") throw ProcessError(message);
  if (kind == "NotImplementedError") throw NotImplementedError(message);
  if (kind == "TypeError") throw TypeError(message);
  if (kind == "OverflowError") throw OverflowError(message);
  if (kind == "IndexError") throw IndexError(message);
  if (kind == "KeyError") throw KeyError(message);
  if (kind == "WorkerLost") throw WorkerLost(message);
  throw RuntimeError(message);
}

}  // namespace mp
