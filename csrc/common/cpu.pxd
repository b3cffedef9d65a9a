cdef extern from "cpu.h" nogil:
    int pt_cpu_has_avx2()
    void pt_cpu_force_generic(int force)
