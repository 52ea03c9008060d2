#pragma once
// Central finite differences in f64 for gradient checks: each test builds a scalar loss and compares
// its analytic gradient with (L(x+eps) - L(x-eps)) / 2eps, element by element.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <functional>
#include <vector>

namespace onebit::test {

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks analytic gradient `grad` of loss() with respect to every element of `x`.
inline void expect_fd(std::vector<double>& x, const std::vector<double>& grad, const std::function<double()>& loss,
                      const char* what, double eps = 1e-6, double tol = 1e-7) {
  ASSERT_EQ(x.size(), grad.size());
  int nonzero = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + eps;
    const double lp = loss();
    x[i] = x0 - eps;
    const double lm = loss();
    x[i] = x0;
    const double fd = (lp - lm) / (2 * eps);
    ASSERT_NEAR(grad[i], fd, tol + 1e-6 * std::abs(fd)) << what << "[" << i << "]";
    nonzero += std::abs(fd) > 1e-9;
  }
  EXPECT_GT(nonzero, 0) << what << ": a gradient check where nothing matters proves nothing";
}

}  // namespace onebit::test
