// Float vectors as wide as the instruction set the compiler targets: one AVX-512, AVX or SSE register
// (GCC and Clang vector extensions, which Cling compiles too).  For the loops the auto-vectorizer leaves
// scalar: reductions it may not reorder (a maximum, a sum) and selects it does not if-convert.
#if SOFIE_RDF_AVX512
#define SOFIE_SIMD_BYTES 64
#elif SOFIE_RDF_AVX2
#define SOFIE_SIMD_BYTES 32
#else
#define SOFIE_SIMD_BYTES 16
#endif
typedef float vfloat __attribute__((vector_size(SOFIE_SIMD_BYTES)));
constexpr size_t kVFloatLanes = sizeof(vfloat) / sizeof(float);
typedef int32_t vint __attribute__((vector_size(SOFIE_SIMD_BYTES))); // as many int32 lanes: masks, exponents

inline vfloat vload(const float *p)
{
   vfloat v;
   std::memcpy(&v, p, sizeof v);
   return v;
}

inline void vstore(float *p, vfloat v) { std::memcpy(p, &v, sizeof v); }

// The same for vectors V of another width, no wider than the target's registers (GCC's -Wpsabi rejects wider
// ones by value: the generic build's float8).  Where the vector's place is an array element (V a[M]), a memcpy
// straight between it and p is a copy of memory to memory, which GCC 12 does in 16-byte pieces: a 32-byte load
// of the two halves then waits for them (a store-forwarding stall; F(4, 3)'s output interleave spent a fifth of
// its time there built for AVX2).  Through a value, the copy is one load or store of the whole vector.
template <typename V>
inline V vload_as(const float *p)
{
   V v;
   std::memcpy(&v, p, sizeof v);
   return v;
}

template <typename V>
inline void vstore_as(float *p, V v)
{
   std::memcpy(p, &v, sizeof v);
}

// x in every lane.  x - (+0) is x for every x (where 0 + x turns -0 into +0), so the compiler drops the
// subtraction and emits one broadcast; 0 + x cost a load, an add and the broadcast.
inline vfloat vsplat(float x) { return x - vfloat{}; }

// The greater of a and b lane by lane: a when greater, else b (so NaN in a never wins).
inline vfloat vmax(vfloat a, vfloat b) { return a > b ? a : b; }

// vmax(vsplat(c), v) as one max instruction.  With a constant operand GCC 12 compiles the select to a compare
// and a blend, loading the constant once for each (its max pattern wants the same operand in both): on Intel's
// AVX2 four instructions on the three vector ports where a max is one, and softmax's exponentials took 1.14x
// the time.  The empty asm hands the compiler a copy of the constant it cannot see through (not under Cling,
// whose register allocator found no register for it once the kernels were inlined: gemm.hxx's
// SOFIE_KEEP_IN_REGISTER).
inline vfloat vmax_splat(float c, vfloat v)
{
   vfloat k = vsplat(c);
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__CLING__)
   asm("" : "+x"(k));
#endif
   return vmax(k, v);
}

// Float vectors of Bytes bytes, for lanes_tree's halves.
template <size_t Bytes>
struct vfloat_of {
   typedef float type __attribute__((vector_size(Bytes)));
};

// Lanes [First, First + sizeof...(I)) of v, a vector of half its width.  A shuffle in registers where the
// compiler has one (Clang, GCC 12 and later); elsewhere a copy through memory, after which GCC keeps the
// vector on the stack, and a loop's accumulator passed to hsum with it (an add waiting on a store per step).
template <size_t Bytes, size_t First, size_t... I>
inline typename vfloat_of<Bytes / 2>::type vhalf(typename vfloat_of<Bytes>::type v, std::index_sequence<I...>)
{
#if defined(__clang__) || __GNUC__ >= 12
   return __builtin_shufflevector(v, v, (First + I)...);
#else
   typename vfloat_of<Bytes / 2>::type half;
   std::memcpy(&half, reinterpret_cast<const float *>(&v) + First, sizeof half);
   return half;
#endif
}

// The lanes of v combined pairwise, half the lanes a step: log2(lanes) dependent steps where a running
// total over the lanes takes one per lane (16 with AVX-512, as long as the work on a short row such as an
// attention row of 128 values).  The order of the sum differs from a running total's by rounding only.
template <size_t Bytes = sizeof(vfloat), typename Combine>
inline float lanes_tree(typename vfloat_of<Bytes>::type v, Combine combine)
{
   if constexpr (Bytes == 2 * sizeof(float)) {
      return combine(v[0], v[1]);
   } else {
      constexpr size_t half = Bytes / 2 / sizeof(float);
      const auto lanes = std::make_index_sequence<half>{};
      return lanes_tree<Bytes / 2>(combine(vhalf<Bytes, 0>(v, lanes), vhalf<Bytes, half>(v, lanes)), combine);
   }
}

