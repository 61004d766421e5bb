#include "driver_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

namespace mpspec {

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

DriverProcess::DriverProcess(const std::string& command) : command_(command) {
  // A driver that dies makes the next write to its stdin fail with EPIPE (reported as
  // DriverCrash by write_line), not kill the suite with SIGPIPE. The child restores the
  // default before exec, so the driver starts with the disposition it would have anyway.
  static const bool sigpipe_ignored = [] {
    ::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)sigpipe_ignored;
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
    throw DriverCrash(std::string("pipe: ") + std::strerror(errno));
  pid_ = fork();
  if (pid_ < 0) throw DriverCrash(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::string line = "exec " + command;
    execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  in_ = in[1];
  out_ = out[0];
  err_ = err[0];
  out_thread_ = std::thread([this] { read_stdout(); });
  err_thread_ = std::thread([this] { read_stderr(); });
}

DriverProcess::~DriverProcess() {
  if (alive()) {
    try {
      request(Json{{"op", "bye"}}, std::chrono::seconds(10));
    } catch (const std::exception&) {
    }
  }
  if (in_ >= 0) close(in_);
  in_ = -1;
  reap(std::chrono::seconds(10));
  if (out_thread_.joinable()) out_thread_.join();
  if (err_thread_.joinable()) err_thread_.join();
  close(out_);
  close(err_);
}

void DriverProcess::reap(std::chrono::milliseconds grace) {
  if (reaped_ || pid_ <= 0) return;
  const std::int64_t deadline = monotonic_ns() + grace.count() * 1'000'000;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) break;
    if (monotonic_ns() > deadline) {
      ::kill(pid_, SIGKILL);
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    usleep(2000);  // bounded reaping poll: not a synchronisation of the test itself
  }
  reaped_ = true;
}

void DriverProcess::kill_hard() {
  if (pid_ > 0 && !reaped_) ::kill(pid_, SIGKILL);
  reap(std::chrono::seconds(10));
}

bool DriverProcess::alive() const {
  std::lock_guard<std::mutex> g(mu_);
  return !eof_;
}

std::string DriverProcess::stderr_tail() const {
  std::lock_guard<std::mutex> g(mu_);
  constexpr size_t kTail = 4000;
  return stderr_.size() > kTail ? stderr_.substr(stderr_.size() - kTail) : stderr_;
}

void DriverProcess::read_stdout() {
  std::string buf;
  char chunk[65536];
  for (;;) {
    ssize_t n = read(out_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    size_t pos;
    while ((pos = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, pos);
      buf.erase(0, pos + 1);
      Json j = Json::parse(line, nullptr, false);
      std::lock_guard<std::mutex> g(mu_);
      if (j.is_object() && j.contains("event")) {
        events_.push_back(std::move(j));
      } else if (j.is_object() && j.contains("id") && j["id"].is_number_integer()) {
        const auto id = j["id"].get<std::int64_t>();  // before the move below
        replies_[id] = std::move(j);
      } else if (j.is_object() && j.contains("ok") && (!j.contains("id") || j["id"].is_null())) {
        anonymous_replies_.push_back(std::move(j));
      } else {
        stderr_ += "[suite] driver wrote a line that is not protocol: " + line + "\n";
        continue;
      }
      cv_.notify_all();
    }
  }
  std::lock_guard<std::mutex> g(mu_);
  eof_ = true;
  cv_.notify_all();
}

void DriverProcess::read_stderr() {
  char chunk[4096];
  const bool echo = std::getenv("MPSPEC_DRIVER_LOG") != nullptr;
  for (;;) {
    ssize_t n = read(err_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (echo) std::cerr.write(chunk, n);
    std::lock_guard<std::mutex> g(mu_);
    stderr_.append(chunk, static_cast<size_t>(n));
    if (stderr_.size() > 1 << 20) stderr_.erase(0, stderr_.size() - (1 << 19));
  }
}

Json DriverProcess::request(Json req, std::chrono::milliseconds limit) {
  std::int64_t id;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (eof_) throw DriverCrash("driver '" + command_ + "' is not running");
    id = next_id_++;
  }
  req["id"] = id;
  write_line(req.dump() + "\n");
  std::unique_lock<std::mutex> g(mu_);
  if (!cv_.wait_for(g, limit, [&] { return eof_ || replies_.count(id); }))
    throw WatchdogTimeout("driver did not answer '" + req.value("op", "?") + "' within " +
                          std::to_string(limit.count()) + " ms");
  if (!replies_.count(id))
    throw DriverCrash("driver exited while handling '" + req.value("op", "?") + "'");
  Json r = std::move(replies_[id]);
  replies_.erase(id);
  return r;
}

void DriverProcess::write_line(const std::string& line) {
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = write(in_, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw DriverCrash("cannot write to driver: " + std::string(std::strerror(errno)));
    off += static_cast<size_t>(n);
  }
}

Json DriverProcess::send_raw(const std::string& line, std::chrono::milliseconds limit) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (eof_) throw DriverCrash("driver '" + command_ + "' is not running");
  }
  write_line(line + "\n");
  std::unique_lock<std::mutex> g(mu_);
  if (!cv_.wait_for(g, limit, [&] { return eof_ || !anonymous_replies_.empty(); }))
    throw WatchdogTimeout("driver did not answer a malformed line within " +
                          std::to_string(limit.count()) + " ms");
  if (anonymous_replies_.empty()) throw DriverCrash("driver exited on a malformed line");
  Json r = std::move(anonymous_replies_.front());
  anonymous_replies_.pop_front();
  return r;
}

std::optional<Json> DriverProcess::next_event(std::int64_t deadline_ns) {
  std::unique_lock<std::mutex> g(mu_);
  for (;;) {
    if (!events_.empty()) {
      Json e = std::move(events_.front());
      events_.pop_front();
      return e;
    }
    if (eof_) throw DriverCrash("driver exited while calls were running");
    std::int64_t left = deadline_ns - monotonic_ns();
    if (left <= 0) return std::nullopt;
    cv_.wait_for(g, std::chrono::nanoseconds(left));
  }
}

}  // namespace mpspec
