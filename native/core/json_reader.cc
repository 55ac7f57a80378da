#include "json_reader.h"

#include <algorithm>
#include <cstdio>

#include "error.h"

namespace rnnkit::json {

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void appendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += (char)cp;
  } else if (cp < 0x800) {
    out += (char)(0xC0 | (cp >> 6));
    out += (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += (char)(0xE0 | (cp >> 12));
    out += (char)(0x80 | ((cp >> 6) & 0x3F));
    out += (char)(0x80 | (cp & 0x3F));
  } else {
    out += (char)(0xF0 | (cp >> 18));
    out += (char)(0x80 | ((cp >> 12) & 0x3F));
    out += (char)(0x80 | ((cp >> 6) & 0x3F));
    out += (char)(0x80 | (cp & 0x3F));
  }
}

void writeEscaped(const std::string& text, std::string& out, bool escapeQuotes) {
  for (const char ch : text) {
    const unsigned char c = (unsigned char)ch;
    if (escapeQuotes && (c == '"' || c == '\\')) {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
}

void writeQuoted(const std::string& text, std::string& out) {
  out += '"';
  writeEscaped(text, out, true);
  out += '"';
}

std::string quoted(const std::string& text) {
  std::string out;
  writeQuoted(truncate(text, 80), out);
  return out;
}

class Parser {
 public:
  Parser(const char* text, std::size_t length, const Limits& limits) : text_(text), end_(length), limits_(limits) {}

  Value document() {
    skipWhitespace();
    Value v = value(0);
    skipWhitespace();
    if (pos_ != end_) syntax("unexpected " + describeByte() + " after the value");
    return v;
  }

 private:
  [[noreturn]] void syntax(const std::string& what) {
    fail(ErrorCode::Format, "not valid JSON: " + what + " at byte " + std::to_string(pos_));
  }
  [[noreturn]] void limit(const std::string& what) {
    fail(ErrorCode::Format, "over the JSON reader's limits: " + what + " at byte " + std::to_string(pos_));
  }

  std::string describeByte() const {
    if (pos_ >= end_) return "end of the text";
    const unsigned char c = (unsigned char)text_[pos_];
    char buf[32];
    if (c >= 0x20 && c < 0x7F)
      std::snprintf(buf, sizeof buf, "character '%c'", c);
    else
      std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    return buf;
  }

  void skipWhitespace() {
    while (pos_ < end_ && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }

  void expect(char c) {
    if (pos_ >= end_ || text_[pos_] != c) syntax(std::string("expected '") + c + "', found " + describeByte());
    ++pos_;
  }

  Value value(std::size_t depth) {
    if (pos_ >= end_) syntax("unexpected end of the text");
    if (++values_ > limits_.maxValues) limit("more than " + std::to_string(limits_.maxValues) + " values");
    Value v;
    switch (text_[pos_]) {
      case '{':
      case '[': container(v, depth + 1); break;
      case '"': v.kind = Value::Kind::String; string(v.text); break;
      case 't': literal("true"); v.kind = Value::Kind::Boolean; v.boolean = true; break;
      case 'f': literal("false"); v.kind = Value::Kind::Boolean; break;
      case 'n': literal("null"); break;
      default:
        if (text_[pos_] != '-' && !isDigit(text_[pos_])) syntax("unexpected " + describeByte());
        v.kind = Value::Kind::Number;
        number(v.text);
    }
    return v;
  }

  void literal(const char* word) {
    for (const char* w = word; *w; ++w) {
      if (pos_ >= end_ || text_[pos_] != *w) syntax(std::string("expected '") + word + "'");
      ++pos_;
    }
  }

  // An array or an object: the elements, each after its key in an object, separated by commas.
  void container(Value& v, std::size_t depth) {
    if (depth > limits_.maxDepth) limit("more than " + std::to_string(limits_.maxDepth) + " nested levels");
    const bool isObject = text_[pos_] == '{';
    const char close = isObject ? '}' : ']';
    v.kind = isObject ? Value::Kind::Object : Value::Kind::Array;
    ++pos_;
    skipWhitespace();
    if (pos_ < end_ && text_[pos_] == close) {
      ++pos_;
      return;
    }
    for (;;) {
      skipWhitespace();
      if (isObject) {
        if (pos_ >= end_ || text_[pos_] != '"') syntax("expected a key, found " + describeByte());
        v.keys.emplace_back();
        string(v.keys.back());
        skipWhitespace();
        expect(':');
        skipWhitespace();
      }
      v.items.push_back(value(depth));
      skipWhitespace();
      if (pos_ < end_ && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      expect(close);
      break;
    }
    if (isObject) rejectDuplicateKeys(v);
  }

  void rejectDuplicateKeys(const Value& v) {
    // JSON leaves duplicate keys to the reader; silently keeping one would let two parsers of the same file
    // disagree on what it says, so they are an error here.
    std::vector<std::size_t> order(v.keys.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v.keys[a] < v.keys[b]; });
    for (std::size_t i = 1; i < order.size(); ++i)
      if (v.keys[order[i]] == v.keys[order[i - 1]])
        fail(ErrorCode::Format, "not valid JSON: the key " + quoted(v.keys[order[i]]) +
                                    " appears twice in the object that ends at byte " + std::to_string(pos_));
  }

  std::uint32_t hex4() {
    if (end_ - pos_ < 4) syntax("a \\u escape needs four hexadecimal digits");
    std::uint32_t cp = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hexValue(text_[pos_ + i]);
      if (h < 0) syntax("a \\u escape needs four hexadecimal digits");
      cp = cp * 16 + (std::uint32_t)h;
    }
    pos_ += 4;
    return cp;
  }

  // One escape after the backslash; a high surrogate must be followed by an escaped low one, because UTF-8 (what
  // the decoded text is) cannot hold a lone surrogate.
  void escape(std::string& out) {
    if (pos_ >= end_) syntax("unterminated string");
    const char c = text_[pos_++];
    switch (c) {
      case '"': out += '"'; return;
      case '\\': out += '\\'; return;
      case '/': out += '/'; return;
      case 'b': out += '\b'; return;
      case 'f': out += '\f'; return;
      case 'n': out += '\n'; return;
      case 'r': out += '\r'; return;
      case 't': out += '\t'; return;
      case 'u': break;
      default: --pos_; syntax("invalid escape \\" + describeByte());
    }
    std::uint32_t cp = hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) syntax("a lone low surrogate in a \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (end_ - pos_ < 2 || text_[pos_] != '\\' || text_[pos_ + 1] != 'u')
        syntax("a high surrogate in a \\u escape without a low surrogate after it");
      pos_ += 2;
      const std::uint32_t low = hex4();
      if (low < 0xDC00 || low > 0xDFFF) syntax("a high surrogate in a \\u escape without a low surrogate after it");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    appendUtf8(out, cp);
  }

  // One UTF-8 encoded character starting at pos_, checked as Unicode defines well-formed UTF-8: no overlong forms,
  // no surrogates, nothing above U+10FFFF.
  void utf8(std::string& out) {
    const unsigned char lead = (unsigned char)text_[pos_];
    std::size_t n;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
      n = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      n = 3;
      if (lead == 0xE0) lo = 0xA0;
      if (lead == 0xED) hi = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      n = 4;
      if (lead == 0xF0) lo = 0x90;
      if (lead == 0xF4) hi = 0x8F;
    } else {
      syntax("invalid UTF-8 (" + describeByte() + ")");
    }
    if (end_ - pos_ < n) syntax("invalid UTF-8 (a character cut by the end of the text)");
    for (std::size_t i = 1; i < n; ++i) {
      const unsigned char b = (unsigned char)text_[pos_ + i];
      if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) {
        pos_ += i;
        syntax("invalid UTF-8 (" + describeByte() + ")");
      }
    }
    out.append(text_ + pos_, n);
    pos_ += n;
  }

  void string(std::string& out) {
    ++pos_;  // the opening quote
    for (;;) {
      if (out.size() > limits_.maxStringBytes)
        limit("a string longer than " + std::to_string(limits_.maxStringBytes) + " bytes");
      if (pos_ >= end_) syntax("unterminated string");
      const unsigned char c = (unsigned char)text_[pos_];
      if (c == '"') {
        ++pos_;
        return;
      }
      if (c < 0x20) syntax("a control character (" + describeByte() + ") in a string");
      if (c == '\\') {
        ++pos_;
        escape(out);
      } else if (c >= 0x80) {
        utf8(out);
      } else {
        // A run of plain ASCII at once: most of a header is names and digits.
        std::size_t run = pos_ + 1;
        while (run < end_ && (unsigned char)text_[run] >= 0x20 && (unsigned char)text_[run] < 0x80 && text_[run] != '"' &&
               text_[run] != '\\')
          ++run;
        out.append(text_ + pos_, run - pos_);
        pos_ = run;
      }
    }
  }

  void digits(const char* what) {
    if (pos_ >= end_ || !isDigit(text_[pos_])) syntax(std::string("a number needs digits ") + what);
    while (pos_ < end_ && isDigit(text_[pos_])) ++pos_;
  }

  void number(std::string& out) {
    const std::size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    if (pos_ < end_ && text_[pos_] == '0') {
      ++pos_;
    } else {
      digits("before any point or exponent");
    }
    if (pos_ < end_ && text_[pos_] == '.') {
      ++pos_;
      digits("after the decimal point");
    }
    if (pos_ < end_ && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < end_ && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      digits("in the exponent");
    }
    if (pos_ - start > limits_.maxStringBytes) limit("a number longer than " + std::to_string(limits_.maxStringBytes) + " bytes");
    out.assign(text_ + start, pos_ - start);
  }

  const char* text_;
  std::size_t pos_ = 0;
  const std::size_t end_;
  const Limits& limits_;
  std::size_t values_ = 0;
};

