// The training progress in a log (stderr not a TTY): the final line is printed once, even when the
// last update already printed it.
#include <gtest/gtest.h>

#include <unistd.h>

#include "onebit/core/progress.h"

using onebit::ProgressBar;

namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(ProgressOutput, FinalLineIsNotRepeatedInALog) {
  if (ProgressBar::stderr_is_tty()) GTEST_SKIP() << "stderr is a terminal; this checks the plain-line mode";
  ::testing::internal::CaptureStderr();
  {
    ProgressBar bar("train", 3, "step/s");
    bar.plain_interval_s = 0;  // every update prints, the last one included
    for (uint64_t i = 1; i <= 3; ++i) bar.update(i, "step " + std::to_string(i) + "/3");
    bar.finish();
  }
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(out, "train 3/3"), 1u) << out;
  EXPECT_EQ(count(out, "train 1/3"), 1u) << out;
  EXPECT_EQ(count(out, "\n"), 3u) << out;
}

TEST(ProgressOutput, FinalLineIsPrintedWhenTheLastUpdateWasNot) {
  if (ProgressBar::stderr_is_tty()) GTEST_SKIP() << "stderr is a terminal; this checks the plain-line mode";
  ::testing::internal::CaptureStderr();
  {
    ProgressBar bar("train", 3, "step/s");
    bar.plain_interval_s = 3600;  // no update prints
    for (uint64_t i = 1; i <= 3; ++i) bar.update(i);
    bar.finish();
  }
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(out, "train 3/3"), 1u) << out;
  EXPECT_EQ(count(out, "\n"), 1u) << out;
}
