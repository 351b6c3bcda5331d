// The temporal head run from a blob: hand-computed one-frame case, dense/sparse
// agreement where the pattern covers everything, pooling, and shape errors.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>

#include "rvt/blob/blob.hpp"
#include "rvt/core/error.hpp"
#include "rvt/model/temporal_head.hpp"
#include "rvt/tensor/generate.hpp"

using namespace rvt;

namespace {

blob::Blob default_blob() { return blob::parse(blob::init_random_blob(blob::Shape{}, blob::kDefaultSeed, blob::DType::kF32)); }

std::vector<std::uint8_t> f32_payload(const std::vector<float>& w) {
  std::vector<std::uint8_t> out;
  for (float f : w) {
    const auto u = std::bit_cast<std::uint32_t>(f);
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(u >> (8 * i)));
  }
  return out;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

}  // namespace

TEST_CASE("one frame, one layer: logits computed by hand", "[model]") {
  // input_dim 2, 1 head of dim 2, 1 layer, 2 classes. With one frame attention returns V,
  // so x1 = x + (x Wv) Wo and logits = x1 Wc.
  const std::vector<float> wq{1, 0, 0, 1}, wk{1, 0, 0, 1}, wv{2, 0, 0, 3}, wo{1, 1, 0, 1}, wc{1, -1, 2, 0.5f};
  std::vector<float> all;
  for (const auto* w : {&wq, &wk, &wv, &wo, &wc}) all.insert(all.end(), w->begin(), w->end());
  const blob::Shape shape{2, 1, 1, 2, 1, 2};
  const blob::Blob b = blob::parse(blob::encode(shape, blob::DType::kF32, f32_payload(all)));
  const std::vector<float> x{1.0f, 2.0f};
  // x Wv = [2, 6]; (x Wv) Wo = [2, 2 + 6] = [2, 8]; x1 = [3, 10]; logits = [3 + 20, -3 + 5] = [23, 2]
  for (auto backend : {model::Backend::kDense, model::Backend::kSparse}) {
    model::HeadConfig cfg;
    cfg.backend = backend;
    const auto head = model::TemporalHead::from_blob(b, cfg);
    const std::vector<float> logits = head.forward(x, 1, model::Pool::kMean);
    CHECK(logits == std::vector<float>{23.0f, 2.0f});
  }
}

TEST_CASE("sparse head equals dense head when the pattern covers everything", "[model]") {
  const blob::Blob b = default_blob();
  const Tensor frames = generate_frames(GenKind::kNormal, 60, 16, 3);
  model::HeadConfig wide;
  wide.window = 1000;
  wide.block_size = 1000;  // no complete block: no landmarks
  model::HeadConfig dense = wide;
  dense.backend = model::Backend::kDense;
  const auto s = model::TemporalHead::from_blob(b, wide).forward(frames.values(), 60, model::Pool::kMean);
  const auto d = model::TemporalHead::from_blob(b, dense).forward(frames.values(), 60, model::Pool::kMean);
  CHECK(max_diff(s, d) < 1e-6);
  // The AETHER config does drop edges at T = 60, so the logits move, but only a little.
  const auto aether = model::TemporalHead::from_blob(b, model::HeadConfig::default_aether())
                          .forward(frames.values(), 60, model::Pool::kMean);
  CHECK(max_diff(aether, d) > 0.0);
  CHECK(max_diff(aether, d) < 0.05);
}

TEST_CASE("pooling and determinism", "[model]") {
  const blob::Blob b = default_blob();
  const auto head = model::TemporalHead::from_blob(b, model::HeadConfig::default_aether());
  const Tensor frames = generate_frames(GenKind::kNormal, 40, 16, 5);
  const auto mean1 = head.forward(frames.values(), 40, model::Pool::kMean);
  const auto mean2 = head.forward(frames.values(), 40, model::Pool::kMean, {3});
  CHECK(mean1 == mean2);
  const auto last = head.forward(frames.values(), 40, model::Pool::kLast);
  CHECK(max_diff(mean1, last) > 0.0);
  CHECK(head.n_classes() == 4);
  CHECK(head.n_layers() == 2);
}

TEST_CASE("both readouts from one pass equal forward and per_frame_logits", "[model]") {
  const blob::Blob b = default_blob();
  const Tensor frames = generate_frames(GenKind::kNormal, 300, 16, 9);
  for (bool causal : {true, false}) {
    for (model::Backend backend : {model::Backend::kSparse, model::Backend::kDense}) {
      model::HeadConfig cfg;
      cfg.causal = causal;
      cfg.backend = backend;
      const auto head = model::TemporalHead::from_blob(b, cfg);
      const auto both = head.mean_and_per_frame_logits(frames.values(), 300, {2});
      CHECK(both.mean == head.forward(frames.values(), 300, model::Pool::kMean));
      if (causal) {
        CHECK(both.per_frame == head.per_frame_logits(frames.values(), 300));
      } else {
        CHECK(both.per_frame.empty());  // a pass per prefix: not given
      }
    }
  }
}

TEST_CASE("model shape errors", "[model]") {
  const blob::Blob b = default_blob();
  const auto head = model::TemporalHead::from_blob(b, model::HeadConfig::default_aether());
  const std::vector<float> bad(15);
  CHECK_THROWS_AS(head.forward(bad, 1, model::Pool::kMean), Error);
  CHECK_THROWS_AS(head.forward({}, 0, model::Pool::kMean), Error);
  model::HeadConfig zero_block;
  zero_block.block_size = 0;
  CHECK_THROWS_AS(model::TemporalHead::from_blob(b, zero_block), Error);
  // A valid container whose payload does not match the layout is not loadable.
  const blob::Blob short_blob = blob::parse(blob::encode(blob::Shape{}, blob::DType::kF32, f32_payload({1, 2, 3})));
  CHECK_THROWS_AS(model::TemporalHead::from_blob(short_blob, {}), blob::BlobError);
}
