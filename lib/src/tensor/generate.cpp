#include "rvt/tensor/generate.hpp"

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "rvt/core/error.hpp"
#include "rvt/core/parallel.hpp"
#include "rvt/core/splitmix.hpp"
#include "rvt/kernels/box_muller.hpp"
#include "rvt/kernels/fast.hpp"

namespace rvt {
namespace {

// Pair p of the normal stream (values 2p and 2p + 1) as the fixtures' generator computes it:
// Box-Muller over draws 2p and 2p + 1 (box_muller_inputs), r cos, then r sin, with glibc's
// log, cos and sin.
void reference_pair(kernels::BoxMullerInputs in, float* out) {
  const double r = std::sqrt(-2.0 * std::log(in.u1));
  out[0] = static_cast<float>(r * std::cos(in.theta));
  out[1] = static_cast<float>(r * std::sin(in.theta));
}

// Pairs [p, p + n) of the normal stream into out[0, 2n): through the ISA's fast path where
// there is one (the same floats; it leaves NaN where it cannot be sure of one), glibc for
// the rest. glibc's log and sincos were ~55% of generating the 1M-token bench inputs.
void normal_pairs(std::uint64_t seed, std::uint64_t p, std::size_t n, float* out) {
  const kernels::KernelTable* fast = kernels::kernel_table(kernels::best_isa());
  if (fast == nullptr) {
    for (std::size_t i = 0; i < n; ++i) reference_pair(kernels::box_muller_inputs(seed, p + i), out + 2 * i);
    return;
  }
  constexpr std::size_t kBlock = 2048;  // pairs: a NaN in 1 of ~12 blocks
  for (std::size_t b = 0; b < n; b += kBlock) {
    const std::size_t m = std::min(kBlock, n - b);
    float* block = out + 2 * b;
    if (fast->normal_pairs(seed, p + b, m, block) == 0) continue;
    for (std::size_t i = 0; i < m; ++i) {
      if (std::isnan(block[2 * i]) || std::isnan(block[2 * i + 1])) {
        reference_pair(kernels::box_muller_inputs(seed, p + b + i), block + 2 * i);
      }
    }
  }
}

// out[i] = value first + i of the stream of `kind` (normal or uniform) seeded with `seed`.
void fill_stream(GenKind kind, std::uint64_t seed, std::uint64_t first, std::span<float> out) {
  if (kind == GenKind::kUniform) {
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i] = static_cast<float>(unit_of(splitmix_draw(seed, first + i)) * 2.0 - 1.0);
    }
    return;
  }
  // Whole pairs in place; a stream that starts on a pair's second value, or ends on a
  // pair's first, takes that value from a pair of its own.
  std::size_t i = 0;
  float pair[2];
  if (first % 2 == 1 && !out.empty()) {
    normal_pairs(seed, first / 2, 1, pair);
    out[i++] = pair[1];
  }
  const std::size_t whole = (out.size() - i) / 2;
  normal_pairs(seed, (first + i) / 2, whole, out.data() + i);
  i += 2 * whole;
  if (i < out.size()) {
    normal_pairs(seed, (first + i) / 2, 1, pair);
    out[i] = pair[0];
  }
}

constexpr std::size_t kStreamRun = std::size_t{1} << 15;  // even: a run starts where its pair does
constexpr std::size_t kRowRun = 256;

// fill_stream, split between `threads` workers.
void fill_stream(GenKind kind, std::uint64_t seed, std::uint64_t first, std::span<float> out, unsigned threads) {
  parallel_runs(out.size(), kStreamRun, threads,
           [&](std::size_t lo, std::size_t hi) { fill_stream(kind, seed, first + lo, out.subspan(lo, hi - lo)); });
}

