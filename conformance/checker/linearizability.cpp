#include "linearizability.hpp"

#include <cstdio>
#include <cstdlib>

namespace mpspec::check {

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kNotLinearizable:
      return "not linearizable";
    case Verdict::kUnknown:
      return "unknown";
  }
  return "?";
}

namespace detail {

std::string format_offset(std::int64_t ns) {
  const char* sign = ns < 0 ? "-" : "+";
  const double mag = static_cast<double>(ns < 0 ? -ns : ns);
  char buf[64];
  if (mag < 1e4) {
    std::snprintf(buf, sizeof buf, "%s%.0f ns", sign, mag);
  } else if (mag < 1e7) {
    std::snprintf(buf, sizeof buf, "%s%.3f us", sign, mag / 1e3);
  } else if (mag < 1e10) {
    std::snprintf(buf, sizeof buf, "%s%.3f ms", sign, mag / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%s%.3f s", sign, mag / 1e9);
  }
  return buf;
}

std::string format_interval(std::int64_t invoke_ns, const std::optional<std::int64_t>& return_ns,
                            std::int64_t origin_ns) {
  return "[" + format_offset(invoke_ns - origin_ns) + ", " +
         (return_ns ? format_offset(*return_ns - origin_ns) : std::string("never returned")) + "]";
}

}  // namespace detail
}  // namespace mpspec::check
