"""Serving: model loading, SavedModel export for TF Serving, prediction, evaluation."""
