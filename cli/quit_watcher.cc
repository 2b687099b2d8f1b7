#include "quit_watcher.h"

#include <poll.h>
#include <unistd.h>

namespace vgpu::cli {

namespace {

// Set by the signal handler, read by the watcher thread (async-signal-safe).
std::atomic<bool> g_signalled{false};

void on_signal(int) { g_signalled.store(true); }

}  // namespace

QuitWatcher::QuitWatcher(std::function<void()> on_quit) : on_quit_(std::move(on_quit)) {
  g_signalled.store(false);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &saved_int_);
  sigaction(SIGTERM, &sa, &saved_term_);
  tty_ = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tty_) == 0;
  if (tty_) {
    termios raw = saved_tty_;
    raw.c_lflag &= ~(ICANON | ECHO);  // ISIG stays: Ctrl-C still raises SIGINT
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  }
  thread_ = std::thread([this] { run(); });
}

QuitWatcher::~QuitWatcher() {
  done_.store(true);
  thread_.join();
  if (tty_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty_);
  sigaction(SIGINT, &saved_int_, nullptr);
  sigaction(SIGTERM, &saved_term_, nullptr);
}

// Polls every 100 ms so that a signal or destruction is noticed promptly.
void QuitWatcher::run() {
  while (!done_.load()) {
    if (g_signalled.load() || (tty_ && key_pressed_q())) {
      quit_.store(true);
      on_quit_();
      return;
    }
    if (!tty_) usleep(100'000);
  }
}

bool QuitWatcher::key_pressed_q() {
  pollfd p{STDIN_FILENO, POLLIN, 0};
  if (poll(&p, 1, 100) <= 0) return false;
  char c = 0;
  return read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q');
}

}  // namespace vgpu::cli
