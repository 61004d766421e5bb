// mp::Connection::send() / recv(): values through the pickle codec (mp/codec.hpp).
#include <cstddef>
#include <span>
#include <string>

#include "mp/codec.hpp"
#include "mp/connection.hpp"
#include "mp/value.hpp"

namespace mp {

void Connection::send(const Value& value) {
  // Encode first: a value that cannot be encoded sends nothing.
  const std::vector<std::byte> payload = pickle_dumps(value, 4);
  send_bytes(std::span<const std::byte>(payload.data(), payload.size()));
}

Value Connection::recv() {
  const std::string payload = recv_bytes();
  return pickle_loads(std::as_bytes(std::span<const char>(payload.data(), payload.size())));
}

}  // namespace mp
