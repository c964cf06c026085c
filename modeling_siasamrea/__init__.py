"""SiaSamRea model package (flat, shipped as Hub custom code)."""
