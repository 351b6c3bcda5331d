// Short waits between worker threads: spin with the CPU's pause hint rather than block,
// because waking a thread blocked in the kernel takes ~25 us on this project's VMs, longer
// than many of the waits (as OpenMP runtimes do). Callers block once the spin runs out.
#pragma once

#include <chrono>
#include <thread>

namespace rvt {

// How long to spin before blocking where nothing better is known.
inline constexpr std::chrono::microseconds kSpinBeforeBlocking{50};
// After this long a spin also yields the CPU between its checks: the thread it waits for may
// be queued on this very CPU (more workers than CPUs, or the scheduler put both on one), and
// a plain spin would hold it off to the end of the spin. Two-thread sparse calls with both
// threads on one CPU (taskset -c 0), bench preset: N = 1024 0.230 ms against 0.437, 4096
// 1.07 against 1.38; four threads on two CPUs 0.258 against 0.379 (1024), 0.85 against 1.13
// (4096); on two free CPUs level (0.136 against 0.136 at 1024, 0.599 against 0.604 at 4096).
inline constexpr std::chrono::microseconds kSpinBeforeYielding{2};

// Spins until done() holds (true) or `limit` has passed (false).
template <typename Done>
bool spin_until(Done done, std::chrono::steady_clock::duration limit) {
  const auto start = std::chrono::steady_clock::now(), deadline = start + limit;
  for (unsigned i = 0;; ++i) {
    if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (i % 64 == 63) {
      const auto now = std::chrono::steady_clock::now();
      if (now > deadline) return false;
      if (now - start > kSpinBeforeYielding) std::this_thread::yield();
    }
  }
}

}  // namespace rvt
