// A minimal parallel for: [0, n) handed out in small contiguous chunks to `threads`
// workers (dynamic, so uneven rows balance). Each index is computed by exactly one
// worker and kernels write disjoint outputs, so results are identical for every thread
// count. fn may be called several times per worker; `worker` indexes per-worker state.
// The workers are threads kept for the life of the process (the caller is worker 0).
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <thread>
#include <vector>

namespace rvt {

// Threads to use when the user does not say: every core this process may run on.
unsigned default_threads();

// The CPUs this process may run on (its affinity: taskset, a cpuset); empty if it cannot be read.
std::vector<int> allowed_cpus();

// A thread running fn. Where the system refuses one (a limit on memory or processes), an
// Error(kUnsupported) naming the limit, not std::system_error, which would read as a bug (exit 9).
std::thread start_thread(std::function<void()> fn);

// fn(i) on a thread of its own for each i in [first, last), for the caller to join. Where the
// system refuses one, release() lets those already started stop waiting for the others; they
// are joined and start_thread's error rethrown.
std::vector<std::thread> start_threads(std::size_t first, std::size_t last, const std::function<void(std::size_t)>& fn,
                                       const std::function<void()>& release);

// Calls fn(begin, end, worker) for each chunk; worker is in [0, workers). Exceptions
// thrown by fn are rethrown in the caller (the first one).
void parallel_for(std::size_t n, unsigned threads,
                  const std::function<void(std::size_t, std::size_t, unsigned)>& fn);

// [0, n) in runs of `run` items (the last one shorter), the runs split between `threads`
// workers: fn(begin, end) once per run. The pieces have the same bounds for every thread
// count: for work that must not depend on it, or that wants pieces of a cache-friendly size.
template <typename Fn>
void parallel_runs(std::size_t n, std::size_t run, unsigned threads, Fn&& fn) {
  parallel_for((n + run - 1) / run, threads, [&](std::size_t begin, std::size_t end, unsigned) {
    for (std::size_t r = begin; r < end; ++r) fn(r * run, std::min(n, (r + 1) * run));
  });
}

}  // namespace rvt
