// A minimal parallel for: [0, n) handed out in small contiguous chunks to `threads`
// workers (dynamic, so uneven rows balance). Each index is computed by exactly one
// worker and kernels write disjoint outputs, so results are identical for every thread
// count. fn may be called several times per worker; `worker` indexes per-worker state.
// The workers are threads kept for the life of the process (the caller is worker 0).
#pragma once

#include <cstddef>
#include <functional>

namespace rvt {

// Threads to use when the user does not say: every core this process may run on.
unsigned default_threads();

// Calls fn(begin, end, worker) for each chunk; worker is in [0, workers). Exceptions
// thrown by fn are rethrown in the caller (the first one).
void parallel_for(std::size_t n, unsigned threads,
                  const std::function<void(std::size_t, std::size_t, unsigned)>& fn);

}  // namespace rvt
