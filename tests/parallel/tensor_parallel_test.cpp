// Tensor-parallel linears at tp = 2 against the unsharded math on the same random weights:
// outputs and input gradients agree to float32 precision, shards load from full tensors and
// gather back, rows shared by two ranks count once; a SwiGLU MLP at tp = 2 equals the same MLP at
// tp = 1. At 4 ranks the grid is dp 2 x tp 2 and each tp group checks itself. (The LoRA adapter
// over these layers is tested with the model: tests/core/model/tp_projection_test.cpp.)
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/base/error.h"
#include "parallel/tp_linear.h"
#include "parallel/tp_ops.h"

namespace ls::parallel {
namespace {

constexpr double kRtol = 1e-4, kAtol = 1e-5;  // float32, sums of a few dozen products

Topology tp2() {
  return Topology(make_world_communicator(at::Device(at::kCPU)), 2);
}

void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  EXPECT_TRUE(torch::allclose(got, want, kRtol, kAtol))
      << what << ": max abs difference " << (got - want).abs().max().item<double>();
}

ParallelLinearOptions options(int64_t in, int64_t out, bool bias = false) {
  ParallelLinearOptions o;
  o.in_features = in;
  o.out_features = out;
  o.bias = bias;
  return o;
}

TEST(TensorParallel, ColumnParallelLinearMatchesUnsharded) {
  Topology grid = tp2();
  Communicator& tp = *grid.tp_group();
  torch::manual_seed(11);  // the same full tensors on every rank
  const int64_t in = 8, out = 12;
  at::Tensor w = torch::randn({out, in}), bias = torch::randn({out});
  at::Tensor x = torch::randn({3, 5, in});
  at::Tensor probe = torch::randn({3, 5, out});  // loss = <Y, probe>

  ColumnParallelLinear layer(grid.tp_group(), options(in, out, /*bias=*/true));
  layer->load_weight(slice_of(w), slice_of(bias));
  EXPECT_EQ(layer->rows(), (ShardRange{grid.tp_rank() * out / 2, out / 2}));
  EXPECT_EQ(layer->weight().sizes(), (std::vector<int64_t>{out / 2, in}));
  EXPECT_FALSE(layer->weight().requires_grad());
  EXPECT_FALSE(layer->rows_overlap());

  at::Tensor x_tp = x.clone().requires_grad_(true);
  at::Tensor y = gather_from_tp_region(layer->forward(x_tp), tp);
  (y * probe).sum().backward();

  at::Tensor x_ref = x.clone().requires_grad_(true);
  at::Tensor y_ref = torch::linear(x_ref, w, bias);
  (y_ref * probe).sum().backward();

  expect_close(y, y_ref, "output");
  expect_close(x_tp.grad(), x_ref.grad(), "input gradient (summed over the group by f)");
  expect_close(layer->unshard("weight", layer->weight()), w, "gathered weight");
  expect_close(layer->unshard("bias", layer->bias()), bias, "gathered bias");
}

TEST(TensorParallel, RowParallelLinearMatchesUnsharded) {
  Topology grid = tp2();
  Communicator& tp = *grid.tp_group();
  torch::manual_seed(12);
  const int64_t in = 12, out = 8;
  at::Tensor w = torch::randn({out, in}), bias = torch::randn({out});
  at::Tensor x = torch::randn({3, 5, in});
  at::Tensor probe = torch::randn({3, 5, out});

  RowParallelLinear layer(grid.tp_group(), options(in, out, /*bias=*/true));
  layer->load_weight(slice_of(w), slice_of(bias));
  EXPECT_EQ(layer->columns(), (ShardRange{grid.tp_rank() * in / 2, in / 2}));
  EXPECT_EQ(layer->bias().sizes(), (std::vector<int64_t>{out}));  // added once, after the sum

  at::Tensor x_tp = x.clone().requires_grad_(true);
  at::Tensor y = layer->forward(scatter_to_tp_region(x_tp, tp));
  (y * probe).sum().backward();

  at::Tensor x_ref = x.clone().requires_grad_(true);
  at::Tensor y_ref = torch::linear(x_ref, w, bias);
  (y_ref * probe).sum().backward();

  expect_close(y, y_ref, "output");
  expect_close(x_tp.grad(), x_ref.grad(), "input gradient");
  expect_close(layer->unshard("weight", layer->weight()), w, "gathered weight");
  expect_close(layer->unshard("bias", layer->bias()), bias, "replicated bias");
}

TEST(TensorParallel, RowsHeldByTwoRanksGatherAndCountOnce) {
  // Both tp ranks hold the same 4 rows (a replicated kv head): each computes the whole output,
  // the gathered weight is the full one, and a reduction over the group counts the rows once.
  Topology grid = tp2();
  torch::manual_seed(13);
  const int64_t in = 16, out = 4;
  at::Tensor w = torch::randn({out, in});
  at::Tensor x = torch::randn({2, 3, in});

  ColumnParallelLinear layer(grid.tp_group(), options(in, out),
                             std::vector<ShardRange>{{0, out}, {0, out}});
  layer->load_weight(slice_of(w));
  EXPECT_TRUE(layer->rows_overlap());
  expect_close(layer->forward(x), torch::linear(x, w), "output (the whole rows on each rank)");
  expect_close(layer->unshard("weight", layer->weight()), w, "gathered weight");
  const at::Tensor owned = layer->owned_part("weight", layer->weight());
  EXPECT_EQ(owned.numel(), grid.tp_rank() == 0 ? w.numel() : 0);
}

TEST(TensorParallel, ShardsThatOverlapPartlyAreRejected) {
  Topology grid = tp2();
  EXPECT_THROW(
      ColumnParallelLinear(grid.tp_group(), options(4, 8), std::vector<ShardRange>{{0, 4}, {2, 4}}),
      std::logic_error);
  EXPECT_THROW(
      RowParallelLinear(grid.tp_group(), options(8, 4), std::vector<ShardRange>{{0, 4}, {0, 4}}),
      std::logic_error);
}

// LLaMA-style MLP: down(silu(gate(x)) * up(x)), gate/up column-parallel, down row-parallel.
struct SwiGluMlp : torch::nn::Module {
  SwiGluMlp(const std::shared_ptr<Communicator>& tp, int64_t hidden, int64_t ffn)
      : gate_proj(register_module("gate_proj", ColumnParallelLinear(tp, options(hidden, ffn)))),
        up_proj(register_module("up_proj", ColumnParallelLinear(tp, options(hidden, ffn)))),
        down_proj(register_module("down_proj", RowParallelLinear(tp, options(ffn, hidden)))) {}
  at::Tensor forward(const at::Tensor& x) {
    return down_proj->forward(torch::silu(gate_proj->forward(x)) * up_proj->forward(x));
  }
  void load(const std::map<std::string, at::Tensor>& full) {
    for (const auto& child : named_children())
      dynamic_cast<TensorParallelLinear&>(*child.value())
          .load_weight(slice_of(full.at(child.key())));
  }
  ColumnParallelLinear gate_proj, up_proj;
  RowParallelLinear down_proj;
};

TEST(TensorParallel, SwiGluMlpAtTp2EqualsTp1) {
  Topology grid = tp2();
  std::shared_ptr<Communicator> alone = grid.world()->split(grid.rank(), 0);  // a tp group of one
  torch::manual_seed(14);
  const int64_t hidden = 8, ffn = 16;
  std::map<std::string, at::Tensor> full = {{"gate_proj", torch::randn({ffn, hidden})},
                                            {"up_proj", torch::randn({ffn, hidden})},
                                            {"down_proj", torch::randn({hidden, ffn})}};
  at::Tensor x = torch::randn({2, 6, hidden});
  at::Tensor probe = torch::randn({2, 6, hidden});

  auto sharded = std::make_shared<SwiGluMlp>(grid.tp_group(), hidden, ffn);
  auto single = std::make_shared<SwiGluMlp>(alone, hidden, ffn);
  sharded->load(full);
  single->load(full);
  at::Tensor x_tp = x.clone().requires_grad_(true), x_1 = x.clone().requires_grad_(true);
  at::Tensor y_tp = sharded->forward(x_tp), y_1 = single->forward(x_1);
  (y_tp * probe).sum().backward();
  (y_1 * probe).sum().backward();

  expect_close(y_tp, y_1, "MLP output");
  expect_close(x_tp.grad(), x_1.grad(), "MLP input gradient");
  // The saved layout is the unsharded one, under the checkpoint names.
  auto saved = unsharded_parameters(*sharded, /*trainable_only=*/false);
  ASSERT_EQ(saved.size(), 3u);
  for (const auto& [name, value] : saved) {
    EXPECT_EQ(name.substr(name.find('.') + 1), "weight");
    expect_close(value, full.at(name.substr(0, name.find('.'))), "saved " + name);
  }
  EXPECT_TRUE(unsharded_parameters(*sharded, /*trainable_only=*/true).empty());  // all frozen
}

}  // namespace
}  // namespace ls::parallel
