// libFuzzer target: the RVNE blob parser and the model-level checks on arbitrary bytes.
// Contract: blob::parse / check_loadable / payload_floats only ever throw rvt::Error.
// Each input is tried twice: as given, and with weights_len and the CRC fixed up, so the
// fuzzer also gets past the container checks to the shape, layout and finiteness checks.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fuzz_common.hpp"
#include "rvt/blob/blob.hpp"

namespace {

void run(std::span<const std::uint8_t> bytes) {
  RVT_FUZZ_ONLY_RVT_ERROR({
    const rvt::blob::Blob b = rvt::blob::parse(bytes);
    rvt::blob::check_loadable(b);
    (void)rvt::blob::payload_floats(b);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run(std::span<const std::uint8_t>(data, size));
  if (size >= rvt::blob::kMinFileBytes) {
    std::vector<std::uint8_t> fixed(data, data + size);
    const auto len = static_cast<std::uint32_t>(size - rvt::blob::kMinFileBytes);
    for (int i = 0; i < 4; ++i) fixed[20 + i] = static_cast<std::uint8_t>(len >> (8 * i));
    const std::uint32_t crc = rvt::blob::crc32(std::span<const std::uint8_t>(fixed.data(), size - 4));
    for (int i = 0; i < 4; ++i) fixed[size - 4 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
    run(fixed);
  }
  return 0;
}
