// Recurrent layers (ONNX RNN, GRU and LSTM), one direction per call.
//
// The input projection of every time step is one matrix product (X W^T for
// all seq x batch rows at once, biases added after); each step then multiplies
// the hidden state by the recurrence weights (a small product, a plain loop for
// a few batch rows) and applies the gate arithmetic row by row.
//
// Weights are read per direction either in ONNX's layout ([gates*hidden, input]
// and [gates*hidden, hidden]) or, with `packed_w` / `packed_r`, transposed block
// by block as the generator stores constant weights: [input, gates*hidden] for
// W, [hidden, block*hidden] for each block of gates multiplied together (all
// gates, except GRU without linear_before_reset: z and r, then h); float ones,
// with `panels_w` / `panels_r`, in gemm_panels' panels of those (register tiles).
//
// Batch rows whose sequence_lens entry is shorter than the tensor stop early:
// their state is kept, their Y entries past the end are zero, and the reverse
// direction starts from their own last step.  (A row of length 0 has zero Y_h.)

// Activation functions (ONNX names), applied to gate pre-activations; the
// logistic function and tanh use the vectorizable float versions (fastmath).
// `vec` applies one to a vector of floats (the LSTM's cells, rnn_vector_act);
// Elu and Softplus have none and go lane by lane there.
namespace rnn_act {
struct Relu {
   template <typename T>
   T operator()(T x) const { return x < T(0) ? T(0) : x; }  // NaN stays NaN
   vfloat vec(vfloat x) const { return x < vfloat{} ? vfloat{} : x; }
};
struct Tanh {
   template <typename T>
   T operator()(T x) const { return fast_tanh(x); }
   vfloat vec(vfloat x) const { return vtanh(x); }
};
struct Sigmoid {
   template <typename T>
   T operator()(T x) const { return fast_sigmoid(x); }
   vfloat vec(vfloat x) const { return vsigmoid(x); }
};
struct Affine {
   float alpha, beta;
   template <typename T>
   T operator()(T x) const { return T(alpha) * x + T(beta); }
   vfloat vec(vfloat x) const { return alpha * x + beta; }
};
struct LeakyRelu {
   float alpha;
   template <typename T>
   T operator()(T x) const { return x >= T(0) ? x : T(alpha) * x; }
   vfloat vec(vfloat x) const { return x >= vfloat{} ? x : alpha * x; }
};
struct ThresholdedRelu {
   float alpha;
   template <typename T>
   T operator()(T x) const { return x > T(alpha) ? x : T(0); }
   vfloat vec(vfloat x) const { return x > vsplat(alpha) ? x : vfloat{}; }
};
struct ScaledTanh {
   float alpha, beta;
   template <typename T>
   T operator()(T x) const { return T(alpha) * fast_tanh(T(beta) * x); }
   vfloat vec(vfloat x) const { return alpha * vtanh(beta * x); }
};
struct HardSigmoid {
   float alpha, beta;
   template <typename T>
   T operator()(T x) const { return detail::max_of(detail::min_of(T(alpha) * x + T(beta), T(1)), T(0)); }  // NaN stays NaN
   vfloat vec(vfloat x) const
   {
      const vfloat y = alpha * x + beta, below = vsplat(1.0f) < y ? vsplat(1.0f) : y; // as min_of, max_of
      return below < vfloat{} ? vfloat{} : below;
   }
};
struct Elu {
   float alpha;
   template <typename T>
   T operator()(T x) const { return x >= T(0) ? x : T(alpha) * (std::exp(x) - T(1)); }
};
struct Softsign {
   template <typename T>
   T operator()(T x) const { return x / (T(1) + std::abs(x)); }
   vfloat vec(vfloat x) const { return x / (1.0f + vabs(x)); }
};
struct Softplus { // log(1 + e^x) without overflow for large x
   template <typename T>
   T operator()(T x) const { return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
};
} // namespace rnn_act

// f on every lane of x: its vector form where it has one, else lane by lane.
template <typename F, typename = void>
struct has_vector_form : std::false_type {};
template <typename F>
struct has_vector_form<F, std::void_t<decltype(std::declval<const F &>().vec(vfloat{}))>> : std::true_type {};

template <typename F>
SOFIE_RDF_INLINE vfloat rnn_vector_act(const F &f, vfloat x)
{
   if constexpr (has_vector_form<F>::value)
      return f.vec(x);
   else
      return vlanes(x, f);
}

// Sizes and layout (ONNX `layout` 0: time major, 1: batch major) of one layer.
struct RnnShape {
   size_t seq, batch, input, hidden, directions;
   bool batch_major;

