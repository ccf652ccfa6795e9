"""Measurement: the backends that time a .tflite model (this machine's interpreter, a phone over
adb), timing blocks into a table, and the host profile's first use."""
