// A strict JSON reader (RFC 8259) for text that may be hostile: it never reads past the text it is given, nests no
// deeper than a set depth, keeps no more than a set number of values and rejects what a lenient parser would guess
// at (trailing commas, comments, invalid UTF-8, lone surrogates, duplicate keys). Numbers are kept as their text, so
// that a caller decides exactly what it accepts instead of inheriting a lossy conversion to double.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rnnkit::json {

struct Limits {
  std::size_t maxDepth = 64;                     // nested arrays and objects
  std::size_t maxValues = std::size_t(1) << 20;  // values of every kind in the whole text
  std::size_t maxStringBytes = std::size_t(16) << 20;  // one string or key, decoded, in UTF-8 bytes
};

struct Value {
  enum class Kind { Null, Boolean, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  std::string text;               // a string's decoded UTF-8, or a number's text as written
  std::vector<Value> items;       // an array's elements, or an object's member values
  std::vector<std::string> keys;  // an object's keys, in file order: keys[i] names items[i]

  bool isObject() const { return kind == Kind::Object; }
  bool isArray() const { return kind == Kind::Array; }
  bool isString() const { return kind == Kind::String; }
  bool isNumber() const { return kind == Kind::Number; }
  // The member named key, or nullptr (keys are unique: the reader rejects duplicates).
  const Value* find(const std::string& key) const;
};

// Parses the whole text as one JSON value surrounded by optional whitespace. Throws rnnkit::Error with
// ErrorCode::Format and a message that says what is wrong and at which byte offset of the text.
Value parse(const char* text, std::size_t length, const Limits& limits = Limits());

// A number's exact value when it is an integer in [0, 2^53 - 1] (the integers a double holds exactly, JavaScript's
// safe integers), whatever its spelling ("12", "1.2e1", "-0"); false for fractions, negatives and larger values.
bool toSafeInteger(const Value& number, std::uint64_t& out);

// Compact JSON for an error message, cut to about maxBytes (with "..." when cut).
std::string describe(const Value& value, std::size_t maxBytes = 80);

// UTF-8 text cut to at most maxBytes on a character boundary, with "..." when cut: names in error messages stay
// readable when a hostile file makes them megabytes long.
std::string truncate(const std::string& text, std::size_t maxBytes = 200);

// A name for an error message: truncated, and with control characters written as \u00XX, since a NUL would end
// the message where it becomes a C string.
std::string printable(const std::string& text, std::size_t maxBytes = 200);

}  // namespace rnnkit::json
