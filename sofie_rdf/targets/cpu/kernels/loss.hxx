// Classification losses over scores laid out (batch, classes, inner), inner being the product of d1 ... dk.

enum class LossReduction { none = 0, sum = 1, mean = 2 };

// Negative log-likelihood: loss = -weight[label] * logp[label], 0 (and no weight) where label == ignore_index.
// Labels outside [0, classes) are refused; mean divides by the sum of the weights used, as ONNX says.
template <typename T, typename I>
inline void nll_loss(const T *logp, const I *labels, const T *weight, T *loss, size_t batch, size_t classes,
                     size_t inner, bool ignoring, int64_t ignore_index, LossReduction reduction)
{
   double total = 0, weights = 0;
   for (size_t n = 0; n < batch; ++n) {
      for (size_t i = 0; i < inner; ++i) {
         const int64_t label = static_cast<int64_t>(labels[n * inner + i]);
         double term = 0;
         if (!(ignoring && label == ignore_index)) {
            if (label < 0 || label >= static_cast<int64_t>(classes))
               throw std::out_of_range("sofie-rdf: loss label " + std::to_string(label) + " is outside [0, " +
                                       std::to_string(classes) + ")");
            const double w = weight ? static_cast<double>(weight[label]) : 1.0;
            term = -w * static_cast<double>(logp[(n * classes + static_cast<size_t>(label)) * inner + i]);
            weights += w;
         }
         if (reduction == LossReduction::none)
            loss[n * inner + i] = static_cast<T>(term);
         total += term;
      }
   }
   if (reduction == LossReduction::sum)
      loss[0] = static_cast<T>(total);
   else if (reduction == LossReduction::mean)
      loss[0] = static_cast<T>(total / weights);
}
