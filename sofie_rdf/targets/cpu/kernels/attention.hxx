// Scaled dot-product attention (ONNX Attention 23-25) one (batch, query head) at a time:
// scores = scale * Q K^T (gemm), softcap, + bias (mask, causal, window, padding), softmax
// over keys, Y = P V (gemm).  K and V are first gathered, past rows then new rows, into
// the (batch, kv_heads, kv_len, head) present tensors, so every product reads contiguous
// rows.  The bias is computed per element from the mask and positions: a row whose keys
// are all disallowed (bias -inf everywhere) gives zero probabilities, not NaN.

template <typename T, typename M, typename S>
struct Attention {
   size_t batch = 0, q_heads = 0, kv_heads = 0, q_len = 0, past_len = 0, new_len = 0, head_qk = 0, head_v = 0;
   bool packed = false;                                   // 3-D Q/K/V/Y: (batch, seq, heads * head)
   const T *Q = nullptr, *K = nullptr, *V = nullptr, *past_key = nullptr, *past_value = nullptr;
   const M *mask = nullptr;                               // bool (attend) or additive values
   size_t mask_len = 0;                                   // keys the mask covers; later keys are masked out
   std::ptrdiff_t mask_strides[3] = {0, 0, 0};           // per batch, query head, query row
   const int64_t *nonpad = nullptr;                       // valid keys per batch (external cache)
   bool causal = false;
   int64_t left = -1, right = -1;                         // sliding window, -1 = unbounded
   T scale = T(1), softcap = T(0);
   int qk_mode = 0;
   T *Y = nullptr, *present_key = nullptr, *present_value = nullptr, *qk_out = nullptr;
   T *q_buf = nullptr, *y_buf = nullptr, *scores = nullptr; // q_buf, y_buf: packed layout only
   S *row = nullptr;                                      // softmax row when S is not T
   T *key_t = nullptr; // float heads in register blocks (attention_head_rows): one head's K transposed

   bool presents_scratch = false; // present_key and present_value are scratch, not requested outputs

   size_t kv_len() const { return past_len + new_len; }
   // Whether the products read K and V as given, not gathered into the presents: nothing to prepend (past) or
   // unpack (packed), presents not requested, and K and V starting on 64-byte lines (a memmove per row had
   // copied them, but vector loads of a misaligned K or V straddle lines: heads of 64 took 1.16x as long so).
   bool kv_in_place() const
   {
      auto lined = [](const T *p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; };
      return presents_scratch && !packed && !past_key && lined(K) && lined(V);
   }
};

// Rows of head h of batch b in a packed (batch, seq, heads * head) or (batch, heads, seq, head) tensor.
template <typename T>
inline T *attention_head(T *x, bool packed, size_t b, size_t h, size_t seq, size_t heads, size_t head,
                         size_t &row_stride)
{
   row_stride = packed ? heads * head : head;
   return x + (packed ? (b * seq * heads + h) * head : (b * heads + h) * seq * head);
}

template <typename T>
inline void attention_copy_rows(const T *src, size_t src_stride, T *dst, size_t dst_stride, size_t rows, size_t n)
{
   for (size_t r = 0; r < rows; ++r)
      detail::copy(src + r * src_stride, src + r * src_stride + n, dst + r * dst_stride);
}

// present[b, h] = concat(past[b, h], new rows of head h), for every batch and kv head.
template <typename T, typename M, typename S>
inline void attention_gather(const Attention<T, M, S> &a, const T *past, const T *fresh, T *present, size_t head)
{
   for (size_t b = 0; b < a.batch; ++b)
      for (size_t h = 0; h < a.kv_heads; ++h) {
         T *dst = present + (b * a.kv_heads + h) * a.kv_len() * head;
         if (past)
            detail::copy(past + (b * a.kv_heads + h) * a.past_len * head,
                      past + (b * a.kv_heads + h + 1) * a.past_len * head, dst);
         size_t stride = 0;
         const T *src = attention_head(fresh, a.packed, b, h, a.new_len, a.kv_heads, head, stride);
         attention_copy_rows(src, stride, dst + a.past_len * head, head, a.new_len, head);
      }
}

// Position of query row 0 among the keys: what causal and window masks align to.
template <typename T, typename M, typename S>
inline int64_t attention_offset(const Attention<T, M, S> &a, size_t b)
{
   if (a.nonpad)
      return a.nonpad[b] - static_cast<int64_t>(a.q_len);
   return static_cast<int64_t>(a.past_len);
}

