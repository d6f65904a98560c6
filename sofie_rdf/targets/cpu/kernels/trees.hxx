// ai.onnx.ml tree ensembles (TreeEnsembleRegressor, TreeEnsembleClassifier, TreeEnsemble), and the small models that
// come with them in converted BDT pipelines (Scaler, Normalizer, LinearRegressor/LinearClassifier), with onnxruntime's
// results: trees summed in their order in the threshold type, its post transforms in float (its logistic,
// softmax and its approximate inverse erf for PROBIT), its two-class rules.
//
// A forest is flat arrays the generated code holds as static constants: nodes (threshold, feature, true and
// false child), the branches first, then one node per leaf whose children are itself (so a walk can take
// more steps than its path has and stay at its leaf), per tree its root and its depth (the most branches
// on a path), and per leaf a slice of (target, weight) pairs.  Every walk then takes its tree's depth in
// steps, without a test for having arrived: rows (or, for one row, trees) walk independently and the
// processor overlaps them.  The node test is a template parameter when every branch has the same one (the
// usual BRANCH_LEQ); `flags` holds each node's mode and missing-value bit otherwise.

enum class TreeMode : int { Leq = 0, Lt, Gte, Gt, Eq, Neq, Member, Mixed };
enum class TreeAggregate : int { Average = 0, Sum, Min, Max };
enum class TreeTransform : int { None = 0, Softmax, Logistic, SoftmaxZero, Probit };

constexpr uint8_t kTreeModeMask = 7;
constexpr uint8_t kTreeMissingTrue = 8;

template <typename T>
struct TreeNode {
   T threshold;
   int32_t feature;
   int32_t yes;
   int32_t no;
};

template <typename T>
struct TreeForest {
   const TreeNode<T> *nodes;     // n_branches branches, then the leaves (leaf l is node n_branches + l)
   int32_t n_branches;
   const uint8_t *flags;         // per node: mode | kTreeMissingTrue; nullptr when no node needs it
   const int32_t *member_begin;  // per node, its set in members (BRANCH_MEMBER)
   const T *members;
   const int32_t *roots;
   const int32_t *depth;         // per tree
   size_t n_trees;
   const int32_t *leaf_begin;    // n_leaves + 1 offsets into weight_target / weight_value
   const int32_t *weight_target;
   const T *weight_value;
   size_t n_targets;
};

template <typename X>
inline bool tree_isnan(X v)
{
   if constexpr (std::is_floating_point_v<X>)
      return detail::is_nan(v);
   else
      return false;
}

template <TreeMode M, typename X, typename T>
inline bool tree_test(X v, const TreeForest<T> &f, int32_t i)
{
   const T t = f.nodes[i].threshold;
   if constexpr (M == TreeMode::Leq) return v <= t;
   else if constexpr (M == TreeMode::Lt) return v < t;
   else if constexpr (M == TreeMode::Gte) return v >= t;
   else if constexpr (M == TreeMode::Gt) return v > t;
   else if constexpr (M == TreeMode::Eq) return v == t;
   else if constexpr (M == TreeMode::Neq) return v != t;
   else if constexpr (M == TreeMode::Member) {
      for (int32_t k = f.member_begin[i]; k < f.member_begin[i + 1]; ++k)
         if (v == f.members[k])
            return true;
      return false;
   } else {
      switch (static_cast<TreeMode>(f.flags[i] & kTreeModeMask)) {
      case TreeMode::Leq: return tree_test<TreeMode::Leq>(v, f, i);
      case TreeMode::Lt: return tree_test<TreeMode::Lt>(v, f, i);
      case TreeMode::Gte: return tree_test<TreeMode::Gte>(v, f, i);
      case TreeMode::Gt: return tree_test<TreeMode::Gt>(v, f, i);
      case TreeMode::Eq: return tree_test<TreeMode::Eq>(v, f, i);
      case TreeMode::Neq: return tree_test<TreeMode::Neq>(v, f, i);
      default: return tree_test<TreeMode::Member>(v, f, i);
      }
   }
}

// c ? a : b in arithmetic: a tree's branches go either way on data, and compilers turn ?: into jumps that
// then mispredict about every other step.
inline int32_t tree_select(bool c, int32_t a, int32_t b)
{
   return b ^ ((a ^ b) & -static_cast<int32_t>(c));
}

// One step down from node i (a leaf's node leads back to itself); the test and the missing-value route
// in bit operations, without a jump.
template <TreeMode M, bool Missing, typename X, typename T>
inline int32_t tree_step(const TreeForest<T> &f, int32_t i, const X *x)
{
   const TreeNode<T> &n = f.nodes[i];
   const X v = x[n.feature];
   bool yes = tree_test<M>(v, f, i);
   if constexpr (Missing)
      yes = yes | (((f.flags[i] & kTreeMissingTrue) != 0) & tree_isnan(v));
   return tree_select(yes, n.yes, n.no);
}

