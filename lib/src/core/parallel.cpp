#include "rvt/core/parallel.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "rvt/core/error.hpp"
#include "rvt/core/spin.hpp"

// A unit test's pause (tests/unit/test_parallel.cpp) where a worker has seen a job and not yet
// decided whether it takes part. Weak and undefined outside the unit tests, so never called there.
extern "C" [[gnu::weak]] void rvt_test_pool_worker_saw_job();

namespace rvt {
namespace {

thread_local bool t_in_pool_job = false;  // set while a thread runs a pool job's body

// Worker threads kept for the life of the process: one sparse call runs several short
// parallel loops (scan, block means, a transpose and the tiles per kv head), and starting
// threads for each cost more than the loop itself at small N. The caller takes part as
// worker 0; one job at a time (a concurrent caller waits, a nested one runs serially).
class Pool {
 public:
  static Pool& instance() {
    static Pool pool;
    return pool;
  }

  // Calls body(w) once for each w in [0, workers), w = 0 on the calling thread.
  void run(unsigned workers, const std::function<void(unsigned)>& body) {
    std::lock_guard job_lock(job_mutex_);
    {
      std::lock_guard lock(mutex_);
      threads_.reserve(workers);  // push_back then cannot throw with a joinable thread in hand
      while (threads_.size() + 1 < workers) {
        const unsigned index = static_cast<unsigned>(threads_.size()) + 1;
        threads_.push_back(start_thread([this, index] { serve(index); }));
      }
      body_ = &body;
      pending_.store(workers - 1, std::memory_order_relaxed);
      const std::uint64_t generation = (job_.load(std::memory_order_relaxed) >> kWorkerBits) + 1;
      job_.store(generation << kWorkerBits | workers, std::memory_order_release);  // publishes body_
    }
    wake_.notify_all();
    t_in_pool_job = true;
    body(0);
    t_in_pool_job = false;
    auto finished = [this] { return pending_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(finished, kSpinBeforeBlocking)) {
      std::unique_lock lock(mutex_);
      done_.wait(lock, finished);
    }
  }

  ~Pool() {
    {
      std::lock_guard lock(mutex_);
      stop_.store(true);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  Pool() = default;

  void serve(unsigned index) {
    std::uint64_t seen = 0;
    for (;;) {
      auto posted = [&] { return stop_.load() || job_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(posted, kSpinBeforeBlocking)) {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, posted);
      }
      if (stop_.load()) return;
      seen = job_.load(std::memory_order_acquire);
      if (rvt_test_pool_worker_saw_job) rvt_test_pool_worker_saw_job();
      if (index >= (seen & kWorkerMask)) continue;  // this job needs fewer workers
      t_in_pool_job = true;
      (*body_)(index);
      t_in_pool_job = false;
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lock(mutex_);  // the caller may be about to block: notify under the lock
        done_.notify_one();
      }
    }
  }

  std::mutex job_mutex_;  // one job at a time
  std::mutex mutex_;      // with the condition variables, for threads that block
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  // The posted job: its generation (high bits) and worker count (low bits) in one word, so that
  // a worker reads the count of the job it saw. With the count in a field of its own, a worker
  // that woke for a job it had no part in (index >= count) could read the next job's count
  // instead, run that job's body, and then run it again once it saw the next generation: the
  // job's pending count went below zero and its caller waited forever (seen once in a clean
  // clone's test run; every time with a pause between the two reads, as the unit test "a worker
  // slow to see a job ..." makes). A worker can only lag behind jobs it has no part in: one it
  // is counted in cannot finish without it, so body_ is the job's until it has run it.
  static constexpr unsigned kWorkerBits = 32;
  static constexpr std::uint64_t kWorkerMask = (std::uint64_t{1} << kWorkerBits) - 1;
  const std::function<void(unsigned)>* body_ = nullptr;
  std::atomic<unsigned> pending_{0};
  std::atomic<std::uint64_t> job_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
    }
  }
  return cpus;
}

unsigned default_threads() {
  // The CPUs this process may run on (taskset, a container's cpuset), not every CPU the machine
  // has: two workers on one allowed CPU take turns and run slower than one.
  const std::size_t allowed = allowed_cpus().size();
  return allowed > 0 ? static_cast<unsigned>(allowed) : std::max(1u, std::thread::hardware_concurrency());
}

std::vector<std::thread> start_threads(std::size_t first, std::size_t last, const std::function<void(std::size_t)>& fn,
                                       const std::function<void()>& release) {
  std::vector<std::thread> threads;
  threads.reserve(last > first ? last - first : 0);  // push_back then cannot throw with a joinable thread in hand
  try {
    for (std::size_t i = first; i < last; ++i) threads.push_back(start_thread([fn, i] { fn(i); }));
  } catch (...) {
    release();
    for (auto& t : threads) t.join();
    throw;
  }
  return threads;
}

std::thread start_thread(std::function<void()> fn) {
  try {
    return std::thread(std::move(fn));
  } catch (const std::system_error& e) {
    throw Error(ExitCode::kUnsupported, "cannot start a worker thread (" + e.code().message() +
                                            "): use fewer --threads, or raise the memory or process limits (ulimit -v, -u)");
  }
}

void parallel_for(std::size_t n, unsigned threads,
                  const std::function<void(std::size_t, std::size_t, unsigned)>& fn) {
  const std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(threads, n));
  if (workers <= 1 || t_in_pool_job) {  // serial, also when nested inside a pool job
    if (n > 0) fn(0, n, 0);
    return;
  }
  // Dynamic chunks: uneven rows (causal attention) still balance. Which worker computes
  // a chunk never changes its result.
  const std::size_t chunk = std::max<std::size_t>(1, n / (workers * 16));
  std::atomic<std::size_t> next{0};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  Pool::instance().run(static_cast<unsigned>(workers), [&](unsigned w) {
    try {
      for (;;) {
        const std::size_t begin = next.fetch_add(chunk);
        if (begin >= n) break;
        fn(begin, std::min(n, begin + chunk), w);
      }
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
      next.store(n);  // stop the others early
    }
  });
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace rvt