template <typename T>
inline T attention_bias_of(bool attend)
{
   return attend ? T(0) : -std::numeric_limits<T>::infinity();
}

// Adds the bias of query row i to scores, returns false when every key is disallowed.
template <typename T, typename M, typename S>
inline bool attention_add_bias(const Attention<T, M, S> &a, size_t b, size_t h, size_t i, T *s)
{
   if (!a.mask && !a.causal && a.left < 0 && a.right < 0 && !a.nonpad) // every key attends, nothing to add
      return a.kv_len() > 0;
   const T ninf = -std::numeric_limits<T>::infinity();
   const int64_t p = attention_offset(a, b) + static_cast<int64_t>(i);
   const int64_t valid = a.nonpad ? a.nonpad[b] : static_cast<int64_t>(a.kv_len());
   const M *m = a.mask ? a.mask + static_cast<std::ptrdiff_t>(b) * a.mask_strides[0] +
                            static_cast<std::ptrdiff_t>(h) * a.mask_strides[1] +
                            static_cast<std::ptrdiff_t>(i) * a.mask_strides[2]
                       : nullptr;
   bool any = false;
   for (size_t j = 0; j < a.kv_len(); ++j) {
      const int64_t k = static_cast<int64_t>(j);
      bool attend = k < valid && !(a.causal && k > p) && !(a.left >= 0 && p - k > a.left) &&
                    !(a.right >= 0 && k - p > a.right) && !(m && j >= a.mask_len);
      T bias = attention_bias_of<T>(attend);
      if (attend && m) {
         if constexpr (std::is_same<M, bool>::value)
            bias = attention_bias_of<T>(m[j]);
         else
            bias = static_cast<T>(m[j]);
      }
      s[j] += bias;
      any = any || bias != ninf;
   }
   return any;
}

// Softmax of one score row in precision S, in place.
template <typename T, typename M, typename S>
inline void attention_softmax_row(const Attention<T, M, S> &a, T *s)
{
   const size_t n = a.kv_len();
   if constexpr (std::is_same<T, S>::value) {
      softmax(s, s, 1, n, 1, false);
   } else {
      for (size_t j = 0; j < n; ++j)
         a.row[j] = static_cast<S>(s[j]);
      softmax(a.row, a.row, 1, n, 1, false);
      for (size_t j = 0; j < n; ++j)
         s[j] = static_cast<T>(a.row[j]);
   }
}

// Scores -> probabilities of query rows [i0, i1) of head h of batch b, copying the requested stage to qk_out.
template <typename T, typename M, typename S>
inline void attention_probabilities(const Attention<T, M, S> &a, size_t b, size_t h, size_t i0, size_t i1)
{
   const size_t n = a.kv_len();
   T *qk = a.qk_out ? a.qk_out + (b * a.q_heads + h) * a.q_len * n : nullptr;
   auto capture = [&](int mode, size_t i, const T *s) {
      if (qk && a.qk_mode == mode)
         detail::copy(s, s + n, qk + i * n);
   };
   for (size_t i = i0; i < i1; ++i) {
      T *s = a.scores + i * n;
      capture(0, i, s);
      if (a.softcap > T(0))
         for (size_t j = 0; j < n; ++j)
            s[j] = a.softcap * std::tanh(s[j] / a.softcap);
      capture(1, i, s);
      const bool any = attention_add_bias(a, b, h, i, s);
      capture(2, i, s);
      if (any)
         attention_softmax_row(a, s);
      else
         detail::fill(s, s + n, T(0));
      capture(3, i, s);
   }
}

// ---- float heads in register blocks ------------------------------------------
//
// Per (batch, head), kAttentionRows query rows at a time: their scores (rows x keys, vectors of keys from K
// transposed once per head into key_t), their probabilities, and their rows of Y (vectors of the head's
// values).  A head's K and V (keys x head floats: 16 KB for 256 keys of 16) and the block's scores stay in L1,
// where two BLAS products per head pack both operands on every call and pass a whole head's scores (256 KB
// for 256 keys) between them: 8 heads x 256 tokens of 16 took 630 us so, 1.3x the time of this (Xeon AVX-512).
#if SOFIE_RDF_AVX512
constexpr size_t kAttentionRows = 8; // 16 accumulators of the scores' 2 x 8 (and 8 of P V) in 32 registers
#else
constexpr size_t kAttentionRows = 6; // 12 of 16 registers
#endif

