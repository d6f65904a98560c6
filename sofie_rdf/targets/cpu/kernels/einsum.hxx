// Einsum as one loop nest: the output's letters outside, the summed letters
// inside.  Each operand is read through one stride per letter (0 where the
// operand lacks the letter or broadcasts it; the sum of its axes' strides where
// a letter repeats, which walks the diagonal).  Strides are laid out
// strides[letter * nops + operand]; the output is contiguous in its letters.

constexpr size_t kEinsumMaxLetters = 64;
constexpr size_t kEinsumMaxOperands = 16;

// Advance a multi-index over letters [first, last) (last letter fastest), moving the operand offsets along.
inline void einsum_next(size_t *index, const size_t *sizes, size_t first, size_t last, const std::ptrdiff_t *strides,
                        size_t nops, std::ptrdiff_t *offsets)
{
   for (size_t l = last; l-- > first;) {
      if (++index[l] < sizes[l]) {
         for (size_t k = 0; k < nops; ++k)
            offsets[k] += strides[l * nops + k];
         return;
      }
      index[l] = 0;
      for (size_t k = 0; k < nops; ++k)
         offsets[k] -= strides[l * nops + k] * static_cast<std::ptrdiff_t>(sizes[l] - 1);
   }
}

template <typename T>
inline void einsum(const T *const *ops, size_t nops, const std::ptrdiff_t *strides, const size_t *sizes, size_t n_out,
                   size_t n_letters, T *y)
{
   size_t total_out = 1, total_sum = 1;
   for (size_t l = 0; l < n_letters; ++l)
      (l < n_out ? total_out : total_sum) *= sizes[l];
   size_t index[kEinsumMaxLetters] = {};
   std::ptrdiff_t base[kEinsumMaxOperands] = {}, offsets[kEinsumMaxOperands] = {};
   for (size_t o = 0; o < total_out; ++o) {
      detail::copy_n(base, nops, offsets);
      T acc = T(0);
      for (size_t s = 0; s < total_sum; ++s) {
         T product = T(1);
         for (size_t k = 0; k < nops; ++k)
            product *= ops[k][offsets[k]];
         acc += product;
         einsum_next(index, sizes, n_out, n_letters, strides, nops, offsets);
      }
      y[o] = acc;
      einsum_next(index, sizes, 0, n_out, strides, nops, base);
   }
}
