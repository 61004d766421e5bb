// The conformance suite's main: GoogleTest + RapidCheck against one backend's driver.
//
//   mpspec_conformance [--driver=CMD] [gtest flags]
//
// The driver command comes from --driver or MPSPEC_DRIVER (./mpspec run sets it from
// harness/backends.toml). Unless RC_PARAMS says otherwise, each property runs 200 programs.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include <gtest/gtest.h>

#include "scenario.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--driver=", 9) == 0) {
      mpspec::Backend::set_command(argv[i] + 9);
    } else {
      std::cerr << "unknown argument '" << argv[i] << "'\n"
                << "usage: mpspec_conformance [--driver=CMD] [gtest flags]\n";
      return 2;
    }
  }
  std::string rc = std::getenv("RC_PARAMS") ? std::getenv("RC_PARAMS") : "";
  if (rc.find("max_success") == std::string::npos) {
    rc += (rc.empty() ? "" : " ") + std::string("max_success=200");
    setenv("RC_PARAMS", rc.c_str(), 1);
  }
  return RUN_ALL_TESTS();
}
