"""The catalogs: pydantic specs of GPUs, models and engine profiles (spec), reading and compiling
the YAML (load), and importing Hugging Face configs (hf). Imports nothing above it."""
