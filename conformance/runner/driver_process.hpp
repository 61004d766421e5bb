// The suite's side of the driver protocol (spec/protocol.md): starts a driver command,
// sends requests, collects replies and `return` events. Thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace mpspec {

using Json = nlohmann::json;

// The driver exited or closed its output: the test reports CRASH.
class DriverCrash : public std::runtime_error {
 public:
  explicit DriverCrash(const std::string& m) : std::runtime_error("CRASH: " + m) {}
};

// A bounded wait expired: the test reports TIMEOUT.
class WatchdogTimeout : public std::runtime_error {
 public:
  explicit WatchdogTimeout(const std::string& m) : std::runtime_error("TIMEOUT: " + m) {}
};

std::int64_t monotonic_ns();

class DriverProcess {
 public:
  // Starts `/bin/sh -c "exec <command>"` with pipes on stdin, stdout and stderr.
  // Throws DriverCrash when the process cannot be started.
  explicit DriverProcess(const std::string& command);
  ~DriverProcess();  // says bye; kills the driver if it does not exit within 10 s
  DriverProcess(const DriverProcess&) = delete;
  DriverProcess& operator=(const DriverProcess&) = delete;

  // Sends `req` (an `id` is added) and waits for its reply, at most `limit`.
  // Throws DriverCrash if the driver dies, WatchdogTimeout if it does not answer.
  Json request(Json req, std::chrono::milliseconds limit);

  // Writes one raw line (which may be malformed on purpose) and waits for a reply whose `id`
  // is null or absent. For the protocol's own tests.
  Json send_raw(const std::string& line, std::chrono::milliseconds limit);

  // Waits for the next `return` event until `deadline_ns` (CLOCK_MONOTONIC).
  std::optional<Json> next_event(std::int64_t deadline_ns);

  bool alive() const;
  pid_t pid() const { return pid_; }
  const std::string& command() const { return command_; }
  // The last lines the driver wrote on stderr (for failure messages).
  std::string stderr_tail() const;
  // Kills the driver process (SIGKILL) and reaps it.
  void kill_hard();

 private:
  void read_stdout();
  void read_stderr();
  void reap(std::chrono::milliseconds grace);
  void write_line(const std::string& line);

  std::string command_;
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  std::thread out_thread_, err_thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::int64_t, Json> replies_;
  std::deque<Json> events_;
  std::deque<Json> anonymous_replies_;
  bool eof_ = false;
  bool reaped_ = false;
  std::string stderr_;
  std::int64_t next_id_ = 1;
};

}  // namespace mpspec
