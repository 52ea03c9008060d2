#pragma once
// Sums the ranks' gradients over the flat gradient arena in fixed buckets (contiguous ranges of the
// arena), each reduced as soon as every gradient in it is final for the step.
//
// Overlap: ready() is the grad-ready hook. Called per layer from the backward pass (backward fills
// the arena from the last layer's parameters towards the embeddings), a bucket's all-reduce is
// launched as soon as its layers are done, as an overlapped all-reduce on the communicator's stream
// (NCCL), while the compute stream goes on with the layers below; finish() sends what is left and
// joins, so the compute work after it sees every sum. On the CPU (MPI) each collective blocks, so
// there is nothing to overlap with: the trainer calls ready() once for the whole arena after the
// last micro-batch.
//
// Every bucket goes to the communicator, a world of one's too: the single-process communicator's
// sum is the identity, and a world of one forced onto NCCL runs the same GPU path as many ranks.
//
// Averaging is not done here: each rank scales its backward by 1 / world_size, so the sum is the mean.
#include <cstddef>
#include <vector>

#include "onebit/dist/communicator.h"

namespace onebit::dist {

class GradientReducer {
 public:
  // grads: the arena of n values (backend memory); bucket_values: values per bucket (the last may be
  // shorter). wire: how the buckets travel (BF16 on NCCL; the MPI path sends f32 whatever).
  GradientReducer(Communicator& comm, float* grads, size_t n, size_t bucket_values, Wire wire);

  // Gradients [offset, offset + count) are final for this step. Ranges must not overlap within a step.
  void ready(size_t offset, size_t count);
  // Reduces every bucket not reduced yet and joins the overlapped ones; then the next step starts.
  void finish();

  size_t buckets() const { return filled_.size(); }
  // Buckets reduced by ready() before finish() in the last step (the ones that could overlap).
  size_t reduced_early() const { return reduced_early_; }

 private:
  void reduce(size_t bucket);

  Communicator& comm_;
  float* grads_;
  size_t n_, bucket_;
  Wire wire_;
  std::vector<size_t> filled_;  // values marked ready per bucket
  std::vector<bool> done_;
  size_t reduced_early_ = 0, reduced_now_ = 0;
};

}  // namespace onebit::dist
