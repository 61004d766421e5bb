// Internals shared by manager.cpp (clients, Manager), manager_server.cpp (the server) and
// manager_referents.cpp (the built-in typeids).
#ifndef MP_SRC_MANAGER_INTERNAL_HPP_
#define MP_SRC_MANAGER_INTERNAL_HPP_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mp/connection.hpp"
#include "mp/manager.hpp"
#include "mp/value.hpp"

namespace mp::manager_detail {

// Reply kinds (CPython's).
inline constexpr std::string_view kReturn = "#RETURN";
inline constexpr std::string_view kError = "#ERROR";
inline constexpr std::string_view kTraceback = "#TRACEBACK";
inline constexpr std::string_view kProxy = "#PROXY";
inline constexpr std::string_view kGetValue = "#GETVALUE";

// The registry (built-ins registered on first use).
std::optional<TypeidSpec> find_typeid(std::string_view name);
void add_typeid(std::string name, TypeidSpec spec);  // ValueError if taken
void ensure_builtins();

// Address <-> Value ([family, text, port]), for the start-up report.
Value address_to_value(const Address& a);
Address address_from_value(const Value& v);

// Runs a server on `address` until a shutdown request (or, if `stop_fd` >= 0 becomes
// readable, until then). Calls `on_listening` with the bound address once it listens (from
// the calling thread). Throws the bind's error before listening.
struct ServeHooks {
  std::function<void(const Address&)> on_listening;
  int stop_fd = -1;  // another readable descriptor that stops the server (e.g. a signal pipe)
};
void serve(const Address& address, const std::string& authkey, const ServeHooks& hooks);

// The server task's name and its address argument (Manager::start).
const char* server_task_name();
std::string encode_address_arg(const Address& a);
Address decode_address_arg(const std::string& s);

// AF_UNIX connections upgrade to a SOCK_SEQPACKET socketpair after the handshake (one read per
// message instead of two): the client sends [None, "#UPGRADE", [], {}], the server answers with
// one byte carrying the client's end (SCM_RIGHTS) and serves the pair from then on.
inline constexpr std::string_view kUpgrade = "#UPGRADE";
void send_fd(int socket, int fd);  // throws OSError
int recv_fd(int socket);           // throws OSError / EOFError

// Waits up to about `spin_us` microseconds for `fd` to become readable by checking it without
// sleeping (poll with a zero timeout), so that a reply (or the next request) that comes at
// once is taken without the cost of a sleep and a wake-up; returns whether it is readable.
bool spin_readable(int fd, int spin_us);

// Rethrows an error reply's [kind, message] as the matching mp::Error.
[[noreturn]] void throw_kind(std::string_view kind, const std::string& message);

// Python-like helpers for the referents.
bool py_eq(const Value& a, const Value& b);

}  // namespace mp::manager_detail

#endif  // MP_SRC_MANAGER_INTERNAL_HPP_
