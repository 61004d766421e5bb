// barrier in the reference backend (not offered yet: registers nothing).
#include "types.hpp"

namespace mpspec::reference_backend {

void register_barrier(driverkit::Backend&) {}

}  // namespace mpspec::reference_backend
