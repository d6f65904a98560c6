// Session support: errors of CUDA and cuBLAS calls as exceptions, device memory that grows, the weights file.

// A failed CUDA runtime call as an exception naming the call.
inline void check(cudaError_t status, const char *what)
{
   if (status != cudaSuccess)
      throw std::runtime_error(std::string("sofie-rdf: ") + what + " failed: " + cudaGetErrorString(status));
}

// A failed cuBLAS call as an exception naming the call.
inline void check(cublasStatus_t status, const char *what)
{
   if (status != CUBLAS_STATUS_SUCCESS)
      throw std::runtime_error(std::string("sofie-rdf: ") + what + " failed: " + cublasGetStatusString(status));
}

// A device allocation that failed for want of memory (a Session whose rows are independent then runs a batch
// in chunks).
struct OutOfMemory : std::runtime_error {
   using std::runtime_error::runtime_error;
};

// Device memory grown only past the largest size asked for (contents are not kept).
class DeviceBuffer {
public:
   DeviceBuffer() = default;
   DeviceBuffer(const DeviceBuffer &) = delete;
   DeviceBuffer &operator=(const DeviceBuffer &) = delete;
   ~DeviceBuffer() { cudaFree(fData); }

   // At least `bytes` bytes; `grew` tells whether the memory moved (what pointed into it is stale).
   char *reserve(size_t bytes, bool &grew)
   {
      grew = bytes > fBytes;
      if (grew) {
         check(cudaFree(fData), "cudaFree");
         fData = nullptr;
         fBytes = 0;
         const cudaError_t status = cudaMalloc(reinterpret_cast<void **>(&fData), bytes);
         if (status == cudaErrorMemoryAllocation) {
            cudaGetLastError();  // clears the error, which later launch checks would otherwise report
            throw OutOfMemory("sofie-rdf: cudaMalloc of " + std::to_string(bytes) + " bytes failed: out of device memory");
         }
         check(status, "cudaMalloc");
         fBytes = bytes;
      }
      return fData;
   }
   char *data() const { return fData; }
   size_t bytes() const { return fBytes; }

private:
   char *fData = nullptr;
   size_t fBytes = 0;
};

// Bytes rounded up to the alignment of every planned region (cudaMalloc's own: 256 bytes).
constexpr size_t kAlign = 256;
inline size_t aligned(size_t bytes)
{
   return (bytes + kAlign - 1) / kAlign * kAlign;
}

// Reads the weights file: one line "sofie-rdf cuda weights 1 <bytes> <digest>", then the bytes of every weight
// at the offsets the Session was generated with, uploaded once.
inline void upload_weights(const std::string &filename, const char *digest, size_t bytes, DeviceBuffer &device)
{
   std::ifstream in(filename, std::ios::binary);
   if (!in)
      throw std::runtime_error("sofie-rdf: cannot open weights file '" + filename + "'");
   std::string line;
   std::getline(in, line);
   const std::string expected = "sofie-rdf cuda weights 1 " + std::to_string(bytes) + " " + digest;
   if (line != expected)
      throw std::runtime_error("sofie-rdf: weights file '" + filename + "' is not this model's (its first line is '" +
                               line.substr(0, 80) + "', expected '" + expected + "')");
   std::vector<char> host(bytes);
   if (!in.read(host.data(), static_cast<std::streamsize>(bytes)))
      throw std::runtime_error("sofie-rdf: weights file '" + filename + "' is truncated");
   bool grew = false;
   char *data = device.reserve(bytes, grew);
   check(cudaMemcpy(data, host.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy (weights)");
}