// Vectors narrower than vfloat serve what is narrower than a vfloat (a head of 8 values with AVX-512), down to
// four lanes; below that, sums in registers.
constexpr size_t kNarrowestVector = 4 * sizeof(float);

// out[r * out_stride + c] = scale * sum_k a[r * a_stride + k] b[k * b_stride + c] for R rows and `cols` columns,
// each sum in a register (fewer than four keys or values: the products' scalar remainder).
template <size_t R>
inline void attention_sums(const float *a, size_t a_stride, const float *b, size_t b_stride, size_t depth,
                           size_t cols, float scale, float *out, size_t out_stride)
{
   for (size_t r = 0; r < R; ++r)
      for (size_t c = 0; c < cols; ++c) {
         float sum = 0.0f;
         for (size_t k = 0; k < depth; ++k)
            sum += a[r * a_stride + k] * b[k * b_stride + c];
         out[r * out_stride + c] = sum * scale;
      }
}

// acc[r][v] += a[r * a_row + k] * w[k * w_step + v * lanes .. + lanes] over k < steps in Cling's register tiles
// (kernels/gemm.hxx: tile_asm_panel), where they take this shape: the steps left for the loop in C++ (0 or steps).
template <size_t R, size_t V, size_t Bytes, typename Vec>
inline size_t attention_asm_steps([[maybe_unused]] Vec (&acc)[R][V], size_t steps, [[maybe_unused]] const float *a,
                                  [[maybe_unused]] size_t a_row, [[maybe_unused]] const float *w,
                                  [[maybe_unused]] size_t w_step)
{
#if SOFIE_RDF_TILE_ASM || SOFIE_RDF_TILE_ASM512
   if constexpr (Bytes == sizeof(simd_float) && kPanelAsm<R, V>) {
      if (steps)
         tile_asm_panel<R, V>(&acc[0][0], steps, a, a_row, 1, w, w_step, Bytes / sizeof(float));
      return 0;
   }
#endif
   return steps;
}

