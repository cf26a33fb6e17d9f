"""Metric functions: pure, array in, float out (``vsbench.metrics.lmc``), and aggregation."""
