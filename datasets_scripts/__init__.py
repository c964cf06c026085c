"""Dataset builders for the SiaSamRea benchmarks and the synthetic VideoQA generator."""