// s[r * n + j] = scale * (q_r . k_j) for R rows of Q (q_stride apart) and keys [j0, j0 + V * lanes) (kt: head x n),
// in vectors of Bytes: V vectors of keys per step, so that each broadcast value of Q feeds V multiply-adds.
// The loops over rows are unrolled, so that the accumulators stay in registers.
template <size_t R, size_t V, size_t Bytes = sizeof(vfloat)>
inline void attention_scores_vectors(const float *q, size_t q_stride, const float *kt, size_t n, size_t j0,
                                     size_t head, float scale, float *s)
{
   typedef typename vfloat_of<Bytes>::type vec;
   constexpr size_t lanes = Bytes / sizeof(float);
   vec acc[R][V];
#pragma GCC unroll 16
   for (size_t r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (size_t v = 0; v < V; ++v)
         acc[r][v] = vec{};
   const size_t steps = attention_asm_steps<R, V, Bytes>(acc, head, q, q_stride, kt + j0, n);
   SOFIE_RDF_TERMS_LOOP
   for (size_t e = 0; e < steps; ++e) {
      vec k[V];
#pragma GCC unroll 2
      for (size_t v = 0; v < V; ++v)
         std::memcpy(&k[v], kt + e * n + j0 + v * lanes, Bytes);
#pragma GCC unroll 16
      for (size_t r = 0; r < R; ++r) {
         const vec qr = q[r * q_stride + e] - vec{};
#pragma GCC unroll 2
         for (size_t v = 0; v < V; ++v)
            acc[r][v] += qr * k[v];
      }
   }
#pragma GCC unroll 16
   for (size_t r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (size_t v = 0; v < V; ++v) {
         const vec out = acc[r][v] * scale;
         std::memcpy(s + r * n + j0 + v * lanes, &out, Bytes);
      }
}

// All n scores of R rows: two vectors of keys at a time, then one, then the keys past the last whole vector
// as one more vector ending at the last key (its first lanes recompute, bit for bit, scores already there).
// Fewer keys than a vector: narrower vectors, then sums in registers, one (row, key) at a time (summed in
// place, each step waited for the last one's store: half the attention's time at 50 tokens).
template <size_t R, size_t Bytes = sizeof(vfloat)>
inline void attention_scores_rows(const float *q, size_t q_stride, const float *kt, size_t n, size_t head, float scale,
                                  float *s)
{
   constexpr size_t lanes = Bytes / sizeof(float);
   if (n >= lanes) {
      size_t j = 0;
      for (; j + 2 * lanes <= n; j += 2 * lanes)
         attention_scores_vectors<R, 2, Bytes>(q, q_stride, kt, n, j, head, scale, s);
      for (; j < n; j += lanes)
         attention_scores_vectors<R, 1, Bytes>(q, q_stride, kt, n, detail::min_of(j, n - lanes), head, scale, s);
   } else if constexpr (Bytes > kNarrowestVector) {
      attention_scores_rows<R, Bytes / 2>(q, q_stride, kt, n, head, scale, s);
   } else {
      attention_sums<R>(q, q_stride, kt, n, head, n, scale, s, n);
   }
}

// R rows of y (y_stride apart), values [e, e + V * lanes) of each in V vectors of Bytes:
// y_r = sum_j p[r * n + j] v_j.  Each broadcast probability feeds V multiply-adds: with one vector (a head of 16
// in AVX2's 8 lanes taken a vector at a time) a step was 7 loads for 6 multiply-adds on 6 chains, and
// the probabilities were read again for the second vector: 1.3x this kernel's time (Zen 3).
template <size_t R, size_t V, size_t Bytes>
inline void attention_values_vectors(const float *p, size_t n, const float *v, size_t head, size_t e, float *y,
                                     size_t y_stride, const float *inv)
{
   typedef typename vfloat_of<Bytes>::type vec;
   constexpr size_t lanes = Bytes / sizeof(float);
   vec acc[R][V];
#pragma GCC unroll 16
   for (size_t r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (size_t u = 0; u < V; ++u)
         acc[r][u] = vec{};
   const size_t steps = attention_asm_steps<R, V, Bytes>(acc, n, p, n, v + e, head);
   SOFIE_RDF_TERMS_LOOP
   for (size_t j = 0; j < steps; ++j) {
      vec x[V];
#pragma GCC unroll 2
      for (size_t u = 0; u < V; ++u)
         std::memcpy(&x[u], v + j * head + e + u * lanes, Bytes);
#pragma GCC unroll 16
      for (size_t r = 0; r < R; ++r) {
         const vec pr = p[r * n + j] - vec{};
#pragma GCC unroll 2
         for (size_t u = 0; u < V; ++u)
            acc[r][u] += pr * x[u];
      }
   }
#pragma GCC unroll 16
   for (size_t r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (size_t u = 0; u < V; ++u) {
         const vec out = acc[r][u] * inv[r];
         std::memcpy(y + r * y_stride + e + u * lanes, &out, Bytes);
      }
}

// y_r = inv[r] sum_j p[r * n + j] v_j for R rows (y_stride apart) and n values of `head` floats each: two vectors
// of the head's values at a time, then one, the last one ending at the head's end (as the scores' last vector);
// a head narrower than a vector in narrower vectors, below four values in registers, one (row, value) at a time.
template <size_t R, size_t Bytes = sizeof(vfloat)>
inline void attention_values_rows(const float *p, size_t n, const float *v, size_t head, float *y, size_t y_stride,
                                  const float *inv)
{
   constexpr size_t lanes = Bytes / sizeof(float);
   if (head >= lanes) {
      size_t e = 0;
      for (; e + 2 * lanes <= head; e += 2 * lanes)
         attention_values_vectors<R, 2, Bytes>(p, n, v, head, e, y, y_stride, inv);
      for (; e < head; e += lanes)
         attention_values_vectors<R, 1, Bytes>(p, n, v, head, detail::min_of(e, head - lanes), y, y_stride, inv);
   } else if constexpr (Bytes > kNarrowestVector) {
      attention_values_rows<R, Bytes / 2>(p, n, v, head, y, y_stride, inv);
   } else {
      for (size_t r = 0; r < R; ++r)
         attention_sums<1>(p + r * n, n, v, head, n, head, inv[r], y + r * y_stride, y_stride);
   }
}

// Whether scores become probabilities by softmax alone: no softcap, no bias of any kind, no scores requested,
// and keys to attend to.
template <typename M>
inline bool attention_plain(const Attention<float, M, float> &a)
{
   return a.softcap <= 0.0f && !a.mask && !a.causal && a.left < 0 && a.right < 0 && !a.nonpad && !a.qk_out &&
          a.kv_len() > 0;
}

// Rows [i, i + R) of head h of batch b: scores into their rows of a.scores, probabilities, Y.
template <size_t R, typename M>
inline void attention_rows(const Attention<float, M, float> &a, size_t b, size_t h, size_t i, const float *q,
                           size_t q_stride, const float *v, float *y, size_t y_stride)
{
   const size_t n = a.kv_len();
   float *s = a.scores + i * n;
   attention_scores_rows<R>(q + i * q_stride, q_stride, a.key_t, n, a.head_qk, a.scale, s);
   float inv[R];
   if (attention_plain(a)) {
      softmax_exp_rows<R>(s, s, n, inv); // the division left to attention_values_rows
   } else {
      attention_probabilities(a, b, h, i, i + R);
      detail::fill(inv, inv + R, 1.0f);
   }
   attention_values_rows<R>(s, n, v, a.head_v, y + i * y_stride, y_stride, inv);
}

// key_t = K^T for one head: K's n rows of d floats, key_t's d rows of n.  In 8 x 8 blocks transposed in registers
// where both are whole blocks, the rest value by value: value by value throughout, each store n floats from the
// one before, it took an eighth of the fused attention's samples (256 keys, heads of 16, AVX-512).
inline void attention_transpose_keys(const float *k, size_t n, size_t d, float *key_t)
{
   const size_t n8 = n - n % 8, d8 = d - d % 8;
   for (size_t j = 0; j < n8; j += 8)
      for (size_t e = 0; e < d8; e += 8) {
         float8 t[8];
         transpose8(k + j * d + e, d, t);
         for (size_t c = 0; c < 8; ++c)
            std::memcpy(key_t + (e + c) * n + j, &t[c], sizeof t[c]);
      }
   for (size_t j = 0; j < n; ++j)
      for (size_t e = j < n8 ? d8 : 0; e < d; ++e)
         key_t[e * n + j] = k[j * d + e];
}

// One head of float attention in blocks of rows (see above); k and v: the keys and values of its kv head.
template <typename M>
inline void attention_head_rows(const Attention<float, M, float> &a, size_t b, size_t h, const float *k,
                                const float *v, const float *q, size_t q_stride, float *y, size_t y_stride)
{
   attention_transpose_keys(k, a.kv_len(), a.head_qk, a.key_t);
   size_t i = 0;
   for (; i + kAttentionRows <= a.q_len; i += kAttentionRows)
      attention_rows<kAttentionRows>(a, b, h, i, q, q_stride, v, y, y_stride);
   for (; i < a.q_len; ++i)
      attention_rows<1>(a, b, h, i, q, q_stride, v, y, y_stride);
}

template <typename T, typename M, typename S>
inline void attention(const Attention<T, M, S> &a)
{
   if (a.kv_heads == 0 || a.q_heads % a.kv_heads != 0)
      throw std::invalid_argument("Attention: q_num_heads (" + std::to_string(a.q_heads) +
                                  ") must be a multiple of kv_num_heads (" + std::to_string(a.kv_heads) + ")");
   if (a.mask && a.mask_len > a.kv_len())
      throw std::invalid_argument("Attention: attn_mask covers " + std::to_string(a.mask_len) + " keys, but there are only " +
                                  std::to_string(a.kv_len()));
   for (size_t b = 0; a.nonpad && b < a.batch; ++b)
      if (a.nonpad[b] < 0 || a.nonpad[b] > static_cast<int64_t>(a.kv_len()))
         throw std::out_of_range("Attention: nonpad_kv_seqlen " + std::to_string(a.nonpad[b]) + " is outside [0, " +
                                 std::to_string(a.kv_len()) + "]");
   const bool in_place = a.kv_in_place();
   if (!in_place) {
      attention_gather(a, a.past_key, a.K, a.present_key, a.head_qk);
      attention_gather(a, a.past_value, a.V, a.present_value, a.head_v);
   }
   const T *keys = in_place ? a.K : a.present_key, *values = in_place ? a.V : a.present_value;
   const size_t n = a.kv_len(), group = a.q_heads / a.kv_heads;
   for (size_t b = 0; b < a.batch; ++b)
      for (size_t h = 0; h < a.q_heads; ++h) {
         size_t q_stride = 0, y_stride = 0;
         const T *q = attention_head(a.Q, a.packed, b, h, a.q_len, a.q_heads, a.head_qk, q_stride);
         T *y = attention_head(a.Y, a.packed, b, h, a.q_len, a.q_heads, a.head_v, y_stride);
         const size_t kv = b * a.kv_heads + h / group;
         if constexpr (std::is_same<T, float>::value && std::is_same<S, float>::value) {
            if (a.key_t) { // rows of the packed layout are read and written in place, strided
               attention_head_rows(a, b, h, keys + kv * n * a.head_qk, values + kv * n * a.head_v, q, q_stride, y,
                                   y_stride);
               continue;
            }
         }
         if (a.packed) {
            attention_copy_rows(q, q_stride, a.q_buf, a.head_qk, a.q_len, a.head_qk);
            q = a.q_buf;
         }
         gemm(false, true, a.q_len, n, a.head_qk, a.scale, q, keys + kv * n * a.head_qk, T(0), a.scores);
         attention_probabilities(a, b, h, 0, a.q_len);
         gemm(false, false, a.q_len, a.head_v, n, T(1), a.scores, values + kv * n * a.head_v, T(0),
              a.packed ? a.y_buf : y);
         if (a.packed)
            attention_copy_rows(a.y_buf, a.head_v, y, y_stride, a.q_len, a.head_v);
      }
}

// LinearAttention (ONNX 27): a recurrent state S (d_k x d_v) per (batch, kv head), for each token
//   S = exp(g) * S (gated rules), v' = beta * (v - S^T k) (delta rules, else v' = v), S += k v'^T,
//   and o = scale * q^T S for every query head sharing that kv head.  Inputs are (batch, T, heads * d).
template <typename T>
struct LinearAttention {
   size_t batch = 0, steps = 0, q_heads = 0, kv_heads = 0, dk = 0, dv = 0;
   size_t decay_width = 0, beta_width = 0; // per token: kv_heads or kv_heads * dk decay values, kv_heads or 1 beta values
   const T *q = nullptr, *k = nullptr, *v = nullptr, *past = nullptr, *decay = nullptr, *beta = nullptr;
   T scale = T(1);
   T *y = nullptr, *state = nullptr;
   T *v_buf = nullptr; // dv values: the token's (corrected) value row
};

template <typename T>
inline void linear_attention_update(const LinearAttention<T> &a, size_t b, size_t t, size_t g, T *s)
{
   const size_t token = b * a.steps + t;
   if (a.decay) {
      const T *gt = a.decay + token * a.decay_width;
      for (size_t d = 0; d < a.dk; ++d) {
         const T f = std::exp(a.decay_width == a.kv_heads ? gt[g] : gt[g * a.dk + d]);
         for (size_t m = 0; m < a.dv; ++m)
            s[d * a.dv + m] *= f;
      }
   }
   const T *kt = a.k + (token * a.kv_heads + g) * a.dk;
   const T *vt = a.v + (token * a.kv_heads + g) * a.dv;
   detail::copy(vt, vt + a.dv, a.v_buf);
   if (a.beta) {
      const T bt = a.beta[token * a.beta_width + (a.beta_width == 1 ? 0 : g)];
      for (size_t m = 0; m < a.dv; ++m) {
         T retrieved = T(0);
         for (size_t d = 0; d < a.dk; ++d)
            retrieved += s[d * a.dv + m] * kt[d];
         a.v_buf[m] = bt * (vt[m] - retrieved);
      }
   }
   for (size_t d = 0; d < a.dk; ++d)
      for (size_t m = 0; m < a.dv; ++m)
         s[d * a.dv + m] += kt[d] * a.v_buf[m];
}

template <typename T>
inline void linear_attention(const LinearAttention<T> &a)
{
   const size_t group = a.q_heads / a.kv_heads, size = a.dk * a.dv;
   if (a.past)
      detail::copy(a.past, a.past + a.batch * a.kv_heads * size, a.state);
   else
      detail::fill(a.state, a.state + a.batch * a.kv_heads * size, T(0));
   for (size_t b = 0; b < a.batch; ++b)
      for (size_t t = 0; t < a.steps; ++t)
         for (size_t g = 0; g < a.kv_heads; ++g) {
            T *s = a.state + (b * a.kv_heads + g) * size;
            linear_attention_update(a, b, t, g, s);
            const size_t token = b * a.steps + t;
            // o (group x dv) = scale * q (group x dk) S (dk x dv): the group's query heads are adjacent.
            gemm(false, false, group, a.dv, a.dk, a.scale, a.q + (token * a.q_heads + g * group) * a.dk, s, T(0),
                 a.y + (token * a.q_heads + g * group) * a.dv);
         }
}
