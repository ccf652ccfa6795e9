"""A searched subnet out of the supernet and into deployable files: extraction (batch norm
recalibrated), folding, .tflite (float, int8), Flax NNX + Orbax, verification against the Flax
subnet, and TensorFlow's converter as a cross-check. `python -m nas.export` is this package's
`__main__`."""
