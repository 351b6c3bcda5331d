// Work in items of `parts` pieces each, for workers that take whole items and help each
// other at the end. An item's setup (for the sparse kernel: a kv head's K/V transposed
// into its taker's workspace, in that core's caches) is done by the worker that takes it,
// its owner; its pieces (tiles) are then claimed in runs by the owner and by any worker
// left without an item to take, until none is left. With few items per worker (4 heads on
// 2 workers) a worker that finishes early, on a core slowed by its neighbours, no longer
// waits idle for the other's last item.
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
//     set *item up; work.publish(*item); work.run(*item, fn); work.wait_helpers(*item);
//   }
//   work.help(fn);
// Nothing between take() and wait_helpers() may throw: a helper would wait for the item's
// publication forever, or read memory its owner freed.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <optional>
#include <thread>
#include <vector>

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
    return std::nullopt;
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
  // item is taken, published, and has all its pieces claimed. Helping only while more than a
  // quarter of an item's pieces were unclaimed left the helper idle for that quarter whenever
  // the owner was slower: 376 us a call at N = 16384 (bench preset, two threads), 126 at 8192.
  template <typename Fn>
  void help(Fn&& fn) {
    for (bool waiting = true; waiting;) {
      waiting = false;
      for (std::size_t i = 0; i < items_.size(); ++i) {
        Item& it = items_[i];
        if (!it.published.load()) {  // its owner is still setting it up
          waiting = true;
        } else if (it.next.load() < parts_) {
          it.active.fetch_add(1);
          for (std::size_t p; (p = it.next.load()) < parts_;) {
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
  };
  std::size_t parts_, claim_;
  std::vector<Item> items_;
  std::vector<Share> shares_;
};

}  // namespace rvt
