// QuitWatcher: ends a live view (vgpuctl top) when the operator presses q or
// Ctrl-C (SIGINT, also SIGTERM). While alive it puts a terminal stdin in
// non-canonical, no-echo mode (restored on destruction) and runs one thread
// that calls `on_quit` once, from that thread. Only one may exist at a time.
#pragma once

#include <termios.h>

#include <atomic>
#include <functional>
#include <signal.h>
#include <thread>

namespace vgpu::cli {

class QuitWatcher {
 public:
  explicit QuitWatcher(std::function<void()> on_quit);
  ~QuitWatcher();
  QuitWatcher(const QuitWatcher&) = delete;
  QuitWatcher& operator=(const QuitWatcher&) = delete;

  bool quit_requested() const { return quit_.load(); }

 private:
  void run();
  bool key_pressed_q();

  std::function<void()> on_quit_;
  std::atomic<bool> done_{false};
  std::atomic<bool> quit_{false};
  bool tty_ = false;
  termios saved_tty_{};
  struct sigaction saved_int_ {}, saved_term_ {};
  std::thread thread_;
};

}  // namespace vgpu::cli
