#include "safetensors_reader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "error.h"
#include "json_reader.h"

namespace rnnkit {

namespace {

constexpr std::uint64_t kMaxSafeInteger = (std::uint64_t(1) << 53) - 1;

struct DtypeInfo {
  const char* name;
  SafetensorsDtype dtype;
  unsigned itemSize;
};
constexpr DtypeInfo kDtypes[] = {
    {"F32", SafetensorsDtype::F32, 4},
    {"F64", SafetensorsDtype::F64, 8},
    {"F16", SafetensorsDtype::F16, 2},
    {"BF16", SafetensorsDtype::BF16, 2},
};

// The other dtypes of the format: accepted only for tensors that are not read, so that their byte counts can still be
// checked.
struct OtherDtype {
  const char* name;
  unsigned itemSize;
};
constexpr OtherDtype kOtherDtypes[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2},
                                       {"U16", 2},  {"I32", 4}, {"U32", 4}, {"I64", 8},     {"U64", 8}};

const DtypeInfo& infoOf(SafetensorsDtype dtype) {
  for (const DtypeInfo& d : kDtypes)
    if (d.dtype == dtype) return d;
  fail(ErrorCode::Internal, "safetensors: unknown dtype");
}

[[noreturn]] void formatError(const std::string& message) { fail(ErrorCode::Format, "safetensors: " + message); }

// What a file that is not safetensors seems to be, for the message: the usual mistakes are a model.json, an ONNX
// or PyTorch pickle file, or text.
std::string looksLike(const std::uint8_t* file, std::size_t size) {
  std::size_t i = 0;
  while (i < size && i < 64 && (file[i] == ' ' || file[i] == '\n' || file[i] == '\r' || file[i] == '\t')) ++i;
  if (i < size && (file[i] == '{' || file[i] == '['))
    return "; it looks like JSON (a TF.js model.json is read by fromTfjs)";
  if (size >= 4 && file[0] == 'P' && file[1] == 'K' && file[2] == 3 && file[3] == 4)
    return "; it looks like a zip archive (a PyTorch .pt file: save the state_dict with safetensors instead)";
  if (size >= 2 && file[0] == 0x80 && file[1] <= 5) return "; it looks like a Python pickle";
  return "";
}

std::string tensorName(const std::string& name) { return "tensor '" + json::printable(name) + "'"; }

std::string joined(const std::vector<std::uint64_t>& shape) {
  std::string s;
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s;
}

std::uint64_t readLittleEndian(const std::uint8_t* p, unsigned bytes) {
  std::uint64_t v = 0;
  for (unsigned i = 0; i < bytes; ++i) v |= std::uint64_t(p[i]) << (8 * i);
  return v;
}

std::string describeField(const json::Value* v) { return v ? json::describe(*v) : std::string("undefined"); }

// A list of non-negative safe integers, or false.
bool readIntegers(const json::Value* v, std::size_t maxLength, std::vector<std::uint64_t>& out) {
  if (!v || !v->isArray() || v->items.size() > maxLength) return false;
  out.resize(v->items.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    if (!json::toSafeInteger(v->items[i], out[i])) return false;
  return true;
}

// `decoded`: the tensor will be read, so its dtype must be a float one. Otherwise any string will do, and the byte
// count is checked only for the format's own dtypes.
SafetensorsEntry readEntry(const std::string& name, const json::Value& desc, std::uint64_t dataLength, bool decoded) {
  const std::string what = tensorName(name);
  if (!desc.isObject()) formatError(what + " has no description");
  SafetensorsEntry e;
  e.name = name;

  const json::Value* dtype = desc.find("dtype");
  const DtypeInfo* info = nullptr;
  const char* dtypeName = nullptr;
  unsigned itemSize = 0;  // 0: unknown, the byte count is not checked
  if (dtype && dtype->isString()) {
    for (const DtypeInfo& d : kDtypes)
      if (dtype->text == d.name) info = &d;
    if (info) {
      dtypeName = info->name;
      itemSize = info->itemSize;
    } else if (!decoded) {
      for (const OtherDtype& d : kOtherDtypes)
        if (dtype->text == d.name) dtypeName = d.name, itemSize = d.itemSize;
    }
  }
  if (!info && (decoded || !dtype || !dtype->isString()))
    formatError(what + " has dtype " + describeField(dtype) + "; supported: F32, F64, F16, BF16");
  if (info) e.dtype = info->dtype;

  const json::Value* shape = desc.find("shape");
  if (!readIntegers(shape, kSafetensorsMaxDims, e.shape))
    formatError(what + " has an invalid shape " + describeField(shape));

  const json::Value* offsets = desc.find("data_offsets");
  std::vector<std::uint64_t> range;
  if (!readIntegers(offsets, 2, range) || range.size() != 2)
    formatError(what + " has invalid data_offsets " + describeField(offsets));
  const std::uint64_t begin = range[0], end = range[1];
  if (begin > end || end > dataLength)
    formatError(what + " spans bytes [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") outside the data section (" + std::to_string(dataLength) + " bytes)");

  // Any zero dimension makes the tensor empty, whatever the others say; otherwise the product is checked at each
  // step, so that a forged shape is reported instead of wrapping around to a small count.
  std::uint64_t count = 1;
  if (std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end()) {
    count = 0;
  } else {
    for (std::uint64_t d : e.shape) {
      if (count > kMaxSafeInteger / d)
        formatError(what + " of shape [" + joined(e.shape) + "] has more than 2^53 - 1 elements");
      count *= d;
    }
  }
  const std::uint64_t needed = count * itemSize;  // < 2^56: no overflow
  if (itemSize && needed != end - begin)
    formatError(what + " of shape [" + joined(e.shape) + "] and dtype " + dtypeName + " needs " +
                std::to_string(needed) + " bytes, its offsets give " + std::to_string(end - begin));
  e.elements = count;
  e.begin = begin;
  e.end = end;
  return e;
}

// Two tensors may not share bytes (a writer bug or a forged file meant to alias); empty tensors share nothing. And,
// as the format requires, the tensors cover the data section exactly: no gap between two of them and no byte after
// the last, where a second file (a polyglot) or the remains of another model could hide.
void checkPlacement(const std::vector<SafetensorsEntry>& tensors, std::uint64_t dataBegin, std::uint64_t dataEnd) {
  std::vector<const SafetensorsEntry*> byStart;
  for (const SafetensorsEntry& t : tensors)
    if (t.end > t.begin) byStart.push_back(&t);
  std::stable_sort(byStart.begin(), byStart.end(),
                   [](const SafetensorsEntry* a, const SafetensorsEntry* b) { return a->begin < b->begin; });
  const SafetensorsEntry* reach = nullptr;  // the tensor that ends last among those before
  for (const SafetensorsEntry* t : byStart) {
    if (reach && t->begin < reach->end)
      formatError("tensors '" + json::printable(reach->name) + "' and '" + json::printable(t->name) + "' overlap");
    if (!reach || t->end > reach->end) reach = t;
  }
  std::uint64_t covered = dataBegin;
  for (const SafetensorsEntry* t : byStart) {
    if (t->begin > covered)
      formatError("the data section has " + std::to_string(t->begin - covered) + " bytes that no tensor owns, before " +
                  tensorName(t->name) + " (the format allows no gaps)");
    covered = t->end;
  }
  if (covered < dataEnd)
    formatError("the file has " + std::to_string(dataEnd - covered) + " bytes after the last tensor's data (the format "
                "allows none)");
}

float halfToFloat(std::uint16_t h) {
  const float sign = (h & 0x8000) ? -1.f : 1.f;
  const int exponent = (h >> 10) & 0x1F;
  const int fraction = h & 0x3FF;
  if (exponent == 0) return sign * std::ldexp((float)fraction, -24);
  if (exponent == 31) return fraction ? std::numeric_limits<float>::quiet_NaN() : sign * std::numeric_limits<float>::infinity();
  return sign * std::ldexp((float)(1024 + fraction), exponent - 25);
}

float bitsToFloat(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Rounds as an IEEE conversion does (values past the largest float become infinite), spelled out because a C++
// cast of an out-of-range double is undefined.
float doubleToFloat(double d) {
  const double overflow = 0x1.ffffffp127;  // halfway between FLT_MAX and 2^128: ties round to infinity
  if (d >= overflow) return std::numeric_limits<float>::infinity();
  if (d <= -overflow) return -std::numeric_limits<float>::infinity();
  return (float)d;
}

}  // namespace

const char* safetensorsDtypeName(SafetensorsDtype dtype) { return infoOf(dtype).name; }

SafetensorsHeader readSafetensorsHeader(const std::uint8_t* file, std::size_t size,
                                        const std::function<bool(const std::string&)>& select) {
  if (size < 8) formatError("the file has " + std::to_string(size) + " bytes, too short for a header");
  const std::uint64_t headerLength = readLittleEndian(file, 8);
  if (headerLength > size - 8)
    formatError("not a safetensors file: the header length " + std::to_string(headerLength) +
                " in its first 8 bytes runs past the end of the file (" + std::to_string(size) + " bytes)" +
                looksLike(file, size));
  if (headerLength > kSafetensorsMaxHeaderBytes)
    formatError("the header length " + std::to_string(headerLength) + " is over the limit of " +
                std::to_string(kSafetensorsMaxHeaderBytes) + " bytes");

  json::Limits limits;
  limits.maxStringBytes = kSafetensorsMaxHeaderBytes;  // metadata may carry a large vocabulary
  json::Value header;
  try {
    header = json::parse(reinterpret_cast<const char*>(file + 8), (std::size_t)headerLength, limits);
  } catch (const Error& e) {
    formatError(std::string("the header is ") + e.what());
  }
  if (!header.isObject()) formatError("the header is not a JSON object");

  const std::uint64_t dataLength = size - 8 - headerLength;
  SafetensorsHeader out;
  std::vector<SafetensorsEntry> placed;  // every tensor, read or not, for the overlap check
  for (std::size_t i = 0; i < header.keys.size(); ++i) {
    const std::string& name = header.keys[i];
    const json::Value& entry = header.items[i];
    if (name == "__metadata__") {
      if (!entry.isObject()) formatError("__metadata__ must be an object of strings");
      for (std::size_t k = 0; k < entry.keys.size(); ++k) {
        if (!entry.items[k].isString())
          formatError("__metadata__." + json::printable(entry.keys[k]) + " must be a string");
        out.metadata.emplace_back(entry.keys[k], entry.items[k].text);
      }
      continue;
    }
    const bool decoded = !select || select(name);
    placed.push_back(readEntry(name, entry, dataLength, decoded));
    placed.back().begin += 8 + headerLength;
    placed.back().end += 8 + headerLength;
    if (decoded) out.tensors.push_back(placed.back());
  }
  checkPlacement(placed, 8 + headerLength, size);
  return out;
}

void decodeSafetensorsTensor(const std::uint8_t* file, std::size_t size, const SafetensorsEntry& entry, float* out) {
  const DtypeInfo& info = infoOf(entry.dtype);
  // A caller that passes an entry of another file must not turn into an out-of-bounds read.
  require(entry.begin <= entry.end && entry.end <= size && entry.end - entry.begin == entry.elements * info.itemSize,
          ErrorCode::Internal, "safetensors: tensor '" + json::printable(entry.name) + "' does not belong to this file");
  const std::uint8_t* p = file + entry.begin;
  const std::size_t n = (std::size_t)entry.elements;
  switch (entry.dtype) {
    case SafetensorsDtype::F32:
      for (std::size_t i = 0; i < n; ++i) out[i] = bitsToFloat((std::uint32_t)readLittleEndian(p + 4 * i, 4));
      break;
    case SafetensorsDtype::F64:
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t bits = readLittleEndian(p + 8 * i, 8);
        double d;
        std::memcpy(&d, &bits, sizeof d);
        out[i] = doubleToFloat(d);
      }
      break;
    case SafetensorsDtype::F16:
      for (std::size_t i = 0; i < n; ++i) out[i] = halfToFloat((std::uint16_t)readLittleEndian(p + 2 * i, 2));
      break;
    case SafetensorsDtype::BF16:
      for (std::size_t i = 0; i < n; ++i) out[i] = bitsToFloat((std::uint32_t)readLittleEndian(p + 2 * i, 2) << 16);
      break;
  }
}

}  // namespace rnnkit