inline float hmax(vfloat v)
{
   return lanes_tree(v, [](auto a, auto b) { return b > a ? b : a; });
}

inline float hsum(vfloat v)
{
   return lanes_tree(v, [](auto a, auto b) { return a + b; });
}

// Vectors of 8 floats, for shuffles every x86 vector instruction set has (AVX's within and across its two
// halves; GCC splits them for SSE): SOFIE_RDF_SHUFFLE(a, b, i...) picks lane i of a, or i - 8 of b, into each lane.
typedef float float8 __attribute__((vector_size(32)));
typedef int index8 __attribute__((vector_size(32)));
#if defined(__clang__) // Cling too
#define SOFIE_RDF_SHUFFLE(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SOFIE_RDF_SHUFFLE(a, b, ...) __builtin_shuffle(a, b, index8{__VA_ARGS__})
#endif

// The 8 x 8 block at s (rows ld floats apart) transposed: t[j][i] = s[i * ld + j].  Three rounds of eight
// shuffles, each a single AVX instruction (unpack, shufps, vperm2f128), where a column read value by value
// takes eight loads and inserts.
inline void transpose8(const float *s, size_t ld, float8 *t)
{
   float8 r[8], u[8];
   for (size_t i = 0; i < 8; ++i)
      std::memcpy(&r[i], s + i * ld, sizeof r[i]);
   for (size_t i = 0; i < 8; i += 2) { // u[i] = r00 r10 r01 r11 | r04 r14 r05 r15 for rows i, i + 1
      u[i] = SOFIE_RDF_SHUFFLE(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
      u[i + 1] = SOFIE_RDF_SHUFFLE(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
   }
   for (size_t i = 0; i < 8; i += 4) // r[i + c] = column c (and c + 4) of rows i to i + 3
      for (size_t h = 0; h < 2; ++h) {
         r[i + 2 * h] = SOFIE_RDF_SHUFFLE(u[i + h], u[i + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
         r[i + 2 * h + 1] = SOFIE_RDF_SHUFFLE(u[i + h], u[i + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
      }
   for (size_t c = 0; c < 4; ++c) {
      t[c] = SOFIE_RDF_SHUFFLE(r[c], r[c + 4], 0, 1, 2, 3, 8, 9, 10, 11);
      t[c + 4] = SOFIE_RDF_SHUFFLE(r[c], r[c + 4], 4, 5, 6, 7, 12, 13, 14, 15);
   }
}

// Lanes First, First + 2, ... of the pair (a, b) of float vectors (lane i of a, or i - L of b, for L lanes):
// the even (First 0) or odd (First 1) floats of 2 L consecutive ones, in one two-source permute.
template <size_t First, typename V, size_t... I>
inline V vevery_other(V a, V b, std::index_sequence<I...>)
{
#if defined(__clang__) || __GNUC__ >= 12
   return __builtin_shufflevector(a, b, (First + 2 * I)...);
#else
   typedef int vint __attribute__((vector_size(sizeof(V))));
   return __builtin_shuffle(a, b, vint{int(First + 2 * I)...});
#endif
}

// Lanes First, First + 1, ... of the pair (a, b) (lane i of a, or i - L of b): the pair's floats moved down by
// First lanes, in one two-source permute (a itself for First 0).
template <size_t First, typename V, size_t... I>
inline V vlanes_from(V a, V b, std::index_sequence<I...>)
{
#if defined(__clang__) || __GNUC__ >= 12
   return __builtin_shufflevector(a, b, (First + I)...);
#else
   typedef int vint __attribute__((vector_size(sizeof(V))));
   return __builtin_shuffle(a, b, vint{int(First + I)...});
#endif
}

// a[First], b[First], a[First + 1], b[First + 1], ...: half of each of a and b interleaved (vevery_other's
// inverse: First 0 gives the first L of 2 L floats, First L / 2 the others).
template <size_t First, typename V, size_t... I>
inline V vinterleave(V a, V b, std::index_sequence<I...>)
{
#if defined(__clang__) || __GNUC__ >= 12
   return __builtin_shufflevector(a, b, (First + I / 2 + I % 2 * sizeof...(I))...);
#else
   typedef int vint __attribute__((vector_size(sizeof(V))));
   return __builtin_shuffle(a, b, vint{int(First + I / 2 + I % 2 * sizeof...(I))...});
#endif
}

// Lanes i / W * S + i % W + Off of the pair (a, b) (lane i of a, or i - L of b): rows of W floats that lie S apart
// packed W apart, from the Off-th float of the first row on, in one two-source permute.
template <size_t W, size_t S, size_t Off, typename V, size_t... I>
inline V vpack_rows(V a, V b, std::index_sequence<I...>)
{
   static_assert(((I / W * S + I % W + Off < 2 * sizeof...(I)) && ...), "rows within the pair");
#if defined(__clang__) || __GNUC__ >= 12
   return __builtin_shufflevector(a, b, (I / W * S + I % W + Off)...);
#else
   typedef int vint __attribute__((vector_size(sizeof(V))));
   return __builtin_shuffle(a, b, vint{int(I / W * S + I % W + Off)...});
#endif
}

// Columns by phase, for the Winograd planes and stride-2 convolution rows, in float vectors V of L lanes.
// split: M L consecutive floats to their M phases (phase b: the floats at M t + b); merge: the reverse, its i-th
// L floats stored at place(i) (consecutive, or the rows they belong to).
template <size_t M, typename V>
struct ColumnPhases;

template <typename V>
struct ColumnPhases<1, V> { // one phase, the floats as they are: F(2, 3)'s 2 x 2 tiles pooled to one value
   static void split(const float *s, V *out) { out[0] = vload_as<V>(s); }
   template <typename D>
   static void merge(const V *in, D place) { vstore_as(place(0), in[0]); }
};

template <typename V>
struct ColumnPhases<2, V> {
   static constexpr size_t L = sizeof(V) / sizeof(float);
   static constexpr auto lanes = std::make_index_sequence<L>{};
   static void split(const float *s, V *out)
   {
      V a, b;
      std::memcpy(&a, s, sizeof a);
      std::memcpy(&b, s + L, sizeof b);
      out[0] = vevery_other<0>(a, b, lanes);
      out[1] = vevery_other<1>(a, b, lanes);
   }
   template <typename D>
   static void merge(const V *in, D place)
   {
      const V lo = vinterleave<0>(in[0], in[1], lanes), hi = vinterleave<L / 2>(in[0], in[1], lanes);
      std::memcpy(place(0), &lo, sizeof lo);
      std::memcpy(place(1), &hi, sizeof hi);
   }
};

template <size_t M, typename V>
struct ColumnPhases { // M a power of two from 4: a round of ColumnPhases<2> on two rounds of ColumnPhases<M / 2>
   static constexpr size_t L = sizeof(V) / sizeof(float);
   static constexpr auto lanes = std::make_index_sequence<L>{};
   static void split(const float *s, V *out)
   {
      V lo[M / 2], hi[M / 2];
      ColumnPhases<M / 2, V>::split(s, lo);               // the first M L / 2 floats' phases mod M / 2
      ColumnPhases<M / 2, V>::split(s + M / 2 * L, hi); // the next M L / 2 floats'
      for (size_t b = 0; b < M / 2; ++b) {
         out[b] = vevery_other<0>(lo[b], hi[b], lanes);
         out[b + M / 2] = vevery_other<1>(lo[b], hi[b], lanes);
      }
   }
   template <typename D>
   static void merge(const V *in, D place)
   {
      V lo[M / 2], hi[M / 2];
      for (size_t b = 0; b < M / 2; ++b) {
         lo[b] = vinterleave<0>(in[b], in[b + M / 2], lanes);
         hi[b] = vinterleave<L / 2>(in[b], in[b + M / 2], lanes);
      }
      ColumnPhases<M / 2, V>::merge(lo, place);
      ColumnPhases<M / 2, V>::merge(hi, [&](size_t i) { return place(i + M / 2); });
   }
};

// dst[b][v] = src[M v + b] for v < n, from `from` on, in vectors V while whole ones fit; returns where it stopped.
template <size_t M, typename V>
inline size_t split_phases_by(const float *src, float *const *dst, size_t from, size_t n)
{
   constexpr size_t L = sizeof(V) / sizeof(float);
   size_t v = from;
   for (; v + L <= n; v += L) {
      V out[M];
      ColumnPhases<M, V>::split(src + M * v, out);
      for (size_t b = 0; b < M; ++b)
         vstore_as(dst[b] + v, out[b]);
   }
   return v;
}

// dst[M t + j] = src[j][t] for t < n, from `from` on, in vectors V while whole ones fit; returns where it stopped.
template <size_t M, typename V>
inline size_t merge_phases_by(const float *const *src, float *dst, size_t from, size_t n)
{
   constexpr size_t L = sizeof(V) / sizeof(float);
   size_t t = from;
   for (; t + L <= n; t += L) {
      V in[M];
      for (size_t j = 0; j < M; ++j)
         in[j] = vload_as<V>(src[j] + t);
      ColumnPhases<M, V>::merge(in, [&](size_t i) { return dst + M * t + i * L; });
   }
   return t;
}

// The vectors M phases go through first: one or two phases in the widest, four in 8 floats.  Against 8-float
// vectors throughout, AVX-512's width made a stride-2 convolution's rows of 64 floats 4% faster, and F(4, 3)'s
// four phases 4% slower (16 channels on 32 pixels).  Without AVX, the widest (SSE's 4 floats): GCC's -Wpsabi
// rejects functions that pass 8-float vectors by value there.
template <size_t M>
using PhaseVector = typename std::conditional<M <= 2 || kVFloatLanes < 8, vfloat, float8>::type;

// The narrowest phase vector: rows of 4 Winograd tiles (16-pixel images in F(4, 3)) fill no wider one, and
// one by one, their interleave took a fifth of such a layer's output transform.
typedef float float4 __attribute__((vector_size(16)));

// dst[b][v] = src[M v + b] for v < n: in PhaseVector, then 8 and 4 floats, then one by one.
template <size_t M>
inline void split_phases(const float *src, float *const *dst, size_t n)
{
   size_t v = split_phases_by<M, PhaseVector<M>>(src, dst, 0, n);
   if constexpr (sizeof(PhaseVector<M>) > sizeof(float8))
      v = split_phases_by<M, float8>(src, dst, v, n);
   if constexpr (sizeof(PhaseVector<M>) > sizeof(float4))
      v = split_phases_by<M, float4>(src, dst, v, n);
   for (; v < n; ++v)
      for (size_t b = 0; b < M; ++b)
         dst[b][v] = src[M * v + b];
}

// dst[M t + j] = src[j][t] for t < n, in the vectors split_phases takes.
template <size_t M>
inline void merge_phases(const float *const *src, float *dst, size_t n)
{
   size_t t = merge_phases_by<M, PhaseVector<M>>(src, dst, 0, n);
   if constexpr (sizeof(PhaseVector<M>) > sizeof(float8))
      t = merge_phases_by<M, float8>(src, dst, t, n);
   if constexpr (sizeof(PhaseVector<M>) > sizeof(float4))
      t = merge_phases_by<M, float4>(src, dst, t, n);
   for (; t < n; ++t)
      for (size_t j = 0; j < M; ++j)
         dst[M * t + j] = src[j][t];
}

// fastmath.hxx's e^t (t <= 0), tanh and logistic function on every lane, their steps taken on vectors: the
// same arithmetic as the scalar functions (fast_exp_nonpositive, fast_tanh, fast_sigmoid), for the loops GCC leaves scalar around them (the LSTM's cells, whose
// activations are chosen at run time: a select in one of them, HardSigmoid's clamp, kept the whole cell
// scalar).  -ffast-math would fold exp_round's rounding addition away: there the lanes take the scalar functions.
template <typename F>
inline vfloat vlanes(vfloat x, F f)
{
   float v[kVFloatLanes];
   vstore(v, x);
   for (size_t l = 0; l < kVFloatLanes; ++l)
      v[l] = f(v[l]);
   return vload(v);
}

inline vint vbits(vfloat x)
{
   vint b;
   std::memcpy(&b, &x, sizeof b);
   return b;
}

inline vfloat vfrom_bits(vint b)
{
   vfloat x;
   std::memcpy(&x, &b, sizeof x);
   return x;
}

// |x| and x's sign bit alone.
inline vfloat vabs(vfloat x) { return vfrom_bits(vbits(x) & 0x7fffffff); }
inline vint vsign_bit(vfloat x) { return vbits(x) & static_cast<int32_t>(0x80000000u); }

SOFIE_RDF_INLINE vfloat vexp_nonpositive(vfloat t)
{
   if constexpr (SOFIE_EXP_NEARBYINT) {
      return vlanes(t, [](float v) { return fast_exp_nonpositive(v); });
   } else {
      const auto e = exp_parts<vfloat, vint>(vmax_splat(-88.0f, t));
      return e.p * pow2i<vfloat>(e.n);
   }
}

SOFIE_RDF_INLINE vfloat vtanh(vfloat x)
{
   if constexpr (SOFIE_EXP_NEARBYINT)
      return vlanes(x, [](float v) { return fast_tanh(v); });
   const vfloat a = vabs(x), e = vexp_nonpositive(-2.0f * a);
   const vfloat big = vfrom_bits(vbits((1.0f - e) / (1.0f + e)) | vsign_bit(x));
   const vfloat y = a < vsplat(0.625f) ? tanh_small(x) : big;
   return x != x ? x : y;
}

SOFIE_RDF_INLINE vfloat vsigmoid(vfloat x)
{
   if constexpr (SOFIE_EXP_NEARBYINT)
      return vlanes(x, [](float v) { return fast_sigmoid(v); });
   const vfloat e = vexp_nonpositive(-vabs(x));
   return (x >= vfloat{} ? vsplat(1.0f) : e) / (1.0f + e);
}
