// ai.onnx.preview.training optimizers: one update step of one tensor (n elements), scalars r (learning
// rate) and t (step count) read at run time; coefficients come in double, elements are computed in T;
// an output the node does not have is nullptr.

// Momentum (standard or Nesterov): v' = alpha v + beta' g', beta' = beta after the first step (t > 0), else 1.
template <typename T>
inline void momentum_update(double r, int64_t t, const T *x, const T *g, const T *v, size_t n, double alpha,
                            double beta, double norm, bool nesterov, T *x_new, T *v_new)
{
   const T beta_t = static_cast<T>(t > 0 ? beta : 1.0);
   for (size_t i = 0; i < n; ++i) {
      const T grad = static_cast<T>(norm) * x[i] + g[i];
      const T vel = static_cast<T>(alpha) * v[i] + beta_t * grad;
      if (x_new)
         x_new[i] = x[i] - static_cast<T>(r) * (nesterov ? grad + static_cast<T>(alpha) * vel : vel);
      if (v_new)
         v_new[i] = vel;
   }
}

// Adagrad: the learning rate decays as r / (1 + t decay); h accumulates squared gradients.
template <typename T>
inline void adagrad_update(double r, int64_t t, const T *x, const T *g, const T *h, size_t n, double decay,
                           double epsilon, double norm, T *x_new, T *h_new)
{
   const T rate = static_cast<T>(r / (1.0 + static_cast<double>(t) * decay));
   for (size_t i = 0; i < n; ++i) {
      const T grad = static_cast<T>(norm) * x[i] + g[i];
      const T acc = h[i] + grad * grad;
      if (x_new)
         x_new[i] = x[i] - rate * grad / (std::sqrt(acc) + static_cast<T>(epsilon));
      if (h_new)
         h_new[i] = acc;
   }
}

// Adam with bias correction after the first step; x is scaled by (1 - norm_post) at the end.
template <typename T>
inline void adam_update(double r, int64_t t, const T *x, const T *g, const T *v, const T *h, size_t n, double alpha,
                        double beta, double epsilon, double norm, double norm_post, T *x_new, T *v_new, T *h_new)
{
   const double td = static_cast<double>(t);
   const T rate = static_cast<T>(t > 0 ? r * std::sqrt(1.0 - std::pow(beta, td)) / (1.0 - std::pow(alpha, td)) : r);
   const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
   for (size_t i = 0; i < n; ++i) {
      const T grad = static_cast<T>(norm) * x[i] + g[i];
      const T vel = a * v[i] + (T(1) - a) * grad;
      const T acc = b * h[i] + (T(1) - b) * grad * grad;
      const T stepped = x[i] - rate * (vel / (std::sqrt(acc) + static_cast<T>(epsilon)));
      if (x_new)
         x_new[i] = static_cast<T>(1.0 - norm_post) * stepped;
      if (v_new)
         v_new[i] = vel;
      if (h_new)
         h_new[i] = acc;
   }
}
