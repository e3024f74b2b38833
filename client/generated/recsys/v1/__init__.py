"""Generated from protos/ by `make protos` (scripts/gen_protos.py). Do not edit."""
