# Declarations of cpu.h (run-time kernel dispatch).
cdef extern from "cpu.h" nogil:
    int pt_cpu_isa()
    int pt_cpu_has_avx2()
    int pt_cpu_has_avx512()
    void pt_cpu_cap_isa(int level)
    void pt_cpu_force_generic(int force)
