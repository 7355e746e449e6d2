// Per-node terms summed onto the edges of a CSR pattern, and the sums back (the gradient):
//   forward:  s[e, h] = target_term[i, h] + source_term[col[e], h]      for the entries e of row i
//   backward: d target_term[i, h] = sum_{e in row i} g[e, h]            (rows of the pattern)
//             d source_term[j, h] = sum_{e out of j} g[e, h]            (rows of the transposed pattern, e = t_order[k])
// GAT's score b_i + c_j: a gather and its gradient, with no scatter (each output row is one thread's).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>

#include "csr_common.h"

namespace {

at::Tensor edge_sum(const at::Tensor& target_term, const at::Tensor& source_term, const at::Tensor& ptr,
                    const at::Tensor& columns) {
  TORCH_CHECK(target_term.dim() == 2 && source_term.dim() == 2 && target_term.size(1) == source_term.size(1) &&
                  target_term.scalar_type() == source_term.scalar_type() && target_term.device().is_cpu() &&
                  source_term.device().is_cpu(),
              "edge_sum: the terms must be CPU [N, H] tensors with the same H and dtype");
  TORCH_CHECK(target_term.size(0) == ptr.numel() - 1, "edge_sum: one target row per pattern row expected");
  tgma::check_columns(ptr, columns, source_term.unsqueeze(-1), "edge_sum");
  const at::Tensor a = target_term.contiguous(), b = source_term.contiguous(), p = ptr.contiguous(),
                   c = columns.contiguous();
  const int64_t rows = p.numel() - 1, heads = a.size(1);
  at::Tensor out = at::empty({c.numel(), heads}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "edge_sum", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    const int64_t* row = p.data_ptr<int64_t>();
    const int64_t* col = c.data_ptr<int64_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, tgma::kEntryGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        for (int64_t e = row[i]; e < row[i + 1]; ++e)
          for (int64_t h = 0; h < heads; ++h) op[e * heads + h] = ap[i * heads + h] + bp[col[e] * heads + h];
    });
  });
  return out;
}

at::Tensor row_sum(const at::Tensor& values, const at::Tensor& ptr, const std::optional<at::Tensor>& order) {
  TORCH_CHECK(values.dim() == 2 && values.device().is_cpu(), "row_sum: values must be a CPU [E, H] tensor");
  tgma::check_row_pointers(ptr, values.size(0), "row_sum");
  if (order.has_value()) tgma::check_order(*order, values.size(0), "row_sum");
  const at::Tensor v = values.contiguous(), p = ptr.contiguous();
  const at::Tensor o = order.has_value() ? order->contiguous() : at::Tensor();
  const int64_t rows = p.numel() - 1, heads = v.size(1);
  at::Tensor out = at::zeros({rows, heads}, v.options());
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "row_sum", [&] {
    const scalar_t* vp = v.data_ptr<scalar_t>();
    const int64_t* row = p.data_ptr<int64_t>();
    const int64_t* index = o.defined() ? o.data_ptr<int64_t>() : nullptr;
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, tgma::kEntryGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        for (int64_t k = row[r]; k < row[r + 1]; ++k) {
          const scalar_t* entry = vp + (index ? index[k] : k) * heads;
          for (int64_t h = 0; h < heads; ++h) op[r * heads + h] += entry[h];
        }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(tg_metricattn_cpu, m) {
  m.def("edge_sum(Tensor target_term, Tensor source_term, Tensor ptr, Tensor columns) -> Tensor");
  m.def("row_sum(Tensor values, Tensor ptr, Tensor? order=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(tg_metricattn_cpu, CPU, m) {
  m.impl("edge_sum", &edge_sum);
  m.impl("row_sum", &row_sum);
}
