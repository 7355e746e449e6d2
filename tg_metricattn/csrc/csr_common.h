// What the CSR kernels share: checks of a pattern handed to them (row pointers from 0 to E, never
// decreasing; column indices inside the node table; a failed check raises, a RuntimeError in Python,
// before any read) and the prefetch of a node row that a few entries later will be read.
#pragma once

#include <ATen/ATen.h>

namespace tgma {

inline void check_row_pointers(const at::Tensor& ptr, int64_t nnz, const char* name) {
  TORCH_CHECK(ptr.device().is_cpu(), name, ": CPU tensors expected");
  TORCH_CHECK(ptr.dim() == 1 && ptr.numel() >= 1 && ptr.scalar_type() == at::kLong, name,
              ": row pointers must be a non-empty int64 vector");
  TORCH_CHECK(ptr[0].item<int64_t>() == 0 && ptr[-1].item<int64_t>() == nnz, name,
              ": row pointers must run from 0 to the number of edges (", nnz, ")");
  TORCH_CHECK(ptr.numel() == 1 || (ptr.diff() >= 0).all().item<bool>(), name, ": row pointers must not decrease");
}

// ptr and columns of a pattern whose columns index the rows of `nodes` ([N, H, C])
inline void check_columns(const at::Tensor& ptr, const at::Tensor& columns, const at::Tensor& nodes, const char* name) {
  TORCH_CHECK(nodes.device().is_cpu() && columns.device().is_cpu(), name, ": CPU tensors expected");
  TORCH_CHECK(nodes.dim() == 3, name, ": node rows must be [N, H, C]");
  TORCH_CHECK(columns.dim() == 1 && columns.scalar_type() == at::kLong, name, ": columns must be an int64 vector");
  check_row_pointers(ptr, columns.numel(), name);
  TORCH_CHECK(columns.numel() == 0 ||
                  (columns.min().item<int64_t>() >= 0 && columns.max().item<int64_t>() < nodes.size(0)),
              name, ": column index out of range for ", nodes.size(0), " node rows");
}

// entries between a row's prefetch and its use
constexpr int64_t kPrefetchAhead = 8;

template <typename T>
inline void prefetch_row(const T* row, int64_t width) {
  const char* bytes = reinterpret_cast<const char*>(row);
  for (int64_t b = 0; b < width * static_cast<int64_t>(sizeof(T)); b += 64) __builtin_prefetch(bytes + b);
}

}  // namespace tgma
