#include "rvt/core/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace rvt {

unsigned default_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

void parallel_for(std::size_t n, unsigned threads,
                  const std::function<void(std::size_t, std::size_t, unsigned)>& fn) {
  const std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(threads, n));
  if (workers <= 1) {
    if (n > 0) fn(0, n, 0);
    return;
  }
  // Dynamic chunks: uneven rows (causal attention) still balance. Which worker computes
  // a chunk never changes its result.
  const std::size_t chunk = std::max<std::size_t>(1, n / (workers * 16));
  std::atomic<std::size_t> next{0};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  std::vector<std::thread> pool;
  pool.reserve(workers);
  for (std::size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&, w] {
      try {
        for (;;) {
          const std::size_t begin = next.fetch_add(chunk);
          if (begin >= n) break;
          fn(begin, std::min(n, begin + chunk), static_cast<unsigned>(w));
        }
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        next.store(n);  // stop the others early
      }
    });
  }
  for (auto& t : pool) t.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace rvt
