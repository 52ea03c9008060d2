#pragma once
// How much memory this process has used (for the metrics log and benchmarks).
#include <cstddef>

namespace onebit {

// Peak resident set size of this process in bytes (VmHWM), 0 if unknown.
size_t peak_rss_bytes();

}  // namespace onebit
