// RNN, GRU and LSTM, one direction at a time: the input projection of every step in one cuBLAS product
// (xw = X W^T, rows in X's order), then per step the recurrence product (hr = H R^T, cuBLAS) and a cell kernel,
// a thread per (batch row, hidden unit), updating H (and C) in place and writing Y. Activations are device
// lambdas (f, g, h of the ONNX spec). Rows past their sequence length keep their state; Y there stays 0.

// Sizes and layout (ONNX `layout` 0: time major, 1: batch major) of one layer, passed by value.
struct RnnShape {
   size_t seq, batch, hidden, directions;
   bool batch_major;

   __host__ __device__ size_t x_row(size_t t, size_t b) const { return batch_major ? b * seq + t : t * batch + b; }
   __host__ __device__ size_t y_at(size_t t, size_t d, size_t b, size_t j) const
   {
      return (batch_major ? (b * seq + t) * directions + d : (t * directions + d) * batch + b) * hidden + j;
   }
   __host__ __device__ size_t state_at(size_t d, size_t b, size_t j) const
   {
      return (batch_major ? b * directions + d : d * batch + b) * hidden + j;
   }
};

// One direction's step: which time step row b runs now, or false past its length (lens null: all of seq).
struct RnnStep {
   size_t d, step;
   bool reverse;
   const int32_t *lens;

   __device__ bool time(const RnnShape &s, size_t b, size_t &t) const
   {
      const size_t length = lens ? static_cast<size_t>(lens[b]) : s.seq;
      if (step >= length)
         return false;
      t = reverse ? length - 1 - step : step;
      return true;
   }
};

template <typename T>
__device__ T clipped(T v, T clip)
{
   return clip > T(0) ? (v < -clip ? -clip : v > clip ? clip : v) : v;
}

// The state before the first step: initial_h / initial_c of direction d (null: zeros), batch rows x hidden.
template <typename T>
__global__ void rnn_init_kernel(RnnShape s, size_t d, const T *h0, const T *c0, T *h, T *c)
{
   const size_t total = s.batch * s.hidden;
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
      const size_t b = i / s.hidden, j = i % s.hidden;
      h[i] = h0 ? h0[s.state_at(d, b, j)] : T(0);
      if (c)
         c[i] = c0 ? c0[s.state_at(d, b, j)] : T(0);
   }
}

// Y_h / Y_c of direction d from the final state (zeros for rows of length 0, as onnxruntime).
template <typename T>
__global__ void rnn_final_kernel(RnnShape s, size_t d, const int32_t *lens, const T *h, const T *c, T *yh, T *yc)
{
   const size_t total = s.batch * s.hidden;
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
      const size_t b = i / s.hidden, j = i % s.hidden;
      const bool empty = lens && lens[b] == 0;
      if (yh)
         yh[s.state_at(d, b, j)] = empty ? T(0) : h[i];
      if (yc)
         yc[s.state_at(d, b, j)] = empty ? T(0) : c[i];
   }
}

// RNN: H = f(xw + Wb + hr + Rb).
template <typename T, typename F>
__global__ void rnn_cell_kernel(RnnShape s, RnnStep st, const T *xw, const T *hr, const T *wb, const T *rb, T clip, T *h,
                                T *y, F f)
{
   const size_t total = s.batch * s.hidden;
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
      const size_t b = i / s.hidden, j = i % s.hidden;
      size_t t = 0;
      if (!st.time(s, b, t))
         continue;
      const T v = f(clipped(xw[s.x_row(t, b) * s.hidden + j] + hr[i] + (wb ? wb[j] + rb[j] : T(0)), clip));
      h[i] = v;
      if (y)
         y[s.y_at(t, st.d, b, j)] = v;
   }
}

