#pragma once
// Choosing the compute device: `--device cpu|cuda|auto` for train, eval and generate. The CPU backend
// is kernels::cpu_ops(); the CUDA backend exists when onebit was built with nvcc (ONEBIT_CUDA) and is
// usable when a GPU is visible. This is the one place that knows whether CUDA was compiled in.
#include <cstddef>
#include <string>

#include "onebit/kernels/kernels.h"

namespace onebit::kernels {

enum class Device { Cpu, Cuda };

const char* to_string(Device d);
bool cuda_built();      // compiled with the CUDA backend
bool cuda_available();  // built, and a usable GPU is visible
// "cpu", "cuda" or "auto" (CUDA when available, else the CPU). `flag` names the option in errors:
// an unknown name, or cuda asked for where it is not built or no GPU is visible.
Device resolve_device(const std::string& name, const std::string& flag = "--device");
// The device a command runs on: `typed` (--device's value; empty when the flag was not given), else
// $ONEBIT_DEVICE when set (a way to pin a machine's default), else auto.
Device choose_device(const std::string& typed);
inline constexpr const char* kDeviceHelp =
    "Compute device: cuda (the GPU: bf16 activations, f32 master weights), cpu, or auto (the GPU when one is "
    "visible). Without the flag: $ONEBIT_DEVICE if set, else auto";

// One line for logs: "cpu" or "cuda (NVIDIA H200)".
std::string describe(Device d);

// The process-wide CUDA backend (created on first use, on the device current then); fails with a
// clear message without CUDA.
Ops<float, bf16>& cuda_ops();
// GPUs visible to this process (0 without CUDA or without a usable device).
int cuda_device_count();
// Makes GPU `index` this process's device: the backend's stream and memory live on the device that
// is current when cuda_ops() first runs, so a data-parallel rank calls this before (LOCAL_RANK picks
// the GPU). Fails with one line when the backend already lives on another GPU.
void select_cuda_device(int index);
// The CUDA backend's compute stream, as a cudaStream_t in a void* (this header needs no CUDA headers):
// code outside kernels/ that queues its own GPU work (dist/'s NCCL collectives) orders it against the
// backend's launches through this. Creates the backend like cuda_ops().
void* cuda_stream();
// Peak device memory the CUDA backend has held (bytes; 0 when it was never created), and a reset of
// the peak to what is held now (so a benchmark measures its own steady state).
size_t cuda_peak_bytes();
void cuda_reset_peak();

}  // namespace onebit::kernels
