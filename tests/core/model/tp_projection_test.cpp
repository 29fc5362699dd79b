// The tensor-parallel projection (parallel's column/row linears with the LoRA adapter on top) at
// tp = 2 against the unsharded math on the same random weights: outputs, input gradients and the
// (gathered) adapter gradients agree to float32 precision; a SwiGLU MLP at tp = 2 equals the same
// MLP at tp = 1, also under dp x tp with gradient sync; LLaMA projections are cut by the plan;
// merged adapters and fresh adapters are those of one device. At 4 ranks the grid is dp 2 x tp 2
// and each tp group checks itself.
#include "core/model/tp_projection.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/base/error.h"
#include "core/model/llama_sharding.h"
#include "core/model/lora.h"
#include "parallel/grad_sync.h"
#include "parallel/tp_linear.h"
#include "parallel/tp_ops.h"

namespace ls {
namespace {

using parallel::ColumnParallelLinear;
using parallel::ColumnParallelLinearImpl;
using parallel::Communicator;
using parallel::RowParallelLinear;
using parallel::slice_of;
using parallel::Topology;

constexpr double kRtol = 1e-4, kAtol = 1e-5;  // float32, sums of a few dozen products

Topology tp2() {
  return Topology(parallel::make_world_communicator(at::Device(at::kCPU)), 2);
}

void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  EXPECT_TRUE(torch::allclose(got, want, kRtol, kAtol))
      << what << ": max abs difference " << (got - want).abs().max().item<double>();
}

// The unsharded reference: y = x W^T + s (x A^T) B^T.
at::Tensor lora_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& a,
                       const at::Tensor& b, double s) {
  return torch::linear(x, w) + torch::linear(torch::linear(x, a), b) * s;
}

struct FullLinear {
  at::Tensor w, a, b;
  FullLinear(int64_t in, int64_t out, int64_t r)
      : w(torch::randn({out, in})), a(torch::randn({r, in})), b(torch::randn({out, r})) {}
  // Leaf copies that collect the reference gradients.
  FullLinear trainable() const {
    FullLinear copy = *this;
    copy.a = a.clone().requires_grad_(true);
    copy.b = b.clone().requires_grad_(true);
    return copy;
  }
};

parallel::ParallelLinearOptions options(int64_t in, int64_t out, bool bias = false) {
  parallel::ParallelLinearOptions o;
  o.in_features = in;
  o.out_features = out;
  o.bias = bias;
  return o;
}

LoraOptions lora_of_rank(int64_t r) {
  LoraOptions lora;
  lora.r = r;
  lora.alpha = 2.0 * r;
  return lora;
}

// A projection over `base` with an adapter of rank r, loaded from `full` (bias: `full_bias`).
std::shared_ptr<TensorParallelProjection> projection(
    std::shared_ptr<parallel::TensorParallelLinear> base, const FullLinear& full,
    const LoraOptions& lora, const at::Tensor& full_bias = {}) {
  base->load_weight(slice_of(full.w), full_bias.defined() ? slice_of(full_bias) : nullptr);
  auto p = std::make_shared<TensorParallelProjection>(std::move(base));
  p->add_lora(lora);
  p->load_lora(slice_of(full.a), slice_of(full.b));
  return p;
}

