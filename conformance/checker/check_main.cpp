// mpspec-check FILE.json [--budget-ms N]: judges a saved history (conformance/checker/
// history.hpp format; fixtures and the suite's saved counterexamples) against the spec's models.
// Exit status: 0 linearizable, 1 not linearizable, 2 unknown (budget exhausted), 3 bad input.
#include <chrono>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>

#include "check.hpp"
#include "history.hpp"

namespace {

constexpr int kBadInput = 3;

int usage(const std::string& why) {
  std::cerr << "mpspec-check: " << why << "\n"
            << "usage: mpspec-check FILE.json [--budget-ms N]\n"
            << "  Checks a history (format mpspec-history/1) for linearizability against the\n"
            << "  spec's models. Exit status: 0 linearizable, 1 not linearizable, 2 unknown\n"
            << "  (the budget ran out, default 10000 ms), 3 bad input.\n";
  return kBadInput;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  long long budget_ms = 10000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage("help");
      return 0;
    }
    if (arg == "--budget-ms" || arg.rfind("--budget-ms=", 0) == 0) {
      std::string value;
      if (arg == "--budget-ms") {
        if (i + 1 >= argc) return usage("--budget-ms needs a value");
        value = argv[++i];
      } else {
        value = arg.substr(std::string("--budget-ms=").size());
      }
      char* end = nullptr;
      budget_ms = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || budget_ms < 0)
        return usage("--budget-ms wants a non-negative integer, not '" + value + "'");
    } else if (!arg.empty() && arg[0] == '-') {
      return usage("unknown option '" + arg + "'");
    } else if (path.empty()) {
      path = arg;
    } else {
      return usage("one history file at a time ('" + path + "', '" + arg + "')");
    }
  }
  if (path.empty()) return usage("no history file given");

  try {
    std::ifstream in(path);
    if (!in) throw std::invalid_argument("cannot open " + path);
    nlohmann::json j;
    try {
      in >> j;
    } catch (const nlohmann::json::exception& e) {
      throw std::invalid_argument("not JSON: " + std::string(e.what()));
    }
    mpspec::History history;
    try {
      history = mpspec::History::from_json(j);
    } catch (const nlohmann::json::exception& e) {
      throw std::invalid_argument("malformed history: " + std::string(e.what()));
    }
    if (j.contains("description") && j["description"].is_string())
      std::cout << "description: " << j["description"].get<std::string>() << "\n";
    if (j.contains("expect") && j["expect"].is_string())
      std::cout << "expect: " << j["expect"].get<std::string>() << "\n";
    const auto start = std::chrono::steady_clock::now();
    const auto result = mpspec::check::check_history(history, std::chrono::milliseconds(budget_ms));
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    std::cout << result.summary() << "checked " << history.ops.size() << " ops in " << took.count()
              << " ms\n";
    switch (result.verdict) {
      case mpspec::check::Verdict::kLinearizable:
        return 0;
      case mpspec::check::Verdict::kNotLinearizable:
        return 1;
      case mpspec::check::Verdict::kUnknown:
        return 2;
    }
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "mpspec-check: " << path << ": bad input: " << e.what() << "\n";
    return kBadInput;
  } catch (const std::exception& e) {
    std::cerr << "mpspec-check: " << path << ": " << e.what() << "\n";
    return kBadInput;
  }
}
