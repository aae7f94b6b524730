"""Data: the instance, spec, plan and solver options, validated once at the
boundary into frozen dataclasses; stress-scenario definitions; the synthetic
generator; provenance. Never imports a solver."""
