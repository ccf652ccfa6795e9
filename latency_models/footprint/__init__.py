"""A network's size beside its latency: flash (the .tflite's bytes), peak SRAM (TensorFlow Lite
Micro's activation arena), params and MACs, predicted from the ArchSpec and checked against
the emitted file and TFLM itself (benchmarks/memory_fidelity.py)."""
