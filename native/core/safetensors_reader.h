// The safetensors format read from bytes that may be hostile: an 8-byte little-endian header length, a JSON
// header describing each tensor (dtype, shape, data_offsets) plus string metadata, then the tensors' raw bytes.
// Reading is two steps so that nothing is allocated on the word of the file: readSafetensorsHeader checks every
// length, offset, dtype, shape and name against the bytes actually present, and only then does the caller allocate
// each tensor (its size now proven to be backed by the file) and decode it with decodeSafetensorsTensor.
// Every failure is an rnnkit::Error with ErrorCode::Format whose message names what is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace rnnkit {

enum class SafetensorsDtype { F32, F64, F16, BF16 };

struct SafetensorsEntry {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::F32;
  std::vector<std::uint64_t> shape;
  std::uint64_t elements = 0;  // the product of shape, at most 2^53 - 1
  std::uint64_t begin = 0;     // the tensor's bytes in the file: [begin, end), absolute offsets, end <= file size
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> tensors;                       // in file order (the selected ones, with a selection)
  std::vector<std::pair<std::string, std::string>> metadata;  // __metadata__, in file order
};

// Far above any real header, far below what a forged length could make a reader allocate.
constexpr std::size_t kSafetensorsMaxHeaderBytes = std::size_t(100) << 20;
constexpr std::size_t kSafetensorsMaxDims = 8;

// Validates the whole file (header and the placement of every tensor) without touching tensor data.
//
// With `select`, only the tensors it accepts are returned (and must have a float dtype); the others, a PyTorch
// state_dict's int64 buffers of other modules say, are still checked (names, shapes, offsets inside the data, byte
// counts where their dtype is a safetensors one, no overlaps, no duplicate names) but may have any dtype.
SafetensorsHeader readSafetensorsHeader(const std::uint8_t* file, std::size_t size,
                                        const std::function<bool(const std::string&)>& select = nullptr);

// Converts one validated tensor to float32 into out (entry.elements floats). file and size must be those that
// readSafetensorsHeader accepted.
void decodeSafetensorsTensor(const std::uint8_t* file, std::size_t size, const SafetensorsEntry& entry, float* out);

const char* safetensorsDtypeName(SafetensorsDtype dtype);

}  // namespace rnnkit
