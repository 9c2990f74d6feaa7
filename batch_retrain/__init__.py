"""Batch retraining: ClickHouse history -> LightGBM -> gate -> the models topic."""
