"""Files every layer writes: atomic writes and safetensors weights files (no compression)."""