// Leaf `leaf`'s weights aggregated into score (n_targets), has[j] set for each target it has a weight for.
template <TreeAggregate A, typename T>
inline void tree_add(const TreeForest<T> &f, int32_t leaf, T *score, unsigned char *has)
{
   for (int32_t k = f.leaf_begin[leaf]; k < f.leaf_begin[leaf + 1]; ++k) {
      const int32_t j = f.weight_target[k];
      const T w = f.weight_value[k];
      if constexpr (A == TreeAggregate::Sum || A == TreeAggregate::Average)
         score[j] += w;
      else if constexpr (A == TreeAggregate::Min)
         score[j] = (!has[j] || w < score[j]) ? w : score[j];
      else
         score[j] = (!has[j] || w > score[j]) ? w : score[j];
      has[j] = 1;
   }
}

// Walks advanced together, a step of each in turn: their loads and compares are independent, so the
// processor overlaps kTreeLanes of them instead of waiting out each step's dependent loads.
constexpr size_t kTreeLanes = 8;

// Walks from nodes i over rows xs (kTreeLanes each) for depth steps: i becomes the node each walk reaches.
template <TreeMode M, bool Missing, typename X, typename T>
inline void tree_walk(const TreeForest<T> &f, int32_t *i, const X *const *xs, int32_t depth)
{
   for (int32_t d = 0; d < depth; ++d)
      for (size_t k = 0; k < kTreeLanes; ++k)
         i[k] = tree_step<M, Missing>(f, i[k], xs[k]);
}

// Rows (x row-major with n_features columns): score (rows, n_targets) aggregated over the trees in their
// order, has[j] whether any leaf a row reached has a weight for target j.  Several rows walk a tree at a
// time (the tree loop outside the row loop, so a tree's nodes stay in cache while the rows walk it); a
// single row walks several trees at a time.  A lane with nothing of its own walks the last row (or tree)
// again, unused.
template <TreeMode M, bool Missing, TreeAggregate A, typename X, typename T>
inline void tree_scores(const TreeForest<T> &f, const X *x, size_t rows, size_t n_features, T *score,
                        unsigned char *has)
{
   const size_t n = f.n_targets;
   detail::fill_n(score, rows * n, T(0));
   detail::fill_n(has, rows * n, static_cast<unsigned char>(0));
   int32_t i[kTreeLanes];
   const X *xs[kTreeLanes];
   if (rows == 1) {
      detail::fill_n(xs, kTreeLanes, x);
      for (size_t t = 0; t < f.n_trees; t += kTreeLanes) {
         int32_t depth = 0;
         for (size_t k = 0; k < kTreeLanes; ++k) {
            const size_t tree = detail::min_of(t + k, f.n_trees - 1);
            i[k] = f.roots[tree];
            depth = detail::max_of(depth, f.depth[tree]);  // a walk past its leaf stays there
         }
         tree_walk<M, Missing>(f, i, xs, depth);
         for (size_t k = 0; k < kTreeLanes && t + k < f.n_trees; ++k)
            tree_add<A>(f, i[k] - f.n_branches, score, has);
      }
      return;
   }
   for (size_t t = 0; t < f.n_trees; ++t)
      for (size_t r = 0; r < rows; r += kTreeLanes) {
         for (size_t k = 0; k < kTreeLanes; ++k) {
            i[k] = f.roots[t];
            xs[k] = x + detail::min_of(r + k, rows - 1) * n_features;
         }
         tree_walk<M, Missing>(f, i, xs, f.depth[t]);
         for (size_t k = 0; k < kTreeLanes && r + k < rows; ++k)
            tree_add<A>(f, i[k] - f.n_branches, score + (r + k) * n, has + (r + k) * n);
      }
}

inline float tree_logistic(float v)
{
   const float e = 1 / (1 + std::exp(-std::abs(v)));
   return v < 0 ? 1 - e : e;
}

// onnxruntime's inverse erf (Winitzki's approximation, a = 0.147), so that PROBIT gives its values.
inline float tree_erfinv(float x)
{
   const float sign = x < 0 ? -1.0f : 1.0f;
   const float ln = std::log((1 - x) * (1 + x));
   const float pi = 3.14159265358979323846f;
   const float v = 2 / (pi * 0.147f) + 0.5f * ln;
   const float v2 = 1 / 0.147f * ln;
   return sign * std::sqrt(-v + std::sqrt(v * v - v2));
}

inline float tree_probit(float v)
{
   return 1.41421356237309504880f * tree_erfinv(2 * v - 1);
}

