"""Latency: TFLite emission, measurement, latency tables, importers and learned predictors."""
