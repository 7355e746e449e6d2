// Products over a CSR pattern with all heads of an edge together: each edge reads its node's row
// ([H, C], contiguous) once, instead of once per head.
//
// Row i of the pattern holds the entries e = ptr[i] .. ptr[i+1]-1 with columns col[e]:
//   spmm:  out[i, h, :] = sum_e values[order[e], h] * dense[col[e], h, :]   (order: identity if absent)
//   sddmm: out[e, h]    = <left[i, h, :], right[col[e], h, :]>
// Rows are split between threads (at::parallel_for); the row of an entry a few entries ahead is
// prefetched, as the gathers are random reads of the node table.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>

#include "csr_common.h"

namespace {

template <typename T>
void spmm_rows(const T* values, const int64_t* order, const T* dense, T* out, const int64_t* ptr, const int64_t* col,
               int64_t begin, int64_t end, int64_t heads, int64_t channels, int64_t nnz) {
  const int64_t width = heads * channels;
  for (int64_t i = begin; i < end; ++i) {
    T* __restrict__ o = out + i * width;
    std::fill(o, o + width, T(0));
    for (int64_t e = ptr[i]; e < ptr[i + 1]; ++e) {
      if (e + tgma::kPrefetchAhead < nnz) tgma::prefetch_row(dense + col[e + tgma::kPrefetchAhead] * width, width);
      const T* __restrict__ x = dense + col[e] * width;
      const T* __restrict__ w = values + (order ? order[e] : e) * heads;
      for (int64_t h = 0; h < heads; ++h) {
        const T wh = w[h];
#pragma omp simd
        for (int64_t c = 0; c < channels; ++c) o[h * channels + c] += wh * x[h * channels + c];
      }
    }
  }
}

template <typename T>
T dot(const T* __restrict__ a, const T* __restrict__ b, int64_t channels) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < channels; ++c) s += a[c] * b[c];
  return s;
}

at::Tensor spmm(const at::Tensor& values, const at::Tensor& dense, const at::Tensor& ptr, const at::Tensor& columns,
                const std::optional<at::Tensor>& order) {
  const int64_t nnz = columns.numel();
  tgma::check_columns(ptr, columns, dense, "spmm");
  TORCH_CHECK(values.dim() == 2 && values.size(1) == dense.size(1) && values.scalar_type() == dense.scalar_type(),
              "spmm: values must be [E, H] with the dense rows' heads and dtype");
  TORCH_CHECK(values.size(0) == nnz, "spmm: values must have one row per entry");
  if (order.has_value()) tgma::check_order(*order, nnz, "spmm");
  const at::Tensor v = values.contiguous(), d = dense.contiguous(), p = ptr.contiguous(), c = columns.contiguous();
  const at::Tensor o = order.has_value() ? order->contiguous() : at::Tensor();
  const int64_t rows = p.numel() - 1, heads = d.size(1), channels = d.size(2);
  at::Tensor out = at::empty({rows, heads, channels}, d.options());
  AT_DISPATCH_FLOATING_TYPES(d.scalar_type(), "spmm", [&] {
    const int64_t* order_ptr = o.defined() ? o.data_ptr<int64_t>() : nullptr;
    at::parallel_for(0, rows, tgma::kRowGrain, [&](int64_t begin, int64_t end) {
      spmm_rows<scalar_t>(v.data_ptr<scalar_t>(), order_ptr, d.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                          p.data_ptr<int64_t>(), c.data_ptr<int64_t>(), begin, end, heads, channels, nnz);
    });
  });
  return out;
}

at::Tensor sddmm(const at::Tensor& left, const at::Tensor& right, const at::Tensor& ptr, const at::Tensor& columns) {
  tgma::check_columns(ptr, columns, right, "sddmm");
  TORCH_CHECK(left.dim() == 3 && left.size(0) == ptr.numel() - 1 && left.size(1) == right.size(1) &&
                  left.size(2) == right.size(2) && left.scalar_type() == right.scalar_type(),
              "sddmm: left must be [rows, H, C] with the right rows' H, C and dtype");
  const at::Tensor l = left.contiguous(), r = right.contiguous(), p = ptr.contiguous(), c = columns.contiguous();
  const int64_t rows = p.numel() - 1, heads = l.size(1), channels = l.size(2), nnz = c.numel();
  at::Tensor out = at::empty({nnz, heads}, l.options());
  AT_DISPATCH_FLOATING_TYPES(l.scalar_type(), "sddmm", [&] {
    at::parallel_for(0, rows, tgma::kRowGrain, [&](int64_t begin, int64_t end) {
      tgma::for_each_entry_pair(l.data_ptr<scalar_t>(), r.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                                p.data_ptr<int64_t>(), c.data_ptr<int64_t>(), begin, end, heads, channels, nnz,
                                dot<scalar_t>);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(tg_metricattn_cpu, m) {
  m.def("spmm(Tensor values, Tensor dense, Tensor ptr, Tensor columns, Tensor? order=None) -> Tensor");
  m.def("sddmm(Tensor left, Tensor right, Tensor ptr, Tensor columns) -> Tensor");
}

TORCH_LIBRARY_IMPL(tg_metricattn_cpu, CPU, m) {
  m.impl("spmm", &spmm);
  m.impl("sddmm", &sddmm);
}