// Stops adding once out is past maxBytes, so that describing a huge array costs no more than a small one.
void writeCompact(const Value& v, std::string& out, std::size_t maxBytes) {
  if (out.size() > maxBytes) return;
  switch (v.kind) {
    case Value::Kind::Null: out += "null"; return;
    case Value::Kind::Boolean: out += v.boolean ? "true" : "false"; return;
    case Value::Kind::Number: out += truncate(v.text, maxBytes); return;
    case Value::Kind::String: writeQuoted(truncate(v.text, maxBytes), out); return;
    case Value::Kind::Array:
    case Value::Kind::Object: {
      const bool isObject = v.kind == Value::Kind::Object;
      out += isObject ? '{' : '[';
      for (std::size_t i = 0; i < v.items.size() && out.size() <= maxBytes; ++i) {
        if (i) out += ',';
        if (isObject) {
          writeQuoted(truncate(v.keys[i], maxBytes), out);
          out += ':';
        }
        writeCompact(v.items[i], out, maxBytes);
      }
      out += isObject ? '}' : ']';
      return;
    }
  }
}

}  // namespace

const Value* Value::find(const std::string& key) const {
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (keys[i] == key) return &items[i];
  return nullptr;
}

Value parse(const char* text, std::size_t length, const Limits& limits) {
  return Parser(text, length, limits).document();
}