// y[0, n) = the post transform of s[0, n) (n >= 2, or any n for the element-wise ones).
template <typename T, typename Y>
inline void tree_transform(TreeTransform tr, T *s, size_t n, Y *y)
{
   if (tr == TreeTransform::Softmax || tr == TreeTransform::SoftmaxZero) {
      float top = -std::numeric_limits<float>::max();
      for (size_t j = 0; j < n; ++j)
         top = detail::max_of(top, static_cast<float>(s[j]));
      const float scale = std::exp(-top);
      float sum = 0.f;
      for (size_t j = 0; j < n; ++j) {
         const float v = static_cast<float>(s[j]);
         if (tr == TreeTransform::Softmax || v > 0.0000001f || v < -0.0000001f) {
            s[j] = static_cast<T>(std::exp(v - top));
            sum += static_cast<float>(s[j]);
         } else {
            s[j] = static_cast<T>(s[j] * scale);
         }
      }
      for (size_t j = 0; j < n; ++j)
         y[j] = static_cast<Y>(static_cast<float>(s[j]) / sum);
      return;
   }
   for (size_t j = 0; j < n; ++j) {
      const float v = static_cast<float>(s[j]);
      y[j] = tr == TreeTransform::Logistic ? static_cast<Y>(tree_logistic(v))
             : tr == TreeTransform::Probit ? static_cast<Y>(tree_probit(v))
                                           : static_cast<Y>(s[j]);
   }
}

// Regressors and TreeEnsemble: y (rows, n_targets).  One target: base value added, only PROBIT applied
// (onnxruntime's FinalizeScores1); several: base values added where there is one per target.  The scores
// come Block rows at a time (block_score and block_has hold Block x n_targets).
template <size_t Block, TreeMode M, bool Missing, TreeAggregate A, typename X, typename T, typename Y>
inline void tree_regressor(const TreeForest<T> &f, const X *x, size_t rows, size_t n_features, const T *base,
                           size_t n_base, TreeTransform tr, Y *y, T *block_score, unsigned char *block_has)
{
   const size_t n = f.n_targets;
   for (size_t r = 0; r < rows; ++r) {
      const size_t b = r % Block;
      if (b == 0)
         tree_scores<M, Missing, A>(f, x + r * n_features, detail::min_of(Block, rows - r), n_features, block_score,
                                    block_has);
      T *score = block_score + b * n;
      const unsigned char *has = block_has + b * n;
      for (size_t j = 0; j < n; ++j) {
         T v = has[j] ? score[j] : T(0);
         if constexpr (A == TreeAggregate::Average)
            v = v / static_cast<T>(f.n_trees);
         score[j] = n_base == n ? v + base[j] : v;
      }
      if (n == 1)
         y[r] = tr == TreeTransform::Probit ? static_cast<Y>(tree_probit(static_cast<float>(score[0])))
                                            : static_cast<Y>(score[0]);
      else
         tree_transform(tr, score, n, y + r * n);
   }
}

// Two classes, onnxruntime's TreeAggregatorClassifier::FinalizeScores: the label, and z's two columns.
template <typename T>
inline int64_t tree_binary(T *s, unsigned char *has, const T *base, size_t n_base, const int64_t *labels,
                           bool binary_case, bool all_positive, TreeTransform tr, float *z)
{
   int second = -1;  // how one score becomes two (onnxruntime's add_second_class)
   size_t count = 2;
   if (n_base == 2) {
      if (has[1]) {
         s[1] = base[1] + s[0];
         s[0] = -s[1];
      } else {
         s[1] += base[1];
         s[0] += base[0];
      }
   } else {
      if (n_base == 1)
         s[0] += base[0];
      else
         second = 3;
      if (!has[1])
         count = 1;
   }
   const T positive = (count == 2 && has[1]) ? s[1] : (has[0] ? s[0] : T(0));
   int64_t label = positive > 0 ? 1 : 0;
   if (binary_case) {
      const bool win = all_positive ? positive > T(0.5) : positive > 0;
      second = all_positive ? (win ? 0 : 1) : (win ? 2 : 3);
      label = labels[win ? 1 : 0];
   }
   if (count == 2) {
      tree_transform(tr, s, 2, z);
   } else if (tr == TreeTransform::Probit || second < 0) {
      z[0] = tr == TreeTransform::Probit ? tree_probit(static_cast<float>(s[0])) : static_cast<float>(s[0]);
      z[1] = 0.f;  // onnxruntime leaves it unwritten
   } else if (second <= 1) {
      z[0] = static_cast<float>(1 - s[0]);
      z[1] = static_cast<float>(s[0]);
   } else if (tr == TreeTransform::Logistic) {
      z[0] = tree_logistic(static_cast<float>(-s[0]));
      z[1] = tree_logistic(static_cast<float>(s[0]));
   } else {
      z[0] = static_cast<float>(-s[0]);
      z[1] = static_cast<float>(s[0]);
   }
   return label;
}

