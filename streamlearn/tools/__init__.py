"""Floor 5, the shell's tools: local broker, simulator, demo, bench, status."""
