// The key functions of the exception classes live here so that each class has
// one vtable and one type_info, also when libmp is a shared library.
#include "mp/errors.hpp"

namespace mp {

const char* ValueError::kind() const noexcept { return "ValueError"; }
const char* AssertionError::kind() const noexcept { return "AssertionError"; }
const char* TimeoutError::kind() const noexcept { return "TimeoutError"; }
const char* OwnerDied::kind() const noexcept { return "OwnerDied"; }
const char* RuntimeError::kind() const noexcept { return "RuntimeError"; }
const char* AttributeError::kind() const noexcept { return "AttributeError"; }

}  // namespace mp
