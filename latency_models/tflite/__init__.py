"""TFLite emission: an ArchSpec (or one block of it) plus weights becomes a .tflite flatbuffer
built from builtin ops, float32 or full int8, with no TensorFlow involved. The same code builds
the blocks that are measured and the networks that are deployed, so what is measured ships."""
