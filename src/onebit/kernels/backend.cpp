// Device selection. The CUDA parts are compiled in only with ONEBIT_HAVE_CUDA (CMake links
// onebit_kernels_cuda into this library then); everything above this file is the same either way.
#include "onebit/kernels/backend.h"

#include <cstdlib>

#include "onebit/core/error.h"
#ifdef ONEBIT_HAVE_CUDA
#include "onebit/kernels/cuda/cuda_ops.h"
#endif

namespace onebit::kernels {

namespace {
#ifdef ONEBIT_HAVE_CUDA
// Never destroyed: at exit the CUDA runtime may already be torn down, and the driver frees everything.
cuda::CudaOps*& cuda_instance() {
  static cuda::CudaOps* ops = nullptr;
  return ops;
}
#endif
}  // namespace

const char* to_string(Device d) { return d == Device::Cuda ? "cuda" : "cpu"; }

bool cuda_built() {
#ifdef ONEBIT_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() {
#ifdef ONEBIT_HAVE_CUDA
  return cuda::device_available();
#else
  return false;
#endif
}

Device resolve_device(const std::string& name, const std::string& flag) {
  if (name == "cpu") return Device::Cpu;
  if (name == "auto") return cuda_available() ? Device::Cuda : Device::Cpu;
  if (name == "cuda") {
    if (!cuda_built()) fail(flag, " cuda: this onebit was built without the CUDA backend (rebuild where nvcc is found)");
    if (!cuda_available()) fail(flag, " cuda: no usable CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
    return Device::Cuda;
  }
  fail(flag, ": unknown device \"", printable(name), "\" (expected cpu, cuda or auto)");
}

Device choose_device(const std::string& typed) {
  if (!typed.empty()) return resolve_device(typed, "--device");
  if (const char* env = std::getenv("ONEBIT_DEVICE"); env && *env) return resolve_device(env, "$ONEBIT_DEVICE");
  return resolve_device("auto");
}

std::string describe(Device d) {
#ifdef ONEBIT_HAVE_CUDA
  if (d == Device::Cuda) return "cuda (" + cuda::device_name() + ")";
#endif
  return to_string(d);
}

Ops<float, bf16>& cuda_ops() {
#ifdef ONEBIT_HAVE_CUDA
  auto& ops = cuda_instance();
  if (!ops) ops = new cuda::CudaOps();
  return *ops;
#else
  fail("the CUDA backend is not built into this onebit (rebuild where nvcc is found)");
#endif
}

int cuda_device_count() {
#ifdef ONEBIT_HAVE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

void select_cuda_device(int index) {
#ifdef ONEBIT_HAVE_CUDA
  const int n = cuda::device_count();
  if (index < 0 || index >= n) fail("CUDA device ", index, " is not visible (", n, " visible)");
  if (cuda_instance() && cuda::current_device() != index)
    fail("the CUDA backend already runs on device ", cuda::current_device(), "; device ", index,
         " must be chosen before it starts");
  cuda::set_device(index);
#else
  fail("CUDA device ", index, ": the CUDA backend is not built into this onebit");
#endif
}

void* cuda_stream() {
#ifdef ONEBIT_HAVE_CUDA
  cuda_ops();
  return cuda_instance()->context().stream();
#else
  fail("the CUDA backend is not built into this onebit (rebuild where nvcc is found)");
#endif
}

size_t cuda_peak_bytes() {
#ifdef ONEBIT_HAVE_CUDA
  return cuda_instance() ? cuda_instance()->peak_allocated_bytes() : 0;
#else
  return 0;
#endif
}

void cuda_reset_peak() {
#ifdef ONEBIT_HAVE_CUDA
  if (cuda_instance()) cuda_instance()->reset_peak();
#endif
}

}  // namespace onebit::kernels
