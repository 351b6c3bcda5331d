// The parity suites. Each builds its cases (what is compared with what, on which inputs),
// sets the preset's built-in gates, and lets Ctx::evaluate add the user's gates.
// Default sizes keep `parity --suite all` to a few seconds on two cores.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <tuple>

#include "rvt/attention/pattern.hpp"
#include "rvt/blob/blob.hpp"
#include "rvt/blob/blob_report.hpp"
#include "rvt/core/error.hpp"
#include "rvt/core/half.hpp"
#include "rvt/core/hash.hpp"
#include "rvt/core/text.hpp"
#include "rvt/io/file.hpp"
#include "rvt/jobs/forward.hpp"
#include "rvt/kernels/isa.hpp"
#include "rvt/model/temporal_head.hpp"
#include "rvt/parity/oracle.hpp"
#include "rvt/parity/plots.hpp"
#include "rvt/stream/decoder.hpp"
#include "suites.hpp"

namespace rvt::parity::detail {
namespace {

using metrics::compare;

Json shape_json(const Tensor& q, const Tensor& k) {
  return Json{{"seq", q.seq()}, {"q_heads", q.heads()}, {"kv_heads", k.heads()}, {"head_dim", q.dim()}};
}

// Every case gets the non-finite gate: a NaN must never pass.
std::vector<Gate> gates_with_nonfinite(std::vector<Gate> gates) {
  gates.push_back(Gate{"nonfinite", 0.0});
  return gates;
}

Case make_case(const std::string& name, Json config) {
  Case c;
  c.name = name;
  c.config = std::move(config);
  return c;
}

// Streams every token through a decoder; returns [seq][q_heads][dim].
Tensor stream_sparse(const Qkv& x, const attn::SparseConfig& cfg, stream::KvDType dtype, kernels::Isa isa) {
  const std::size_t n = x.q.seq();
  stream::SparseDecoder dec(x.q.heads(), stream::KvCache(n, x.k.heads(), x.k.dim(), cfg.block_size, dtype), cfg,
                            stream::Evict::kNone, isa);
  Tensor out(n, x.q.heads(), x.q.dim());
  for (std::size_t t = 0; t < n; ++t) dec.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), out.row(t, 0));
  return out;
}

Tensor stream_dense(const Qkv& x) {
  const std::size_t n = x.q.seq();
  stream::DenseDecoder dec(x.q.heads(), stream::KvCache(n, x.k.heads(), x.k.dim(), 1));
  Tensor out(n, x.q.heads(), x.q.dim());
  for (std::size_t t = 0; t < n; ++t) dec.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), out.row(t, 0));
  return out;
}

Tensor round_to_half(const Tensor& t) {
  Tensor out(t.shape());
  for (std::size_t i = 0; i < t.size(); ++i) out.data()[i] = f16_to_f32(f32_to_f16(t.data()[i]));
  return out;
}

// Rows stacked into one tensor: row r of `parts[r]` (each [1][heads][dim]).
Tensor stack(const std::vector<Tensor>& parts) {
  Tensor out(parts.size(), parts.front().heads(), parts.front().dim());
  for (std::size_t r = 0; r < parts.size(); ++r) std::copy_n(parts[r].data(), parts[r].size(), out.row(r, 0));
  return out;
}

// Agreement of logit rows ([rows][classes]): argmax and Spearman per row.
struct LogitStats {
  std::size_t rows = 0, disagreements = 0;
  double top1 = 1.0, spearman = 1.0, spearman_min = 1.0;
};

LogitStats logit_stats(const std::vector<float>& got, const std::vector<float>& want, std::size_t classes) {
  LogitStats st;
  st.rows = classes ? got.size() / classes : 0;
  double rho_sum = 0.0;
  for (std::size_t i = 0; i < st.rows; ++i) {
    const std::span<const float> a(got.data() + i * classes, classes), b(want.data() + i * classes, classes);
    st.disagreements += metrics::argmax(a) == metrics::argmax(b) ? 0 : 1;
    const double rho = metrics::spearman(a, b);
    rho_sum += rho;
    st.spearman_min = std::min(st.spearman_min, rho);
  }
  if (st.rows) {
    st.top1 = 1.0 - static_cast<double>(st.disagreements) / static_cast<double>(st.rows);
    st.spearman = rho_sum / static_cast<double>(st.rows);
  }
  return st;
}

std::string shape_name(std::size_t hq, std::size_t hk) { return std::to_string(hq) + "x" + std::to_string(hk); }

}  // namespace

// ---------------------------------------------------------------------------------------
// saturated: a sparse pattern that covers every key must reproduce dense attention.

