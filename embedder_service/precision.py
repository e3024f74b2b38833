"""Which precision the forward pass runs at: read the CPU's features, never assume them.

`auto` means bf16 where the CPU computes bf16 natively (AMX: `amx_bf16`, or AVX-512 BF16:
`avx512_bf16` in /proc/cpuinfo's flags) and fp32 elsewhere: without native support bf16 is
emulated and slower than fp32. An explicit `bf16` on such a CPU is refused at start (one line),
not silently emulated. `--cpu-features` replaces the detected flags (tests force "no bf16" with
it on a CPU that has bf16; an operator can force fp32 under `auto` the same way).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("auto", "fp32", "bf16")
# Flags (as /proc/cpuinfo names them) that mean native bf16 arithmetic.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class CpuFeatures:
    flags: frozenset[str]
    source: str  # where the flags came from, for the log line

    @property
    def native_bf16(self) -> bool:
        return any(flag in self.flags for flag in BF16_FLAGS)

    def describe(self) -> str:
        found = [flag for flag in BF16_FLAGS if flag in self.flags]
        return (f"{', '.join(found) if found else 'no amx_bf16 or avx512_bf16'} "
                f"(from {self.source})")


def cpu_features(override: str = "", cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuFeatures:
    """The CPU's flags: `override` (comma- or space-separated; "none" = no flags) when given,
    else the first `flags` line of /proc/cpuinfo (none where it cannot be read)."""
    if override.strip():
        names = override.replace(",", " ").split()
        return CpuFeatures(frozenset(n.lower() for n in names if n.lower() != "none"),
                           "--cpu-features / EMBEDDER_CPU_FEATURES")
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return CpuFeatures(frozenset(line.split(":", 1)[1].split()), str(cpuinfo))
    except OSError:
        pass
    return CpuFeatures(frozenset(), f"{cpuinfo} unreadable: assuming none")


@dataclass(frozen=True)
class Decision:
    precision: str  # "fp32" or "bf16"
    reason: str     # one line for the start-up log


def choose(requested: str, features: CpuFeatures, runtime_bf16: bool = True,
           runtime: str = "") -> Decision:
    """The precision to run at. `runtime_bf16`: whether the backend's runtime supports bf16 on
    this CPU too (OpenVINO lists "BF16" in its OPTIMIZATION_CAPABILITIES). Raises SystemExit with
    one line for `bf16` on a CPU without native bf16."""
    native = features.native_bf16 and runtime_bf16
    why = features.describe() + ("" if runtime_bf16 else f"; {runtime} lists no BF16 capability")
    if requested == "fp32":
        return Decision("fp32", f"--precision fp32 (CPU: {why})")
    if requested == "bf16":
        if not native:
            raise SystemExit(f"--precision bf16: this CPU has no native bf16 ({why}); bf16 would be "
                             "emulated and slower than fp32: use --precision auto or fp32")
        return Decision("bf16", f"--precision bf16 (CPU: {why})")
    if requested != "auto":
        raise SystemExit(f"--precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if native:
        return Decision("bf16", f"--precision auto -> bf16: native bf16 on this CPU ({why})")
    return Decision("fp32", f"--precision auto -> fp32: no native bf16 ({why})")
