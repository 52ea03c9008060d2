// Device queries, memory helpers and the Context (cuBLASLt handle, workspace, scratch).
#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {

bool device_available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return false;
  }
  return n > 0;
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::string device_name() {
  cudaDeviceProp p{};
  OB_CUDA(cudaGetDeviceProperties(&p, current_device()));
  return p.name;
}

void set_device(int index) { OB_CUDA(cudaSetDevice(index)); }

int current_device() {
  int d = 0;
  OB_CUDA(cudaGetDevice(&d));
  return d;
}

int sm_count() {
  int count = 0;
  OB_CUDA(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, current_device()));
  return count;
}

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  if (bytes == 0) return nullptr;
  OB_CUDA(cudaMalloc(&p, bytes));
  OB_CUDA(cudaMemset(p, 0, bytes));
  return p;
}

void device_free(void* p) {
  if (p) OB_CUDA(cudaFree(p));
}

void upload(void* dst, const void* host, size_t bytes, Stream s) {
  OB_CUDA(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, s));
  OB_CUDA(cudaStreamSynchronize(s));
}

void download(void* host, const void* src, size_t bytes, Stream s) {
  OB_CUDA(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, s));
  OB_CUDA(cudaStreamSynchronize(s));
}

void device_zero(void* p, size_t bytes, Stream s) { OB_CUDA(cudaMemsetAsync(p, 0, bytes, s)); }

void synchronize(Stream s) { OB_CUDA(cudaStreamSynchronize(s)); }

void check_last_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) fail("CUDA: launching ", what, ": ", cudaGetErrorString(e));
}

Context::Context(Stream stream, size_t workspace_bytes) : impl_(std::make_unique<Impl>()) {
  impl_->stream = stream;
  OB_CUBLAS(cublasLtCreate(&impl_->lt));
  impl_->workspace_bytes = workspace_bytes;
  OB_CUDA(cudaMalloc(&impl_->workspace, workspace_bytes));
}

Context::~Context() {
  for (auto& [key, p] : impl_->plans) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
  }
  // Work queued on the stream may still use the buffers.
  cudaStreamSynchronize(impl_->stream);
  if (impl_->side) {
    cudaStreamSynchronize(impl_->side);
    cudaEventDestroy(impl_->forked);
    cudaEventDestroy(impl_->joined);
    cudaStreamDestroy(impl_->side);
  }
  cudaFree(impl_->scratch);
  cudaFree(impl_->workspace);
  cublasLtDestroy(impl_->lt);
}

Stream Context::stream() const { return impl_->stream; }

void* Context::scratch(size_t bytes) {
  if (bytes > impl_->scratch_bytes) {
    // Earlier launches on this stream may still read the old buffer.
    OB_CUDA(cudaStreamSynchronize(impl_->stream));
    OB_CUDA(cudaFree(impl_->scratch));
    impl_->scratch = nullptr;
    OB_CUDA(cudaMalloc(&impl_->scratch, bytes));
    if (impl_->grew) impl_->grew(bytes - impl_->scratch_bytes);
    impl_->scratch_bytes = bytes;
  }
  return impl_->scratch;
}

Stream Context::fork() {
  if (!impl_->side) {
    OB_CUDA(cudaStreamCreateWithFlags(&impl_->side, cudaStreamNonBlocking));
    OB_CUDA(cudaEventCreateWithFlags(&impl_->forked, cudaEventDisableTiming));
    OB_CUDA(cudaEventCreateWithFlags(&impl_->joined, cudaEventDisableTiming));
  }
  OB_CUDA(cudaEventRecord(impl_->forked, impl_->stream));
  OB_CUDA(cudaStreamWaitEvent(impl_->side, impl_->forked, 0));
  return impl_->side;
}

void Context::join() {
  OB_CHECK(impl_->side, "Context::join without fork");
  OB_CUDA(cudaEventRecord(impl_->joined, impl_->side));
  OB_CUDA(cudaStreamWaitEvent(impl_->stream, impl_->joined, 0));
}

size_t Context::scratch_capacity() const { return impl_->scratch_bytes; }

size_t Context::held_bytes() const {
  return impl_->workspace_bytes + impl_->scratch_bytes;
}

void Context::on_growth(std::function<void(size_t)> grew) { impl_->grew = std::move(grew); }

}  // namespace onebit::kernels::cuda
