"""OS facts, no framework: cgroups, NVML, OOM recognition, peaks, the forecast line."""
