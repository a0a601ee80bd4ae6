"""Serving: model loading, SavedModel export for TF Serving, LiteRT and ONNX exports and their runtimes, prediction, evaluation."""
