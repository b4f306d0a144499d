"""OS facts, no framework: cgroups, NVML, OOM recognition, the kernel's log, peaks, the
forecast line. The lowest floor of the house above the kernel modules: nothing here
imports a part above it.
"""