// out[i] += scale * value first + i of the normal stream, split between `threads` workers.
void add_normal(std::uint64_t seed, std::uint64_t first, std::span<float> out, float scale, unsigned threads) {
  parallel_runs(out.size(), kStreamRun, threads, [&](std::size_t lo, std::size_t hi) {
    std::vector<float> noise(hi - lo);
    fill_stream(GenKind::kNormal, seed, first + lo, noise);
    for (std::size_t i = 0; i < noise.size(); ++i) out[lo + i] += scale * noise[i];
  });
}

void fill_sincos(Tensor& t, bool is_query, float factor, unsigned threads) {
  parallel_runs(t.seq(), kRowRun, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t s = begin; s < end; ++s) {
      for (std::size_t h = 0; h < t.heads(); ++h) {
        for (std::size_t d = 0; d < t.dim(); ++d) {
          const float arg = is_query ? static_cast<float>(s * 31 + h * 7 + d) : static_cast<float>(s * 17 + h * 3 + d);
          t.at(s, h, d) = (is_query ? std::sin(arg) : std::cos(arg)) * 0.1f * factor;
        }
      }
    }
  });
}

// structured: Q/K/V whose softmax puts its mass on few keys, as trained decoders do.
// "Score" below is dot(q, k) / sqrt(dim), what the softmax sees; t is the query's position,
// j the key's. The construction is exact where it can be (one dimension per effect) and
// keeps every K element in [-1, 1] (for seq >= 32), so an f16 cache stores it well.
//
// Each kv head's K rows, and the matching part of each query row:
//   dims [0, 2M), M = dim/4   local bump, random Fourier features: frequencies w_m ~ N(0,1)/4
//                             per kv head, k_j = (cos w_m j, sin w_m j), q_t = a (cos w_m t, sin w_m t).
//                             sum_m cos(w_m (t-j)) ~ M exp(-(t-j)^2/32): a bump of ~4 tokens,
//                             peak score L (a = L sqrt(dim) / M).
//   dim 2M                    recency (ALiBi-like): k_j = j / seq, q_t = seq sqrt(dim) / 16, so the
//                             score falls by 1/16 per token of distance: the far field, where the
//                             Fourier features only add noise, is damped by e^(-distance/16).
//   dim 2M+1                  sinks: k_j = 1 for the sink tokens (structured_sinks: position 0 and
//                             two seeded positions), else 0; q_t = (t/16 + S) sqrt(dim) cancels the
//                             recency penalty: a sink's recency coordinate is 0 for position 0, which
//                             then scores S above the most recent key, and -32/seq for the other two,
//                             which score S - 2 (as in trained models, the first token is the main
//                             sink; the others are weaker, and not among the default globals).
//   dims [2M+2, dim)          periodic recall (an induction pattern): k_j = c(j mod 37), a unit
//                             vector per phase and kv head; q_t = (36/16 + R) sqrt(dim) c((t+1) mod 37)
//                             seeks the key that followed the previous occurrence of its phase,
//                             j = t - 36, which then scores R above the most recent key (36 is not a
//                             power of two, so log-stride does not reach it); other keys get noise
//                             of about (2.25 + R) / sqrt(dim - 2M - 2).
// Query head h uses kv head h / group, with (L, S, R) cycling over three mixes so heads
// specialise: h % 3 == 0 local (6, 1, 1), 1 sink (3, 5, 1), 2 recall (3, 1, 4).
// Small dims keep the parts that fit, in the order recency, sink, recall (dim < 4: no bump).
// Q and K then get N(0, 0.02^2) noise and V is standard normal, all from one normal stream
// seeded with `seed` (frequencies, content vectors, Q noise, K noise, V, in that order); the
// sink positions come from splitmix64(seed ^ 0x51A4C0DE). Meant for causal attention: without
// the causal mask the recency term draws every query towards the end of the sequence.
Qkv generate_structured(std::size_t seq, std::size_t q_heads, std::size_t kv_heads, std::size_t dim,
                        std::uint64_t seed, unsigned threads) {
  Qkv out{Tensor(seq, q_heads, dim), Tensor(seq, kv_heads, dim), Tensor(seq, kv_heads, dim)};
  if (seq == 0 || dim == 0 || q_heads == 0 || kv_heads == 0) return out;
  constexpr double kSlope = 1.0 / 16.0;  // recency: score per token of distance
  const std::size_t pairs = dim / 4;
  const std::size_t recency_dim = 2 * pairs;       // < dim always
  const std::size_t sink_dim = recency_dim + 1;    // may be == dim (absent)
  const std::size_t content_begin = std::min(dim, sink_dim + 1);
  const std::size_t n_content = dim - content_begin;
  const std::size_t period = kStructuredPeriod;
  const std::vector<std::size_t> sinks = structured_sinks(seq, seed);
  const double root_dim = std::sqrt(static_cast<double>(dim));
  const double n = static_cast<double>(seq);

  // The normal stream: frequencies, content vectors, then the noise below.
  std::vector<float> drawn(kv_heads * pairs + kv_heads * period * n_content);
  fill_stream(GenKind::kNormal, seed, 0, drawn);
  std::vector<double> freq(kv_heads * pairs);
  for (std::size_t i = 0; i < freq.size(); ++i) freq[i] = drawn[i] / 4.0;
  std::vector<double> content(drawn.begin() + static_cast<std::ptrdiff_t>(freq.size()), drawn.end());
  for (std::size_t p = 0; p < kv_heads * period && n_content > 0; ++p) {
    double* c = content.data() + p * n_content;
    double norm = 0.0;
    for (std::size_t d = 0; d < n_content; ++d) norm += c[d] * c[d];
    norm = std::sqrt(norm);
    for (std::size_t d = 0; d < n_content && norm > 0.0; ++d) c[d] /= norm;
  }

  static constexpr double kMix[3][3] = {{6, 1, 1}, {3, 5, 1}, {3, 1, 4}};  // (L, S, R)
  const std::size_t group = std::max<std::size_t>(1, q_heads / kv_heads);
  parallel_runs(seq, kRowRun, threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t t = begin; t < end; ++t) {
      const double tt = static_cast<double>(t);
      for (std::size_t h = 0; h < kv_heads; ++h) {  // keys
        float* row = out.k.row(t, h);
        for (std::size_t m = 0; m < pairs; ++m) {
          const double arg = freq[h * pairs + m] * tt;
          row[2 * m] = static_cast<float>(std::cos(arg));
          row[2 * m + 1] = static_cast<float>(std::sin(arg));
        }
        const bool sink = sink_dim < dim && std::binary_search(sinks.begin(), sinks.end(), t);
        row[recency_dim] = static_cast<float>(!sink ? tt / n : (t == 0 ? 0.0 : -2.0 / (kSlope * n)));
        if (sink_dim < dim) row[sink_dim] = sink ? 1.0f : 0.0f;
        const double* c = content.data() + (h * period + t % period) * n_content;
        for (std::size_t d = 0; d < n_content; ++d) row[content_begin + d] = static_cast<float>(c[d]);
      }
      for (std::size_t h = 0; h < q_heads; ++h) {  // queries
        const double* mix = kMix[h % 3];
        const std::size_t kvh = std::min(h / group, kv_heads - 1);
        float* row = out.q.row(t, h);
        const double a = pairs ? mix[0] * root_dim / static_cast<double>(pairs) : 0.0;
        for (std::size_t m = 0; m < pairs; ++m) {
          const double arg = freq[kvh * pairs + m] * tt;
          row[2 * m] = static_cast<float>(a * std::cos(arg));
          row[2 * m + 1] = static_cast<float>(a * std::sin(arg));
        }
        row[recency_dim] = static_cast<float>(n * kSlope * root_dim);
        if (sink_dim < dim) row[sink_dim] = static_cast<float>((tt * kSlope + mix[1]) * root_dim);
        const double r = (static_cast<double>(period - 1) * kSlope + mix[2]) * root_dim;
        const double* c = content.data() + (kvh * period + (t + 1) % period) * n_content;
        for (std::size_t d = 0; d < n_content; ++d) row[content_begin + d] = static_cast<float>(r * c[d]);
      }
    }
  });
  std::uint64_t at = drawn.size();
  add_normal(seed, at, out.q.values(), 0.02f, threads);
  at += out.q.size();
  add_normal(seed, at, out.k.values(), 0.02f, threads);
  at += out.k.size();
  fill_stream(GenKind::kNormal, seed, at, out.v.values(), threads);
  return out;
}

}  // namespace

