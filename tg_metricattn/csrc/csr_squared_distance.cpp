// Squared distances on the edges of a CSR pattern, all heads of an edge at once, by the direct formula:
//   d[e, h] = sum_c (dst[i, h, c] - src[j, h, c])^2,   e = (j -> i), j = col[e]
// The differences are taken in the points' dtype and squared and summed in double, so there is no
// cancellation (unlike the expansion |p_i|^2 - 2<p_i, p_j> + |p_j|^2); the sum is rounded to the dtype.
// Backward, with g = dL/dd:
//   dL/d dst[i] =  sum_{e into i}   2 g_eh (dst_i - src_j)   (rows of the pattern)
//   dL/d src[j] = -sum_{e out of j} 2 g_eh (dst_i - src_j)   (rows of the transposed pattern)
// Each gradient row is owned by one thread: no atomics.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

#include "csr_common.h"

namespace {

// sum_c (a_c - b_c)^2: differences in T, squares summed in double, rounded once
template <typename T>
T squared_difference(const T* __restrict__ a, const T* __restrict__ b, int64_t channels) {
  double s = 0;
  for (int64_t c = 0; c < channels; ++c) {
    const double diff = static_cast<double>(a[c] - b[c]);
    s += diff * diff;
  }
  return static_cast<T>(s);
}

// grad[r] += sign * sum over the entries k of row r: 2 g[order[k]] (dst_i - src_j), where the row is
// a target (i = r, j = col[k]; sign +1) or a source (j = r, i = col[k]; sign -1)
template <typename T>
void gradient_rows(const T* g, const T* dst, const T* src, T* grad, const int64_t* ptr, const int64_t* col,
                   const int64_t* order, bool rows_are_targets, int64_t begin, int64_t end, int64_t heads,
                   int64_t channels) {
  const int64_t width = heads * channels;
  const T two_sign = rows_are_targets ? T(2) : T(-2);
  for (int64_t r = begin; r < end; ++r) {
    T* __restrict__ out = grad + r * width;
    std::fill(out, out + width, T(0));
    for (int64_t k = ptr[r]; k < ptr[r + 1]; ++k) {
      const int64_t other = col[k];
      const T* __restrict__ a = dst + (rows_are_targets ? r : other) * width;
      const T* __restrict__ b = src + (rows_are_targets ? other : r) * width;
      const T* __restrict__ ge = g + (order ? order[k] : k) * heads;
      for (int64_t h = 0; h < heads; ++h) {
        const T scale = two_sign * ge[h];
        for (int64_t c = 0; c < channels; ++c) out[h * channels + c] += scale * (a[h * channels + c] - b[h * channels + c]);
      }
    }
  }
}

void check_points(const at::Tensor& dst, const at::Tensor& src, const char* name) {
  TORCH_CHECK(dst.dim() == 3 && src.dim() == 3 && dst.size(1) == src.size(1) && dst.size(2) == src.size(2) &&
                  dst.scalar_type() == src.scalar_type(),
              name, ": points must be [N, H, D] with the same H, D and dtype on both sides");
}

at::Tensor squared_distance(const at::Tensor& dst, const at::Tensor& src, const at::Tensor& ptr,
                            const at::Tensor& columns) {
  check_points(dst, src, "squared_distance");
  tgma::check_columns(ptr, columns, src, "squared_distance");
  TORCH_CHECK(dst.size(0) == ptr.numel() - 1, "squared_distance: one target row per pattern row expected");
  const at::Tensor a = dst.contiguous(), b = src.contiguous(), p = ptr.contiguous(), c = columns.contiguous();
  const int64_t rows = p.numel() - 1, heads = a.size(1), channels = a.size(2), nnz = c.numel();
  at::Tensor out = at::empty({nnz, heads}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "squared_distance", [&] {
    at::parallel_for(0, rows, tgma::kRowGrain, [&](int64_t begin, int64_t end) {
      tgma::for_each_entry_pair(a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                                p.data_ptr<int64_t>(), c.data_ptr<int64_t>(), begin, end, heads, channels, nnz,
                                squared_difference<scalar_t>);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> squared_distance_backward(const at::Tensor& grad, const at::Tensor& dst,
                                                             const at::Tensor& src, const at::Tensor& ptr,
                                                             const at::Tensor& columns, const at::Tensor& t_order,
                                                             const at::Tensor& t_columns, const at::Tensor& t_ptr) {
  check_points(dst, src, "squared_distance_backward");
  tgma::check_columns(ptr, columns, src, "squared_distance_backward");
  tgma::check_columns(t_ptr, t_columns, dst, "squared_distance_backward");
  TORCH_CHECK(dst.size(0) == ptr.numel() - 1 && src.size(0) == t_ptr.numel() - 1,
              "squared_distance_backward: the transposed pattern does not fit the points");
  tgma::check_order(t_order, columns.numel(), "squared_distance_backward");
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == columns.numel() && grad.size(1) == dst.size(1) &&
                  grad.scalar_type() == dst.scalar_type(),
              "squared_distance_backward: the gradient must be [E, H] in the points' dtype");
  const at::Tensor g = grad.contiguous(), a = dst.contiguous(), b = src.contiguous();
  const at::Tensor p = ptr.contiguous(), c = columns.contiguous();
  const at::Tensor tp = t_ptr.contiguous(), tc = t_columns.contiguous(), to = t_order.contiguous();
  const int64_t heads = a.size(1), channels = a.size(2);
  at::Tensor grad_dst = at::empty_like(a), grad_src = at::empty_like(b);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "squared_distance_backward", [&] {
    at::parallel_for(0, a.size(0), tgma::kRowGrain, [&](int64_t begin, int64_t end) {
      gradient_rows<scalar_t>(g.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(),
                              grad_dst.data_ptr<scalar_t>(), p.data_ptr<int64_t>(), c.data_ptr<int64_t>(), nullptr,
                              true, begin, end, heads, channels);
    });
    at::parallel_for(0, b.size(0), tgma::kRowGrain, [&](int64_t begin, int64_t end) {
      gradient_rows<scalar_t>(g.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(),
                              grad_src.data_ptr<scalar_t>(), tp.data_ptr<int64_t>(), tc.data_ptr<int64_t>(),
                              to.data_ptr<int64_t>(), false, begin, end, heads, channels);
    });
  });
  return {grad_dst, grad_src};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(tg_metricattn_cpu, m) {
  m.def("squared_distance(Tensor dst, Tensor src, Tensor ptr, Tensor columns) -> Tensor");
  m.def(
      "squared_distance_backward(Tensor grad, Tensor dst, Tensor src, Tensor ptr, Tensor columns, Tensor t_order, "
      "Tensor t_columns, Tensor t_ptr) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(tg_metricattn_cpu, CPU, m) {
  m.impl("squared_distance", &squared_distance);
  m.impl("squared_distance_backward", &squared_distance_backward);
}
