// Transformer building blocks: RMSNormalization, RotaryEmbedding, SwiGLU.

// RMSNormalization on an (outer, n) view: y = x / sqrt(mean(x^2) + epsilon), the
// statistics in the stash type U; the scale is applied afterwards (it broadcasts freely).
template <typename T, typename U, typename V>
inline void rms_norm(const T *x, V *y, size_t outer, size_t n, U epsilon)
{
   for (size_t o = 0; o < outer; ++o) {
      const T *xr = x + o * n;
      V *yr = y + o * n;
      U sum = 0;
      for (size_t j = 0; j < n; ++j)
         sum += static_cast<U>(xr[j]) * static_cast<U>(xr[j]);
      const U inv = U(1) / std::sqrt(sum / static_cast<U>(n) + epsilon);
      for (size_t j = 0; j < n; ++j)
         yr[j] = static_cast<V>(static_cast<U>(xr[j]) * inv);
   }
}

// RotaryEmbedding: x is (batch, seq, heads * head) when packed, else (batch, heads, seq, head).
// The first `rot` values of each head are rotated pairwise (halves, or even/odd when
// interleaved) by the cos/sin rows of the token's position; the rest is copied.
template <typename T>
struct Rotary {
   size_t batch = 0, seq = 0, heads = 0, head = 0, rot = 0, max_pos = 0;
   bool packed = false, interleaved = false;
   const T *x = nullptr, *cos = nullptr, *sin = nullptr;
   const int64_t *pos = nullptr; // (batch, seq) rows of the caches; null: caches are (batch, seq, rot / 2)
   T *y = nullptr;
};

template <typename T>
inline size_t rotary_row(const Rotary<T> &r, size_t b, size_t s)
{
   if (!r.pos)
      return b * r.seq + s;
   const int64_t p = r.pos[b * r.seq + s];
   if (p < 0 || static_cast<size_t>(p) >= r.max_pos)
      throw std::out_of_range("RotaryEmbedding: position id " + std::to_string(p) + " is outside [0, " +
                              std::to_string(r.max_pos) + ")");
   return static_cast<size_t>(p);
}

template <typename T>
inline void rotary_embedding(const Rotary<T> &r)
{
   const size_t half = r.rot / 2;
   for (size_t b = 0; b < r.batch; ++b)
      for (size_t s = 0; s < r.seq; ++s) {
         const size_t row = rotary_row(r, b, s);
         const T *c = r.cos + row * half, *sn = r.sin + row * half;
         for (size_t h = 0; h < r.heads; ++h) {
            const size_t at = r.packed ? ((b * r.seq + s) * r.heads + h) * r.head : ((b * r.heads + h) * r.seq + s) * r.head;
            const T *x = r.x + at;
            T *y = r.y + at;
            for (size_t i = 0; i < half; ++i) {
               const size_t i1 = r.interleaved ? 2 * i : i, i2 = r.interleaved ? 2 * i + 1 : i + half;
               const T x1 = x[i1], x2 = x[i2];
               y[i1] = c[i] * x1 - sn[i] * x2;
               y[i2] = sn[i] * x1 + c[i] * x2;
            }
            detail::copy(x + r.rot, x + r.head, y + r.rot);
         }
      }
}
