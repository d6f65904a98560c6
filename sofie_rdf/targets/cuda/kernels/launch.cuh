// Launch configurations: how many threads and blocks a kernel over n elements or n rows gets.
// Host code (and plain C++: the tests compile it without a GPU). Kernels loop with a grid stride, so a grid
// never exceeds kMaxBlocks whatever n is, and a launch always has at least one block (an empty grid is a
// launch error, not a no-op).

// Threads per block of the element-wise kernels.
constexpr unsigned kThreads = 256;
// Blocks of a grid-stride kernel: enough to fill the largest GPUs many times over (132 SMs x 16 blocks).
constexpr size_t kMaxBlocks = size_t(1) << 16;
// Threads of a block that reduces one row (softmax, normalisation): a multiple of the warp size.
constexpr unsigned kWarp = 32;
constexpr unsigned kMaxRowThreads = 256;

// Blocks for n independent elements, kThreads each.
inline unsigned blocks_for(size_t n)
{
   const size_t blocks = (n + kThreads - 1) / kThreads;
   return static_cast<unsigned>(blocks < 1 ? 1 : blocks > kMaxBlocks ? kMaxBlocks : blocks);
}

// Blocks for rows reduced by one block each.
inline unsigned row_blocks(size_t rows)
{
   return static_cast<unsigned>(rows < 1 ? 1 : rows > kMaxBlocks ? kMaxBlocks : rows);
}

// Threads of the block reducing a row of n values: n rounded up to whole warps, at most kMaxRowThreads.
inline unsigned row_threads(size_t n)
{
   const size_t warps = (n + kWarp - 1) / kWarp;
   const size_t threads = (warps < 1 ? 1 : warps) * kWarp;
   return static_cast<unsigned>(threads > kMaxRowThreads ? kMaxRowThreads : threads);
}
