// Edge softmax over the rows of a CSR pattern: one pass per target node, no scatter, no gather.
//
// The edges e of row i are ptr[i] .. ptr[i+1]-1 (sorted by target); scores are [E, H]:
//   forward:  a_eh  = exp(s_eh - m_ih) / sum_{e' in row i} exp(s_e'h - m_ih),  m_ih = max_{e in row i} s_eh
//   backward: ds_eh = a_eh (g_eh - sum_{e' in row i} a_e'h g_e'h)
// Rows are independent, so they are split between threads (at::parallel_for).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "csr_common.h"

namespace {

void check_pattern(const at::Tensor& edges, const at::Tensor& ptr, const char* name) {
  TORCH_CHECK(edges.device().is_cpu(), name, ": CPU tensors expected");
  TORCH_CHECK(edges.dim() == 2, name, ": edge values must be [E, H], got ", edges.dim(), " dimensions");
  tgma::check_row_pointers(ptr, edges.size(0), name);
}

at::Tensor csr_softmax(const at::Tensor& scores, const at::Tensor& ptr) {
  check_pattern(scores, ptr, "csr_softmax");
  const at::Tensor s = scores.contiguous();
  const at::Tensor p = ptr.contiguous();
  const int64_t rows = p.numel() - 1, heads = s.size(1);
  at::Tensor out = at::empty_like(s);
  const int64_t* row = p.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "csr_softmax", [&] {
    const scalar_t* in = s.data_ptr<scalar_t>();
    scalar_t* alpha = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, tgma::kEntryGrain, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> top(heads), total(heads);
      for (int64_t i = begin; i < end; ++i) {
        const int64_t first = row[i] * heads, last = row[i + 1] * heads;
        std::fill(top.begin(), top.end(), -std::numeric_limits<scalar_t>::infinity());
        std::fill(total.begin(), total.end(), scalar_t(0));
        for (int64_t k = first; k < last; k += heads)
          for (int64_t h = 0; h < heads; ++h) top[h] = std::max(top[h], in[k + h]);
        for (int64_t k = first; k < last; k += heads)
          for (int64_t h = 0; h < heads; ++h) total[h] += alpha[k + h] = std::exp(in[k + h] - top[h]);
        for (int64_t k = first; k < last; k += heads)
          for (int64_t h = 0; h < heads; ++h) alpha[k + h] /= total[h];
      }
    });
  });
  return out;
}

at::Tensor csr_softmax_backward(const at::Tensor& alpha, const at::Tensor& grad, const at::Tensor& ptr) {
  check_pattern(alpha, ptr, "csr_softmax_backward");
  TORCH_CHECK(grad.sizes() == alpha.sizes() && grad.scalar_type() == alpha.scalar_type(),
              "csr_softmax_backward: the gradient must match the weights' shape and dtype");
  const at::Tensor a = alpha.contiguous();
  const at::Tensor g = grad.contiguous();
  const at::Tensor p = ptr.contiguous();
  const int64_t rows = p.numel() - 1, heads = a.size(1);
  at::Tensor out = at::empty_like(a);
  const int64_t* row = p.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "csr_softmax_backward", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* ds = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, tgma::kEntryGrain, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> dot(heads);
      for (int64_t i = begin; i < end; ++i) {
        const int64_t first = row[i] * heads, last = row[i + 1] * heads;
        std::fill(dot.begin(), dot.end(), scalar_t(0));
        for (int64_t k = first; k < last; k += heads)
          for (int64_t h = 0; h < heads; ++h) dot[h] += ap[k + h] * gp[k + h];
        for (int64_t k = first; k < last; k += heads)
          for (int64_t h = 0; h < heads; ++h) ds[k + h] = ap[k + h] * (gp[k + h] - dot[h]);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(tg_metricattn_cpu, m) {
  m.def("csr_softmax(Tensor scores, Tensor ptr) -> Tensor");
  m.def("csr_softmax_backward(Tensor alpha, Tensor grad, Tensor ptr) -> Tensor");
}

TORCH_LIBRARY_IMPL(tg_metricattn_cpu, CPU, m) {
  m.impl("csr_softmax", &csr_softmax);
  m.impl("csr_softmax_backward", &csr_softmax_backward);
}