// LSTM (gates i, o, f, c; peepholes p = (p_i, p_o, p_f); input_forget couples f to 1 - i).
template <typename T, typename F, typename G, typename H>
__global__ void lstm_cell_kernel(RnnShape s, RnnStep st, const T *xw, const T *hr, const T *wb, const T *rb,
                                 const T *p, T clip, bool input_forget, T *h, T *c, T *y, F f, G g, H hact)
{
   const size_t n = s.hidden, total = s.batch * n;
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
      const size_t b = i / n, j = i % n;
      size_t t = 0;
      if (!st.time(s, b, t))
         continue;
      const T *x = xw + s.x_row(t, b) * 4 * n, *r = hr + b * 4 * n;
      T gate[4];
      for (int k = 0; k < 4; ++k)
         gate[k] = x[k * n + j] + r[k * n + j] + (wb ? wb[k * n + j] + rb[k * n + j] : T(0));
      const T c_old = c[i];
      if (p) {
         gate[0] += p[j] * c_old;
         gate[2] += p[2 * n + j] * c_old;
      }
      const T in = f(clipped(gate[0], clip));
      const T forget = input_forget ? T(1) - in : f(clipped(gate[2], clip));
      const T cell = forget * c_old + in * g(clipped(gate[3], clip));
      const T out = f(clipped(p ? gate[1] + p[n + j] * cell : gate[1], clip));
      const T v = out * hact(cell);
      c[i] = cell;
      h[i] = v;
      if (y)
         y[s.y_at(t, st.d, b, j)] = v;
   }
}

// GRU with linear_before_reset (hr holds H R^T for z, r and h~): one kernel per step.
template <typename T, typename F, typename G>
__global__ void gru_cell_kernel(RnnShape s, RnnStep st, const T *xw, const T *hr, const T *wb, const T *rb, T clip,
                                T *h, T *y, F f, G g)
{
   const size_t n = s.hidden, total = s.batch * n;
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
      const size_t b = i / n, j = i % n;
      size_t t = 0;
      if (!st.time(s, b, t))
         continue;
      const T *x = xw + s.x_row(t, b) * 3 * n, *r = hr + b * 3 * n;
      const T bz = wb ? wb[j] + rb[j] : T(0), br = wb ? wb[n + j] + rb[n + j] : T(0);
      const T z = f(clipped(x[j] + r[j] + bz, clip));
      const T reset = f(clipped(x[n + j] + r[n + j] + br, clip));
      const T cand = g(clipped(x[2 * n + j] + (wb ? wb[2 * n + j] : T(0)) + reset * (r[2 * n + j] + (rb ? rb[2 * n + j] : T(0))),
                               clip));
      const T v = (T(1) - z) * cand + z * h[i];
      h[i] = v;
      if (y)
         y[s.y_at(t, st.d, b, j)] = v;
   }
}

// GRU without linear_before_reset, first half: z (kept in hr's z columns, hr being H R_zr^T, batch x 2n) and
// rh = r * H, the input of the candidate's product.
template <typename T, typename F>
__global__ void gru_gates_kernel(RnnShape s, RnnStep st, const T *xw, T *hr, const T *wb, const T *rb, T clip,
                                 const T *h, T *rh, F f)
{
   const size_t n = s.hidden, total = s.batch * n;
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
      const size_t b = i / n, j = i % n;
      size_t t = 0;
      if (!st.time(s, b, t))
         continue;
      const T *x = xw + s.x_row(t, b) * 3 * n;
      T *r = hr + b * 2 * n;
      const T bz = wb ? wb[j] + rb[j] : T(0), br = wb ? wb[n + j] + rb[n + j] : T(0);
      const T z = f(clipped(x[j] + r[j] + bz, clip));
      const T reset = f(clipped(x[n + j] + r[n + j] + br, clip));
      r[j] = z;
      rh[i] = reset * h[i];
   }
}

// Second half: h~ = g(xw_h + Wbh + (r * H) Rh^T + Rbh) (hc = that product, batch x n), H = (1 - z) h~ + z H.
template <typename T, typename G>
__global__ void gru_update_kernel(RnnShape s, RnnStep st, const T *xw, const T *hr, const T *hc, const T *wb,
                                  const T *rb, T clip, T *h, T *y, G g)
{
   const size_t n = s.hidden, total = s.batch * n;
   for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
      const size_t b = i / n, j = i % n;
      size_t t = 0;
      if (!st.time(s, b, t))
         continue;
      const T z = hr[b * 2 * n + j];
      const T bias = wb ? wb[2 * n + j] + rb[2 * n + j] : T(0);
      const T cand = g(clipped(xw[s.x_row(t, b) * 3 * n + 2 * n + j] + hc[i] + bias, clip));
      const T v = (T(1) - z) * cand + z * h[i];
      h[i] = v;
      if (y)
         y[s.y_at(t, st.d, b, j)] = v;
   }
}

