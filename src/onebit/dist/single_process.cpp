// The communicator of a world of one: every collective is the identity (the sum over one rank).
#include <cstring>

#include "onebit/core/error.h"
#include "onebit/dist/communicator.h"

namespace onebit::dist {

namespace {

class SingleProcess final : public Communicator {
 public:
  explicit SingleProcess(kernels::BackendMemory& mem) : mem_(mem) {}
  const char* name() const override { return "single"; }
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  int local_rank() const override { return 0; }
  void all_reduce_sum(float*, size_t, Wire) override {}
  void reduce_scatter_sum(float*, std::span<const size_t> counts) override { check(counts); }
  void all_gather(float*, std::span<const size_t> counts) override { check(counts); }
  void broadcast(float*, size_t, int root) override { OB_CHECK(root == 0, "broadcast: root ", root, " of 1 rank"); }
  void gather_to_host(const float* part, std::span<const size_t> counts, float* full, int root) override {
    check(counts);
    OB_CHECK(root == 0, "gather_to_host: root ", root, " of 1 rank");
    mem_.download_bytes(full, part, counts[0] * sizeof(float));
  }
  void all_reduce_sum_host(double*, size_t) override {}
  void barrier() override {}

 private:
  static void check(std::span<const size_t> counts) {
    OB_CHECK(counts.size() == 1, "collective: ", counts.size(), " parts for a world of 1 rank");
  }
  kernels::BackendMemory& mem_;
};

}  // namespace

std::unique_ptr<Communicator> single_process_communicator(kernels::BackendMemory& mem) {
  return std::make_unique<SingleProcess>(mem);
}

}  // namespace onebit::dist
