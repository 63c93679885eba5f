"""The sections of `benchmarks/gpu_check.py`: correctness, LoRA speed, GAN speed, face-extraction speed, and the report."""
