// TensorScatter: a KV-cache write.  The cache is viewed as (batch, outer, max_seq, inner) around the
// sequence axis; update is (batch, outer, seq, inner) and lands at write_indices[b] + s (modulo
// max_seq in circular mode).  Out-of-range linear writes throw instead of writing past the cache.
template <typename T>
inline void tensor_scatter(const T *past, const T *update, const int64_t *write_indices, T *y, size_t batch, size_t outer,
                           size_t max_seq, size_t seq, size_t inner, bool circular)
{
   if (y != past)
      detail::copy(past, past + batch * outer * max_seq * inner, y);
   const int64_t span = static_cast<int64_t>(max_seq);
   for (size_t b = 0; b < batch; ++b) {
      const int64_t start = write_indices ? write_indices[b] : 0;
      if (!circular && (start < 0 || start + static_cast<int64_t>(seq) > span))
         throw std::out_of_range("sofie-rdf: TensorScatter write index " + std::to_string(start) + " + sequence length " +
                                 std::to_string(seq) + " exceeds the cache length " + std::to_string(max_seq));
      if (circular && span == 0 && seq > 0)
         throw std::out_of_range("sofie-rdf: TensorScatter cannot write into an empty circular cache");
      for (size_t o = 0; o < outer; ++o) {
         const size_t row = b * outer + o;
         for (size_t s = 0; s < seq; ++s) {
            int64_t at = start + static_cast<int64_t>(s);
            if (circular)
               at = ((at % span) + span) % span;
            const T *from = update + (row * seq + s) * inner;
            detail::copy(from, from + inner, y + (row * max_seq + static_cast<size_t>(at)) * inner);
         }
      }
   }
}
