// ai.onnx.ml ArrayFeatureExtractor.

// y (rows, k) = x (rows, n) at the k columns idx, each checked to be in [0, n).
template <typename T>
inline void array_feature_extractor(const T *x, const int64_t *idx, size_t rows, size_t n, size_t k, T *y)
{
   for (size_t j = 0; j < k; ++j)
      if (idx[j] < 0 || static_cast<size_t>(idx[j]) >= n)
         throw std::out_of_range("sofie-rdf: ArrayFeatureExtractor index " + std::to_string(idx[j]) +
                                 " is out of range for a last axis of " + std::to_string(n));
   for (size_t r = 0; r < rows; ++r)
      for (size_t j = 0; j < k; ++j)
         y[r * k + j] = x[r * n + static_cast<size_t>(idx[j])];
}