std::vector<std::size_t> structured_sinks(std::size_t seq, std::uint64_t seed) {
  std::vector<std::size_t> sinks;
  if (seq == 0) return sinks;
  sinks.push_back(0);
  SplitMix64 rng(seed ^ 0x51A4C0DEull);
  for (int i = 0; i < 2 && seq > 1; ++i) sinks.push_back(1 + static_cast<std::size_t>(rng.next() % (seq - 1)));
  std::sort(sinks.begin(), sinks.end());
  sinks.erase(std::unique(sinks.begin(), sinks.end()), sinks.end());
  return sinks;
}

std::uint64_t SplitMix64::next() {
  state_ += kSplitMixStep;
  return splitmix_mix(state_);
}

double SplitMix64::next_unit() { return unit_of(next()); }

GenKind parse_gen_kind(const std::string& name) {
  if (name == "sincos") return GenKind::kSincos;
  if (name == "normal") return GenKind::kNormal;
  if (name == "uniform") return GenKind::kUniform;
  if (name == "structured") return GenKind::kStructured;
  throw_usage("--gen: '" + name + "' is not one of sincos, normal, uniform, structured");
}

const char* gen_kind_name(GenKind kind) {
  switch (kind) {
    case GenKind::kSincos: return "sincos";
    case GenKind::kNormal: return "normal";
    case GenKind::kUniform: return "uniform";
    case GenKind::kStructured: return "structured";
  }
  return "unknown";
}

