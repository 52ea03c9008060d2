// printable(): names from untrusted files must never split a one-line error or carry raw bytes.
#include <gtest/gtest.h>

#include <string>

#include "onebit/core/error.h"

namespace onebit {
namespace {

TEST(Printable, EscapesControlCharactersAndInvalidUtf8) {
  EXPECT_EQ(printable("a\nb\tc\rd"), "a\\nb\\tc\\rd");
  EXPECT_EQ(printable(std::string("x\0y", 3)), "x\\x00y");
  EXPECT_EQ(printable("\x7f"), "\\x7F");
  EXPECT_EQ(printable("\xff\xfe"), "\\xFF\\xFE");
  EXPECT_EQ(printable("\xc3"), "\\xC3");          // truncated 2-byte sequence
  EXPECT_EQ(printable("\xc0\xaf"), "\\xC0\\xAF");  // overlong encoding of '/'
}

TEST(Printable, KeepsValidUtf8AndPlainText) {
  EXPECT_EQ(printable("model.layers.3.q_proj"), "model.layers.3.q_proj");
  EXPECT_EQ(printable("Ġhello ▁wörld 日本 🙂"), "Ġhello ▁wörld 日本 🙂");
}

TEST(Printable, CutsLongNames) {
  const std::string s(1000, 'a');
  const std::string p = printable(s, 16);
  EXPECT_EQ(p, std::string(16, 'a') + "...");
  EXPECT_EQ(printable("short", 16), "short");
  EXPECT_EQ(printable(std::string(300, '\n')).find('\n'), std::string::npos);
}

}  // namespace
}  // namespace onebit