TEST(TensorParallelProjection, ColumnParallelLoraMatchesUnsharded) {
  Topology grid = tp2();
  Communicator& tp = *grid.tp_group();
  torch::manual_seed(11);  // the same full tensors on every rank
  const int64_t in = 8, out = 12, r = 4;
  FullLinear full(in, out, r);
  at::Tensor x = torch::randn({3, 5, in});
  at::Tensor probe = torch::randn({3, 5, out});  // loss = <Y, probe>

  auto layer = projection(ColumnParallelLinear(grid.tp_group(), options(in, out)).ptr(), full,
                          lora_of_rank(r));
  EXPECT_EQ(dynamic_cast<const ColumnParallelLinearImpl&>(layer->base()).rows(),
            (parallel::ShardRange{grid.tp_rank() * out / 2, out / 2}));
  EXPECT_FALSE(layer->base().weight().requires_grad());
  EXPECT_EQ(layer->lora_B().size(0), out / 2);  // B split by output rows, A replicated
  EXPECT_EQ(layer->lora_A().size(1), in);

  at::Tensor x_tp = x.clone().requires_grad_(true);
  at::Tensor y_local = layer->forward(x_tp);
  at::Tensor y = parallel::gather_from_tp_region(y_local, tp);
  (y * probe).sum().backward();

  FullLinear ref = full.trainable();
  at::Tensor x_ref = x.clone().requires_grad_(true);
  at::Tensor y_ref = lora_linear(x_ref, ref.w, ref.a, ref.b, lora_of_rank(r).scaling());
  (y_ref * probe).sum().backward();

  expect_close(y, y_ref, "output");
  expect_close(x_tp.grad(), x_ref.grad(), "input gradient");
  expect_close(layer->unshard("lora_A.weight", layer->lora_A().grad()), ref.a.grad(), "dA");
  expect_close(layer->unshard("lora_B.weight", layer->lora_B().grad()), ref.b.grad(), "dB");
  expect_close(layer->unshard("weight", layer->base().weight()), full.w, "gathered base weight");
}

TEST(TensorParallelProjection, RowParallelLoraMatchesUnsharded) {
  Topology grid = tp2();
  Communicator& tp = *grid.tp_group();
  torch::manual_seed(12);
  const int64_t in = 12, out = 8, r = 4;
  FullLinear full(in, out, r);
  at::Tensor x = torch::randn({3, 5, in});
  at::Tensor probe = torch::randn({3, 5, out});

  auto layer =
      projection(RowParallelLinear(grid.tp_group(), options(in, out)).ptr(), full, lora_of_rank(r));
  EXPECT_EQ(layer->lora_A().size(1), in / 2);  // A split by input columns, B replicated
  EXPECT_EQ(layer->lora_B().size(0), out);

  at::Tensor x_tp = x.clone().requires_grad_(true);
  at::Tensor y = layer->forward(parallel::scatter_to_tp_region(x_tp, tp));
  (y * probe).sum().backward();

  FullLinear ref = full.trainable();
  at::Tensor x_ref = x.clone().requires_grad_(true);
  at::Tensor y_ref = lora_linear(x_ref, ref.w, ref.a, ref.b, lora_of_rank(r).scaling());
  (y_ref * probe).sum().backward();

  expect_close(y, y_ref, "output");
  expect_close(x_tp.grad(), x_ref.grad(), "input gradient");
  expect_close(layer->unshard("lora_A.weight", layer->lora_A().grad()), ref.a.grad(), "dA");
  expect_close(layer->unshard("lora_B.weight", layer->lora_B().grad()), ref.b.grad(), "dB");
}

TEST(TensorParallelProjection, ReplicatedKvRowsGetTheGradientOfEveryRankThatReadsThem) {
  // One kv head shared by both tp ranks (GQA with tp > kv heads): each rank uses the full k/v
  // output with its own q heads (a different probe per rank), and the shared B rows must receive
  // the sum of both uses.
  Topology grid = tp2();
  Communicator& tp = *grid.tp_group();
  LayerShape shape;
  shape.hidden_size = 16;
  shape.num_attention_heads = 4;
  shape.num_key_value_heads = 1;
  shape.intermediate_size = 8;
  TensorParallelPlan plan(shape, 2);
  ASSERT_TRUE(plan.kv_replicated());
  torch::manual_seed(13);
  const int64_t in = 16, out = 4, r = 2;  // out = one kv head of head_dim 4
  FullLinear full(in, out, r);
  at::Tensor x = torch::randn({2, 3, in});
  at::Tensor probes = torch::randn({2, 2, 3, out});  // one probe per tp rank

  auto layer =
      projection(ColumnParallelLinear(grid.tp_group(), options(in, out), plan.kv_rows()).ptr(),
                 full, lora_of_rank(r));
  at::Tensor x_tp = x.clone().requires_grad_(true);
  at::Tensor y_local = layer->forward(x_tp);
  at::Tensor partial = (y_local * probes[grid.tp_rank()]).sum(-1);
  parallel::reduce_from_tp_region(partial, tp).sum().backward();

  FullLinear ref = full.trainable();
  at::Tensor x_ref = x.clone().requires_grad_(true);
  at::Tensor y_ref = lora_linear(x_ref, ref.w, ref.a, ref.b, lora_of_rank(r).scaling());
  ((y_ref * probes[0]).sum() + (y_ref * probes[1]).sum()).backward();

  expect_close(y_local, y_ref, "output (the whole kv head on each rank)");
  expect_close(x_tp.grad(), x_ref.grad(), "input gradient");
  expect_close(layer->unshard("lora_A.weight", layer->lora_A().grad()), ref.a.grad(), "dA");
  expect_close(layer->unshard("lora_B.weight", layer->lora_B().grad()), ref.b.grad(), "dB");
  // The shared rows count once in the norm used for clipping.
  const double ref_norm = std::sqrt(ref.a.grad().pow(2).sum().item<double>() +
                                    ref.b.grad().pow(2).sum().item<double>());
  EXPECT_NEAR(parallel::total_grad_norm(*layer, tp), ref_norm, 1e-5 * ref_norm);
}

