"""Checkpoints: the tensor layout of a config (:mod:`.layout`), the safetensors reader and
writer (:mod:`.safetensors`), loading and packing for the kernels (:mod:`.loader`) and the
packed-weights cache (:mod:`.cache`)."""