bool toSafeInteger(const Value& number, std::uint64_t& out) {
  if (number.kind != Value::Kind::Number) return false;
  const std::string& s = number.text;
  std::size_t i = 0;
  const bool negative = i < s.size() && s[i] == '-';
  if (negative) ++i;
  // The value is digits x 10^exponent, the digits being those before and after the point.
  std::string digits;
  long long exponent = 0;
  for (; i < s.size() && isDigit(s[i]); ++i) digits += s[i];
  if (i < s.size() && s[i] == '.')
    for (++i; i < s.size() && isDigit(s[i]); ++i, --exponent) digits += s[i];
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool minus = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) minus = s[i++] == '-';
    long long e = 0;
    for (; i < s.size() && isDigit(s[i]); ++i) e = std::min(e * 10 + (s[i] - '0'), 1000000000LL);  // saturates
    exponent += minus ? -e : e;
  }
  const std::size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) {  // zero, "-0" and "0e99" included
    out = 0;
    return true;
  }
  if (negative) return false;
  std::size_t last = digits.size();
  while (digits[last - 1] == '0') {
    --last;
    ++exponent;
  }
  if (exponent < 0) return false;  // a fraction is left
  const long long length = (long long)(last - first) + exponent;
  if (length > 16) return false;  // 2^53 has 16 digits
  std::uint64_t value = 0;
  for (std::size_t k = first; k < last; ++k) value = value * 10 + (std::uint64_t)(digits[k] - '0');
  for (long long k = 0; k < exponent; ++k) value *= 10;
  if (value > (std::uint64_t(1) << 53) - 1) return false;
  out = value;
  return true;
}

std::string describe(const Value& value, std::size_t maxBytes) {
  std::string out;
  writeCompact(value, out, maxBytes);
  return out.size() > maxBytes ? truncate(out, maxBytes) : out;
}

std::string truncate(const std::string& text, std::size_t maxBytes) {
  if (text.size() <= maxBytes) return text;
  std::size_t cut = maxBytes;
  while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "...";
}

std::string printable(const std::string& text, std::size_t maxBytes) {
  std::string out;
  writeEscaped(truncate(text, maxBytes), out, false);
  return out;
}

}  // namespace rnnkit::json