// LLaMA's MLP: down(silu(gate(x)) * up(x)), gate/up column-parallel, down row-parallel, each
// with an adapter.
struct SwiGluMlp : torch::nn::Module {
  SwiGluMlp(const std::shared_ptr<Communicator>& tp, const std::map<std::string, FullLinear>& full,
            int64_t hidden, int64_t ffn, int64_t r)
      : gate_proj(register_module("gate_proj",
                                  projection(ColumnParallelLinear(tp, options(hidden, ffn)).ptr(),
                                             full.at("gate_proj"), lora_of_rank(r)))),
        up_proj(register_module("up_proj",
                                projection(ColumnParallelLinear(tp, options(hidden, ffn)).ptr(),
                                           full.at("up_proj"), lora_of_rank(r)))),
        down_proj(register_module("down_proj",
                                  projection(RowParallelLinear(tp, options(ffn, hidden)).ptr(),
                                             full.at("down_proj"), lora_of_rank(r)))) {}
  at::Tensor forward(const at::Tensor& x) {
    return down_proj->forward(torch::silu(gate_proj->forward(x)) * up_proj->forward(x));
  }
  std::shared_ptr<TensorParallelProjection> gate_proj, up_proj, down_proj;
};

std::map<std::string, FullLinear> full_mlp(int64_t hidden, int64_t ffn, int64_t r) {
  return {{"gate_proj", FullLinear(hidden, ffn, r)},
          {"up_proj", FullLinear(hidden, ffn, r)},
          {"down_proj", FullLinear(ffn, hidden, r)}};
}

TEST(TensorParallelProjection, SwiGluMlpAtTp2EqualsTp1) {
  Topology grid = tp2();
  std::shared_ptr<Communicator> alone = grid.world()->split(grid.rank(), 0);  // a tp group of one
  torch::manual_seed(14);
  const int64_t hidden = 8, ffn = 16, r = 2;
  const auto full = full_mlp(hidden, ffn, r);
  at::Tensor x = torch::randn({2, 6, hidden});
  at::Tensor probe = torch::randn({2, 6, hidden});

  auto sharded = std::make_shared<SwiGluMlp>(grid.tp_group(), full, hidden, ffn, r);
  auto single = std::make_shared<SwiGluMlp>(alone, full, hidden, ffn, r);
  at::Tensor x_tp = x.clone().requires_grad_(true), x_1 = x.clone().requires_grad_(true);
  at::Tensor y_tp = sharded->forward(x_tp), y_1 = single->forward(x_1);
  (y_tp * probe).sum().backward();
  (y_1 * probe).sum().backward();

  expect_close(y_tp, y_1, "MLP output");
  expect_close(x_tp.grad(), x_1.grad(), "MLP input gradient");
  auto grads_tp =
      parallel::unsharded_parameters(*sharded, /*trainable_only=*/true, /*gradients=*/true);
  auto grads_1 = parallel::unsharded_parameters(*single, true, true);
  ASSERT_EQ(grads_tp.size(), 6u);  // lora_A and lora_B of three projections
  for (size_t i = 0; i < grads_tp.size(); ++i) {
    EXPECT_EQ(grads_tp[i].first, grads_1[i].first);
    expect_close(grads_tp[i].second, grads_1[i].second, "gradient of " + grads_tp[i].first);
  }
  const double norm_1 = parallel::total_grad_norm(*single, *alone);
  EXPECT_NEAR(parallel::total_grad_norm(*sharded, *grid.tp_group()), norm_1, 1e-5 * norm_1);
  // The saved layout is the unsharded one, under the PEFT names.
  auto saved = parallel::unsharded_parameters(*sharded, /*trainable_only=*/false);
  ASSERT_EQ(saved.size(), 9u);
  for (const auto& [name, value] : saved) {
    const std::string module = name.substr(0, name.find('.'));
    const std::string param = name.substr(name.find('.') + 1);
    const FullLinear& f = full.at(module);
    const at::Tensor& want = param == "weight" ? f.w : param == "lora_A.weight" ? f.a : f.b;
    expect_close(value, want, "saved " + name);
  }
}