   size_t x_row(size_t t, size_t b) const { return batch_major ? b * seq + t : t * batch + b; }
   size_t y_offset(size_t t, size_t d, size_t b) const
   {
      return (batch_major ? (b * seq + t) * directions + d : (t * directions + d) * batch + b) * hidden;
   }
   size_t state_offset(size_t d, size_t b) const
   {
      return (batch_major ? b * directions + d : d * batch + b) * hidden;
   }
};

// Everything one layer reads and writes; null pointers are omitted inputs/outputs.
template <typename T>
struct Recurrence {
   RnnShape shape{};
   const T *X = nullptr, *W = nullptr, *R = nullptr, *B = nullptr, *P = nullptr;
   const int32_t *lens = nullptr;
   const T *h0 = nullptr, *c0 = nullptr;
   bool packed_w = false, packed_r = false;
   bool panels_w = false; // W per direction in gemm_panels' panels (float, register tiles)
   bool panels_r = false; // R per direction and block of gates in gemm_panels' panels (float, register tiles)
   T clip = std::numeric_limits<T>::infinity();
   T *Y = nullptr, *Yh = nullptr, *Yc = nullptr;
   T *xw = nullptr, *hr = nullptr, *h = nullptr, *c = nullptr, *rh = nullptr; // scratch
};

// In float by bit masks (fastmath.hxx: clamp_to, the same results, NaN kept): compared by ?:, GCC kept the gate
// loops scalar wherever trapping math is on (a build without -fno-trapping-math, as CMake's Release makes).
template <typename T>
inline T rnn_clip(T x, T clip)
{
   if constexpr (std::is_same_v<T, float>)
      return clamp_to(x, -clip, clip);
   else
      return detail::min_of(detail::max_of(x, -clip), clip);
}

// The gate arithmetic runs as short loops over one row (no branches inside, so
// each vectorizes): v = act(clip(v + add)) for one gate, in place.
template <typename T, typename F>
inline void rnn_gate(T *v, const T *add, size_t n, T clip, F act)
{
   for (size_t j = 0; j < n; ++j)
      v[j] = act(rnn_clip<T>(v[j] + add[j], clip));
}

// v += p * c (LSTM peepholes).
template <typename T>
inline void rnn_peephole(T *v, const T *p, const T *c, size_t n)
{
   for (size_t j = 0; j < n; ++j)
      v[j] += p[j] * c[j];
}

inline size_t rnn_length(const RnnShape &s, const int32_t *lens, size_t b)
{
   return lens ? static_cast<size_t>(lens[b]) : s.seq;
}

// Time index of step `step` for a row of length `len` (false once the row has ended).
inline bool rnn_time(size_t step, size_t len, bool reverse, size_t &t)
{
   if (step >= len)
      return false;
   t = reverse ? len - 1 - step : step;
   return true;
}

// Denormal numbers flushed to zero while a recurrence runs (MXCSR's FTZ and DAZ bits, the caller's state restored
// after): a cell state that a forget gate multiplies by a tiny value step after step decays through the denormal
// range, where every multiply-add on it takes a microcode assist (DeepJet's LSTMs on saturating inputs at batch
// 64: 2.3x the time).  A value below 1.2e-38 becomes 0; nothing else changes.
class FlushDenormals {
#if defined(__SSE__) && (defined(__GNUC__) || defined(__clang__))
   unsigned saved_ = __builtin_ia32_stmxcsr();

public:
   FlushDenormals() { __builtin_ia32_ldmxcsr(saved_ | 0x8040u); }
   ~FlushDenormals() { __builtin_ia32_ldmxcsr(saved_); }
#else
public:
   FlushDenormals() = default;
#endif
   FlushDenormals(const FlushDenormals &) = delete;
   FlushDenormals &operator=(const FlushDenormals &) = delete;
};

// Floats of a block of R (H rows of `cols` columns as the product reads it): whole panels of kPanelColumns with
// `panels`, zero-padded.
inline size_t rnn_block_floats(bool panels, size_t H, size_t cols)
{
   return H * (panels ? (cols + kPanelColumns - 1) / kPanelColumns * kPanelColumns : cols);
}

// C (batch x N) = H R^T for one block of gates: R's panels (gemm_panels_rows: tiles over eight panels for an
// event at a time, holding their sums in registers) or the small product over R as stored (packed: H x N).
// Row by row, an event's product streamed C through L1 once per four rows of R: DeepJet's 150-wide LSTM at
// batch 1 spent 86% of its time there.
template <typename T>
inline void rnn_product(const Recurrence<T> &r, size_t N, const T *A, const T *R, T *C)
{
   const size_t H = r.shape.hidden;
   if constexpr (std::is_same_v<T, float>) {
      if (r.panels_r) {
         gemm_panels_rows(r.shape.batch, N, H, 1.0f, A, H, 1, R, 0.0f, nullptr, C, Identity{});
         return;
      }
   }
   gemm(false, !r.packed_r, r.shape.batch, N, H, T(1), A, R, T(0), C);
}

// The two products of a layer: X W^T for every step at once and, each step, H R^T of the (packed) weights of
// direction d.  Float weights through gemm; kernels/qrnn.hxx's QuantizedProducts multiplies quantized ones (LSTM).
// The input projection of float weights in panels runs on the register tiles, which write each sum once: BLAS
// cleared the projection (a memset of steps x batch x gates x H floats) before its product, and its packing cost
// more than the product over DeepJet's 16 inputs.
struct FloatProducts {
   template <typename T>
   void input(const Recurrence<T> &r, size_t d, size_t gh) const
   {
      const size_t rows = r.shape.seq * r.shape.batch, k = r.shape.input;
      if constexpr (std::is_same_v<T, float>) {
         if (r.panels_w) {
            gemm_panels_rows(rows, gh, k, 1.0f, r.X, k, 1, r.W + d * rnn_block_floats(true, k, gh), 0.0f, nullptr, r.xw,
                             Identity{});
            return;
         }
      }
      gemm(false, !r.packed_w, rows, gh, k, T(1), r.X, r.W + d * gh * k, T(0), r.xw);
   }
   template <typename T>
   void recurrent(const Recurrence<T> &r, size_t d, size_t gh, size_t) const
   {
      rnn_product(r, gh, r.h, r.R + d * rnn_block_floats(r.panels_r, r.shape.hidden, gh), r.hr);
   }
};

// Start of a direction: sequence_lens checked, input projection plus the biases
// that sit outside any gate product (the first `rb_folded` columns of Rb; none
// where the cells add them, `add_biases` false), initial states loaded, Y
// zeroed past each row's length.
template <typename T, typename Products = FloatProducts>
inline void rnn_begin(const Recurrence<T> &r, size_t d, size_t gates, size_t rb_folded, const Products &products = {},
                      bool add_biases = true)
{
   const RnnShape &s = r.shape;
   const size_t gh = gates * s.hidden, rows = s.seq * s.batch;
   for (size_t b = 0; r.lens && b < s.batch; ++b)
      if (r.lens[b] < 0 || static_cast<size_t>(r.lens[b]) > s.seq)
         throw std::invalid_argument("sofie-rdf: sequence_lens[" + std::to_string(b) + "] = " +
                                     std::to_string(r.lens[b]) + " is outside [0, " + std::to_string(s.seq) + "]");
   products.input(r, d, gh);
   if (r.B && add_biases) {
      const T *wb = r.B + d * 2 * gh, *rb = wb + gh;
      for (size_t i = 0; i < rows; ++i) {
         T *row = r.xw + i * gh;
         for (size_t j = 0; j < gh; ++j)
            row[j] += wb[j] + (j < rb_folded ? rb[j] : T(0));
      }
   }
   for (size_t b = 0; b < s.batch; ++b) {
      const size_t at = s.state_offset(d, b);
      T *h = r.h + b * s.hidden;
      for (size_t j = 0; j < s.hidden; ++j)
         h[j] = r.h0 ? r.h0[at + j] : T(0);
      for (size_t j = 0; r.c && j < s.hidden; ++j)
         r.c[b * s.hidden + j] = r.c0 ? r.c0[at + j] : T(0);
      for (size_t t = rnn_length(s, r.lens, b); r.Y && t < s.seq; ++t)
         detail::fill_n(r.Y + s.y_offset(t, d, b), s.hidden, T(0));
   }
}

// Row b's new hidden state written to Y at time t.
template <typename T>
inline void rnn_store(const Recurrence<T> &r, size_t t, size_t d, size_t b)
{
   if (r.Y)
      detail::copy_n(r.h + b * r.shape.hidden, r.shape.hidden, r.Y + r.shape.y_offset(t, d, b));
}

// End of a direction: the last state of every row goes to Y_h (and Y_c); a row
// of length 0 gets zeros there, not its initial state, as onnxruntime does.
template <typename T>
inline void rnn_end(const Recurrence<T> &r, size_t d)
{
   const RnnShape &s = r.shape;
   for (size_t b = 0; b < s.batch; ++b) {
      const bool empty = rnn_length(s, r.lens, b) == 0;
      for (auto [out, state] : {std::make_pair(r.Yh, r.h), std::make_pair(r.Yc, r.c)}) {
         if (!out)
            continue;
         if (empty)
            detail::fill_n(out + s.state_offset(d, b), s.hidden, T(0));
         else
            detail::copy_n(state + b * s.hidden, s.hidden, out + s.state_offset(d, b));
      }
   }
}

// Simple RNN: H = f(X W^T + H R^T + Wb + Rb).
template <typename T, typename F>
inline void rnn(const Recurrence<T> &r, size_t d, bool reverse, F f)
{
   const FlushDenormals flush;
   const RnnShape &s = r.shape;
   const size_t H = s.hidden;
   const T *R = r.R + d * rnn_block_floats(r.panels_r, H, H);
   rnn_begin(r, d, 1, H);
   for (size_t step = 0; step < s.seq; ++step) {
      rnn_product(r, H, r.h, R, r.hr);
      for (size_t b = 0; b < s.batch; ++b) {
         size_t t;
         if (!rnn_time(step, rnn_length(s, r.lens, b), reverse, t))
            continue;
         T *hr = r.hr + b * H;
         rnn_gate(hr, r.xw + s.x_row(t, b) * H, H, r.clip, f);
         detail::copy_n(hr, H, r.h + b * H);
         rnn_store(r, t, d, b);
      }
   }
   rnn_end(r, d);
}

// One row of a float LSTM's step in vectors of kVFloatLanes hidden units, the
// gates of each vector in registers from its pre-activations to its new c and
// h: gates i, o, f, c at hr + k H (the step's product) and xw + k H (the input
// projection), the biases (wb + k H, rb + k H; null: none) added here rather
// than in a pass over every step's projection.  A loop per gate wrote and read
// the row's gates again for each and ended each in a scalar tail.
struct LstmRow {
   const float *hr, *xw, *wb, *rb, *P; // P: peepholes (Pi, Po, Pf) or null
   float *c, *h;
   size_t H;
   float clip;
   bool clipped, input_forget;
};

// New c and h of units [j, j + kVFloatLanes), from the row's c before the step.
template <typename F, typename G, typename Hf>
SOFIE_RDF_INLINE void lstm_units(const LstmRow &a, size_t j, const F &f, const G &g, const Hf &h_act, vfloat &c_new,
                                 vfloat &h_new)
{
   const size_t H = a.H;
   auto pre = [&](size_t k) {
      vfloat v = vload(a.hr + k * H + j) + vload(a.xw + k * H + j);
      if (a.wb)
         v += vload(a.wb + k * H + j) + vload(a.rb + k * H + j);
      return v;
   };
   auto act = [&](const auto &fn, vfloat v) {
      if (a.clipped) { // as rnn_clip
         const vfloat lo = vsplat(-a.clip), hi = vsplat(a.clip), above = v < lo ? lo : v;
         v = hi < above ? hi : above;
      }
      return rnn_vector_act(fn, v);
   };
   const vfloat c_old = vload(a.c + j);
   vfloat i = pre(0);
   if (a.P)
      i += vload(a.P + j) * c_old;
   i = act(f, i);
   vfloat forget;
   if (a.input_forget) {
      forget = 1.0f - i;
   } else {
      forget = pre(2);
      if (a.P)
         forget += vload(a.P + 2 * H + j) * c_old;
      forget = act(f, forget);
   }
   c_new = forget * c_old + i * act(g, pre(3));
   vfloat o = pre(1);
   if (a.P)
      o += vload(a.P + H + j) * c_new;
   h_new = act(f, o) * rnn_vector_act(h_act, c_new);
}

// The row's units a vector at a time (H >= kVFloatLanes); the last ones as one vector ending at the row's end,
// computed first, from the c it overlaps before the loop rewrites it, and stored last.
template <typename F, typename G, typename Hf>
inline void lstm_row(const LstmRow &a, const F &f, const G &g, const Hf &h_act)
{
   constexpr size_t L = kVFloatLanes;
   const size_t full = a.H - a.H % L;
   vfloat c_tail{}, h_tail{};
   if (full < a.H)
      lstm_units(a, a.H - L, f, g, h_act, c_tail, h_tail);
   for (size_t j = 0; j < full; j += L) {
      vfloat c_new, h_new;
      lstm_units(a, j, f, g, h_act, c_new, h_new);
      vstore(a.c + j, c_new);
      vstore(a.h + j, h_new);
   }
   if (full < a.H) {
      vstore(a.c + a.H - L, c_tail);
      vstore(a.h + a.H - L, h_tail);
   }
}

// LSTM, gates in ONNX order i, o, f, c; peepholes P = (Pi, Po, Pf); with
// input_forget the forget gate is 1 - i; `products` multiplies by the weights.
// Float layers of at least kVFloatLanes units run lstm_row; others (double,
// fewer units) a loop per gate over the row.
template <typename T, typename F, typename G, typename Hf, typename Products = FloatProducts>
inline void lstm(const Recurrence<T> &r, size_t d, bool reverse, bool input_forget, F f, G g, Hf h_act,
                 const Products &products = {})
{
   const FlushDenormals flush;
   const RnnShape &s = r.shape;
   const size_t H = s.hidden;
   const T *P = r.P ? r.P + d * 3 * H : nullptr;
   const bool rows = std::is_same_v<T, float> && H >= kVFloatLanes;
   const bool clipped = r.clip < std::numeric_limits<T>::infinity(); // once: under Cling, a call
   rnn_begin(r, d, 4, 4 * H, products, !rows);
   for (size_t step = 0; step < s.seq; ++step) {
      products.recurrent(r, d, 4 * H, step);
      for (size_t b = 0; b < s.batch; ++b) {
         size_t t;
         if (!rnn_time(step, rnn_length(s, r.lens, b), reverse, t))
            continue;
         const T *xw = r.xw + s.x_row(t, b) * 4 * H;
         T *gi = r.hr + b * 4 * H, *go = gi + H, *gf = go + H, *gc = gf + H; // products, then gates
         T *h = r.h + b * H, *c = r.c + b * H;
         if constexpr (std::is_same_v<T, float>) {
            if (rows) {
               const float *wb = r.B ? r.B + d * 8 * H : nullptr;
               lstm_row({gi, xw, wb, wb ? wb + 4 * H : nullptr, P, c, h, H, r.clip, clipped, input_forget}, f, g, h_act);
               rnn_store(r, t, d, b);
               continue;
            }
         }
         if (P) {
            rnn_peephole(gi, P, c, H);
            rnn_peephole(gf, P + 2 * H, c, H);
         }
         rnn_gate(gi, xw, H, r.clip, f);
         if (input_forget)
            for (size_t j = 0; j < H; ++j)
               gf[j] = T(1) - gi[j];
         else
            rnn_gate(gf, xw + 2 * H, H, r.clip, f);
         rnn_gate(gc, xw + 3 * H, H, r.clip, g);
         for (size_t j = 0; j < H; ++j)
            c[j] = gf[j] * c[j] + gi[j] * gc[j];
         if (P)
            rnn_peephole(go, P + H, c, H);
         rnn_gate(go, xw + H, H, r.clip, f);
         for (size_t j = 0; j < H; ++j)
            h[j] = go[j] * h_act(c[j]);
         rnn_store(r, t, d, b);
      }
   }
   rnn_end(r, d);
}

// GRU, gates in ONNX order z, r, h.  linear_before_reset applies the reset gate
// after the recurrence product (H R_h^T + Rb_h), otherwise before it, which
// needs a second product per step on the reset state (r * H).
template <typename T, typename F, typename G>
inline void gru(const Recurrence<T> &r, size_t d, bool reverse, bool linear_before_reset, F f, G g)
{
   const FlushDenormals flush;
   const RnnShape &s = r.shape;
   const size_t H = s.hidden;
   const size_t zr_cols = linear_before_reset ? 3 * H : 2 * H, zr_floats = rnn_block_floats(r.panels_r, H, zr_cols);
   const T *R = r.R + d * (zr_floats + (linear_before_reset ? 0 : rnn_block_floats(r.panels_r, H, H)));
   const T *rb_h = r.B ? r.B + d * 6 * H + 5 * H : nullptr;
   rnn_begin(r, d, 3, linear_before_reset ? 2 * H : 3 * H);
   T *hr_h = r.hr + s.batch * 2 * H; // H R_h^T when linear_before_reset is 0
   for (size_t step = 0; step < s.seq; ++step) {
      rnn_product(r, zr_cols, r.h, R, r.hr);
      if (!linear_before_reset) {
         for (size_t b = 0; b < s.batch; ++b) {
            size_t t;
            T *rh = r.rh + b * H, *hr = r.hr + b * 2 * H;
            if (!rnn_time(step, rnn_length(s, r.lens, b), reverse, t)) {
               detail::fill_n(rh, H, T(0));
               continue;
            }
            const T *xw = r.xw + s.x_row(t, b) * 3 * H, *h = r.h + b * H;
            rnn_gate(hr, xw, 2 * H, r.clip, f); // z (kept for the update below) and r
            for (size_t j = 0; j < H; ++j)
               rh[j] = hr[H + j] * h[j];
         }
         rnn_product(r, H, r.rh, R + zr_floats, hr_h);
      }
      for (size_t b = 0; b < s.batch; ++b) {
         size_t t;
         if (!rnn_time(step, rnn_length(s, r.lens, b), reverse, t))
            continue;
         const T *xw = r.xw + s.x_row(t, b) * 3 * H;
         T *h = r.h + b * H, *z, *n; // n: the candidate state
         if (linear_before_reset) {
            z = r.hr + b * 3 * H, n = z + 2 * H;
            const T *reset = z + H;
            rnn_gate(z, xw, 2 * H, r.clip, f);
            if (rb_h)
               for (size_t j = 0; j < H; ++j)
                  n[j] += rb_h[j];
            for (size_t j = 0; j < H; ++j)
               n[j] *= reset[j];
         } else {
            z = r.hr + b * 2 * H, n = hr_h + b * H;
         }
         rnn_gate(n, xw + 2 * H, H, r.clip, g);
         for (size_t j = 0; j < H; ++j)
            h[j] = (T(1) - z[j]) * n[j] + z[j] * h[j];
         rnn_store(r, t, d, b);
      }
   }
   rnn_end(r, d);
}
