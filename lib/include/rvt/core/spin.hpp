// Short waits between worker threads: spin with the CPU's pause hint rather than block,
// because waking a thread blocked in the kernel takes ~25 us on this project's VMs, longer
// than many of the waits (as OpenMP runtimes do). Callers block once the spin runs out.
#pragma once

#include <chrono>

namespace rvt {

// How long to spin before blocking where nothing better is known.
inline constexpr std::chrono::microseconds kSpinBeforeBlocking{50};

// Spins until done() holds (true) or `limit` has passed (false).
template <typename Done>
bool spin_until(Done done, std::chrono::steady_clock::duration limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (unsigned i = 0;; ++i) {
    if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (i % 64 == 63 && std::chrono::steady_clock::now() > deadline) return false;
  }
}

}  // namespace rvt
