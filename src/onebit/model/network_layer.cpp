// Network<T>: forward and backward of one decoder layer (attention block + gated MLP block), by hand.
#include "onebit/model/network.h"
#include "onebit/model/linear.h"
#include "onebit/model/network_internal.h"

namespace onebit::model {

using namespace detail;

template <typename T, typename A>
const A* Network<T, A>::o_input(int l, const LayerActs& a) const {
  const Linear& lin = lin_[l][kO];
  return act_quant_on(lin) ? a.att_q : (cfg_.sub_ln ? a.att_n : a.att);
}

template <typename T, typename A>
const A* Network<T, A>::down_input(int l, const LayerActs& a) const {
  const Linear& lin = lin_[l][kDown];
  return act_quant_on(lin) ? a.act_q : (cfg_.sub_ln ? a.act_n : a.act);
}

template <typename T, typename A>
void Network<T, A>::layer_forward(int l, LayerActs& a, const A* x_in, A* x_out) {
  const auto& P = layout_.layers[l];
  auto& Ls = lin_[l];
  const int N = B_ * T_, d = cfg_.hidden_size, ff = cfg_.intermediate_size, H = cfg_.num_attention_heads,
            KV = cfg_.num_key_value_heads, hd = cfg_.head_dim(), kvd = KV * hd;
  const float p = training_ ? cfg_.dropout : 0.0f;
  const T rs = (T)cfg_.residual_scale;
  a.x_in = const_cast<A*>(x_in);

  // Attention.
  const bool qkv_q = act_quant_on(Ls[kQ]) || act_quant_on(Ls[kK]) || act_quant_on(Ls[kV]);
  ops_.rmsnorm_forward(a.h1, qkv_q ? a.h1q : nullptr, a.rstd1, x_in, w(P.input_norm), N, d, cfg_.rms_norm_eps);
  group_forward({{&Ls[kQ], a.q, d}, {&Ls[kK], a.k, kvd}, {&Ls[kV], a.v, kvd}}, a.h1, a.h1q, d, N);
  if (cfg_.qk_norm) {
    ops_.qk_norm_rope_forward(a.qr, a.q_rstd, a.q, w(P.q_norm), cos_, sin_, B_, T_, H, hd, cfg_.rms_norm_eps);
    ops_.qk_norm_rope_forward(a.kr, a.k_rstd, a.k, w(P.k_norm), cos_, sin_, B_, T_, KV, hd, cfg_.rms_norm_eps);
  } else {
    ops_.copy_act(a.qr, a.q, (size_t)N * d);
    ops_.copy_act(a.kr, a.k, (size_t)N * kvd);
    ops_.rope(a.qr, cos_, sin_, B_, T_, H, hd, false);
    ops_.rope(a.kr, cos_, sin_, B_, T_, KV, hd, false);
  }
  ops_.attention_forward(a.att, a.lse, a.qr, a.kr, a.v, B_, T_, H, KV, hd, p, dropout_seed(l, kDropAttnProbs));
  if (cfg_.sub_ln)
    ops_.rmsnorm_forward(a.att_n, act_quant_on(Ls[kO]) ? a.att_q : nullptr, a.att_rstd, a.att, w(P.attn_sub_norm), N,
                         d, cfg_.rms_norm_eps);
  else if (act_quant_on(Ls[kO]))
    ops_.act_quant_int8(a.att_q, a.att, N, d);
  linear_forward(Ls[kO], o_input(l, a), d, N, tmp_d_, d);
  ops_.residual_forward(a.x_mid, x_in, tmp_d_, rs, p, dropout_seed(l, kDropAttnResidual), (size_t)N * d);

  // MLP.
  const bool up_q = act_quant_on(Ls[kGate]) || act_quant_on(Ls[kUp]);
  ops_.rmsnorm_forward(a.h2, up_q ? a.h2q : nullptr, a.rstd2, a.x_mid, w(P.post_norm), N, d, cfg_.rms_norm_eps);
  group_forward({{&Ls[kGate], a.gate, ff}, {&Ls[kUp], a.up, ff}}, a.h2, a.h2q, d, N);
  if (cfg_.sub_ln) {
    A* act_q = act_quant_on(Ls[kDown]) ? a.act_q : nullptr;
    a.act_stored = !ops_.gated_sub_norm_forward(a.act_n, act_q, a.act_rstd, a.gate, a.up, w(P.ffn_sub_norm), N, ff,
                                                cfg_.rms_norm_eps, to_gated(cfg_.hidden_act));
    if (a.act_stored) {
      ops_.gated_act_forward(a.act, a.gate, a.up, (size_t)N * ff, to_gated(cfg_.hidden_act));
      ops_.rmsnorm_forward(a.act_n, act_q, a.act_rstd, a.act, w(P.ffn_sub_norm), N, ff, cfg_.rms_norm_eps);
    }
  } else if (act_quant_on(Ls[kDown])) {
    ops_.gated_act_quant_forward(a.act, a.act_q, a.gate, a.up, N, ff, to_gated(cfg_.hidden_act));
  } else {
    ops_.gated_act_forward(a.act, a.gate, a.up, (size_t)N * ff, to_gated(cfg_.hidden_act));
  }
  linear_forward(Ls[kDown], down_input(l, a), ff, N, tmp_d_, d);
  ops_.residual_forward(x_out, a.x_mid, tmp_d_, rs, p, dropout_seed(l, kDropMlpResidual), (size_t)N * d);
}

template <typename T, typename A>
void Network<T, A>::layer_backward(int l, LayerActs& a, A* dres) {
  const auto& P = layout_.layers[l];
  auto& Ls = lin_[l];
  const int N = B_ * T_, d = cfg_.hidden_size, ff = cfg_.intermediate_size, H = cfg_.num_attention_heads,
            KV = cfg_.num_key_value_heads, hd = cfg_.head_dim(), kvd = KV * hd;
  const float p = training_ ? cfg_.dropout : 0.0f;
  const T rs = (T)cfg_.residual_scale;

  // The gradient of a residual branch's output: scale * mask * dres, which is dres itself (exactly, on
  // every backend) without dropout at scale 1; dres is read by the branch's backward before the
  // norm's backward adds to it.
  const bool plain_residual = p == 0.0f && rs == T(1);
  auto branch_grad = [&](int site) -> const A* {
    if (plain_residual) return dres;
    ops_.residual_backward(dA_, dres, rs, p, dropout_seed(l, site), (size_t)N * d);
    return dA_;
  };

  // MLP branch: x_out = x_mid + rs * drop(down(act)).
  // Fused gate/up: their gradients are the column blocks of one [N, 2 ff] matrix in two of dF1_..dF3_
  // (consecutive in the arena): [dF2_ dF3_], or [dF1_ dF2_] with the sub-norm's output gradient in dF3_
  // (dF1_ is dead once the sub-norm's backward has read it).
  // With the backend's one-pass sub-norm + gated backward (CUDA), the gate/up gradients go where they go
  // without a sub-norm ([dF2_ dF3_]): the pass reads dF1_ while it writes them.
  const bool fuse_gu = fusable_group({&Ls[kGate], &Ls[kUp]});
  linear_backward(Ls[kDown], branch_grad(kDropMlpResidual), d, down_input(l, a), ff, N, dF1_, T(0), g(P.down));
  const kernels::GatedAct act = to_gated(cfg_.hidden_act);
  const bool one_pass = cfg_.sub_ln && ops_.sub_norm_gated_backward(dF2_, fuse_gu ? dF2_ + ff : dF3_,
                                                                    fuse_gu ? 2 * ff : ff, g(P.ffn_sub_norm), dF1_,
                                                                    w(P.ffn_sub_norm), a.act_rstd, a.gate, a.up, N,
                                                                    ff, act);
  const bool composed_sub_ln = cfg_.sub_ln && !one_pass;
  A* dact = dF1_;
  if (composed_sub_ln) {
    // The forward's one pass did not store the sub-norm's input; the backend's one-pass backward declined.
    if (!a.act_stored) ops_.gated_act_forward(a.act, a.gate, a.up, (size_t)N * ff, act);
    A* dn = fuse_gu ? dF3_ : dF2_;
    ops_.zero_act(dn, (size_t)N * ff);
    ops_.rmsnorm_backward(dn, g(P.ffn_sub_norm), dF1_, a.act, w(P.ffn_sub_norm), a.act_rstd, N, ff);
    dact = dn;
  }
  const A* h2_in = input_for(Ls[kGate], a.h2, a.h2q);
  if (fuse_gu) {
    A* dgu = composed_sub_ln ? dF1_ : dF2_;
    if (!one_pass) ops_.gated_act_backward_ld(dgu, dgu + ff, 2 * ff, dact, a.gate, a.up, N, ff, act);
    linear_backward(Ls[kGate], dgu, 2 * ff, h2_in, d, N, dB_, T(0), g(P.gate));
  } else {
    A* dgate = composed_sub_ln ? dF1_ : dF2_;
    A* dup = dF3_;
    if (!one_pass) ops_.gated_act_backward(dgate, dup, dact, a.gate, a.up, (size_t)N * ff, act);
    linear_backward(Ls[kGate], dgate, ff, h2_in, d, N, dB_, T(0), g(P.gate));
    linear_backward(Ls[kUp], dup, ff, input_for(Ls[kUp], a.h2, a.h2q), d, N, dB_, T(1), g(P.up));
  }
  ops_.rmsnorm_backward(dres, g(P.post_norm), dB_, a.x_mid, w(P.post_norm), a.rstd2, N, d);

  // Attention branch: x_mid = x_in + rs * drop(o(attn)).
  linear_backward(Ls[kO], branch_grad(kDropAttnResidual), d, o_input(l, a), d, N, dB_, T(0), g(P.o));
  A* datt = dB_;
  if (cfg_.sub_ln) {
    ops_.zero_act(dC_, (size_t)N * d);
    ops_.rmsnorm_backward(dC_, g(P.attn_sub_norm), dB_, a.att, w(P.attn_sub_norm), a.att_rstd, N, d);
    datt = dC_;
  }
  const A* h1_in = input_for(Ls[kQ], a.h1, a.h1q);
  if (cfg_.qk_norm && fusable_group({&Ls[kQ], &Ls[kK], &Ls[kV]})) {
    // Fused Q/K/V (QK-norm's backward writes at a row stride; RoPE alone does not): the gradients of q,
    // k and v are the column blocks of one [N, d + 2 kvd] matrix at dq_ (dq_, dk_, dv_ are consecutive
    // in the arena), so one product gives dx and one the three dW.
    const int ld = d + 2 * kvd;
    ops_.attention_backward_ld(dqr_, dkr_, dq_ + d + kvd, ld, datt, a.qr, a.kr, a.v, a.att, a.lse, B_, T_, H, KV, hd,
                               p, dropout_seed(l, kDropAttnProbs));
    ops_.qk_norm_rope_backward_ld(dq_, ld, g(P.q_norm), dqr_, a.q, w(P.q_norm), a.q_rstd, cos_, sin_, B_, T_, H, hd);
    ops_.qk_norm_rope_backward_ld(dq_ + d, ld, g(P.k_norm), dkr_, a.k, w(P.k_norm), a.k_rstd, cos_, sin_, B_, T_, KV,
                                  hd);
    linear_backward(Ls[kQ], dq_, ld, h1_in, d, N, dB_, T(0), g(P.q));
  } else {
    ops_.attention_backward(dqr_, dkr_, dv_, datt, a.qr, a.kr, a.v, a.att, a.lse, B_, T_, H, KV, hd, p,
                            dropout_seed(l, kDropAttnProbs));
    A* dq = dqr_;
    A* dk = dkr_;
    if (cfg_.qk_norm) {
      ops_.qk_norm_rope_backward(dq_, g(P.q_norm), dqr_, a.q, w(P.q_norm), a.q_rstd, cos_, sin_, B_, T_, H, hd);
      ops_.qk_norm_rope_backward(dk_, g(P.k_norm), dkr_, a.k, w(P.k_norm), a.k_rstd, cos_, sin_, B_, T_, KV, hd);
      dq = dq_;
      dk = dk_;
    } else {
      ops_.rope(dqr_, cos_, sin_, B_, T_, H, hd, true);
      ops_.rope(dkr_, cos_, sin_, B_, T_, KV, hd, true);
    }
    linear_backward(Ls[kQ], dq, d, h1_in, d, N, dB_, T(0), g(P.q));
    linear_backward(Ls[kK], dk, kvd, input_for(Ls[kK], a.h1, a.h1q), d, N, dB_, T(1), g(P.k));
    linear_backward(Ls[kV], dv_, kvd, input_for(Ls[kV], a.h1, a.h1q), d, N, dB_, T(1), g(P.v));
  }
  ops_.rmsnorm_backward(dres, g(P.input_norm), dB_, a.x_in, w(P.input_norm), a.rstd1, N, d);
}

template <typename T, typename A>
void Network<T, A>::group_forward(std::initializer_list<GroupOut> group, const A* plain, const A* quant, int in,
                                  int N) {
  constexpr int kMaxMembers = 3;
  OB_CHECK((int)group.size() <= kMaxMembers, "group_forward: ", group.size(), " members (at most ", kMaxMembers, ")");
  A* ys[kMaxMembers];
  const kernels::PackedTernary* packs[kMaxMembers];
  int count = 0;
  for (const GroupOut& o : group) {
    ys[count] = o.y;
    packs[count] = packed_for(*o.lin);
    if (!packs[count]) break;
    ++count;
  }
  // Members on the integer path read the quantized input.
  if (count == (int)group.size() && ops_.ternary_linear_forward_group(ys, quant, N, packs, count)) return;
  for (const GroupOut& o : group) linear_forward(*o.lin, input_for(*o.lin, plain, quant), in, N, o.y, o.out);
}

template <typename T, typename A>
bool Network<T, A>::fusable_group(std::initializer_list<const Linear*> group) const {
  if (!fused_) return false;
  const Linear* prev = nullptr;
  for (const Linear* lin : group) {
    const auto& info = layout_.info[lin->param];
    const kernels::PackedTernary* packed = packed_for(*lin);
    if ((packed && ops_.has_packed_backward(*packed)) || info.shape[0] % 8 != 0) return false;
    if (prev) {
      const auto& pinfo = layout_.info[prev->param];
      if (act_quant_on(*lin) != act_quant_on(*prev) || lin->eff != prev->eff + pinfo.numel ||
          info.offset != pinfo.offset + pinfo.numel)
        return false;
    }
    prev = lin;
  }
  return true;
}

template <typename T, typename A>
void Network<T, A>::linear_backward(const Linear& lin, const A* dy, int out, const A* x, int in, int N, A* dx,
                                    T dx_beta, T* dw) {
  model::linear_backward(ops_, dy, out, lin.eff, x, in, N, dx, dx_beta, dw, packed_for(lin));
}

#define ONEBIT_INSTANTIATE_LAYER(T, A)                                                                     \
  template void Network<T, A>::layer_forward(int, LayerActs&, const A*, A*);                              \
  template void Network<T, A>::layer_backward(int, LayerActs&, A*);                                       \
  template const A* Network<T, A>::o_input(int, const LayerActs&) const;                                  \
  template const A* Network<T, A>::down_input(int, const LayerActs&) const;                               \
  template void Network<T, A>::linear_backward(const Linear&, const A*, int, const A*, int, int, A*, T, T*); \
  template bool Network<T, A>::fusable_group(std::initializer_list<const Linear*>) const;                    \
  template void Network<T, A>::group_forward(std::initializer_list<GroupOut>, const A*, const A*, int, int);
ONEBIT_INSTANTIATE_LAYER(float, float)
ONEBIT_INSTANTIATE_LAYER(double, double)
ONEBIT_INSTANTIATE_LAYER(float, kernels::bf16)
#undef ONEBIT_INSTANTIATE_LAYER

}  // namespace onebit::model