// Classifiers: label (rows) and z (rows, n_classes); more than two classes: base values added (a class
// without weights then counts as scored), the label is the first highest scored class.  Scores as in
// tree_regressor, Block rows at a time.
template <size_t Block, TreeMode M, bool Missing, typename X, typename T>
inline void tree_classifier(const TreeForest<T> &f, const X *x, size_t rows, size_t n_features, const T *base,
                            size_t n_base, const int64_t *labels, bool binary_case, bool all_positive,
                            TreeTransform tr, int64_t *label, float *z, T *block_score, unsigned char *block_has)
{
   const size_t n = f.n_targets;
   for (size_t r = 0; r < rows; ++r) {
      const size_t b = r % Block;
      if (b == 0)
         tree_scores<M, Missing, TreeAggregate::Sum>(f, x + r * n_features, detail::min_of(Block, rows - r), n_features,
                                                     block_score, block_has);
      T *score = block_score + b * n;
      unsigned char *has = block_has + b * n;
      if (n == 2) {
         label[r] = tree_binary(score, has, base, n_base, labels, binary_case, all_positive, tr, z + r * 2);
         continue;
      }
      for (size_t j = 0; j < n_base; ++j) {
         score[j] += base[j];
         has[j] = 1;
      }
      size_t best = 0;
      bool found = false;
      for (size_t j = 0; j < n; ++j)
         if (has[j] && (!found || score[j] > score[best])) {
            best = j;
            found = true;
         }
      label[r] = labels[best];
      tree_transform(tr, score, n, z + r * n);
   }
}

// ai.onnx.ml Scaler: y = (x - offset) * scale per column (one value or one per column), computed as
// onnxruntime does in the wider of x's type and float, stored as float.
template <typename T>
inline void scaler(const T *x, const float *offset, size_t n_offset, const float *scale, size_t n_scale,
                   size_t rows, size_t c, float *y)
{
   for (size_t r = 0; r < rows; ++r)
      for (size_t j = 0; j < c; ++j)
         y[r * c + j] = static_cast<float>((x[r * c + j] - offset[n_offset == 1 ? 0 : j]) * scale[n_scale == 1 ? 0 : j]);
}

// ai.onnx.ml Normalizer: each row (as float) divided by its max (norm 0), L1 (1) or L2 (2) norm; a zero
// norm leaves the row as it is.
template <typename T>
inline void normalizer(const T *x, size_t rows, size_t c, int norm, float *y)
{
   for (size_t r = 0; r < rows; ++r) {
      float *row = y + r * c;
      for (size_t j = 0; j < c; ++j)
         row[j] = static_cast<float>(x[r * c + j]);
      float d = norm == 0 ? (c ? *std::max_element(row, row + c) : 0.f) : 0.f;
      for (size_t j = 0; j < c && norm != 0; ++j)
         d += norm == 1 ? std::abs(row[j]) : row[j] * row[j];
      if (norm == 2)
         d = std::sqrt(d);
      if (d != 0.f)
         for (size_t j = 0; j < c; ++j)
            row[j] /= d;
   }
}

// ai.onnx.ml LinearRegressor / LinearClassifier scores: z (rows, n) = float(x) coef^T + intercepts, in float.
template <typename T>
inline void linear_scores(const T *x, const float *coef, const float *intercepts, size_t n_intercepts, size_t rows,
                          size_t c, size_t n, float *z)
{
   for (size_t r = 0; r < rows; ++r)
      for (size_t j = 0; j < n; ++j) {
         float s = 0.f;
         for (size_t k = 0; k < c; ++k)
            s += static_cast<float>(x[r * c + k]) * coef[j * c + k];
         z[r * n + j] = n_intercepts ? s + intercepts[j] : s;
      }
}

// LinearClassifier labels from the raw scores: one score column is the positive class where above 0
// (labels[1] with two labels, else 1), several the first highest.
inline void linear_labels(const float *z, size_t rows, size_t n, const int64_t *labels, size_t n_labels, int64_t *y)
{
   for (size_t r = 0; r < rows; ++r) {
      if (n == 1) {
         y[r] = z[r] > 0 ? (n_labels == 2 ? labels[1] : 1) : (n_labels == 2 ? labels[0] : 0);
         continue;
      }
      size_t best = 0;
      for (size_t j = 1; j < n; ++j)
         if (z[r * n + j] > z[r * n + best])
            best = j;
      y[r] = labels[best];
   }
}

// One score column s packed at the start of z (rows, 2) becomes (1 - s, s), as onnxruntime's binary
// LinearClassifier (whatever its post transform but PROBIT).
inline void linear_second_class(float *z, size_t rows)
{
   for (size_t r = rows; r-- > 0;) {
      const float s = z[r];
      z[2 * r + 1] = s;
      z[2 * r] = 1.f - s;
   }
}