// One layer: every direction, every step. x: (seq, batch, input) or batch major; w, r: this layer's (directions,
// gates * hidden, input / hidden); bias (directions, 2 * gates * hidden) or null. Scratch: xw (seq * batch *
// gates * hidden), hr (batch * gates * hidden), h, c (LSTM), rh (GRU without linear_before_reset).
enum class RnnCell { Rnn, Lstm, Gru, GruLinear };

template <RnnCell Cell>
constexpr size_t rnn_gates()
{
   return Cell == RnnCell::Rnn ? 1 : Cell == RnnCell::Lstm ? 4 : 3;
}

template <RnnCell Cell, typename T, typename F, typename G, typename H>
void recurrence(cublasHandle_t blas, cudaStream_t stream, const RnnShape &s, size_t input, const bool *reverse,
                const T *x, const T *w, const T *r, const T *bias, const int32_t *lens, const T *h0, const T *c0,
                [[maybe_unused]] const T *p, T clip, [[maybe_unused]] bool input_forget, T *y, T *yh, T *yc, T *xw,
                T *hr, T *h, T *c, [[maybe_unused]] T *rh, F f, [[maybe_unused]] G g, [[maybe_unused]] H hact)
{
   constexpr size_t gates = rnn_gates<Cell>();
   const size_t n = s.hidden, gh = gates * n, cells = s.batch * n;
   if (y && s.seq * s.directions * cells != 0)
      detail::check(cudaMemsetAsync(y, 0, s.seq * s.directions * cells * sizeof(T), stream), "cudaMemsetAsync");
   if (cells == 0)
      return;
   for (size_t d = 0; d < s.directions; ++d) {
      const T *wb = bias ? bias + d * 2 * gh : nullptr, *rb = bias ? bias + d * 2 * gh + gh : nullptr;
      const T *rd = r + d * gh * n;
      gemm(blas, false, true, s.seq * s.batch, gh, input, T(1), x, w + d * gh * input, T(0), xw);
      rnn_init_kernel<<<blocks_for(cells), kThreads, 0, stream>>>(s, d, h0, c0, h, c);
      for (size_t step = 0; step < s.seq; ++step) {
         const RnnStep st{d, step, reverse[d], lens};
         if constexpr (Cell == RnnCell::Gru) {
            gemm(blas, false, true, s.batch, 2 * n, n, T(1), h, rd, T(0), hr);
            gru_gates_kernel<<<blocks_for(cells), kThreads, 0, stream>>>(s, st, xw, hr, wb, rb, clip, h, rh, f);
            T *hc = hr + s.batch * 2 * n;
            gemm(blas, false, true, s.batch, n, n, T(1), rh, rd + 2 * n * n, T(0), hc);
            gru_update_kernel<<<blocks_for(cells), kThreads, 0, stream>>>(s, st, xw, hr, hc, wb, rb, clip, h, y, g);
         } else {
            gemm(blas, false, true, s.batch, gh, n, T(1), h, rd, T(0), hr);
            if constexpr (Cell == RnnCell::Rnn)
               rnn_cell_kernel<<<blocks_for(cells), kThreads, 0, stream>>>(s, st, xw, hr, wb, rb, clip, h, y, f);
            else if constexpr (Cell == RnnCell::Lstm)
               lstm_cell_kernel<<<blocks_for(cells), kThreads, 0, stream>>>(s, st, xw, hr, wb, rb, p ? p + d * 3 * n : nullptr,
                                                                            clip, input_forget, h, c, y, f, g, hact);
            else
               gru_cell_kernel<<<blocks_for(cells), kThreads, 0, stream>>>(s, st, xw, hr, wb, rb, clip, h, y, f, g);
         }
      }
      rnn_final_kernel<<<blocks_for(cells), kThreads, 0, stream>>>(s, d, lens, h, c, yh, yc);
   }
}