SuiteResult suite_saturated(const Ctx& ctx) {
  SuiteResult s;
  const Inputs in = load_inputs(ctx, GenKind::kNormal, 64, 4, 4, 16);
  const std::size_t n = in.x.q.seq();
  for (bool causal : {true, false}) {
    attn::SparseConfig cfg = pattern(ctx, n, 32);
    cfg.window = n;  // the window alone reaches every key
    cfg.causal = causal;
    cfg.landmarks = false;
    const Tensor dense = attn::dense_attention(in.x.q, in.x.k, in.x.v, causal, ctx.exec);
    const Tensor sparse = attn::sparse_attention(in.x.q, in.x.k, in.x.v, cfg, ctx.exec);
    Case c = make_case(causal ? "window_covers_all_causal" : "window_covers_all_bidirectional",
                       Json{{"inputs", in.json}, {"shape", shape_json(in.x.q, in.x.k)},
                            {"sparse", jobs::sparse_config_json(cfg)}, {"against", "dense"}});
    c.set_comparison(compare(sparse, dense));
    c.defaults = gates_with_nonfinite({{"max_abs", 1e-6}, {"nmse", ctx.by_preset(1e-10, 1e-12)}});
    ctx.evaluate(c);
    s.cases.push_back(std::move(c));
  }
  {
    // The reference's saturated case: sincos inputs, N 32, 4 heads, dim 16, W 32, B 32,
    // landmarks on. The landmark of block 0 enters row 31 as one extra softmax entry, so
    // the result is close to dense but not equal (the reference measures about 1.5e-5).
    const Qkv x = generate_qkv(GenKind::kSincos, 32, 4, 4, 16, 0);
    attn::SparseConfig cfg;
    cfg.window = 32;
    cfg.block_size = 32;
    const Tensor dense = attn::dense_attention(x.q, x.k, x.v, true, ctx.exec);
    const Tensor sparse = attn::sparse_attention(x.q, x.k, x.v, cfg, ctx.exec);
    Case c = make_case("reference_saturated",
                       Json{{"inputs", Json{{"source", "generated"}, {"generator", "sincos"}}},
                            {"shape", shape_json(x.q, x.k)}, {"sparse", jobs::sparse_config_json(cfg)},
                            {"against", "dense"}});
    c.set_comparison(compare(sparse, dense));
    c.defaults = gates_with_nonfinite({{"max_abs", ctx.by_preset(1e-4, 5e-5)}});
    ctx.evaluate(c);
    s.cases.push_back(std::move(c));
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// realistic: sparse vs dense at the user's N and pattern; gates only if the user sets them.

SuiteResult suite_realistic(const Ctx& ctx) {
  SuiteResult s;
  const Inputs in = load_inputs(ctx, GenKind::kStructured, 512, 4, 4, 32);
  const attn::SparseConfig cfg = pattern(ctx, 32, 16);
  const Qkv& x = in.x;
  auto t0 = Clock::now();
  const Tensor dense = attn::dense_attention(x.q, x.k, x.v, cfg.causal, ctx.exec);
  const double dense_ms = ms_since(t0);
  t0 = Clock::now();
  const Tensor sparse = attn::sparse_attention(x.q, x.k, x.v, cfg, ctx.exec);
  const double sparse_ms = ms_since(t0);
  const metrics::Comparison cmp = compare(sparse, dense);
  const Json edges = jobs::edges_json(x.q.seq(), x.q.heads(), attn::Backend::kSparse, cfg);

  Case c = make_case("sparse_vs_dense", Json{{"inputs", in.json}, {"shape", shape_json(x.q, x.k)},
                                             {"sparse", jobs::sparse_config_json(cfg)}, {"against", "dense"}});
  c.set_comparison(cmp);
  c.set("sparsity", edges["sparsity"].get<double>());
  c.details["edges"] = edges;
  c.details["dense_ms"] = dense_ms;
  c.details["sparse_ms"] = sparse_ms;
  c.defaults = gates_with_nonfinite({});
  ctx.evaluate(c);

  if (!ctx.req.plot_dir.empty()) {
    const std::size_t rows = std::min(x.q.seq(), kMaxPatternRows);
    const std::size_t head = cmp.worst.valid ? cmp.worst.head : 0;
    const std::string summary = "edges per head " + std::to_string(edges["per_head"].get<std::uint64_t>()) + " of " +
                                std::to_string(edges["dense_equivalent_per_head"].get<std::uint64_t>()) +
                                " dense, sparsity " + format_double("%.3f", edges["sparsity"].get<double>());
    write_plot(ctx, s, kPatternSvg, pattern_svg(x.q.seq(), cfg, 0, summary));
    write_plot(ctx, s, kAttentionMapsSvg,
               attention_maps_svg(dense_weights(x.q, x.k, head, cfg.causal, rows),
                                  sparse_weights(x.q, x.k, head, cfg, rows), head,
                                  "head " + std::to_string(head) + " holds the worst element; rel_l1 of the output " +
                                      format_double("%.3g", cmp.rel_l1) + ", cosine " + format_double("%.4f", cmp.cosine)));
    write_plot(ctx, s, kErrorHeatmapSvg,
               error_heatmap_svg(metrics::max_abs_err_map(sparse, dense), x.q.seq(), x.q.heads(),
                                 "N=" + std::to_string(x.q.seq()) + ", max_abs " + format_double("%.3g", cmp.max_abs_err) +
                                     ", rel_l1 " + format_double("%.3g", cmp.rel_l1) + "; worst: " +
                                     metrics::element_text(cmp.worst)));
  }
  s.cases.push_back(std::move(c));
  return s;
}

// ---------------------------------------------------------------------------------------
// stream: decode every token through a KV cache and compare each row with forward().

SuiteResult suite_stream(const Ctx& ctx) {
  SuiteResult s;
  const Inputs in = load_inputs(ctx, GenKind::kNormal, 256, 4, 2, 32);
  attn::SparseConfig cfg = pattern(ctx, 32, 16);
  if (!cfg.causal) {
    s.notes.push_back("streaming compares causal decode with forward() row by row; --no-causal is ignored here");
    cfg.causal = true;
  }
  const Qkv& x = in.x;
  const Json base{{"inputs", in.json}, {"shape", shape_json(x.q, x.k)}, {"sparse", jobs::sparse_config_json(cfg)}};
  const Tensor forward_sparse = attn::sparse_attention(x.q, x.k, x.v, cfg, ctx.exec);
  {
    Case c = make_case("sparse_f32", base);
    c.config["cache"] = "f32";
    c.config["against"] = "sparse forward";
    c.set_comparison(compare(stream_sparse(x, cfg, stream::KvDType::kF32, kernels::Isa::kAuto), forward_sparse));
    c.defaults = gates_with_nonfinite({{"max_abs", ctx.by_preset(1e-5, 2e-6)}});
    ctx.evaluate(c);
    s.cases.push_back(std::move(c));
  }
  const Tensor streamed_f16 = stream_sparse(x, cfg, stream::KvDType::kF16, kernels::Isa::kAuto);
  {
    // Against f32 forward: the cost of storing K/V as half.
    Case c = make_case("sparse_f16", base);
    c.config["cache"] = "f16";
    c.config["against"] = "sparse forward on the f32 inputs";
    c.set_comparison(compare(streamed_f16, forward_sparse));
    c.defaults = gates_with_nonfinite({{"max_abs", ctx.by_preset(1e-2, 2e-3)}, {"rel_l1", ctx.by_preset(2e-3, 5e-4)}});
    ctx.evaluate(c);
    s.cases.push_back(std::move(c));
  }
  {
    // Against forward on K/V rounded to half: isolates the cache mechanics from rounding
    // (only the block means differ: the cache keeps them from the f32 inputs).
    const Tensor forward_rounded =
        attn::sparse_attention(x.q, round_to_half(x.k), round_to_half(x.v), cfg, ctx.exec);
    Case c = make_case("sparse_f16_vs_rounded", base);
    c.config["cache"] = "f16";
    c.config["against"] = "sparse forward on K/V rounded to half";
    c.set_comparison(compare(streamed_f16, forward_rounded));
    c.defaults = gates_with_nonfinite({{"max_abs", ctx.by_preset(1e-4, 3e-5)}});
    ctx.evaluate(c);
    s.cases.push_back(std::move(c));
  }
  {
    Case c = make_case("dense_f32", Json{{"inputs", in.json}, {"shape", shape_json(x.q, x.k)}, {"cache", "f32"},
                                         {"against", "dense forward"}});
    c.set_comparison(compare(stream_dense(x), attn::dense_attention(x.q, x.k, x.v, true, ctx.exec)));
    c.defaults = gates_with_nonfinite({{"max_abs", ctx.by_preset(1e-5, 2e-6)}});
    ctx.evaluate(c);
    s.cases.push_back(std::move(c));
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// gqa: the head mapping at the Qwen2.5-7B (28:4) and TinyLlama (32:4) shapes.

namespace {

struct GqaShape {
  std::size_t hq, hk, dim;
};

// Query head h of `out` against every kv head run as one-head attention: the expected
// output (kv head h / group) and the count of heads that match another kv head as well.
Case mapping_case(const Ctx& ctx, const Qkv& x, const attn::SparseConfig& cfg, bool sparse, const std::string& name) {
  const std::size_t hq = x.q.heads(), hk = x.k.heads(), group = hq / hk;
  auto run = [&](const Tensor& q, const Tensor& k, const Tensor& v) {
    return sparse ? attn::sparse_attention(q, k, v, cfg, ctx.exec) : attn::dense_attention(q, k, v, true, ctx.exec);
  };
  const Tensor out = run(x.q, x.k, x.v);
  std::vector<Tensor> ks, vs;
  for (std::size_t kk = 0; kk < hk; ++kk) {
    ks.push_back(head_slice(x.k, kk));
    vs.push_back(head_slice(x.v, kk));
  }
  Tensor expected(out.shape());
  std::size_t mapping_errors = 0;
  double min_margin = std::numeric_limits<double>::infinity();
  Json heads = Json::array();
  for (std::size_t h = 0; h < hq; ++h) {
    const Tensor qh = head_slice(x.q, h);
    const Tensor got = head_slice(out, h);
    double own = 0.0, nearest_other = std::numeric_limits<double>::infinity();
    std::size_t best_kv = 0;
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t kk = 0; kk < hk; ++kk) {
      const Tensor ref = run(qh, ks[kk], vs[kk]);
      const double err = metrics::max_abs_err(got.values(), ref.values());
      if (err < best) {
        best = err;
        best_kv = kk;
      }
      if (kk == h / group) {
        own = err;
        for (std::size_t t = 0; t < ref.seq(); ++t) std::copy_n(ref.row(t, 0), ref.dim(), expected.row(t, h));
      } else {
        nearest_other = std::min(nearest_other, err);
      }
    }
    // The head maps correctly when its own kv head reproduces it and no other kv head comes close.
    const bool ok = best_kv == h / group && own <= 1e-6 && (hk == 1 || nearest_other > 1e-3);
    mapping_errors += ok ? 0 : 1;
    if (hk > 1) min_margin = std::min(min_margin, nearest_other);
    heads.push_back(Json{{"head", h}, {"kv_head", h / group}, {"matched_kv_head", best_kv}, {"own_max_abs", own},
                         {"nearest_other_max_abs", metrics::number_json(nearest_other)}});
  }
  Case c = make_case(name, Json{{"shape", shape_json(x.q, x.k)}, {"group", group},
                                {"backend", sparse ? "sparse" : "dense"},
                                {"sparse", sparse ? jobs::sparse_config_json(cfg) : Json(nullptr)},
                                {"against", "each query head run alone against kv head h / group"}});
  c.set_comparison(compare(out, expected));
  c.set("mapping_errors", static_cast<double>(mapping_errors));
  c.details["heads"] = heads;
  c.details["min_other_kv_max_abs"] = metrics::number_json(min_margin);
  c.defaults = gates_with_nonfinite({{"max_abs", ctx.by_preset(1e-6, 0.0)}, {"mapping_errors", 0.0}});
  ctx.evaluate(c);
  return c;
}

}  // namespace

SuiteResult suite_gqa(const Ctx& ctx) {
  SuiteResult s;
  if (ctx.req.from_files() || ctx.req.q_heads || ctx.req.kv_heads || ctx.req.dim) {
    s.notes.push_back("gqa uses its own shapes (28:4 dim 128, 32:4 dim 64, 4:1 dim 32); only --gen and --seed apply");
  }
  const GenKind gen = ctx.req.gen.value_or(GenKind::kNormal);
  const std::uint64_t seed = ctx.req.seed;
  attn::SparseConfig cfg;
  cfg.window = 8;
  cfg.block_size = 8;  // small, so windows, strides and landmarks all take part at N 48
  const std::size_t n = 48;
  const std::vector<GqaShape> shapes{{28, 4, 128}, {32, 4, 64}};

  for (const GqaShape& sh : shapes) {
    const Qkv x = generate_qkv(gen, n, sh.hq, sh.hk, sh.dim, seed);
    for (bool sparse : {true, false}) {
      s.cases.push_back(mapping_case(ctx, x, cfg, sparse,
                                     "mapping_" + shape_name(sh.hq, sh.hk) + (sparse ? "_sparse" : "_dense")));
    }
  }
  for (const GqaShape& sh : {shapes[0], shapes[1], GqaShape{4, 1, 32}}) {
    const Qkv x = generate_qkv(gen, n, sh.hq, sh.hk, sh.dim, seed);
    const std::size_t group = sh.hq / sh.hk;
    const Tensor k_rep = repeat_heads(x.k, group), v_rep = repeat_heads(x.v, group);
    for (bool sparse : {true, false}) {
      const Tensor got = sparse ? attn::sparse_attention(x.q, x.k, x.v, cfg, ctx.exec)
                                : attn::dense_attention(x.q, x.k, x.v, true, ctx.exec);
      const Tensor want = sparse ? attn::sparse_attention(x.q, k_rep, v_rep, cfg, ctx.exec)
                                 : attn::dense_attention(x.q, k_rep, v_rep, true, ctx.exec);
      Case c = make_case("repeat_" + shape_name(sh.hq, sh.hk) + (sparse ? "_sparse" : "_dense"),
                         Json{{"shape", shape_json(x.q, x.k)}, {"group", group}, {"backend", sparse ? "sparse" : "dense"},
                              {"against", "MHA with each kv head repeated group times"}});
      c.set_comparison(compare(got, want));
      c.defaults = gates_with_nonfinite({{"max_abs", ctx.by_preset(1e-6, 0.0)}});
      ctx.evaluate(c);
      s.cases.push_back(std::move(c));
    }
  }
  for (const GqaShape& sh : shapes) {
    const std::size_t group = sh.hq / sh.hk;
    {
      // One token: every path must return V, expanded to the query heads.
      const Qkv x = generate_qkv(gen, 1, sh.hq, sh.hk, sh.dim, seed);
      Tensor expanded(1, sh.hq, sh.dim);
      for (std::size_t h = 0; h < sh.hq; ++h) std::copy_n(x.v.row(0, h / group), sh.dim, expanded.row(0, h));
      attn::SparseConfig c1 = cfg;
      stream::SparseDecoder dec(sh.hq, stream::KvCache(1, sh.hk, sh.dim, c1.block_size), c1);
      const Tensor got = stack({attn::sparse_attention(x.q, x.k, x.v, c1, ctx.exec),
                                attn::dense_attention(x.q, x.k, x.v, true, ctx.exec), dec.step(x.q, x.k, x.v)});
      const Tensor want = stack({expanded, expanded, expanded});
      Case c = make_case("first_token_" + shape_name(sh.hq, sh.hk),
                         Json{{"shape", shape_json(x.q, x.k)}, {"group", group},
                              {"rows", "pos 0 sparse forward, 1 dense forward, 2 decode step"},
                              {"against", "V of kv head h / group"}});
      c.set_comparison(compare(got, want));
      c.defaults = gates_with_nonfinite({{"max_abs", ctx.by_preset(1e-6, 0.0)}});
      ctx.evaluate(c);
      s.cases.push_back(std::move(c));
    }
    {
      // Two tokens: the cache holds one position when the second arrives; the output is
      // softmax([q1.k0, q1.k1] * scale) . [v0, v1], computed here in double.
      const Qkv x = generate_qkv(gen, 2, sh.hq, sh.hk, sh.dim, seed + 1);
      Tensor want_row(1, sh.hq, sh.dim);
      const double scale = 1.0 / std::sqrt(static_cast<double>(sh.dim));
      for (std::size_t h = 0; h < sh.hq; ++h) {
        const std::size_t kvh = h / group;
        double s0 = 0.0, s1 = 0.0;
        for (std::size_t d = 0; d < sh.dim; ++d) {
          s0 += static_cast<double>(x.q.at(1, h, d)) * x.k.at(0, kvh, d);
          s1 += static_cast<double>(x.q.at(1, h, d)) * x.k.at(1, kvh, d);
        }
        s0 *= scale;
        s1 *= scale;
        const double m = std::max(s0, s1), e0 = std::exp(s0 - m), e1 = std::exp(s1 - m);
        for (std::size_t d = 0; d < sh.dim; ++d) {
          want_row.at(0, h, d) = static_cast<float>((e0 * x.v.at(0, kvh, d) + e1 * x.v.at(1, kvh, d)) / (e0 + e1));
        }
      }
      auto token = [&](const Tensor& t, std::size_t i) {
        Tensor r(1, t.heads(), t.dim());
        std::copy_n(t.row(i, 0), r.size(), r.data());
        return r;
      };
      stream::SparseDecoder sdec(sh.hq, stream::KvCache(2, sh.hk, sh.dim, cfg.block_size), cfg);
      stream::DenseDecoder ddec(sh.hq, stream::KvCache(2, sh.hk, sh.dim, 1));
      sdec.step(token(x.q, 0), token(x.k, 0), token(x.v, 0));
      ddec.step(token(x.q, 0), token(x.k, 0), token(x.v, 0));
      const Tensor got = stack({sdec.step(token(x.q, 1), token(x.k, 1), token(x.v, 1)),
                                ddec.step(token(x.q, 1), token(x.k, 1), token(x.v, 1))});
      Case c = make_case("second_token_" + shape_name(sh.hq, sh.hk),
                         Json{{"shape", Json{{"seq", 2}, {"q_heads", sh.hq}, {"kv_heads", sh.hk}, {"head_dim", sh.dim}}},
                              {"group", group},
                              {"rows", "pos 0 sparse decode, 1 dense decode (cache holding one position)"},
                              {"against", "two-key softmax computed in double"}});
      c.set_comparison(compare(got, stack({want_row, want_row})));
      c.defaults = gates_with_nonfinite({{"max_abs", ctx.by_preset(1e-5, 2e-6)}});
      ctx.evaluate(c);
      s.cases.push_back(std::move(c));
    }
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// reference: optimised kernels vs the scalar reference kernels; f32 vs f64.

SuiteResult suite_reference(const Ctx& ctx) {
  SuiteResult s;
  const Inputs in = load_inputs(ctx, GenKind::kNormal, 256, 4, 2, 32);
  const attn::SparseConfig cfg = pattern(ctx, 32, 16);
  const Qkv& x = in.x;
  const kernels::Isa fast = kernels::resolve_isa(kernels::Isa::kAuto);
  const attn::ExecOptions scalar{ctx.exec.threads, kernels::Isa::kScalar};
  const Json base{{"inputs", in.json}, {"shape", shape_json(x.q, x.k)}, {"causal", cfg.causal}};
  if (fast == kernels::Isa::kScalar) {
    s.notes.push_back("isa auto resolves to scalar here (no SIMD kernels in this build or CPU, or RVT_ISA=scalar): "
                      "the auto_vs_scalar cases compare the reference kernels with themselves");
  }
  auto add = [&](const std::string& name, Json config, const Tensor& got, const Tensor& want, std::vector<Gate> gates) {
    Case c = make_case(name, std::move(config));
    c.set_comparison(compare(got, want));
    c.defaults = gates_with_nonfinite(std::move(gates));
    ctx.evaluate(c);
    s.cases.push_back(std::move(c));
  };
  const Tensor dense_fast = attn::dense_attention(x.q, x.k, x.v, cfg.causal, ctx.exec);
  const Tensor sparse_fast = attn::sparse_attention(x.q, x.k, x.v, cfg, ctx.exec);
  Json cfg_json = base;
  cfg_json["isa"] = kernels::isa_name(fast);
  cfg_json["against"] = "isa scalar";
  add("dense_auto_vs_scalar", cfg_json, dense_fast,
      attn::dense_attention(x.q, x.k, x.v, cfg.causal, scalar),
      {{"max_abs", ctx.by_preset(1e-5, 2e-6)}, {"nmse", ctx.by_preset(1e-10, 1e-12)}});
  cfg_json["sparse"] = jobs::sparse_config_json(cfg);
  add("sparse_auto_vs_scalar", cfg_json, sparse_fast,
      attn::sparse_attention(x.q, x.k, x.v, cfg, scalar), {{"max_abs", ctx.by_preset(1e-5, 2e-6)}, {"nmse", ctx.by_preset(1e-10, 1e-12)}});
  if (cfg.causal) {
    Json sc = cfg_json;
    sc["cache"] = "f16";
    add("stream_f16_auto_vs_scalar", sc,
        stream_sparse(x, cfg, stream::KvDType::kF16, fast),
        stream_sparse(x, cfg, stream::KvDType::kF16, kernels::Isa::kScalar),
        {{"max_abs", ctx.by_preset(1e-5, 2e-6)}, {"nmse", ctx.by_preset(1e-10, 1e-12)}});
  }
  Json f64 = base;
  f64["isa"] = kernels::isa_name(fast);
  f64["against"] = "the definition computed in double";
  add("dense_vs_f64", f64, dense_fast, dense_f64(x.q, x.k, x.v, cfg.causal),
      {{"max_abs", ctx.by_preset(1e-5, 2e-6)}, {"nmse", ctx.by_preset(1e-10, 1e-12)}});
  f64["sparse"] = jobs::sparse_config_json(cfg);
  add("sparse_vs_f64", f64, sparse_fast, sparse_f64(x.q, x.k, x.v, cfg),
      {{"max_abs", ctx.by_preset(1e-5, 2e-6)}, {"nmse", ctx.by_preset(1e-10, 1e-12)}});
  return s;
}

// ---------------------------------------------------------------------------------------
// model: the temporal head from a blob, dense vs sparse backend on the same frames.

SuiteResult suite_model(const Ctx& ctx) {
  SuiteResult s;
  const Request& r = ctx.req;
  const std::string blob_name = r.blob_path.empty() ? "default random blob (init_random_blob, seed 0x" +
                                                          hex64(blob::kDefaultSeed) + ")"
                                                    : r.blob_path;
  const blob::Blob b = r.blob_path.empty()
                           ? blob::parse(blob::init_random_blob(blob::Shape{}, blob::kDefaultSeed, blob::DType::kF32))
                           : blob::read_blob_file(r.blob_path);
  model::TemporalHead dense_head, sparse_head;
  try {
    model::HeadConfig hc;
    hc.window = r.window.value_or(32);
    hc.block_size = r.block.value_or(16);
    hc.causal = r.causal;
    hc.backend = model::Backend::kDense;
    dense_head = model::TemporalHead::from_blob(b, hc);
    hc.backend = model::Backend::kSparse;
    sparse_head = model::TemporalHead::from_blob(b, hc);
  } catch (const blob::BlobError& e) {
    throw Error(ExitCode::kBadInput, blob_name + ": " + e.what());
  }
  if (r.from_files() || r.q_heads || r.kv_heads || r.dim) {
    s.notes.push_back("model runs frames through the blob's head; --q/--k/--v and head shapes do not apply");
  }
  const GenKind gen_frames = r.gen.value_or(GenKind::kNormal);
  const std::size_t frames = r.seq.value_or(64), sequences = 64, classes = dense_head.n_classes();
  // Gated readout: the logits after every frame (last-token pooling), what the streaming
  // head emits frame by frame; a causal head gives them in one pass. Non-causal heads (and
  // the details, for both) use the mean-pooled logits per sequence.
  const bool per_frame = r.causal;
  std::vector<float> got, want, got_pooled, want_pooled;
  for (std::size_t q = 0; q < sequences; ++q) {
    const Tensor f = generate_frames(gen_frames, frames, dense_head.input_dim(), r.seed + q, ctx.exec.threads);
    // Both readouts from one pass of each head (a causal head's per-frame logits come free).
    for (const auto& [head, pooled, every] :
         {std::tuple{&dense_head, &want_pooled, &want}, std::tuple{&sparse_head, &got_pooled, &got}}) {
      const model::TemporalHead::MeanAndPerFrame l = head->mean_and_per_frame_logits(f.values(), frames, ctx.exec);
      pooled->insert(pooled->end(), l.mean.begin(), l.mean.end());
      every->insert(every->end(), l.per_frame.begin(), l.per_frame.end());
    }
  }
  if (!per_frame) {
    got = got_pooled;
    want = want_pooled;
  }
  const LogitStats st = logit_stats(got, want, classes);
  const model::HeadConfig& hc = sparse_head.config();
  Case c = make_case(
      "logits_dense_vs_sparse",
      Json{{"blob", blob_name},
           {"head", Json{{"input_dim", sparse_head.input_dim()}, {"q_heads", hc.q_heads}, {"kv_heads", hc.kv_heads},
                         {"head_dim", hc.head_dim}, {"layers", sparse_head.n_layers()}, {"classes", classes},
                         {"window", hc.window}, {"block_size", hc.block_size}, {"causal", hc.causal}}},
           {"frames", Json{{"generator", gen_kind_name(gen_frames)}, {"first_seed", hex64(r.seed)},
                           {"sequences", sequences}, {"frames_per_sequence", frames}}},
           {"readout", per_frame ? "logits after every frame (last-token pooling), as the streaming head emits them"
                                 : "mean-pooled logits per sequence"},
           {"rows", per_frame ? "pos = sequence * frames + frame, dim = class" : "pos = sequence, dim = class"},
           {"against", "dense backend"}});
  c.set_comparison(compare(got, want, TensorShape{st.rows, 1, classes}), false);
  c.set("top1", st.top1);
  c.set("spearman", st.spearman);
  c.details["rows"] = st.rows;
  c.details["top1_disagreements"] = st.disagreements;
  c.details["spearman_min"] = st.spearman_min;
  c.details["spearman_flat"] = metrics::spearman(got, want);
  const LogitStats pooled = logit_stats(got_pooled, want_pooled, classes);
  c.details["pooled"] = Json{{"readout", "mean-pooled logits per sequence (the head's forward)"},
                             {"rows", pooled.rows},
                             {"top1", pooled.top1},
                             {"top1_disagreements", pooled.disagreements},
                             {"spearman", pooled.spearman},
                             {"cosine", metrics::cosine(got_pooled, want_pooled)},
                             {"rel_l1", metrics::number_json(metrics::rel_l1(got_pooled, want_pooled))}};
  c.details["edges_per_head_all_layers"] = Json{{"sparse", sparse_head.edges_per_head(frames)},
                                                {"dense", dense_head.edges_per_head(frames)}};
  c.defaults = gates_with_nonfinite({{"top1", 0.99}, {"spearman", ctx.by_preset(0.95, 0.98)}, {"cosine", ctx.by_preset(0.99, 0.999)}});
  ctx.evaluate(c);
  s.cases.push_back(std::move(c));
  return s;
}

// ---------------------------------------------------------------------------------------
// landmarks: compat `mean` vs `mass` against dense at several N.

SuiteResult suite_landmarks(const Ctx& ctx) {
  SuiteResult s;
  const Request& r = ctx.req;
  std::vector<std::size_t> lengths{128, 256, 512, 1024};
  if (r.from_files() || r.seq) lengths = {0};  // the user's length
  Json table = Json::array();
  for (std::size_t len : lengths) {
    const Inputs in = load_inputs(ctx, GenKind::kStructured, len, 4, 4, 32);
    const Qkv& x = in.x;
    attn::SparseConfig cfg = pattern(ctx, 32, 16);
    cfg.landmarks = true;
    const Tensor dense = attn::dense_attention(x.q, x.k, x.v, cfg.causal, ctx.exec);
    Json row{{"seq", x.q.seq()}};
    double rel[2] = {0, 0};
    for (attn::LandmarkMode mode : {attn::LandmarkMode::kMean, attn::LandmarkMode::kMass}) {
      cfg.landmark_mode = mode;
      const char* name = attn::landmark_mode_name(mode);
      const metrics::Comparison cmp = compare(attn::sparse_attention(x.q, x.k, x.v, cfg, ctx.exec), dense);
      const std::uint64_t edges = attn::sparse_edges_per_head(x.q.seq(), cfg);
      const double sp = metrics::sparsity(edges, attn::dense_edges_per_head(x.q.seq(), cfg.causal));
      Case c = make_case(std::string(name) + "_n" + std::to_string(x.q.seq()),
                         Json{{"inputs", in.json}, {"shape", shape_json(x.q, x.k)},
                              {"sparse", jobs::sparse_config_json(cfg)}, {"against", "dense"}});
      c.set_comparison(cmp, false);
      c.set("sparsity", sp);
      c.details["edges_per_head"] = edges;
      c.defaults = gates_with_nonfinite({});
      ctx.evaluate(c);
      s.cases.push_back(std::move(c));
      rel[mode == attn::LandmarkMode::kMass] = cmp.rel_l1;
      row[std::string("sparsity_") + name] = sp;
      row[std::string("rel_l1_") + name] = metrics::number_json(cmp.rel_l1);
      row[std::string("cosine_") + name] = metrics::number_json(cmp.cosine);
      row[std::string("max_abs_") + name] = metrics::number_json(cmp.max_abs_err);
    }
    row["closer"] = rel[0] < rel[1] ? "mean" : (rel[1] < rel[0] ? "mass" : "tie");
    table.push_back(row);
  }
  s.table = table;
  return s;
}

// ---------------------------------------------------------------------------------------
// sweep: the accuracy/sparsity trade-off over a grid of pattern settings.

SuiteResult suite_sweep(const Ctx& ctx) {
  SuiteResult s;
  const Inputs in = load_inputs(ctx, GenKind::kStructured, 512, 4, 4, 32);
  const Qkv& x = in.x;
  const attn::SparseConfig base = pattern(ctx, 32, 16);
  std::vector<SweepAxis> axes = ctx.req.sweep;
  if (axes.empty()) axes = parse_sweep({"window=8,16,32,64", "block=8,16,32"});

  Tensor dense;
  double dense_ms = std::numeric_limits<double>::infinity();
  Clock::time_point t0;
  for (int rep = 0; rep < 3; ++rep) {
    t0 = Clock::now();
    dense = attn::dense_attention(x.q, x.k, x.v, base.causal, ctx.exec);
    dense_ms = std::min(dense_ms, ms_since(t0));
  }
  const std::uint64_t dense_edges = attn::dense_edges_per_head(x.q.seq(), base.causal);

  std::vector<std::size_t> idx(axes.size(), 0);
  std::vector<std::size_t> rows;  // indices into s.cases
  while (true) {
    attn::SparseConfig cfg = base;
    std::string name;
    Json setting = Json::object();
    for (std::size_t a = 0; a < axes.size(); ++a) {
      const std::string& v = axes[a].values[idx[a]];
      const std::string& key = axes[a].key;
      if (key == "window") cfg.window = std::stoul(v);
      if (key == "block") cfg.block_size = std::stoul(v);
      if (key == "landmarks") {
        cfg.landmarks = v != "off";
        if (v != "off") cfg.landmark_mode = attn::parse_landmark_mode(v);
      }
      if (key == "log_stride") cfg.log_stride = v == "on";
      name += (name.empty() ? "" : "_") + key + v;
      setting[key] = v;
    }
    cfg.validate();
    Tensor sparse;
    double ms = std::numeric_limits<double>::infinity();
    for (int rep = 0; rep < 3; ++rep) {  // the fastest of three: one run is noisy at this size
      t0 = Clock::now();
      sparse = attn::sparse_attention(x.q, x.k, x.v, cfg, ctx.exec);
      ms = std::min(ms, ms_since(t0));
    }
    const std::uint64_t edges = attn::sparse_edges_per_head(x.q.seq(), cfg);
    Case c = make_case(name.empty() ? "base" : name,
                       Json{{"setting", setting}, {"sparse", jobs::sparse_config_json(cfg)}, {"against", "dense"}});
    c.set_comparison(compare(sparse, dense), false);
    c.set("sparsity", metrics::sparsity(edges, dense_edges));
    c.details["edges_per_head"] = edges;
    c.details["time_ms"] = ms;
    c.gating = false;
    c.defaults = gates_with_nonfinite({{"cosine", 0.98}, {"rel_l1", ctx.by_preset(0.07, 0.06)}});
    ctx.evaluate(c);
    rows.push_back(s.cases.size());
    s.cases.push_back(std::move(c));
    bool more = false;  // odometer over the axes, the last axis fastest
    for (std::size_t a = axes.size(); a-- > 0;) {
      if (++idx[a] < axes[a].values.size()) {
        more = true;
        break;
      }
      idx[a] = 0;
    }
    if (!more) break;
  }

  // The best setting: passing, most sparse (lower rel_l1 on ties). With none passing, the
  // closest (highest cosine) stands in, so the failure names a concrete setting.
  long best = -1;
  bool any_pass = false;
  for (std::size_t i : rows) {
    const Case& c = s.cases[i];
    if (!c.pass) continue;
    any_pass = true;
    if (best < 0) {
      best = static_cast<long>(i);
      continue;
    }
    const Case& b = s.cases[static_cast<std::size_t>(best)];
    if (*c.get("sparsity") > *b.get("sparsity") ||
        (*c.get("sparsity") == *b.get("sparsity") && *c.get("rel_l1") < *b.get("rel_l1"))) {
      best = static_cast<long>(i);
    }
  }
  if (!any_pass) {
    for (std::size_t i : rows) {
      if (best < 0 || *s.cases[i].get("cosine") > *s.cases[static_cast<std::size_t>(best)].get("cosine")) {
        best = static_cast<long>(i);
      }
    }
  }
  Json table = Json::array();
  std::vector<SweepPoint> points;
  for (std::size_t i : rows) {
    Case& c = s.cases[i];
    const bool is_best = any_pass && static_cast<long>(i) == best;
    c.details["best"] = is_best;
    table.push_back(Json{{"setting", c.name},
                         {"sparsity", *c.get("sparsity")},
                         {"edges_per_head", c.details["edges_per_head"]},
                         {"cosine", metrics::number_json(*c.get("cosine"))},
                         {"rel_l1", metrics::number_json(*c.get("rel_l1"))},
                         {"max_abs", metrics::number_json(*c.get("max_abs"))},
                         {"time_ms", c.details["time_ms"]},
                         {"pass", c.pass},
                         {"best", is_best}});
    points.push_back(SweepPoint{c.name, *c.get("sparsity"), *c.get("rel_l1"), c.pass, is_best});
  }
  Case summary = s.cases[static_cast<std::size_t>(best)];
  summary.name = "best";
  summary.gating = true;
  summary.config["chosen"] = s.cases[static_cast<std::size_t>(best)].name;
  summary.config["inputs"] = in.json;
  summary.config["shape"] = shape_json(x.q, x.k);
  summary.details["settings"] = rows.size();
  summary.details["passing_settings"] =
      std::count_if(rows.begin(), rows.end(), [&](std::size_t i) { return s.cases[i].pass; });
  summary.details["dense_ms"] = dense_ms;
  summary.details["rule"] = any_pass ? "the passing setting with the highest sparsity"
                                     : "no setting passes its gates; the closest (highest cosine) is shown";
  ctx.evaluate(summary);
  if (!any_pass) summary.pass = false;
  s.cases.push_back(std::move(summary));
  s.table = table;
  if (!ctx.req.plot_dir.empty()) {
    write_plot(ctx, s, kSweepSvg,
               sweep_svg(points, "N=" + std::to_string(x.q.seq()) + ", " + std::to_string(x.q.heads()) + " heads, inputs " +
                                     in.json.value("generator", std::string("from files")) +
                                     "; gates: " + (any_pass ? "best = passing setting with the highest sparsity"
                                                             : "no setting passes")));
  }
  return s;
}

}  // namespace rvt::parity::detail
