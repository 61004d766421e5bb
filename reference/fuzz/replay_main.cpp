// A main() for the fuzz targets when the compiler has no libFuzzer (gcc): replays the given
// files, and every file under the given directories (sorted), through LLVMFuzzerTestOneInput.
// A crash or a violated property aborts; the name of the input being replayed is printed
// first (from a signal handler), so CTest's output names it.
//
//   mp_fuzz_frame [-v] FILE_OR_DIR...     (arguments starting with '-' other than -v, e.g.
//                                          libFuzzer flags, are ignored)
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

char g_current[4096] = "";

void on_fatal_signal(int sig) {
  const char* prefix = "\nreplay: crashed on input ";
  (void)!::write(2, prefix, std::strlen(prefix));
  (void)!::write(2, g_current, std::strlen(g_current));
  (void)!::write(2, "\n", 1);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  bool verbose = false;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-v") == 0) {
      verbose = true;
    } else if (argv[i][0] == '-') {
      continue;
    } else if (fs::is_directory(argv[i])) {
      for (const auto& e : fs::recursive_directory_iterator(argv[i])) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
    } else if (fs::exists(argv[i])) {
      files.emplace_back(argv[i]);
    } else {
      std::fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::signal(sig, on_fatal_signal);
  std::size_t bytes = 0;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::snprintf(g_current, sizeof g_current, "%s", f.c_str());
    if (verbose) std::printf("replay: %s (%zu bytes)\n", g_current, data.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
    bytes += data.size();
  }
  std::printf("replay: %zu inputs, %zu bytes, no failure\n", files.size(), bytes);
  if (files.empty()) std::fprintf(stderr, "replay: no inputs\n");
  return files.empty() ? 1 : 0;
}
