// libFuzzer target for the native safetensors reader (native/core/safetensors_reader.cc). Any input must end in
// one of two ways: accepted, with a layout that keeps every promise the reader makes, or rejected with an
// rnnkit::Error of ErrorCode::Format. Anything else is a finding: a sanitizer report, a crash, another exception
// (it escapes and aborts), a broken promise (reported and aborted below), a hang or an allocation past
// -malloc_limit_mb. Built and run by run.sh.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "../../../native/core/error.h"
#include "../../../native/core/safetensors_reader.h"

namespace {

[[noreturn]] void broken(const char* promise) {
  std::fprintf(stderr, "safetensors_fuzzer: the reader accepted a file that breaks: %s\n", promise);
  std::abort();
}

unsigned itemSize(rnnkit::SafetensorsDtype dtype) {
  switch (dtype) {
    case rnnkit::SafetensorsDtype::F32: return 4;
    case rnnkit::SafetensorsDtype::F64: return 8;
    case rnnkit::SafetensorsDtype::F16:
    case rnnkit::SafetensorsDtype::BF16: return 2;
  }
  broken("a dtype outside the enumeration");
}

// Checked independently of the reader's own code, so that a bug there is not repeated here.
void checkLayout(const std::uint8_t* data, std::size_t size, const rnnkit::SafetensorsHeader& header) {
  std::uint64_t headerEnd = 8;
  for (int i = 0; i < 8; ++i) headerEnd += std::uint64_t(data[i]) << (8 * i);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const rnnkit::SafetensorsEntry& t : header.tensors) {
    if (t.shape.size() > rnnkit::kSafetensorsMaxDims) broken("at most 8 dimensions");
    long double product = 1;
    for (std::uint64_t d : t.shape) product *= (long double)d;
    if (product != (long double)t.elements) broken("elements is the product of the shape");
    if (t.elements > (std::uint64_t(1) << 53) - 1) broken("at most 2^53 - 1 elements");
    if (t.begin < headerEnd || t.begin > t.end || t.end > size) broken("the tensor lies in the data section");
    if (t.end - t.begin != t.elements * itemSize(t.dtype)) broken("the byte count matches shape and dtype");
    if (t.end > t.begin) ranges.emplace_back(t.begin, t.end);
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) broken("no two tensors share a byte");
}

}  // namespace

namespace {

// Reads the file (all of it, or with a selection: then tensors of any dtype may sit unread beside the selected ones),
// checks what was accepted and decodes it.
void readCheckAndDecode(const std::uint8_t* data, std::size_t size,
                        const std::function<bool(const std::string&)>& select) {
  rnnkit::SafetensorsHeader header;
  try {
    header = select ? rnnkit::readSafetensorsHeader(data, size, select) : rnnkit::readSafetensorsHeader(data, size);
  } catch (const rnnkit::Error& e) {
    if (e.code() != rnnkit::ErrorCode::Format) broken("every rejection is a format error");
    if (e.what()[0] == '\0') broken("every rejection says what is wrong");
    return;
  }
  checkLayout(data, size, header);
  // Decoding allocates what the file's bytes back, never more than twice the file (F16 and BF16 double in size).
  std::vector<float> out;
  for (const rnnkit::SafetensorsEntry& t : header.tensors) {
    if (select && !select(t.name)) broken("only selected tensors are returned");
    out.assign((std::size_t)t.elements, 0.f);
    rnnkit::decodeSafetensorsTensor(data, size, t, out.data());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  readCheckAndDecode(data, size, nullptr);
  readCheckAndDecode(data, size, [](const std::string& name) { return name.size() % 2 == 0; });
  return 0;
}