TEST(TensorParallelProjection, MlpAtDpTimesTpWithGradSyncEqualsOneProcessOverTheGlobalBatch) {
  // np 2: dp 1 x tp 2; np 4: dp 2 x tp 2. Each tp group takes its dp share of the batch.
  Topology grid = tp2();
  std::shared_ptr<Communicator> alone = grid.world()->split(grid.rank(), 0);
  torch::manual_seed(16);
  const int64_t hidden = 8, ffn = 16, r = 2, batch = 4;
  const auto full = full_mlp(hidden, ffn, r);
  at::Tensor x = torch::randn({batch, 3, hidden});
  at::Tensor target = torch::randn({batch, 3, hidden});

  auto sharded = std::make_shared<SwiGluMlp>(grid.tp_group(), full, hidden, ffn, r);
  auto single = std::make_shared<SwiGluMlp>(alone, full, hidden, ffn, r);
  std::vector<at::Tensor> trainable;
  for (auto& p : sharded->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  parallel::DataParallelGradSync sync(grid.dp_group(), trainable, /*bucket_bytes=*/256);

  const int64_t share = batch / grid.dp();
  at::Tensor x_mine = x.narrow(0, grid.dp_rank() * share, share);
  at::Tensor t_mine = target.narrow(0, grid.dp_rank() * share, share);
  torch::mse_loss(sharded->forward(x_mine), t_mine).backward();
  sync.finish();
  torch::mse_loss(single->forward(x), target).backward();

  auto grads_grid = parallel::unsharded_parameters(*sharded, true, true);
  auto grads_1 = parallel::unsharded_parameters(*single, true, true);
  ASSERT_EQ(grads_grid.size(), grads_1.size());
  for (size_t i = 0; i < grads_grid.size(); ++i)
    expect_close(grads_grid[i].second, grads_1[i].second, "gradient of " + grads_grid[i].first);
}

TEST(TensorParallelProjection, LlamaProjectionsAreCutByThePlan) {
  Topology grid = tp2();
  LayerShape shape;
  shape.hidden_size = 16;
  shape.num_attention_heads = 4;
  shape.num_key_value_heads = 2;
  shape.intermediate_size = 24;
  TensorParallelPlan plan(shape, 2);
  auto make = [&](const std::string& name) {
    return make_llama_projection(name, plan, grid.tp_group(), at::kFloat);
  };
  const int64_t t = grid.tp_rank();
  struct Expected {
    std::string name;
    bool column;
    std::vector<int64_t> weight;
  };
  for (const Expected& e : std::vector<Expected>{{"q_proj", true, {8, 16}},
                                                 {"k_proj", true, {4, 16}},
                                                 {"v_proj", true, {4, 16}},
                                                 {"o_proj", false, {16, 8}},
                                                 {"gate_proj", true, {12, 16}},
                                                 {"up_proj", true, {12, 16}},
                                                 {"down_proj", false, {16, 12}}}) {
    auto layer = make(e.name);
    EXPECT_EQ(dynamic_cast<ColumnParallelLinearImpl*>(layer.get()) != nullptr, e.column) << e.name;
    EXPECT_EQ(layer->weight().sizes().vec(), e.weight) << e.name;
    if (e.column) {
      EXPECT_EQ(dynamic_cast<ColumnParallelLinearImpl&>(*layer).rows().begin, t * e.weight[0]);
    }
  }
  EXPECT_THROW(make("lm_head"), UserError);
}

TEST(TensorParallelProjection, BiasesAndMergedAdaptersMatchUnsharded) {
  // column -> row with biases and rsLoRA adapters; then merged for inference.
  Topology grid = tp2();
  torch::manual_seed(17);
  const int64_t in = 6, mid = 10, out = 4, r = 2;
  FullLinear first(in, mid, r), second(mid, out, r);
  at::Tensor b1 = torch::randn({mid}), b2 = torch::randn({out});
  at::Tensor x = torch::randn({3, in});

  auto column_base = ColumnParallelLinear(grid.tp_group(), options(in, mid, /*bias=*/true)).ptr();
  auto row_base = RowParallelLinear(grid.tp_group(), options(mid, out, /*bias=*/true)).ptr();
  column_base->load_weight(slice_of(first.w), slice_of(b1));
  auto bare = std::make_shared<TensorParallelProjection>(column_base);
  EXPECT_FALSE(bare->has_lora());
  LoraOptions lora;
  lora.r = r;
  lora.alpha = 3;
  lora.use_rslora = true;
  auto column = projection(column_base, first, lora, b1);
  auto row = projection(row_base, second, lora, b2);

  const double s = 3 / std::sqrt(2.0);
  at::Tensor h_ref = lora_linear(x, first.w, first.a, first.b, s) + b1;
  at::Tensor y_ref = lora_linear(h_ref, second.w, second.a, second.b, s) + b2;
  expect_close(row->forward(column->forward(x)), y_ref, "column -> row with biases");

  at::Tensor weight_before = column->base().weight().clone();
  column->merge_lora();
  row->merge_lora();
  expect_close(row->forward(column->forward(x)), y_ref, "merged");
  column->unmerge_lora();
  row->unmerge_lora();
  expect_close(column->base().weight(), weight_before, "unmerged weight");
  expect_close(column->unshard("bias", column->base().bias()), b1, "gathered column bias");
}

TEST(TensorParallelProjection, FreshAdaptersAreTheSameForEveryTpAndOneDevice) {
  Topology grid = tp2();
  auto alone = std::shared_ptr<Communicator>(grid.world()->split(grid.rank(), 0));
  const int64_t in = 8, out = 6;
  ProjectionSpec spec;
  spec.in_features = in;
  spec.out_features = out;
  spec.options = at::TensorOptions().dtype(at::kFloat);
  LoraLinear one_device(spec);
  torch::manual_seed(15);
  one_device.add_lora(lora_of_rank(3));
  const at::Tensor want_a = one_device.named_parameters()["lora_A.weight"];
  for (bool column : {true, false}) {
    auto make = [&](const std::shared_ptr<Communicator>& tp) {
      std::shared_ptr<parallel::TensorParallelLinear> base;
      if (column)
        base = ColumnParallelLinear(tp, options(in, out)).ptr();
      else
        base = RowParallelLinear(tp, options(in, out)).ptr();
      auto p = std::make_shared<TensorParallelProjection>(base);
      torch::manual_seed(15);
      p->add_lora(lora_of_rank(3));
      return p;
    };
    auto sharded = make(grid.tp_group());
    auto single = make(alone);
    const char* what = column ? "column A" : "row A";
    expect_close(sharded->unshard("lora_A.weight", sharded->lora_A()), single->lora_A(), what);
    EXPECT_TRUE(at::equal(single->lora_A(), want_a)) << what << " vs LoraLinear";
    EXPECT_LE(single->lora_A().abs().max().item<double>(), 1.0 / std::sqrt(8.0));
    EXPECT_EQ(sharded->lora_B().abs().sum().item<double>(), 0.0);
  }
}

}  // namespace
}  // namespace ls
