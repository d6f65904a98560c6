// The instruction set a Session runs its kernels for, chosen once, when it is constructed.  Level 0: what the
// compiler's flags reach (SSE2 alone for Cling, g++ without -march, a build for any x86-64); 1: AVX2 with FMA
// and F16C (every x86 since 2013-2015, AMD's EPYC among them); 2: AVX-512 F, BW, DQ and VL with VNNI (Intel's
// Xeons since Cascade Lake, AMD's Zen 4 and 5).  The CPU says what it has (CPUID) and the operating system whether
// it saves the wider registers (XGETBV); the environment variable SOFIE_RDF_MAX_ISA (generic, avx2, avx512) caps the
// choice, to measure or test a narrower set on a wider CPU.
inline int cpu_isa_level()
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
   auto cpuid = [](unsigned leaf, unsigned sub, unsigned r[4]) {
      __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
   };
   auto bit = [](unsigned word, unsigned k) { return (word >> k & 1u) != 0; };
   unsigned r[4];
   cpuid(0, 0, r);
   if (r[0] < 7)
      return 0;
   cpuid(1, 0, r);
   const unsigned ecx1 = r[2];
   if (!bit(ecx1, 27) || !bit(ecx1, 28) || !bit(ecx1, 12) || !bit(ecx1, 29)) // OSXSAVE, AVX, FMA, F16C
      return 0;
   unsigned xcr0, xcr0_high;
   __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
   (void)xcr0_high;
   if ((xcr0 & 0x6u) != 0x6u) // the XMM and YMM state
      return 0;
   cpuid(7, 0, r);
   const unsigned ebx7 = r[1], ecx7 = r[2];
   if (!bit(ebx7, 5) || !bit(ebx7, 3) || !bit(ebx7, 8)) // AVX2, BMI1, BMI2
      return 0;
   const bool avx512 = bit(ebx7, 16) && bit(ebx7, 17) && bit(ebx7, 30) && bit(ebx7, 31) // F, DQ, BW, VL
                       && bit(ecx7, 11) && (xcr0 & 0xe0u) == 0xe0u;                     // VNNI; opmask and ZMM state
   return avx512 ? 2 : 1;
#else
   return 0;
#endif
}

// The level a Session runs, among those its header compiled (`built[level]`; 0: the compiler's own flags):
// the widest this CPU has, else the flags' own.  Where SOFIE_RDF_ISA compiled one wider level alone and the
// CPU lacks it, there is nothing to run: an exception names the model and the level.
inline int pick_isa_level(const bool (&built)[3], const char *model)
{
   int level = cpu_isa_level();
   if (const char *cap = std::getenv("SOFIE_RDF_MAX_ISA")) {
      const std::string name(cap);
      level = std::min(level, name == "generic" || name == "0" ? 0 : name == "avx2" || name == "1" ? 1 : 2);
   }
   for (int wanted = level; wanted > 0; --wanted)
      if (built[wanted])
         return wanted;
   if (built[0])
      return 0;
   throw std::runtime_error(std::string("sofie-rdf: model '") + model + "' was compiled for " +
                            (built[2] ? "AVX-512 with VNNI" : "AVX2 with FMA") +
                            " alone (SOFIE_RDF_ISA), which this CPU lacks: compile it without SOFIE_RDF_ISA");
}
