// What the CSR kernels share: checks of a pattern handed to them (row pointers from 0 to E, never
// decreasing; column indices inside the node table; entry orders inside 0..E-1; a failed check raises,
// a RuntimeError in Python, before any read), the prefetch of a node row that a few entries later will
// be read, and the loop over the entries of a row block that pairs each entry's target row with its
// source row (sampled products, squared distances).
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

// an optional entry order of a pattern with nnz entries (the transposed pattern's index into the edges)
inline void check_order(const at::Tensor& order, int64_t nnz, const char* name) {
  TORCH_CHECK(order.device().is_cpu() && order.dim() == 1 && order.scalar_type() == at::kLong && order.numel() == nnz,
              name, ": the entry order must be an int64 vector with one index per entry (", nnz, ")");
  TORCH_CHECK(nnz == 0 || (order.min().item<int64_t>() >= 0 && order.max().item<int64_t>() < nnz), name,
              ": entry order out of range for ", nnz, " entries");
}

// rows per task: kernels that read a node row per entry, and kernels that read only the entries' [E, H]
// values (about 1-2 edges per row on sparse graphs; small tasks balance badly-sized rows)
constexpr int64_t kRowGrain = 512;
constexpr int64_t kEntryGrain = 2048;

// entries between a row's prefetch and its use
constexpr int64_t kPrefetchAhead = 8;

template <typename T>
inline void prefetch_row(const T* row, int64_t width) {
  const char* bytes = reinterpret_cast<const char*>(row);
  for (int64_t b = 0; b < width * static_cast<int64_t>(sizeof(T)); b += 64) __builtin_prefetch(bytes + b);
}

// For the rows begin..end-1 of a pattern (ptr, col; nnz entries) over node rows of width heads * channels:
//   out[e, h] = pair(targets[i, h, :], sources[col[e], h, :], channels)   for each entry e of row i
// with the source row of the entry kPrefetchAhead entries later prefetched (the reads are random).
template <typename T, typename Pair>
inline void for_each_entry_pair(const T* targets, const T* sources, T* out, const int64_t* ptr, const int64_t* col,
                                int64_t begin, int64_t end, int64_t heads, int64_t channels, int64_t nnz, Pair pair) {
  const int64_t width = heads * channels;
  for (int64_t i = begin; i < end; ++i) {
    const T* __restrict__ a = targets + i * width;
    for (int64_t e = ptr[i]; e < ptr[i + 1]; ++e) {
      if (e + kPrefetchAhead < nnz) prefetch_row(sources + col[e + kPrefetchAhead] * width, width);
      const T* __restrict__ b = sources + col[e] * width;
      for (int64_t h = 0; h < heads; ++h) out[e * heads + h] = pair(a + h * channels, b + h * channels, channels);
    }
  }
}

}  // namespace tgma
