// Work in items of `parts` pieces each, for workers that take whole items and help each
// other at the end. An item's setup (for the sparse kernel: a kv head's K/V transposed
// into its taker's workspace, in that core's caches) is done by the worker that takes it,
// its owner; its pieces (tiles) are then claimed in runs by the owner and by any worker
// left without an item to take. With few items per worker (4 heads on 2 workers) a worker
// that finishes early, on a core slowed by its neighbours, no longer waits idle for the
// other's last item.
//
// Worker w first takes the items of its own share, [w * items / workers, (w + 1) * items /
// workers), the same from call to call, so that what an item touches (a head's rows of the
// inputs and the output) stays in the caches of the core that last used it; only then does
// it take items left in other shares.
//
// An owner may reuse the item's memory once wait_helpers() returns: a helper counts itself
// in the item's `active` before it claims pieces, and claims fail once the owner has seen
// the pieces run out, so no helper reads the item after that.
//
// Worker w's loop:
//   while (auto item = work.take(w)) {
//     set *item up; work.publish(*item); work.wait_setups(w, t); work.run(*item, fn); work.wait_helpers(*item);
//   }
//   work.help(fn);
// Nothing between take() and wait_helpers() may throw: a helper would wait for the item's
// publication forever, or read memory its owner freed.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include "rvt/core/spin.hpp"

namespace rvt {

class OwnedWork {
 public:
  // claim: pieces per run (> 0); workers: how many call take() (> 0).
  OwnedWork(std::size_t items, std::size_t parts, std::size_t claim, unsigned workers)
      : parts_(parts), claim_(std::max<std::size_t>(1, claim)), items_(items), shares_(std::max(1u, workers)) {
    for (std::size_t w = 0; w < shares_.size(); ++w) {
      shares_[w].next.store(w * items / shares_.size());
      shares_[w].end = (w + 1) * items / shares_.size();
    }
  }

  // The next item for worker `worker` to own (its own share first, then the others'), or
  // nullopt once every item is taken.
  std::optional<std::size_t> take(unsigned worker) {
    for (std::size_t i = 0; i < shares_.size(); ++i) {
      Share& share = shares_[(worker + i) % shares_.size()];
      if (share.next.load() >= share.end) continue;
      const std::size_t item = share.next.fetch_add(1);
      if (item < share.end) return item;
    }
    Share& own = shares_[worker % shares_.size()];
    own.set_up.store(kNoMoreItems);  // wait_setups need not wait for it
    own.set_up.notify_all();
    return std::nullopt;
  }

  // Worker `worker` has set up the item it took last: returns once every other worker has
  // set up as many items or has none left to take, so that the workers set items up
  // together and run pieces together. For the sparse kernel (setup: a kv head's transposes
  // and block means; pieces: its tiles) a worker's transposes ran 3 - 5x slower while
  // another ran tiles (the cause is not known: not when both transpose or both run tiles,
  // nor in two threads' separate calls). Bench preset, two threads, scratch loop,
  // alternating: N = 1024 0.122 ms a call against 0.151 (two heads: 0.059 against 0.096;
  // eight: 0.223 against 0.258), 2048 0.255 against 0.309, 4096 0.66 against 0.77, 16384
  // level; with a busy loop taking half of one core, 1024 0.113 against 0.150. Spins for up
  // to `spin`, then blocks, so that a host running both vCPUs on one core can run the
  // worker being waited for.
  void wait_setups(unsigned worker, std::chrono::steady_clock::duration spin) {
    Share& own = shares_[worker % shares_.size()];
    const std::uint32_t mine = own.set_up.fetch_add(1) + 1;
    own.set_up.notify_all();
    const auto deadline = std::chrono::steady_clock::now() + spin;
    for (Share& other : shares_) {
      auto ready = [&] { return other.set_up.load() >= mine; };
      if (spin_until(ready, deadline - std::chrono::steady_clock::now())) continue;
      for (std::uint32_t seen; (seen = other.set_up.load()) < mine;) other.set_up.wait(seen);  // until it changes
    }
  }

  // The share `item` belongs to (its owner's, unless another worker took it).
  std::size_t share_of(std::size_t item) const { return ((item + 1) * shares_.size() - 1) / items_.size(); }

  // The owner has set `item` up: its pieces may now be run by others.
  void publish(std::size_t item) { items_[item].published.store(true); }
  // Runs fn(item, begin, end) over runs of unclaimed pieces of `item` until none are left.
  template <typename Fn>
  void run(std::size_t item, Fn&& fn) {
    for (std::size_t p; (p = items_[item].next.fetch_add(claim_)) < parts_;) fn(item, p, std::min(parts_, p + claim_));
  }
  // After run(): returns once no helper runs pieces of `item`.
  void wait_helpers(std::size_t item) {
    while (items_[item].active.load() != 0) std::this_thread::yield();
  }
  // For a worker with nothing left to take: runs pieces of published items until every
  // item is taken, published, and has fewer than a quarter of its pieces unclaimed. The
  // owner runs that last quarter alone: when the workers are about as fast, the one that
  // finishes first finds little left, and taking it would cost more (the item's data moving
  // to this core's caches) than it saves.
  template <typename Fn>
  void help(Fn&& fn) {
    const std::size_t keep = parts_ / 4;
    for (bool waiting = true; waiting;) {
      waiting = false;
      for (std::size_t i = 0; i < items_.size(); ++i) {
        Item& it = items_[i];
        if (!it.published.load()) {  // its owner is still setting it up
          waiting = true;
        } else if (it.next.load() + keep < parts_) {
          it.active.fetch_add(1);
          for (std::size_t p; (p = it.next.load()) + keep < parts_;) {
            if (!it.next.compare_exchange_weak(p, p + claim_)) continue;
            fn(i, p, std::min(parts_, p + claim_));
          }
          it.active.fetch_sub(1);
        }
      }
      if (waiting) std::this_thread::yield();
    }
  }

 private:
  struct alignas(64) Item {  // a cache line each: owners of different items claim at once
    std::atomic<bool> published{false};
    std::atomic<std::size_t> next{0};    // the first unclaimed piece
    std::atomic<unsigned> active{0};     // helpers that may be running its pieces
  };
  struct alignas(64) Share {
    std::atomic<std::size_t> next{0};  // the share's first untaken item
    std::size_t end = 0;
    std::atomic<std::uint32_t> set_up{0};  // items its worker has set up (wait_setups), or kNoMoreItems
  };
  static constexpr std::uint32_t kNoMoreItems = static_cast<std::uint32_t>(-1);
  std::size_t parts_, claim_;
  std::vector<Item> items_;
  std::vector<Share> shares_;
};

}  // namespace rvt
