#include "onebit/core/error.h"
// Error is header-only; this unit keeps the module's library non-empty and anchors its vtable.
namespace onebit {
namespace {
[[maybe_unused]] const Error kAnchor{"anchor"};
}
}  // namespace onebit
