// The CPython peer of a benchmark, measured in the same run: runs `python3 -c SCRIPT ARGS`,
// whose only output line is a float (the mean seconds of one operation, timed by the script
// with time.perf_counter()). The script must not contain a single quote.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

namespace mp_bench {

// The float the script printed; nullopt if python3 failed or printed no positive number.
inline std::optional<double> run_python(const std::string& script, const std::string& args) {
  const std::string command = "python3 -c '" + script + "' " + args + " 2>/dev/null";
  std::fflush(nullptr);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  char line[128] = {};
  const bool got = std::fgets(line, sizeof line, pipe) != nullptr;
  const int status = ::pclose(pipe);
  if (!got || status != 0) return std::nullopt;
  char* end = nullptr;
  const double seconds = std::strtod(line, &end);
  if (end == line || !(seconds > 0)) return std::nullopt;
  return seconds;
}

}  // namespace mp_bench