Qkv generate_qkv(GenKind kind, std::size_t seq, std::size_t q_heads, std::size_t kv_heads,
                 std::size_t dim, std::uint64_t seed, unsigned threads) {
  if (kind == GenKind::kStructured) return generate_structured(seq, q_heads, kv_heads, dim, seed, threads);
  Qkv out{Tensor(seq, q_heads, dim, Tensor::Uninitialized{}), Tensor(seq, kv_heads, dim, Tensor::Uninitialized{}),
          Tensor(seq, kv_heads, dim, Tensor::Uninitialized{})};
  if (kind == GenKind::kSincos) {
    fill_sincos(out.q, true, 1.0f, threads);
    fill_sincos(out.k, false, 1.0f, threads);
    fill_sincos(out.v, false, 0.5f, threads);
    return out;
  }
  // One stream over q, then k, then v.
  fill_stream(kind, seed, 0, out.q.values(), threads);
  fill_stream(kind, seed, out.q.size(), out.k.values(), threads);
  fill_stream(kind, seed, out.q.size() + out.k.size(), out.v.values(), threads);
  return out;
}

Tensor generate_frames(GenKind kind, std::size_t frames, std::size_t input_dim, std::uint64_t seed, unsigned threads) {
  if (kind == GenKind::kStructured) return generate_structured(frames, 1, 1, input_dim, seed, threads).k;
  Tensor x(frames, 1, input_dim, Tensor::Uninitialized{});
  if (kind == GenKind::kSincos) {
    parallel_runs(frames, kRowRun, threads, [&](std::size_t begin, std::size_t end) {
      for (std::size_t t = begin; t < end; ++t) {
        for (std::size_t d = 0; d < input_dim; ++d) x.at(t, 0, d) = std::sin(static_cast<float>(t * 31 + d * 7)) * 0.5f;
      }
    });
    return x;
  }
  fill_stream(kind, seed, 0, x.values(), threads);
  return x;
}

}  // namespace rvt
