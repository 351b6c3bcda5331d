// parallel_for on the persistent worker pool: every index exactly once for any thread
// count, exceptions reach the caller, nested calls run serially, and back-to-back jobs
// with different worker counts (the pool's generation handshake) never lose a worker.
#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "rvt/core/parallel.hpp"

using rvt::parallel_for;

TEST_CASE("parallel_for covers every index exactly once, for any thread count", "[parallel]") {
  for (unsigned threads : {1u, 2u, 3u, 8u}) {
    for (std::size_t n : {0u, 1u, 2u, 7u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      std::atomic<unsigned> max_worker{0};
      parallel_for(n, threads, [&](std::size_t begin, std::size_t end, unsigned w) {
        for (std::size_t i = begin; i < end; ++i) hits[i].fetch_add(1);
        unsigned seen = max_worker.load();
        while (w > seen && !max_worker.compare_exchange_weak(seen, w)) {
        }
      });
      INFO("threads " << threads << " n " << n);
      for (std::size_t i = 0; i < n; ++i) REQUIRE(hits[i].load() == 1);
      CHECK(max_worker.load() < std::max(1u, threads));
    }
  }
}

TEST_CASE("parallel_for: many short jobs in a row, worker counts changing", "[parallel]") {
  std::atomic<long> total{0};
  long expected = 0;
  for (int job = 0; job < 2000; ++job) {
    const unsigned threads = 1 + job % 4;
    const std::size_t n = 1 + job % 37;
    parallel_for(n, threads, [&](std::size_t begin, std::size_t end, unsigned) {
      total.fetch_add(static_cast<long>(end - begin));
    });
    expected += static_cast<long>(n);
  }
  CHECK(total.load() == expected);
}

TEST_CASE("parallel_for rethrows a worker's exception and nested calls run serially", "[parallel]") {
  CHECK_THROWS_AS(parallel_for(100, 3, [](std::size_t begin, std::size_t, unsigned) {
                    if (begin >= 50) throw std::runtime_error("boom");
                  }),
                  std::runtime_error);
  std::atomic<int> inner{0}, inner_off_worker0{0};  // (Catch2 assertions stay on this thread)
  parallel_for(8, 2, [&](std::size_t begin, std::size_t end, unsigned) {
    for (std::size_t i = begin; i < end; ++i) {
      parallel_for(4, 2, [&](std::size_t b, std::size_t e, unsigned w) {
        if (w != 0) inner_off_worker0.fetch_add(1);  // nested: on the calling worker only
        inner.fetch_add(static_cast<int>(e - b));
      });
    }
  });
  CHECK(inner.load() == 32);
  CHECK(inner_off_worker0.load() == 0);
  // The pool still works after both.
  std::atomic<int> after{0};
  parallel_for(10, 2, [&](std::size_t b, std::size_t e, unsigned) { after.fetch_add(static_cast<int>(e - b)); });
  CHECK(after.load() == 10);
}
