// The products of onnxruntime's DynamicQuantizeLSTM: W and R quantized (int8 or uint8, stored per direction as
// qgemm's packed B), each product's float operand quantized to uint8 first as onnxruntime quantizes it, with
// DynamicQuantizeLinear's scale and zero point: all of X at once (the rows of the steps some row reaches), then
// at each step the hidden states of the rows still running.  The int32 sums leave the tiles scaled to float:
// x_scale times the weights' scale of the direction (one, or one per gate column).

// One quantized weight tensor: packed panels per direction (qgemm_packed_bytes(4H, depth) bytes each), the
// column sums of its values less their zero points, its zero points as stored where any is not 0 (else null),
// its scales (`scale_step` 0: one per direction, 1: one per column).
struct QuantizedWeights {
   const uint8_t *packed;
   const int32_t *sums, *zero;
   const float *scale;
   size_t scale_step, depth;
};

// A policy of kernels/rnn.hxx's lstm(): `operand` holds max(seq x batch x input, batch x hidden) bytes,
// `offsets` and `multipliers` 4 x hidden values each.
struct QuantizedProducts {
   QuantizedWeights w, r;
   uint8_t *operand;
   int32_t *offsets;
   float *multipliers;

   // out (rows x gh) = quantize(a) W_d, a quantized over the range [lo, hi] (stretched to hold 0).
   void product(const float *a, size_t rows, float lo, float hi, const QuantizedWeights &q, size_t d, size_t gh,
                float *out) const
   {
      float a_scale;
      uint8_t a_zero;
      dynamic_quantization(lo, hi, a_scale, a_zero);
      quantize_uint8(a, rows * q.depth, a_scale, a_zero, operand);
      qgemm_offsets(gh, nullptr, a_zero, q.sums + d * gh, offsets);
      for (size_t j = 0; j < gh; ++j)
         multipliers[j] = a_scale * q.scale[d * (q.scale_step ? gh : 1) + j * q.scale_step];
      const QSums sums{nullptr, offsets, nullptr, nullptr, q.zero ? q.zero + d * gh : nullptr, nullptr, nullptr, 0, 0};
      qgemm<true>(rows, gh, q.depth, operand, q.depth, q.packed + d * qgemm_packed_bytes(gh, q.depth), sums,
                  QScaleFloat<QIdentity>{out, gh, multipliers, 0, 1, nullptr, 0, 1, QIdentity{}});
   }

   // X W^T over the steps some row reaches (onnxruntime's rows; the rest are never read).
   template <typename T>
   void input(const Recurrence<T> &rec, size_t d, size_t gh) const
   {
      size_t steps = 0;
      for (size_t b = 0; b < rec.shape.batch; ++b)
         steps = detail::max_of(steps, rnn_length(rec.shape, rec.lens, b));
      const size_t rows = steps * rec.shape.batch;
      float lo = 0.0f, hi = 0.0f;
      extend_range(rec.X, rows * w.depth, lo, hi);
      product(rec.X, rows, lo, hi, w, d, gh, rec.xw);
   }

   // H R^T, H's range taken as onnxruntime takes it: over the states the rows had after the last step, which
   // are zeros for rows that ended before it where Y is written (its rows past a sequence's end are zeroed and
   // read back as the state), and over every row's state where only Y_h is.
   template <typename T>
   void recurrent(const Recurrence<T> &rec, size_t d, size_t gh, size_t step) const
   {
      float lo = 0.0f, hi = 0.0f;
      for (size_t b = 0; b < rec.shape.batch; ++b)
         if (!rec.Y || rnn_length(rec.shape, rec.lens, b) >= step)
            extend_range(rec.h + b * r.depth, r.depth, lo, hi);
      product(rec.h, rec.shape.batch, lo, hi, r, d, gh, rec.hr);
   }
};
