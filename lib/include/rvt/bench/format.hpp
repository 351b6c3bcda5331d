// Renderings of a bench result (bench.hpp): a text summary, a markdown table, a CSV table
// in long form, and an SVG plot. JSON is the result itself.
//
// CSV: one header, one row per (table, size, kernel):
//   table,n,kernel,isa,extrapolated,median,min,max,stddev,unit,samples,gflops,pct_of_peak,
//   edges_per_head,edge_ratio,speedup_vs_dense,fast_vs_ref,rounds,speedup_rounds_min,
//   speedup_rounds_max,fast_vs_ref_rounds_min,fast_vs_ref_rounds_max,threads_speedup,
//   threads_speedup_rounds_min,threads_speedup_rounds_max
// table is "prefill" (n = N, unit ms, kernels dense / sparse / sparse_ref), "scaling" (n = N,
// unit ms, kernels dense@1 / dense@T / sparse@1 / sparse@T; the @T rows give the speedup over
// one thread) or "decode" (n = T, unit ns per token, kernels sparse / dense). Empty cells where
// a value does not apply (speedup on a dense row, say); extrapolated dense rows have only
// median filled.
#pragma once

#include <string>

#include "rvt/report/report.hpp"

namespace rvt::bench {

enum class Format { kText, kJson, kMarkdown, kCsv };
Format parse_format(const std::string& name);  // "text" | "json" | "md" | "csv"; throws kUsage

// "preset bench (q_heads 4, kv_heads 4, dim 32, window 16, block 32, causal)": the workload of a
// bench result. every_field adds the pattern fields at their defaults too (globals [0], log
// stride, landmarks mean), which are otherwise named only where they differ; "?" for a field a
// (hand-made) report lacks.
std::string workload_words(const report::Json& result, bool every_field);

std::string format_text(const report::Json& result);
std::string format_markdown(const report::Json& result);
std::string format_csv(const report::Json& result);

// Two panels: time vs N on log-log axes (dense measured solid, dense extrapolated dashed,
// sparse, scalar reference sparse), and the measured speedup vs N beside the edge ratio
// (the ideal speedup), log-log as well. Drawn with report::Svg.
std::string plot_svg(const report::Json& result);

}  // namespace rvt::bench
